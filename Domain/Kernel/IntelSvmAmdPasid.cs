using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// The VT-d (drivers/iommu/intel/svm.c) and AMD (drivers/iommu/amd/pasid.c, ppr.c) SVA drivers as kernel-sva-vtd-amd.md
/// and tests/data/vtd-amd/README.md read them: the AMD gate, the intel_svm notifier per mm/PASID (per SVA domain from
/// 6.10), release clearing the PASID entry (not present, FPD), invalidation by PASID, and the driver's own page-request
/// filters: the <c>vtd-*</c> and <c>amd-*</c> switches.
/// </summary>
public static partial class SvaKernel
{
    private sealed partial class Run
    {
        // ---- the switches of this file: each is read here and nowhere else (KernelSwitches names them) ----
        /// <summary>Switch <c>vtd-notifier-scope</c>.</summary>
        private VtdNotifierScope VtdScope => r.VtdNotifierScope;
        /// <summary>Switch <c>vtd-prq</c>.</summary>
        private VtdPrq VtdPrqMode => r.VtdPrq;
        /// <summary>Switch <c>vtd-report-failed</c>.</summary>
        private VtdReportFailure VtdReportFailed => r.VtdReportFailure;
        /// <summary>Switch <c>vtd-exec-request</c>.</summary>
        private bool VtdExecInvalid => r.VtdExecRequestInvalid;
        /// <summary>Switch <c>vtd-rid-page-request</c>.</summary>
        private bool VtdRidInvalid => r.VtdRidRequestInvalid;
        /// <summary>Switch <c>vtd-notifier-flush</c>.</summary>
        private VtdNotifierFlush VtdFlush => r.VtdNotifierFlush;
        /// <summary>Switch <c>vtd-pasid-errnos</c>.</summary>
        private VtdPasidErrnos VtdErrnos => r.VtdPasidErrnos;
        /// <summary>Switch <c>amd-sva</c>.</summary>
        private AmdSva Amd => r.AmdSva;

        private static bool IsVtd(DeviceObj d) => d.Driver == Drivers.Vtd;
        private static bool IsAmd(DeviceObj d) => d.Driver == Drivers.Amd;

        /// <summary>x86-64 4-level: the user address space ends at TASK_SIZE_MAX = 2^47 - 4096.</summary>
        private const ulong TaskSizeMax = (1UL << 47) - 4096;

        /// <summary>arm64 with 48-bit VAs: user addresses below 2^48 (0xffff… mmap addresses are user addresses there).</summary>
        private const ulong ArmTaskSize = 1UL << 48;

        /// <summary>Canonical for 4-level paging (47-bit sign extension).</summary>
        private static bool Canonical(ulong a) => a < (1UL << 47) || a >= 0xffff_8000_0000_0000UL;

        /// <summary>Pages above which x86 flush_tlb_mm_range() flushes the whole mm (tlb_single_page_flush_ceiling).</summary>
        private const ulong X86FlushCeilingPages = 33;

        /// <summary>Does the device's driver keep its SVA notifier in the SVA domain (Arm G5, VT-d 6.10+, AMD 6.10+)?</summary>
        private bool DomainNotifier(DeviceObj dev) =>
            IsArm(dev) ? Notifier == NotifierModel.PerSvaDomain
            : IsAmd(dev) || VtdScope == VtdNotifierScope.PerSvaDomain;

        /// <summary>The VT-d intel_svm's notifier of the mm (≤5.13 one per mm, 5.14–6.9 one per PASID: the mm has one PASID).</summary>
        private NotifierObj? VtdNotifier(MmObj mm) =>
            s.Notifiers.Values.FirstOrDefault(x => x.Mm == mm.Id && x.Group is null && x.Domain is null);

