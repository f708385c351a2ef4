using System.Reflection;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Projections;
using Sva.Projections.Queries;
using Xunit;

namespace Sva.TimeTravel.Tests;

/// <summary>
/// sva state --blame and sva why on the hand-checked session (<see cref="Scripted"/>: seqs in its comments, lines are its
/// line numbers in h.sva) at its end and at earlier seqs, on the generated session with snapshots, and on a session whose
/// snapshot has the shape an older release wrote (no provenance): it must not be believed for blame.
/// </summary>
[Collection("tt")]
public sealed class ProvenanceTests(TtFixture f)
{
    private async Task<string> RecordScripted()
    {
        var session = TtFixture.UniqueSession("ttprov");
        var r = await f.RunAsync("run", f.WriteTemp("h.sva", Scripted.Text), "--session", session);
        Assert.True(r.ExitCode == 0, r.ToString());
        return session;
    }

    private static void AssertSetAt(JsonNode? o, long seq, int line, string op, string? rule)
    {
        var at = o!["set_at"]!;
        Assert.Equal(seq, (long)at["seq"]!);
        Assert.Equal(line, (int)at["line"]!);
        Assert.Equal($"h.sva:{line}", (string?)at["source"]);
        Assert.Equal(op, (string?)at["op"]);
        Assert.Equal(rule, (string?)at["rule"]);
    }

