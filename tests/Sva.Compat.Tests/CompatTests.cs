using System.Text.Json.Nodes;

namespace Sva.Compat.Tests;

/// <summary>
/// Whatever a released sva wrote must load, verify and continue in every later one. Each golden database
/// (tests/data/compat/NAME, written by release NAME) is restored into a scratch database and today's CLI must
/// answer at least what that release answered (<see cref="JsonSubset"/>: new members may be added, none lost or
/// changed), verify every hash chain, continue its sessions, and rebuild and verify its projections.
/// </summary>
[Collection("compat")]
public sealed class CompatTests
{
    private static Task<CliResult> Sva(string db, params string[] args) => SvaCli.RunAsync(db, Golden.Repo, null, args);

    private static void Subset(string? expected, CliResult actual, string what)
    {
        Assert.NotNull(expected);
        Assert.True(actual.ExitCode is 0 or 1, $"{what}: {actual}");
        var diff = JsonSubset.FirstDifference(JsonNode.Parse(expected), JsonNode.Parse(actual.Stdout));
        Assert.True(diff is null, $"{what} differs from what the release that wrote it said: {diff}");
    }

    private static void SubsetLines(string? expected, CliResult actual, string what)
    {
        Assert.NotNull(expected);
        Assert.True(actual.ExitCode is 0 or 1, $"{what}: {actual}");
        var diff = JsonSubset.FirstDifferenceInLines(expected, actual.Stdout);
        Assert.True(diff is null, $"{what} differs from what the release that wrote it said: {diff}");
    }

    [Fact]
    public void There_is_a_golden_database_of_the_first_release_on_Marten()
    {
        // b4ea429: main before the golden databases existed. Deleting it must fail CI.
        var g = Golden.Get("b4ea429");
        Assert.Contains("gen-6.8", g.Sessions);
        Assert.Contains(g.Sessions, s => s.StartsWith("imp-", StringComparison.Ordinal));
        Assert.Contains(g.Sessions, s => s.StartsWith("run-", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Golden.GoldenSessions), MemberType = typeof(Golden))]
    public async Task State_log_and_history_read_as_the_writing_release_said(string golden, string session)
    {
        var g = Golden.Get(golden);
        var db = await g.SharedCopyAsync();

        Subset(g.Expected($"state.{session}.json"), await Sva(db, "state", session, "--json"), $"{golden}: state {session}");

        var mid = g.Expected($"mid.{session}")!.Trim();
        var at = await Sva(db, "state", session, "--at", mid, "--json");
        Subset(g.Expected($"state-at-{mid}.{session}.json"), at, $"{golden}: state {session} --at {mid}");
        // An old snapshot (if one is at or below mid) gives the same answer as folding the old events from 0.
        var folded = await Sva(db, "state", session, "--at", mid, "--no-snapshots", "--json");
        Assert.Equal(at.Stdout, folded.Stdout);

        SubsetLines(g.Expected($"log.{session}.jsonl"), await Sva(db, "log", session, "--json"), $"{golden}: log {session}");
        SubsetLines(g.Expected($"history.{session}.jsonl"), await Sva(db, "history", session, "--json"), $"{golden}: history {session}");

        var compare = g.Expected($"compare.{session}.json");
        if (compare is not null)
        {
            // Outcomes may change with the rules (a fidelity fix is not a compatibility break): the calls read back
            // from the old events must be the same calls.
            var r = await Sva(db, "compare", session, "--kernel", "6.7", "--kernel", "6.8", "--json");
            Assert.True(r.ExitCode is 0 or 1, r.ToString());
            var e = JsonNode.Parse(compare)!.AsObject();
            var a = r.Json();
            foreach (var k in new[] { "input", "kind", "kernel_a", "kernel_b", "calls", "rows" })
                Assert.True(JsonNode.DeepEquals(e[k], a[k]), $"{golden}: compare {session}: '{k}' was {e[k]?.ToJsonString()}, now {a[k]?.ToJsonString()}");
        }
    }

