using Sva.Domain;

namespace Sva.Projections.Queries;

/// <summary>Which bindings to report. Null members do not filter; [From, To] keeps intervals that overlap it.</summary>
public sealed record HistoryFilter(string? Device = null, int? Pasid = null, string? Mm = null, long From = 1, long To = long.MaxValue)
{
    public bool Matches(BindingInterval b) =>
        (Device is null || b.Devices.Contains(Device, StringComparer.Ordinal))
        && (Pasid is null || b.Pasid == Pasid)
        && (Mm is null || b.Mm == Mm);

    public bool Overlaps(BindingInterval b) => b.BoundSeq <= To && (b.UnboundSeq ?? long.MaxValue) >= From;

    public bool MatchesKey(string device, int? pasid) =>
        (Device is null || Device == device) && (Pasid is null || Pasid == pasid);
}

/// <summary>One event that touched a binding (or a (device, PASID) pair): seq, time, event type, a short description, the source line.</summary>
public sealed record Touch(long Seq, DateTimeOffset At, string Type, string Detail, string? Source);

/// <summary>
/// One binding interval: a handle (bond) from the bind that issued it to the unbind that freed it (or still bound),
/// the devices programmed with its PASID, and what happened to it in between.
/// </summary>
public sealed class BindingInterval
{
    public required string Handle { get; init; }
    public required string Device { get; init; }
    /// <summary>Every device programmed at this PASID by the bind (the whole IOMMU group).</summary>
    public required IReadOnlyList<string> Devices { get; init; }
    public required string Mm { get; init; }
    public required int Pasid { get; init; }
    public string? Domain { get; init; }
    public List<string> Labels { get; } = new();
    public required long BoundSeq { get; init; }
    public required DateTimeOffset BoundAt { get; init; }
    public string? BoundBy { get; init; }
    public string? BoundCall { get; init; }
    public long? UnboundSeq { get; set; }
    public DateTimeOffset? UnboundAt { get; set; }
    public string? UnboundBy { get; set; }
    public string? UnboundCall { get; set; }
    /// <summary>Re-binds that returned this handle (users++), and unbinds that only dropped a reference (users--).</summary>
    public List<Touch> Rebinds { get; } = new();
    public List<Touch> Releases { get; } = new();
    /// <summary>Page requests queued, page responses (sent or withheld) and DMA faults on (device, PASID) while bound.</summary>
    public List<Touch> Faults { get; } = new();
    /// <summary>Secondary TLB / ATC invalidations for this PASID of this mm while bound (including those of the unbind itself).</summary>
    public List<Touch> Invalidations { get; } = new();
    /// <summary>mm exit (release), PASID entry quieted, mm dropped, while bound.</summary>
    public List<Touch> Lifecycle { get; } = new();
    /// <summary>Events touching one of its (device, PASID) pairs after the unbind and before anything bound that pair again.</summary>
    public List<Touch> AfterUnbind { get; } = new();
    public bool StillBound => UnboundSeq is null;
}

public sealed record HistoryResult(IReadOnlyList<BindingInterval> Intervals, IReadOnlyList<(string Device, int? Pasid, Touch Touch)> Unbound, long EventsRead);

/// <summary>
/// Binding intervals from the log (a pure fold over the events in seq order): who held which PASID on which
/// device from when to when, by which call (file:line), and did anything touch the (device, PASID) after unbind.
/// </summary>
public static partial class BindingHistory
{
    public static HistoryResult Build(IEnumerable<LoggedEvent> events, HistoryFilter? filter = null)
    {
        var b = new Builder(filter ?? new HistoryFilter());
        foreach (var e in events) b.Step(e);
        return b.Result();
    }

    public static async Task<HistoryResult> BuildAsync(IAsyncEnumerable<LoggedEvent> events, HistoryFilter? filter = null, CancellationToken ct = default)
    {
        var b = new Builder(filter ?? new HistoryFilter());
        await foreach (var e in events.WithCancellation(ct)) b.Step(e);
        return b.Result();
    }

    /// <summary>A binding open where a read of the log starts (from the audit_bindings projection, its devices from its bind call).</summary>
    internal sealed record Seed(string Handle, IReadOnlyList<string> Devices, int Pasid, string Mm, long BoundSeq);

    /// <summary>The devices a bind programmed at its PASID: those its call attached or wrote at that PASID before the handle was
    /// issued (the whole IOMMU group), the handle's device first when it is not among them.</summary>
    private static List<string> DevicesOf(HandleIssued h, List<string>? programmed)
    {
        var devices = programmed is { Count: > 0 } ? programmed.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList() : [h.Device];
        if (!devices.Contains(h.Device)) devices.Insert(0, h.Device);
        return devices;
    }

