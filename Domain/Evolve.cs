using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// evolve(state, event): applies one event. Knows no kernel version: every value it needs is in the
/// event. Each call advances <see cref="SvaState.Seq"/> by one, so folding events 1..n leaves Seq = n.
/// </summary>
public static class Evolve
{
    public static SvaState Fold(IEnumerable<SvaEvent> events, SvaState? from = null)
    {
        var s = from ?? new SvaState();
        foreach (var e in events) Apply(s, e);
        return s;
    }

    public static void Apply(SvaState s, SvaEvent e)
    {
        var touched = Provenance.Before(s, e);
        ApplyValues(s, e);
        Provenance.After(s, touched);
    }

    private static void ApplyValues(SvaState s, SvaEvent e)
    {
        s.Seq++;
        switch (e)
        {
            case DeviceProbed d:
            {
                s.Devices[d.Device] = new DeviceObj { Id = d.Device, MaxPasids = d.MaxPasids, Group = d.Group, Sva = d.Sva, Iopf = d.Iopf, Iommu = d.Iommu, Inferred = d.Inferred, Driver = d.Driver };
                if (!s.Groups.TryGetValue(d.Group, out var g)) s.Groups[d.Group] = g = new GroupObj { Id = d.Group };
                g.Devices.Add(d.Device);
                g.Devices.Sort(StringComparer.Ordinal);
                s.NextGroup = Math.Max(s.NextGroup, d.Group + 1);
                break;
            }
            case MmCreated m:
                s.Mms[m.Mm] = new MmObj { Id = m.Mm, Lam = m.Lam, Inferred = m.Inferred, Ordinal = s.NextMmOrdinal++ };
                break;
            case VmaMapped v:
                s.Mms[v.Mm].Vmas.Add(new Vma { Start = v.Start, End = v.End, Prot = v.Prot });
                break;
            case PasidAllocated p:
                s.Pasids[p.Pasid] = p.Mm;
                s.Mms[p.Mm].Pasid = p.Pasid;
                break;
            case PasidFreed p:
                s.Pasids.Remove(p.Pasid);
                if (s.Mms.TryGetValue(p.Mm, out var pm) && pm.Pasid == p.Pasid) pm.Pasid = null;
                break;
            case SvaDomainAllocated d:
            {
                var n = SvaState.IdNumber(d.Domain);
                s.Domains[n] = new DomainObj { Id = d.Domain, Type = "sva", Mm = d.Mm, Asid = d.Asid };
                var mm = s.Mms[d.Mm];
                mm.SvaDomains.Insert(0, d.Domain);
                mm.MmCount++;
                s.NextDomain = Math.Max(s.NextDomain, n + 1);
                break;
            }
            case DomainAllocated d:
            {
                var n = SvaState.IdNumber(d.Domain);
                s.Domains[n] = new DomainObj { Id = d.Domain, Type = d.Type, Name = d.Name };
                s.DomainNames[d.Name] = d.Domain;
                s.NextDomain = Math.Max(s.NextDomain, n + 1);
                break;
            }
            case DomainAttached a:
            {
                var dom = s.Domain(a.Domain);
                dom.Attached.Add(new Attachment { Device = a.Device, Pasid = a.Pasid, Devices = a.Devices.ToList() });
                var g = s.GroupOf(s.Devices[a.Device]);
                if (a.Pasid is int p)
                {
                    g.PasidArray[p] = new PasidSlot { Domain = a.Domain };
                    foreach (var dev in a.Devices)
                        s.Devices[dev].PasidTable[p] = new PasidEntry { Pasid = p, Domain = a.Domain, Mm = dom.Mm };
                }
                else g.RidDomain = a.Domain;
                break;
            }
            case DomainDetached a:
            {
                var dom = s.Domain(a.Domain);
                var g = s.GroupOf(s.Devices[a.Device]);
                dom.Attached.RemoveAll(x => x.Pasid == a.Pasid && s.Devices[x.Device].Group == g.Id);
                if (a.Pasid is int p)
                {
                    g.PasidArray.Remove(p);
                    foreach (var dev in a.Devices) s.Devices[dev].PasidTable.Remove(p);
                }
                else if (g.RidDomain == a.Domain) g.RidDomain = null;
                break;
            }
            case DomainUsersChanged u:
                s.Domain(u.Domain).Users = u.Users;
                break;
            case DomainFreed f:
            {
                var n = SvaState.IdNumber(f.Domain);
                var dom = s.Domains[n];
                s.Domains.Remove(n);
                if (dom.Name is not null) s.DomainNames.Remove(dom.Name);
                if (dom.Mm is not null && s.Mms.TryGetValue(dom.Mm, out var mm))
                {
                    mm.SvaDomains.Remove(f.Domain);
                    mm.MmCount--;
                }
                break;
            }
            case IovaMapped m:
                s.Domain(m.Domain).Mappings.Add(new IovaRange { Iova = m.Iova, End = m.End, Paddr = m.Paddr });
                break;
            case IovaUnmapped u:
            {
                var maps = s.Domain(u.Domain).Mappings;
                var kept = new List<IovaRange>();
                foreach (var r in maps)
                {
                    if (r.End <= u.Iova || r.Iova >= u.End) { kept.Add(r); continue; }
                    if (r.Iova < u.Iova) kept.Add(new IovaRange { Iova = r.Iova, End = u.Iova, Paddr = r.Paddr });
                    if (r.End > u.End) kept.Add(new IovaRange { Iova = u.End, End = r.End, Paddr = r.Paddr + (u.End - r.Iova) });
                }
                maps.Clear();
                maps.AddRange(kept);
                break;
            }
            case HandleIssued h:
            {
                var n = SvaState.IdNumber(h.Handle);
                s.Handles[n] = new HandleObj { Id = h.Handle, Device = h.Device, Mm = h.Mm, Domain = h.Domain, Pasid = h.Pasid, Users = 1, IssuedSeq = s.Seq };
                s.Mms[h.Mm].Handles.Add(h.Handle);
                if (h.Name is not null) { s.HandleNames[h.Name] = h.Handle; s.FailedBinds.Remove(h.Name); }
                s.NextHandle = Math.Max(s.NextHandle, n + 1);
                if (h.Domain is not null)
                {
                    var g = s.GroupOf(s.Devices[h.Device]);
                    if (g.PasidArray.TryGetValue(h.Pasid, out var slot) && slot.Domain == h.Domain && slot.Handle is null)
                        slot.Handle = h.Handle;
                }
                break;
            }
            case HandleShared h:
                s.Handle(h.Handle).Users = h.Users;
                if (h.Name is not null) { s.HandleNames[h.Name] = h.Handle; s.FailedBinds.Remove(h.Name); }
                break;
            case HandleReleased h:
                s.Handle(h.Handle).Users = h.Users;
                break;
            case HandleFreed h:
            {
                var n = SvaState.IdNumber(h.Handle);
                var obj = s.Handles[n];
                s.Handles.Remove(n);
                s.FreedHandles[n] = s.Seq;
                if (s.Mms.TryGetValue(obj.Mm, out var mm)) mm.Handles.Remove(h.Handle);
                foreach (var g in s.Groups.Values)
                    foreach (var slot in g.PasidArray.Values)
                        if (slot.Handle == h.Handle) slot.Handle = null;
                break;
            }
            case BindFailed b:
                if (b.Name is not null) s.FailedBinds[b.Name] = s.Seq;
                break;
            case UnbindRejected or CallFailed or AccessAborted:
                break;
            case KernelBug k:
                if (s.TaintedAt is null) { s.TaintedAt = s.Seq; s.TaintSite = k.Site; }
                if (k.Name is not null) s.FailedBinds[k.Name] = s.Seq;
                break;
            case ContextDescriptorAllocated c:
                s.ContextDescriptors[c.Mm] = c.Asid;
                s.Mms[c.Mm].MmCount++;
                break;
            case ContextDescriptorFreed c:
                s.ContextDescriptors.Remove(c.Mm);
                s.Mms[c.Mm].MmCount--;
                break;
            case NotifierRegistered n:
            {
                var id = SvaState.IdNumber(n.Notifier);
                s.Notifiers[id] = new NotifierObj { Id = n.Notifier, Mm = n.Mm, Group = n.Group, Domain = n.Domain, Refs = 1 };
                s.NextNotifier = Math.Max(s.NextNotifier, id + 1);
                // A VT-d intel_svm's notifier (no group, no domain: issue 19) holds the mmgrab of mmu_notifier_register;
                // the Arm notifiers' is carried by the CD or the SVA domain.
                if (n.Group is null && n.Domain is null) s.Mms[n.Mm].MmCount++;
                break;
            }
            case NotifierRefsChanged n:
                s.Notifier(n.Notifier).Refs = n.Refs;
                break;
            case NotifierFreed n:
                if (s.Notifiers.Remove(SvaState.IdNumber(n.Notifier), out var gone) && gone.Group is null && gone.Domain is null && s.Mms.TryGetValue(gone.Mm, out var held))
                    held.MmCount--;
                break;
            case PasidEntryWritten w:
                s.Devices[w.Device].PasidTable[w.Pasid] = new PasidEntry { Pasid = w.Pasid, Mm = w.Mm };
                break;
            case PasidEntryCleared c:
                s.Devices[c.Device].PasidTable.Remove(c.Pasid);
                break;
            case PasidEntryQuieted q:
                if (s.Devices[q.Device].PasidTable.TryGetValue(q.Pasid, out var entry)) entry.Mode = q.Mode;
                break;
            case PageRequestQueued q:
                s.Devices[q.Device].Partial.Add(new PendingRequest { Pasid = q.Pasid, Group = q.Group, Address = q.Address, Access = q.Access, Seq = s.Seq });
                break;
            // The group's parked requests go with its response (iopf_group_alloc gathers them by grpid only).
            case PageResponseSent r:
                s.Devices[r.Device].Partial.RemoveAll(p => p.Group == r.Group);
                break;
            case PageResponseWithheld r:
                s.Devices[r.Device].Partial.RemoveAll(p => p.Group == r.Group);
                break;
            case DmaFaultReported or DmaTranslated or MmRangeInvalidated or SecondaryTlbInvalidated or CaptureObserved or PageRequestHandled:
                break;
            case MmReleased r:
            {
                var mm = s.Mms[r.Mm];
                mm.State = MmLife.Exited;
                mm.MmUsers = 0;
                foreach (var n in s.Notifiers.Values)
                    if (n.Mm == r.Mm) n.Cleared = true;
                break;
            }
            case MmDropped d:
            {
                var mm = s.Mms[d.Mm];
                mm.State = MmLife.Dropped;
                mm.MmCount = d.MmCount;
                break;
            }
            case MmFreed f:
                s.Mms[f.Mm].MmCount = 0;
                break;
            default:
                throw new EventFormatException($"no evolve rule for {e.GetType().Name}");
        }
    }
}
