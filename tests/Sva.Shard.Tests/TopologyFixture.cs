using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;
using Sva.EventStore;
using Xunit;

namespace Sva.Shard.Tests;

/// <summary>
/// Two primaries and a streaming replica of the first, brought up by postgres-init/pg-up.sh --shards 2 --replica on
/// three free consecutive ports from 54410 and a data dir of its own under /var/tmp, and taken down (purged) at the end.
/// </summary>
public sealed class TopologyFixture : IAsyncLifetime
{
    public string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public int BasePort { get; private set; }
    public string Data { get; } = $"/var/tmp/sva-shard-tests-{Guid.NewGuid().ToString("N")[..8]}";
    public string Shard1 { get; private set; } = "";
    public string Shard2 { get; private set; } = "";
    public string Replica { get; private set; } = "";
    public string Shards => $"{Shard1}|{Shard2}";

    public async Task InitializeAsync()
    {
        BasePort = FreePorts(54410, 3);
        var lines = (await ScriptAsync("pg-up.sh", "--shards", "2", "--replica")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t')).ToDictionary(p => p[0], p => p[1]);
        Shard1 = lines["shard1"];
        Shard2 = lines["shard2"];
        Replica = lines["replica1"];
        Assert.Contains($"Port={BasePort};", Shard1);
        Assert.Contains($"Port={BasePort + 1};", Shard2);
        Assert.Contains($"Port={BasePort + 2};", Replica);
    }

    public async Task DisposeAsync() => await ScriptAsync("pg-down.sh", "--all", "--purge");

    /// <summary>Runs a postgres-init script for this topology; returns its stdout, fails the test on a non-zero exit.</summary>
    public async Task<string> ScriptAsync(string script, params string[] args) => await ScriptAtAsync(BasePort, Data, script, args);

    public Task<string> ScriptAtAsync(int port, string data, string script, params string[] args) => SvaCli.PostgresScriptAsync(Repo, port, data, script, args);

    /// <summary>The CLI with SVA_SHARDS (and more environment); SVA_DB points at shard1 but is not used when SVA_SHARDS is set.</summary>
    public Task<CliResult> Sva(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var all = new Dictionary<string, string> { ["SVA_SHARDS"] = Shards };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) all[k] = v;
        return SvaCli.RunAsync(Shard1, Repo, all, args);
    }

    public Task<CliResult> Sva(params string[] args) => Sva(null, args);

    /// <summary>The shard (0 or 1) a new session of that name is placed on.</summary>
    public int Home(string session) =>
        new ShardedEventStore([new ShardSpec("a", "", _ => throw new InvalidOperationException()), new ShardSpec("b", "", _ => throw new InvalidOperationException())]).HomeShard(session);

    /// <summary>A fresh session name whose home is shard <paramref name="shard"/> (0-based).</summary>
    public string SessionOn(int shard, string prefix)
    {
        while (true)
        {
            var s = SvaCli.UniqueSession(prefix);
            if (Home(s) == shard) return s;
        }
    }

    public static async Task<object?> ScalarAsync(string cs, string sql)
    {
        await using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs) { Username = "postgres", Pooling = false }.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        return await cmd.ExecuteScalarAsync();
    }

    private static int FreePorts(int from, int count)
    {
        for (var p = from; p < from + 80; p++)
            if (Enumerable.Range(p, count).All(Free)) return p;
        throw new InvalidOperationException($"no {count} consecutive free ports from {from}");

        static bool Free(int port)
        {
            try { using var c = new TcpClient(); c.Connect("127.0.0.1", port); return false; }
            catch (SocketException) { return true; }
        }
    }
}

[CollectionDefinition("topology")]
public sealed class TopologyCollection : ICollectionFixture<TopologyFixture>;
