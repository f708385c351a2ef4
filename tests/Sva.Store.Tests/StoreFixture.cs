using Npgsql;
using Sva.EventStore;

// Each test class is its own collection, so classes run in parallel; sessions are unique per test.
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerClass, MaxParallelThreads = 4)]

namespace Sva.Store.Tests;

/// <summary>
/// The real local cluster (LocalCluster: SVA_DB or postgres-init/pg-up.sh), schema ensured once per process and shared by
/// every test class. Tests never clean up: each uses its own unique session ids.
/// </summary>
public sealed class StoreFixture : IAsyncLifetime
{
    private static readonly Lazy<Task<(string ConnectionString, PgEventStore Store)>> Shared = new(InitAsync);

    public string ConnectionString { get; private set; } = "";
    public PgEventStore Store { get; private set; } = null!;

    public async Task InitializeAsync() => (ConnectionString, Store) = await Shared.Value;

    public Task DisposeAsync() => Task.CompletedTask; // shared by all classes; the pool dies with the process

    private static async Task<(string, PgEventStore)> InitAsync()
    {
        var cs = await LocalCluster.ResolveConnectionStringAsync();
        var store = PgEventStore.Create(cs);
        await store.EnsureSchemaAsync();
        return (cs, store);
    }

    public static string NewSessionId(string what) => $"test-{what}-{Guid.NewGuid():N}";

    public async Task<string> NewSessionAsync(string what)
    {
        var id = NewSessionId(what);
        await Store.CreateSessionAsync(id, "6.8-test", "unit-test");
        return id;
    }

    /// <summary>The same database as another role (trust auth on the throwaway cluster).</summary>
    public string ConnectionStringAs(string user) =>
        new NpgsqlConnectionStringBuilder(ConnectionString) { Username = user, Pooling = false }.ConnectionString;

    public async Task<NpgsqlConnection> OpenAsync(string? user = null)
    {
        var conn = new NpgsqlConnection(user is null ? ConnectionString : ConnectionStringAs(user));
        await conn.OpenAsync();
        return conn;
    }

    public static IReadOnlyList<NewEvent> Events(int count, string type = "TestEvent", int offset = 0) =>
        Enumerable.Range(offset, count).Select(i => new NewEvent(type, $$"""{"i": {{i}}, "name": "e{{i}}"}""")).ToList();

    public async Task<List<StoredEvent>> ReadSessionAsync(string session)
    {
        var list = new List<StoredEvent>();
        await foreach (var e in Store.ReadSessionAsync(session)) list.Add(e);
        return list;
    }
}
