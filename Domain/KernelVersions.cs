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

/// <summary>Binding an mm whose process already exited (kernel-sva.md §4 row 20).</summary>
public enum ExitedMmBind
{
    /// <summary>
    /// G1–G4 [U]: the core never looks at mm_users. Re-binding an existing (dev, mm) pair works as usual,
    /// but a new pairing registers an mmu_notifier, and __mmu_notifier_register has
    /// BUG_ON(mm_users &lt;= 0): the caller broke the contract and the kernel oopses. Modelled as -EINVAL.
    /// </summary>
    NotifierRegistrationBugOn,
    /// <summary>G5 Arm: set_dev_pasid does mmget_not_zero(domain->mm) and fails with -EINVAL [V].</summary>
    MmgetNotZero,
}

/// <summary>Where the IOPF core looks for the fault handler relative to the partial (non-last) list (§3.1).</summary>
public enum FaultHandlerLookup
{
    /// <summary>≤6.11: non-last requests are parked first; the handler is looked up for the last one only.</summary>
    AtLastRequest,
    /// <summary>Aug-2024 fix (~6.12 [U]): find_fault_handler runs before anything else, for every page request.</summary>
    BeforeAnything,
}

/// <summary>
/// Every rule that differs between kernel versions, as data. A version is its parent's rules with a
/// few changed (<see cref="KernelVersions"/>); code reads these fields, never compares version strings.
/// </summary>
public sealed record KernelRules
{
    public required Generation Generation { get; init; }
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
    /// 6.8+ (commit c404f55c26fc, release [U]; §4 row 8 puts it in G4): iommu_attach_device_pasid checks
    /// pasid &lt; max_pasids on every group device before touching the slot (-EINVAL). Devices with
    /// max_pasids 0 are checked too: the fix that skips them (tdave, 2025) is later than every version here.
    /// </summary>
    public required bool AttachChecksEveryGroupDevice { get; init; }
    /// <summary>
    /// 5.11–6.3: the ioasid-era iommu_sva_alloc_pasid(mm, min = 1, max = max_pasids - 1) first rejects an
    /// empty range (max &lt; min) with -EINVAL, whatever mm->pasid is (a device with max_pasids 1).
    /// </summary>
    public required bool RejectEmptyPasidRange { get; init; }
    /// <summary>
    /// Errno when the device's RID domain (a script's <c>attach NAME BDF</c>) is identity or blocked, not a
    /// stage-1 paging domain: G1 arm_smmu_sva_bind -EINVAL, G2–G4 Arm set_dev_pasid -ENODEV; null: not checked
    /// (6.11+ Arm builds the PASID's CD whatever the RID domain is [U]).
    /// </summary>
    public required Errno? NonPagingRidDomain { get; init; }
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
}

/// <summary>One supported kernel version: its name, its parent, what it changed, and the resulting rules.</summary>
public sealed record KernelVersion(string Name, string? Parent, string Summary, KernelRules Rules)
{
    public Generation Generation => Rules.Generation;
    public override string ToString() => Name;
}

/// <summary>
/// The supported versions, each the parent's rules plus its differences. Read top to bottom it is the
/// history of the seeds: 6.8-rc1 = 6.7 + per-mm PASID data and shared domains (the EBUSY regression);
/// 6.8 = 6.8-rc1 + the handle list.
/// </summary>
public static class KernelVersions
{
    private static readonly List<KernelVersion> all = new();

