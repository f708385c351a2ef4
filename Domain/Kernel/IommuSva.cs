using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>bind/unbind and the PASID (drivers/iommu/iommu-sva.c, with the G1 driver bond and mm_pasid_drop): the <c>sva-bind</c>, <c>rebind-same-device-mm</c>, PASID and exited-mm switches.</summary>
public static partial class SvaKernel
{
    private sealed partial class Run
    {
        // ---- the switches of this file: each is read here and nowhere else (KernelSwitches names them) ----
        /// <summary>Switch <c>sva-bind</c>.</summary>
        private SvaBindModel BindModel => r.SvaBind;
        /// <summary>Switch <c>rebind-same-device-mm</c>.</summary>
        private RebindSameDeviceMm Rebind => r.RebindSameDeviceMm;
        /// <summary>Switch <c>pasid-range-check</c>.</summary>
        private PasidRangeCheck RangeCheck => r.PasidRangeCheck;
        /// <summary>Switch <c>no-pasid-device</c>.</summary>
        private NoPasidDeviceRule NoPasid => r.NoPasidDevice;
        /// <summary>Switch <c>pasid-lifetime</c>.</summary>
        private bool PasidRefcounted => r.PasidFreedAtLastUnbind;
        /// <summary>Switch <c>pasid-exhausted</c>.</summary>
        private Errno ExhaustedErrno => r.PasidExhausted;