        /// <summary>The driver a notifier belongs to: an intel_svm's (no group, no domain), a domain's, or a group's (Arm).</summary>
        private string NotifierDriver(NotifierObj n)
        {
            if (n.Group is null && n.Domain is null) return Drivers.Vtd;
            if (n.Domain is not null)
            {
                var d = s.DomainById(n.Domain);
                var dev = d?.Attached.SelectMany(a => a.Devices).FirstOrDefault();
                return dev is not null ? s.Devices[dev].Driver : d?.Asid is null ? Drivers.Vtd : Drivers.SmmuV3;
            }
            var g = s.Groups[n.Group!.Value];
            return g.Devices.Count > 0 ? s.Devices[g.Devices[0]].Driver : Drivers.SmmuV3;
        }

        /// <summary>
        /// D1/D2: what AMD offers an SVA bind before the core's steps. ≤6.1 no sva op (-ENODEV); 6.2–6.6 max_pasids 0 as
        /// the core sees it [I] (-EOPNOTSUPP, or the 6.6 global allocator's -EOVERFLOW/-ENOSPC); 6.7–6.9 the PASID is
        /// allocated, then there is no SVA domain (-ENOMEM) [I/U]; 6.10+ null (set_dev_pasid checks later).
        /// </summary>
        private Failure? AmdGate(DeviceObj dev, MmObj mm)
        {
            switch (Amd)
            {
                case AmdSva.NoSvaOp:
                    return new(Errno.ENODEV, $"{dev.Id}: the AMD IOMMU driver has no SVA bind op before 6.10 (amd_iommu_v2 is a private API)", "amd.no-sva-op");
                case AmdSva.NoPasids:
                    if (NoPasid == NoPasidDeviceRule.CoreEopnotsupp)
                        return new(Errno.EOPNOTSUPP, $"{dev.Id}: AMD iommu_device.max_pasids is 0 [I]: the core refuses", "amd.no-pasids");
                    return mm.Pasid is int have
                        ? new(Errno.EOVERFLOW, $"{dev.Id}: AMD max_pasids is 0 [I]: mm PASID {have} does not fit", "amd.no-pasids")
                        : new(Errno.ENOSPC, $"{dev.Id}: AMD max_pasids is 0 [I]: iommu_alloc_global_pasid() refuses", "amd.no-pasids");
                case AmdSva.NoSvaDomain:
                {
                    var pasid = MmPasid(dev, mm, out var fail);
                    if (pasid is null) return fail;
                    return new(Errno.ENOMEM, $"{dev.Id}: PASID {pasid} allocated, but the AMD driver allocates no IOMMU_DOMAIN_SVA before 6.10 [I/U]", "amd.no-sva-domain");
                }
                default:
                    return null;
            }
        }

        /// <summary>6.10+ AMD iommu_sva_set_dev_pasid: a GCR3 table (identity or v2 RID domain; a script's paging domain is v1), PASID enabled and in range.</summary>
        private Failure? AmdSetDevPasidRefusal(GroupObj group, DeviceObj dev, int pasid)
        {
            if (s.DomainById(group.RidDomain) is { Type: "paging" } rid)
                return new(Errno.EINVAL, $"RID domain {rid.Id} of {dev.Id} is a v1 paging domain: no GCR3 table (pdom_is_sva_capable)", "amd.rid-not-sva-capable");
            // No SVA feature check in the AMD path (D16 [I]): only the PASID range.
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
                if (pasid >= member.MaxPasids)
                    return new(Errno.EINVAL, $"PASID {pasid} >= max_pasids {member.MaxPasids} of {member.Id}", "amd.pasid-invalid");
            return null;
        }

