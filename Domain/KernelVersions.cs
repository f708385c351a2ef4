namespace Sva.Domain;

/// <summary>The generations of kernel-sva.md: how bind/unbind and handles work.</summary>
public enum Generation
{
    /// <summary>G1, core 5.3–6.1, Arm SMMUv3 SVA 5.11–6.1: driver-owned bond refcounted per (dev, mm).</summary>
    G1 = 1,
    /// <summary>G2, 6.2–6.7: one IOMMU_DOMAIN_SVA per (device, mm); a fresh handle per bind; domain->users counts binds.</summary>
    G2 = 2,
    /// <summary>G3, 6.8-rc1: per-mm iommu_mm_data, SVA domains shared across devices; re-bind of (dev, mm) fails -EBUSY.</summary>
    G3 = 3,
    /// <summary>G4, 6.8–6.10: G3 plus the per-mm handle list; re-bind returns the same handle, handle->users++.</summary>
    G4 = 4,
    /// <summary>G5, 6.11+: the handle is an iommu_attach_handle in the group pasid_array, looked up there.</summary>
    G5 = 5,
}

/// <summary>What iommu_sva_bind_device() binds an mm through (iommu-sva.c / the driver): one of the decisions <see cref="Generation"/> bundles.</summary>
public enum SvaBindModel
{
    /// <summary>G1: a driver-owned bond per (dev, mm) with refs (__arm_smmu_sva_bind, intel_svm_bind).</summary>
    Bond,
    /// <summary>G2: one IOMMU_DOMAIN_SVA per (device, mm), found at (dev, pasid); domain->users counts binds.</summary>
    DomainPerDevice,
    /// <summary>G3/G4: per-mm iommu_mm_data, the mm's SVA domains tried on every device, else a fresh one.</summary>
    SharedDomain,
    /// <summary>G5: the iommu_attach_handle in the group pasid_array decides first, then G3's shared domains.</summary>
    AttachHandle,
}

/// <summary>What a second bind of the same (device, mm) answers.</summary>
public enum RebindSameDeviceMm
{
    /// <summary>G1 bond refs++ / G4 handle list / G5 attach handle: the same handle, users++.</summary>
    SameHandle,
    /// <summary>G2: users++ on the domain at (dev, pasid), a fresh handle.</summary>
    NewHandle,
    /// <summary>G3 (6.8-rc1, 092edaddb660): the slot is taken by the mm's own domain: -EBUSY.</summary>
    Ebusy,
}

/// <summary>How an already-allocated mm PASID is checked against the device's max_pasids.</summary>
public enum PasidRangeCheck
{
    /// <summary>5.11–5.17: accepted when inside [1, max_pasids-1].</summary>
    InsideRange,
    /// <summary>5.18–6.3: <c>pasid &gt;= max_pasids - 1</c> rejected: the off-by-one that refuses the top value.</summary>
    RejectTopValue,
    /// <summary>6.4+: <c>pasid &gt; max_pasids - 1</c> (6.4/6.5) and <c>pasid &gt;= max_pasids</c> (6.6+): the same set.</summary>
    RejectAboveMax,
}

/// <summary>What bind answers for a device with max_pasids == 0 (kernel-sva.md §4 row 6).</summary>
public enum NoPasidDeviceRule
{
    /// <summary>G1: the Arm driver has no SSIDs, SVA cannot be enabled: -ENODEV.</summary>
    DriverEnodev,
    /// <summary>6.2–6.5: core checks max_pasids first: -EOPNOTSUPP.</summary>
    CoreEopnotsupp,
    /// <summary>6.6+: the global allocator refuses: -EOVERFLOW if the mm already has a PASID, else -ENOSPC.</summary>
    GlobalAllocator,
}

/// <summary>How a page request finds its handler (kernel-sva.md §3.1 dispatch table).</summary>
public enum FaultDispatch
{
    /// <summary>5.11–6.1: workqueue item, mm found by PASID globally (iommu_sva_find).</summary>
    GlobalPasidLookup,
    /// <summary>6.2–6.6: workqueue item looks up iommu_get_domain_for_dev_pasid(dev, pasid, 0).</summary>
    DomainLookupInWork,
    /// <summary>6.7+: domain looked up in the report path.</summary>
    DomainLookupInReport,
}

/// <summary>What the device gets back when the IOPF core refuses a fault (no handler, or no IOPF queue).</summary>
public enum RefusedFaultAnswer
{
    /// <summary>iommu_report_device_fault returns -EINVAL and the Arm driver aborts the stall: FAILURE.</summary>
    Failure,
    /// <summary>The core sends INVALID itself.</summary>
    Invalid,
    /// <summary>Nothing is sent (WARN only): the device stalls (bug reported Aug 2024).</summary>
    NoResponse,
}

/// <summary>Who receives a secondary-TLB invalidation when CPU page tables change (kernel-sva.md §3.2).</summary>
public enum NotifierModel
{
    /// <summary>G1–G4 Arm: one mmu_notifier per (RID domain, mm); each fires.</summary>
    PerRidDomainAndMm,
    /// <summary>G5 Arm: one mmu_notifier per SVA domain.</summary>
    PerSvaDomain,
}

