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

        private const string Sim = "sim.unknown-object";

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
            if (s.Devices.ContainsKey(c.Device)) { Emit(new CallFailed("device", null, $"device {c.Device} is already probed", Sim)); return; }
            if (c.MaxPasids < 0) { Emit(new CallFailed("device", Errno.EINVAL, $"max_pasids {c.MaxPasids} is negative", "sim.misuse")); return; }
            if (!Drivers.All.Contains(c.Driver)) { Emit(new CallFailed("device", Errno.EINVAL, $"unknown IOMMU driver '{c.Driver}' (smmuv3, vtd, amd)", "sim.misuse")); return; }
            var group = c.Group ?? s.NextGroup;
            Emit(new DeviceProbed(c.Device, c.MaxPasids, group, c.Sva, c.Iopf, c.Iommu, c.Inferred, c.Driver));
        }

        private void CreateMm(CreateMm c)
        {
            if (s.Mms.ContainsKey(c.Mm)) { Emit(new CallFailed("mm", null, $"mm {c.Mm} already exists", Sim)); return; }
            if (c.Pasid is int want && (want < 1 || s.Pasids.ContainsKey(want)))
            {
                Emit(new CallFailed("mm", Errno.EINVAL, want < 1 ? $"PASID {want} is not allocatable" : $"PASID {want} is held by mm {s.Pasids[want]}", "sim.misuse"));
                return;
            }
            Emit(new MmCreated(c.Mm, c.Lam, c.Inferred));
            if (c.Pasid is int pasid) Emit(new PasidAllocated(c.Mm, pasid));
        }

        private void MapVma(MapVma c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("vma", null, $"no such mm {c.Mm}", Sim)); return; }
            if (mm.State != MmLife.Live) { Emit(new CallFailed("vma", null, $"mm {c.Mm} has exited", "sim.misuse")); return; }
            if (c.End <= c.Start) { Emit(new CallFailed("vma", Errno.EINVAL, $"empty range {SvaJson.Hex(c.Start)}-{SvaJson.Hex(c.End)}", "sim.misuse")); return; }
            Emit(new VmaMapped(c.Mm, c.Start, c.End, c.Prot));
        }

        // ---- bind -------------------------------------------------------------------------------------
        private void Bind(Bind c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new BindFailed(c.Device, c.Mm, Errno.ENODEV, $"no such device {c.Device}", c.Name, Sim)); return; }
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"no such mm {c.Mm}", c.Name, Sim)); return; }
            if (mm.State == MmLife.Dropped) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"mm {c.Mm} was dropped (use after free)", c.Name, "sim.mm-dropped")); return; }
            var failure = r.Generation switch
            {
                Generation.G1 => BindBond(dev, mm, c.Name),
                Generation.G2 => BindPerDeviceDomain(dev, mm, c.Name),
                Generation.G3 or Generation.G4 => BindSharedDomain(dev, mm, c.Name),
                _ => BindAttachHandle(dev, mm, c.Name),
            };
            if (failure is not { } f) return;
            if (f.BugSite is { } site) Emit(new KernelBug("bind", site, f.Reason, c.Name, f.Rule));
            else Emit(new BindFailed(c.Device, c.Mm, f.Errno, f.Reason, c.Name, f.Rule));
        }

        /// <summary>Why a step refused: an errno, or (<see cref="BugSite"/>) a kernel BUG that never returns.</summary>
        private readonly record struct Failure(Errno Errno, string Reason, string Rule, string? BugSite = null);

        private const string NotifierBugSite = "BUG_ON(mm_users <= 0) in __mmu_notifier_register";

        private bool IsArm(DeviceObj d) => d.Driver == Drivers.SmmuV3;

        /// <summary>
        /// G1 (§2 G1): iommu_sva_bind_device → arm_smmu_sva_bind. One bond per (dev, mm) with refs; the PASID
        /// comes from iommu_sva_alloc_pasid(mm, 1, (1 &lt;&lt; ssid_bits) - 1); the per-mm CD and the notifier per
        /// (RID domain, mm) are shared.
        /// </summary>
        private Failure? BindBond(DeviceObj dev, MmObj mm, string? name)
        {
            var group = s.GroupOf(dev);
            // step 2: iommu_sva_bind_device takes group->mutex and wants a singleton group.
            if (r.SingletonGroupOnly && group.Devices.Count != 1)
                return new(Errno.EINVAL, $"group {group.Id} has {group.Devices.Count} devices; SVA needs a singleton group", "g1.singleton-group");
            // step 3: the RID domain must be a stage-1 paging domain.
            if (RidRefusal(group, dev) is { } rid) return rid;
            // step 3a: 5.11/5.12 Arm: arm_smmu_iopf_supported() is false, SVA can never be enabled (§9).
            if (IsArm(dev) && !r.GenericIopf)
                return new(Errno.ENODEV, $"{dev.Id}: Arm SMMUv3 SVA needs IOPF support (arm_smmu_iopf_supported() is false before 5.13): SVA cannot be enabled", "arm.sva-needs-iopf");
            // SVA is only enabled on a master with SSIDs (ssid_bits > 0, i.e. max_pasids >= 2).
            if (r.NoPasidDevice == NoPasidDeviceRule.DriverEnodev && dev.MaxPasids <= 1)
                return new(Errno.ENODEV, $"{dev.Id} has no SSIDs (max_pasids {dev.MaxPasids}): SVA cannot be enabled", "g1.no-ssids");
            if (!dev.Sva) return new(Errno.ENODEV, $"SVA feature not enabled on {dev.Id}", "sva.not-enabled");
            // step 3b: an existing bond with the same mm is shared.
            var bond = mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id);
            if (bond is not null) { Emit(new HandleShared(bond.Id, bond.Users + 1, name, "g1.bond-shared")); return null; }
            // step 3c: the PASID (5.11–5.17: a reference on it).
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            // step 3d: the notifier for (RID domain, mm): a new one for an exited mm is a kernel BUG (never returns).
            if (ExitedMmRefusal(group, mm, existingDomain: false) is { } exited) return exited;
            ArmBondGet(group, mm, writeEntries: true);
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, null, pasid.Value, name, IsArm(dev) ? "g1.bond-new" : "g1.vtd-bond"));
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
                    return new(Errno.EBUSY, $"iommu_get_domain_for_dev_pasid({dev.Id}, {pasid}, SVA): slot holds {found.Id} of type {found.Type}", "g2.slot-not-sva");
                Emit(new DomainUsersChanged(found.Id, found.Users + 1));
                Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, found.Id, pasid.Value, name, "g2.domain-reused"));
                return null;
            }
            var refused = AttachRefusal(null, dev, pasid.Value, mm);
            if (refused is { } rf) return rf with { Reason = $"fresh SVA domain: {rf.Reason}" };
            IssueOnFreshDomain(dev, mm, pasid.Value, name, "g2.domain-new");
            return null;
        }

        /// <summary>iommu_sva_domain_alloc, attach at (dev, pasid), users = 1, and a new handle on it.</summary>
        private void IssueOnFreshDomain(DeviceObj dev, MmObj mm, int pasid, string? name, string rule)
        {
            var domain = AllocSvaDomain(mm);
            AttachSva(domain, dev, pasid, mm);
            Emit(new DomainUsersChanged(domain, 1));
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, domain, pasid, name, UncheckedRid(dev) ?? rule));
        }

        /// <summary>6.11+ Arm: a bind that went through only because the RID domain type is no longer checked [U].</summary>
        private string? UncheckedRid(DeviceObj dev)
        {
            if (!IsArm(dev) || r.NonPagingRidDomain != NonPagingRidDomainRule.NotChecked) return null;
            var rid = s.DomainById(s.GroupOf(dev).RidDomain);
            return rid is not null && rid.Type != "paging" ? "arm.rid-not-checked" : null;
        }

        /// <summary>G3 (6.8-rc1) and G4 (6.8): shared SVA domains; G4 first looks in the mm's handle list.</summary>
        private Failure? BindSharedDomain(DeviceObj dev, MmObj mm, string? name)
        {
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            if (r.Generation == Generation.G4)
            {
                var same = mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id);
                if (same is not null) { Emit(new HandleShared(same.Id, same.Users + 1, name, "g4.handle-shared")); return null; }
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
                    return new(Errno.EBUSY, $"iommu_attach_handle_get({pasid}, SVA): slot holds {found.Id} of type {found.Type}", "g5.slot-not-sva");
                if (found.Mm != mm.Id)
                    return new(Errno.EBUSY, $"PASID {pasid} slot holds {found.Id} of mm {found.Mm}", "g5.slot-other-mm");
                if (slot.Handle is { } hid)
                {
                    var h = s.Handle(hid);
                    Emit(new HandleShared(h.Id, h.Users + 1, name, "g5.handle-shared"));
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
                if (refused is { BugSite: not null } bug) return bug with { Reason = string.Join("; ", tried.Append(bug.Reason)) };
                if (refused is { } f) { tried.Add($"{d.Id}: -{f.Errno} ({f.Reason})"); continue; }
                AttachSva(d.Id, dev, pasid, mm);
                Emit(new DomainUsersChanged(d.Id, d.Users + 1));
                Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, d.Id, pasid, name, UncheckedRid(dev) ?? "g3.domain-shared"));
                return null;
            }
            var fresh = AttachRefusal(null, dev, pasid, mm);
            if (fresh is { } nf)
            {
                tried.Add(nf.BugSite is null ? $"fresh SVA domain: -{nf.Errno} ({nf.Reason})" : $"fresh SVA domain: {nf.Reason}");
                // G3: the same (dev, mm) again finds the slot taken by its own domain, then by the fresh one: the regression.
                var rule = r.Generation == Generation.G3 && nf.Rule == "attach.slot-busy" ? "g3.rebind-ebusy" : nf.Rule;
                return nf with { Reason = string.Join("; ", tried), Rule = rule };
            }
            IssueOnFreshDomain(dev, mm, pasid, name, "g3.domain-new");
            return null;
        }

        /// <summary>The mm's PASID for this device: the range check or a fresh allocation (kernel-sva.md §1.6, §2).</summary>
        private int? MmPasid(DeviceObj dev, MmObj mm, out Failure? fail)
        {
            fail = null;
            // 6.2–6.5 iommu_sva_bind_device: no PASID support at all.
            if (r.NoPasidDevice == NoPasidDeviceRule.CoreEopnotsupp && dev.MaxPasids == 0)
            {
                fail = new(Errno.EOPNOTSUPP, $"{dev.Id} has max_pasids 0", "pasid.no-pasid-eopnotsupp");
                return null;
            }
            // 6.4+: arch_pgtable_dma_compat(mm) (x86 LAM).
            if (r.LamCheck && mm.Lam)
            {
                fail = new(Errno.EBUSY, $"mm {mm.Id} uses LAM: arch_pgtable_dma_compat() is false", "pasid.lam");
                return null;
            }
            var max = dev.MaxPasids - 1; // the allocation range is [1, max_pasids - 1]
            // 5.11–6.5: iommu_sva_alloc_pasid(mm, min, max) validates its arguments before looking at mm->pasid.
            if (r.RejectEmptyPasidRange && max < 1)
            {
                fail = new(Errno.EINVAL, $"iommu_sva_alloc_pasid(min 1, max {max}): empty range for {dev.Id} (max_pasids {dev.MaxPasids})", "pasid.empty-range");
                return null;
            }
            if (mm.Pasid is int have)
            {
                var rejected = r.PasidRangeCheck switch
                {
                    PasidRangeCheck.InsideRange => have > max,
                    PasidRangeCheck.RejectTopValue => have >= max,
                    _ => have >= dev.MaxPasids,
                };
                if (rejected)
                {
                    var why = r.PasidRangeCheck == PasidRangeCheck.RejectTopValue && have == max
                        ? $"mm PASID {have} is the top value {max} of {dev.Id} (off-by-one check)"
                        : $"mm PASID {have} does not fit {dev.Id} (max_pasids {dev.MaxPasids})";
                    fail = new(Errno.EOVERFLOW, why, r.PasidRangeCheck switch
                    {
                        PasidRangeCheck.InsideRange => "pasid.range-inside",
                        PasidRangeCheck.RejectTopValue => "pasid.range-off-by-one",
                        _ => "pasid.range-above-max",
                    });
                    return null;
                }
                return have;
            }
            // Lowest free value of [1, max_pasids - 1] (ioasid xa_alloc / IDA); an empty range fails like a full one
            // (6.4+ ida_alloc_range -ENOSPC; 6.6+ iommu_alloc_global_pasid returns IOMMU_PASID_INVALID -> -ENOSPC).
            var pasid = max < 1 ? null : LowestFree(s.Pasids.Keys, 1, max);
            if (pasid is null)
            {
                fail = new(r.PasidExhausted, max < 1
                    ? $"{dev.Id} has max_pasids {dev.MaxPasids}: no PASID can be allocated"
                    : $"PASID space [1, {max}] exhausted",
                    r.PasidExhausted == Errno.ENOMEM ? "pasid.exhausted-ioasid"
                    : r.NoPasidDevice == NoPasidDeviceRule.GlobalAllocator ? "pasid.exhausted-global" : "pasid.exhausted-ida");
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

        /// <summary>
        /// Why iommu_attach_device_pasid(domain, dev, pasid) of an SVA domain would fail; null if it succeeds.
        /// <paramref name="domain"/> null: a fresh SVA domain of <paramref name="mm"/>. Order as in the kernel:
        /// the core's checks (G4+: every group device's max_pasids; the slot), then set_dev_pasid on every
        /// device of the group (the driver's checks).
        /// </summary>
        private Failure? AttachRefusal(DomainObj? domain, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            if (MaxPasidsRefusal(group, pasid) is { } tooBig) return tooBig;
            if (group.PasidArray.TryGetValue(pasid, out var slot))
                return new(Errno.EBUSY, slot.Domain == domain?.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {slot.Domain} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}", "attach.slot-busy");
            if (RidRefusal(group, dev) is { } rid) return rid;
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
                if (!SvaUsable(member))
                    return new(Errno.ENODEV, $"set_dev_pasid: SVA not enabled on {member.Id}{(member.MaxPasids <= 1 ? $" (max_pasids {member.MaxPasids})" : "")}", "sva.not-enabled");
            if (domain is not null && r.SvaDomainPerIommuInstance && IsArm(dev))
            {
                var owner = domain.Attached.Select(a => s.Devices[a.Device].Iommu).FirstOrDefault();
                if (owner is not null && owner != dev.Iommu)
                    return new(Errno.EINVAL, $"{domain.Id} belongs to {owner}, {dev.Id} is behind {dev.Iommu} [U]", "arm.other-smmu");
            }
            if (ExitedMmRefusal(group, mm, existingDomain: domain is not null) is { } exited) return exited;
            return null;
        }

        /// <summary>G4+ (c404f55c26fc): every device of the group must have pasid &lt; max_pasids, max_pasids 0 included.</summary>
        private Failure? MaxPasidsRefusal(GroupObj group, int pasid)
        {
            if (!r.AttachChecksEveryGroupDevice) return null;
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
                if (pasid >= member.MaxPasids)
                    return new(Errno.EINVAL, $"PASID {pasid} >= max_pasids {member.MaxPasids} of group member {member.Id}", "attach.member-max-pasids");
            return null;
        }

        /// <summary>The driver enables SVA only on a master that has it on and has SSIDs (max_pasids >= 2).</summary>
        private static bool SvaUsable(DeviceObj d) => d.Sva && d.MaxPasids > 1;

        /// <summary>G1 step 3 / 6.2–6.10 Arm set_dev_pasid: the RID domain must be stage-1 paging (identity and blocked are not).</summary>
        private Failure? RidRefusal(GroupObj group, DeviceObj dev)
        {
            if (!IsArm(dev) || s.DomainById(group.RidDomain) is not { } rid || rid.Type == "paging") return null;
            var why = $"RID domain {rid.Id} of group {group.Id} is {rid.Type}, not a stage-1 paging domain";
            return r.NonPagingRidDomain switch
            {
                NonPagingRidDomainRule.BindEinval => new(Errno.EINVAL, why, "g1.rid-not-s1"),
                // [U] 6.2–6.8: the errno of the WARN_ON path in arm_smmu_write_ctx_desc() is not established; -ENODEV kept.
                NonPagingRidDomainRule.UncertainEnodev => new(Errno.ENODEV, why + " [U: errno not established before ae91f6552c30]", "arm.rid-not-s1.uncertain"),
                NonPagingRidDomainRule.CheckedEnodev => new(Errno.ENODEV, why, "arm.rid-not-s1"),
                _ => null,
            };
        }

        /// <summary>
        /// §9 (replacing §4 row 20): a new attachment for an mm whose process exited (mm_users 0). Nothing returns an
        /// errno: a new mmu_notifier hits BUG_ON(mm_users &lt;= 0) in __mmu_notifier_register. G1–G4: a notifier of
        /// (RID domain, mm) that already exists only takes a reference [I]. G5: attaching an existing SVA domain
        /// fails -EINVAL (mmget_not_zero in Arm set_dev_pasid), which iommu_sva_bind_device discards before it
        /// allocates a fresh domain, whose notifier registration hits the BUG.
        /// </summary>
        private Failure? ExitedMmRefusal(GroupObj group, MmObj mm, bool existingDomain)
        {
            if (mm.MmUsers > 0) return null;
            switch (r.ExitedMmBind)
            {
                case ExitedMmBind.MmgetSwallowedThenBugOn:
                    if (existingDomain)
                        return new(Errno.EINVAL, $"set_dev_pasid: mmget_not_zero(mm {mm.Id}) failed (mm exited); error discarded", "bug.notifier-register-g5");
                    return new(Errno.EINVAL, $"mm {mm.Id} has exited: the fresh SVA domain's mmu_notifier_register hits BUG_ON(mm_users <= 0)",
                        "bug.notifier-register-g5", NotifierBugSite);
                default:
                    if (ArmNotifier(group, mm) is not null) return null;
                    return new(Errno.EINVAL, $"mm {mm.Id} has exited: registering its mmu_notifier hits BUG_ON(mm_users <= 0)",
                        "bug.notifier-register", NotifierBugSite);
            }
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

        /// <summary>The G1–G4 Arm notifier of (RID domain, mm). Each group has its own (default) RID domain here.</summary>
        private NotifierObj? ArmNotifier(GroupObj group, MmObj mm) =>
            s.Notifiers.Values.FirstOrDefault(x => x.Mm == mm.Id && x.Group == group.Id && x.Domain is null);

        /// <summary>G1–G4 Arm: the per-mm CD (pinned CPU ASID, holds an mmgrab) and the notifier per (RID domain, mm).</summary>
        private void ArmBondGet(GroupObj group, MmObj mm, bool writeEntries)
        {
            if (!s.ContextDescriptors.ContainsKey(mm.Id)) Emit(new ContextDescriptorAllocated(mm.Id, mm.Ordinal));
            var n = ArmNotifier(group, mm);
            if (n is not null) { Emit(new NotifierRefsChanged(n.Id, n.Refs + 1)); return; }
            Emit(new NotifierRegistered("N" + s.NextNotifier, mm.Id, group.Id, null));
            if (writeEntries)
                foreach (var d in group.Devices) Emit(new PasidEntryWritten(d, mm.Pasid!.Value, mm.Id));
        }

        /// <summary>Drop a bond's notifier reference; at zero clear the CD (invalidating unless release already did) and maybe the per-mm CD.</summary>
        private void ArmBondPut(GroupObj group, MmObj mm, int pasid, bool clearEntries)
        {
            var n = ArmNotifier(group, mm);
            if (n is null) return;
            if (n.Refs > 1) { Emit(new NotifierRefsChanged(n.Id, n.Refs - 1)); return; }
            var devices = group.Devices.Where(d => s.Devices[d].PasidTable.ContainsKey(pasid)).ToList();
            if (clearEntries)
                foreach (var d in devices) Emit(new PasidEntryCleared(d, pasid));
            if (!n.Cleared && s.ContextDescriptors.TryGetValue(mm.Id, out var asid))
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, 0, ulong.MaxValue, n.Id, $"asid {asid} all", devices.Count > 0 ? devices : group.Devices.ToList()));
            Emit(new NotifierFreed(n.Id));
            // The shared CD goes with the last notifier of the mm (unpin the ASID, mmdrop). The callers free
            // the mm after their own steps: the notifier's SRCU-deferred mmdrop keeps it alive until then.
            if (!s.Notifiers.Values.Any(x => x.Mm == mm.Id && x.Domain is null) && s.ContextDescriptors.TryGetValue(mm.Id, out var cdAsid))
                Emit(new ContextDescriptorFreed(mm.Id, cdAsid));
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
                Emit(new UnbindRejected(c.Handle, why, "sim.unbind-freed"));
                return;
            }
            var dev = s.Devices[h.Device];
            var mm = s.Mms[h.Mm];
            switch (r.Generation)
            {
                case Generation.G1:
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1, "g1.unbind")); return; }
                    // __arm_smmu_sva_unbind at refs 0: unlink, notifier put (CD cleared, TLBI/ATC unless cleared,
                    // shared CD dropped), 5.11–5.17 iommu_sva_free_pasid, free the bond.
                    Emit(new HandleFreed(h.Id, "g1.unbind"));
                    ArmBondPut(s.GroupOf(dev), mm, h.Pasid, clearEntries: true);
                    if (r.PasidFreedAtLastUnbind && mm.Handles.Count == 0 && mm.Pasid is int p)
                        Emit(new PasidFreed(mm.Id, p, "last unbind (PASID refcount)"));
                    MaybeMmFree(mm);
                    return;
                case Generation.G2:
                {
                    var d = s.Domain(h.Domain!);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) { DetachSva(d, dev, h.Pasid, mm); FreeSvaDomain(d, mm); }
                    Emit(new HandleFreed(h.Id, "g2.unbind"));
                    return;
                }
                case Generation.G3:
                {
                    var d = s.Domain(h.Domain!);
                    DetachSva(d, dev, h.Pasid, mm);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) FreeSvaDomain(d, mm);
                    Emit(new HandleFreed(h.Id, "g3.unbind"));
                    return;
                }
                default: // G4, G5
                {
                    // handle->users--; at 0: (G4: unlink from iommu_mm->sva_handles) detach the PASID,
                    // domain->users-- (free at 0), then kfree(handle).
                    var rule = r.Generation == Generation.G4 ? "g4.unbind" : "g5.unbind";
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1, rule)); return; }
                    var d = s.Domain(h.Domain!);
                    DetachSva(d, dev, h.Pasid, mm);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) FreeSvaDomain(d, mm);
                    Emit(new HandleFreed(h.Id, rule));
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
            MaybeMmFree(mm);
        }

        private void FreeSvaDomain(DomainObj d, MmObj mm)
        {
            if (r.NotifierModel == NotifierModel.PerSvaDomain)
            {
                var n = s.Notifiers.Values.FirstOrDefault(x => x.Domain == d.Id);
                if (n is not null)
                {
                    // 6.11+ Arm domain free: TLBI by the private ASID before it can be reused (unconditional:
                    // there is no 'cleared' shortcut in G5), then mmu_notifier_put. Nothing is attached any more: no ATC.
                    if (mm.Pasid is int p)
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
            // 5.18+: mm_pasid_drop() in __mmdrop (G3+: with iommu_mm). 5.11–5.17 freed it at the last unbind
            // already; a PASID still held then can only come from a capture (an mm seen with its PASID).
            if (mm.Pasid is int p)
                Emit(new PasidFreed(mm.Id, p, r.PasidFreedAtLastUnbind ? "__mmdrop (mm gone; no bond held the PASID)" : "__mmdrop (mm_pasid_drop)"));
        }

        // ---- page faults --------------------------------------------------------------------------------
        /// <summary>
        /// A page request (kernel-sva.md §3.1 as corrected by §9). Per request: a non-SVA domain at the slot means
        /// plain DMA (translated, or an unrecoverable fault); on 6.11+ an Arm master whose PASID entry is the
        /// fault-everything CD (released mm) has the access aborted by the SMMU; otherwise the IOPF path of the version: where the handler
        /// is looked up, what a refused request gets back, the partial list, then the group's requests one by
        /// one (sticky errors) and one response for the group.
        /// </summary>
        private void Fault(PageFault c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("fault", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            var group = s.GroupOf(dev);

            var slotDomain = c.Pasid is int sp
                ? (group.PasidArray.TryGetValue(sp, out var sl) ? s.Domain(sl.Domain) : null)
                : s.DomainById(group.RidDomain);
            if (slotDomain is { Type: not "sva" }) { Dma(dev, c, slotDomain); return; }

            // 6.11+ Arm (§9): release wrote a fault-everything CD with CD_0_S/CD_0_R cleared (the modelled masters
            // have no STALL_FORCE): the SMMU aborts the access itself: no event, no fault report, no page response.
            if (IsArm(dev) && r.ArmReleaseAbortsAccess && c.Pasid is int ap && dev.PasidTable.TryGetValue(ap, out var entry) && entry.Mode == "fault-all")
            {
                Emit(new AccessAborted(dev.Id, c.Pasid, c.Address, c.Access, c.Group,
                    $"PASID {ap} of {dev.Id} holds a fault-everything CD (mm {entry.Mm} released): the SMMU aborts the access, no page request", "arm.access-aborted"));
                return;
            }

            // The SVA domain that handles this request's PASID (the IOPF handler), if any.
            var handler = c.Pasid is int hp && group.PasidArray.TryGetValue(hp, out var hs) ? s.Domain(hs.Domain) : null;
            var what = c.Pasid is null ? "RID" : $"PASID {c.Pasid}";

            // 6.11+ (b58b133e680b, the Aug-2024 fix): find_fault_handler before anything else, for every request.
            if (r.FaultHandlerLookup == FaultHandlerLookup.BeforeAnything && handler is null)
            {
                Refuse(r.NoDomainAnswer, dev, c, GroupSize(dev, c), $"iopf ({what}) without a fault handler", "iopf.no-handler-invalid");
                return;
            }
            // No IOPF queue: iommu_report_device_fault fails (or WARNs) for every request, last or not.
            if (!dev.Iopf)
            {
                Refuse(r.NotOnIopfQueueAnswer, dev, c, 1, $"{dev.Id} is not on an IOPF queue", r.NotOnIopfQueueAnswer switch
                {
                    RefusedFaultAnswer.Failure => "iopf.no-queue-failure",
                    RefusedFaultAnswer.NoResponse => "iopf.no-queue-withheld",
                    _ => "iopf.no-queue-invalid",
                });
                return;
            }
            // Non-last requests are parked on the partial list, never answered.
            if (!c.Last)
            {
                Emit(new PageRequestQueued(dev.Id, c.Pasid, c.Group, c.Address, c.Access, Prq("iopf.partial")));
                return;
            }

            // The last request: the group is the parked requests with its grpid (iopf_group_alloc matches
            // on grpid only), then this one.
            var requests = dev.Partial.Where(p => p.Group == c.Group)
                .Select(p => (p.Address, p.Access)).Append((c.Address, c.Access)).ToList();

            MmObj mm;
            switch (r.FaultDispatch)
            {
                case FaultDispatch.GlobalPasidLookup:
                    // 5.13–6.1: the work item finds the mm by PASID, globally (iommu_sva_find).
                    if (c.Pasid is not int gp) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count, Prq("iopf.global-pasid")); return; }
                    if (!s.Pasids.TryGetValue(gp, out var owner)) { Respond(dev, c, PageResponseCode.INVALID, $"iommu_sva_find({gp}): PASID not allocated", requests.Count, Prq("iopf.global-pasid")); return; }
                    mm = s.Mms[owner];
                    break;
                case FaultDispatch.DomainLookupInWork:
                    // 6.2–6.6: the work item looks up iommu_get_domain_for_dev_pasid(dev, pasid, 0).
                    if (c.Pasid is null) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count, "iopf.domain-in-work"); return; }
                    if (handler is null) { Respond(dev, c, PageResponseCode.INVALID, $"no domain attached at {what}", requests.Count, "iopf.domain-in-work"); return; }
                    mm = s.Mms[handler.Mm!];
                    break;
                default:
                    // 6.7+: the report path looks the domain (6.11+: the attach handle) up; refusals per version.
                    if (handler is null)
                    {
                        if (r.NoDomainAnswer == RefusedFaultAnswer.Invalid)
                            // 6.7–6.8 (§9): the work item iopf_handler finds no domain and answers INVALID itself.
                            Respond(dev, c, PageResponseCode.INVALID, $"iopf_handler: no domain attached at {what}", requests.Count, "iopf.no-domain-invalid-6.7");
                        else
                            Refuse(r.NoDomainAnswer, dev, c, requests.Count, $"iopf with {what} aborted: no domain attached", "iopf.no-domain-failure");
                        return;
                    }
                    mm = s.Mms[handler.Mm!];
                    break;
            }

            // iommu_sva_handle_mm / iopf_handler: one request after the other, the first error is sticky.
            foreach (var (addr, access) in requests)
            {
                if (mm.MmUsers == 0) { Respond(dev, c, PageResponseCode.INVALID, $"mmget_not_zero(mm {mm.Id}) failed: process exited", requests.Count, Prq("iopf.mm-exited")); return; }
                var denied = VmaDenies(mm, addr, access);
                if (denied is not null) { Respond(dev, c, PageResponseCode.INVALID, denied, requests.Count, Prq("iopf.vma-denied")); return; }
            }
            Respond(dev, c, PageResponseCode.SUCCESS, $"handle_mm_fault in mm {mm.Id}", requests.Count, Prq("iopf.handled"));
        }

        /// <summary>The generic IOPF rule, or before 5.13 the vendor page-request path it stands in for [U].</summary>
        private string Prq(string generic) => r.GenericIopf ? generic : "iopf.vendor-prq";

        private static int GroupSize(DeviceObj dev, PageFault c) => c.Last ? dev.Partial.Count(p => p.Group == c.Group) + 1 : 1;

        /// <summary>DMA through a paging, identity or blocked domain: no page request, translated or an unrecoverable fault.</summary>
        private void Dma(DeviceObj dev, PageFault c, DomainObj d)
        {
            switch (d.Type)
            {
                case "identity":
                    Emit(new DmaTranslated(dev.Id, c.Pasid, c.Address, c.Access, d.Id, c.Address, DmaRule));
                    return;
                case "blocked":
                    Emit(new DmaFaultReported(dev.Id, c.Pasid, c.Address, c.Access, d.Id, $"blocked domain {d.Id}: all DMA is refused", DmaRule));
                    return;
            }
            var m = d.Mappings.FirstOrDefault(m => c.Address >= m.Iova && c.Address < m.End);
            if (m is not null) Emit(new DmaTranslated(dev.Id, c.Pasid, c.Address, c.Access, d.Id, m.Paddr + (c.Address - m.Iova), DmaRule));
            else Emit(new DmaFaultReported(dev.Id, c.Pasid, c.Address, c.Access, d.Id, $"iova {SvaJson.Hex(c.Address)} is not mapped in {d.Id}", DmaRule));
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

        private const string DmaRule = "dma.non-sva-domain";

        private void Respond(DeviceObj dev, PageFault c, PageResponseCode code, string reason, int requests, string rule) =>
            Emit(new PageResponseSent(dev.Id, c.Pasid, c.Group, code, reason, requests, rule));

        private void Refuse(RefusedFaultAnswer answer, DeviceObj dev, PageFault c, int requests, string reason, string rule)
        {
            switch (answer)
            {
                case RefusedFaultAnswer.Failure: Respond(dev, c, PageResponseCode.FAILURE, reason + ": -EINVAL, driver aborts", requests, rule); break;
                case RefusedFaultAnswer.Invalid: Respond(dev, c, PageResponseCode.INVALID, reason + ": core answers INVALID", requests, rule); break;
                default: Emit(new PageResponseWithheld(dev.Id, c.Pasid, c.Group, reason + ": WARN, no response", requests, rule)); break;
            }
        }

        // ---- invalidation, release, drop --------------------------------------------------------------
        /// <summary>
        /// §3.2 with §9: one round of invalidation per notifier of the mm (G1–G4 Arm: per (RID domain, mm); G5: per
        /// SVA domain). Arm TLBI: 5.11 none (BTM was mandatory: the broadcast CPU TLBI covers the shared ASID), ATC
        /// only; 5.12–6.5 a range TLBI by ASID for any size; 6.6+ (d5afb4b47e13) a range of 512 pages or more
        /// becomes a whole-ASID TLBI. From 5.12 the modelled SMMU has no BTM, so G1–G4 send the TLBI by the shared
        /// CPU ASID. VT-d / AMD devices: a flush by PASID [U]. ATC: every device holding the PASID.
        /// </summary>
        private void Invalidate(InvalidateRange c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("invalidate", null, $"no such mm {c.Mm}", Sim)); return; }
            if (c.End <= c.Start) { Emit(new CallFailed("invalidate", Errno.EINVAL, $"empty range {SvaJson.Hex(c.Start)}-{SvaJson.Hex(c.End)}", "sim.misuse")); return; }
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
                var arm = atc.Count == 0 || atc.Any(d => IsArm(s.Devices[d]));
                string? tlbi;
                string rule;
                if (!arm) { tlbi = $"pasid {pasid}"; rule = "inv.pasid-flush"; }
                else
                {
                    rule = r.ArmNotifierTlbi switch
                    {
                        ArmNotifierTlbi.AtcOnly => "inv.arm-btm-atc-only",
                        ArmNotifierTlbi.RangeByAsid => "inv.arm-range",
                        _ => "inv.arm-threshold",
                    };
                    tlbi = asid is null || r.ArmNotifierTlbi == ArmNotifierTlbi.AtcOnly ? null
                        : whole && r.ArmNotifierTlbi == ArmNotifierTlbi.WholeAsidPastThreshold ? $"asid {asid} all" : $"asid {asid} range";
                }
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, c.Start, c.End, n.Id, tlbi, atc, rule));
            }
        }

        private void Exit(MmExit c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("exit", null, $"no such mm {c.Mm}", Sim)); return; }
            if (mm.State != MmLife.Live) { Emit(new CallFailed("exit", null, $"mm {c.Mm} has already exited", "sim.misuse")); return; }
            Release(mm);
        }

        private void Release(MmObj mm)
        {
            var live = s.Notifiers.Values.Where(n => n.Mm == mm.Id && !n.Cleared).ToList();
            Emit(new MmReleased(mm.Id, live.Count == 0 || mm.Pasid is null ? "release.none"
                : r.NotifierModel == NotifierModel.PerSvaDomain ? "release.fault-all-cd" : "release.quiet-cd"));
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
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("drop", null, $"no such mm {c.Mm}", Sim)); return; }
            if (mm.State == MmLife.Dropped) { Emit(new CallFailed("drop", null, $"mm {c.Mm} was already dropped", "sim.misuse")); return; }
            if (mm.State == MmLife.Live) Release(mm); // mmput before the last mmdrop
            Emit(new MmDropped(mm.Id, mm.MmCount - 1));
            MaybeMmFree(mm);
        }

        // ---- non-SVA domains --------------------------------------------------------------------------
        private void AllocDomain(AllocDomain c)
        {
            if (s.DomainNames.ContainsKey(c.Name)) { Emit(new CallFailed("domain", Errno.EEXIST, $"domain {c.Name} already exists", Sim)); return; }
            if (c.Type is not ("paging" or "identity" or "blocked")) { Emit(new CallFailed("domain", Errno.EINVAL, $"domain type '{c.Type}' is not paging, identity or blocked", "sim.misuse")); return; }
            Emit(new DomainAllocated("D" + s.NextDomain, c.Name, c.Type));
        }

        private DomainObj? Named(string op, string name)
        {
            if (s.DomainNames.TryGetValue(name, out var id)) return s.Domain(id);
            var byId = s.DomainById(name);
            if (byId is not null) return byId;
            Emit(new CallFailed(op, Errno.EINVAL, $"no such domain {name}", Sim));
            return null;
        }

        /// <summary>
        /// A script's non-SVA attach. RID (no pasid=): iommu_attach_device. PASID: iommu_attach_device_pasid
        /// with the pasid_array slot rules of §2 G2 (a used slot is -EBUSY, even for the same domain).
        /// </summary>
        private void Attach(AttachDomain c)
        {
            var d = Named("attach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("attach", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            if (d.Type == "sva") { Emit(new CallFailed("attach", Errno.EINVAL, $"{d.Id} is an SVA domain: it is attached by bind", "sim.misuse")); return; }
            var group = s.GroupOf(dev);
            if (c.Pasid is not int pasid)
            {
                // [I] iommu_attach_device() is the legacy singleton-group API; the group then owns its RID
                // domain until detached (a second explicit domain is -EBUSY). Not in kernel-sva.md.
                if (group.Devices.Count != 1) { Emit(new CallFailed("attach", Errno.EINVAL, $"iommu_attach_device: group {group.Id} has {group.Devices.Count} devices", "attach.rid")); return; }
                if (group.RidDomain is { } rid) { Emit(new CallFailed("attach", Errno.EBUSY, $"group {group.Id} RID already attached to {rid}", "attach.rid")); return; }
                Emit(new DomainAttached(d.Id, dev.Id, null, group.Devices.ToList(), "attach.rid"));
                return;
            }
            if (r.Generation == Generation.G1) { Emit(new CallFailed("attach", Errno.EOPNOTSUPP, "no iommu_attach_device_pasid before 6.2", "attach.no-pasid-api")); return; }
            // G4+ core: pasid != IOMMU_NO_PASID [V]; G2/G3 [I]: the core lets it through and the driver refuses PASID 0.
            if (pasid == 0) { Emit(new CallFailed("attach", Errno.EINVAL, "PASID 0 is IOMMU_NO_PASID", "attach.pasid-zero")); return; }
            if (MaxPasidsRefusal(group, pasid) is { } tooBig) { Emit(new CallFailed("attach", tooBig.Errno, tooBig.Reason, tooBig.Rule)); return; }
            if (group.PasidArray.TryGetValue(pasid, out var slot))
            {
                Emit(new CallFailed("attach", Errno.EBUSY, slot.Domain == d.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {d.Id} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}", "attach.slot-busy"));
                return;
            }
            Emit(new DomainAttached(d.Id, dev.Id, pasid, group.Devices.ToList(), "attach.ok"));
        }

        private void Detach(DetachDomain c)
        {
            var d = Named("detach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("detach", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            var group = s.GroupOf(dev);
            var held = c.Pasid is int p ? (group.PasidArray.TryGetValue(p, out var sl) ? sl.Domain : null) : group.RidDomain;
            if (held != d.Id)
            {
                Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is not attached at {c.Device}{(c.Pasid is null ? "" : $" PASID {c.Pasid}")}", "sim.misuse"));
                return;
            }
            if (d.Type == "sva") { Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is an SVA domain: unbind its handle", "sim.misuse")); return; }
            Emit(new DomainDetached(d.Id, dev.Id, c.Pasid, group.Devices.ToList(), "attach.detach"));
        }

        private void Map(MapIova c)
        {
            var d = Named("map", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("map", Errno.EINVAL, $"{d.Id} is a {d.Type} domain: only paging domains map", "domain.map")); return; }
            if (c.End <= c.Iova) { Emit(new CallFailed("map", Errno.EINVAL, "empty IOVA range", "domain.map")); return; }
            if (d.Mappings.Any(m => c.Iova < m.End && m.Iova < c.End)) { Emit(new CallFailed("map", Errno.EEXIST, $"IOVA {SvaJson.Hex(c.Iova)}-{SvaJson.Hex(c.End)} overlaps a mapping", "domain.map")); return; }
            Emit(new IovaMapped(d.Id, c.Iova, c.End, c.Paddr));
        }

        private void Unmap(UnmapIova c)
        {
            var d = Named("unmap", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("unmap", Errno.EINVAL, $"{d.Id} is a {d.Type} domain", "domain.map")); return; }
            Emit(new IovaUnmapped(d.Id, c.Iova, c.End));
        }
    }
}