        private void Bind(Bind c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new BindFailed(c.Device, c.Mm, Errno.ENODEV, $"no such device {c.Device}", c.Name, Sim)); return; }
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"no such mm {c.Mm}", c.Name, Sim)); return; }
            if (mm.State == MmLife.Dropped) { Emit(new BindFailed(c.Device, c.Mm, Errno.EINVAL, $"mm {c.Mm} was dropped (use after free)", c.Name, "sim.mm-dropped")); return; }
            var failure = IsAmd(dev) && AmdGate(dev, mm) is { } gate ? gate : BindModel switch
            {
                SvaBindModel.Bond => BindBond(dev, mm, c.Name),
                SvaBindModel.DomainPerDevice => BindPerDeviceDomain(dev, mm, c.Name),
                SvaBindModel.SharedDomain => BindSharedDomain(dev, mm, c.Name),
                _ => BindAttachHandle(dev, mm, c.Name),
            };
            if (failure is not { } f) return;
            if (f.BugSite is { } site) Emit(new KernelBug("bind", site, f.Reason, c.Name, f.Rule));
            else Emit(new BindFailed(c.Device, c.Mm, f.Errno, f.Reason, c.Name, f.Rule));
        }

        /// <summary>Why a step refused: an errno, or (<see cref="BugSite"/>) a kernel BUG that never returns.</summary>
        private readonly record struct Failure(Errno Errno, string Reason, string Rule, string? BugSite = null);

        private const string NotifierBugSite = "BUG_ON(mm_users <= 0) in __mmu_notifier_register";

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
            if (IsArm(dev) && !IopfGeneric)
                return new(Errno.ENODEV, $"{dev.Id}: Arm SMMUv3 SVA needs IOPF support (arm_smmu_iopf_supported() is false before 5.13): SVA cannot be enabled", "arm.sva-needs-iopf");
            // SVA is only enabled on a master with SSIDs (ssid_bits > 0, i.e. max_pasids >= 2). VT-d (D14, D16):
            // intel_svm_bind checks neither: the PASID allocation decides, and sva=off is not refused.
            if (!IsVtd(dev))
            {
                if (NoPasid == NoPasidDeviceRule.DriverEnodev && dev.MaxPasids <= 1)
                    return new(Errno.ENODEV, $"{dev.Id} has no SSIDs (max_pasids {dev.MaxPasids}): SVA cannot be enabled", "g1.no-ssids");
                if (!dev.Sva) return new(Errno.ENODEV, $"SVA feature not enabled on {dev.Id}", "sva.not-enabled");
            }
            // VT-d 5.11–5.13 (D13): intel_svm_bind_mm checks the PASID capability and the mm's PASID width first.
            if (IsVtd(dev) && VtdBindMmRefusal(dev, mm) is { } vtdRefused) return vtdRefused;
            // step 3b: an existing bond with the same mm is shared.
            var bond = mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id);
            if (bond is not null) { Emit(new HandleShared(bond.Id, bond.Users + 1, name, IsArm(dev) ? "g1.bond-shared" : "vtd.bind-shared")); return null; }
            // step 3c: the PASID (5.11–5.17: a reference on it). VT-d: its own allocation (D13/D14).
            var pasid = IsVtd(dev) ? VtdBondPasid(dev, mm, out var fail) : MmPasid(dev, mm, out fail);
            if (pasid is null) return fail;
            // step 3d: the notifier for (RID domain, mm): a new one for an exited mm is a kernel BUG (never returns).
            if (ExitedMmRefusal(group, dev, mm, existingDomain: false) is { } exited) return exited;
            if (IsArm(dev)) ArmBondGet(group, mm, writeEntries: true);
            else VtdSvmGet(group, mm, writeEntries: true);
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, null, pasid.Value, name, IsArm(dev) ? "g1.bond-new" : VtdBondRule(dev)));
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
                if (Rebind == RebindSameDeviceMm.SameHandle
                    && mm.Handles.Select(s.Handle).FirstOrDefault(h => h.Device == dev.Id) is { } same)
                {
                    Emit(new HandleShared(same.Id, same.Users + 1, name, "g4.handle-shared"));
                    return null;
                }
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
            var domain = AllocSvaDomain(mm, dev);
            AttachSva(domain, dev, pasid, mm);
            Emit(new DomainUsersChanged(domain, 1));
            Emit(new HandleIssued(NextHandle(), dev.Id, mm.Id, domain, pasid, name, UncheckedRid(dev) ?? rule));
        }

        /// <summary>G3 (6.8-rc1) and G4 (6.8): shared SVA domains; G4 first looks in the mm's handle list.</summary>
        private Failure? BindSharedDomain(DeviceObj dev, MmObj mm, string? name)
        {
            var pasid = MmPasid(dev, mm, out var fail);
            if (pasid is null) return fail;
            if (Rebind == RebindSameDeviceMm.SameHandle)
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
                if (slot.Handle is not null && Rebind == RebindSameDeviceMm.Ebusy)
                    return new(Errno.EBUSY, $"PASID {pasid} slot of group {group.Id} already holds {found.Id} of mm {mm.Id} (the handle is not shared)", "g3.rebind-ebusy");
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
                var rule = Rebind == RebindSameDeviceMm.Ebusy && nf.Rule == "attach.slot-busy" ? "g3.rebind-ebusy" : nf.Rule;
                return nf with { Reason = string.Join("; ", tried), Rule = rule };
            }
            IssueOnFreshDomain(dev, mm, pasid, name, "g3.domain-new");
            return null;
        }

        /// <summary>The mm's PASID for this device: the range check or a fresh allocation (kernel-sva.md §1.6, §2).</summary>
        private int? MmPasid(DeviceObj dev, MmObj mm, out Failure? fail) => MmPasid(dev, mm, dev.MaxPasids, out fail);

        /// <summary><see cref="MmPasid(DeviceObj, MmObj, out Failure?)"/> with the max_pasids the caller passes (VT-d 5.14–6.1: pci_max_pasids() unchecked).</summary>
        private int? MmPasid(DeviceObj dev, MmObj mm, int maxPasids, out Failure? fail)
        {
            fail = null;
            // 6.2–6.5 iommu_sva_bind_device: no PASID support at all.
            if (NoPasid == NoPasidDeviceRule.CoreEopnotsupp && maxPasids == 0)
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
            var max = maxPasids - 1; // the allocation range is [1, max_pasids - 1]
            // 5.11–6.5: iommu_sva_alloc_pasid(mm, min, max) validates its arguments before looking at mm->pasid.
            if (r.RejectEmptyPasidRange && max < 1)
            {
                fail = new(Errno.EINVAL, $"iommu_sva_alloc_pasid(min 1, max {max}): empty range for {dev.Id} (max_pasids {maxPasids})", "pasid.empty-range");
                return null;
            }
            if (mm.Pasid is int have)
            {
                var rejected = RangeCheck switch
                {
                    PasidRangeCheck.InsideRange => have > max,
                    PasidRangeCheck.RejectTopValue => have >= max,
                    _ => have >= maxPasids,
                };
                if (rejected)
                {
                    var why = RangeCheck == PasidRangeCheck.RejectTopValue && have == max
                        ? $"mm PASID {have} is the top value {max} of {dev.Id} (off-by-one check)"
                        : $"mm PASID {have} does not fit {dev.Id} (max_pasids {maxPasids})";
                    fail = new(Errno.EOVERFLOW, why, RangeCheck switch
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
                fail = new(ExhaustedErrno, max < 1
                    ? $"{dev.Id} has max_pasids {maxPasids}: no PASID can be allocated"
                    : $"PASID space [1, {max}] exhausted",
                    ExhaustedErrno == Errno.ENOMEM ? "pasid.exhausted-ioasid"
                    : NoPasid == NoPasidDeviceRule.GlobalAllocator ? "pasid.exhausted-global" : "pasid.exhausted-ida");
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
        /// §9 (replacing §4 row 20): a new attachment for an mm whose process exited (mm_users 0). Nothing returns an
        /// errno: a new mmu_notifier hits BUG_ON(mm_users &lt;= 0) in __mmu_notifier_register. G1–G4: a notifier of
        /// (RID domain, mm) that already exists only takes a reference [I]. G5: attaching an existing SVA domain
        /// fails -EINVAL (mmget_not_zero in Arm set_dev_pasid), which iommu_sva_bind_device discards before it
        /// allocates a fresh domain, whose notifier registration hits the BUG.
        /// </summary>
        private Failure? ExitedMmRefusal(GroupObj group, DeviceObj dev, MmObj mm, bool existingDomain)
        {
            if (mm.MmUsers > 0) return null;
            if (!IsArm(dev)) return DriverExitedMmRefusal(dev, mm, existingDomain);
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

        private string NextHandle() => "H" + s.NextHandle;

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
            switch (BindModel)
            {
                case SvaBindModel.Bond:
                {
                    var rule = IsArm(dev) ? "g1.unbind" : "vtd.unbind";
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1, rule)); return; }
                    // __arm_smmu_sva_unbind at refs 0: unlink, notifier put (CD cleared, TLBI/ATC unless cleared,
                    // shared CD dropped), 5.11–5.17 iommu_sva_free_pasid, free the bond. VT-d intel_svm_unbind_mm:
                    // tear the entry down, drop the svm's reference.
                    Emit(new HandleFreed(h.Id, rule));
                    if (IsArm(dev)) ArmBondPut(s.GroupOf(dev), mm, h.Pasid, clearEntries: true);
                    else VtdSvmPut(s.GroupOf(dev), mm, h.Pasid, clearEntries: true);
                    if (PasidRefcounted && mm.Handles.Count == 0 && mm.Pasid is int p)
                        Emit(new PasidFreed(mm.Id, p, "last unbind (PASID refcount)"));
                    MaybeMmFree(mm);
                    return;
                }
                case SvaBindModel.DomainPerDevice:
                {
                    if (h.Users > 1) { Emit(new HandleReleased(h.Id, h.Users - 1, "g2.unbind")); return; } // a what-if same-handle re-bind
                    var d = s.Domain(h.Domain!);
                    Emit(new DomainUsersChanged(d.Id, d.Users - 1));
                    if (d.Users == 0) { DetachSva(d, dev, h.Pasid, mm); FreeSvaDomain(d, mm); }
                    Emit(new HandleFreed(h.Id, "g2.unbind"));
                    return;
                }
                default: // shared domains (G3, G4) and attach handles (G5)
                {
                    // G3 (no handle is shared): detach first, then users--, free at 0. G4/G5: handle->users--; at 0
                    // (G4: unlink from iommu_mm->sva_handles) detach the PASID, domain->users-- (free at 0), kfree(handle).
                    var rule = BindModel == SvaBindModel.AttachHandle ? "g5.unbind"
                        : Rebind == RebindSameDeviceMm.Ebusy ? "g3.unbind" : "g4.unbind";
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

        private void FreeSvaDomain(DomainObj d, MmObj mm)
        {
            {
                var n = s.Notifiers.Values.FirstOrDefault(x => x.Domain == d.Id);
                if (n is not null)
                {
                    // 6.11+ Arm domain free: TLBI by the private ASID before it can be reused (unconditional:
                    // there is no 'cleared' shortcut in G5), then mmu_notifier_put. Nothing is attached any more: no ATC.
                    // VT-d/AMD 6.10+ (no ASID): intel_svm_domain_free / the AMD domain free only put the notifier.
                    if (mm.Pasid is int p && d.Asid is not null)
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
                Emit(new PasidFreed(mm.Id, p, PasidRefcounted ? "__mmdrop (mm gone; no bond held the PASID)" : "__mmdrop (mm_pasid_drop)"));
        }

        private void Drop(MmDrop c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("drop", null, $"no such mm {c.Mm}", Sim)); return; }
            if (mm.State == MmLife.Dropped) { Emit(new CallFailed("drop", null, $"mm {c.Mm} was already dropped", "sim.misuse")); return; }
            if (mm.State == MmLife.Live) Release(mm); // mmput before the last mmdrop
            Emit(new MmDropped(mm.Id, mm.MmCount - 1));
            MaybeMmFree(mm);
        }
    }
}
