using System.Globalization;
using Sva.Domain;

namespace Sva.Projections.Queries;

/// <summary>One object of the simulated machine as the diff sees it: kind, id and its fields rendered as text.</summary>
public sealed record ObjectView(string Kind, string Id, IReadOnlyDictionary<string, string?> Fields)
{
    public string Key => $"{Kind}:{Id}";
}

public sealed record FieldChange(string Field, string? From, string? To);

/// <summary>What became of one object between the two seqs, and the seqs of the events that touched it.</summary>
public sealed record ObjectChange(string Kind, string Id, string What, IReadOnlyList<FieldChange> Changes,
    IReadOnlyDictionary<string, string?>? Before, IReadOnlyDictionary<string, string?>? After, IReadOnlyList<long> Seqs);

public sealed record DiffResult(long From, long To, IReadOnlyList<ObjectChange> Created, IReadOnlyList<ObjectChange> Freed,
    IReadOnlyList<ObjectChange> Changed, IReadOnlyList<ObjectChange> Transient, long EventsFolded)
{
    public IEnumerable<ObjectChange> All => Created.Concat(Freed).Concat(Changed).Concat(Transient);
}

/// <summary>
/// What changed between two seqs of a session: objects created, freed (or dropped), changed (refcounts, PASID table
/// entries, states) and created-then-freed in between, each with the events responsible. Pure: the state at the
/// first seq and the events after it in, the difference out.
/// </summary>
/// <remarks>
/// Object kinds: <c>device</c>, <c>pasid-entry</c> (device/PASID: what the IOMMU is programmed with), <c>pasid</c>
/// (the allocator), <c>slot</c> (group/PASID: the group's pasid_array), <c>mm</c>, <c>domain</c>, <c>handle</c>,
/// <c>notifier</c>, <c>cd</c> (an Arm context descriptor of an mm).
/// </remarks>
public static class StateDiff
{
    public static DiffResult Compute(SvaState atFrom, IEnumerable<(long Seq, SvaEvent Event)> events)
    {
        var before = Objects(atFrom);
        var s = atFrom.Clone();
        var from = s.Seq;
        var touched = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        long n = 0;
        foreach (var (seq, e) in events)
        {
            if (seq != s.Seq + 1) throw new ArgumentException($"expected seq {s.Seq + 1}, got {seq}");
            foreach (var k in Touched(s, e))
            {
                if (!touched.TryGetValue(k, out var l)) touched[k] = l = new();
                if (l.Count == 0 || l[^1] != seq) l.Add(seq);
            }
            Evolve.Apply(s, e);
            n++;
        }
        var after = Objects(s);

        var created = new List<ObjectChange>();
        var freed = new List<ObjectChange>();
        var changed = new List<ObjectChange>();
        var transient = new List<ObjectChange>();
        IReadOnlyList<long> Seqs(string key) => touched.TryGetValue(key, out var l) ? l : [];

        foreach (var (key, a) in after)
        {
            if (!before.TryGetValue(key, out var b))
                created.Add(new ObjectChange(a.Kind, a.Id, "created", [], null, a.Fields, Seqs(key)));
            else
            {
                var changes = Changes(b.Fields, a.Fields);
                if (changes.Count > 0) changed.Add(new ObjectChange(a.Kind, a.Id, "changed", changes, b.Fields, a.Fields, Seqs(key)));
            }
        }
        foreach (var (key, b) in before)
            if (!after.ContainsKey(key)) freed.Add(new ObjectChange(b.Kind, b.Id, "freed", [], b.Fields, null, Seqs(key)));
        foreach (var (key, seqs) in touched)
            if (!before.ContainsKey(key) && !after.ContainsKey(key))
            {
                var colon = key.IndexOf(':');
                transient.Add(new ObjectChange(key[..colon], key[(colon + 1)..], "created and freed", [], null, null, seqs));
            }

        return new DiffResult(from, s.Seq, Sort(created), Sort(freed), Sort(changed), Sort(transient), n);
    }

    private static List<ObjectChange> Sort(List<ObjectChange> l) =>
        l.OrderBy(c => KindOrder(c.Kind)).ThenBy(c => c.Seqs.Count > 0 ? c.Seqs[0] : 0).ThenBy(c => c.Id, StringComparer.Ordinal).ToList();

