using System.Globalization;

namespace Sva.Domain;

/// <summary>The kinds of rows provenance is kept for: what <c>sva state --blame</c> shows and <c>sva why</c> follows.</summary>
public enum RowKind { Device, PasidEntry, Pasid, Mm, Domain, Handle, Pending }

/// <summary>One row of the state: a device, a PASID table entry (device + PASID), a PASID of the allocator, an mm, a
/// domain, a handle, or the pending page requests of a device. <see cref="Key"/> is how <see cref="SvaState.SetAt"/> keys it.</summary>
public readonly record struct RowRef(RowKind Kind, string Id, int Pasid = 0)
{
    public string Key => Kind switch
    {
        RowKind.Device => "device:" + Id,
        RowKind.PasidEntry => "pasid-entry:" + Id + "/" + Pasid.ToString(CultureInfo.InvariantCulture),
        RowKind.Pasid => "pasid:" + Pasid.ToString(CultureInfo.InvariantCulture),
        RowKind.Mm => "mm:" + Id,
        RowKind.Domain => "domain:" + Id,
        RowKind.Handle => "handle:" + Id,
        _ => "pending:" + Id,
    };

    /// <summary>How users name the row: <c>device 0000:00:03.0</c>, <c>PASID 1 of 0000:00:03.0</c>, <c>PASID 1</c> (the allocator), <c>mm m1</c> …</summary>
    public string Describe() => Kind switch
    {
        RowKind.Device => "device " + Id,
        RowKind.PasidEntry => $"PASID {Pasid.ToString(CultureInfo.InvariantCulture)} of device {Id}",
        RowKind.Pasid => $"PASID {Pasid.ToString(CultureInfo.InvariantCulture)} (allocator)",
        RowKind.Mm => "mm " + Id,
        RowKind.Domain => "domain " + Id,
        RowKind.Handle => "handle " + Id,
        _ => "pending page requests of device " + Id,
    };

    public static RowRef Device(string bdf) => new(RowKind.Device, bdf);
    public static RowRef Entry(string bdf, int pasid) => new(RowKind.PasidEntry, bdf, pasid);
    public static RowRef Allocation(int pasid) => new(RowKind.Pasid, "", pasid);
    public static RowRef Mm(string id) => new(RowKind.Mm, id);
    public static RowRef Domain(string id) => new(RowKind.Domain, id);
    public static RowRef Handle(string id) => new(RowKind.Handle, id);
    public static RowRef Pending(string bdf) => new(RowKind.Pending, bdf);
}

/// <summary>
/// "Last changed at": for every row of the state, the seq of the last event that touched it, kept in the state itself
/// (<see cref="SvaState.SetAt"/>) so that snapshots carry it and time travel answers it without reading the log backwards.
/// Pure: a function of the events only. A row that goes away leaves <see cref="SvaState.SetAt"/>.
/// </summary>
public static class Provenance
{
    /// <summary>The shape of <see cref="SvaState.SetAt"/>. A state whose <see cref="SvaState.Provenance"/> differs (a snapshot
    /// written before provenance existed reads as 0) does not know when its rows were set: time travel must not use it for blame.</summary>
    /// <summary>1: <see cref="SvaState.SetAt"/>; 2: also <see cref="SvaState.GoneAt"/> and <see cref="SvaState.FreedDomains"/> (a state
    /// of version 1 still has every set-at).</summary>
    public const int Version = 2;

    /// <summary>True when every row of the state has its set-at seq (folded from seq 0 by version 1 or later, or the empty state).</summary>
    public static bool IsComplete(SvaState s) => s.Seq == 0 || s.Provenance >= 1;

    /// <summary>True when <see cref="SvaState.GoneAt"/> and <see cref="SvaState.FreedDomains"/> name every row that went (folded from
    /// seq 0 by version 2 or later).</summary>
    public static bool KnowsGone(SvaState s) => s.Seq == 0 || s.Provenance >= 2;