/// <summary>The Arm ASID model (kernel-sva.md §1.5).</summary>
public enum AsidModel
{
    /// <summary>≤6.10: one context descriptor per mm carrying the pinned CPU ASID, shared by all devices.</summary>
    SharedCpuAsid,
    /// <summary>6.11+: each SVA domain owns a private ASID from arm_smmu_asid_xa.</summary>
    PrivatePerDomain,
}

/// <summary>Binding an mm whose process already exited (kernel-sva.md §9, replacing §4 row 20).</summary>
public enum ExitedMmBind
{
    /// <summary>
    /// G1–G4 [V]: the core never looks at mm_users. Re-binding an existing (dev, mm) pair (or a device whose
    /// (RID domain, mm) notifier exists) works as usual, but a new notifier hits BUG_ON(mm_users &lt;= 0) in
    /// __mmu_notifier_register: a kernel BUG, not an errno.
    /// </summary>
    NotifierRegistrationBugOn,
    /// <summary>
    /// G5 [V]: attaching an existing SVA domain fails -EINVAL in Arm set_dev_pasid (mmget_not_zero), but
    /// iommu_sva_bind_device discards that error, allocates a new domain, and its mmu_notifier_register hits
    /// the same BUG_ON.
    /// </summary>
    MmgetSwallowedThenBugOn,
}

/// <summary>What Arm set_dev_pasid / sva_bind does when the device's RID domain is identity or blocked (not S1).</summary>
public enum NonPagingRidDomainRule
{
    /// <summary>G1 arm_smmu_sva_bind: stage != S1 → -EINVAL [V].</summary>
    BindEinval,
    /// <summary>6.2–6.8 [U]: before ae91f6552c30 the misuse 'usually will hit a WARN_ON() in arm_smmu_write_ctx_desc()';
    /// the errno is not established. The simulator keeps -ENODEV and marks it uncertain.</summary>
    UncertainEnodev,
    /// <summary>6.9/6.10 (ae91f6552c30): the RID domain must be S1: -ENODEV [V].</summary>
    CheckedEnodev,
    /// <summary>6.11+ [U]: the PASID's CD is built whatever the RID domain is: not checked.</summary>
    NotChecked,
}

/// <summary>What the Arm SVA notifier sends as TLBI when CPU page tables change (kernel-sva.md §9 invalidation).</summary>
public enum ArmNotifierTlbi
{
    /// <summary>5.11: Arm SVA required BTM, the broadcast CPU TLBI covers the shared ASID: ATC invalidation only.</summary>
    AtcOnly,
    /// <summary>5.12–6.5: range TLBI by ASID for any size.</summary>
    RangeByAsid,
    /// <summary>6.6+ (d5afb4b47e13): whole-ASID TLBI once the range reaches the CMDQ_MAX_TLBI_OPS threshold.</summary>
    WholeAsidPastThreshold,
}

/// <summary>VT-d: who owns the mmu_notifier of an SVA binding (intel/svm.c; D3, D11 of kernel-sva-vtd-amd.md).</summary>
public enum VtdNotifierScope
{
    /// <summary>5.11–5.13: one intel_svm per mm (global_svm_list), its notifier registered only for a new svm.</summary>
    PerMm,
    /// <summary>5.14–6.9: one intel_svm per PASID (pasid_private_find), notifier registered only for a new svm.</summary>
    PerPasid,
    /// <summary>6.10+: the notifier lives in the SVA dmar_domain (intel_svm_domain_alloc), put when it is freed.</summary>
    PerSvaDomain,
}

/// <summary>VT-d: how prq_event_thread handles a page request (D4, D8).</summary>
public enum VtdPrq
{
    /// <summary>5.11–5.13: in the driver (ioasid_find, handle_mm_fault), one request at a time, its own result; no IOPF queue.</summary>
    InDriver,
    /// <summary>5.14–6.0: the svm and sdev are looked up first (miss → INVALID), then the IOPF queue.</summary>
    ReportAfterSdevLookup,
    /// <summary>6.1+ (06f4b8d09dba): straight to the IOPF queue.</summary>
    Report,
}

/// <summary>VT-d: what the driver sends when iommu_report_device_fault() fails (D5).</summary>
public enum VtdReportFailure
{
    /// <summary>5.14–6.8: handle_bad_prq_event(QI_RESP_INVALID).</summary>
    DriverInvalid,
    /// <summary>6.9+: the report returns void; the core decides.</summary>
    Core,
}

/// <summary>VT-d: where the errnos of a bind's PASID come from (D13, D14).</summary>
public enum VtdPasidErrnos
{
    /// <summary>5.11–5.13: intel_svm_bind_mm itself: no PASID capability -EINVAL, an mm PASID too wide for the device -ENOSPC, ioasid_alloc failing (exhausted, or max_pasids 1) -ENOSPC.</summary>
    Driver,
    /// <summary>5.14+: intel_svm_alloc_pasid → iommu_sva_alloc_pasid (the core's errnos); 5.14–6.1 pass pci_max_pasids() unchecked (no capability: a huge unsigned max [I]).</summary>
    Core,
}

