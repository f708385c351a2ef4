using Npgsql;
using Xunit;

namespace Sva.TimeTravel.Tests;

[Collection("tt")]
public sealed class VerifyAndBenchTests(TtFixture f)
{
    [Fact]
    public async Task verify_passes_an_untouched_session_and_names_the_first_tampered_seq()
    {
        // A database of its own: tampering never reaches the default one (where `sva verify` must stay clean).
        var db = "sva_verify_" + Guid.NewGuid().ToString("N")[..12];
        var admin = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = "postgres" }.ConnectionString;
        var cs = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString;
        await using (var ds = NpgsqlDataSource.Create(admin)) await ds.CreateCommand($"CREATE DATABASE {db}").ExecuteNonQueryAsync();
        try
        {
            Task<Sva.Tests.Support.CliResult> Run(params string[] args) => Sva.Tests.Support.SvaCli.RunAsync(cs, f.Repo, null, args);
            var good = TtFixture.UniqueSession("vgood");
            var bad = TtFixture.UniqueSession("vbad");
            Assert.Equal(0, (await Run("run", f.Example("smmuv3-seed004.sva"), "--session", good)).ExitCode);
            Assert.Equal(0, (await Run("run", f.Example("smmuv3-seed004.sva"), "--session", bad)).ExitCode);

            var ok = await Run("verify", good, "--json");
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.True((bool)ok.JsonLines().Single()["ok"]!);

            // Tamper as the superuser (the trigger refuses UPDATE otherwise): change one event's data in place.
            await using (var ds = NpgsqlDataSource.Create(cs))
            {
                await ds.CreateCommand("ALTER TABLE mt_events DISABLE TRIGGER USER").ExecuteNonQueryAsync();
                var upd = ds.CreateCommand("UPDATE mt_events SET data = jsonb_set(data, '{pasid}', '7') WHERE stream_id = $1 AND version = 9");
                upd.Parameters.Add(new NpgsqlParameter { Value = bad });
                Assert.Equal(1, await upd.ExecuteNonQueryAsync());
                await ds.CreateCommand("ALTER TABLE mt_events ENABLE TRIGGER USER").ExecuteNonQueryAsync();
            }

            var broken = await Run("verify", bad, "--json");
            Assert.Equal(1, broken.ExitCode);
            var o = broken.JsonLines().Single();
            Assert.False((bool)o["ok"]!);
            Assert.Equal(9, (long)o["first_broken_seq"]!);
            Assert.Equal(8, (long)o["events_checked"]!);
            var table = await Run("verify", bad);
            Assert.Equal(1, table.ExitCode);
            Assert.Contains("BROKEN", table.Stdout);
            Assert.Equal(0, (await Run("verify", good)).ExitCode);
            Assert.Equal(2, (await Run("verify", "no-such-session-" + Guid.NewGuid().ToString("N"))).ExitCode);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var ds = NpgsqlDataSource.Create(admin);
            await ds.CreateCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)").ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task bench_smoke_runs_every_measurement_and_prints_its_table()
    {
        var r = await f.RunAsync("bench", "--smoke");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var metric in new[] { "1. recording: RecordCallsHandler", "2a. straightforward Marten", "2b. straightforward Marten",
                     "3. raw binary COPY", "recording / raw COPY", "4. import", "import / raw COPY", "5. per-call latency p50",
                     "appends through a Marten session", "round trip floor", "blame from the log alone", "Marten's append function",
                     "time travel p50", "fold from 0 / snapshot + tail", "7. rebuild: ReadModel.RebuildAsync", "7b. daemon rebuild", "rebuild / daemon rebuild", "8. peak RSS" })
            Assert.Contains(metric, r.Stdout);
        var j = await f.RunAsync("bench", "--smoke", "--json");
        Assert.True(j.ExitCode == 0, j.ToString());
        var doc = System.Text.Json.Nodes.JsonNode.Parse(j.Stdout)!;
        var rows = doc["rows"]!.AsArray();
        Assert.True(rows.Count >= 12);
        // The append-path profile's stages may be 0 in a smoke run (3,000 events take no snapshot: one every 4,096);
        // every measurement is positive.
        static bool IsProfile(System.Text.Json.Nodes.JsonNode row) => row["metric"]!.GetValue<string>().TrimStart() is var m
            && (m.StartsWith("recording profile:", StringComparison.Ordinal) || m.StartsWith("per-call profile:", StringComparison.Ordinal));
        Assert.Contains(rows, row => IsProfile(row!));
        Assert.All(rows, row => Assert.True(IsProfile(row!) ? row!["value"]!.GetValue<double>() >= 0 : row!["value"]!.GetValue<double>() > 0, row!.ToJsonString()));
        Assert.True((long)doc["machine"]!["cores"]! > 0);
    }
}