    /// <summary>Whether <paramref name="e"/> starts a call, <paramref name="previous"/> being the event before it (null at seq 1): the
    /// rule the fold uses (an event that carries its call, a change of source line, or no source).</summary>
    internal static bool StartsCall(LoggedEvent e, LoggedEvent? previous) =>
        e.Call is not null || e.Source is null || previous is null || previous.Source != e.Source;

    /// <summary>The devices of the handle issued at <paramref name="window"/>[<paramref name="at"/>], from its call's events before it
    /// in the window (consecutive seqs); null when the window does not reach back to the call's start.</summary>
    internal static List<string>? DevicesOfBind(IReadOnlyList<LoggedEvent> window, int at)
    {
        if (window[at].Event is not HandleIssued h) return null;
        var start = CallStartIn(window, at);
        if (start < 0) return null;
        var programmed = new List<string>();
        for (var j = start; j < at; j++)
            switch (window[j].Event)
            {
                case DomainAttached { Pasid: int p } a when p == h.Pasid: programmed.AddRange(a.Devices); break;
                case PasidEntryWritten w when w.Pasid == h.Pasid: programmed.Add(w.Device); break;
            }
        return DevicesOf(h, programmed);
    }

    /// <summary>The index in <paramref name="window"/> (consecutive seqs) where the call of the event at <paramref name="at"/> starts,
    /// or -1 when the window does not reach back to it.</summary>
    internal static int CallStartIn(IReadOnlyList<LoggedEvent> window, int at)
    {
        for (var j = at; j >= 0; j--)
        {
            var prev = j > 0 ? window[j - 1] : null;
            if (prev is not null && prev.Seq != window[j].Seq - 1) return -1;
            if (prev is null && window[j].Seq > 1 && !(window[j].Call is not null || window[j].Source is null)) return -1;
            if (StartsCall(window[j], window[j].Seq == 1 ? null : prev)) return j;
        }
        return -1;
    }

    private sealed class Builder(HistoryFilter filter)
    {
        /// <summary>Set when the read starts after seq 1: a touch of a (device, PASID) with nothing open or closed on it in the
        /// read is "unbound" only if no binding before the start held it either; those are kept apart and resolved after.</summary>
        public bool StartsLate { get; init; }
        public HashSet<(string Device, int Pasid)> UncertainKeys { get; } = new();
        public HashSet<(string Device, int Pasid)> BoundBefore { get; } = new();
        private readonly HashSet<Touch> uncertain = new(ReferenceEqualityComparer.Instance);

        public void Open(Seed seed)
        {
            var i = new BindingInterval
            {
                Handle = seed.Handle, Device = seed.Devices[0], Devices = seed.Devices, Mm = seed.Mm, Pasid = seed.Pasid,
                BoundSeq = seed.BoundSeq, BoundAt = default,
            };
            open[seed.Handle] = i;
            foreach (var d in seed.Devices)
            {
                var key = (d, seed.Pasid);
                if (!openByKey.TryGetValue(key, out var l)) openByKey[key] = l = new();
                l.Add(i);
            }
        }

        private readonly List<BindingInterval> all = new();
        private readonly Dictionary<string, BindingInterval> open = new(StringComparer.Ordinal);
        private readonly Dictionary<(string Device, int Pasid), List<BindingInterval>> openByKey = new();
        private readonly Dictionary<(string Device, int Pasid), BindingInterval> lastClosed = new();
        private readonly List<(string, int?, Touch)> unbound = new();
        private readonly HashSet<BindingInterval> tracked = new();
        // The call being applied: its first seq, source and call; devices it programmed per PASID.
        private long callSeq;
        private string? callSource;
        private string? callText;
        private readonly Dictionary<int, List<string>> programmed = new();
        private readonly Dictionary<BindingInterval, long> freedInCall = new();
        private long read;

        public HistoryResult Result()
        {
            var list = all.Where(i => filter.Matches(i) && filter.Overlaps(i)).ToList();
            return new HistoryResult(list, unbound.Where(u => u.Item3.Seq >= filter.From && u.Item3.Seq <= filter.To)
                .Where(u => !(uncertain.Contains(u.Item3) && BoundBefore.Contains((u.Item1, u.Item2!.Value)))).ToList(), read);
        }

