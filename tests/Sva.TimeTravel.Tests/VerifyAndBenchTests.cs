using Npgsql;
using Xunit;

namespace Sva.TimeTravel.Tests;

[Collection("tt")]
public sealed class VerifyAndBenchTests(TtFixture f)
{
    [Fact]
    public async Task verify_passes_an_untouched_session_and_names_the_first_tampered_seq()
    {
        var good = TtFixture.UniqueSession("vgood");
        var bad = TtFixture.UniqueSession("vbad");
        Assert.Equal(0, (await f.RunAsync("run", f.Example("smmuv3-seed004.sva"), "--session", good)).ExitCode);
        Assert.Equal(0, (await f.RunAsync("run", f.Example("smmuv3-seed004.sva"), "--session", bad)).ExitCode);

        var ok = await f.RunAsync("verify", good, "--json");
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.True((bool)ok.JsonLines().Single()["ok"]!);

        // Tamper as the superuser (the trigger refuses UPDATE otherwise): change one event's data in place.
        await using (var conn = new NpgsqlConnection(f.ConnectionString))
        {
            await conn.OpenAsync();
            await using var tx = await conn.BeginTransactionAsync();
            foreach (var sql in new[]
            {
                "ALTER TABLE events DISABLE TRIGGER USER",
                "UPDATE events SET data = jsonb_set(data, '{pasid}', '7') WHERE session = $1 AND seq = 9",
                "ALTER TABLE events ENABLE TRIGGER USER",
            })
            {
                await using var cmd = new NpgsqlCommand(sql, conn, tx);
                if (sql.Contains("$1")) cmd.Parameters.Add(new NpgsqlParameter { Value = bad });
                var n = await cmd.ExecuteNonQueryAsync();
                if (sql.StartsWith("UPDATE")) Assert.Equal(1, n);
            }
            await tx.CommitAsync();
        }

        var broken = await f.RunAsync("verify", bad, "--json");
        Assert.Equal(1, broken.ExitCode);
        var o = broken.JsonLines().Single();
        Assert.False((bool)o["ok"]!);
        Assert.Equal(9, (long)o["first_broken_seq"]!);
        Assert.Equal(8, (long)o["events_checked"]!);
        var table = await f.RunAsync("verify", bad);
        Assert.Equal(1, table.ExitCode);
        Assert.Contains("BROKEN", table.Stdout);
        Assert.Equal(0, (await f.RunAsync("verify", good)).ExitCode);
        Assert.Equal(2, (await f.RunAsync("verify", "no-such-session-" + Guid.NewGuid().ToString("N"))).ExitCode);
    }

    [Fact]
    public async Task bench_smoke_runs_every_measurement_and_prints_its_table()
    {
        var r = await f.RunAsync("bench", "--smoke");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var metric in new[] { "engine: decide + apply in memory", "recording: decide + append", "raw COPY", "recording / raw COPY",
                     "per-call record latency p50", "read-model rebuild", "time travel: nearest snapshot", "time travel: fold from event 0",
                     "time travel speed-up", "peak working set" })
            Assert.Contains(metric, r.Stdout);
        var j = await f.RunAsync("bench", "--smoke", "--json");
        Assert.True(j.ExitCode == 0, j.ToString());
        var doc = System.Text.Json.Nodes.JsonNode.Parse(j.Stdout)!;
        var rows = doc["rows"]!.AsArray();
        Assert.All(rows, row => Assert.True(row!["value"]!.GetValue<double>() > 0, row.ToJsonString()));
        Assert.True((long)doc["machine"]!["cores"]! > 0);
    }
}
