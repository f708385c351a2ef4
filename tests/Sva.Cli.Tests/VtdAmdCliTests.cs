using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>
/// Issue 19: every script of tests/data/vtd-amd run by the real CLI (<c>sva run --json</c>) under the rule sets
/// tests/data/vtd-amd/expected.txt names, for the driver it names; each run exits 0 and prints the outcomes the file
/// expects (errno, BUG, page response, wire code, rule id), and no VT-d/AMD outcome names an Arm function.
/// </summary>
[Collection("cli")]
public sealed class VtdAmdCliTests(CliFixture f)
{
    private string Dir => Path.Combine(f.Repo, "tests", "data", "vtd-amd");

    private sealed record Check(int Line, string Script, string Kernel, string Driver, string Call, string Outcome, string? Rule, int? Wire);

    private List<Check> Expected()
    {
        var checks = new List<Check>();
        var n = 0;
        foreach (var raw in File.ReadLines(Path.Combine(Dir, "expected.txt")))
        {
            n++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var t = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(t.Length >= 5, $"expected.txt:{n}: want SCRIPT KERNEL DRIVER CALL OUTCOME [rule=] [wire=]: {raw}");
            string? rule = null;
            int? wire = null;
            foreach (var opt in t.Skip(5))
            {
                if (opt.StartsWith("rule=", StringComparison.Ordinal)) rule = opt[5..];
                else if (opt.StartsWith("wire=", StringComparison.Ordinal)) wire = int.Parse(opt[5..]);
                else Assert.Fail($"expected.txt:{n}: unknown option '{opt}'");
            }
            checks.Add(new Check(n, t[0], t[1], t[2], t[3], t[4], rule, wire));
        }
        return checks;
    }

    private string Script(string prefix) => Directory.GetFiles(Dir, prefix + "-*.sva").Single();

    /// <summary>The script as the run takes it: as written, or with every <c>driver=vtd</c> rewritten.</summary>
    private string ScriptFor(string prefix, string driver)
    {
        var path = Script(prefix);
        if (driver == "as-written") return path;
        return f.WriteTemp(Path.GetFileName(path), File.ReadAllText(path).Replace("driver=vtd", $"driver={driver}"));
    }

    private static JsonObject Call(List<JsonObject> outcomes, string call)
    {
        var hash = call.IndexOf('#');
        if (hash < 0) return outcomes.Single(o => (string?)o["op"] == "bind" && (string?)o["name"] == call);
        var op = call[..hash];
        var nth = int.Parse(call[(hash + 1)..]);
        return outcomes.Where(o => (string?)o["op"] == op).ElementAt(nth - 1);
    }

    private static string Outcome(JsonObject o)
    {
        if (o["kernel_bug"] is not null) return "BUG";
        if ((bool?)o["ok"] == false) return (string?)o["errno"] is { } e ? "-" + e : "rejected";
        if ((string?)o["op"] == "fault") return (string?)o["response"] ?? ((string?)o["handled"] is { } h ? "handled:" + h : "queued");
        return "ok";
    }

    [Fact]
    public async Task every_script_prints_the_expected_outcomes_under_the_versions_it_names()
    {
        var checks = Expected();
        // every script of the directory is run at least once
        var scripts = Directory.GetFiles(Dir, "D*.sva").Select(p => Path.GetFileName(p)[..3]).Order().ToList();
        Assert.Equal(scripts, checks.Select(c => c.Script).Distinct().Order().ToList());

        var problems = new ConcurrentBag<string>();
        using var gate = new SemaphoreSlim(3);
        var runs = checks.GroupBy(c => (c.Script, c.Kernel, c.Driver)).Select(async g =>
        {
            await gate.WaitAsync();
            try
            {
                var (script, kernel, driver) = g.Key;
                var r = await f.RunAsync("run", ScriptFor(script, driver), "--kernel", kernel, "--session", CliFixture.UniqueSession($"vtdamd-{script}"), "--json");
                var at = $"{script} --kernel {kernel} driver {driver}";
                if (r.ExitCode != 0) { problems.Add($"{at}: exit {r.ExitCode}\n{r}"); return; }
                var outcomes = r.JsonLines();
                foreach (var o in outcomes)
                    if (driver != "smmuv3" && ((string?)o["rule"]?["function"] ?? "").Contains("arm_smmu", StringComparison.Ordinal))
                        problems.Add($"{at}: line {o["line"]} {o["op"]} names {o["rule"]!["function"]} ({o["rule"]!["id"]})");
                foreach (var c in g)
                {
                    var o = Call(outcomes, c.Call);
                    var got = Outcome(o);
                    var want = c.Outcome;
                    if (!(want == got || (want == "-*" && got.StartsWith('-'))))
                        problems.Add($"expected.txt:{c.Line} {at} {c.Call}: want {want}, got {got} ({o["reason"]})");
                    var rule = (string?)o["rule"]?["id"];
                    if (c.Rule is { } wr && !(wr.EndsWith('*') ? rule?.StartsWith(wr[..^1], StringComparison.Ordinal) == true : rule == wr))
                        problems.Add($"expected.txt:{c.Line} {at} {c.Call}: want rule {wr}, got {rule}");
                    if (c.Wire is { } ww && (int?)o["wire_code"] != ww)
                        problems.Add($"expected.txt:{c.Line} {at} {c.Call}: want wire code {ww}, got {o["wire_code"]?.ToJsonString() ?? "none"}");
                }
            }
            finally { gate.Release(); }
        }).ToList();
        await Task.WhenAll(runs);
        Assert.True(problems.IsEmpty, string.Join("\n", problems.OrderBy(p => p, StringComparer.Ordinal)));
    }

    [Fact]
    public async Task a_d_script_with_an_unknown_driver_is_refused_with_exit_2_naming_file_and_line()
    {
        var bad = f.WriteTemp("D05-vtd-no-iopf-queue.sva", File.ReadAllText(Script("D05")).Replace("driver=vtd", "driver=vtdx"));
        var session = CliFixture.UniqueSession("vtdamd-bad");
        var r = await f.RunAsync("run", bad, "--kernel", "5.14", "--session", session);
        Assert.True(r.ExitCode == 2, r.ToString());
        var deviceLine = File.ReadAllLines(bad).ToList().FindIndex(l => l.StartsWith("device", StringComparison.Ordinal)) + 1;
        Assert.Contains($"D05-vtd-no-iopf-queue.sva:{deviceLine}", r.Stderr);
        Assert.Contains("vtdx", r.Stderr);
        // nothing recorded
        var log = await f.RunAsync("log", session);
        Assert.NotEqual(0, log.ExitCode);
    }
}
