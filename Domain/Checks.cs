using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// One invariant violation in a session: what (<see cref="Kind"/>, one of <see cref="FindingKinds"/>), the seq
/// where it starts, a sentence, and the seqs of the events involved (ascending, without <see cref="Seq"/>).
/// </summary>
public sealed record Finding(string Kind, long Seq, string Message, IReadOnlyList<long> Involved);

/// <summary>The finding kinds of <see cref="Checks.Run"/>, as outputs spell them.</summary>
public static class FindingKinds
{
    /// <summary>
    /// At the end of the session an mm whose process reference was dropped (<c>drop</c>) is still held:
    /// mm_count &gt; 0 because handles (bonds) were never unbound, SVA domains or an Arm context descriptor
    /// still hold their mmgrab. Its PASID (if any) and those domains are never freed. Also a PASID still
    /// allocated to an mm that is gone. Seq: the drop; involved: where each holder was created.
    /// </summary>
    public const string Leak = "leak";
    /// <summary>An unbind of a handle that an earlier unbind freed (involved: its issue and its free), or a bind of a dropped mm.</summary>
    public const string UseAfterFree = "use-after-free";
    /// <summary>A count went below its floor: domain users, notifier refs, mm_count, mm_users below 0, a live handle below 1.</summary>
    public const string RefcountUnderflow = "refcount-underflow";
    /// <summary>A page response SUCCESS for a request served by an mm whose process had exited (involved: the exit).</summary>
    public const string SuccessAfterExit = "success-after-exit";
    /// <summary>A DMA fault on an IOVA that was mapped and then unmapped (involved: the unmap, the map).</summary>
    public const string DmaAfterUnmap = "dma-after-unmap";
    /// <summary>A PASID attached to (or a CD written for) a device whose max_pasids does not cover it (involved: the probe).</summary>
    public const string AttachPastMaxPasids = "attach-past-max-pasids";
    /// <summary>
    /// A PASID allocated to a new mm while a page request with that PASID, queued for its previous owner,
    /// is still parked (the kernel must flush fault queues before reuse, §3.4). Involved: the request, the free.
    /// </summary>
    public const string PasidReusedWithQueuedFault = "pasid-reused-with-queued-fault";

    /// <summary>A call hit a kernel BUG (an oops): the session is tainted from that seq. Message names the site.</summary>
    public const string KernelBug = "kernel-bug";
    /// <summary>
    /// At the end of the session a handle (bond) is still bound to an mm whose process exited: the driver never
    /// unbound, so the PASID and the domain (or CD) stay pinned. Seq: the exit; involved: the bind.
    /// </summary>
    public const string BoundAfterExit = "bound-after-exit";

    public static readonly IReadOnlyList<string> All =
        [Leak, UseAfterFree, RefcountUnderflow, SuccessAfterExit, DmaAfterUnmap, AttachPastMaxPasids, PasidReusedWithQueuedFault, KernelBug, BoundAfterExit];
}

/// <summary>
/// Invariant checks over a session's events (pure: events in, findings out). The events are folded as
/// they come, so each check sees the state just before and after the event it looks at.
/// </summary>
public static class Checks
{
    /// <summary>Findings in seq order. <paramref name="events"/> in ascending seq order, as stored.</summary>
    public static IReadOnlyList<Finding> Run(IEnumerable<(long Seq, SvaEvent Event)> events)
    {
        var run = new Checker();
        foreach (var (seq, e) in events) run.Step(seq, e);
        run.End();
        return run.Findings.OrderBy(f => f.Seq).ThenBy(f => f.Kind, StringComparer.Ordinal).ToList();
    }

    /// <summary>Convenience for events numbered 1, 2, 3, … (an in-memory run).</summary>
    public static IReadOnlyList<Finding> Run(IEnumerable<SvaEvent> events) =>
        Run(events.Select((e, i) => ((long)(i + 1), e)));

    private sealed class Checker
    {
        public readonly List<Finding> Findings = new();
        private readonly SvaState s = new();

