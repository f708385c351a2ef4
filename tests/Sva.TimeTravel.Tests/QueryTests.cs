using Sva.Domain;
using Sva.Formats.Generate;
using Sva.Projections.Queries;
using Xunit;

namespace Sva.TimeTravel.Tests;

public sealed class QueryTests
{
    private static SvaState At(long seq) => Evolve.Fold(Scripted.Logged().Take((int)seq).Select(l => l.Event));

    [Fact]
    public void the_scripted_session_has_the_seqs_its_comments_say()
    {
        var l = Scripted.Logged();
        Assert.Equal(59, l.Count);
        Assert.IsType<HandleIssued>(l[10].Event);           // 11
        Assert.Equal("H1", Assert.IsType<HandleFreed>(l[20].Event).Handle);   // 21
        Assert.IsType<PageResponseSent>(l[21].Event);       // 22
        Assert.Equal("H4", Assert.IsType<HandleIssued>(l[40].Event).Handle); // 41
        Assert.Equal("H3", Assert.IsType<HandleFreed>(l[55].Event).Handle);   // 56
    }

    // ---- predicates ----------------------------------------------------------------------------------
    [Theory]
    [InlineData("pasid(0000:6a:01.0, 1).mm == m1", 11, true)]
    [InlineData("pasid(0000:6a:01.0, 1).mm == m1", 20, false)]     // detached at 15
    [InlineData("pasid(6a:01.0, 2).mm == m2", 29, true)]           // short BDF
    [InlineData("pasid(0000:6a:01.0, 1)", 14, true)]
    [InlineData("!pasid(0000:6a:01.0, 1)", 22, true)]
    [InlineData("pasid(0000:6a:01.0, 2).mode == quiet", 43, true)]
    [InlineData("pasid(0000:6a:01.0, 2).mode == quiet", 42, false)]
    [InlineData("handle(H1).users >= 1", 11, true)]
    [InlineData("handle(a).users == 1", 11, true)]                 // by label
    [InlineData("handle(H1)", 21, false)]
    [InlineData("domain(D2).users >= 2", 32, true)]
    [InlineData("domain(D2).users >= 2", 31, false)]
    [InlineData("domains == 2", 36, true)]     // D1 freed at 20; D2 and D3
    [InlineData("domains > 1", 35, false)]
    [InlineData("mm(m2).state == exited", 42, true)]
    [InlineData("mm(m2).state == exited && handles == 3", 42, true)]
    [InlineData("mm(m2).state == dropped || seq < 5", 3, true)]
    [InlineData("owner(2) == m2", 23, true)]
    [InlineData("owner(2) == none", 59, true)]
    [InlineData("leaked-pasids > 0", 59, false)]
    [InlineData("pending-requests == 1", 34, true)]
    [InlineData("not (devices == 2)", 1, true)]
    [InlineData("device(0000:6a:01.0).pasids == 2", 41, true)]
    [InlineData("mm(m1).mm_count == mm(m2).mm_count", 41, true)]   // each: the process, one SVA domain, one CD
    [InlineData("mm(m1).mm_count > mm(m2).mm_count", 57, true)]
    [InlineData("slot(0000:6a:01.0, 1).handle == H4", 41, true)]
    [InlineData("notifier(N1).refs == 1", 9, true)]
    public void predicates_evaluate_on_the_state(string text, long seq, bool expected) =>
        Assert.Equal(expected, StatePredicate.Parse(text).Holds(At(seq)));

    [Theory]
    [InlineData("pasid(0000:6a:01.0 1).mm == m1", "takes 2 arguments")]
    [InlineData("handle(H1).colour == red", "no field 'colour'")]
    [InlineData("frob(1) > 0", "unknown accessor 'frob()'")]
    [InlineData("(domains > 1", "missing ')'")]
    [InlineData("domains >", "ends where a value was expected")]
    [InlineData("domains > 1 )", "unexpected ')'")]
    public void bad_predicates_say_where_and_what(string text, string expected)
    {
        var ex = Assert.Throws<PredicateException>(() => StatePredicate.Parse(text));
        Assert.Contains(expected, ex.Message);
        Assert.Contains("column", ex.Message);
    }

    // ---- diff ----------------------------------------------------------------------------------------
    [Fact]
    public void every_object_an_event_changes_is_among_those_it_names_as_touched()
    {
        // Completeness of StateDiff.Touched: otherwise diff would list a change without the event responsible.
        var events = WorkloadGenerator.Generate(new WorkloadOptions(6, 8, 8_000, 77)).SelectMany(c => c.Events).ToList();
        var s = new SvaState();
        var before = StateDiff.Objects(s);
        foreach (var e in events)
        {
            var touched = StateDiff.Touched(s, e).ToHashSet();
            Evolve.Apply(s, e);
            var after = StateDiff.Objects(s);
            foreach (var key in before.Keys.Union(after.Keys))
            {
                var b = before.TryGetValue(key, out var x) ? x.Fields : null;
                var a = after.TryGetValue(key, out var y) ? y.Fields : null;
                var same = a is not null && b is not null && a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
                if (!same) Assert.True(touched.Contains(key), $"seq {s.Seq} ({e.GetType().Name}) changed {key} but does not name it");
            }
            before = after;
        }
    }