        public void Step(LoggedEvent le)
        {
            read++;
            // A call starts at an event that carries it (the recorder puts the call on each call's first event) or
            // at a change of source line; events with neither are taken one call each.
            if (le.Call is not null || le.Source != callSource || le.Source is null)
            {
                callSeq = le.Seq;
                callSource = le.Source;
                callText = le.Call is null ? null : CallText.Describe(le.Call);
                programmed.Clear();
            }
            var e = le.Event;
            switch (e)
            {
                case DomainAttached { Pasid: int p } a:
                    Programmed(p).AddRange(a.Devices);
                    break;
                case PasidEntryWritten w:
                    Programmed(w.Pasid).Add(w.Device);
                    break;
                case HandleIssued h:
                {
                    var devices = DevicesOf(h, programmed.GetValueOrDefault(h.Pasid));
                    var i = new BindingInterval
                    {
                        Handle = h.Handle, Device = h.Device, Devices = devices, Mm = h.Mm, Pasid = h.Pasid, Domain = h.Domain,
                        BoundSeq = le.Seq, BoundAt = le.RecordedAt, BoundBy = le.Source, BoundCall = callText,
                    };
                    if (h.Name is not null) i.Labels.Add(h.Name);
                    all.Add(i);
                    open[h.Handle] = i;
                    if (filter.Matches(i)) tracked.Add(i);
                    foreach (var d in devices)
                    {
                        var key = (d, h.Pasid);
                        if (!openByKey.TryGetValue(key, out var l)) openByKey[key] = l = new();
                        l.Add(i);
                        lastClosed.Remove(key);
                    }
                    break;
                }
                case HandleShared h when open.TryGetValue(h.Handle, out var i):
                    if (h.Name is not null && !i.Labels.Contains(h.Name)) i.Labels.Add(h.Name);
                    if (tracked.Contains(i)) i.Rebinds.Add(T(le, $"users {h.Users}{(h.Name is null ? "" : $" ({h.Name})")}"));
                    break;
                case HandleReleased h when open.TryGetValue(h.Handle, out var i):
                    if (tracked.Contains(i)) i.Releases.Add(T(le, $"users {h.Users}"));
                    break;
                case HandleFreed h when open.Remove(h.Handle, out var i):
                {
                    i.UnboundSeq = le.Seq;
                    i.UnboundAt = le.RecordedAt;
                    i.UnboundBy = le.Source;
                    i.UnboundCall = callText;
                    freedInCall[i] = callSeq;
                    foreach (var d in i.Devices)
                    {
                        var key = (d, i.Pasid);
                        if (openByKey.TryGetValue(key, out var l))
                        {
                            l.Remove(i);
                            if (l.Count == 0) { openByKey.Remove(key); lastClosed[key] = i; }
                        }
                    }
                    break;
                }
                case PageRequestHandled h:
                    Fault(le, h.Device, h.Pasid, $"handled in the driver {h.Result}, no response, group {G(h.Group)} addr {Hex(h.Address)} {h.Access}: {h.Reason}");
                    break;
                case PageRequestQueued q:
                    Fault(le, q.Device, q.Pasid, $"queued group {G(q.Group)} addr {Hex(q.Address)} {q.Access}");
                    break;
                case PageResponseSent r:
                    Fault(le, r.Device, r.Pasid, $"{r.Code} group {G(r.Group)} ({r.Requests} request{(r.Requests == 1 ? "" : "s")}): {r.Reason}");
                    break;
                case PageResponseWithheld r:
                    Fault(le, r.Device, r.Pasid, $"no response group {G(r.Group)}: {r.Reason}");
                    break;
                case DmaFaultReported d:
                    Fault(le, d.Device, d.Pasid, $"DMA fault addr {Hex(d.Address)} {d.Access}: {d.Reason}");
                    break;
                case SecondaryTlbInvalidated t:
                {
                    var detail = $"{Hex(t.Start)}-{Hex(t.End)} via {t.Via} tlbi {t.Tlbi ?? "none"} atc [{string.Join(" ", t.Atc)}]";
                    // The ATC list names the devices flushed: an invalidation belongs to the bindings of those devices
                    // (all bindings of the PASID and mm when it names none, an IOTLB-only flush).
                    foreach (var i in open.Values)
                        if (i.Pasid == t.Pasid && i.Mm == t.Mm && tracked.Contains(i) && (t.Atc.Count == 0 || i.Devices.Any(t.Atc.Contains)))
                            i.Invalidations.Add(T(le, detail));
                    foreach (var d in t.Atc) AfterUnbindOnly(le, d, t.Pasid, detail, invalidation: true);
                    break;
                }
                case PasidEntryQuieted q:
                {
                    var key = (q.Device, q.Pasid);
                    if (openByKey.TryGetValue(key, out var l))
                    {
                        foreach (var i in l) if (tracked.Contains(i)) i.Lifecycle.Add(T(le, $"PASID entry on {q.Device} {q.Mode}"));
                    }
                    else AfterUnbindOnly(le, q.Device, q.Pasid, $"PASID entry {q.Mode}", invalidation: false);
                    break;
                }
                case MmReleased r:
                    foreach (var i in open.Values) if (i.Mm == r.Mm && tracked.Contains(i)) i.Lifecycle.Add(T(le, $"mm {r.Mm} exited (release)"));
                    break;
                case MmDropped d:
                    foreach (var i in open.Values) if (i.Mm == d.Mm && tracked.Contains(i)) i.Lifecycle.Add(T(le, $"mm {d.Mm} dropped, mm_count {d.MmCount}"));
                    break;
            }
        }

