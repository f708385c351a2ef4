using System.Reflection;
using System.Text.Json.Nodes;

namespace Sva.Domain;

/// <summary>One named value of a switch: the <see cref="KernelRules"/> value it stands for, what it means, and the rules
/// (<see cref="KernelRuleTable"/> ids) whose outcomes it decides — the first one gives its function, commit and confidence.</summary>
public sealed record SwitchValue(string Name, object Value, string Means, params string[] Rules)
{
    public KernelRule Rule => KernelRuleTable.Get(Rules[0]);
}

/// <summary>
/// A decision point that differs between kernel versions, with its named values. <see cref="Area"/> is the kernel
/// file the decision lives in (iommu-sva.c, io-pgfault.c, arm-smmu-v3-sva.c, iommu.c); <see cref="Driver"/> the
/// IOMMU driver whose devices it applies to (null: every driver — a switch whose value differs per driver is one
/// switch per driver, named after it, so that driver rules (issue 19) add switches, not exceptions).
/// </summary>
public sealed record KernelSwitch(string Name, string Property, string Area, string? Driver, string Says, IReadOnlyList<SwitchValue> Values)
{
    private PropertyInfo P => typeof(KernelRules).GetProperty(Property) ?? throw new InvalidOperationException($"KernelRules has no {Property}");

    public SwitchValue ValueIn(KernelRules r)
    {
        var v = P.GetValue(r);
        return Values.FirstOrDefault(x => Equals(x.Value, v)) ?? throw new InvalidOperationException($"switch {Name}: no named value for {v}");
    }

    public SwitchValue? Find(string name) => Values.FirstOrDefault(v => string.Equals(v.Name, name, StringComparison.Ordinal));

    public string Allowed => string.Join(" | ", Values.Select(v => v.Name));

    /// <summary>A copy of <paramref name="r"/> with this switch set to <paramref name="value"/>.</summary>
    public KernelRules With(KernelRules r, SwitchValue value)
    {
        var copy = r with { };
        P.SetValue(copy, value.Value);
        return copy;
    }
}

/// <summary>
/// Every switch of the model. A version is its parent plus switch changes (<see cref="KernelVersions"/>); a kernel file
/// names switches and values from here. <see cref="Generation"/> is not a switch: it names a combination of
/// <c>sva-bind</c>, <c>rebind-same-device-mm</c> and <c>pasid-attach-api</c> (and the rest of its era) for documentation.
/// </summary>
public static class KernelSwitches
{
    private const string Sva = "iommu-sva.c", Iopf = "io-pgfault.c", ArmSva = "arm-smmu-v3-sva.c", Core = "iommu.c", VtdSvm = "intel/svm.c", AmdPasid = "amd/pasid.c";