    [Theory]
    [MemberData(nameof(Golden.Names), MemberType = typeof(Golden))]
    public async Task Sessions_are_listed_and_every_chain_verifies(string golden)
    {
        var g = Golden.Get(golden);
        var db = await g.SharedCopyAsync();

        var sessions = await Sva(db, "sessions", "--json");
        Assert.Equal(0, sessions.ExitCode);
        var now = sessions.JsonLines().ToDictionary(o => (string)o["session"]!);
        foreach (var line in JsonSubset.Lines(g.Expected("sessions.jsonl")!))
        {
            var e = JsonNode.Parse(line)!.AsObject();
            var name = (string)e["session"]!;
            Assert.True(now.ContainsKey(name), $"{golden}: session {name} is not listed any more:\n{sessions}");
            var d = JsonSubset.FirstDifference(e, now[name]);
            Assert.True(d is null, $"{golden}: sessions, {name}: {d}");
        }

        var verify = await Sva(db, "verify", "--json");
        Assert.True(verify.ExitCode == 0, $"{golden}: verify of the old log failed:\n{verify}");
        var verified = verify.JsonLines().ToDictionary(o => (string)o["session"]!);
        foreach (var line in JsonSubset.Lines(g.Expected("verify.jsonl")!))
        {
            var e = JsonNode.Parse(line)!.AsObject();
            var v = verified[(string)e["session"]!];
            Assert.True((bool)v["ok"]!, $"{golden}: {v.ToJsonString()}");
            Assert.Equal((long)e["events_checked"]!, (long)v["events_checked"]!);
        }
    }

    [Theory]
    [MemberData(nameof(Golden.Names), MemberType = typeof(Golden))]
    public async Task Old_sessions_continue_and_projections_rebuild(string golden)
    {
        var g = Golden.Get(golden);
        var db = await g.RestoreAsync("w");

        // Continue a generated session past its old snapshots with new calls, and an old recorded run with its script again.
        var script = SvaCli.WriteTemp("sva-compat-tests", "continue.sva", """
            kernel 6.8
            device 0000:7e:00.0 pasids=1024
            mm compat_mm
            bind q 0000:7e:00.0 compat_mm
            invalidate compat_mm 0x10000-0x20000
            unbind q
            exit compat_mm
            drop compat_mm
            """);
        var before = (await Sva(db, "state", "gen-6.8", "--json")).Json();
        var run = await Sva(db, "run", script, "--session", "gen-6.8", "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        var outcomes = run.JsonLines();
        Assert.Equal(7, outcomes.Count);
        Assert.All(outcomes, o => Assert.True((bool)o["ok"]!, o.ToJsonString()));
        var seqs = outcomes.Select(o => (long)o["seq"]!).ToList();
        Assert.True(seqs[0] > (long)before["seq"]!, $"the new calls' seqs {string.Join(',', seqs)} follow the old end {before["seq"]}");
        Assert.Equal(seqs.Order().ToList(), seqs);

        var after = await Sva(db, "state", "gen-6.8", "--json");
        Assert.Equal(seqs[^1], (long)after.Json()["seq"]!);
        Assert.Contains("0000:7e:00.0", after.Stdout);
        Assert.Equal(after.Stdout, (await Sva(db, "state", "gen-6.8", "--no-snapshots", "--json")).Stdout);

        var example = Path.Combine(Golden.Repo, "examples", "uacce-double-open.sva");
        var again = await Sva(db, "run", example, "--session", "run-uacce-double-open", "--again", "--json");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(9, again.JsonLines().Count);

        // The old import is recognised as imported: nothing appended twice.
        foreach (var line in File.ReadAllLines(Path.Combine(g.Dir, "sessions.tsv")).Skip(1))
        {
            var parts = line.Split('\t');
            if (!parts[1].StartsWith("import ", StringComparison.Ordinal)) continue;
            var file = Path.Combine(Golden.Repo, parts[1]["import ".Length..].Trim());
            if (!File.Exists(file)) continue;
            var imp = await Sva(db, "import", file, "--session", parts[0], "--json");
            Assert.True(imp.ExitCode == 0, imp.ToString());
            var j = imp.Json();
            Assert.True((bool)j["already_imported"]!, $"{golden}: {parts[0]} imported again: {imp.Stdout}");
            Assert.Equal(0, (long)j["appended"]!);
        }

        var verify = await Sva(db, "verify", "--json");
        Assert.True(verify.ExitCode == 0, $"{golden}: verify after continuing:\n{verify}");

        var rebuild = await Sva(db, "projections", "rebuild");
        Assert.True(rebuild.ExitCode == 0, rebuild.ToString());
        var pv = await Sva(db, "projections", "verify");
        Assert.True(pv.ExitCode == 0, pv.ToString());
        var daemon = await Sva(db, "projections", "daemon", "--once");
        Assert.True(daemon.ExitCode == 0, daemon.ToString());
    }
}
