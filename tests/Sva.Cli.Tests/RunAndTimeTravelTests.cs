using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Formats.Script;
using Xunit;

namespace Sva.Cli.Tests;

[Collection("cli")]
public sealed class RunAndTimeTravelTests(CliFixture f)
{
    private static List<JsonObject> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    /// <summary>What the in-memory engine says, call by call, for a script under a version.</summary>
    private static (List<SvaEvent> Events, List<(int Line, CallOutcome Outcome, long Seq)> Calls) InMemory(string path, string kernel)
    {
        var script = ScriptParser.Parse(File.ReadAllText(path), Path.GetFileName(path));
        var v = KernelVersions.Get(kernel);
        var state = new SvaState();
        var events = new List<SvaEvent>();
        var calls = new List<(int, CallOutcome, long)>();
        foreach (var line in script.Lines)
        {
            var evs = SvaKernel.Execute(v, state, line.Call);
            events.AddRange(evs);
            calls.Add((line.Line, CallOutcome.Of(line.Call, evs, state), state.Seq));
        }
        return (events, calls);
    }

    [Theory]
    [InlineData("uacce-double-open.sva", "6.8")]
    [InlineData("smmuv3-seed004.sva", "6.8")]
    [InlineData("two-devices-one-mm.sva", "6.8")]
    public async Task state_at_every_seq_equals_the_in_memory_fold_at_that_seq(string example, string kernel)
    {
        var session = CliFixture.UniqueSession("tt");
        var run = await f.RunAsync("run", f.Example(example), "--kernel", kernel, "--session", session, "--json");
        Assert.True(run.ExitCode == 0, run.ToString());
        var (events, calls) = InMemory(f.Example(example), kernel);

        // Outcomes printed by the CLI are the engine's, with the seq of each call's last event.
        var printed = JsonLines(run.Stdout);
        Assert.Equal(calls.Count, printed.Count);
        for (var i = 0; i < calls.Count; i++)
        {
            Assert.Equal(calls[i].Line, (int)printed[i]["line"]!);
            Assert.Equal(calls[i].Outcome.Ok, (bool)printed[i]["ok"]!);
            Assert.Equal(calls[i].Outcome.Errno?.ToString(), (string?)printed[i]["errno"]);
            Assert.Equal(calls[i].Seq, (long)printed[i]["seq"]!);
        }

        // Every seq in-process (what `state --at` loads: snapshots or not); a process adds nothing there. The CLI at the
        // first, a middle and the last seq: what it prints is that same document.
        string Expected(long seq) => StateView.Of(session, kernel, Evolve.Fold(events.Take((int)seq))).ToJson().ToJsonString();
        for (var seq = 0; seq <= events.Count; seq++)
            foreach (var snapshots in new[] { true, false })
            {
                var loaded = await Sva.Projections.Queries.TimeTravel.LoadAsync(f.Store, session, seq, snapshots);
                Assert.Equal(Expected(seq), StateView.Of(session, kernel, loaded.State).ToJson().ToJsonString());
            }
        foreach (var seq in new long[] { 0, events.Count / 2, events.Count })
        {
            var state = await f.RunAsync("state", session, "--at", seq.ToString(), "--json");
            Assert.True(state.ExitCode == 0, state.ToString());
            Assert.Equal(Expected(seq), JsonNode.Parse(state.Stdout)!.ToJsonString());
        }
    }