    [Fact]
    public void diff_of_the_first_bind_lists_what_it_created_with_the_events_responsible()
    {
        var l = Scripted.Logged();
        var d = StateDiff.Compute(At(4), l.Skip(4).Take(7).Select(x => (x.Seq, x.Event)));
        Assert.Equal(4, d.From);
        Assert.Equal(11, d.To);
        var created = d.Created.ToDictionary(c => $"{c.Kind}:{c.Id}");
        Assert.Equal(["cd:m1", "domain:D1", "handle:H1", "notifier:N1", "pasid-entry:0000:6a:01.0/1", "pasid:1", "slot:group1/1"], created.Keys.Order());
        Assert.Equal([7L], created["pasid-entry:0000:6a:01.0/1"].Seqs);
        Assert.Equal("D1", created["pasid-entry:0000:6a:01.0/1"].After!["domain"]);
        Assert.Equal([6L, 7, 10], created["domain:D1"].Seqs);
        Assert.Equal("1", created["domain:D1"].After!["users"]);
        Assert.Equal([7L, 11], created["slot:group1/1"].Seqs);
        Assert.Equal([5L], created["pasid:1"].Seqs);
        var mm = Assert.Single(d.Changed);
        Assert.Equal("m1", mm.Id);
        Assert.Equal([5L, 6, 8, 11], mm.Seqs);
        Assert.Contains(new FieldChange("mm_count", "1", "3"), mm.Changes);   // the SVA domain's and the CD's mmgrab
        Assert.Contains(new FieldChange("pasid", null, "1"), mm.Changes);
        Assert.Empty(d.Freed);
        Assert.Empty(d.Transient);
    }

    [Fact]
    public void diff_across_bind_and_unbind_shows_the_handle_created_and_freed_in_between()
    {
        var l = Scripted.Logged();
        var d = StateDiff.Compute(At(4), l.Skip(4).Take(17).Select(x => (x.Seq, x.Event)));
        var transient = d.Transient.Select(c => $"{c.Kind}:{c.Id}").Order().ToList();
        Assert.Equal(["cd:m1", "domain:D1", "handle:H1", "notifier:N1", "pasid-entry:0000:6a:01.0/1", "slot:group1/1"], transient);
        Assert.Equal([11L, 21], d.Transient.Single(c => c.Id == "H1").Seqs);
        Assert.Equal("pasid:1", Assert.Single(d.Created).Key()); // 6.8: the PASID stays with the mm until __mmdrop
    }

    [Fact]
    public void diff_of_the_exit_and_the_unbinds_shows_refcounts_going_down_and_objects_freed()
    {
        var l = Scripted.Logged();
        var d = StateDiff.Compute(At(41), l.Skip(41).Select(x => (x.Seq, x.Event)));
        Assert.Equal(59, d.To);
        var freed = d.Freed.Select(c => $"{c.Kind}:{c.Id}").Order().ToList();
        Assert.Equal(["cd:m2", "domain:D2", "handle:H2", "handle:H3", "notifier:N2", "notifier:N3", "pasid-entry:0000:6a:01.0/2",
            "pasid-entry:0000:6a:02.0/2", "pasid:2", "slot:group1/2", "slot:group2/2"], freed);
        Assert.Equal([47L, 51, 55], d.Freed.Single(c => c.Id == "D2").Seqs.Where(s => s is 47 or 51 or 55));
        var m2 = d.Changed.Single(c => c.Id == "m2");
        Assert.Contains(new FieldChange("state", "live", "dropped"), m2.Changes);
        Assert.Contains(new FieldChange("mm_count", "3", "0"), m2.Changes);
    }

