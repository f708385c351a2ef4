using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Formats.Generate;
using Sva.Projections;
using Sva.Projections.Queries;
using TT = Sva.Projections.Queries.TimeTravel;
using Xunit;

namespace Sva.TimeTravel.Tests;

[Collection("tt")]
public sealed class SessionTests(TtFixture f)
{
    private static List<long> RandomSeqs(long max, int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (long)rng.Next(1, (int)max + 1)).Append(max).Append(1).ToList();
    }

    [Fact]
    public async Task generate_records_exactly_the_generators_events_with_snapshots_at_the_policy_seqs()
    {
        var expected = f.Events;
        var info = await f.Store.GetSessionAsync(f.Generated);
        Assert.Equal(expected.Count, info!.Version);
        var seq = 0;
        await foreach (var e in f.Store.ReadSessionAsync(f.Generated))
        {
            Assert.Equal(Sva.Domain.Json.SvaJson.Serialize(expected[seq]), Sva.Domain.Json.SvaJson.Serialize(EventCodec.Decode(e)));
            seq++;
        }
        Assert.Equal(expected.Count, seq);
        // One snapshot right after the call that crosses each multiple of the interval.
        var snaps = (await f.Store.ListSnapshotsAsync(f.Generated)).Select(s => s.Seq).ToList();
        var every = Sva.Commands.SnapshotPolicy.DefaultEvery;
        var want = new List<long>();
        long at = 0;
        foreach (var c in f.Calls)
        {
            var before = at;
            at += c.Events.Count;
            if (at / every > before / every) want.Add(at);
        }
        Assert.Equal(want, snaps);
    }

    [Fact]
    public async Task generate_session_equals_sva_run_of_the_generated_script()
    {
        var opts = new WorkloadOptions(4, 5, 3_000, 21);
        var script = f.WriteTemp(GenerateVerb(opts), "");
        var w = await f.RunAsync("generate", "--devices", "4", "--mms", "5", "--events", "3000", "--seed", "21", "-o", script);
        Assert.True(w.ExitCode == 0, w.ToString());
        var gen = TtFixture.UniqueSession("gen");
        var run = TtFixture.UniqueSession("run");
        var g = await f.RunAsync("generate", "--devices", "4", "--mms", "5", "--events", "3000", "--seed", "21", "--session", gen, "--chunk", "500");
        Assert.True(g.ExitCode == 0, g.ToString());
        var r = await f.RunAsync("run", script, "--session", run, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var a = new List<Sva.EventStore.StoredEvent>();
        var b = new List<Sva.EventStore.StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(gen)) a.Add(e);
        await foreach (var e in f.Store.ReadSessionAsync(run)) b.Add(e);
        Assert.Equal(b.Count, a.Count);
        for (var i = 0; i < a.Count; i++)
        {
            Assert.Equal(b[i].Type, a[i].Type);
            Assert.Equal(b[i].DataJson, a[i].DataJson);
            var ma = (JsonObject)JsonNode.Parse(a[i].Metadata)!;
            var mb = (JsonObject)JsonNode.Parse(b[i].Metadata)!;
            ma.Remove("cmd");
            mb.Remove("cmd");
            Assert.Equal(mb.ToJsonString(), ma.ToJsonString()); // same source file:line, same call on each call's first event
        }
        // The read model, caught up by the writer after its last batch, equals the log.
        await f.Store.CatchUpAsync(TimeSpan.FromMinutes(2));
        Assert.Empty(await ReadModel.VerifySessionAsync(f.Store, gen));
    }

    private static string GenerateVerb(WorkloadOptions o) => Sva.Replay.Verbs.GenerateVerb.ScriptName(o with { Kernel = "6.8" });

    [Fact]
    public async Task state_at_random_seqs_is_the_same_with_snapshots_without_them_and_after_deleting_them()
    {
        var events = f.Events;
        var session = TtFixture.UniqueSession("ttdel");
        var g = await f.RunAsync("generate", "--devices", "6", "--mms", "10", "--events", "30000", "--seed", "5", "--session", session);
        Assert.True(g.ExitCode == 0, g.ToString());
        Assert.True((await f.Store.ListSnapshotsAsync(session)).Count >= 5);
        var seqs = RandomSeqs(events.Count, 25, 3);
        var withSnapshots = new Dictionary<long, string>();
        foreach (var s in seqs)
        {
            var expected = TtFixture.StateJson(events, s);
            var a = await TT.LoadAsync(f.Store, session, s, true);
            var b = await TT.LoadAsync(f.Store, session, s, false);
            Assert.Equal(expected, a.State.ToSnapshotJson());
            Assert.Equal(expected, b.State.ToSnapshotJson());
            Assert.Equal(0, b.SnapshotSeq);
            if (s >= 4096) Assert.True(a.SnapshotSeq > 0 && a.EventsFolded < 4096 + 64, $"seq {s}: snapshot {a.SnapshotSeq}, {a.EventsFolded} folded");
            withSnapshots[s] = a.State.ToSnapshotJson();
        }
        // The CLI, both ways, at a few of them.
        foreach (var s in seqs.Take(4))
        {
            var x = await f.RunAsync("state", session, "--at", s.ToString(), "--json");
            var y = await f.RunAsync("state", session, "--at", s.ToString(), "--json", "--no-snapshots");
            Assert.True(x.ExitCode == 0, x.ToString());
            Assert.Equal(StateView.Of(session, "6.8", Evolve.Fold(events.Take((int)s))).ToJson().ToJsonString(), JsonNode.Parse(x.Stdout)!.ToJsonString());
            Assert.Equal(JsonNode.Parse(x.Stdout)!.ToJsonString(), JsonNode.Parse(y.Stdout)!.ToJsonString());
        }
        // Snapshots are a cache: delete them, every answer stays.
        Assert.True(await f.Store.DeleteSnapshotsAsync(session) >= 5);
        Assert.Empty(await f.Store.ListSnapshotsAsync(session));
        foreach (var s in seqs)
        {
            var a = await TT.LoadAsync(f.Store, session, s, true);
            Assert.Equal(0, a.SnapshotSeq);
            Assert.Equal(withSnapshots[s], a.State.ToSnapshotJson());
        }
    }

    [Fact]
    public async Task a_corrupt_snapshot_is_ignored_not_believed()
    {
        var session = TtFixture.UniqueSession("ttbad");
        var g = await f.RunAsync("generate", "--devices", "3", "--mms", "4", "--events", "9000", "--seed", "8", "--session", session);
        Assert.True(g.ExitCode == 0, g.ToString());
        var events = WorkloadGenerator.Generate(new WorkloadOptions(3, 4, 9000, 8)).SelectMany(c => c.Events).ToList();
        var snap = (await f.Store.ListSnapshotsAsync(session))[0].Seq;
        // Forge the snapshot row (as the writer could): its digest no longer matches the one the log recorded.
        await using (var ds = Npgsql.NpgsqlDataSource.Create(f.ConnectionString))
        await using (var cmd = ds.CreateCommand("UPDATE sva_snapshots SET bytes = $2 WHERE session = $1 AND seq = $3"))
        {
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = session });
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Sva.EventStore.SnapshotCodec.Encode("{\"seq\": 1}") });
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = snap });
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }
        var a = await TT.LoadAsync(f.Store, session, snap + 10, true);
        Assert.Equal(TtFixture.StateJson(events, snap + 10), a.State.ToSnapshotJson());
        Assert.NotEqual(snap, a.SnapshotSeq); // the forged one was not used
        var v = await f.RunAsync("verify", session);
        Assert.Equal(1, v.ExitCode);
        Assert.Contains($"snapshot at seq {snap}", v.Stdout + v.Stderr);
        // Snapshots are a cache: dropping them leaves the default database verifying clean again.
        Assert.True(await f.Store.DeleteSnapshotsAsync(session) > 0);
        Assert.Equal(0, (await f.RunAsync("verify", session)).ExitCode);
    }

    [Fact]
    public async Task state_at_time_resolves_to_the_last_event_recorded_at_or_before_it()
    {
        var session = TtFixture.UniqueSession("tttime");
        var first = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--session", session);
        Assert.True(first.ExitCode == 0, first.ToString());
        // No sleep: recorded_at is the server's commit-time timestamp (microseconds), so two appends by two processes
        // one after the other are apart already (asserted below).
        var second = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--session", session, "--again");
        Assert.True(second.ExitCode == 0, second.ToString());
        var rows = new List<Sva.EventStore.StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(session)) rows.Add(e);
        var times = rows.Select(r => r.RecordedAt).Distinct().Order().ToList();
        Assert.True(times.Count >= 2);
        foreach (var t in times.Append(times[^1].AddSeconds(5)).Append(times[0].AddMilliseconds(-1)).Append(times[0].AddTicks((times[1] - times[0]).Ticks / 2)))
        {
            var expected = rows.Where(r => r.RecordedAt <= t).Select(r => r.Seq).DefaultIfEmpty(0).Max();
            Assert.Equal(expected, await f.Store.SeqAtTimeAsync(session, t));
            var cli = await f.RunAsync("state", session, "--at-time", t.ToString("O"), "--json");
            Assert.True(cli.ExitCode == 0, cli.ToString());
            Assert.Equal(expected, (long)JsonNode.Parse(cli.Stdout)!["seq"]!);
        }
        var bad = await f.RunAsync("state", session, "--at-time", "last tuesday");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("ISO 8601", bad.Stderr);
    }

    // ---- bisect ---------------------------------------------------------------------------------------
    private static long? FirstLinear(List<SvaEvent> events, StatePredicate p)
    {
        var s = new SvaState();
        if (p.Holds(s)) return 0;
        foreach (var e in events)
        {
            Evolve.Apply(s, e);
            if (p.Holds(s)) return s.Seq;
        }
        return null;
    }

    /// <summary>Predicates that become true somewhere in the middle of the generated session and stay true.</summary>
    private string PredicateFor(string kind)
    {
        var events = f.Events;
        var freed = events.Count(e => e is HandleFreed);
        var dropped = events.OfType<MmDropped>().Select(d => d.Mm).ToList();
        var created = events.OfType<MmCreated>().Select(d => d.Mm).ToList();
        var freedMms = events.OfType<MmFreed>().Select(d => d.Mm).ToList();
        return kind switch
        {
            "few-freed" => "freed-handles >= 3",
            "half-freed" => $"freed-handles >= {freed / 2}",
            "dropped" => $"mm({dropped[dropped.Count / 2]}).state == dropped",
            "created" => $"mm({created[^1]})",
            "freed-mm" => $"mm({freedMms[freedMms.Count / 3]}).mm_count == 0 && mm({freedMms[freedMms.Count / 3]}).state == dropped",
            _ => "seq >= 12345",
        };
    }

    [Theory]
    [InlineData("few-freed")]
    [InlineData("half-freed")]
    [InlineData("dropped")]
    [InlineData("created")]
    [InlineData("freed-mm")]
    [InlineData("seq")]
    public async Task bisect_finds_the_seq_a_linear_scan_finds(string kind)
    {
        var predicate = PredicateFor(kind);
        var events = f.Events;
        var p = StatePredicate.Parse(predicate);
        var expected = FirstLinear(events, p);
        Assert.NotNull(expected);
        var r = await Bisect.UntilAsync(f.Store, f.Generated, events.Count, p.Holds);
        Assert.Equal(expected, r.Seq);
        Assert.True(r.EventsFolded <= 4096 + 256, $"{r.EventsFolded} events folded: the search did not narrow down to two snapshots");
        var cli = await f.RunAsync("bisect", f.Generated, "--until", predicate, "--json");
        Assert.True(cli.ExitCode == 0, cli.ToString());
        var o = cli.JsonLines().Single();
        Assert.Equal(expected, (long)o["seq"]!);
        Assert.Equal(expected, (long)o["event"]!["seq"]!);
        Assert.NotNull((string?)o["event"]!["source"]);
    }

    [Fact]
    public async Task bisect_linear_is_exact_for_a_predicate_that_comes_and_goes()
    {
        var events = f.Events;
        var p = StatePredicate.Parse("pending-requests >= 1");
        var expected = FirstLinear(events, p);
        Assert.NotNull(expected);
        var cli = await f.RunAsync("bisect", f.Generated, "--until", "pending-requests >= 1", "--linear", "--json");
        Assert.True(cli.ExitCode == 0, cli.ToString());
        Assert.Equal(expected, (long)cli.JsonLines().Single()["seq"]!);
        var never = await f.RunAsync("bisect", f.Generated, "--until", "devices > 100");
        Assert.Equal(1, never.ExitCode);
        var bad = await f.RunAsync("bisect", f.Generated, "--until", "devices >");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("column", bad.Stderr);
    }

    [Fact]
    public async Task bisect_finding_names_the_first_finding_of_the_invariant_checks()
    {
        var events = f.Events;
        var findings = Checks.Run(events);
        var first = findings.Where(x => x.Kind == FindingKinds.UseAfterFree).OrderBy(x => x.Seq).FirstOrDefault();
        Assert.NotNull(first); // the generator's double unbinds
        var cli = await f.RunAsync("bisect", f.Generated, "--finding", "use-after-free", "--json");
        Assert.True(cli.ExitCode == 0, cli.ToString());
        var o = cli.JsonLines().Single();
        Assert.Equal(first.Seq, (long)o["seq"]!);
        Assert.Equal(first.Message, (string?)o["message"]);
        var unknown = await f.RunAsync("bisect", f.Generated, "--finding", "nonsense");
        Assert.Equal(2, unknown.ExitCode);
    }

    // ---- diff and history through the CLI ----------------------------------------------------------------
    private async Task<string> RecordScripted()
    {
        var session = TtFixture.UniqueSession("tth");
        var r = await f.RunAsync("run", f.WriteTemp("h.sva", Scripted.Text), "--session", session);
        Assert.True(r.ExitCode == 0, r.ToString());
        return session;
    }

    [Fact]
    public async Task diff_cli_lists_the_bind_with_the_events_responsible()
    {
        var session = await RecordScripted();
        var r = await f.RunAsync("diff", session, "--from", "4", "--to", "11", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(7, (long)o["events"]!);
        var created = o["created"]!.AsArray().ToDictionary(x => $"{x!["kind"]}:{x["id"]}", x => x!);
        Assert.Equal("D1", (string?)created["pasid-entry:0000:6a:01.0/1"]["after"]!["domain"]);
        Assert.Equal("[7]", created["pasid-entry:0000:6a:01.0/1"]["seqs"]!.ToJsonString());
        Assert.Equal("[11]", created["handle:H1"]["seqs"]!.ToJsonString());
        var mm = o["changed"]!.AsArray().Single()!;
        Assert.Equal("m1", (string?)mm["id"]);
        Assert.Contains(mm["changes"]!.AsArray(), c => (string?)c!["field"] == "mm_count" && (string?)c["from"] == "1" && (string?)c["to"] == "3");
        var table = await f.RunAsync("diff", session, "--from", "41");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("freed", table.Stdout);
        Assert.Contains("live → dropped", table.Stdout);
        var bad = await f.RunAsync("diff", session, "--from", "30", "--to", "20");
        Assert.Equal(2, bad.ExitCode);
    }

    [Fact]
    public async Task history_cli_answers_who_held_the_pasid_and_what_touched_it_after_unbind()
    {
        var session = await RecordScripted();
        var r = await f.RunAsync("history", session, "--device", "6a:01.0", "--pasid", "1", "--json");
        Assert.Equal(1, r.ExitCode); // touched after unbind
        var lines = r.JsonLines();
        Assert.Equal(["H1", "H4"], lines.Select(l => (string)l["handle"]!));
        var h1 = lines[0];
        Assert.Equal(11, (long)h1["bound_seq"]!);
        Assert.Equal(21, (long)h1["unbound_seq"]!);
        Assert.Equal("h.sva:6", (string?)h1["bound_by"]);
        Assert.Equal("unbind a", (string?)h1["unbound_call"]);
        Assert.Equal("[12]", new JsonArray(h1["faults"]!.AsArray().Select(x => (JsonNode)JsonValue.Create((long)x!["seq"]!)).ToArray()).ToJsonString());
        Assert.Equal(22, (long)h1["after_unbind"]![0]!["seq"]!);
        Assert.True((bool)lines[1]["still_bound"]!);

        var clean = await f.RunAsync("history", session, "--mm", "m2", "--csv");
        Assert.Equal(0, clean.ExitCode);
        var rows = clean.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("device,devices,pasid,mm,handle", rows[0]);
        Assert.Equal(3, rows.Length);
        Assert.StartsWith("0000:6a:01.0,0000:6a:01.0,2,m2,H2,b,D2,29,", rows[1]);
        Assert.Contains(",50,", rows[1]);

        var table = await f.RunAsync("history", session);
        Assert.Contains("touched after unbind", table.Stdout);
        Assert.Contains("still bound", table.Stdout);
    }

    [Fact]
    public async Task history_cli_on_the_generated_session_reports_every_binding()
    {
        var r = await f.RunAsync("history", f.Generated, "--json");
        Assert.True(r.ExitCode is 0 or 1, r.ToString());
        var bindings = r.JsonLines().Where(l => (string?)l["record"] == "binding").ToList();
        Assert.Equal(f.Events.Count(e => e is HandleIssued), bindings.Count);
        var end = Evolve.Fold(f.Events);
        Assert.Equal(end.Handles.Count, bindings.Count(b => (bool)b["still_bound"]!));
        Assert.Equal(r.ExitCode == 1, bindings.Any(b => b["after_unbind"]!.AsArray().Count > 0));
    }
}
