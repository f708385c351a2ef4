using System.Globalization;
using System.Text.Json.Nodes;

namespace Sva.Domain.Tests;

/// <summary>
/// Provenance (sva state --blame, sva why): the state keeps, per row, the seq of the last event that touched it.
/// Properties over the same random sessions as <see cref="PropertyTests"/>.
/// </summary>
public partial class PropertyTests
{
    /// <summary>Each row's value as text, written here independently of the Domain's provenance code.</summary>
    private static Dictionary<string, string> RowValues(SvaState s)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        string I(int? v) => v?.ToString(CultureInfo.InvariantCulture) ?? "-";
        foreach (var dev in s.Devices.Values)
        {
            d[$"device:{dev.Id}"] = $"{dev.MaxPasids} {dev.Group} {dev.Sva} {dev.Iopf} {dev.Iommu} {dev.Driver} {dev.Inferred}";
            d[$"pending:{dev.Id}"] = string.Join(";", dev.Partial.Select(p => $"{I(p.Pasid)} {I(p.Group)} {p.Address} {p.Access} {p.Seq}"));
            foreach (var e in dev.PasidTable.Values) d[$"pasid-entry:{dev.Id}/{I(e.Pasid)}"] = $"{e.Domain} {e.Mm} {e.Mode}";
        }
        foreach (var (p, mm) in s.Pasids) d[$"pasid:{I(p)}"] = mm;
        foreach (var m in s.Mms.Values)
            d[$"mm:{m.Id}"] = $"{I(m.Pasid)} {m.State} {m.Lam} {m.Inferred} {m.Ordinal} {m.MmUsers} {m.MmCount} [{string.Join(" ", m.SvaDomains)}] [{string.Join(" ", m.Handles)}] [{string.Join(" ", m.Vmas.Select(v => $"{v.Start}-{v.End}{v.Prot}"))}]";
        foreach (var x in s.Domains.Values)
            d[$"domain:{x.Id}"] = $"{x.Type} {x.Name} {x.Mm} {x.Users} {I(x.Asid)} [{string.Join(" ", x.Attached.Select(a => $"{a.Device}/{I(a.Pasid)}"))}] [{string.Join(" ", x.Mappings.Select(r => $"{r.Iova}-{r.End}@{r.Paddr}"))}]";
        foreach (var h in s.Handles.Values) d[$"handle:{h.Id}"] = $"{h.Device} {h.Mm} {h.Domain} {h.Pasid} {h.Users}";
        return d;
    }

    [Fact]
    public void for_every_row_at_every_seq_set_at_is_the_greatest_seq_at_or_below_whose_event_touched_the_row() =>
        Check(x =>
        {
            var (events, _, _) = Execute(x.Version, x.Calls);
            // The log, event by event: which rows each event touched (named, given the state before it), which rows changed.
            var s = new SvaState();
            var touchedAt = new List<HashSet<string>> { new() }; // index = seq
            var before = RowValues(s);
            foreach (var e in events)
            {
                var t = new List<RowRef>();
                Provenance.Touched(s, e, t);
                var keys = t.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
                Evolve.Apply(s, e);
                var after = RowValues(s);
                // completeness of "touched": a row whose value changed (or that appeared or went) is among those the event touched
                foreach (var k in before.Keys.Union(after.Keys))
                    if (!(before.TryGetValue(k, out var b) && after.TryGetValue(k, out var a) && a == b))
                        Assert.True(keys.Contains(k), $"seq {s.Seq} ({e.GetType().Name}) changed {k} but does not name it");
                touchedAt.Add(keys);
                before = after;

                // at this seq: every row's set-at is the greatest seq <= it whose event touched the row; rows that exist only
                Assert.True(Provenance.IsComplete(s));
                var rows = Provenance.Rows(s).ToList();
                Assert.Equal(after.Keys.Order(StringComparer.Ordinal), rows.Select(r => r.Key).Order(StringComparer.Ordinal));
                foreach (var r in rows)
                {
                    var expected = Enumerable.Range(1, (int)s.Seq).Last(k => touchedAt[k].Contains(r.Key));
                    Assert.Equal(expected, Provenance.SetAt(s, r));
                }
                Assert.True(s.SetAt.Keys.All(k => after.ContainsKey(k)), "a row that is gone keeps a set-at");
            }
            return true;
        });

    [Fact]
    public void for_every_row_that_went_the_state_knows_the_last_seq_at_which_it_existed_and_a_row_never_seen_never_existed() =>
        Check(x =>
        {
            var (events, _, _) = Execute(x.Version, x.Calls);
            var s = new SvaState();
            var lastSeen = new Dictionary<string, (RowRef Row, long Seq)>(StringComparer.Ordinal); // computed here, not by Provenance
            foreach (var e in events)
            {
                Evolve.Apply(s, e);
                var now = RowValues(s);
                foreach (var r in Provenance.Rows(s)) lastSeen[r.Key] = (r, s.Seq);
                Assert.True(Provenance.KnowsGone(s));
                foreach (var (key, (row, seq)) in lastSeen)
                {
                    if (now.ContainsKey(key)) { Assert.Equal(s.Seq, Provenance.LastExisted(s, row)); continue; }
                    Assert.Equal(seq, Provenance.LastExisted(s, row));
                }
                Assert.True(s.GoneAt.Keys.All(k => !now.ContainsKey(k) && lastSeen.ContainsKey(k)), "gone_at names a row that exists or never did");
                foreach (var never in new[] { RowRef.Device("ffff:ff:1f.7"), RowRef.Pending("ffff:ff:1f.7"), RowRef.Mm("never"), RowRef.Handle("H99999"),
                             RowRef.Handle("b-never"), RowRef.Domain("D99999"), RowRef.Domain("never"), RowRef.Allocation(99999),
                             RowRef.Entry("ffff:ff:1f.7", 1) }.Concat(s.Devices.Keys.Select(d => RowRef.Entry(d, 99999))))
                    Assert.Equal(0, Provenance.LastExisted(s, never));
            }
            // and a snapshot carries it
            var read = SvaState.FromSnapshotJson(s.ToSnapshotJson());
            Assert.Equal(s.GoneAt, read.GoneAt);
            Assert.Equal(s.FreedDomains, read.FreedDomains);
            Assert.True(Provenance.KnowsGone(read));
            return true;
        });

    [Fact]
    public void a_snapshot_of_provenance_version_1_keeps_its_set_at_but_does_not_claim_to_know_which_rows_went()
    {
        var k = KernelVersions.Get("6.8");
        var s = new SvaState();
        foreach (var c in new KernelCall[] { new ProbeDevice("0000:00:03.0", 16), new CreateMm("m1") })
            Evolve.Fold(SvaKernel.Execute(k, s, c), s);
        // the shape written by c79b7f6..this change: set_at and provenance 1, no gone_at
        var old = JsonNode.Parse(s.ToSnapshotJson())!.AsObject();
        Assert.True(old.Remove("gone_at") && old.Remove("freed_domains"));
        old["provenance"] = 1;
        var read = SvaState.FromSnapshotJson(old.ToJsonString());
        Assert.True(Provenance.IsComplete(read));
        Assert.False(Provenance.KnowsGone(read));
        Assert.NotNull(Provenance.SetAt(read, RowRef.Device("0000:00:03.0")));
        Assert.Equal(Provenance.SetAt(s, RowRef.Device("0000:00:03.0")), Provenance.SetAt(read, RowRef.Device("0000:00:03.0")));
        Assert.Null(Provenance.LastExisted(read, RowRef.Allocation(1)));   // cannot tell: the log must be read
        Assert.Equal(0, Provenance.LastExisted(read, RowRef.Device("ffff:ff:1f.7"))); // devices never go
    }

    [Fact]
    public void set_at_survives_snapshots_folding_from_any_snapshot_gives_the_same_provenance() =>
        Check(x =>
        {
            var (events, full, _) = Execute(x.Version, x.Calls);
            var cut = events.Count / 3;
            var head = Evolve.Fold(events.Take(cut));
            var resumed = Evolve.Fold(events.Skip(cut), SvaState.FromSnapshotJson(head.ToSnapshotJson()));
            Assert.Equal(full.SetAt, resumed.SetAt);
            Assert.Equal(full.ToSnapshotJson(), resumed.ToSnapshotJson());
            Assert.True(Provenance.IsComplete(resumed));
            return true;
        });

    [Fact]
    public void a_snapshot_without_provenance_written_by_an_older_release_reads_as_unknown_not_as_no_rows_set()
    {
        var s = Evolve.Fold(SvaKernel.Execute(KernelVersions.Get("6.8"), new SvaState(), new ProbeDevice("0000:00:03.0", 16)));
        Assert.True(Provenance.IsComplete(s));
        Assert.Equal(1, Provenance.SetAt(s, RowRef.Device("0000:00:03.0")));
        // the shape of today's main: no set_at, no provenance
        var old = JsonNode.Parse(s.ToSnapshotJson())!.AsObject();
        old.Remove("set_at");
        old.Remove("provenance");
        var read = SvaState.FromSnapshotJson(old.ToJsonString());
        Assert.False(Provenance.IsComplete(read));
        // folding on top of it does not make it complete: the rows it had are still of unknown provenance
        Evolve.Apply(read, new MmCreated("m1", false, false));
        Assert.False(Provenance.IsComplete(read));
        Assert.Null(Provenance.SetAt(read, RowRef.Device("0000:00:03.0")));
    }
}