    private async Task<JsonObject> Blamed(string session, long? at = null)
    {
        string[] args = at is long a ? ["state", session, "--at", a.ToString(), "--blame", "--json"] : ["state", session, "--blame", "--json"];
        var r = await f.RunAsync(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!.AsObject();
    }

    private static JsonNode Find(JsonObject state, string table, string id) =>
        state[table]!.AsArray().Single(x => (string?)x!["id"] == id)!;

    [Fact]
    public async Task state_blame_json_gives_every_row_the_seq_line_call_and_rule_that_set_it_at_the_end_and_earlier()
    {
        var session = await RecordScripted();

        // the end (seq 59)
        var end = await Blamed(session);
        Assert.Equal(59, (long)end["seq"]!);
        var dev1 = Find(end, "devices", "0000:6a:01.0");
        AssertSetAt(dev1, 1, 2, "device", "sim.ok");                       // a fact of the scenario: the line that declared it
        AssertSetAt(dev1["pasids"]!.AsArray().Single(), 37, 15, "bind", "g3.domain-new"); // PASID 1 again, D3 (bind d)
        AssertSetAt(Find(end, "handles", "H4"), 41, 15, "bind", "g3.domain-new");
        AssertSetAt(Find(end, "mms", "m2"), 59, 19, "drop", "mm.drop");  // PASID 2 freed at 59
        AssertSetAt(Find(end, "mms", "m1"), 41, 15, "bind", "g3.domain-new");
        AssertSetAt(Find(end, "domains", "D3"), 40, 15, "bind", "g3.domain-new");
        var alloc = end["pasid_allocator"]!.AsArray().Single()!;
        Assert.Equal(1, (int)alloc["pasid"]!);
        AssertSetAt(alloc, 5, 6, "bind", "g3.domain-new");            // m1 kept PASID 1 from bind a (line 6)
        // the pending page requests of 6a:01.0: last touched by the last fault's response (seq 35, line 14)
        Assert.Equal(35, (long)dev1["pending_set_at"]!["seq"]!);
        Assert.Equal(14, (int)dev1["pending_set_at"]!["line"]!);

        // earlier: seq 33 (after bind c)
        var at33 = await Blamed(session, 33);
        AssertSetAt(Find(at33, "handles", "H2"), 29, 11, "bind", "g3.domain-new");
        AssertSetAt(Find(at33, "handles", "H3"), 33, 12, "bind", "g3.domain-shared");
        AssertSetAt(Find(at33, "domains", "D2"), 32, 12, "bind", "g3.domain-shared");
        var entries = Find(at33, "devices", "0000:6a:02.0")["pasids"]!.AsArray();
        AssertSetAt(entries.Single(), 30, 12, "bind", "g3.domain-shared");
        // D1 went at the unbind of line 9: not in the state, so no row for it
        Assert.DoesNotContain(at33["domains"]!.AsArray(), d => (string?)d!["id"] == "D1");

        // seq 0: nothing to blame
        var zero = await Blamed(session, 0);
        Assert.Empty(zero["devices"]!.AsArray());

        // the table view: the extra columns
        var table = await f.RunAsync("state", session, "--at", "33", "--blame");
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("set at", table.Stdout);
        Assert.Contains("33 bind h.sva:12 g3.domain-shared", table.Stdout);
        Assert.Contains("PASID allocator", table.Stdout);
    }

    [Fact]
    public async Task why_walks_from_the_event_that_set_the_value_to_the_domain_mm_pasid_and_device_and_says_when_an_object_last_existed()
    {
        var session = await RecordScripted();

        // why does 6a:01.0 have PASID 1 bound to D3 at the end?
        var r = await f.RunAsync("why", session, "--device", "0000:6a:01.0", "--pasid", "1", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var steps = r.JsonLines();
        Assert.Equal([37, 41, 40, 5, 1], steps.Select(s => (long)s["seq"]!));
        Assert.Equal([15, 15, 15, 6, 2], steps.Select(s => (int)s["line"]!));
        Assert.Equal(["domain_attached", "handle_issued", "domain_users_changed", "pasid_allocated", "device_probed"], steps.Select(s => (string)s["type"]!));
        Assert.All(steps, s => Assert.Equal($"h.sva:{(int)s["line"]!}", (string?)s["source"]));
        Assert.Equal("g3.domain-new", (string?)steps[0]["rule"]);
        Assert.Contains("handle H4", steps[1]["set"]!.AsArray().Select(x => (string?)x));

        // earlier: at seq 33, who holds H3 (label c) and why
        var h3 = await f.RunAsync("why", session, "--at", "33", "--handle", "c", "--json");
        Assert.True(h3.ExitCode == 0, h3.ToString());
        var s33 = h3.JsonLines();
        Assert.Equal(33, (long)s33[0]["seq"]!);
        Assert.Equal(12, (int)s33[0]["line"]!);
        Assert.Contains(s33, s => (long)s["seq"]! == 23 && (string?)s["type"] == "pasid_allocated" && (int)s["line"]! == 11);
        Assert.Contains(s33, s => (long)s["seq"]! == 30 && (string?)s["type"] == "domain_attached");
        Assert.Equal(s33.Select(s => (long)s["seq"]!).Skip(1).OrderDescending(), s33.Select(s => (long)s["seq"]!).Skip(1)); // newest first

        // the text view
        var text = await f.RunAsync("why", session, "--at", "33", "--handle", "H3");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("seq 33  handle_issued  bind  h.sva:12  rule g3.domain-shared", text.Stdout);

        // objects that are gone: exit 2 with the last seq at which they existed
        var gone = await f.RunAsync("why", session, "--at", "50", "--device", "0000:6a:01.0", "--pasid", "2");
        Assert.Equal(2, gone.ExitCode);
        Assert.Contains("PASID 2 of device 0000:6a:01.0 does not exist at seq 50", gone.Stderr);
        Assert.Contains("last existed at seq 46", gone.Stderr);       // detached at 47 (unbind b)
        var d2 = await f.RunAsync("why", session, "--domain", "D2");
        Assert.Equal(2, d2.ExitCode);
        Assert.Contains("last existed at seq 54", d2.Stderr);         // freed at 55
        var h = await f.RunAsync("why", session, "--handle", "H3");
        Assert.Equal(2, h.ExitCode);
        Assert.Contains("last existed at seq 55", h.Stderr);          // freed at 56
        var never = await f.RunAsync("why", session, "--mm", "m9");
        Assert.Equal(2, never.ExitCode);
        Assert.Contains("mm m9 does not exist at seq 59", never.Stderr);
        Assert.Contains("never existed", never.Stderr);
        var notYet = await f.RunAsync("why", session, "--at", "10", "--handle", "H1");
        Assert.Equal(2, notYet.ExitCode);
        Assert.Contains("never existed up to seq 10", notYet.Stderr);

        // bad input
        foreach (var args in new[]
                 {
                     new[] { "why", session },
                     ["why", session, "--mm", "m1", "--handle", "H4"],
                     ["why", session, "--pasid", "1"],
                     ["why", session, "--mm", "m1", "--at", "60"],
                     ["why", session, "--mm", "m1", "--at", "-1"],
                     ["why", "no-such-session-p18", "--mm", "m1"],
                 })
        {
            var bad = await f.RunAsync(args);
            Assert.True(bad.ExitCode == 2, $"{string.Join(' ', args)}: {bad}");
            Assert.Empty(bad.Stdout);
        }
    }

    [Fact]
    public async Task blame_of_the_generated_session_with_snapshots_equals_the_greatest_touching_seq_of_the_log_at_random_seqs()
    {
        var events = f.Events;
        var touched = new List<HashSet<string>> { new() };
        var s = new SvaState();
        var t = new List<RowRef>();
        foreach (var e in events)
        {
            t.Clear();
            Provenance.Touched(s, e, t);
            touched.Add(t.Select(r => r.Key).ToHashSet());
            Evolve.Apply(s, e);
        }
        var rng = new Random(18);
        foreach (var n in new long[] { 5000, 4096, 9000, events.Count }.Concat(Enumerable.Range(0, 4).Select(_ => (long)rng.Next(1, events.Count))))
        {
            var loaded = await Blame.LoadAsync(f.Store, f.Generated, n);
            if (n >= 8192) Assert.True(loaded.SnapshotSeq > 0, $"seq {n}: the snapshot was not used");
            var rows = Blame.SetAtOfRows(loaded.State);
            Assert.NotEmpty(rows);
            foreach (var (row, seq) in rows)
            {
                var expected = n;
                while (!touched[(int)expected].Contains(row.Key)) expected--;
                Assert.True(expected == seq, $"at seq {n}: {row.Describe()} set at {seq}, the log says {expected}");
            }
            // resolving: every seq names a line of the generated script and the call of that line
            var info = await Blame.ResolveAsync(f.Store, f.Generated, rows.Values);
            foreach (var (seq, i) in info)
            {
                var call = f.Calls.First(c => c.Line == i.Line);
                Assert.Equal(call.Call.Op, i.Op);
                Assert.Equal(EventTypes.NameOf(events[(int)seq - 1]), i.Type);
            }
        }
        // through the CLI, with and without snapshots: the same answer
        var a = await f.RunAsync("state", f.Generated, "--at", "9000", "--blame", "--json");
        var b = await f.RunAsync("state", f.Generated, "--at", "9000", "--blame", "--json", "--no-snapshots");
        Assert.True(a.ExitCode == 0, a.ToString());
        Assert.Equal(a.Stdout, b.Stdout);
        Assert.Contains("\"set_at\"", a.Stdout);
    }

    [Fact]
    public async Task a_snapshot_written_before_provenance_existed_is_used_for_state_but_never_for_blame()
    {
        // The scripted session appended directly, with a snapshot at seq 41 of the shape today's main writes (no set_at).
        var logged = Scripted.Logged();
        var session = TtFixture.UniqueSession("ttoldsnap");
        var old = JsonNode.Parse(Evolve.Fold(logged.Take(41).Select(l => l.Event)).ToSnapshotJson())!.AsObject();
        Assert.True(old.Remove("set_at") && old.Remove("provenance"));
        var cmd = Guid.NewGuid();
        var batch = new AppendBatch(session, 0, cmd,
            logged.Select(l => EventCodec.Encode(l.Event, new EventMetadata(cmd, l.Source, l.Call))).ToList())
        {
            Create = new NewSession("6.8", "h.sva"),
            Snapshots = [new SnapshotToSave(41, old.ToJsonString())],
        };
        await f.Store.AppendAsync(batch);

        var plain = await Sva.Projections.Queries.TimeTravel.LoadAsync(f.Store, session, 50);
        Assert.Equal(41, plain.SnapshotSeq);                          // a cache of the state: still good for that
        var blamed = await Blame.LoadAsync(f.Store, session, 50);
        Assert.Equal(0, blamed.SnapshotSeq);                          // not for blame: folded from seq 0
        Assert.Equal(50, blamed.EventsFolded);
        Assert.Equal(41, Provenance.SetAt(blamed.State, RowRef.Handle("H4")));
        Assert.Equal(1, Provenance.SetAt(blamed.State, RowRef.Device("0000:6a:01.0")));

        var r = await f.RunAsync("state", session, "--at", "50", "--blame", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonNode.Parse(r.Stdout)!.AsObject();
        AssertSetAt(Find(o, "devices", "0000:6a:01.0"), 1, 2, "device", "sim.ok");
        AssertSetAt(Find(o, "handles", "H4"), 41, 15, "bind", "g3.domain-new");
        var w = await f.RunAsync("why", session, "--at", "45", "--handle", "d", "--json");
        Assert.True(w.ExitCode == 0, w.ToString());
        Assert.Equal(41, (long)w.JsonLines()[0]["seq"]!);
    }

    /// <summary>Counts the reads of the log's events (ReadSessionAsync, ReadSessionRangesAsync, ReadGroupsAsync) made through it; everything goes to the real store.</summary>
    public class CountingStore : DispatchProxy
    {
        public IEventStore Inner { get; private set; } = null!;
        public int EventReads { get; private set; }

        public static (IEventStore Store, CountingStore Counter) Over(IEventStore inner)
        {
            var p = Create<IEventStore, CountingStore>();
            var c = (CountingStore)(object)p;
            c.Inner = inner;
            return (p, c);
        }

        protected override object? Invoke(MethodInfo? m, object?[]? args)
        {
            if (m!.Name is nameof(IEventStore.ReadSessionAsync) or nameof(IEventStore.ReadSessionRangesAsync) or nameof(IEventStore.ReadGroupsAsync)) EventReads++;
            try { return m.Invoke(Inner, args); }
            catch (TargetInvocationException e) when (e.InnerException is not null) { throw e.InnerException; }
        }
    }

    [Fact]
    public async Task the_last_seq_at_which_a_gone_or_never_existing_object_existed_comes_from_the_state_without_reading_the_log()
    {
        var session = await RecordScripted();
        var (counted, counter) = CountingStore.Over(f.Store);
        async Task<long?> LastExisted(long at, RowRef row)
        {
            var s = (await Blame.LoadAsync(f.Store, session, at)).State;
            Assert.True(Provenance.KnowsGone(s));
            Assert.False(Provenance.Exists(s, row));
            return await Blame.LastExistedAsync(counted, session, s, row);
        }
        Assert.Equal(46, await LastExisted(50, RowRef.Entry("0000:6a:01.0", 2)));   // detached at 47 (unbind b)
        Assert.Equal(54, await LastExisted(59, RowRef.Domain("D2")));                // freed at 55
        Assert.Equal(55, await LastExisted(59, RowRef.Handle("H3")));                // freed at 56
        Assert.Null(await LastExisted(59, RowRef.Mm("m9")));
        Assert.Null(await LastExisted(59, RowRef.Device("0000:ff:1f.7")));
        Assert.Null(await LastExisted(59, RowRef.Domain("D99")));
        Assert.Null(await LastExisted(59, RowRef.Handle("H99")));
        Assert.Null(await LastExisted(59, RowRef.Entry("0000:6a:01.0", 999)));
        Assert.Null(await LastExisted(59, RowRef.Allocation(999)));
        Assert.Null(await LastExisted(10, RowRef.Handle("H1")));
        Assert.Equal(0, counter.EventReads);
    }

    [Fact]
    public async Task the_store_finds_the_call_of_each_seq_by_its_metadata_and_blame_reads_it_from_there_or_names_an_unreadable_seq()
    {
        // Hand-made metadata: calls of one event and of several, an event outside any call (its own source), a call at the
        // very end, and a call whose first event is far behind (longer than any window).
        var logged = Scripted.Logged().Take(30).Select(l => l.Event).ToList();
        var cmd = Guid.NewGuid();
        static string Meta(Guid cmd, string source, KernelCall? call) => new EventMetadata(cmd, source, call).ToJson();
        var probe = new ProbeDevice("0000:6a:01.0", 16);
        var metas = new List<string>();
        for (var i = 0; i < logged.Count; i++)
            metas.Add(i switch
            {
                0 => Meta(cmd, "x.sva:1", probe),          // seq 1: a call of one event
                1 => Meta(cmd, "x.sva:2", probe),          // seqs 2..27: one call of 26 events
                < 27 => Meta(cmd, "x.sva:2", null),
                27 => Meta(cmd, "x.sva:9", null),          // seq 28: no call, a source of its own
                _ => Meta(cmd, "x.sva:10", i == 28 ? probe : null), // seqs 29..30: the last call, to the end of the log
            });
        var session = TtFixture.UniqueSession("ttgroups");
        await f.Store.AppendAsync(new AppendBatch(session, 0, cmd, logged.Select((e, i) => EventCodec.Encode(e, metas[i])).ToList())
        {
            Create = new NewSession("6.8", "x.sva"),
        });
        var g = (await f.Store.ReadGroupsAsync(session, [30, 1, 26, 28, 2, 99], "call", "source", "rule"))!;
        Assert.Equal([1L, 2, 26, 28, 30], g.Select(x => x.Seq));            // seq order; 99 is not in the log
        Assert.Equal([1L, 2, 2, null, 29], g.Select(x => x.GroupSeq));
        Assert.Equal(26, g[2].GroupTypes.Count);
        Assert.Equal(Enumerable.Range(1, 26).Select(k => EventTypes.NameOf(logged[k])), g[2].GroupTypes);
        Assert.Equal(2, g[4].GroupTypes.Count);
        Assert.Empty(g[3].GroupTypes);
        // the same metadata (chain 2 stores it as a JSON value: jsonb renders it with blanks of its own)
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(metas[1]), System.Text.Json.Nodes.JsonNode.Parse(g[2].GroupMetadata!)), g[2].GroupMetadata);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(metas[25]), System.Text.Json.Nodes.JsonNode.Parse(g[2].Metadata)), g[2].Metadata);
        Assert.NotEqual(metas[1], metas[25]);