        /// <summary>
        /// D3: a new attachment of an exited mm on a VT-d or AMD device. Up to 6.9 VT-d binds into the intel_svm of the
        /// mm (PASID): only a new svm registers a notifier, and that hits the BUG. 6.10+ (VT-d, AMD): attaching the mm's
        /// existing SVA domain checks nothing; a fresh domain registers its notifier: BUG.
        /// </summary>
        private Failure? DriverExitedMmRefusal(DeviceObj dev, MmObj mm, bool existingDomain)
        {
            if (mm.MmUsers > 0) return null;
            if (!DomainNotifier(dev))
                return VtdNotifier(mm) is not null ? null
                    : new(Errno.EINVAL, $"mm {mm.Id} has exited and has no intel_svm yet: intel_svm_bind_mm's mmu_notifier_register hits BUG_ON(mm_users <= 0)", "vtd.exited-mm-bug", NotifierBugSite);
            if (existingDomain) return null;
            return IsAmd(dev)
                ? new(Errno.EINVAL, $"mm {mm.Id} has exited: the fresh AMD SVA domain's mmu_notifier_register hits BUG_ON(mm_users <= 0)", "amd.exited-mm-bug-domain", NotifierBugSite)
                : new(Errno.EINVAL, $"mm {mm.Id} has exited: intel_svm_domain_alloc's mmu_notifier_register hits BUG_ON(mm_users <= 0)", "vtd.exited-mm-bug-domain", NotifierBugSite);
        }

        /// <summary>
        /// D13, 5.11–5.13 intel_svm_bind_mm, before the device list is searched: pci_max_pasids() &lt; 0 (no PASID capability:
        /// a script's <c>pasids=0</c>) → -EINVAL; the mm's svm holds a PASID the device cannot carry → -ENOSPC ("Limited PASID
        /// width"). (!intel_svm_capable → -ENOTSUPP has no script form: every modelled VT-d IOMMU is SVM-capable.)
        /// </summary>
        private Failure? VtdBindMmRefusal(DeviceObj dev, MmObj mm)
        {
            if (VtdErrnos != VtdPasidErrnos.Driver) return null;
            if (dev.MaxPasids == 0)
                return new(Errno.EINVAL, $"{dev.Id} has no PASID capability: pci_max_pasids() < 0", "vtd.no-pasid-cap");
            if (mm.Pasid is int have && have >= dev.MaxPasids)
                return new(Errno.ENOSPC, $"Limited PASID width: {dev.Id} (pasid_max {dev.MaxPasids}) cannot use mm {mm.Id}'s existing PASID {have}", "vtd.pasid-width");
            return null;
        }

        /// <summary>
        /// The PASID of a VT-d G1 bind. 5.11–5.13 (D13/D14): the mm's svm PASID, else ioasid_alloc(NULL, 1, pasid_max - 1),
        /// whose failure (exhausted, or the empty range of max_pasids 1) is -ENOSPC. 5.14–6.1: the core helper with
        /// pci_max_pasids() passed unchecked: a device without the capability gives an unsigned -EINVAL, a range with no
        /// top [I, §6 Q3].
        /// </summary>
        private int? VtdBondPasid(DeviceObj dev, MmObj mm, out Failure? fail)
        {
            fail = null;
            if (VtdErrnos == VtdPasidErrnos.Core)
                return MmPasid(dev, mm, dev.MaxPasids == 0 ? int.MaxValue : dev.MaxPasids, out fail);
            if (mm.Pasid is int have) return have; // the width was checked in VtdBindMmRefusal
            var max = dev.MaxPasids - 1;
            var pasid = max < 1 ? null : LowestFree(s.Pasids.Keys, 1, max);
            if (pasid is null)
            {
                fail = new(Errno.ENOSPC, max < 1
                    ? $"ioasid_alloc(NULL, 1, {max}) fails: {dev.Id} has pasid_max {dev.MaxPasids}"
                    : $"ioasid_alloc(NULL, 1, {max}) fails: PASID space exhausted", "vtd.pasid-exhausted");
                return null;
            }
            Emit(new PasidAllocated(mm.Id, pasid.Value));
            return pasid;
        }

        /// <summary>The rule of a new VT-d G1 handle: 5.14–6.1 a device without PASID capability is bound through the unchecked width.</summary>
        private string VtdBondRule(DeviceObj dev) =>
            VtdErrnos == VtdPasidErrnos.Core && dev.MaxPasids == 0 ? "vtd.no-pasid-cap-unchecked" : "g1.vtd-bond";