        // Where things happened (event seqs), kept beside the state.
        private readonly Dictionary<string, long> probed = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> handleIssued = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> handleFreed = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> domainCreated = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> cdCreated = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> mmExited = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> mmDropped = new(StringComparer.Ordinal);
        private readonly Dictionary<int, long> pasidFreed = new();
        private readonly Dictionary<string, List<(ulong Iova, ulong End, long Seq)>> maps = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<(ulong Iova, ulong End, long Seq)>> unmaps = new(StringComparer.Ordinal);
        /// <summary>Parked page requests: (device, group, pasid) → the seq that queued it and the PASID's owner then.</summary>
        private readonly List<(string Device, int? Group, int? Pasid, long Seq, string? Owner)> parked = new();
        private readonly HashSet<string> underflowReported = new(StringComparer.Ordinal);

        private void Add(string kind, long seq, string message, params long?[] involved) =>
            Findings.Add(new Finding(kind, seq, message,
                involved.Where(x => x is not null && x != seq).Select(x => x!.Value).Distinct().Order().ToList()));

        private static long? At<TKey>(Dictionary<TKey, long> d, TKey? key) where TKey : notnull =>
            key is not null && d.TryGetValue(key, out var v) ? v : null;

        public void Step(long seq, SvaEvent e)
        {
            Before(seq, e);
            Evolve.Apply(s, e);
            s.Seq = seq;
            After(seq, e);
        }

        private void Before(long seq, SvaEvent e)
        {
            switch (e)
            {
                case UnbindRejected u:
                {
                    var id = s.HandleNames.TryGetValue(u.Handle, out var named) ? named : u.Handle;
                    if (handleFreed.TryGetValue(id, out var freedAt) && s.HandleById(id) is null)
                        Add(FindingKinds.UseAfterFree, seq,
                            $"unbind {u.Handle}: handle {id} was already freed at seq {freedAt} (issued at seq {At(handleIssued, id)})",
                            At(handleIssued, id), freedAt);
                    break;
                }
                case BindFailed b when s.Mms.TryGetValue(b.Mm, out var bm) && bm.State == MmLife.Dropped:
                    Add(FindingKinds.UseAfterFree, seq, $"bind {b.Device} {b.Mm}: mm {b.Mm} was dropped at seq {At(mmDropped, b.Mm)}",
                        At(mmDropped, b.Mm));
                    break;
                case PageResponseSent { Code: PageResponseCode.SUCCESS } r:
                {
                    var mm = ServingMm(r.Device, r.Pasid);
                    if (mm is not null && mm.MmUsers == 0)
                        Add(FindingKinds.SuccessAfterExit, seq,
                            $"page response SUCCESS to {r.Device} PASID {r.Pasid} (group {r.Group?.ToString() ?? "-"}) for mm {mm.Id}, which exited at seq {At(mmExited, mm.Id)}",
                            At(mmExited, mm.Id));
                    break;
                }
                case DmaFaultReported d when d.Domain is not null:
                {
                    var unmap = Covering(unmaps, d.Domain, d.Address);
                    if (unmap is { } u)
                    {
                        var map = Covering(maps, d.Domain, d.Address);
                        if (map is null || map.Value.Seq < u.Seq)
                            Add(FindingKinds.DmaAfterUnmap, seq,
                                $"DMA fault from {d.Device} at iova {SvaJson.Hex(d.Address)} in {d.Domain}: unmapped at seq {u.Seq} ({SvaJson.Hex(u.Iova)}-{SvaJson.Hex(u.End)})",
                                u.Seq, map?.Seq);
                    }
                    break;
                }
                case DomainAttached { Pasid: int p } a:
                    foreach (var dev in a.Devices)
                        if (s.Devices.TryGetValue(dev, out var d) && p >= d.MaxPasids)
                            Add(FindingKinds.AttachPastMaxPasids, seq,
                                $"{a.Domain} attached at PASID {p} on {dev}, whose max_pasids is {d.MaxPasids}", At(probed, dev));
                    break;
                case PasidEntryWritten w when s.Devices.TryGetValue(w.Device, out var wd) && w.Pasid >= wd.MaxPasids:
                    Add(FindingKinds.AttachPastMaxPasids, seq,
                        $"context descriptor of mm {w.Mm} written at PASID {w.Pasid} on {w.Device}, whose max_pasids is {wd.MaxPasids}", At(probed, w.Device));
                    break;
                case PasidAllocated p:
                    foreach (var q in parked.Where(q => q.Pasid == p.Pasid && q.Owner != p.Mm && StillParked(q)))
                        Add(FindingKinds.PasidReusedWithQueuedFault, seq,
                            $"PASID {p.Pasid} allocated to mm {p.Mm} while a page request of {q.Owner ?? "no mm"} (seq {q.Seq}, {q.Device} group {q.Group?.ToString() ?? "-"}) is still queued",
                            q.Seq, At(pasidFreed, p.Pasid));
                    break;
                case KernelBug k:
                    Add(FindingKinds.KernelBug, seq, $"{k.Op}{(k.Name is null ? "" : $" {k.Name}")}: kernel BUG: {k.Site} ({k.Reason}); the session is tainted from seq {s.TaintedAt ?? seq}",
                        s.TaintedAt);
                    break;
                case PageRequestQueued q:
                    parked.Add((q.Device, q.Group, q.Pasid, seq, q.Pasid is int qp && s.Pasids.TryGetValue(qp, out var o) ? o : null));
                    break;
            }
        }

