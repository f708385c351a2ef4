using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class SchemaAndClusterTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task EnsureSchema_is_idempotent_and_safe_concurrently()
    {
        Assert.Contains("001_store.sql", PgEventStore.SchemaFileNames);
        Assert.Equal(PgEventStore.SchemaFileNames.Order(StringComparer.Ordinal), PgEventStore.SchemaFileNames);
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => f.Store.EnsureSchemaAsync())));
        await f.Store.EnsureSchemaAsync();

        await using var conn = await f.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT (SELECT count(*) FROM schema_versions WHERE version = 1), (SELECT count(*) FROM store_position), "
            + "(SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal), "
            + "(SELECT count(*) FROM pg_roles WHERE rolname IN ('sva_owner', 'sva_writer', 'sva_reader') AND rolcanlogin), "
            + "(SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'events'::regclass)", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal((1L, 1L, 2L, 3L, "sva_owner"), (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetString(4)));
    }

    [Fact]
    public async Task Local_cluster_resolves_the_same_connection_string_again()
    {
        var a = await LocalCluster.ResolveConnectionStringAsync();
        var b = await LocalCluster.ResolveConnectionStringAsync();
        Assert.Equal(a, b);
        Assert.Equal(f.ConnectionString, a);
        if (Environment.GetEnvironmentVariable("SVA_DB") is not { Length: > 0 })
        {
            Assert.StartsWith("Host=127.0.0.1;Port=", a);
            var root = LocalCluster.FindRepoRoot();
            Assert.NotNull(root);
            Assert.True(File.Exists(Path.Combine(root, "postgres-init", "pg-up.sh")));
        }

        await using var conn = new NpgsqlConnection(a);
        await conn.OpenAsync();
        Assert.Equal(new NpgsqlConnectionStringBuilder(a).Database, conn.Database);
        Assert.False(string.IsNullOrEmpty(conn.Database));
    }
}