        var info = await Blame.ResolveAsync(f.Store, session, [1, 26, 28, 30]);
        Assert.Equal(("device", "x.sva:2", 2L), (info[26].Op, info[26].Source, info[26].CallSeq));
        Assert.Equal(CallOutcome.RuleIdOf(probe, logged.Skip(1).Take(26).ToList()), info[26].Rule);
        Assert.Null(info[28].Op);
        Assert.Equal((logged[27] as IRuled)?.Rule, info[28].Rule);
        Assert.Equal(29L, info[30].CallSeq);
        var missing = await Assert.ThrowsAsync<StoredEventException>(() => Blame.ResolveAsync(f.Store, session, [5, 31]));
        Assert.Equal(31, missing.Seq);

        // metadata that is not JSON: the server cannot read it, blame falls back to reading the events here and names the seq
        var bad = TtFixture.UniqueSession("ttgroupsbad");
        var cmd2 = Guid.NewGuid();
        await f.Store.AppendAsync(new AppendBatch(bad, 0, cmd2,
            logged.Take(5).Select((e, i) => EventCodec.Encode(e, i == 2 ? "{not json" : Meta(cmd2, $"y.sva:{i + 1}", probe))).ToList())
        {
            Create = new NewSession("6.8", "y.sva"),
        });
        Assert.Null(await f.Store.ReadGroupsAsync(bad, [2, 4], "call", "source", "rule"));
        Assert.Equal(4, (await Blame.ResolveAsync(f.Store, bad, [4]))[4].Line);
        var unreadable = await Assert.ThrowsAsync<StoredEventException>(() => Blame.ResolveAsync(f.Store, bad, [3]));
        Assert.Equal(3, unreadable.Seq);
    }

    [Fact]
    public async Task recorded_calls_carry_their_rule_and_distance_so_the_store_walks_no_call_and_blame_answers_as_the_walk_does()
    {
        // the recorder's metadata: the rule on each call's first event, the distance back to it on the others
        var recorded = await RecordScripted();
        var logged = Scripted.Logged();
        // the same events with the metadata sessions recorded before carry (the call on its first event only)
        var plain = TtFixture.UniqueSession("ttplainmeta");
        var cmd = Guid.NewGuid();
        await f.Store.AppendAsync(new AppendBatch(plain, 0, cmd,
            logged.Select(l => EventCodec.Encode(l.Event, new EventMetadata(cmd, l.Source, l.Call))).ToList())
        {
            Create = new NewSession("6.8", "h.sva"),
        });
        var all = Enumerable.Range(1, logged.Count).Select(i => (long)i).ToList();
        async Task<IReadOnlyList<GroupedEvent>> Groups(string session) =>
            (await f.Store.ReadGroupsAsync(session, all, EventMetadata.CallKey, EventMetadata.SourceKey, "rule", EventMetadata.OffsetKey, EventMetadata.RuleKey))!;
        var fast = await Groups(recorded);
        var walked = await Groups(plain);
        Assert.Equal(walked.Select(x => x.GroupSeq), fast.Select(x => x.GroupSeq));   // the same calls found
        Assert.All(fast, x => Assert.Empty(x.GroupTypes));                            // none read to its end
        Assert.Contains(walked, x => x.GroupTypes.Count > 1);
        Assert.Contains(fast, x => x.GroupSeq < x.Seq);                               // found by the distance

        var a = await Blame.ResolveAsync(f.Store, recorded, all);
        var b = await Blame.ResolveAsync(f.Store, plain, all);
        foreach (var seq in all)
            Assert.Equal((b[seq].Type, b[seq].Source, b[seq].Line, b[seq].Op, b[seq].Rule, b[seq].CallSeq, SvaJson.Serialize(b[seq].Event)),
                (a[seq].Type, a[seq].Source, a[seq].Line, a[seq].Op, a[seq].Rule, a[seq].CallSeq, SvaJson.Serialize(a[seq].Event)));

        // what was written: the rule as blame derives it from the call's events, the distance to the call's first event
        var events = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(recorded, 1, logged.Count)) events.Add(e);
        foreach (var e in events)
        {
            var m = EventCodec.Metadata(e);
            if (m.Call is { } call)
            {
                Assert.True(m.HasRule && m.CallOffset is null, $"seq {e.Seq}");
                var ofCall = logged.Skip((int)e.Seq - 1).TakeWhile((l, k) => k == 0 || l.Call is null).Select(l => l.Event).ToList();
                Assert.Equal(CallOutcome.RuleIdOf(call, ofCall), m.Rule);
            }
            else Assert.Equal(e.Seq - a[e.Seq].CallSeq, m.CallOffset);
        }
    }

    [Fact]
    public async Task a_stored_distance_that_does_not_lead_to_a_call_or_cannot_be_read_sends_blame_back_to_the_walk()
    {
        var logged = Scripted.Logged().Take(8).Select(l => l.Event).ToList();
        var probe = new ProbeDevice("0000:6a:01.0", 16);
        string Meta(Guid cmd, int i, string? first) => i switch
        {
            0 => new EventMetadata(cmd, "z.sva:1", probe) { HasRule = true, Rule = "sim.ok" }.ToJson(), // seq 1: a call of one event
            1 => new EventMetadata(cmd, "z.sva:2", probe) { HasRule = true, Rule = "sim.ok" }.ToJson(), // seqs 2..8: one call
            2 => new EventMetadata(cmd, "z.sva:2") { CallOffset = 1 }.ToJson(),
            4 when first is not null => new EventMetadata(cmd, "z.sva:2").ToJson().TrimEnd('}') + ",\"first\":" + first + "}",
            _ => new EventMetadata(cmd, "z.sva:2") { CallOffset = i - 1 }.ToJson(),
        };
        foreach (var (name, first) in new[] { ("ttdistwrong", "2"), ("ttdistfar", "99"), ("ttdistzero", "0"), ("ttdisthalf", "1.5") })
        {
            var session = TtFixture.UniqueSession(name);
            var cmd = Guid.NewGuid();
            await f.Store.AppendAsync(new AppendBatch(session, 0, cmd, logged.Select((e, i) => EventCodec.Encode(e, Meta(cmd, i, first))).ToList())
            {
                Create = new NewSession("6.8", "z.sva"),
            });
            var g = await f.Store.ReadGroupsAsync(session, [3, 5, 8], EventMetadata.CallKey, EventMetadata.SourceKey, "rule", EventMetadata.OffsetKey, EventMetadata.RuleKey);
            if (first == "1.5") Assert.Null(g);                                       // not a whole number: the server cannot read it
            else
            {
                Assert.Equal([2L, 2], new[] { g![0].GroupSeq, g[2].GroupSeq });        // good distances
                Assert.Null(g[1].GroupSeq);                                           // seq 5's distance leads to no call's first event
            }
            var info = await Blame.ResolveAsync(f.Store, session, [3, 5, 8]);         // the walk decides: every seq is in the call at 2
            Assert.All(info.Values, i => Assert.Equal((2L, "device", "z.sva:2"), (i.CallSeq!.Value, i.Op, i.Source)));
            Assert.Equal(CallOutcome.RuleIdOf(probe, logged.Skip(1).ToList()), info[5].Rule);
        }
    }
}