    // ---- history -------------------------------------------------------------------------------------
    [Fact]
    public void history_of_the_scripted_session_has_exact_intervals_and_flags_the_fault_after_unbind()
    {
        var h = BindingHistory.Build(Scripted.Logged());
        Assert.Equal(59, h.EventsRead);
        var i = h.Intervals.ToDictionary(x => x.Handle);
        Assert.Equal(["H1", "H2", "H3", "H4"], i.Keys);

        var h1 = i["H1"];
        Assert.Equal(("0000:6a:01.0", 1, "m1", "D1"), (h1.Device, h1.Pasid, h1.Mm, h1.Domain));
        Assert.Equal((11L, 21L), (h1.BoundSeq, h1.UnboundSeq!.Value));
        Assert.Equal(("h.sva:6", "bind a 0000:6a:01.0 m1"), (h1.BoundBy, h1.BoundCall));
        Assert.Equal(("h.sva:9", "unbind a"), (h1.UnboundBy, h1.UnboundCall));
        Assert.Equal([12L], h1.Faults.Select(t => t.Seq));
        Assert.Equal([14L, 16], h1.Invalidations.Select(t => t.Seq));       // the CPU invalidation, the unbind's own flush
        Assert.Equal([22L], h1.AfterUnbind.Select(t => t.Seq));
        Assert.Equal("h.sva:10", h1.AfterUnbind[0].Source);
        Assert.StartsWith("INVALID", h1.AfterUnbind[0].Detail); // 6.8: iopf_handler finds no domain (spec §9)

        var h2 = i["H2"];
        Assert.Equal((29L, 50L), (h2.BoundSeq, h2.UnboundSeq!.Value));
        Assert.Equal([34L, 35], h2.Faults.Select(t => t.Seq));
        Assert.Equal([44L], h2.Invalidations.Select(t => t.Seq));
        Assert.Equal([42L, 43], h2.Lifecycle.Select(t => t.Seq));
        Assert.Empty(h2.AfterUnbind);

        var h3 = i["H3"];
        Assert.Equal(("0000:6a:02.0", 2), (h3.Device, h3.Pasid));
        Assert.Equal((33L, 56L), (h3.BoundSeq, h3.UnboundSeq!.Value));
        Assert.Empty(h3.Faults);
        Assert.Equal([46L], h3.Invalidations.Select(t => t.Seq));
        Assert.Equal([42L, 45], h3.Lifecycle.Select(t => t.Seq));

        var h4 = i["H4"];
        Assert.True(h4.StillBound);
        Assert.Equal((41L, 1, "m1"), (h4.BoundSeq, h4.Pasid, h4.Mm));
        Assert.Empty(h4.Faults);
    }

    [Theory]
    [InlineData("0000:6a:02.0", null, null, 1, long.MaxValue, "H3")]
    [InlineData(null, 1, null, 1, long.MaxValue, "H1 H4")]
    [InlineData(null, null, "m2", 1, long.MaxValue, "H2 H3")]
    [InlineData(null, null, null, 45, long.MaxValue, "H2 H3 H4")]
    [InlineData(null, null, null, 1, 20, "H1")]
    [InlineData("0000:6a:01.0", 2, null, 30, 40, "H2")]
    public void history_filters(string? device, int? pasid, string? mm, long from, long to, string expected)
    {
        var h = BindingHistory.Build(Scripted.Logged(), new HistoryFilter(device, pasid, mm, from, to));
        Assert.Equal(expected, string.Join(" ", h.Intervals.Select(x => x.Handle)));
    }

    [Fact]
    public void history_of_a_generated_workload_agrees_with_the_state()
    {
        var calls = WorkloadGenerator.Generate(new WorkloadOptions(6, 8, 20_000, 99)).ToList();
        var logged = new List<LoggedEvent>();
        foreach (var c in calls)
            for (var k = 0; k < c.Events.Count; k++)
                logged.Add(new LoggedEvent(logged.Count + 1, DateTimeOffset.UnixEpoch, $"g.sva:{c.Line}", k == 0 ? c.Call : null, c.Events[k]));
        var h = BindingHistory.Build(logged);
        var end = Evolve.Fold(logged.Select(l => l.Event));
        // Still bound = the handles live at the end, with the seq that issued them.
        Assert.Equal(end.Handles.Values.Select(x => (x.Id, x.IssuedSeq)).Order(), h.Intervals.Where(x => x.StillBound).Select(x => (x.Handle, x.BoundSeq)).Order());
        Assert.Equal(logged.Count(l => l.Event is HandleIssued), h.Intervals.Count);
        // Two bindings of different mms never hold the same (device, PASID) at once.
        foreach (var g in h.Intervals.SelectMany(x => x.Devices.Select(d => (d, x))).GroupBy(p => (p.d, p.x.Pasid)))
        {
            var l = g.Select(p => p.x).OrderBy(x => x.BoundSeq).ToList();
            for (var k = 1; k < l.Count; k++)
                if (l[k].Mm != l[k - 1].Mm) Assert.True(l[k - 1].UnboundSeq < l[k].BoundSeq, $"{g.Key}: {l[k - 1].Handle} and {l[k].Handle} overlap");
        }
        // Every fault inside an interval is on its device and PASID, between its bind and unbind.
        foreach (var x in h.Intervals)
            foreach (var f in x.Faults)
            {
                Assert.InRange(f.Seq, x.BoundSeq, x.UnboundSeq ?? long.MaxValue);
                var e = logged[(int)f.Seq - 1].Event;
                var (dev, pasid) = e switch { PageResponseSent r => (r.Device, r.Pasid), PageRequestQueued q => (q.Device, q.Pasid), PageResponseWithheld w => (w.Device, w.Pasid), _ => ("?", null) };
                Assert.Contains(dev, x.Devices);
                Assert.Equal(x.Pasid, pasid);
            }
        // The generator's stray faults (a device using a PASID after its unbind) are found.
        Assert.Contains(h.Intervals, x => x.AfterUnbind.Count > 0);
    }
}

internal static class ChangeKey
{
    public static string Key(this ObjectChange c) => $"{c.Kind}:{c.Id}";
}
