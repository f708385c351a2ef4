using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// decide(state, call) → events, under one kernel version's rules. <see cref="Execute"/> applies each
/// event to the state as it is decided (the kernel's own steps read what earlier steps did), so the
/// state afterwards is exactly fold(state, events). <see cref="Decide"/> is the pure form on a copy.
/// Every call yields at least one event, so every outcome has a seq.
/// </summary>
public static class SvaKernel
{
    /// <summary>Pages from which a range invalidation becomes a whole-ASID one (SMMU without range invalidation: 1 &lt;&lt; (PAGE_SHIFT-3)).</summary>
    public const ulong WholeAsidPages = 512;
    public const ulong PageSize = 4096;

    public static IReadOnlyList<SvaEvent> Decide(KernelVersion version, SvaState state, KernelCall call) =>
        Execute(version, state.Clone(), call);

    public static IReadOnlyList<SvaEvent> Execute(KernelVersion version, SvaState state, KernelCall call)
    {
        var k = new Run(version.Rules, state);
        k.Dispatch(call);
        return k.Events;
    }

    private sealed class Run(KernelRules r, SvaState s)
    {
        public readonly List<SvaEvent> Events = new();

        private void Emit(SvaEvent e)
        {
            Evolve.Apply(s, e);
            Events.Add(e);
        }

        public void Dispatch(KernelCall call)
        {
            switch (call)
            {
                case ProbeDevice c: Probe(c); break;
                case CreateMm c: CreateMm(c); break;
                case MapVma c: MapVma(c); break;
                case Bind c: Bind(c); break;
                case Unbind c: Unbind(c); break;
                case PageFault c: Fault(c); break;
                case InvalidateRange c: Invalidate(c); break;
                case MmExit c: Exit(c); break;
                case MmDrop c: Drop(c); break;
                case AllocDomain c: AllocDomain(c); break;
                case AttachDomain c: Attach(c); break;
                case DetachDomain c: Detach(c); break;
                case MapIova c: Map(c); break;
                case UnmapIova c: Unmap(c); break;
                default: throw new ArgumentException($"unknown call {call.GetType().Name}");
            }
            if (Events.Count == 0) throw new InvalidOperationException($"call {call.Op} decided no event");
        }

        // ---- devices and mms ------------------------------------------------------------------------
        private void Probe(ProbeDevice c)
        {
            if (s.Devices.ContainsKey(c.Device)) { Emit(new CallFailed("device", null, $"device {c.Device} is already probed")); return; }
            if (c.MaxPasids < 0) { Emit(new CallFailed("device", Errno.EINVAL, $"max_pasids {c.MaxPasids} is negative")); return; }
            var group = c.Group ?? s.NextGroup;
            Emit(new DeviceProbed(c.Device, c.MaxPasids, group, c.Sva, c.Iopf, c.Iommu, c.Inferred));
        }

        private void CreateMm(CreateMm c)
        {
            if (s.Mms.ContainsKey(c.Mm)) { Emit(new CallFailed("mm", null, $"mm {c.Mm} already exists")); return; }
            if (c.Pasid is int want && (want < 1 || s.Pasids.ContainsKey(want)))
            {
                Emit(new CallFailed("mm", Errno.EINVAL, want < 1 ? $"PASID {want} is not allocatable" : $"PASID {want} is held by mm {s.Pasids[want]}"));
                return;
            }
            Emit(new MmCreated(c.Mm, c.Lam, c.Inferred));
            if (c.Pasid is int pasid) Emit(new PasidAllocated(c.Mm, pasid));
        }