        /// <summary>intel_svm_bind_mm up to 6.9: join the mm's svm (refs++) or make one with its notifier; G1 writes the PASID entries.</summary>
        private void VtdSvmGet(GroupObj group, MmObj mm, bool writeEntries)
        {
            var n = VtdNotifier(mm);
            if (n is not null) Emit(new NotifierRefsChanged(n.Id, n.Refs + 1));
            else Emit(new NotifierRegistered("N" + s.NextNotifier, mm.Id, null, null));
            if (writeEntries)
                foreach (var d in group.Devices) Emit(new PasidEntryWritten(d, mm.Pasid!.Value, mm.Id));
        }

        /// <summary>
        /// intel_svm_unbind_mm / remove_dev_pasid up to 6.9: tear the group's PASID entries down (an entry release already
        /// cleared returns early: no flush, §6 Q5), then drop the svm's reference; the last one frees the notifier.
        /// </summary>
        private void VtdSvmPut(GroupObj group, MmObj mm, int pasid, bool clearEntries)
        {
            if (clearEntries)
            {
                var present = new List<string>();
                foreach (var d in group.Devices)
                {
                    if (!s.Devices[d].PasidTable.TryGetValue(pasid, out var e)) continue;
                    if (e.Mode == "active") present.Add(d);
                    Emit(new PasidEntryCleared(d, pasid));
                }
                if (present.Count > 0)
                    Emit(new SecondaryTlbInvalidated(mm.Id, pasid, 0, ulong.MaxValue, VtdNotifier(mm)?.Id ?? "-", $"pasid {pasid} all", present, "vtd.unbind"));
            }
            var n = VtdNotifier(mm);
            if (n is null) return;
            if (n.Refs > 1) Emit(new NotifierRefsChanged(n.Id, n.Refs - 1));
            else Emit(new NotifierFreed(n.Id));
        }

        /// <summary>The devices a VT-d/AMD notifier reaches: the svm's bound devices (live entries of the mm's PASID) or the SVA domain's.</summary>
        private List<string> DriverNotifierDevices(NotifierObj n, MmObj mm, int pasid) =>
            n.Domain is not null
                ? s.Domain(n.Domain).Attached.SelectMany(a => a.Devices).Distinct().Order(StringComparer.Ordinal).ToList()
                : s.Devices.Values.Where(d => !IsArm(d) && d.PasidTable.TryGetValue(pasid, out var e) && e.Mm == mm.Id && e.Mode == "active")
                    .Select(d => d.Id).Order(StringComparer.Ordinal).ToList();

        /// <summary>
        /// D12: one VT-d callback per svm (per SVA domain from 6.10): a PASID-selective range flush, or — from 6.6, where the
        /// callback receives x86's promotion of a flush over 33 pages to (0, -1) — a whole-PASID flush (6.6.0–6.6.4: lost).
        /// AMD 6.10+: a PASID flush for every attached device.
        /// </summary>
        private void DriverInvalidate(NotifierObj n, MmObj mm, int pasid, InvalidateRange c)
        {
            var devices = DriverNotifierDevices(n, mm, pasid);
            var promoted = (c.End - c.Start) / PageSize > X86FlushCeilingPages;
            var whole = promoted && (NotifierDriver(n) == Drivers.Amd || VtdFlush != VtdNotifierFlush.Range);
            var (start, end) = whole ? (0UL, ulong.MaxValue) : (c.Start, c.End);
            if (NotifierDriver(n) == Drivers.Amd)
            {
                Emit(new SecondaryTlbInvalidated(mm.Id, pasid, start, end, n.Id, $"pasid {pasid} {(whole ? "all" : "range")}", devices, "inv.amd-pasid"));
                return;
            }
            switch (VtdFlush)
            {
                case VtdNotifierFlush.RangeOrLost when whole:
                    Emit(new SecondaryTlbInvalidated(mm.Id, pasid, start, end, n.Id, null, [], "inv.vtd-lost"));
                    return;
                case VtdNotifierFlush.RangeOrWholePasid when whole:
                    Emit(new SecondaryTlbInvalidated(mm.Id, pasid, start, end, n.Id, $"pasid {pasid} all", devices, "inv.vtd-whole-pasid"));
                    return;
                case VtdNotifierFlush.CacheTagRangeOrAll:
                    Emit(new SecondaryTlbInvalidated(mm.Id, pasid, start, end, n.Id, $"pasid {pasid} {(whole ? "all" : "range")}", devices, "inv.vtd-cache-tag"));
                    return;
                default:
                    Emit(new SecondaryTlbInvalidated(mm.Id, pasid, start, end, n.Id, $"pasid {pasid} range", devices, "inv.vtd-range"));
                    return;
            }
        }