/// <summary>AMD: what SVA the kernel offers an AMD IOMMU device (D1).</summary>
public enum AmdSva
{
    /// <summary>≤6.1: no generic SVA ops for AMD (amd_iommu_v2 is a private API): -ENODEV.</summary>
    NoSvaOp,
    /// <summary>6.2–6.6: the core sees max_pasids 0 for AMD [I]: -EOPNOTSUPP (6.2–6.5) or the global allocator's -ENOSPC/-EOVERFLOW (6.6).</summary>
    NoPasids,
    /// <summary>6.7–6.9: a PASID is allocated, then domain_alloc(IOMMU_DOMAIN_SVA) returns NULL: -ENOMEM [I/U].</summary>
    NoSvaDomain,
    /// <summary>6.10+: amd/pasid.c SVA domains; the RID domain must be identity or v2 (pdom_is_sva_capable).</summary>
    SvaDomain,
}

/// <summary>VT-d: what the SVA notifier flushes for a CPU TLB flush of more than 33 pages (x86 promotes it to the whole mm; D12).</summary>
public enum VtdNotifierFlush
{
    /// <summary>≤6.5: the callback gets the caller's range: PASID-selective range flush.</summary>
    Range,
    /// <summary>6.6.0–6.6.4 (what-if file): the promoted (0, -1) range overflows the rounding: nothing flushed.</summary>
    RangeOrLost,
    /// <summary>6.6.5+ / 6.7–6.9 (e7ad6c2a4b1a): the promoted range → intel_flush_svm_all (whole PASID).</summary>
    RangeOrWholePasid,
    /// <summary>6.10+: cache tags: cache_tag_flush_range or cache_tag_flush_all for the promoted range.</summary>
    CacheTagRangeOrAll,
}

/// <summary>The IOMMU driver of a device (the script's <c>driver=</c>): which driver's rules apply.</summary>
public static class Drivers
{
    public const string SmmuV3 = "smmuv3";
    public const string Vtd = "vtd";
    public const string Amd = "amd";
    public const string Default = SmmuV3;
    public static readonly IReadOnlyList<string> All = [SmmuV3, Vtd, Amd];
}

/// <summary>Where the IOPF core looks for the fault handler relative to the partial (non-last) list (§3.1).</summary>
public enum FaultHandlerLookup
{
    /// <summary>≤6.10: non-last requests are parked first; the handler is looked up for the last one only.</summary>
    AtLastRequest,
    /// <summary>b58b133e680b (6.11, §9): find_fault_handler runs before anything else, for every page request.</summary>
    BeforeAnything,
}