        private void MapVma(MapVma c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("vma", null, $"no such mm {c.Mm}")); return; }
            if (mm.State != MmLife.Live) { Emit(new CallFailed("vma", null, $"mm {c.Mm} has exited")); return; }
            if (c.End <= c.Start) { Emit(new CallFailed("vma", Errno.EINVAL, $"empty range {SvaJson.Hex(c.Start)}-{SvaJson.Hex(c.End)}")); return; }
            Emit(new VmaMapped(c.Mm, c.Start, c.End, c.Prot));
        }

        // ---- bind -------------------------------------------------------------------------------------
        private void Bind(Bind c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new BindFailed(c.Device, c.Mm, Errno.ENODEV, $"no such device {c.Device}", c.Name)); return; }
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"no such mm {c.Mm}", c.Name)); return; }
            if (mm.State == MmLife.Dropped) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"mm {c.Mm} was dropped (use after free)", c.Name)); return; }
            var failure = r.Generation switch
            {
                Generation.G1 => BindBond(dev, mm, c.Name),
                Generation.G2 => BindPerDeviceDomain(dev, mm, c.Name),
                Generation.G3 or Generation.G4 => BindSharedDomain(dev, mm, c.Name),
                _ => BindAttachHandle(dev, mm, c.Name),
            };
            if (failure is { } f) Emit(new BindFailed(c.Device, c.Mm, f.Errno, f.Reason, c.Name));
        }

        private readonly record struct Failure(Errno Errno, string Reason);

        /// <summary>G1: arm_smmu_sva_bind — bond per (dev, mm) with refs.</summary>
        private Failure? BindBond(DeviceObj dev, MmObj mm, string? name)
        {
            var group = s.GroupOf(dev);
            if (r.SingletonGroupOnly && group.Devices.Count != 1)
                return new(Errno.EINVAL, $"group {group.Id} has {group.Devices.Count} devices; SVA needs a singleton group");
            if (dev.MaxPasids == 0) return new(Errno.ENODEV, $"{dev.Id} has no SSIDs (max_pasids 0): SVA not enabled");
            if (!dev.Sva) return new(Errno.ENODEV, $"SVA feature not enabled on {dev.Id}");
            var bond = mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id);
            if (bond is not null) { Emit(new HandleShared(bond.Id, bond.Users + 1, name)); return null; }
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            ArmBondGet(group, mm, writeEntries: true);
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, null, pasid.Value, name));
            return null;
        }

        /// <summary>G2: one SVA domain per (device, mm); a new handle per bind sharing the domain found at (dev, pasid).</summary>
        private Failure? BindPerDeviceDomain(DeviceObj dev, MmObj mm, string? name)
        {
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            var group = s.GroupOf(dev);
            if (group.PasidArray.TryGetValue(pasid.Value, out var slot))
            {
                var found = s.Domain(slot.Domain);
                if (found.Type != "sva")
                    return new(Errno.EBUSY, $"iommu_get_domain_for_dev_pasid({dev.Id}, {pasid}, SVA): slot holds {found.Id} of type {found.Type}");
                Emit(new DomainUsersChanged(found.Id, found.Users + 1));
                Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, found.Id, pasid.Value, name));
                return null;
            }
            var refused = AttachRefusal(null, dev, pasid.Value, mm);
            if (refused is not null) return new(refused.Value.Errno, $"fresh SVA domain: {refused.Value.Reason}");
            var domain = AllocSvaDomain(mm);
            AttachSva(domain, dev, pasid.Value, mm);
            Emit(new DomainUsersChanged(domain, 1));
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, domain, pasid.Value, name));
            return null;
        }

        /// <summary>G3 (6.8-rc1) and G4 (6.8): shared SVA domains; G4 first looks in the mm's handle list.</summary>
        private Failure? BindSharedDomain(DeviceObj dev, MmObj mm, string? name)
        {
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            if (r.Generation == Generation.G4)
            {
                var same = mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id);
                if (same is not null) { Emit(new HandleShared(same.Id, same.Users + 1, name)); return null; }
            }
            return AttachSharedOrNew(dev, mm, pasid.Value, name);
        }

        /// <summary>G5: the attach handle in the group pasid_array decides.</summary>
        private Failure? BindAttachHandle(DeviceObj dev, MmObj mm, string? name)
        {
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            var group = s.GroupOf(dev);
            if (group.PasidArray.TryGetValue(pasid.Value, out var slot))
            {
                var found = s.Domain(slot.Domain);
                if (found.Type != "sva")
                    return new(Errno.EBUSY, $"iommu_attach_handle_get({pasid}, SVA): slot holds {found.Id} of type {found.Type}");
                if (found.Mm != mm.Id)
                    return new(Errno.EBUSY, $"PASID {pasid} slot holds {found.Id} of mm {found.Mm}");
                if (slot.Handle is { } hid)
                {
                    var h = s.Handle(hid);
                    Emit(new HandleShared(h.Id, h.Users + 1, name));
                    return null;
                }
            }
            return AttachSharedOrNew(dev, mm, pasid.Value, name);
        }

        /// <summary>Try each of the mm's SVA domains, else a new one (G3–G5 step 3/4).</summary>
        private Failure? AttachSharedOrNew(DeviceObj dev, MmObj mm, int pasid, string? name)
        {
            var tried = new List<string>();
            foreach (var candidate in mm.SvaDomains.ToList())
            {
                var d = s.Domain(candidate);
                var refused = AttachRefusal(d, dev, pasid, mm);
                if (refused is { } f) { tried.Add($"{d.Id}: -{f.Errno} ({f.Reason})"); continue; }
                AttachSva(d.Id, dev, pasid, mm);
                Emit(new DomainUsersChanged(d.Id, d.Users + 1));
                Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, d.Id, pasid, name));
                return null;
            }
            var fresh = AttachRefusal(null, dev, pasid, mm);
            if (fresh is { } nf)
            {
                tried.Add($"fresh SVA domain: -{nf.Errno} ({nf.Reason})");
                return new(nf.Errno, string.Join("; ", tried));
            }
            var domain = AllocSvaDomain(mm);
            AttachSva(domain, dev, pasid, mm);
            Emit(new DomainUsersChanged(domain, 1));
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, domain, pasid, name));
            return null;
        }

        /// <summary>The mm's PASID for this device: the range check or a fresh allocation (kernel-sva.md §1.6, §2).</summary>
        private int? MmPasid(DeviceObj dev, MmObj mm, out Failure? fail)
        {
            fail = null;
            if (r.NoPasidDevice == NoPasidDeviceRule.CoreEopnotsupp && dev.MaxPasids == 0)
            {
                fail = new(Errno.EOPNOTSUPP, $"{dev.Id} has max_pasids 0");
                return null;
            }
            if (r.LamCheck && mm.Lam)
            {
                fail = new(Errno.EBUSY, $"mm {mm.Id} uses LAM: arch_pgtable_dma_compat() is false");
                return null;
            }
            if (mm.Pasid is int have)
            {
                var max = dev.MaxPasids;
                var rejected = r.PasidRangeCheck switch
                {
                    PasidRangeCheck.InsideRange => have > max - 1,
                    PasidRangeCheck.RejectTopValue => have >= max - 1,
                    _ => have >= max,
                };
                if (rejected)
                {
                    var why = r.PasidRangeCheck == PasidRangeCheck.RejectTopValue && have == max - 1
                        ? $"mm PASID {have} is the top value {max - 1} of {dev.Id} (off-by-one check)"
                        : $"mm PASID {have} does not fit {dev.Id} (max_pasids {max})";
                    fail = new(Errno.EOVERFLOW, why);
                    return null;
                }
                return have;
            }
            if (dev.MaxPasids <= 1)
            {
                fail = r.NoPasidDevice == NoPasidDeviceRule.GlobalAllocator
                    ? new(Errno.ENOSPC, $"{dev.Id} has max_pasids {dev.MaxPasids}: no global PASID can be allocated")
                    : new(r.PasidExhausted, $"{dev.Id} has an empty PASID range (max_pasids {dev.MaxPasids})");
                return null;
            }
            var pasid = LowestFree(s.Pasids.Keys, 1, dev.MaxPasids - 1);
            if (pasid is null)
            {
                fail = new(r.PasidExhausted, $"PASID space [1, {dev.MaxPasids - 1}] exhausted");
                return null;
            }
            Emit(new PasidAllocated(mm.Id, pasid.Value));
            return pasid;
        }

        private static int? LowestFree(IEnumerable<int> used, int min, int max)
        {
            var want = min;
            foreach (var u in used) // sorted ascending
            {
                if (u < want) continue;
                if (u > want) break;
                want++;
            }
            return want <= max ? want : null;
        }

        /// <summary>Why iommu_attach_device_pasid(domain, dev, pasid) would fail; null if it succeeds. domain null: a fresh SVA domain.</summary>
        private Failure? AttachRefusal(DomainObj? domain, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            if (group.PasidArray.TryGetValue(pasid, out var slot))
                return new(Errno.EBUSY, slot.Domain == domain?.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {slot.Domain} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}");
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
            {
                if (r.AttachChecksEveryGroupDevice && member.MaxPasids > 0 && pasid >= member.MaxPasids)
                    return new(Errno.EINVAL, $"PASID {pasid} >= max_pasids {member.MaxPasids} of group member {member.Id}");
                if (!member.Sva)
                    return new(Errno.ENODEV, $"set_dev_pasid: SVA not enabled on {member.Id}");
            }
            if (r.BindNeedsLiveMm && mm.MmUsers == 0)
                return new(Errno.EINVAL, $"set_dev_pasid: mmget_not_zero(mm {mm.Id}) failed (mm exited)");
            if (domain is not null && r.SvaDomainPerIommuInstance)
            {
                var owner = domain.Attached.Select(a => s.Devices[a.Device].Iommu).FirstOrDefault();
                if (owner is not null && owner != dev.Iommu)
                    return new(Errno.EINVAL, $"{domain.Id} belongs to {owner}, {dev.Id} is behind {dev.Iommu} [U]");
            }
            return null;
        }

        private string AllocSvaDomain(MmObj mm)
        {
            var id = "D" + s.NextDomain;
            int? asid = null;
            if (r.AsidModel == AsidModel.PrivatePerDomain)
                asid = LowestFree(s.Domains.Values.Where(d => d.Asid is not null).Select(d => d.Asid!.Value).Order(), 1, 65535);
            Emit(new SvaDomainAllocated(id, mm.Id, asid));
            if (r.NotifierModel == NotifierModel.PerSvaDomain)
                Emit(new NotifierRegistered("N" + s.NextNotifier, mm.Id, null, id));
            return id;
        }

        /// <summary>Take the group's pasid_array slot, program every device; G2–G4 Arm also gets its bond/notifier.</summary>
        private void AttachSva(string domain, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            Emit(new DomainAttached(domain, dev.Id, pasid, group.Devices.ToList()));
            if (r.NotifierModel == NotifierModel.PerRidDomainAndMm) ArmBondGet(group, mm, writeEntries: false);
        }

        /// <summary>G1–G4 Arm: the per-mm CD (pinned CPU ASID) and the notifier per (RID domain, mm).</summary>
        private void ArmBondGet(GroupObj group, MmObj mm, bool writeEntries)
        {
            if (!s.ContextDescriptors.ContainsKey(mm.Id)) Emit(new ContextDescriptorAllocated(mm.Id, mm.Ordinal));
            var n = s.Notifiers.Values.FirstOrDefault(x => x.Mm == mm.Id && x.Group == group.Id && x.Domain is null);
            if (n is not null) { Emit(new NotifierRefsChanged(n.Id, n.Refs + 1)); return; }
            Emit(new NotifierRegistered("N" + s.NextNotifier, mm.Id, group.Id, null));
            if (writeEntries)
                foreach (var d in group.Devices) Emit(new PasidEntryWritten(d, mm.Pasid!.Value, mm.Id));
        }

        /// <summary>Drop a bond's notifier reference; at zero clear the CD (invalidating unless release already did) and maybe the per-mm CD.</summary>
        private void ArmBondPut(GroupObj group, MmObj mm, int pasid, bool clearEntries)
        {
            var n = s.Notifiers.Values.FirstOrDefault(x => x.Mm == mm.Id && x.Group == group.Id && x.Domain is null);
            if (n is null) return;
            if (n.Refs > 1) { Emit(new NotifierRefsChanged(n.Id, n.Refs - 1)); return; }
            var devices = group.Devices.Where(d => s.Devices[d].PasidTable.ContainsKey(pasid)).ToList();
            if (clearEntries)
                foreach (var d in devices) Emit(new PasidEntryCleared(d, pasid));
            if (!n.Cleared && s.ContextDescriptors.TryGetValue(mm.Id, out var asid))
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, 0, ulong.MaxValue, n.Id, $"asid {asid} all", devices.Count > 0 ? devices : group.Devices.ToList()));
            Emit(new NotifierFreed(n.Id));
            if (!s.Notifiers.Values.Any(x => x.Mm == mm.Id && x.Domain is null) && s.ContextDescriptors.TryGetValue(mm.Id, out var cdAsid))
            {
                Emit(new ContextDescriptorFreed(mm.Id, cdAsid));
                MaybeMmFree(mm);
            }
        }

        private string NextHandle() => "H" + s.NextHandle;

        // ---- unbind -----------------------------------------------------------------------------------
        private void Unbind(Unbind c)
        {
            var id = c.Handle;
            if (s.HandleNames.TryGetValue(c.Handle, out var named)) id = named;
            var h = s.HandleById(id);
            if (h is null)
            {
                string why;
                if (id.Length > 1 && id[0] == 'H' && int.TryParse(id.AsSpan(1), out var n) && s.FreedHandles.TryGetValue(n, out var freedAt))
                    why = $"handle {id} was freed at seq {freedAt} (use after free)";
                else if (s.FailedBinds.TryGetValue(c.Handle, out var failedAt))
                    why = $"bind '{c.Handle}' failed at seq {failedAt}: there is no handle to unbind";
                else why = $"no such handle '{c.Handle}'";
                Emit(new UnbindRejected(c.Handle, why));
                return;
            }
            var dev = s.Devices[h.Device];
            var mm = s.Mms[h.Mm];
            switch (r.Generation)
            {
                case Generation.G1:
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1)); return; }
                    Emit(new HandleFreed(h.Id));
                    ArmBondPut(s.GroupOf(dev), mm, h.Pasid, clearEntries: true);
                    if (r.PasidFreedAtLastUnbind && mm.Handles.Count == 0 && mm.Pasid is int p)
                        Emit(new PasidFreed(mm.Id, p, "last unbind (PASID refcount)"));
                    return;
                case Generation.G2:
                {
                    var d = s.Domain(h.Domain!);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) { DetachSva(d, dev, h.Pasid, mm); FreeSvaDomain(d, mm); }
                    Emit(new HandleFreed(h.Id));
                    return;
                }
                case Generation.G3:
                {
                    var d = s.Domain(h.Domain!);
                    DetachSva(d, dev, h.Pasid, mm);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) FreeSvaDomain(d, mm);
                    Emit(new HandleFreed(h.Id));
                    return;
                }
                default: // G4, G5
                {
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1)); return; }
                    var d = s.Domain(h.Domain!);
                    Emit(new HandleFreed(h.Id));
                    DetachSva(d, dev, h.Pasid, mm);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) FreeSvaDomain(d, mm);
                    return;
                }
            }
        }

        private void DetachSva(DomainObj d, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            var at = d.Attached.FirstOrDefault(a => a.Pasid == pasid && s.Devices[a.Device].Group == group.Id);
            Emit(new DomainDetached(d.Id, at?.Device ?? dev.Id, pasid, at?.Devices.ToList() ?? group.Devices.ToList()));
            if (r.NotifierModel == NotifierModel.PerRidDomainAndMm) ArmBondPut(group, mm, pasid, clearEntries: false);
        }

        private void FreeSvaDomain(DomainObj d, MmObj mm)
        {
            if (r.NotifierModel == NotifierModel.PerSvaDomain)
            {
                var n = s.Notifiers.Values.FirstOrDefault(x => x.Domain == d.Id);
                if (n is not null)
                {
                    if (!n.Cleared && mm.Pasid is int p)
                        Emit(new SecondaryTlbInvalidated(mm.Id, p, 0, ulong.MaxValue, n.Id, $"asid {d.Asid} all", Array.Empty<string>()));
                    Emit(new NotifierFreed(n.Id));
                }
            }
            Emit(new DomainFreed(d.Id));
            MaybeMmFree(mm);
        }

        /// <summary>After an mmdrop: at mm_count 0 the mm is freed and (5.18+) mm_pasid_drop frees its PASID.</summary>
        private void MaybeMmFree(MmObj mm)
        {
            if (mm.MmCount > 0 || mm.State != MmLife.Dropped) return;
            Emit(new MmFreed(mm.Id));
            if (!r.PasidFreedAtLastUnbind && mm.Pasid is int p) Emit(new PasidFreed(mm.Id, p, "__mmdrop (mm_pasid_drop)"));
        }

        // ---- page faults --------------------------------------------------------------------------------
        private void Fault(PageFault c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("fault", Errno.ENODEV, $"no such device {c.Device}")); return; }
            var group = s.GroupOf(dev);

            // Translation faults on paging domains are unrecoverable DMA faults, not page requests.
            var slotDomain = c.Pasid is int sp
                ? (group.PasidArray.TryGetValue(sp, out var sl) ? s.Domain(sl.Domain) : null)
                : s.DomainById(group.RidDomain);
            if (slotDomain is { Type: not "sva" })
            {
                var mapped = slotDomain.Mappings.Any(m => c.Address >= m.Iova && c.Address < m.End);
                var reason = slotDomain.Type switch
                {
                    "blocked" => "blocked domain: all DMA aborts",
                    "identity" => "identity domain: address outside RAM",
                    _ => mapped ? $"iova {SvaJson.Hex(c.Address)} is mapped in {slotDomain.Id}" : $"iova {SvaJson.Hex(c.Address)} is not mapped in {slotDomain.Id}",
                };
                Emit(new DmaFaultReported(dev.Id, c.Pasid, c.Address, c.Access, slotDomain.Id, reason));
                return;
            }

            if (!dev.Iopf)
            {
                Refuse(r.NotOnIopfQueueAnswer, dev, c, 1, $"{dev.Id} is not on an IOPF queue");
                return;
            }
            if (!c.Last)
            {
                Emit(new PageRequestQueued(dev.Id, c.Pasid, c.Group, c.Address, c.Access));
                return;
            }

            var requests = dev.Partial.Where(p => p.Group == c.Group && p.Pasid == c.Pasid)
                .Select(p => (p.Address, p.Access)).Append((c.Address, c.Access)).ToList();

            MmObj? mm = null;
            switch (r.FaultDispatch)
            {
                case FaultDispatch.GlobalPasidLookup:
                    if (c.Pasid is not int gp) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count); return; }
                    if (!s.Pasids.TryGetValue(gp, out var owner)) { Respond(dev, c, PageResponseCode.INVALID, $"iommu_sva_find({gp}): PASID not allocated", requests.Count); return; }
                    mm = s.Mms[owner];
                    break;
                case FaultDispatch.DomainLookupInWork:
                {
                    if (c.Pasid is not int wp) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count); return; }
                    if (!group.PasidArray.TryGetValue(wp, out var slot)) { Respond(dev, c, PageResponseCode.INVALID, $"no domain attached at PASID {wp}", requests.Count); return; }
                    mm = s.Mms[s.Domain(slot.Domain).Mm!];
                    break;
                }
                default:
                {
                    if (c.Pasid is not int rp || !group.PasidArray.TryGetValue(rp, out var slot))
                    {
                        var what = c.Pasid is null ? "RID" : $"PASID {c.Pasid}";
                        Refuse(r.NoDomainAnswer, dev, c, requests.Count, $"iopf ({what}) without domain attached or handler installed");
                        return;
                    }
                    mm = s.Mms[s.Domain(slot.Domain).Mm!];
                    break;
                }
            }

            foreach (var (addr, access) in requests)
            {
                if (mm.MmUsers == 0) { Respond(dev, c, PageResponseCode.INVALID, $"mmget_not_zero(mm {mm.Id}) failed: process exited", requests.Count); return; }
                var denied = VmaDenies(mm, addr, access);
                if (denied is not null) { Respond(dev, c, PageResponseCode.INVALID, denied, requests.Count); return; }
            }
            Respond(dev, c, PageResponseCode.SUCCESS, $"handle_mm_fault in mm {mm.Id}", requests.Count);
        }

        private static string? VmaDenies(MmObj mm, ulong addr, string access)
        {
            if (mm.Vmas.Count == 0) return access.Contains('x') ? $"no exec permission at {SvaJson.Hex(addr)} (implicit rw mapping)" : null;
            var vma = mm.Vmas.FirstOrDefault(v => addr >= v.Start && addr < v.End);
            if (vma is null) return $"no VMA at {SvaJson.Hex(addr)} in mm {mm.Id}";
            foreach (var want in access)
                if (!vma.Prot.Contains(want)) return $"access '{access}' not permitted by VMA {SvaJson.Hex(vma.Start)}-{SvaJson.Hex(vma.End)} prot={vma.Prot}";
            return null;
        }

        private void Respond(DeviceObj dev, PageFault c, PageResponseCode code, string reason, int requests) =>
            Emit(new PageResponseSent(dev.Id, c.Pasid, c.Group, code, reason, requests));

        private void Refuse(RefusedFaultAnswer answer, DeviceObj dev, PageFault c, int requests, string reason)
        {
            switch (answer)
            {
                case RefusedFaultAnswer.Failure: Respond(dev, c, PageResponseCode.FAILURE, reason + ": -EINVAL, driver aborts", requests); break;
                case RefusedFaultAnswer.Invalid: Respond(dev, c, PageResponseCode.INVALID, reason + ": core answers INVALID", requests); break;
                default: Emit(new PageResponseWithheld(dev.Id, c.Pasid, c.Group, reason + ": WARN, no response", requests)); break;
            }
        }

        // ---- invalidation, release, drop --------------------------------------------------------------
        private void Invalidate(InvalidateRange c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("invalidate", null, $"no such mm {c.Mm}")); return; }
            if (c.End <= c.Start) { Emit(new CallFailed("invalidate", Errno.EINVAL, $"empty range {SvaJson.Hex(c.Start)}-{SvaJson.Hex(c.End)}")); return; }
            Emit(new MmRangeInvalidated(mm.Id, c.Start, c.End));
            if (mm.State != MmLife.Live || mm.Pasid is not int pasid) return;
            var whole = (c.End - c.Start) / PageSize >= WholeAsidPages;
            foreach (var n in s.Notifiers.Values.Where(n => n.Mm == mm.Id).ToList())
            {
                if (n.Cleared) continue;
                List<string> atc;
                int? asid;
                if (n.Domain is null)
                {
                    atc = s.Groups[n.Group!.Value].Devices.Where(d => s.Devices[d].PasidTable.ContainsKey(pasid)).ToList();
                    asid = s.ContextDescriptors.TryGetValue(mm.Id, out var a) ? a : null;
                }
                else
                {
                    var d = s.Domain(n.Domain);
                    atc = d.Attached.SelectMany(a => a.Devices).Distinct().Order(StringComparer.Ordinal).ToList();
                    asid = d.Asid;
                }
                var tlbi = asid is null ? null : whole ? $"asid {asid} all" : $"asid {asid} range";
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, c.Start, c.End, n.Id, tlbi, atc));
            }
        }

        private void Exit(MmExit c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("exit", null, $"no such mm {c.Mm}")); return; }
            if (mm.State != MmLife.Live) { Emit(new CallFailed("exit", null, $"mm {c.Mm} has already exited")); return; }
            Release(mm);
        }

        private void Release(MmObj mm)
        {
            var live = s.Notifiers.Values.Where(n => n.Mm == mm.Id && !n.Cleared).ToList();
            Emit(new MmReleased(mm.Id));
            if (mm.Pasid is not int pasid) return;
            foreach (var n in live)
            {
                List<string> devices;
                string mode;
                int? asid;
                if (n.Domain is null)
                {
                    devices = s.Groups[n.Group!.Value].Devices.Where(d => s.Devices[d].PasidTable.ContainsKey(pasid)).ToList();
                    mode = "quiet";
                    asid = s.ContextDescriptors.TryGetValue(mm.Id, out var a) ? a : null;
                }
                else
                {
                    var d = s.Domain(n.Domain);
                    devices = d.Attached.SelectMany(a => a.Devices).Distinct().Order(StringComparer.Ordinal).ToList();
                    mode = "fault-all";
                    asid = d.Asid;
                }
                foreach (var dev in devices) Emit(new PasidEntryQuieted(dev, pasid, mode));
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, 0, ulong.MaxValue, n.Id, asid is null ? null : $"asid {asid} all", devices));
            }
        }

        private void Drop(MmDrop c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("drop", null, $"no such mm {c.Mm}")); return; }
            if (mm.State == MmLife.Dropped) { Emit(new CallFailed("drop", null, $"mm {c.Mm} was already dropped")); return; }
            if (mm.State == MmLife.Live) Release(mm); // mmput before the last mmdrop
            Emit(new MmDropped(mm.Id, mm.MmCount - 1));
            MaybeMmFree(mm);
        }

        // ---- non-SVA domains --------------------------------------------------------------------------
        private void AllocDomain(AllocDomain c)
        {
            if (s.DomainNames.ContainsKey(c.Name)) { Emit(new CallFailed("domain", Errno.EEXIST, $"domain {c.Name} already exists")); return; }
            if (c.Type is not ("paging" or "identity" or "blocked")) { Emit(new CallFailed("domain", Errno.EINVAL, $"domain type '{c.Type}' is not paging, identity or blocked")); return; }
            Emit(new DomainAllocated("D" + s.NextDomain, c.Name, c.Type));
        }

        private DomainObj? Named(string op, string name)
        {
            if (s.DomainNames.TryGetValue(name, out var id)) return s.Domain(id);
            var byId = s.DomainById(name);
            if (byId is not null) return byId;
            Emit(new CallFailed(op, Errno.EINVAL, $"no such domain {name}"));
            return null;
        }

        private void Attach(AttachDomain c)
        {
            var d = Named("attach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("attach", Errno.ENODEV, $"no such device {c.Device}")); return; }
            var group = s.GroupOf(dev);
            if (c.Pasid is not int pasid)
            {
                if (group.RidDomain is { } rid) { Emit(new CallFailed("attach", Errno.EBUSY, $"group {group.Id} RID already attached to {rid}")); return; }
                Emit(new DomainAttached(d.Id, dev.Id, null, group.Devices.ToList()));
                return;
            }
            if (r.Generation == Generation.G1) { Emit(new CallFailed("attach", Errno.EOPNOTSUPP, "no iommu_attach_device_pasid before 6.2")); return; }
            if (pasid == 0) { Emit(new CallFailed("attach", Errno.EINVAL, "PASID 0 is IOMMU_NO_PASID")); return; }
            if (group.PasidArray.TryGetValue(pasid, out var slot))
            {
                Emit(new CallFailed("attach", Errno.EBUSY, slot.Domain == d.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {d.Id} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}"));
                return;
            }
            if (r.AttachChecksEveryGroupDevice)
                foreach (var member in group.Devices.Select(x => s.Devices[x]))
                    if (member.MaxPasids > 0 && pasid >= member.MaxPasids)
                    {
                        Emit(new CallFailed("attach", Errno.EINVAL, $"PASID {pasid} >= max_pasids {member.MaxPasids} of {member.Id}"));
                        return;
                    }
            Emit(new DomainAttached(d.Id, dev.Id, pasid, group.Devices.ToList()));
        }

        private void Detach(DetachDomain c)
        {
            var d = Named("detach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("detach", Errno.ENODEV, $"no such device {c.Device}")); return; }
            var group = s.GroupOf(dev);
            var held = c.Pasid is int p ? (group.PasidArray.TryGetValue(p, out var sl) ? sl.Domain : null) : group.RidDomain;
            if (held != d.Id)
            {
                Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is not attached at {c.Device}{(c.Pasid is null ? "" : $" PASID {c.Pasid}")}"));
                return;
            }
            if (d.Type == "sva") { Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is an SVA domain: unbind its handle")); return; }
            Emit(new DomainDetached(d.Id, dev.Id, c.Pasid, group.Devices.ToList()));
        }

        private void Map(MapIova c)
        {
            var d = Named("map", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("map", Errno.EINVAL, $"{d.Id} is a {d.Type} domain: only paging domains map")); return; }
            if (c.End <= c.Iova) { Emit(new CallFailed("map", Errno.EINVAL, "empty IOVA range")); return; }
            if (d.Mappings.Any(m => c.Iova < m.End && m.Iova < c.End)) { Emit(new CallFailed("map", Errno.EEXIST, $"IOVA {SvaJson.Hex(c.Iova)}-{SvaJson.Hex(c.End)} overlaps a mapping")); return; }
            Emit(new IovaMapped(d.Id, c.Iova, c.End, c.Paddr));
        }

        private void Unmap(UnmapIova c)
        {
            var d = Named("unmap", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("unmap", Errno.EINVAL, $"{d.Id} is a {d.Type} domain")); return; }
            Emit(new IovaUnmapped(d.Id, c.Iova, c.End));
        }
    }
}
