using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>the Arm SMMUv3 SVA driver (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c): RID domain check, CD and ASID, notifiers, invalidation and release: the <c>notifier</c>, <c>asid-model</c>, <c>arm-*</c> switches.</summary>
public static partial class SvaKernel
{
    private sealed partial class Run
    {
        // ---- the switches of this file: each is read here and nowhere else (KernelSwitches names them) ----
        /// <summary>Switch <c>notifier</c>.</summary>
        private NotifierModel Notifier => r.NotifierModel;
        /// <summary>Switch <c>arm-tlbi</c>.</summary>
        private ArmNotifierTlbi Tlbi => r.ArmNotifierTlbi;
        /// <summary>Switch <c>arm-rid-not-s1</c>.</summary>
        private NonPagingRidDomainRule RidNotS1 => r.NonPagingRidDomain;

        private bool IsArm(DeviceObj d) => d.Driver == Drivers.SmmuV3;

        /// <summary>6.11+ Arm: a bind that went through only because the RID domain type is no longer checked [U].</summary>
        private string? UncheckedRid(DeviceObj dev)
        {
            if (!IsArm(dev) || RidNotS1 != NonPagingRidDomainRule.NotChecked) return null;
            var rid = s.DomainById(s.GroupOf(dev).RidDomain);
            return rid is not null && rid.Type != "paging" ? "arm.rid-not-checked" : null;
        }

        /// <summary>G1 step 3 / 6.2–6.10 Arm set_dev_pasid: the RID domain must be stage-1 paging (identity and blocked are not).</summary>
        private Failure? RidRefusal(GroupObj group, DeviceObj dev)
        {
            if (!IsArm(dev) || s.DomainById(group.RidDomain) is not { } rid || rid.Type == "paging") return null;
            var why = $"RID domain {rid.Id} of group {group.Id} is {rid.Type}, not a stage-1 paging domain";
            return RidNotS1 switch
            {
                NonPagingRidDomainRule.BindEinval => new(Errno.EINVAL, why, "g1.rid-not-s1"),
                // [U] 6.2–6.8: the errno of the WARN_ON path in arm_smmu_write_ctx_desc() is not established; -ENODEV kept.
                NonPagingRidDomainRule.UncertainEnodev => new(Errno.ENODEV, why + " [U: errno not established before ae91f6552c30]", "arm.rid-not-s1.uncertain"),
                NonPagingRidDomainRule.CheckedEnodev => new(Errno.ENODEV, why, "arm.rid-not-s1"),
                _ => null,
            };
        }

        private string AllocSvaDomain(MmObj mm, DeviceObj dev)
        {
            var id = "D" + s.NextDomain;
            int? asid = null;
            if (IsArm(dev) && r.AsidModel == AsidModel.PrivatePerDomain)
                asid = LowestFree(s.Domains.Values.Where(d => d.Asid is not null).Select(d => d.Asid!.Value).Order(), 1, 65535);
            Emit(new SvaDomainAllocated(id, mm.Id, asid));
            if (DomainNotifier(dev))
                Emit(new NotifierRegistered("N" + s.NextNotifier, mm.Id, null, id));
            return id;
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
                if (NotifierDriver(n) != Drivers.SmmuV3) { DriverInvalidate(n, mm, pasid, c); continue; }
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
                    rule = Tlbi switch
                    {
                        ArmNotifierTlbi.AtcOnly => "inv.arm-btm-atc-only",
                        ArmNotifierTlbi.RangeByAsid => "inv.arm-range",
                        _ => "inv.arm-threshold",
                    };
                    tlbi = asid is null || Tlbi == ArmNotifierTlbi.AtcOnly ? null
                        : whole && Tlbi == ArmNotifierTlbi.WholeAsidPastThreshold ? $"asid {asid} all" : $"asid {asid} range";
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
            var drivers = live.Select(NotifierDriver).Distinct().ToList();
            Emit(new MmReleased(mm.Id, live.Count == 0 || mm.Pasid is null ? "release.none"
                : !drivers.Contains(Drivers.SmmuV3) ? (drivers.Contains(Drivers.Vtd) ? "vtd.mm-release" : "amd.mm-release")
                : Notifier == NotifierModel.PerSvaDomain ? "release.fault-all-cd" : "release.quiet-cd"));
            if (mm.Pasid is not int pasid) return;
            foreach (var n in live)
            {
                if (NotifierDriver(n) != Drivers.SmmuV3) { DriverRelease(n, mm, pasid); continue; }
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
    }
}
