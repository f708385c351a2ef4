using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;
using Sva.Replay;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>
/// A PostgreSQL cluster of its own (postgres-init/pg-up.sh on a free port from 54470, data dir under /var/tmp, purged at
/// the end) made to look like a user's own or managed server: a login role with a password that owns its database, no
/// sva_reader role, and a pg_hba.conf that lets only that login connect to that database, by password (SCRAM).
/// </summary>
public sealed class PlainClusterFixture : IAsyncLifetime
{
    public string Repo { get; } = global::Sva.EventStore.LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public string Data { get; } = $"/var/tmp/sva-plain-tests-{Guid.NewGuid().ToString("N")[..8]}";
    public int Port { get; private set; }
    /// <summary>The user's SVA_DB: their own login, with its password, on their own database.</summary>
    public string UserDb => $"Host=127.0.0.1;Port={Port};Username=alice;Password=alice-secret;Database=mine";
    public string Superuser => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    public async Task InitializeAsync()
    {
        Port = FreePort(54470);
        await ScriptAsync("pg-up.sh");
        await SqlAsync("postgres", "CREATE ROLE alice LOGIN PASSWORD 'alice-secret'");
        await SqlAsync("postgres", "CREATE DATABASE mine OWNER alice");
        // No sva_reader role on this server at all (pg-up.sh made one for its own database: gone).
        await SqlAsync("sva", "DROP OWNED BY sva_reader; DROP OWNED BY sva_writer; DROP OWNED BY sva_owner;");
        await SqlAsync("postgres", "DROP ROLE sva_reader; DROP ROLE sva_writer; DROP ROLE sva_owner;");
        await HbaAsync();
    }

    /// <summary>Only postgres (for the test's own setup) and alice, by password, may connect; then <paramref name="more"/>.</summary>
    public async Task HbaAsync(params string[] more)
    {
        var lines = new List<string> { "local all postgres trust", "host all postgres 127.0.0.1/32 trust" };
        lines.AddRange(more);
        lines.Add("host mine alice 127.0.0.1/32 scram-sha-256");
        await File.WriteAllTextAsync(Path.Combine(Data, "pg_hba.conf"), string.Join('\n', lines) + "\n");
        await SqlAsync("postgres", "SELECT pg_reload_conf()");
    }

    public async Task SqlAsync(string database, string sql)
    {
        await using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(Superuser) { Database = database }.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync() => await ScriptAsync("pg-down.sh", "--purge");

    public Task<CliResult> Sva(IReadOnlyDictionary<string, string>? env, params string[] args) => SvaCli.RunAsync(UserDb, Repo, env, args);
    public Task<CliResult> Sva(params string[] args) => Sva(null, args);

    private Task<string> ScriptAsync(string script, params string[] args) => SvaCli.PostgresScriptAsync(Repo, Port, Data, script, args);

    private static int FreePort(int from)
    {
        for (var p = from; p < from + 80; p++)
        {
            try { using var c = new TcpClient(); c.Connect("127.0.0.1", p); }
            catch (SocketException) { return p; }
        }
        throw new InvalidOperationException($"no free port from {from}");
    }
}

/// <summary>README's opening: setting SVA_DB to a plain database of one's own is enough, for recording and for every
/// query verb. Query verbs read as SVA_DB_READER when set, else as sva_reader where it can read, else as SVA_DB's own
/// login in read-only transactions; --verbose says which.</summary>
public sealed class PlainDatabaseTests(PlainClusterFixture f) : IClassFixture<PlainClusterFixture>
{
    [Fact]
    public async Task a_plain_sva_db_of_ones_own_records_and_every_query_verb_reads_then_sva_reader_where_it_can()
    {
        var example = Path.Combine(f.Repo, "examples", "two-devices-one-mm.sva");
        var session = SvaCli.UniqueSession("plain");
        var run = await f.Sva("run", example, "--session", session);
        Assert.True(run.ExitCode == 0, run.ToString());

        // No sva_reader role on the server; only alice may connect, by password.
        foreach (var args in new[] { new[] { "state", session, "--json" }, ["log", session], ["sessions"], ["history", session], ["verify", session] })
        {
            var q = await f.Sva([.. args, "--verbose"]);
            Assert.True(q.ExitCode is 0, $"{string.Join(' ', args)}: {q}");
            Assert.Contains("reading as alice (SVA_DB's login) in read-only transactions", q.Stderr);
        }
        var sessions = await f.Sva("sessions");
        Assert.Contains(session, sessions.Stdout);

        // What it reads with cannot write: the server refuses (read-only transaction), whatever the login's privileges.
        await using (var c = new NpgsqlConnection(ReaderLogin.ReadOnly(f.UserDb)))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE should_not_exist (x int)", c);
            var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());
            Assert.Equal("25006", e.SqlState);
        }

        // An sva_reader role that exists but that the server wants a password from: still alice, saying why.
        await f.SqlAsync("postgres", "CREATE ROLE sva_reader LOGIN");
        await f.HbaAsync("host mine sva_reader 127.0.0.1/32 scram-sha-256");
        var pw = await f.Sva("state", session, "--verbose");
        Assert.True(pw.ExitCode == 0, pw.ToString());
        Assert.Contains("reading as alice", pw.Stderr);
        Assert.Contains("password", pw.Stderr);

        // sva_reader may connect but has no privilege on alice's tables: still alice.
        await f.HbaAsync("host mine sva_reader 127.0.0.1/32 trust");
        var noGrant = await f.Sva("state", session, "--verbose");
        Assert.True(noGrant.ExitCode == 0, noGrant.ToString());
        Assert.Contains("reading as alice", noGrant.Stderr);

        // Where sva_reader can read (a writer grants it SELECT on what Marten made, as postgres-init's roles get): sva_reader.
        var again = await f.Sva("run", example, "--session", session, "--again");
        Assert.True(again.ExitCode == 0, again.ToString());
        var asReader = await f.Sva("state", session, "--verbose");
        Assert.True(asReader.ExitCode == 0, asReader.ToString());
        Assert.Contains("reading as sva_reader", asReader.Stderr);

        // SVA_DB_READER wins when set.
        var explicitReader = await f.Sva(new Dictionary<string, string> { ["SVA_DB_READER"] = f.UserDb }, "state", session, "--verbose");
        Assert.True(explicitReader.ExitCode == 0, explicitReader.ToString());
        Assert.Contains("reading as SVA_DB_READER (login alice)", explicitReader.Stderr);
        var viaOwn = await f.Sva(new Dictionary<string, string> { ["SVA_DB_READER"] = f.UserDb }, "state", session, "--json");
        var viaReader = await f.Sva("state", session, "--json");
        Assert.True(viaOwn.ExitCode == 0 && viaReader.ExitCode == 0, viaOwn + "\n" + viaReader);
        Assert.Equal(viaReader.Stdout, viaOwn.Stdout);
    }
}