        private void After(long seq, SvaEvent e)
        {
            switch (e)
            {
                case DeviceProbed d: probed[d.Device] = seq; break;
                case HandleIssued h: handleIssued[h.Handle] = seq; handleFreed.Remove(h.Handle); break;
                case HandleFreed h: handleFreed[h.Handle] = seq; break;
                case SvaDomainAllocated d: domainCreated[d.Domain] = seq; break;
                case DomainAllocated d: domainCreated[d.Domain] = seq; break;
                case ContextDescriptorAllocated c: cdCreated[c.Mm] = seq; break;
                case MmReleased r: mmExited[r.Mm] = seq; break;
                case MmDropped d: mmDropped[d.Mm] = seq; break;
                case PasidFreed p: pasidFreed[p.Pasid] = seq; break;
                case IovaMapped m: List(maps, m.Domain).Add((m.Iova, m.End, seq)); break;
                case IovaUnmapped u: List(unmaps, u.Domain).Add((u.Iova, u.End, seq)); break;
                case PageResponseSent or PageResponseWithheld:
                    parked.RemoveAll(q => !StillParked(q));
                    break;
            }

            // Counts below their floor, reported once per object.
            switch (e)
            {
                case DomainUsersChanged u when u.Users < 0:
                    Underflow(seq, $"domain:{u.Domain}", $"{u.Domain} users went to {u.Users}", At(domainCreated, u.Domain));
                    break;
                case HandleReleased h when h.Users < 1:
                    Underflow(seq, $"handle:{h.Handle}", $"handle {h.Handle} users went to {h.Users} without being freed", At(handleIssued, h.Handle));
                    break;
                case NotifierRefsChanged n when n.Refs < 0:
                    Underflow(seq, $"notifier:{n.Notifier}", $"notifier {n.Notifier} refs went to {n.Refs}");
                    break;
            }
            foreach (var mmId in MmsOf(e))
                if (s.Mms.TryGetValue(mmId, out var mm) && (mm.MmCount < 0 || mm.MmUsers < 0))
                    Underflow(seq, $"mm:{mmId}", $"mm {mmId} mm_count {mm.MmCount}, mm_users {mm.MmUsers}", At(mmDropped, mmId));
        }

        private void Underflow(long seq, string key, string message, params long?[] involved)
        {
            if (underflowReported.Add(key)) Add(FindingKinds.RefcountUnderflow, seq, message, involved);
        }

