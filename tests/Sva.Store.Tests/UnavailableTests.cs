using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class UnavailableTests
{
    private static int ClosedPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task Dead_database_gives_a_typed_error_naming_host_and_port_quickly()
    {
        var port = ClosedPort();
        await using var store = PgEventStore.Create($"Host=127.0.0.1;Port={port};Username=postgres;Database=sva;Timeout=2");
        var sw = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<EventStoreUnavailableException>(() => store.AppendAsync("s", 0, Guid.NewGuid(), [new("T", "{}")]));

        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
        Assert.Equal($"127.0.0.1:{port}", ex.Endpoint);
        Assert.Contains($"127.0.0.1:{port}", ex.Message);
        Assert.Contains("refused", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", ex.Message); // a message, not a stack trace

        await Assert.ThrowsAsync<EventStoreUnavailableException>(() => store.CreateSessionAsync("s", "k", null));
        await Assert.ThrowsAsync<EventStoreUnavailableException>(() => store.ReadHeadPositionAsync());
        await Assert.ThrowsAsync<EventStoreUnavailableException>(() => store.EnsureSchemaAsync());
        await Assert.ThrowsAsync<EventStoreUnavailableException>(async () =>
        {
            await foreach (var _ in store.ReadAllAsync()) { }
        });
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"took {sw.Elapsed}");
    }
}