        private List<string> Programmed(int pasid)
        {
            if (!programmed.TryGetValue(pasid, out var l)) programmed[pasid] = l = new();
            return l;
        }

        private void Fault(LoggedEvent le, string device, int? pasid, string detail)
        {
            if (pasid is int p && openByKey.TryGetValue((device, p), out var l))
            {
                foreach (var i in l) if (tracked.Contains(i)) i.Faults.Add(T(le, detail));
                return;
            }
            if (pasid is int q && lastClosed.TryGetValue((device, q), out var closed))
            {
                if (!SameCallAsUnbind(closed, le) && tracked.Contains(closed)) closed.AfterUnbind.Add(T(le, detail));
                return;
            }
            if (filter.MatchesKey(device, pasid) && filter.Mm is null)
            {
                var t = T(le, detail);
                if (StartsLate && pasid is int r) { uncertain.Add(t); UncertainKeys.Add((device, r)); }
                unbound.Add((device, pasid, t));
            }
        }

        /// <summary>An event touching (device, PASID) with no binding open on it: flagged on the last binding that held it.</summary>
        private void AfterUnbindOnly(LoggedEvent le, string device, int pasid, string detail, bool invalidation)
        {
            if (openByKey.ContainsKey((device, pasid))) return;
            if (!lastClosed.TryGetValue((device, pasid), out var closed) || !tracked.Contains(closed)) return;
            if (SameCallAsUnbind(closed, le))
            {
                if (invalidation) closed.Invalidations.Add(T(le, detail)); // the unbind's own flush
                return;
            }
            closed.AfterUnbind.Add(T(le, detail));
        }

        private bool SameCallAsUnbind(BindingInterval i, LoggedEvent le) => freedInCall.TryGetValue(i, out var c) && c == callSeq && le.Seq >= c;

        private static Touch T(LoggedEvent le, string detail) => new(le.Seq, le.RecordedAt, EventTypes.NameOf(le.Event), detail, le.Source);
        private static string G(int? g) => g?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";
        private static string Hex(ulong v) => Sva.Domain.Json.SvaJson.Hex(v);
    }
}

/// <summary>A call in the words of the .sva grammar, for reports (short, one line).</summary>
public static class CallText
{
    public static string Describe(KernelCall call) => call switch
    {
        ProbeDevice d => $"device {d.Device} pasids={d.MaxPasids}",
        CreateMm m => $"mm {m.Mm}",
        MapVma v => $"vma {v.Mm} {H(v.Start)}-{H(v.End)} prot={v.Prot}",
        Bind b => b.Name is null ? $"bind {b.Device} {b.Mm}" : $"bind {b.Name} {b.Device} {b.Mm}",
        Unbind u => $"unbind {u.Handle}",
        PageFault f => $"fault {f.Device}{(f.Pasid is int p ? $" pasid={p}" : "")} addr={H(f.Address)} access={f.Access}{(f.Group is int g ? $" group={g}" : "")}{(f.Last && f.Group is not null ? " last" : "")}",
        InvalidateRange i => $"invalidate {i.Mm} {H(i.Start)}-{H(i.End)}",
        MmExit e => $"exit {e.Mm}",
        MmDrop d => $"drop {d.Mm}",
        AllocDomain d => $"domain {d.Name} type={d.Type}",
        AttachDomain a => $"attach {a.Domain} {a.Device}{(a.Pasid is int p ? $" pasid={p}" : "")}",
        DetachDomain a => $"detach {a.Domain} {a.Device}{(a.Pasid is int p ? $" pasid={p}" : "")}",
        MapIova m => $"map {m.Domain} {H(m.Iova)}-{H(m.End)} paddr={H(m.Paddr)}",
        UnmapIova u => $"unmap {u.Domain} {H(u.Iova)}-{H(u.End)}",
        _ => call.Op,
    };

    private static string H(ulong v) => Sva.Domain.Json.SvaJson.Hex(v);
}
