using System.Text.Json;
using Npgsql;
using Sva.EventStore;

[assembly: CollectionBehavior(CollectionBehavior.CollectionPerClass, MaxParallelThreads = 4)]

namespace Sva.Store.Tests;

/// <summary>An event type of the tests only (the store knows no IOMMU): registered under the stored name "test_event".</summary>
public sealed record TestEvent(string Name, int N, ulong Address = 0);

/// <summary>
/// A database of its own (created here, dropped at the end): these tests write foreign event types and tamper with
/// rows, which must never reach the default database. The store is the real Marten adapter on the local cluster.
/// </summary>
public sealed class StoreFixture : IAsyncLifetime
{
    public string Database { get; } = "sva_store_" + Guid.NewGuid().ToString("N")[..12];
    public string ConnectionString { get; private set; } = "";
    public IEventStore Store { get; private set; } = null!;
    private string admin = "";

    public static StoreSetup Setup() => new()
    {
        EventTypes = [(typeof(TestEvent), "test_event")],
        Json = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower },
    };

    public async Task InitializeAsync()
    {
        var cs = await LocalCluster.ResolveConnectionStringAsync();
        admin = new NpgsqlConnectionStringBuilder(cs) { Database = "postgres" }.ConnectionString;
        await ExecAsync(admin, $"CREATE DATABASE {Database}");
        ConnectionString = new NpgsqlConnectionStringBuilder(cs) { Database = Database }.ConnectionString;
        Store = await MartenEventStore.OpenAsync(ConnectionString, Setup());
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await ExecAsync(admin, $"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
    }

    public static async Task ExecAsync(string cs, string sql)
    {
        await using var ds = NpgsqlDataSource.Create(cs);
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }

    public Task ExecAsync(string sql) => ExecAsync(ConnectionString, sql);

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var ds = NpgsqlDataSource.Create(ConnectionString);
        await using var cmd = ds.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public static string NewSession(string what) => $"test-{what}-{Guid.NewGuid():N}";

    /// <summary>Events whose metadata names the command (as every writer's metadata does: the store reads a chain-2
    /// event's command id from it) and a source line.</summary>
    public static List<NewEvent> Events(int n, int from = 1, Guid? cmd = null) =>
        Enumerable.Range(from, n).Select(i => new NewEvent(new TestEvent($"e{i}", i, (ulong)i << 40),
            cmd is { } c ? $"{{\"source\":\"t.sva:{i}\",\"cmd\":\"{c}\"}}" : $"{{\"source\":\"t.sva:{i}\"}}")).ToList();

    public async Task<AppendResult> AppendAsync(string session, long expected, int n, Guid? cmd = null, bool create = false)
    {
        var command = cmd ?? Guid.NewGuid();
        return await Store.AppendAsync(new AppendBatch(session, expected, command, Events(n, (int)expected + 1, command))
        {
            Create = create || expected == 0 ? new NewSession("6.8-test", "unit-test") : null,
        });
    }
}
