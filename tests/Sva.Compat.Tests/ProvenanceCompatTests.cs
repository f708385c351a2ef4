using System.Text.Json.Nodes;

namespace Sva.Compat.Tests;

/// <summary>
/// Provenance (sva state --blame, sva why) on sessions written by b4ea429, whose snapshots have no set-at data: plain
/// state still starts from them, blame passes over them (folds from seq 1) and answers as on a fresh recording.
/// </summary>
public sealed class ProvenanceCompatTests
{
    private static Task<CliResult> Sva(string db, params string[] args) => SvaCli.RunAsync(db, Golden.Repo, null, args);

    [Fact]
    public async Task Old_snapshots_serve_state_but_not_blame_and_blame_of_old_sessions_is_right()
    {
        var db = await Golden.Get("b4ea429").SharedCopyAsync();

        // gen-6.8 (12,000 events) has snapshots of the old shape below seq 10,000
        var plain = await Sva(db, "state", "gen-6.8", "--at", "10000", "--json", "--verbose");
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Contains("from the snapshot at seq", plain.Stderr);
        var blamed = await Sva(db, "state", "gen-6.8", "--at", "10000", "--blame", "--json", "--verbose");
        Assert.True(blamed.ExitCode == 0, blamed.ToString());
        Assert.Contains("folded 10000 events from seq 1", blamed.Stderr);
        var folded = await Sva(db, "state", "gen-6.8", "--at", "10000", "--blame", "--json", "--no-snapshots");
        Assert.Equal(folded.Stdout, blamed.Stdout);
        var o = JsonNode.Parse(blamed.Stdout)!;
        Assert.All(o["mms"]!.AsArray(), m => Assert.InRange((long)m!["set_at"]!["seq"]!, 1, 10000));
        Assert.All(o["devices"]!.AsArray(), d => Assert.Equal("device", (string?)d!["set_at"]!["op"]));

        // the old recording of examples/smmuv3-seed004.sva answers as a new one (README's worked why)
        var why = await Sva(db, "why", "run-smmuv3-seed004", "--at", "36", "--device", "0000:00:03.0", "--pasid", "2", "--json");
        Assert.True(why.ExitCode == 0, why.ToString());
        var steps = why.JsonLines();
        Assert.Equal([35, 34, 32, 31, 26, 1], steps.Select(s => (long)s["seq"]!));
        Assert.Equal([19, 19, 17, 17, 17, 5], steps.Select(s => (int)s["line"]!));
    }
}