    static KernelVersions()
    {
        var v511 = new KernelRules
        {
            Generation = Generation.G1,
            PasidFreedAtLastUnbind = true,
            PasidRangeCheck = PasidRangeCheck.InsideRange,
            PasidExhausted = Errno.ENOMEM,
            NoPasidDevice = NoPasidDeviceRule.DriverEnodev,
            LamCheck = false,
            SingletonGroupOnly = true,
            AttachChecksEveryGroupDevice = false,
            RejectEmptyPasidRange = true,
            // 5.11 arm_smmu_sva_bind: smmu_domain->stage != ARM_SMMU_DOMAIN_S1 -> -EINVAL (§2 G1 step 3).
            NonPagingRidDomain = Errno.EINVAL,
            // 5.11/5.12 handled page requests in vendor code only [U]: modelled as the 5.13 generic IOPF path.
            FaultDispatch = FaultDispatch.GlobalPasidLookup,
            FaultHandlerLookup = FaultHandlerLookup.AtLastRequest,
            NoDomainAnswer = RefusedFaultAnswer.Invalid,
            NotOnIopfQueueAnswer = RefusedFaultAnswer.Failure,
            NotifierModel = NotifierModel.PerRidDomainAndMm,
            AsidModel = AsidModel.SharedCpuAsid,
            SvaDomainPerIommuInstance = false,
            ExitedMmBind = ExitedMmBind.NotifierRegistrationBugOn,
        };
        Add("5.11", null, "G1 bond model (Arm SMMUv3 SVA lands): bond refs per (dev, mm); PASID refcounted, freed at last unbind; -ENOMEM on exhaustion", v511);
        var v518 = Add("5.18", "5.11", "PASID lives as long as the mm (freed in __mmdrop); range check rejects the top value (off-by-one)",
            v511 with { PasidFreedAtLastUnbind = false, PasidRangeCheck = PasidRangeCheck.RejectTopValue });
        var v62 = Add("6.2", "5.18", "G2: one SVA domain per (device, mm), fresh handle per bind, domain->users counts binds; -EOPNOTSUPP without PASIDs; groups allowed; non-paging RID domain -> -ENODEV (set_dev_pasid); IOPF finds the domain by (dev, pasid)",
            v518 with
            {
                Generation = Generation.G2,
                NoPasidDevice = NoPasidDeviceRule.CoreEopnotsupp,
                SingletonGroupOnly = false,
                NonPagingRidDomain = Errno.ENODEV,
                FaultDispatch = FaultDispatch.DomainLookupInWork,
            });
        var v64 = Add("6.4", "6.2", "IDA allocator: -ENOSPC on exhaustion (and for an empty range); off-by-one fixed; LAM mm refused with -EBUSY",
            v62 with { PasidExhausted = Errno.ENOSPC, PasidRangeCheck = PasidRangeCheck.RejectAboveMax, RejectEmptyPasidRange = false, LamCheck = true });
        var v66 = Add("6.6", "6.4", "global PASID allocator: a device without PASIDs gets -EOVERFLOW (mm has a PASID) or -ENOSPC",
            v64 with { NoPasidDevice = NoPasidDeviceRule.GlobalAllocator });
        // §3.1's dispatch table puts 6.7 in the "6.7–6.8" band (get_domain_for_iopf in iommu_queue_iopf,
        // error -> Arm FAILURE); §4 row 14's G2 column ("INVALID") is the 6.2–6.6 answer and does not
        // single 6.7 out. The per-version table is followed here.
        var v67 = Add("6.7", "6.6", "IOPF looks the domain up in the report path: no domain -> -EINVAL to the driver (Arm answers FAILURE)",
            v66 with { FaultDispatch = FaultDispatch.DomainLookupInReport, NoDomainAnswer = RefusedFaultAnswer.Failure });
        var v68rc1 = Add("6.8-rc1", "6.7", "G3: per-mm iommu_mm, SVA domains shared across devices; a second bind of the same (dev, mm) fails -EBUSY (regression)",
            v67 with { Generation = Generation.G3 });
        var v68 = Add("6.8", "6.8-rc1", "G4: per-mm handle list restores sharing: re-bind returns the same handle, handle->users++; attach checks pasid < max_pasids on every group device [release U]",
            v68rc1 with { Generation = Generation.G4, AttachChecksEveryGroupDevice = true });
        // 6.8 keeps 6.8-rc1's fault path (the G4 fix 65d4418c5002 touched iommu-sva.c only): a device not on an
        // IOPF queue still gets -EINVAL -> Arm FAILURE. §4 row 16's G4 cell "no response (bug)" is the 6.9/6.10
        // answer (3dfa64aecbaf "Make iommu_report_device_fault() return void" is a 6.9 change).
        var v69 = Add("6.9", "6.8", "fault report returns void: no domain -> 'iopf aborted' FAILURE; device not on an IOPF queue -> WARN, no response",
            v68 with { NotOnIopfQueueAnswer = RefusedFaultAnswer.NoResponse });
        var v611 = Add("6.11", "6.9", "G5: iommu_attach_handle in the group pasid_array; Arm SVA domains own a private ASID and notifier; exited mm -> -EINVAL (mmget_not_zero); RID domain type no longer checked [U]",
            v69 with
            {
                Generation = Generation.G5,
                NotifierModel = NotifierModel.PerSvaDomain,
                AsidModel = AsidModel.PrivatePerDomain,
                SvaDomainPerIommuInstance = true,
                NonPagingRidDomain = null,
                ExitedMmBind = ExitedMmBind.MmgetNotZero,
            });
        Add("6.12", "6.11", "Aug-2024 'bad iopf' fix [release U]: the handler is looked up first, for every request; no handler or no IOPF queue -> the core answers INVALID",
            v611 with
            {
                FaultHandlerLookup = FaultHandlerLookup.BeforeAnything,
                NoDomainAnswer = RefusedFaultAnswer.Invalid,
                NotOnIopfQueueAnswer = RefusedFaultAnswer.Invalid,
            });
        _ = v68;
    }

    private static KernelRules Add(string name, string? parent, string summary, KernelRules rules)
    {
        all.Add(new KernelVersion(name, parent, summary, rules));
        return rules;
    }

    public static IReadOnlyList<KernelVersion> All => all;

    public static string SupportedList => string.Join(", ", all.Select(v => v.Name));

    public static bool TryGet(string? text, out KernelVersion version)
    {
        version = null!;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var name = text.Trim();
        if (name.StartsWith('v') || name.StartsWith('V')) name = name[1..];
        var found = all.FirstOrDefault(v => string.Equals(v.Name, name, StringComparison.OrdinalIgnoreCase));
        if (found is null) return false;
        version = found;
        return true;
    }

    /// <summary>The version named, or an <see cref="UnsupportedKernelException"/> listing the supported ones.</summary>
    public static KernelVersion Get(string? text) =>
        TryGet(text, out var v) ? v : throw new UnsupportedKernelException(text ?? "");
}

public sealed class UnsupportedKernelException(string requested)
    : Exception($"unsupported kernel version '{requested}'; supported: {KernelVersions.SupportedList}")
{
    public string Requested { get; } = requested;
}