    private static readonly string[] kinds = ["device", "pasid-entry", "slot", "pasid", "mm", "domain", "handle", "notifier", "cd"];
    private static int KindOrder(string k) => Array.IndexOf(kinds, k) is var i and >= 0 ? i : kinds.Length;

    private static List<FieldChange> Changes(IReadOnlyDictionary<string, string?> b, IReadOnlyDictionary<string, string?> a)
    {
        var list = new List<FieldChange>();
        foreach (var (f, av) in a)
        {
            b.TryGetValue(f, out var bv);
            if (!string.Equals(av, bv, StringComparison.Ordinal)) list.Add(new FieldChange(f, bv, av));
        }
        foreach (var (f, bv) in b)
            if (!a.ContainsKey(f)) list.Add(new FieldChange(f, bv, null));
        return list;
    }

    private static string S(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string? S(int? v) => v?.ToString(CultureInfo.InvariantCulture);

    /// <summary>Every object of the state, keyed by <c>kind:id</c>.</summary>
    public static Dictionary<string, ObjectView> Objects(SvaState s)
    {
        var d = new Dictionary<string, ObjectView>(StringComparer.Ordinal);
        void Add(string kind, string id, Dictionary<string, string?> fields)
        {
            var o = new ObjectView(kind, id, fields);
            d[o.Key] = o;
        }
        foreach (var dev in s.Devices.Values)
        {
            Add("device", dev.Id, new() { ["max_pasids"] = S(dev.MaxPasids), ["group"] = S(dev.Group), ["sva"] = dev.Sva ? "on" : "off", ["iopf"] = dev.Iopf ? "on" : "off", ["pending_page_requests"] = S(dev.Partial.Count) });
            foreach (var e in dev.PasidTable.Values)
                Add("pasid-entry", $"{dev.Id}/{S(e.Pasid)}", new() { ["domain"] = e.Domain, ["mm"] = e.Mm, ["mode"] = e.Mode });
        }
        foreach (var g in s.Groups.Values)
            foreach (var (p, slot) in g.PasidArray)
                Add("slot", $"group{S(g.Id)}/{S(p)}", new() { ["domain"] = slot.Domain, ["handle"] = slot.Handle });
        foreach (var (p, mm) in s.Pasids) Add("pasid", S(p), new() { ["mm"] = mm });
        foreach (var m in s.Mms.Values)
            Add("mm", m.Id, new()
            {
                ["pasid"] = S(m.Pasid), ["state"] = StateView.MmStateName(m), ["mm_users"] = S(m.MmUsers), ["mm_count"] = S(m.MmCount),
                ["handles"] = string.Join(" ", m.Handles), ["sva_domains"] = string.Join(" ", m.SvaDomains),
            });
        foreach (var dom in s.Domains.Values)
            Add("domain", dom.Id, new()
            {
                ["type"] = dom.Type, ["name"] = dom.Name, ["mm"] = dom.Mm, ["users"] = S(dom.Users), ["asid"] = S(dom.Asid),
                ["attached"] = string.Join(" ", dom.Attached.Select(a => a.Pasid is null ? a.Device : $"{a.Device}/{S(a.Pasid)}")),
                ["mappings"] = S(dom.Mappings.Count),
            });
        foreach (var h in s.Handles.Values)
            Add("handle", h.Id, new() { ["device"] = h.Device, ["mm"] = h.Mm, ["domain"] = h.Domain, ["pasid"] = S(h.Pasid), ["users"] = S(h.Users) });
        foreach (var n in s.Notifiers.Values)
            Add("notifier", n.Id, new() { ["mm"] = n.Mm, ["group"] = S(n.Group), ["domain"] = n.Domain, ["refs"] = S(n.Refs), ["cleared"] = n.Cleared ? "yes" : "no" });
        foreach (var (mm, asid) in s.ContextDescriptors) Add("cd", mm, new() { ["asid"] = S(asid) });
        return d;
    }

    /// <summary>The objects an event may change (keys as <see cref="Objects"/> spells them), given the state before it.</summary>
    public static IEnumerable<string> Touched(SvaState before, SvaEvent e)
    {
        switch (e)
        {
            case DeviceProbed d: yield return $"device:{d.Device}"; break;
            case MmCreated m: yield return $"mm:{m.Mm}"; break;
            case VmaMapped v: yield return $"mm:{v.Mm}"; break;
            case PasidAllocated p: yield return $"pasid:{S(p.Pasid)}"; yield return $"mm:{p.Mm}"; break;
            case PasidFreed p: yield return $"pasid:{S(p.Pasid)}"; yield return $"mm:{p.Mm}"; break;
            case SvaDomainAllocated d: yield return $"domain:{d.Domain}"; yield return $"mm:{d.Mm}"; break;
            case DomainAllocated d: yield return $"domain:{d.Domain}"; break;
            case DomainAttached a:
                yield return $"domain:{a.Domain}";
                if (a.Pasid is int ap)
                {
                    if (before.Devices.TryGetValue(a.Device, out var dev)) yield return $"slot:group{S(dev.Group)}/{S(ap)}";
                    foreach (var x in a.Devices) yield return $"pasid-entry:{x}/{S(ap)}";
                }
                break;
            case DomainDetached a:
                yield return $"domain:{a.Domain}";
                if (a.Pasid is int dp)
                {
                    if (before.Devices.TryGetValue(a.Device, out var dev)) yield return $"slot:group{S(dev.Group)}/{S(dp)}";
                    foreach (var x in a.Devices) yield return $"pasid-entry:{x}/{S(dp)}";
                }
                break;
            case DomainUsersChanged u: yield return $"domain:{u.Domain}"; break;
            case DomainFreed f:
                yield return $"domain:{f.Domain}";
                if (before.DomainById(f.Domain)?.Mm is { } fm) yield return $"mm:{fm}";
                break;
            case IovaMapped m: yield return $"domain:{m.Domain}"; break;
            case IovaUnmapped u: yield return $"domain:{u.Domain}"; break;
            case HandleIssued h:
                yield return $"handle:{h.Handle}";
                yield return $"mm:{h.Mm}";
                if (h.Domain is not null && before.Devices.TryGetValue(h.Device, out var hd)) yield return $"slot:group{S(hd.Group)}/{S(h.Pasid)}";
                break;
            case HandleShared h: yield return $"handle:{h.Handle}"; break;
            case HandleReleased h: yield return $"handle:{h.Handle}"; break;
            case HandleFreed h:
            {
                yield return $"handle:{h.Handle}";
                if (before.HandleById(h.Handle) is { } obj)
                {
                    yield return $"mm:{obj.Mm}";
                    foreach (var g in before.Groups.Values)
                        foreach (var (p, slot) in g.PasidArray)
                            if (slot.Handle == h.Handle) yield return $"slot:group{S(g.Id)}/{S(p)}";
                }
                break;
            }
            case ContextDescriptorAllocated c: yield return $"cd:{c.Mm}"; yield return $"mm:{c.Mm}"; break;
            case ContextDescriptorFreed c: yield return $"cd:{c.Mm}"; yield return $"mm:{c.Mm}"; break;
            case NotifierRegistered n: yield return $"notifier:{n.Notifier}"; break;
            case NotifierRefsChanged n: yield return $"notifier:{n.Notifier}"; break;
            case NotifierFreed n: yield return $"notifier:{n.Notifier}"; break;
            case PasidEntryWritten w: yield return $"pasid-entry:{w.Device}/{S(w.Pasid)}"; break;
            case PasidEntryCleared c: yield return $"pasid-entry:{c.Device}/{S(c.Pasid)}"; break;
            case PasidEntryQuieted q: yield return $"pasid-entry:{q.Device}/{S(q.Pasid)}"; break;
            case PageRequestQueued q: yield return $"device:{q.Device}"; break;
            case PageResponseSent r: yield return $"device:{r.Device}"; break;
            case PageResponseWithheld r: yield return $"device:{r.Device}"; break;
            case MmReleased r:
                yield return $"mm:{r.Mm}";
                foreach (var n in before.Notifiers.Values) if (n.Mm == r.Mm) yield return $"notifier:{n.Id}";
                break;
            case MmDropped d: yield return $"mm:{d.Mm}"; break;
            case MmFreed f: yield return $"mm:{f.Mm}"; break;
        }
    }
}