    public static readonly IReadOnlyList<KernelSwitch> All =
    [
        // ---- bind / unbind (iommu-sva.c) -------------------------------------------------------------------
        new("sva-bind", nameof(KernelRules.SvaBind), Sva, null, "what iommu_sva_bind_device() binds an mm through",
        [
            new("bond", SvaBindModel.Bond, "G1: a driver bond per (dev, mm) with refs; unbind puts the bond", "g1.bond-new", "g1.vtd-bond", "g1.unbind"),
            new("domain-per-device", SvaBindModel.DomainPerDevice, "G2: one SVA domain per (device, mm) found at (dev, pasid); unbind: users--, detach and free at 0", "g2.domain-new", "g2.domain-reused", "g2.slot-not-sva", "g2.unbind"),
            new("shared-domain", SvaBindModel.SharedDomain, "G3/G4: per-mm iommu_mm; the mm's SVA domains are tried on each device, else a fresh one; unbind detaches first", "g3.domain-new", "g3.domain-shared", "g3.unbind", "g4.unbind"),
            new("attach-handle", SvaBindModel.AttachHandle, "G5: the attach handle at the group's pasid_array slot decides (same mm: users++; another mm or not SVA: -EBUSY), then G3's shared domains", "g5.handle-shared", "g5.slot-other-mm", "g5.slot-not-sva", "g5.unbind"),
        ]),
        new("rebind-same-device-mm", nameof(KernelRules.RebindSameDeviceMm), Sva, null, "a second bind of the same (device, mm)",
        [
            new("same-handle", RebindSameDeviceMm.SameHandle, "the same handle, users++ (G1 bond refs, G4 mm handle list, G5 attach handle)", "g1.bond-shared", "g4.handle-shared", "g5.handle-shared"),
            new("new-handle", RebindSameDeviceMm.NewHandle, "G2: a fresh handle on the domain at (dev, pasid), domain users++", "g2.domain-reused"),
            new("ebusy", RebindSameDeviceMm.Ebusy, "G3: the mm's domain and a fresh one both find the slot taken: -EBUSY (the 6.8-rc1 regression)", "g3.rebind-ebusy"),
        ]),
        new("sva-group", nameof(KernelRules.SingletonGroupOnly), Sva, null, "SVA on a group with more than one device",
        [
            new("singleton-only", true, "G1: -EINVAL for a group of several devices", "g1.singleton-group"),
            new("any", false, "6.2+: every device of the group is programmed", "attach.ok"),
        ]),
        new("no-pasid-device", nameof(KernelRules.NoPasidDevice), Sva, null, "bind on a device with max_pasids 0",
        [
            new("driver-enodev", NoPasidDeviceRule.DriverEnodev, "G1: the driver cannot enable SVA without SSIDs: -ENODEV", "g1.no-ssids"),
            new("core-eopnotsupp", NoPasidDeviceRule.CoreEopnotsupp, "6.2–6.5: the core checks max_pasids first: -EOPNOTSUPP", "pasid.no-pasid-eopnotsupp"),
            new("global-allocator", NoPasidDeviceRule.GlobalAllocator, "6.6+: the global allocator refuses: -EOVERFLOW (mm has a PASID) or -ENOSPC", "pasid.exhausted-global"),
        ]),
        new("pasid-alloc-args", nameof(KernelRules.RejectEmptyPasidRange), Sva, null, "iommu_sva_alloc_pasid(mm, 1, max_pasids - 1) with an empty range (max_pasids 1)",
        [
            new("einval", true, "5.11–6.5: the arguments are checked first: -EINVAL, whatever mm->pasid is", "pasid.empty-range"),
            new("allocator", false, "6.6+: no argument check; the allocator answers as for a full space", "pasid.exhausted-global"),
        ]),
        new("pasid-range-check", nameof(KernelRules.PasidRangeCheck), Sva, null, "an mm that already has a PASID, against the device's max_pasids",
        [
            new("inside-range", PasidRangeCheck.InsideRange, "5.11–5.17: accepted inside [1, max_pasids-1], else -EOVERFLOW", "pasid.range-inside"),
            new("reject-top-value", PasidRangeCheck.RejectTopValue, "5.18–6.3: pasid >= max_pasids-1 refused (the off-by-one)", "pasid.range-off-by-one"),
            new("reject-above-max", PasidRangeCheck.RejectAboveMax, "6.4+: pasid >= max_pasids refused", "pasid.range-above-max"),
        ]),
        new("pasid-exhausted", nameof(KernelRules.PasidExhausted), Sva, null, "the errno of an exhausted PASID space",
        [
            new("enomem", Errno.ENOMEM, "≤6.3 ioasid_alloc: -ENOMEM", "pasid.exhausted-ioasid"),
            new("enospc", Errno.ENOSPC, "6.4+ IDA / global allocator: -ENOSPC", "pasid.exhausted-ida"),
        ]),
        new("pasid-lifetime", nameof(KernelRules.PasidFreedAtLastUnbind), Sva, null, "when the mm's PASID is freed",
        [
            new("refcounted", true, "5.11–5.17: refcounted by the bonds, freed at the last unbind", "g1.unbind"),
            new("mm", false, "5.18+: lives as long as the mm, freed in __mmdrop", "mm.drop"),
        ]),
        new("lam-mm", nameof(KernelRules.LamCheck), Sva, null, "binding an mm that uses x86 LAM",
        [
            new("allowed", false, "≤6.3: not checked", "g1.bond-new"),
            new("ebusy", true, "6.4+: arch_pgtable_dma_compat() false: -EBUSY", "pasid.lam"),
        ]),
        new("exited-mm-bind", nameof(KernelRules.ExitedMmBind), Sva, null, "a bind that needs a new attachment for an mm whose process exited",
        [
            new("notifier-bug-on", ExitedMmBind.NotifierRegistrationBugOn, "G1–G4: a new mmu_notifier hits BUG_ON(mm_users <= 0); an existing one only takes a ref", "bug.notifier-register"),
            new("mmget-swallowed-bug-on", ExitedMmBind.MmgetSwallowedThenBugOn, "G5: set_dev_pasid's -EINVAL (mmget_not_zero) is discarded, a fresh domain's notifier hits the BUG", "bug.notifier-register-g5"),
        ]),

        // ---- attach / detach / map (iommu.c) ---------------------------------------------------------------
        new("pasid-attach-api", nameof(KernelRules.PasidAttachApi), Core, null, "iommu_attach_device_pasid() for a script's non-SVA attach at a PASID",
        [
            new("absent", false, "before 6.2: -EOPNOTSUPP", "attach.no-pasid-api"),
            new("present", true, "6.2+: the group's pasid_array slot rules", "attach.ok"),
        ]),
        new("attach-max-pasids", nameof(KernelRules.AttachChecksEveryGroupDevice), Core, null, "a PASID at or above a group member's max_pasids",
        [
            new("unchecked", false, "≤6.8: attached past the member's limit", "attach.ok"),
            new("every-group-device", true, "6.9+ (c404f55c26fc): -EINVAL", "attach.member-max-pasids"),
        ]),

        // ---- IOPF (io-pgfault.c) ---------------------------------------------------------------------------
        new("iopf-queue", nameof(KernelRules.GenericIopf), Iopf, null, "the generic IOPF queue (Arm SMMUv3 SVA needs it)",
        [
            new("vendor-only", false, "5.11/5.12: page requests in vendor code; Arm SVA cannot be enabled: -ENODEV", "arm.sva-needs-iopf", "iopf.vendor-prq"),
            new("generic", true, "5.13+: iommu_queue_iopf", "iopf.partial", "iopf.handled"),
        ]),
        new("fault-dispatch", nameof(KernelRules.FaultDispatch), Iopf, null, "how a page request finds what handles it",
        [
            new("global-pasid", FaultDispatch.GlobalPasidLookup, "5.13–6.1: the mm by PASID, globally (iommu_sva_find)", "iopf.global-pasid"),
            new("domain-in-work", FaultDispatch.DomainLookupInWork, "6.2–6.6: the work item looks up the domain at (dev, pasid)", "iopf.domain-in-work"),
            new("domain-in-report", FaultDispatch.DomainLookupInReport, "6.7+: the report path looks the domain up", "iopf.no-domain-invalid-6.7"),
        ]),
        new("fault-handler-lookup", nameof(KernelRules.FaultHandlerLookup), Iopf, null, "where the handler is looked up relative to the partial list",
        [
            new("at-last-request", FaultHandlerLookup.AtLastRequest, "≤6.10: non-last requests are parked first", "iopf.partial"),
            new("before-anything", FaultHandlerLookup.BeforeAnything, "6.11+ (b58b133e680b): for every request, first", "iopf.no-handler-invalid"),
        ]),
        new("fault-no-domain", nameof(KernelRules.NoDomainAnswer), Iopf, null, "a page request at a PASID with nothing attached (6.7+ dispatch)",
        [
            new("invalid", RefusedFaultAnswer.Invalid, "INVALID (6.7/6.8 work item; 6.11+ core)", "iopf.no-domain-invalid-6.7", "iopf.no-handler-invalid"),
            new("failure", RefusedFaultAnswer.Failure, "6.9/6.10: 'iopf aborted', FAILURE", "iopf.no-domain-failure"),
            new("none", RefusedFaultAnswer.NoResponse, "what-if: no response (the device waits)", "iopf.no-domain-failure"),
        ]),
        new("fault-no-iopf-queue", nameof(KernelRules.NotOnIopfQueueAnswer), Iopf, null, "a page request from a device never added to an IOPF queue",
        [
            new("failure", RefusedFaultAnswer.Failure, "≤6.8: the report fails, the Arm driver aborts the stall: FAILURE", "iopf.no-queue-failure"),
            new("none", RefusedFaultAnswer.NoResponse, "6.9/6.10: WARN, no response: the request hangs", "iopf.no-queue-withheld"),
            new("invalid", RefusedFaultAnswer.Invalid, "6.11+: the core answers INVALID", "iopf.no-queue-invalid"),
        ]),

        // ---- invalidation and release (arm-smmu-v3-sva.c) --------------------------------------------------
        new("notifier", nameof(KernelRules.NotifierModel), ArmSva, Drivers.SmmuV3, "who owns the mmu_notifier that invalidates and releases",
        [
            new("per-rid-domain-and-mm", NotifierModel.PerRidDomainAndMm, "G1–G4: one per (RID domain, mm); release writes a quiet CD", "release.quiet-cd"),
            new("per-sva-domain", NotifierModel.PerSvaDomain, "G5: one per SVA domain; release writes a fault-everything CD", "release.fault-all-cd"),
        ]),
        new("asid-model", nameof(KernelRules.AsidModel), ArmSva, Drivers.SmmuV3, "the ASID an SVA context uses",
        [
            new("shared-cpu", AsidModel.SharedCpuAsid, "≤6.10: the pinned CPU ASID in a CD shared by the mm's devices", "g1.bond-new"),
            new("private-per-domain", AsidModel.PrivatePerDomain, "6.11+: each SVA domain owns an ASID from arm_smmu_asid_xa", "g5.handle-shared"),
        ]),
        new("arm-tlbi", nameof(KernelRules.ArmNotifierTlbi), ArmSva, Drivers.SmmuV3, "the TLBI the Arm SVA notifier sends when CPU page tables change",
        [
            new("atc-only", ArmNotifierTlbi.AtcOnly, "5.11: BTM was required, ATC invalidation only", "inv.arm-btm-atc-only"),
            new("range", ArmNotifierTlbi.RangeByAsid, "5.12–6.5: range TLBI by ASID for any size", "inv.arm-range"),
            new("whole-asid-past-threshold", ArmNotifierTlbi.WholeAsidPastThreshold, "6.6+ (d5afb4b47e13): whole-ASID TLBI from 512 pages", "inv.arm-threshold"),
        ]),
        new("arm-access-after-release", nameof(KernelRules.ArmReleaseAbortsAccess), ArmSva, Drivers.SmmuV3, "an access at a PASID whose mm was released",
        [
            new("iopf", false, "≤6.10: the quiet CD leads to a page request (answered INVALID: mm exited)", "iopf.mm-exited"),
            new("aborted", true, "6.11+: the fault-everything CD makes the SMMU abort it, no page request", "arm.access-aborted"),
        ]),
        new("arm-rid-not-s1", nameof(KernelRules.NonPagingRidDomain), ArmSva, Drivers.SmmuV3, "SVA bind when the device's RID domain is identity or blocked",
        [
            new("bind-einval", NonPagingRidDomainRule.BindEinval, "G1 arm_smmu_sva_bind: -EINVAL", "g1.rid-not-s1"),
            new("uncertain-enodev", NonPagingRidDomainRule.UncertainEnodev, "6.2–6.8: WARN path, -ENODEV kept [U]", "arm.rid-not-s1.uncertain"),
            new("enodev", NonPagingRidDomainRule.CheckedEnodev, "6.9/6.10 (ae91f6552c30): -ENODEV", "arm.rid-not-s1"),
            new("not-checked", NonPagingRidDomainRule.NotChecked, "6.11+: the bind goes through [U]", "arm.rid-not-checked"),
        ]),
        new("arm-sva-domain-smmu", nameof(KernelRules.SvaDomainPerIommuInstance), ArmSva, Drivers.SmmuV3, "sharing an SVA domain with a master behind another SMMU instance",
        [
            new("any", false, "≤6.10: shared", "g3.domain-shared"),
            new("same-instance", true, "6.11+: -EINVAL, a fresh domain is tried [U]", "arm.other-smmu"),
        ]),

        // ---- VT-d (intel/svm.c) and AMD (amd/pasid.c, ppr.c): kernel-sva-vtd-amd.md D1–D18 ------------------
        new("vtd-notifier-scope", nameof(KernelRules.VtdNotifierScope), VtdSvm, Drivers.Vtd, "who owns the mmu_notifier of a VT-d SVA binding (an exited mm bound to a second device: BUG only for a new notifier)",
        [
            new("per-mm", VtdNotifierScope.PerMm, "5.11–5.13: one intel_svm per mm (global_svm_list)", "vtd.exited-mm-svm-exists", "vtd.exited-mm-bug", "inv.vtd-range"),
            new("per-pasid", VtdNotifierScope.PerPasid, "5.14–6.9: one intel_svm per PASID (pasid_private_find)", "vtd.exited-mm-svm-exists", "vtd.exited-mm-bug"),
            new("per-sva-domain", VtdNotifierScope.PerSvaDomain, "6.10+: the notifier lives in the SVA dmar_domain (intel_svm_domain_alloc)", "vtd.exited-mm-domain-shared", "vtd.exited-mm-bug-domain"),
        ]),
        new("vtd-prq", nameof(KernelRules.VtdPrq), VtdSvm, Drivers.Vtd, "how the VT-d driver handles a page request",
        [
            new("in-driver", VtdPrq.InDriver, "5.11–5.13: in the driver, one request at a time, each its own result; no IOPF queue", "vtd.prq-in-driver", "vtd.prq-in-driver-no-svm", "vtd.prq-in-driver-unbound", "vtd.prq-in-driver-mm-exited", "vtd.prq-in-driver-vma"),
            new("report-after-sdev-lookup", VtdPrq.ReportAfterSdevLookup, "5.14–6.0: svm/sdev lookup (miss: INVALID), then the IOPF queue", "vtd.prq-sdev-lookup"),
            new("report", VtdPrq.Report, "6.1+ (06f4b8d09dba): straight to the IOPF queue", "vtd.prq-report"),
        ]),
        new("vtd-report-failed", nameof(KernelRules.VtdReportFailure), VtdSvm, Drivers.Vtd, "a VT-d page request whose report fails (device not on an IOPF queue)",
        [
            new("driver-invalid", VtdReportFailure.DriverInvalid, "5.14–6.8: handle_bad_prq_event(QI_RESP_INVALID)", "vtd.prq-report-failed"),
            new("core", VtdReportFailure.Core, "6.9+: the report returns void: the core's fault-no-iopf-queue answer", "iopf.no-queue-withheld", "iopf.no-queue-invalid"),
        ]),
        new("vtd-exec-request", nameof(KernelRules.VtdExecRequestInvalid), VtdSvm, Drivers.Vtd, "a VT-d execute page request",
        [
            new("allowed", false, "5.11/5.12.0–5.12.3: served if the VMA allows it", "vtd.prq-in-driver"),
            new("invalid", true, "5.13+ (78a523fe73b8; 5.12.4 stable): INVALID", "vtd.prq-exec"),
        ]),
        new("vtd-rid-page-request", nameof(KernelRules.VtdRidRequestInvalid), VtdSvm, Drivers.Vtd, "a VT-d page request without PASID",
        [
            new("driver-invalid", true, "≤6.12: the driver answers INVALID (!pasid_present)", "vtd.prq-no-pasid"),
            new("core", false, "6.13+ [I] (prq.c): the request reaches the core", "iopf.no-handler-invalid"),
        ]),
        new("vtd-notifier-flush", nameof(KernelRules.VtdNotifierFlush), VtdSvm, Drivers.Vtd, "what VT-d flushes when x86 promotes a CPU flush of more than 33 pages to the whole mm",
        [
            new("range", VtdNotifierFlush.Range, "≤6.5: the callback gets the caller's range: PASID-selective range flush", "inv.vtd-range"),
            new("range-or-lost", VtdNotifierFlush.RangeOrLost, "6.6.0–6.6.4: the promoted range overflows: nothing flushed", "inv.vtd-lost"),
            new("range-or-whole-pasid", VtdNotifierFlush.RangeOrWholePasid, "6.6.5+, 6.7–6.9 (e7ad6c2a4b1a): intel_flush_svm_all", "inv.vtd-whole-pasid"),
            new("cache-tag-range-or-all", VtdNotifierFlush.CacheTagRangeOrAll, "6.10+: cache_tag_flush_range / cache_tag_flush_all", "inv.vtd-cache-tag"),
        ]),
        new("vtd-pasid-errnos", nameof(KernelRules.VtdPasidErrnos), VtdSvm, Drivers.Vtd, "where a VT-d bind's PASID errnos come from (no PASID capability, a too-wide mm PASID, an empty or exhausted range)",
        [
            new("driver", VtdPasidErrnos.Driver, "5.11–5.13 intel_svm_bind_mm: no PASID capability -EINVAL, mm PASID >= pasid_max -ENOSPC, ioasid_alloc failing -ENOSPC", "vtd.no-pasid-cap", "vtd.pasid-width", "vtd.pasid-exhausted"),
            new("core", VtdPasidErrnos.Core, "5.14+ intel_svm_alloc_pasid → iommu_sva_alloc_pasid: the core's errnos (5.14–6.1: no PASID capability is not checked [I])", "vtd.pasid-core", "vtd.no-pasid-cap-unchecked"),
        ]),
        new("amd-sva", nameof(KernelRules.AmdSva), AmdPasid, Drivers.Amd, "SVA on an AMD IOMMU device",
        [
            new("no-sva-op", AmdSva.NoSvaOp, "≤6.1: no sva_bind op: -ENODEV", "amd.no-sva-op"),
            new("no-pasids", AmdSva.NoPasids, "6.2–6.6: max_pasids 0 for the core [I]: -EOPNOTSUPP, 6.6 -ENOSPC/-EOVERFLOW", "amd.no-pasids"),
            new("no-sva-domain", AmdSva.NoSvaDomain, "6.7–6.9: PASID allocated, then no SVA domain: -ENOMEM [I/U]", "amd.no-sva-domain"),
            new("sva-domain", AmdSva.SvaDomain, "6.10+: amd/pasid.c SVA domains; the RID domain must be identity or v2", "amd.sva-domain", "amd.rid-not-sva-capable", "amd.ppr-invalid", "amd.mm-release"),
        ]),
    ];