    [Fact]
    public async Task uacce_double_open_shares_the_handle_on_6_8_and_fails_ebusy_on_6_8_rc1()
    {
        var ok = JsonLines((await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8", "--json")).Stdout);
        var binds = ok.Where(o => (string)o["op"]! == "bind").ToList();
        Assert.Equal("H1", (string?)binds[0]["handle"]);
        Assert.Equal("H1", (string?)binds[1]["handle"]);
        Assert.True((bool)binds[1]["ok"]!);

        var rc1 = JsonLines((await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--json")).Stdout);
        var second = rc1.Where(o => (string)o["op"]! == "bind").ElementAt(1);
        Assert.False((bool)second["ok"]!);
        Assert.Equal("EBUSY", (string?)second["errno"]);
    }

    [Fact]
    public async Task state_json_has_the_documented_shape()
    {
        var session = CliFixture.UniqueSession("shape");
        Assert.Equal(0, (await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--session", session)).ExitCode);
        var at = await f.RunAsync("state", session, "--at", "10", "--json");
        var j = JsonNode.Parse(at.Stdout)!.AsObject();
        Assert.Equal(session, (string?)j["session"]);
        Assert.Equal(10, (long)j["seq"]!);
        Assert.Equal("6.8", (string?)j["kernel"]);
        var dev = j["devices"]!.AsArray().Single()!;
        Assert.Equal("0000:00:03.0", (string?)dev["id"]);
        Assert.Equal(1048576, (int)dev["max_pasids"]!);
        var pasid = dev["pasids"]!.AsArray().Single()!;
        Assert.Equal(1, (int)pasid["pasid"]!);
        Assert.Equal("D1", (string?)pasid["domain"]);
        Assert.Equal("m1", (string?)pasid["mm"]);
        Assert.Equal("live", (string?)j["mms"]![0]!["state"]);
        Assert.Equal(1, (int)j["domains"]![0]!["users"]!);
        Assert.Equal(2, (int)j["handles"]![0]!["users"]!);
    }

    [Fact]
    public async Task log_json_lists_every_event_with_seq_type_data_and_source_line()
    {
        var session = CliFixture.UniqueSession("log");
        Assert.Equal(0, (await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--session", session)).ExitCode);
        var lines = JsonLines((await f.RunAsync("log", session, "--json")).Stdout);
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(l => (long)l["seq"]!));
        Assert.Equal("device_probed", (string?)lines[0]["type"]);
        Assert.Equal("0000:00:03.0", (string?)lines[0]["data"]!["device"]);
        Assert.Equal("uacce-double-open.sva:7", (string?)lines[0]["source"]);
        Assert.Contains(lines, l => (string?)l["type"] == "pasid_freed");
    }

    [Fact]
    public async Task continuing_a_session_appends_after_its_last_seq_and_keeps_its_labels()
    {
        var session = CliFixture.UniqueSession("cont");
        var first = f.WriteTemp("a.sva", "device 0000:00:03.0 pasids=64\nmm m1\nbind h1 0000:00:03.0 m1\n");
        var second = f.WriteTemp("b.sva", "bind h2 0000:00:03.0 m1\nunbind h1\nunbind h2\n");
        var r1 = JsonLines((await f.RunAsync("run", first, "--session", session, "--json")).Stdout);
        var r2 = await f.RunAsync("run", second, "--session", session, "--json");
        Assert.True(r2.ExitCode == 0, r2.ToString());
        var calls = JsonLines(r2.Stdout);
        Assert.Equal((long)r1.Last()["seq"]! + 1, (long)calls[0]["first_seq"]!);
        Assert.Equal("H1", (string?)calls[0]["handle"]);          // same handle on 6.8
        Assert.All(calls, c => Assert.True((bool)c["ok"]!));       // h1 from the first run still resolves
        var wrongKernel = await f.RunAsync("run", second, "--session", session, "--kernel", "6.2");
        Assert.Equal(2, wrongKernel.ExitCode);
        Assert.Contains("recorded with kernel 6.8", wrongKernel.Stderr);
    }

    [Fact]
    public async Task two_concurrent_runs_on_one_session_lose_and_duplicate_nothing()
    {
        var session = CliFixture.UniqueSession("conc");
        var setup = f.WriteTemp("setup.sva", "device 0000:00:03.0 pasids=1048576\ndevice 0000:00:04.0 pasids=1048576\n");
        Assert.Equal(0, (await f.RunAsync("run", setup, "--session", session)).ExitCode);
        string Script(string mm, string dev) => string.Join("\n", Enumerable.Range(0, 40).Select(i =>
            $"mm {mm}{i}\nbind {mm}h{i} {dev} {mm}{i}\nfault {dev} pasid=1 addr=0x1000 access=r\nunbind {mm}h{i}\nexit {mm}{i}\ndrop {mm}{i}")) + "\n";
        var a = f.WriteTemp("a.sva", Script("a", "0000:00:03.0"));
        var b = f.WriteTemp("b.sva", Script("b", "0000:00:04.0"));
        // Small chunks make the two writers interleave and conflict.
        var runs = await Task.WhenAll(
            f.RunAsync("run", a, "--session", session, "--json", "--chunk", "1"),
            f.RunAsync("run", b, "--session", session, "--json", "--chunk", "1"));
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.ToString()));
        var outcomes = runs.SelectMany(r => JsonLines(r.Stdout)).ToList();
        Assert.Equal(480, outcomes.Count);
        Assert.All(outcomes.Where(o => (string)o["op"]! == "bind"), o => Assert.True((bool)o["ok"]!, o.ToJsonString()));

        // The log: seqs 1..N without gap or duplicate; every call's events are there exactly once.
        var seqs = new List<long>();
        await foreach (var e in f.Store.ReadSessionAsync(session)) seqs.Add(e.Seq);
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        var eventsPrinted = 2 + outcomes.Sum(o => o["events"]!.AsArray().Count);
        Assert.Equal(eventsPrinted, seqs.Count);
        var callSeqs = outcomes.Select(o => (long)o["seq"]!).ToList();
        Assert.Equal(callSeqs.Count, callSeqs.Distinct().Count());

        // Every call was decided against the state it was appended on: replaying the log decides the same.
        var verify = await f.RunAsync("projections", "verify", "--session", session);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        var end = JsonNode.Parse((await f.RunAsync("state", session, "--json")).Stdout)!;
        Assert.Empty(end["handles"]!.AsArray());
        Assert.Empty(end["pasid_allocator"]!.AsArray());
    }
}