        public void End()
        {
            var endSeq = s.Seq;
            foreach (var mm in s.Mms.Values.Where(m => m.State == MmLife.Dropped && m.MmCount > 0))
            {
                var holders = new List<string>();
                var involved = new List<long?>();
                foreach (var h in mm.Handles.Select(s.HandleById).OfType<HandleObj>())
                {
                    var labels = s.HandleNames.Where(kv => kv.Value == h.Id).Select(kv => kv.Key).ToList();
                    holders.Add($"handle {h.Id}{(labels.Count > 0 ? $" ({string.Join(",", labels)})" : "")} on {h.Device} never unbound");
                    involved.Add(At(handleIssued, h.Id));
                }
                foreach (var d in mm.SvaDomains)
                {
                    holders.Add($"SVA domain {d} (users {s.DomainById(d)?.Users})");
                    involved.Add(At(domainCreated, d));
                }
                if (s.ContextDescriptors.TryGetValue(mm.Id, out var asid))
                {
                    holders.Add($"Arm context descriptor (ASID {asid})");
                    involved.Add(At(cdCreated, mm.Id));
                }
                var pasid = mm.Pasid is int p ? $", so PASID {p} is never freed" : "";
                Add(FindingKinds.Leak, At(mmDropped, mm.Id) ?? endSeq,
                    $"mm {mm.Id} was dropped at seq {At(mmDropped, mm.Id)} but is still held at the end (mm_count {mm.MmCount}){pasid}: {(holders.Count > 0 ? string.Join("; ", holders) : "no holder known")}",
                    involved.ToArray());
            }
            foreach (var h in s.Handles.Values)
            {
                if (!s.Mms.TryGetValue(h.Mm, out var hm) || hm.MmUsers > 0) continue;
                var exit = At(mmExited, h.Mm);
                var bound = At(handleIssued, h.Id);
                var labels = s.HandleNames.Where(kv => kv.Value == h.Id).Select(kv => kv.Key).ToList();
                Add(FindingKinds.BoundAfterExit, exit ?? endSeq,
                    $"handle {h.Id}{(labels.Count > 0 ? $" ({string.Join(",", labels)})" : "")} on {h.Device} (bound at seq {bound}) is still bound at the end to mm {h.Mm}, whose process exited at seq {exit}: PASID {h.Pasid}{(h.Domain is null ? "" : $" and {h.Domain}")} stay pinned",
                    bound);
            }
            foreach (var (pasid, owner) in s.Pasids)
                if (!s.Mms.TryGetValue(owner, out var om) || (om.State == MmLife.Dropped && om.MmCount <= 0))
                    Add(FindingKinds.Leak, endSeq, $"PASID {pasid} is still allocated to mm {owner}, which is gone");
        }

        /// <summary>The mm a page request with this PASID is served by: the SVA domain at the slot, the G1 CD, else the global owner.</summary>
        private MmObj? ServingMm(string device, int? pasid)
        {
            if (pasid is not int p || !s.Devices.TryGetValue(device, out var dev)) return null;
            string? mm = null;
            if (s.GroupOf(dev).PasidArray.TryGetValue(p, out var slot)) mm = s.DomainById(slot.Domain)?.Mm;
            mm ??= dev.PasidTable.TryGetValue(p, out var entry) ? entry.Mm : null;
            mm ??= s.Pasids.TryGetValue(p, out var owner) ? owner : null;
            return mm is not null && s.Mms.TryGetValue(mm, out var o) ? o : null;
        }

        private bool StillParked((string Device, int? Group, int? Pasid, long Seq, string? Owner) q) =>
            s.Devices.TryGetValue(q.Device, out var d) && d.Partial.Any(p => p.Group == q.Group && p.Pasid == q.Pasid);

        private static List<(ulong Iova, ulong End, long Seq)> List(Dictionary<string, List<(ulong Iova, ulong End, long Seq)>> d, string key) =>
            d.TryGetValue(key, out var l) ? l : d[key] = new();

        /// <summary>The latest range of the domain covering the address.</summary>
        private static (ulong Iova, ulong End, long Seq)? Covering(Dictionary<string, List<(ulong Iova, ulong End, long Seq)>> d, string domain, ulong addr) =>
            d.TryGetValue(domain, out var l) ? l.Where(r => addr >= r.Iova && addr < r.End).Select(r => ((ulong, ulong, long)?)r).LastOrDefault() : null;

        private IEnumerable<string> MmsOf(SvaEvent e) => e switch
        {
            MmDropped d => [d.Mm],
            MmReleased r => [r.Mm],
            ContextDescriptorFreed c => [c.Mm],
            DomainFreed f => s.Mms.Values.Where(m => m.MmCount < 0).Select(m => m.Id).ToList(),
            _ => [],
        };
    }
}