/// <summary>
/// Every rule that differs between kernel versions, as data. A version is its parent's rules with a
/// few changed (<see cref="KernelVersions"/>); code reads these fields, never compares version strings.
/// </summary>
public sealed record KernelRules
{
    /// <summary>G1 bond, G2 domain per device, G3/G4 shared domains, G5 attach handle.</summary>
    public required SvaBindModel SvaBind { get; init; }
    public required RebindSameDeviceMm RebindSameDeviceMm { get; init; }
    /// <summary>6.2+: iommu_attach_device_pasid() exists (a script's <c>attach D dev pasid=N</c>).</summary>
    public required bool PasidAttachApi { get; init; }
    /// <summary>5.11–5.17: PASID refcounted by bonds, freed at the last unbind; else freed in __mmdrop.</summary>
    public required bool PasidFreedAtLastUnbind { get; init; }
    public required PasidRangeCheck PasidRangeCheck { get; init; }
    /// <summary>Errno when the PASID space is exhausted: -ENOMEM (ioasid, ≤6.3) or -ENOSPC (IDA, 6.4+).</summary>
    public required Errno PasidExhausted { get; init; }
    public required NoPasidDeviceRule NoPasidDevice { get; init; }
    /// <summary>6.4+: arch_pgtable_dma_compat() false (x86 LAM) makes bind fail -EBUSY.</summary>
    public required bool LamCheck { get; init; }
    /// <summary>G1: iommu_sva_bind_device rejects groups with more than one device (-EINVAL).</summary>
    public required bool SingletonGroupOnly { get; init; }
    /// <summary>
    /// 6.9+ (commit c404f55c26fc, §9): iommu_attach_device_pasid checks pasid &lt; max_pasids on every group
    /// device before touching the slot (-EINVAL); 6.8 attaches past a member's limit. Devices with
    /// max_pasids 0 are checked too: the fix that skips them (tdave, 2025) is later than every version here.
    /// </summary>
    public required bool AttachChecksEveryGroupDevice { get; init; }
    /// <summary>
    /// 5.11–6.5 (§9): iommu_sva_alloc_pasid(mm, min = 1, max = max_pasids - 1) first rejects an empty range
    /// (max &lt; min) with -EINVAL, whatever mm->pasid is (a device with max_pasids 1), until the global
    /// allocator moved to the core in 6.6.
    /// </summary>
    public required bool RejectEmptyPasidRange { get; init; }
    /// <summary>
    /// The device's RID domain (a script's <c>attach NAME BDF</c>) is identity or blocked, not a stage-1 paging
    /// domain (Arm only): G1 -EINVAL; 6.2–6.8 -ENODEV [U]; 6.9/6.10 -ENODEV (ae91f6552c30); 6.11+ not checked [U].
    /// </summary>
    public required NonPagingRidDomainRule NonPagingRidDomain { get; init; }
    /// <summary>
    /// 5.13+: the generic IOPF queue exists; Arm SMMUv3 SVA needs it (arm_smmu_iopf_supported()), so on 5.11/5.12
    /// an SMMUv3 master cannot enable SVA (bind -ENODEV). VT-d SVA (PRQ in the driver) works without it.
    /// </summary>
    public required bool GenericIopf { get; init; }
    /// <summary>What TLBI the Arm notifier sends on an invalidation (§9).</summary>
    public required ArmNotifierTlbi ArmNotifierTlbi { get; init; }
    /// <summary>6.11+ Arm: after release the fault-everything CD makes the SMMU abort accesses of masters without STALL_FORCE.</summary>
    public required bool ArmReleaseAbortsAccess { get; init; }
    public required FaultDispatch FaultDispatch { get; init; }
    public required FaultHandlerLookup FaultHandlerLookup { get; init; }
    /// <summary>Fault for a PASID with nothing attached / no handler, 6.7+ dispatch only.</summary>
    public required RefusedFaultAnswer NoDomainAnswer { get; init; }
    /// <summary>Fault from a device never added to an IOPF queue.</summary>
    public required RefusedFaultAnswer NotOnIopfQueueAnswer { get; init; }
    public required NotifierModel NotifierModel { get; init; }
    public required AsidModel AsidModel { get; init; }
    /// <summary>G5 Arm: the driver refuses to share an SVA domain with a device behind another SMMU instance [U].</summary>
    public required bool SvaDomainPerIommuInstance { get; init; }
    /// <summary>What a bind that needs a new attachment answers for an exited mm (§4 row 20).</summary>
    public required ExitedMmBind ExitedMmBind { get; init; }
    // ---- VT-d and AMD driver rules (kernel-sva-vtd-amd.md, tests/data/vtd-amd) ----
    public required VtdNotifierScope VtdNotifierScope { get; init; }
    public required VtdPrq VtdPrq { get; init; }
    public required VtdReportFailure VtdReportFailure { get; init; }
    /// <summary>5.13+ (78a523fe73b8): an execute request is answered INVALID by the VT-d driver.</summary>
    public required bool VtdExecRequestInvalid { get; init; }
    /// <summary>≤6.12: a request without PASID is answered INVALID by the VT-d driver (6.13+: the core).</summary>
    public required bool VtdRidRequestInvalid { get; init; }
    public required VtdNotifierFlush VtdNotifierFlush { get; init; }
    public required VtdPasidErrnos VtdPasidErrnos { get; init; }
    public required AmdSva AmdSva { get; init; }
}

/// <summary>
/// One supported kernel version: its name, its parent, what it changed, the resulting rules, and the ids of the
/// rules (<see cref="KernelRuleTable"/>) whose behaviour it introduced or changed relative to its parent.
/// </summary>
public sealed record KernelVersion(string Name, string? Parent, string Summary, KernelRules Rules, IReadOnlyList<string> Introduces)
{
    /// <summary>The generation (G1–G5) it belongs to: a name for documentation; the code reads <see cref="Rules"/>.</summary>
    public Generation Generation { get; init; }

    /// <summary>A what-if version defined by a kernel file (null for the built-in ones).</summary>
    public KernelOrigin? Origin { get; init; }

    /// <summary>The rule of an outcome as this version shows it: the rules of the switches a kernel file changed carry the
    /// file's commit and says (when it gives them).</summary>
    public KernelRule? Explain(KernelRule? rule) =>
        rule is null || Origin is null || (Origin.Commit is null && Origin.Says is null) || !Introduces.Contains(rule.Id) ? rule
        : rule with
        {
            Introduced = Origin.Commit ?? Name,
            Says = $"{(Origin.Says is { Length: > 0 } says ? says : "what-if")} [kernel file {Name}; the rule was: {rule.Says}]",
        };

    public override string ToString() => Name;
}

/// <summary>
/// Where a what-if version comes from: its kernel file (<see cref="File"/>), the commit and words it gives, and
/// <see cref="Base"/>: the built-in release at the root of its parent chain; <see cref="Definition"/>: the resolved content (base release, every switch value) a session stores so it replays
/// identically after the file changed or went.
/// </summary>
public sealed record KernelOrigin(string? File, string Base, string? Commit, string? Says, string Definition);