        /// <summary>
        /// D15: release through a VT-d/AMD notifier: intel_mm_release → intel_pasid_tear_down_entry(fault_ignore): the entry
        /// is made not present with FPD set, PASID cache, IOTLB and devTLB flushed by PASID. AMD 6.10+ sva_mn_release clears
        /// the GCR3 entry. The entry stays (not present) until unbind tears it down again.
        /// </summary>
        private void DriverRelease(NotifierObj n, MmObj mm, int pasid)
        {
            var amd = NotifierDriver(n) == Drivers.Amd;
            var devices = DriverNotifierDevices(n, mm, pasid);
            foreach (var dev in devices) Emit(new PasidEntryQuieted(dev, pasid, amd ? "gcr3-cleared" : "not-present-fpd"));
            Emit(new SecondaryTlbInvalidated(mm.Id, pasid, 0, ulong.MaxValue, n.Id, $"pasid {pasid} all", devices, amd ? "amd.mm-release" : "vtd.mm-release"));
        }

        /// <summary>
        /// The VT-d driver's own page-request checks before anything reaches the IOPF core (prq_event_thread): no PASID,
        /// non-canonical address, execute request (5.13+), 5.14–6.0 the svm/sdev lookup, 5.14–6.8 a failed report.
        /// True when the driver answered. [I] A bad non-last request gets no response in the kernel (handle_bad_prq_event
        /// answers only LPIG/PDP); the model answers it.
        /// </summary>
        private bool VtdPrqAnswered(DeviceObj dev, PageFault c, int requests)
        {
            if (c.Pasid is null && VtdRidInvalid)
            { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID: handle_bad_prq_event(QI_RESP_INVALID)", requests, "vtd.prq-no-pasid"); return true; }
            if (!Canonical(c.Address))
            { Respond(dev, c, PageResponseCode.INVALID, $"address {SvaJson.Hex(c.Address)} is not canonical", requests, "vtd.prq-noncanonical"); return true; }
            if (VtdExecInvalid && c.Access.Contains('x'))
            { Respond(dev, c, PageResponseCode.INVALID, "execution request not supported", requests, "vtd.prq-exec"); return true; }
            if (VtdPrqMode == VtdPrq.ReportAfterSdevLookup && c.Pasid is int p)
            {
                var svmMm = s.Pasids.TryGetValue(p, out var owner) ? s.Mms[owner] : null;
                if (svmMm is null || VtdNotifier(svmMm) is null)
                { Respond(dev, c, PageResponseCode.INVALID, $"pasid_private_find({p}): no intel_svm", requests, "vtd.prq-sdev-lookup"); return true; }
                if (!svmMm.Handles.Select(s.Handle).Any(h => h.Device == dev.Id))
                { Respond(dev, c, PageResponseCode.INVALID, $"svm_lookup_device_by_sid: {dev.Id} is not bound to PASID {p}", requests, "vtd.prq-sdev-lookup"); return true; }
            }
            if (VtdPrqMode != VtdPrq.InDriver && !dev.Iopf && VtdReportFailed == VtdReportFailure.DriverInvalid)
            { Respond(dev, c, PageResponseCode.INVALID, $"{dev.Id} is not on an IOPF queue: intel_svm_prq_report() fails, handle_bad_prq_event(QI_RESP_INVALID)", requests, "vtd.prq-report-failed"); return true; }
            return false;
        }

        /// <summary>
        /// D4: 5.11–5.13 prq_event_thread. Each descriptor is handled on its own, when it arrives: its result is computed
        /// at once (the page is faulted in, or refused); only a request with LPIG gets a page-group response, carrying
        /// that request's own result. Earlier requests of the group are never parked and no error is sticky; the
        /// device's IOPF queue does not matter (there is none).
        /// </summary>
        private void VtdPrqInDriver(DeviceObj dev, PageFault c)
        {
            var (result, reason, rule) = VtdPrqHandle(dev, c);
            if (c.Last) Respond(dev, c, result, reason, 1, rule);
            else Emit(new PageRequestHandled(dev.Id, c.Pasid, c.Group, c.Address, c.Access, result, reason, rule));
        }

        /// <summary>One request as the 5.11–5.13 driver handles it: its own result, reason and rule.</summary>
        private (PageResponseCode Result, string Reason, string Rule) VtdPrqHandle(DeviceObj dev, PageFault c)
        {
            if (c.Pasid is not int p)
                return (PageResponseCode.INVALID, "page request without PASID", "vtd.prq-no-pasid");
            if (!s.Pasids.TryGetValue(p, out var owner))
                return (PageResponseCode.INVALID, $"ioasid_find({p}): no svm (the PASID is not allocated)", "vtd.prq-in-driver-no-svm");
            var mm = s.Mms[owner];
            if (!Canonical(c.Address))
                return (PageResponseCode.INVALID, $"address {SvaJson.Hex(c.Address)} is not canonical", "vtd.prq-noncanonical");
            if (VtdExecInvalid && c.Access.Contains('x'))
                return (PageResponseCode.INVALID, "execution request not supported", "vtd.prq-exec");
            if (mm.MmUsers == 0)
                return (PageResponseCode.INVALID, $"mmget_not_zero(mm {mm.Id}) failed: process exited", "vtd.prq-in-driver-mm-exited");
            if (VmaDenies(mm, c.Address, c.Access, TaskSizeMax) is { } denied)
                return (PageResponseCode.INVALID, denied, "vtd.prq-in-driver-vma");
            return mm.Handles.Select(s.Handle).Any(h => h.Device == dev.Id)
                ? (PageResponseCode.SUCCESS, $"handle_mm_fault in mm {mm.Id}", "vtd.prq-in-driver")
                : (PageResponseCode.SUCCESS, $"WARN_ON(!sdev): {dev.Id} is not bound to PASID {p}; handle_mm_fault in mm {mm.Id} all the same", "vtd.prq-in-driver-unbound");
        }

        /// <summary>D7: AMD 6.10+ ppr.c: a PPR without PASID (GN=0), PASID 0 or ≥ max_pasids is completed FAILURE by the driver.</summary>
        private bool AmdPprAnswered(DeviceObj dev, PageFault c, int requests)
        {
            if (Amd != AmdSva.SvaDomain)
            {
                Emit(new PageResponseWithheld(dev.Id, c.Pasid, c.Group, "no mainline SVA PPR handling for AMD before 6.10: the request never reaches the IOPF core [U]", requests, "amd.ppr-no-sva"));
                return true;
            }
            string? why = c.Pasid switch
            {
                null => "PPR without PASID (GN=0): ppr_is_valid() false",
                0 => "PPR for PASID 0",
                int p when p >= dev.MaxPasids => $"PPR for PASID {p} >= max_pasids {dev.MaxPasids}",
                _ => null,
            };
            if (why is null) return false;
            Respond(dev, c, PageResponseCode.FAILURE, why + ": amd_iommu_complete_ppr(FAILURE)", requests, "amd.ppr-invalid");
            return true;
        }
    }
}