    private static readonly Dictionary<string, KernelSwitch> byName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

    public static KernelSwitch? Find(string name) => byName.GetValueOrDefault(name);

    public static string Names => string.Join(", ", All.Select(s => s.Name));

    /// <summary>Every switch → its value's name in <paramref name="r"/>, in table order.</summary>
    public static IEnumerable<(KernelSwitch Switch, SwitchValue Value)> Of(KernelRules r) => All.Select(s => (s, s.ValueIn(r)));

    public static JsonObject ToJson(KernelRules r)
    {
        var o = new JsonObject();
        foreach (var (s, v) in Of(r)) o[s.Name] = v.Name;
        return o;
    }

    /// <summary>
    /// Combinations the engine cannot decide (each names the switches involved). The built-in versions never hit one;
    /// a kernel file that does is refused.
    /// </summary>
    public static IEnumerable<string> Conflicts(KernelRules r)
    {
        var rebind = r.RebindSameDeviceMm;
        switch (r.SvaBind)
        {
            case SvaBindModel.Bond when rebind != RebindSameDeviceMm.SameHandle:
                yield return "sva-bind = bond shares the bond on a re-bind: rebind-same-device-mm must be same-handle";
                break;
            case SvaBindModel.DomainPerDevice when rebind == RebindSameDeviceMm.Ebusy:
                yield return "sva-bind = domain-per-device finds its domain at (dev, pasid): rebind-same-device-mm must be new-handle or same-handle";
                break;
            case SvaBindModel.SharedDomain when rebind == RebindSameDeviceMm.NewHandle:
            case SvaBindModel.AttachHandle when rebind == RebindSameDeviceMm.NewHandle:
                yield return $"sva-bind = {(r.SvaBind == SvaBindModel.SharedDomain ? "shared-domain" : "attach-handle")} attaches once per (device, PASID): rebind-same-device-mm must be same-handle or ebusy";
                break;
        }
        if (r.SvaBind == SvaBindModel.Bond && r.NotifierModel != NotifierModel.PerRidDomainAndMm)
            yield return "sva-bind = bond keeps its notifier per (RID domain, mm): notifier must be per-rid-domain-and-mm";
        if (r.SvaBind == SvaBindModel.Bond && r.VtdNotifierScope == VtdNotifierScope.PerSvaDomain)
            yield return "sva-bind = bond has no SVA domain to own the VT-d notifier: vtd-notifier-scope must be per-mm or per-pasid";
        if (r.SvaBind == SvaBindModel.Bond && r.AsidModel != AsidModel.SharedCpuAsid)
            yield return "sva-bind = bond has no SVA domain to own an ASID: asid-model must be shared-cpu";
    }

    /// <summary>The built-in versions at which a switch takes <paramref name="value"/> while its parent had another (the root: all its values).</summary>
    public static IEnumerable<KernelVersion> IntroducedAt(KernelSwitch sw, SwitchValue value)
    {
        KernelRules? parent = null;
        foreach (var v in KernelVersions.All)
        {
            var now = sw.ValueIn(v.Rules);
            var was = parent is null ? null : sw.ValueIn(parent);
            if (now == value && was != value) yield return v;
            parent = v.Rules;
        }
    }
}