/// <summary>
/// The supported versions, each the parent's rules plus its differences. Read top to bottom it is the
/// history of the seeds: 6.8-rc1 = 6.7 + per-mm PASID data and shared domains (the EBUSY regression);
/// 6.8 = 6.8-rc1 + the handle list. A version stands for the releases up to the next one (5.11 for
/// 5.11/5.12, 6.9 for 6.9/6.10, 6.11 for 6.11 onwards).
/// </summary>
public static class KernelVersions
{
    private static readonly List<KernelVersion> all = new();

    static KernelVersions()
    {
        var v511 = new KernelRules
        {
            SvaBind = SvaBindModel.Bond,
            RebindSameDeviceMm = RebindSameDeviceMm.SameHandle,
            PasidAttachApi = false,
            PasidFreedAtLastUnbind = true,
            PasidRangeCheck = PasidRangeCheck.InsideRange,
            PasidExhausted = Errno.ENOMEM,
            NoPasidDevice = NoPasidDeviceRule.DriverEnodev,
            LamCheck = false,
            SingletonGroupOnly = true,
            AttachChecksEveryGroupDevice = false,
            RejectEmptyPasidRange = true,
            // 5.11 arm_smmu_sva_bind: smmu_domain->stage != ARM_SMMU_DOMAIN_S1 -> -EINVAL (§2 G1 step 3).
            NonPagingRidDomain = NonPagingRidDomainRule.BindEinval,
            // 5.11/5.12 handled page requests in vendor code only [U]: modelled as the 5.13 generic IOPF path.
            FaultDispatch = FaultDispatch.GlobalPasidLookup,
            FaultHandlerLookup = FaultHandlerLookup.AtLastRequest,
            NoDomainAnswer = RefusedFaultAnswer.Invalid,
            NotOnIopfQueueAnswer = RefusedFaultAnswer.Failure,
            NotifierModel = NotifierModel.PerRidDomainAndMm,
            AsidModel = AsidModel.SharedCpuAsid,
            SvaDomainPerIommuInstance = false,
            ExitedMmBind = ExitedMmBind.NotifierRegistrationBugOn,
            GenericIopf = false,
            ArmNotifierTlbi = ArmNotifierTlbi.AtcOnly,
            ArmReleaseAbortsAccess = false,
            VtdNotifierScope = VtdNotifierScope.PerMm,
            VtdPrq = VtdPrq.InDriver,
            VtdReportFailure = VtdReportFailure.DriverInvalid,
            VtdExecRequestInvalid = false,
            VtdRidRequestInvalid = true,
            VtdNotifierFlush = VtdNotifierFlush.Range,
            VtdPasidErrnos = VtdPasidErrnos.Driver,
            AmdSva = AmdSva.NoSvaOp,
        };
        Add("5.11", null, "G1 bond model: bond refs per (dev, mm); PASID refcounted, freed at last unbind; -ENOMEM on exhaustion. Arm SMMUv3 cannot enable SVA yet (no IOPF: bind -ENODEV); VT-d SVA works", Generation.G1,
            v511, "g1.bond-new", "g1.vtd-bond", "arm.sva-needs-iopf", "inv.arm-btm-atc-only", "iopf.vendor-prq", "pasid.range-inside", "pasid.exhausted-ioasid", "pasid.empty-range", "g1.singleton-group", "g1.rid-not-s1", "bug.notifier-register",
            "g1.no-ssids", "sva.not-enabled", "g1.bond-shared", "g1.notifier-reused-after-exit", "g1.unbind", "inv.pasid-flush", "inv.no-notifier",
            "amd.no-sva-op", "amd.ppr-no-sva", "vtd.exited-mm-svm-exists", "vtd.exited-mm-bug", "vtd.bind-shared", "vtd.unbind", "vtd.prq-in-driver", "vtd.prq-in-driver-no-svm", "vtd.prq-in-driver-unbound", "vtd.prq-in-driver-mm-exited", "vtd.prq-in-driver-vma", "vtd.prq-no-pasid", "vtd.prq-noncanonical", "vtd.mm-release", "inv.vtd-range",
            "vtd.no-pasid-cap", "vtd.pasid-width", "vtd.pasid-exhausted",
            "release.quiet-cd", "release.none", "domain.alloc", "domain.map", "attach.rid", "attach.no-pasid-api", "dma.non-sva-domain");
        var v513 = Add("5.13", "5.11", "generic IOPF queue and Arm stall support: Arm SMMUv3 SVA works (bond model); range TLBI by ASID for any size; page requests through the generic IOPF path", Generation.G1,
            v511 with { GenericIopf = true, ArmNotifierTlbi = ArmNotifierTlbi.RangeByAsid, VtdExecRequestInvalid = true },
            "vtd.prq-exec", "iopf.global-pasid", "iopf.partial", "iopf.no-queue-failure", "inv.arm-range", "iopf.mm-exited", "iopf.vma-denied", "iopf.handled");
        // kernel-sva-vtd-amd.md §3.1: VT-d moves its page requests to the IOPF queue in 5.14 (svm/sdev looked up first).
        var v514 = Add("5.14", "5.13", "VT-d: page requests go to the generic IOPF queue after an svm/sdev lookup (a miss, or a failed report, is answered INVALID by the driver); one intel_svm per PASID; PASIDs from the core helper (iommu_sva_alloc_pasid: its errnos)", Generation.G1,
            v513 with { VtdPrq = VtdPrq.ReportAfterSdevLookup, VtdNotifierScope = VtdNotifierScope.PerPasid, VtdPasidErrnos = VtdPasidErrnos.Core },
            "vtd.prq-sdev-lookup", "vtd.prq-report-failed", "vtd.pasid-core", "vtd.no-pasid-cap-unchecked");
        var v518 = Add("5.18", "5.14", "PASID lives as long as the mm (freed in __mmdrop); range check rejects the top value (off-by-one)", Generation.G1,
            v514 with { PasidFreedAtLastUnbind = false, PasidRangeCheck = PasidRangeCheck.RejectTopValue },
            "pasid.range-off-by-one", "mm.drop");
        // 06f4b8d09dba: the svm/sdev lookup goes (symbol tables: svm_lookup_device_by_sid present in 5.19, absent in 6.2).
        var v61 = Add("6.1", "5.18", "VT-d: page requests go straight to the IOPF queue (no svm/sdev lookup, 06f4b8d09dba): a device not bound to the PASID is served through iommu_sva_find", Generation.G1,
            v518 with { VtdPrq = VtdPrq.Report },
            "vtd.prq-report");
        var v62 = Add("6.2", "6.1", "G2: one SVA domain per (device, mm), fresh handle per bind, domain->users counts binds; -EOPNOTSUPP without PASIDs; groups allowed; non-paging RID domain -> -ENODEV [U] (set_dev_pasid); IOPF finds the domain by (dev, pasid)", Generation.G2,
            v61 with
            {
                AmdSva = AmdSva.NoPasids,
                SvaBind = SvaBindModel.DomainPerDevice,
                RebindSameDeviceMm = RebindSameDeviceMm.NewHandle,
                PasidAttachApi = true,
                NoPasidDevice = NoPasidDeviceRule.CoreEopnotsupp,
                SingletonGroupOnly = false,
                NonPagingRidDomain = NonPagingRidDomainRule.UncertainEnodev,
                FaultDispatch = FaultDispatch.DomainLookupInWork,
            },
            "amd.no-pasids", "g2.domain-new", "g2.domain-reused", "g2.slot-not-sva", "g2.unbind", "pasid.no-pasid-eopnotsupp", "attach.slot-busy", "attach.ok", "attach.detach", "attach.pasid-zero", "arm.rid-not-s1.uncertain", "iopf.domain-in-work");
        var v64 = Add("6.4", "6.2", "IDA allocator: -ENOSPC on exhaustion; off-by-one fixed; LAM mm refused with -EBUSY (max_pasids 1 still -EINVAL: the argument check lives until 6.6)", Generation.G2,
            v62 with { PasidExhausted = Errno.ENOSPC, PasidRangeCheck = PasidRangeCheck.RejectAboveMax, LamCheck = true },
            "pasid.exhausted-ida", "pasid.range-above-max", "pasid.lam");
        var v66 = Add("6.6", "6.4", "global PASID allocator in the core: a device without PASIDs gets -EOVERFLOW (mm has a PASID) or -ENOSPC, max_pasids 1 no longer -EINVAL; Arm whole-ASID TLBI past the threshold (d5afb4b47e13)", Generation.G2,
            v64 with { NoPasidDevice = NoPasidDeviceRule.GlobalAllocator, RejectEmptyPasidRange = false, ArmNotifierTlbi = ArmNotifierTlbi.WholeAsidPastThreshold, VtdNotifierFlush = VtdNotifierFlush.RangeOrWholePasid },
            "pasid.exhausted-global", "inv.arm-threshold", "inv.vtd-whole-pasid", "inv.vtd-lost");
        // §9: in 6.7, 6.8-rc1 and 6.8 the work item iopf_handler looks the domain up and answers INVALID (the
        // "-EINVAL to the driver, Arm FAILURE" reading of §3.1 is the 6.9 code, 351ffcb11ca0).
        var v67 = Add("6.7", "6.6", "IOPF: the domain is looked up in the report path; a fault at a (device, PASID) without domain is answered INVALID by the work item", Generation.G2,
            v66 with { FaultDispatch = FaultDispatch.DomainLookupInReport, AmdSva = AmdSva.NoSvaDomain },
            "iopf.no-domain-invalid-6.7", "amd.no-sva-domain");
        var v68rc1 = Add("6.8-rc1", "6.7", "G3: per-mm iommu_mm, SVA domains shared across devices; a second bind of the same (dev, mm) fails -EBUSY (regression)", Generation.G3,
            v67 with { SvaBind = SvaBindModel.SharedDomain, RebindSameDeviceMm = RebindSameDeviceMm.Ebusy },
            "g3.rebind-ebusy", "g3.domain-shared", "g3.domain-new", "g3.unbind");
        var v68 = Add("6.8", "6.8-rc1", "G4: per-mm handle list restores sharing: re-bind returns the same handle, handle->users++ (6.8 still attaches past a group member's max_pasids)", Generation.G4,
            v68rc1 with { RebindSameDeviceMm = RebindSameDeviceMm.SameHandle },
            "g4.handle-shared", "g4.unbind");
        // §9: 351ffcb11ca0, b554e396e51c, 3dfa64aecbaf, ae91f6552c30 and c404f55c26fc are all 6.9 merge-window commits.
        var v69 = Add("6.9", "6.8", "fault report returns void: no domain -> 'iopf aborted' FAILURE; device not on an IOPF queue -> WARN, no response; PASID checked against every group member's max_pasids (c404f55c26fc); RID domain must be S1 (ae91f6552c30)", Generation.G4,
            v68 with
            {
                NoDomainAnswer = RefusedFaultAnswer.Failure,
                NotOnIopfQueueAnswer = RefusedFaultAnswer.NoResponse,
                AttachChecksEveryGroupDevice = true,
                NonPagingRidDomain = NonPagingRidDomainRule.CheckedEnodev,
                VtdReportFailure = VtdReportFailure.Core,
            },
            "iopf.no-domain-failure", "iopf.no-queue-withheld", "attach.member-max-pasids", "arm.rid-not-s1");
        // kernel-sva-vtd-amd.md: amd/pasid.c and ppr.c arrive in 6.10; VT-d moves the notifier into the SVA dmar_domain.
        var v610 = Add("6.10", "6.9", "AMD SVA (amd/pasid.c, ppr.c): SVA domains with their own notifier, the RID domain must be identity or v2; VT-d: the notifier per SVA domain (intel_svm_domain_alloc), invalidation through cache tags", Generation.G4,
            v69 with { AmdSva = AmdSva.SvaDomain, VtdNotifierScope = VtdNotifierScope.PerSvaDomain, VtdNotifierFlush = VtdNotifierFlush.CacheTagRangeOrAll },
            "amd.sva-domain", "amd.rid-not-sva-capable", "amd.pasid-invalid", "amd.ppr-invalid", "amd.mm-release", "amd.exited-mm-domain-shared", "amd.exited-mm-bug-domain", "vtd.exited-mm-domain-shared", "vtd.exited-mm-bug-domain", "inv.vtd-cache-tag", "inv.amd-pasid");
        // §9: b58b133e680b ("Handle iommu faults for a bad iopf setup") is 6.11 (v6.11-rc5), not 6.12.
        Add("6.11", "6.10", "G5: iommu_attach_handle in the group pasid_array; Arm SVA domains own a private ASID and notifier; after release the SMMU aborts accesses (fault-everything CD); b58b133e680b: the fault handler is looked up first, no handler or no IOPF queue -> INVALID; RID domain type no longer checked [U]", Generation.G5,
            v610 with
            {
                SvaBind = SvaBindModel.AttachHandle,
                NotifierModel = NotifierModel.PerSvaDomain,
                AsidModel = AsidModel.PrivatePerDomain,
                SvaDomainPerIommuInstance = true,
                NonPagingRidDomain = NonPagingRidDomainRule.NotChecked,
                ExitedMmBind = ExitedMmBind.MmgetSwallowedThenBugOn,
                ArmReleaseAbortsAccess = true,
                FaultHandlerLookup = FaultHandlerLookup.BeforeAnything,
                NoDomainAnswer = RefusedFaultAnswer.Invalid,
                NotOnIopfQueueAnswer = RefusedFaultAnswer.Invalid,
            },
            "g5.handle-shared", "g5.slot-other-mm", "g5.slot-not-sva", "g5.unbind", "arm.other-smmu", "arm.rid-not-checked", "bug.notifier-register-g5", "arm.access-aborted", "release.fault-all-cd", "iopf.no-handler-invalid", "iopf.no-queue-invalid");
        _ = v68;
    }