    /// <summary>For a row that does not exist in the state: the last seq at which it did (the seq before the event that removed it),
    /// 0 when it never did; null when the state cannot tell (provenance older than version 2, for a row that can go).</summary>
    public static long? LastExisted(SvaState s, RowRef r)
    {
        if (Exists(s, r)) return s.Seq;
        switch (r.Kind)
        {
            case RowKind.Device or RowKind.Pending or RowKind.Mm: return 0; // never removed: not there now is never there
            case RowKind.Handle: // handles leave only through handle_freed, which FreedHandles records
                return r.Id.Length > 1 && r.Id[0] == 'H' && int.TryParse(r.Id.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                    && s.FreedHandles.TryGetValue(h, out var freed) ? freed - 1 : 0;
            case RowKind.Domain when !(r.Id.Length > 1 && r.Id[0] == 'D'
                && int.TryParse(r.Id.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var d) && d >= 1 && d < s.NextDomain):
                return 0; // domain ids come from a counter: one not handed out yet never existed
        }
        if (!KnowsGone(s)) return null;
        if (r.Kind == RowKind.Domain) return s.FreedDomains.TryGetValue(SvaState.IdNumber(r.Id), out var freedAt) ? freedAt - 1 : 0;
        return s.GoneAt.TryGetValue(r.Key, out var gone) ? gone - 1 : 0;
    }

    /// <summary>The seq of the last event ≤ the state's seq that touched the row; null when the row does not exist.</summary>
    public static long? SetAt(SvaState s, RowRef row) =>
        Exists(s, row) && s.SetAt.TryGetValue(row.Key, out var seq) ? seq : null;

    /// <summary>Every row of the state, in a stable order.</summary>
    public static IEnumerable<RowRef> Rows(SvaState s)
    {
        foreach (var d in s.Devices.Values)
        {
            yield return RowRef.Device(d.Id);
            yield return RowRef.Pending(d.Id);
            foreach (var p in d.PasidTable.Keys) yield return RowRef.Entry(d.Id, p);
        }
        foreach (var p in s.Pasids.Keys) yield return RowRef.Allocation(p);
        foreach (var m in s.Mms.Keys) yield return RowRef.Mm(m);
        foreach (var d in s.Domains.Values) yield return RowRef.Domain(d.Id);
        foreach (var h in s.Handles.Values) yield return RowRef.Handle(h.Id);
    }

    public static bool Exists(SvaState s, RowRef r) => r.Kind switch
    {
        RowKind.Device or RowKind.Pending => s.Devices.ContainsKey(r.Id),
        RowKind.PasidEntry => s.Devices.TryGetValue(r.Id, out var d) && d.PasidTable.ContainsKey(r.Pasid),
        RowKind.Pasid => s.Pasids.ContainsKey(r.Pasid),
        RowKind.Mm => s.Mms.ContainsKey(r.Id),
        RowKind.Domain => s.DomainById(r.Id) is not null,
        _ => s.HandleById(r.Id) is not null,
    };

    [ThreadStatic] private static List<RowRef>? scratch;

    /// <summary>Called by <see cref="Evolve.Apply"/> before the event is applied: the rows it touches.</summary>
    internal static List<RowRef> Before(SvaState before, SvaEvent e)
    {
        var list = scratch ??= new List<RowRef>(8);
        list.Clear();
        Touched(before, e, list);
        return list;
    }

    /// <summary>Called by <see cref="Evolve.Apply"/> after the event: each touched row that exists now is set at this seq; one that is gone leaves the map.</summary>
    internal static void After(SvaState s, List<RowRef> touched)
    {
        if (s.Seq == 1) s.Provenance = Version; // folded from the empty state: every row's set-at is known
        foreach (var r in touched)
        {
            var key = r.Key;
            if (Exists(s, r))
            {
                s.SetAt[key] = s.Seq;
                if (r.Kind is RowKind.Pasid or RowKind.PasidEntry) s.GoneAt.Remove(key); // back again (domain ids are never reused)
            }
            else if (s.SetAt.Remove(key))
            {
                if (r.Kind is RowKind.Pasid or RowKind.PasidEntry) s.GoneAt[key] = s.Seq;
                else if (r.Kind == RowKind.Domain) s.FreedDomains[SvaState.IdNumber(r.Id)] = s.Seq;
            }
        }
    }

    /// <summary>The rows an event touches (names, or changes through the state before it: an mm's refcount when its domain goes).</summary>
    public static void Touched(SvaState before, SvaEvent e, List<RowRef> into)
    {
        switch (e)
        {
            case DeviceProbed d: into.Add(RowRef.Device(d.Device)); into.Add(RowRef.Pending(d.Device)); break;
            case MmCreated m: into.Add(RowRef.Mm(m.Mm)); break;
            case VmaMapped v: into.Add(RowRef.Mm(v.Mm)); break;
            case PasidAllocated p: into.Add(RowRef.Allocation(p.Pasid)); into.Add(RowRef.Mm(p.Mm)); break;
            case PasidFreed p: into.Add(RowRef.Allocation(p.Pasid)); into.Add(RowRef.Mm(p.Mm)); break;
            case SvaDomainAllocated d: into.Add(RowRef.Domain(d.Domain)); into.Add(RowRef.Mm(d.Mm)); break;
            case DomainAllocated d: into.Add(RowRef.Domain(d.Domain)); break;
            case DomainAttached a:
                into.Add(RowRef.Domain(a.Domain));
                if (a.Pasid is int ap) foreach (var x in a.Devices) into.Add(RowRef.Entry(x, ap));
                break;
            case DomainDetached a:
                into.Add(RowRef.Domain(a.Domain));
                if (a.Pasid is int dp) foreach (var x in a.Devices) into.Add(RowRef.Entry(x, dp));
                break;
            case DomainUsersChanged u: into.Add(RowRef.Domain(u.Domain)); break;
            case DomainFreed f:
                into.Add(RowRef.Domain(f.Domain));
                if (before.DomainById(f.Domain)?.Mm is { } fm) into.Add(RowRef.Mm(fm));
                break;
            case IovaMapped m: into.Add(RowRef.Domain(m.Domain)); break;
            case IovaUnmapped u: into.Add(RowRef.Domain(u.Domain)); break;
            case HandleIssued h: into.Add(RowRef.Handle(h.Handle)); into.Add(RowRef.Mm(h.Mm)); break;
            case HandleShared h: into.Add(RowRef.Handle(h.Handle)); break;
            case HandleReleased h: into.Add(RowRef.Handle(h.Handle)); break;
            case HandleFreed h:
                into.Add(RowRef.Handle(h.Handle));
                if (before.HandleById(h.Handle) is { } obj) into.Add(RowRef.Mm(obj.Mm));
                break;
            // A VT-d intel_svm's notifier (no group, no domain) holds an mm_count reference (Evolve): the mm row changes.
            case NotifierRegistered { Group: null, Domain: null } n: into.Add(RowRef.Mm(n.Mm)); break;
            case NotifierFreed n when before.Notifiers.TryGetValue(SvaState.IdNumber(n.Notifier), out var gone) && gone is { Group: null, Domain: null }:
                into.Add(RowRef.Mm(gone.Mm));
                break;
            case ContextDescriptorAllocated c: into.Add(RowRef.Mm(c.Mm)); break;
            case ContextDescriptorFreed c: into.Add(RowRef.Mm(c.Mm)); break;
            case PasidEntryWritten w: into.Add(RowRef.Entry(w.Device, w.Pasid)); break;
            case PasidEntryCleared c: into.Add(RowRef.Entry(c.Device, c.Pasid)); break;
            case PasidEntryQuieted q: into.Add(RowRef.Entry(q.Device, q.Pasid)); break;
            case PageRequestQueued q: into.Add(RowRef.Pending(q.Device)); break;
            case PageResponseSent r: into.Add(RowRef.Pending(r.Device)); break;
            case PageResponseWithheld r: into.Add(RowRef.Pending(r.Device)); break;
            case MmReleased r: into.Add(RowRef.Mm(r.Mm)); break;
            case MmDropped d: into.Add(RowRef.Mm(d.Mm)); break;
            case MmFreed f: into.Add(RowRef.Mm(f.Mm)); break;
        }
    }
}

/// <summary>What a row refers to, for <c>sva why</c>: the objects whose creation or last change explains its value.</summary>
public static class RowReferences
{
    public static IEnumerable<RowRef> Of(SvaState s, RowRef r)
    {
        var refs = new List<RowRef>();
        switch (r.Kind)
        {
            case RowKind.PasidEntry when s.Devices.TryGetValue(r.Id, out var dev) && dev.PasidTable.TryGetValue(r.Pasid, out var e):
                if (e.Domain is not null) refs.Add(RowRef.Domain(e.Domain));
                if (e.Mm is not null) refs.Add(RowRef.Mm(e.Mm));
                refs.Add(RowRef.Allocation(r.Pasid));
                foreach (var h in s.Handles.Values)
                    if (h.Device == r.Id && h.Pasid == r.Pasid) refs.Add(RowRef.Handle(h.Id));
                refs.Add(RowRef.Device(r.Id));
                break;
            case RowKind.Handle when s.HandleById(r.Id) is { } h:
                refs.Add(RowRef.Entry(h.Device, h.Pasid));
                if (h.Domain is not null) refs.Add(RowRef.Domain(h.Domain));
                refs.Add(RowRef.Mm(h.Mm));
                refs.Add(RowRef.Allocation(h.Pasid));
                refs.Add(RowRef.Device(h.Device));
                break;
            case RowKind.Domain when s.DomainById(r.Id) is { } d:
                if (d.Mm is not null) refs.Add(RowRef.Mm(d.Mm));
                foreach (var a in d.Attached) refs.Add(RowRef.Device(a.Device));
                break;
            case RowKind.Mm when s.Mms.TryGetValue(r.Id, out var m):
                if (m.Pasid is int mp) refs.Add(RowRef.Allocation(mp));
                break;
            case RowKind.Pasid when s.Pasids.TryGetValue(r.Pasid, out var owner):
                refs.Add(RowRef.Mm(owner));
                break;
            case RowKind.Pending:
                refs.Add(RowRef.Device(r.Id));
                break;
        }
        return refs.Where(x => Provenance.Exists(s, x));
    }

    /// <summary>The row and, recursively, every row it refers to (breadth first, each once).</summary>
    public static IReadOnlyList<RowRef> Closure(SvaState s, RowRef root)
    {
        var seen = new HashSet<RowRef> { root };
        var order = new List<RowRef> { root };
        for (var i = 0; i < order.Count; i++)
            foreach (var x in Of(s, order[i]))
                if (seen.Add(x)) order.Add(x);
        return order;
    }
}