    private static KernelRules Add(string name, string? parent, string summary, Generation g, KernelRules rules, params string[] introduces)
    {
        foreach (var id in introduces) _ = KernelRuleTable.Get(id); // a typo fails at type initialisation, not in a report
        all.Add(new KernelVersion(name, parent, summary, rules, introduces) { Generation = g });
        return rules;
    }

    /// <summary>The rule fields (<see cref="KernelRules"/> properties) whose value differs from the parent's.</summary>
    public static IReadOnlyList<string> ChangedFields(KernelVersion v)
    {
        if (v.Parent is null) return [];
        var parent = Get(v.Parent).Rules;
        return typeof(KernelRules).GetProperties().Where(p => !Equals(p.GetValue(parent), p.GetValue(v.Rules))).Select(p => p.Name).ToList();
    }

    public static IReadOnlyList<KernelVersion> All => all;

    public static string SupportedList => string.Join(", ", all.Select(v => v.Name));

    /// <summary>
    /// Rule sets that were renamed or merged: the old name a session may have been recorded under → the rule set that
    /// now stands for it. Names are never removed from here: a session recorded under one loads and replays forever.
    /// </summary>
    private static readonly Dictionary<string, string> aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        // 6.12 was a version of its own until the "bad iopf" fix b58b133e680b was found to be 6.11 (kernel-sva.md §9).
        ["6.12"] = "6.11",
    };

    public static IReadOnlyDictionary<string, string> Aliases => aliases;

    /// <summary>The first release the model covers: below it there is no SVA rule set.</summary>
    public const string Oldest = "5.11";

    private static readonly System.Text.RegularExpressions.Regex release = new(
        @"^[vV]?(?<major>\d{1,3})\.(?<minor>\d{1,3})(?:\.(?<patch>\d{1,5}))?(?:-rc(?<rc>\d{1,3}))?(?<suffix>(?!-rc)[-+_.~][A-Za-z0-9._+~-]*)?$",
        System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static (int Major, int Minor, int Rc) Key(string name)
    {
        var m = release.Match(name);
        return (int.Parse(m.Groups["major"].Value), int.Parse(m.Groups["minor"].Value), m.Groups["rc"].Success ? int.Parse(m.Groups["rc"].Value) : int.MaxValue);
    }

    /// <summary>"5.11–5.12", "6.8-rc1", "6.11 onwards": the releases a rule set stands for.</summary>
    public static string Covers(KernelVersion v)
    {
        var i = all.IndexOf(v);
        if (i < 0) return v.Name;
        if (i == all.Count - 1) return $"{v.Name} onwards";
        var (maj, min, rc) = Key(v.Name);
        if (rc != int.MaxValue) return $"{v.Name} to {maj}.{min}'s last rc";
        var next = Key(all[i + 1].Name);
        // the last release before the next rule set: 5.18 stands for 5.18, 5.19, 6.0 and 6.1 (below 6.2).
        var last = next.Minor > 0 ? (next.Major, next.Minor - 1) : (next.Major - 1, -1);
        if (next.Rc != int.MaxValue && next.Minor == min && next.Major == maj) last = (maj, min);
        if (last == (maj, min)) return v.Name;
        return last.Item2 < 0 ? $"{v.Name} up to {next.Major}.0" : $"{v.Name}–{last.Item1}.{last.Item2}";
    }

    /// <summary>
    /// Any kernel release ≥ 5.11, as a user names it (<c>6.15</c>, <c>v6.8-rc3</c>, <c>6.8.0-31-generic</c>,
    /// <c>6.12.9-arch1-1</c>), or a rule-set name or alias, resolved to the rule set that covers it. A release
    /// candidate X.Y-rcN has X.Y's rules (the merge window is over) unless a rule set of X.Y's rcs exists
    /// (6.8-rc1 stands for 6.8's rcs before the handle-list fix 65d4418c5002). Null when it names no release ≥ 5.11.
    /// </summary>
    public static KernelResolution? Resolve(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var given = text.Trim();
        var bare = given.StartsWith('v') || given.StartsWith('V') ? given[1..] : given;
        var exact = all.FirstOrDefault(v => string.Equals(v.Name, bare, StringComparison.OrdinalIgnoreCase));
        if (exact is not null) return new KernelResolution(given, exact, null);
        if (aliases.TryGetValue(bare, out var target))
        {
            var to = all.First(v => v.Name == target);
            return new KernelResolution(given, to, $"{given} → rules of {to.Name} ({Covers(to)}; '{bare}' is an alias: its rules were merged into {to.Name})");
        }
        if (!release.IsMatch(given)) return null;
        var key = Key(given);
        if (key.Rc != int.MaxValue && !all.Any(v => Key(v.Name) is var k && k.Major == key.Major && k.Minor == key.Minor && k.Rc <= key.Rc))
            key = (key.Major, key.Minor, int.MaxValue);
        KernelVersion? found = null;
        foreach (var v in all)
            if (Key(v.Name).CompareTo(key) <= 0) found = v;
        if (found is null) return null;
        return new KernelResolution(given, found, $"{given} → rules of {found.Name} ({Covers(found)})");
    }

    public static bool TryGet(string? text, out KernelVersion version)
    {
        var r = Resolve(text);
        version = r?.Version!;
        return r is not null;
    }

    /// <summary>The rule set covering the release named, or an <see cref="UnsupportedKernelException"/> listing the supported ones.</summary>
    public static KernelVersion Get(string? text) =>
        TryGet(text, out var v) ? v : throw new UnsupportedKernelException(text ?? "");
}

/// <summary>A kernel name as the user gave it, the rule set it resolved to, and (when they differ) the line that says so.</summary>
public sealed record KernelResolution(string Given, KernelVersion Version, string? Note);

public sealed class UnsupportedKernelException(string requested)
    : Exception($"unsupported kernel version '{requested}': give a release ≥ {KernelVersions.Oldest} (e.g. 6.8, v6.8-rc3, 6.8.0-31-generic) or a kernel file (.toml); supported: {KernelVersions.SupportedList}")
{
    public string Requested { get; } = requested;
}
