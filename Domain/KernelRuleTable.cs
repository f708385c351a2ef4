using System.Text.Json.Nodes;

namespace Sva.Domain;

/// <summary>How sure kernel-sva.md is of a rule: read in source (V), inferred from code read (I), not established (U).</summary>
public enum Confidence { V, I, U }

/// <summary>
/// Why an outcome is what it is: the kernel function (and driver) that decides it, the commit or release that
/// introduced the behaviour, and the confidence the spec gives it. <see cref="Id"/> is what events store.
/// </summary>
public sealed record KernelRule(string Id, string Function, string? Driver, string Introduced, Confidence Confidence, string Says)
{
    /// <summary>"iommu_sva_bind_device(), 092edaddb660" (with the driver when there is one, and [U]/[I] when not V).</summary>
    public string Short =>
        $"{Function}{(Driver is null ? "" : $" [{Driver}]")}{(Introduced == "-" ? "" : $", {Introduced}")}{(Confidence == Confidence.V ? "" : $" [{Confidence}]")}";

    public JsonObject ToJson() => new()
    {
        ["id"] = Id,
        ["function"] = Function,
        ["driver"] = Driver,
        ["introduced"] = Introduced,
        ["confidence"] = Confidence.ToString(),
        ["says"] = Says,
    };
}

/// <summary>
/// Every rule an outcome can carry, in one table (kernel-sva.md §2–§4 as corrected by §9). Commit ids are the
/// spec's; where the spec names only a release, the release is given. The simulator's own input checks
/// (objects that do not exist) are rules too, with function "(simulator)".
/// </summary>
public static class KernelRuleTable
{
    private const string Arm = "smmuv3", Vtd = "vtd", Amd = "amd";

    private static readonly KernelRule[] table =
    [
        // ---- simulator input checks -------------------------------------------------------------------------
        new("sim.unknown-object", "(simulator)", null, "-", Confidence.V, "the call names a device, mm, domain or handle that does not exist (or already exists)"),
        new("sim.mm-dropped", "(simulator)", null, "-", Confidence.V, "the mm was dropped: binding it is a use after free in the caller"),
        new("sim.unbind-freed", "(simulator)", null, "-", Confidence.V, "the handle was freed or its bind failed: unbind has nothing to release"),
        new("sim.misuse", "(simulator)", null, "-", Confidence.V, "the call does not apply to that object (an SVA domain attached by hand, a detach of what is not attached)"),
        new("sim.ok", "(simulator)", null, "-", Confidence.V, "a fact of the scenario (device probed, mm created, VMA declared), not a kernel decision"),

        // ---- G1 bond model ----------------------------------------------------------------------------------
        new("g1.singleton-group", "iommu_sva_bind_device()", null, "5.3", Confidence.V, "the G1 core refuses SVA for a group with more than one device: -EINVAL"),
        new("g1.rid-not-s1", "arm_smmu_sva_bind()", Arm, "5.11", Confidence.V, "the RID domain is not stage-1: -EINVAL"),
        new("arm.sva-needs-iopf", "arm_smmu_master_sva_supported()", Arm, "5.11", Confidence.V, "5.11/5.12: arm_smmu_iopf_supported() is false until the stall/IOPF series (5.13), so SVA cannot be enabled: -ENODEV"),
        new("g1.no-ssids", "arm_smmu_master_sva_supported()", null, "5.11", Confidence.V, "G1: a master without SSIDs cannot enable SVA in its driver: -ENODEV (VT-d modelled alike)"),
        new("sva.not-enabled", "__arm_smmu_sva_bind() / arm_smmu_sva_set_dev_pasid()", null, "5.11", Confidence.V, "SVA is not enabled on the device (or it has fewer than 2 PASIDs): -ENODEV"),
        new("g1.bond-shared", "__arm_smmu_sva_bind()", Arm, "5.11", Confidence.V, "an existing bond of (dev, mm): refs++, the same handle"),
        new("g1.bond-new", "__arm_smmu_sva_bind()", Arm, "5.11", Confidence.V, "a new bond: PASID, shared CD with the pinned CPU ASID, notifier per (RID domain, mm)"),
        new("g1.vtd-bond", "intel_svm_bind_mm()", Vtd, "5.11", Confidence.V, "VT-d bind up to 6.1: an intel_svm per mm (5.11–5.13) or per PASID (5.14+) with one mmu_notifier, an intel_svm_dev per device; the PASID entry is set up first-level, no CD, no ASID"),
        new("vtd.bind-shared", "intel_svm_bind_mm()", Vtd, "5.11", Confidence.V, "the device is already in the svm's device list: sdev->users++, the same handle"),
        new("vtd.unbind", "intel_svm_unbind_mm()", Vtd, "5.11", Confidence.V, "sdev->users--; at 0 intel_pasid_tear_down_entry (returns early when release already cleared the entry), drain the PRQ; the last device puts the svm's notifier"),

        // ---- VT-d / AMD: exited mm, AMD gate ----------------------------------------------------------------
        new("vtd.exited-mm-svm-exists", "intel_svm_bind_mm()", Vtd, "5.11", Confidence.V, "5.11–6.9: an svm for the mm (≤5.13) or PASID (5.14+) exists: the device joins it, no new notifier, nothing looks at mm_users"),
        new("vtd.exited-mm-bug", "intel_svm_bind_mm() -> mmu_notifier_register()", Vtd, "5.11", Confidence.V, "5.11–6.9: no svm yet for the exited mm: registering its notifier hits BUG_ON(mm_users <= 0)"),
        new("vtd.exited-mm-domain-shared", "intel_svm_set_dev_pasid()", Vtd, "6.10", Confidence.V, "6.10+: the mm's SVA domain attaches to the device; set_dev_pasid has no mm_users check"),
        new("vtd.exited-mm-bug-domain", "intel_svm_domain_alloc() -> mmu_notifier_register()", Vtd, "6.10", Confidence.V, "6.10+: a fresh SVA domain for the exited mm registers its notifier: BUG_ON(mm_users <= 0)"),
        new("vtd.no-pasid-cap", "intel_svm_bind_mm()", Vtd, "5.11", Confidence.V, "5.11–5.13: pci_max_pasids() < 0 (the device has no PASID capability): -EINVAL"),
        new("vtd.pasid-width", "intel_svm_bind_mm()", Vtd, "5.11", Confidence.V, "5.11–5.13: the mm's svm has a PASID >= the device's pasid_max: -ENOSPC (\"Limited PASID width\")"),
        new("vtd.pasid-exhausted", "intel_svm_bind_mm() -> ioasid_alloc()", Vtd, "5.11", Confidence.V, "5.11–5.13: ioasid_alloc(NULL, 1, pasid_max - 1) fails (space exhausted, or max_pasids 1: an empty range): -ENOSPC, not -ENOMEM"),
        new("vtd.pasid-core", "intel_svm_alloc_pasid() -> iommu_sva_alloc_pasid()", Vtd, "5.14", Confidence.V, "5.14+ (40483774, v5.14 pull): the PASID comes from the core helper with (1, pci_max_pasids - 1): the core's errnos"),
        new("vtd.no-pasid-cap-unchecked", "intel_svm_alloc_pasid()", Vtd, "5.14", Confidence.I, "5.14–6.1: pci_max_pasids()'s -EINVAL (no PASID capability) is taken as an unsigned max: the range check passes and the bind goes on (tests/data/vtd-amd §6 Q3)"),
        new("amd.no-sva-op", "iommu_sva_bind_device()", Amd, "5.11", Confidence.I, "≤6.1: the AMD driver has no sva_bind op (amd_iommu_v2 is a private API): -ENODEV"),
        new("amd.no-pasids", "iommu_sva_bind_device()", Amd, "6.2", Confidence.I, "6.2–6.6: AMD's iommu_device.max_pasids is 0 [I]: the core refuses as for a device without PASIDs"),
        new("amd.no-sva-domain", "iommu_sva_domain_alloc() -> amd_iommu_domain_alloc()", Amd, "6.7", Confidence.U, "6.7–6.9: a PASID is allocated, then domain_alloc(IOMMU_DOMAIN_SVA) returns NULL: -ENOMEM"),
        new("amd.sva-domain", "iommu_sva_set_dev_pasid()", Amd, "6.10", Confidence.V, "6.10+: AMD SVA domain (amd/pasid.c): GCR3 entry for the PASID, notifier in the protection_domain"),
        new("amd.rid-not-sva-capable", "iommu_sva_set_dev_pasid() / pdom_is_sva_capable()", Amd, "6.10", Confidence.V, "6.10+: the RID domain is a v1 paging domain (no GCR3 table): -EINVAL; identity or v2 are SVA-capable"),
        new("amd.pasid-invalid", "iommu_sva_set_dev_pasid()", Amd, "6.10", Confidence.V, "6.10+: PASID 0 or >= max_pasids of a group device: -EINVAL"),
        new("amd.exited-mm-domain-shared", "iommu_sva_set_dev_pasid()", Amd, "6.10", Confidence.V, "6.10+: the mm's SVA domain attaches; no mm_users check"),
        new("amd.exited-mm-bug-domain", "amd_iommu_domain_alloc_sva() -> mmu_notifier_register()", Amd, "6.10", Confidence.I, "6.10+: a fresh SVA domain for the exited mm registers its notifier: BUG_ON(mm_users <= 0)"),

        // ---- PASID ------------------------------------------------------------------------------------------
        new("pasid.empty-range", "iommu_sva_alloc_pasid()", null, "5.11", Confidence.V, "min == 0 || max < min (a device with max_pasids 1): -EINVAL, until the allocator moved to the core in 6.6"),
        new("pasid.range-inside", "iommu_sva_alloc_pasid()", null, "5.11", Confidence.V, "5.11-5.17: an mm PASID outside [1, max_pasids-1] is refused: -EOVERFLOW"),
        new("pasid.range-off-by-one", "iommu_sva_alloc_pasid()", null, "5.18", Confidence.V, "5.18-6.3: pasid >= max_pasids-1 refused, the top value too: -EOVERFLOW"),
        new("pasid.range-above-max", "iommu_sva_alloc_pasid() / iommu_alloc_mm_data()", null, "6.4", Confidence.V, "an mm PASID >= max_pasids is refused: -EOVERFLOW"),
        new("pasid.exhausted-ioasid", "ioasid_alloc()", null, "5.11", Confidence.V, "ioasid set exhausted: -ENOMEM"),
        new("pasid.exhausted-ida", "ida_alloc_range()", null, "6.4", Confidence.I, "IDA exhausted (or empty range): -ENOSPC"),
        new("pasid.exhausted-global", "iommu_alloc_global_pasid()", null, "6.6", Confidence.V, "the global allocator returns IOMMU_PASID_INVALID: -ENOSPC"),
        new("pasid.no-pasid-eopnotsupp", "iommu_sva_bind_device()", null, "6.2", Confidence.V, "6.2-6.5: max_pasids == 0: -EOPNOTSUPP"),
        new("pasid.lam", "iommu_sva_bind_device()", null, "6.4", Confidence.I, "arch_pgtable_dma_compat() false (x86 LAM): -EBUSY"),

        // ---- attach (core and Arm set_dev_pasid) ------------------------------------------------------------
        new("attach.member-max-pasids", "iommu_attach_device_pasid()", null, "c404f55c26fc", Confidence.V, "6.9+: the PASID must be < max_pasids on every device of the group: -EINVAL"),
        new("attach.slot-busy", "iommu_attach_device_pasid()", null, "6.2", Confidence.V, "the group's pasid_array slot is taken (even by the same domain): -EBUSY"),
        new("attach.no-pasid-api", "iommu_attach_device_pasid()", null, "6.2", Confidence.V, "no PASID attach before 6.2: -EOPNOTSUPP"),
        new("attach.pasid-zero", "iommu_attach_device_pasid()", null, "6.2", Confidence.I, "PASID 0 is IOMMU_NO_PASID: -EINVAL (the core checks it from 6.8 [V]; before, the driver refuses it [I])"),
        new("attach.rid", "iommu_attach_device()", null, "-", Confidence.I, "legacy RID attach: singleton group, one domain at a time"),
        new("attach.ok", "iommu_attach_device_pasid()", null, "6.2", Confidence.V, "the slot is free: every device of the group is programmed"),
        new("arm.rid-not-s1.uncertain", "arm_smmu_sva_set_dev_pasid()", Arm, "6.2", Confidence.U, "6.2-6.8: a non-S1 RID domain 'usually will hit a WARN_ON() in arm_smmu_write_ctx_desc()'; the errno was not established: -ENODEV kept"),
        new("arm.rid-not-s1", "arm_smmu_sva_set_dev_pasid()", Arm, "ae91f6552c30", Confidence.V, "6.9+: the RID domain must be S1: -ENODEV"),
        new("arm.rid-not-checked", "arm_smmu_sva_set_dev_pasid()", Arm, "6.11", Confidence.U, "6.11+: the SVA CD is installed whatever the RID domain is (identity or blocked): the bind goes through"),
        new("arm.other-smmu", "arm_smmu_sva_set_dev_pasid()", Arm, "6.11", Confidence.U, "an SVA domain is not shared with a master behind another SMMU instance: -EINVAL, a fresh domain is tried"),

        // ---- G2-G5 bind ---------------------------------------------------------------------------------------
        new("g2.slot-not-sva", "iommu_get_domain_for_dev_pasid()", null, "6.2", Confidence.V, "the slot holds a non-SVA domain: -EBUSY"),
        new("g2.domain-reused", "iommu_sva_bind_device()", null, "6.2", Confidence.V, "the SVA domain at (dev, pasid): users++, a new handle"),
        new("g2.domain-new", "iommu_sva_bind_device()", null, "6.2", Confidence.V, "a fresh SVA domain per (device, mm), attached, users = 1, a new handle"),
        new("g3.rebind-ebusy", "iommu_sva_bind_device()", null, "092edaddb660", Confidence.V, "the mm's domains and a fresh one all fail to attach at the occupied slot: -EBUSY"),
        new("g3.domain-shared", "iommu_sva_bind_device()", null, "092edaddb660", Confidence.V, "an SVA domain of the mm attaches to this device: users++, a new handle"),
        new("g3.domain-new", "iommu_sva_bind_device()", null, "092edaddb660", Confidence.V, "no domain of the mm fits: a fresh SVA domain, users = 1"),
        new("g4.handle-shared", "iommu_sva_bind_device()", null, "65d4418c5002", Confidence.V, "the mm's handle list has one for this device: handle->users++, the same handle"),
        new("g5.handle-shared", "iommu_attach_handle_get()", null, "3e7f57d1ef3f", Confidence.V, "the attach handle at the slot belongs to this mm: users++, the same handle"),
        new("g5.slot-other-mm", "iommu_sva_bind_device()", null, "3e7f57d1ef3f", Confidence.V, "the slot's SVA domain belongs to another mm: -EBUSY"),
        new("g5.slot-not-sva", "iommu_attach_handle_get()", null, "3e7f57d1ef3f", Confidence.V, "the slot holds a non-SVA domain: -EBUSY"),

        // ---- bind after the mm exited: a kernel BUG -------------------------------------------------------
        new("bug.notifier-register", "__mmu_notifier_register()", null, "5.3", Confidence.V, "a new mmu_notifier for an mm with mm_users 0: BUG_ON(atomic_read(&mm->mm_users) <= 0); the call never returns"),
        new("bug.notifier-register-g5", "iommu_sva_bind_device() -> mmu_notifier_register()", Arm, "6.11", Confidence.V, "mmget_not_zero's -EINVAL from set_dev_pasid is discarded, a new SVA domain registers its notifier: BUG_ON(mm_users <= 0)"),
        new("g1.notifier-reused-after-exit", "arm_smmu_mmu_notifier_get()", Arm, "5.11", Confidence.I, "a notifier of (RID domain, mm) exists: refs++, nothing looks at mm_users"),

        // ---- unbind ------------------------------------------------------------------------------------------
        new("g1.unbind", "arm_smmu_sva_unbind()", Arm, "5.11", Confidence.V, "bond refs--; at 0 unlink, notifier put (CD cleared, TLBI/ATC unless cleared), 5.11-5.17 free the PASID"),
        new("g2.unbind", "iommu_sva_unbind_device()", null, "6.2", Confidence.V, "domain users--; at 0 detach and free; the handle is always freed"),
        new("g3.unbind", "iommu_sva_unbind_device()", null, "092edaddb660", Confidence.V, "detach first, then users--, free at 0"),
        new("g4.unbind", "iommu_sva_unbind_device()", null, "65d4418c5002", Confidence.V, "handle users--; at 0 unlink, detach, domain users-- (free at 0)"),
        new("g5.unbind", "iommu_sva_unbind_device()", null, "3e7f57d1ef3f", Confidence.V, "handle users--; at 0 detach, domain users-- (free at 0)"),
        new("attach.detach", "iommu_detach_device_pasid()", null, "6.2", Confidence.V, "the slot is erased and every device of the group unprogrammed"),

        // ---- page faults -------------------------------------------------------------------------------------
        new("dma.non-sva-domain", "(IOMMU translation)", null, "-", Confidence.I, "a paging/identity/blocked domain at the slot: the access is translated or an unrecoverable fault, no page request"),
        new("iopf.partial", "iommu_queue_iopf()", null, "5.13", Confidence.V, "a non-last request is parked on the partial list, never answered"),
        new("iopf.vendor-prq", "intel_svm_prq / vendor handler", "vtd", "5.11", Confidence.U, "before 5.13 page requests were handled in vendor code only (VT-d: vtd-prq = in-driver, D4); a kernel file that sends them to the IOPF path before the generic queue exists gets the 5.13 generic path"),
        new("iopf.global-pasid", "iommu_sva_find()", null, "5.13", Confidence.V, "5.13-6.1: the mm is found by PASID globally; unknown PASID or no PASID: INVALID"),
        new("iopf.domain-in-work", "iommu_get_domain_for_dev_pasid()", null, "6.2", Confidence.V, "6.2-6.6: the work item finds no domain at (dev, pasid): INVALID"),
        new("iopf.no-domain-invalid-6.7", "iopf_handler()", null, "6.7", Confidence.V, "6.7-6.8: the work item looks the domain up and answers INVALID"),
        new("iopf.no-domain-failure", "iommu_report_device_fault() / get_domain_for_iopf()", null, "351ffcb11ca0", Confidence.V, "6.9/6.10: no domain: 'iopf with pasid aborted', FAILURE (err_abort)"),
        new("iopf.no-handler-invalid", "find_fault_handler()", null, "b58b133e680b", Confidence.V, "6.11+: the handler is looked up first, for every request; none: the core answers INVALID"),
        new("iopf.no-queue-failure", "iommu_report_device_fault() -> arm_smmu_handle_evt()", Arm, "5.13", Confidence.V, "up to 6.8: the report fails -EINVAL and the Arm driver aborts the stall: FAILURE"),
        new("iopf.no-queue-withheld", "iommu_report_device_fault()", null, "3dfa64aecbaf", Confidence.V, "6.9/6.10: WARN_ON(!iopf_param), no response: the device's request hangs"),
        new("iopf.no-queue-invalid", "iommu_report_device_fault()", null, "b58b133e680b", Confidence.V, "6.11+: -EINVAL and the core answers INVALID"),
        new("iopf.mm-exited", "iommu_sva_handle_iopf()", null, "5.13", Confidence.V, "mmget_not_zero() fails (the process exited): INVALID"),
        new("iopf.vma-denied", "iommu_sva_handle_iopf()", null, "5.13", Confidence.V, "no VMA at the address or the access is not permitted: INVALID"),
        new("iopf.handled", "iommu_sva_handle_iopf() -> handle_mm_fault()", null, "5.13", Confidence.V, "the fault is handled in the mm: SUCCESS"),
        new("vtd.prq-in-driver", "prq_event_thread() -> handle_mm_fault()", Vtd, "5.11", Confidence.V, "5.11–5.13: the driver handles each request itself (ioasid_find, mmget_not_zero, find_extend_vma, access_error, handle_mm_fault); a response only for the last request of a group, carrying its own result; no IOPF queue"),
        new("vtd.prq-in-driver-no-svm", "prq_event_thread() / ioasid_find()", Vtd, "5.11", Confidence.V, "5.11–5.13: no svm for the request's PASID (never allocated, or freed at the last unbind): INVALID"),
        new("vtd.prq-in-driver-unbound", "prq_event_thread()", Vtd, "5.11", Confidence.V, "5.11–5.13: the device is not in the svm's device list: WARN_ON(!sdev), the request is still handled in the svm's mm"),
        new("vtd.prq-in-driver-mm-exited", "prq_event_thread() / mmget_not_zero()", Vtd, "5.11", Confidence.V, "5.11–5.13: the svm's mm has exited (mmget_not_zero fails): INVALID"),
        new("vtd.prq-in-driver-vma", "prq_event_thread() / find_extend_vma() / access_error()", Vtd, "5.11", Confidence.V, "5.11–5.13: no VMA at the address, or the VMA does not allow the access (or handle_mm_fault fails): INVALID"),
        new("vtd.prq-no-pasid", "prq_event_thread()", Vtd, "5.11", Confidence.V, "a page request without PASID (!pasid_present): handle_bad_prq_event(QI_RESP_INVALID), until the move to prq.c (6.13 [I])"),
        new("vtd.prq-noncanonical", "prq_event_thread() / is_canonical_address()", Vtd, "5.11", Confidence.V, "a non-canonical address: the driver answers INVALID"),
        new("vtd.prq-exec", "prq_event_thread()", Vtd, "78a523fe73b8", Confidence.V, "5.13+ (5.12.4 stable): an execute request is not supported: INVALID"),
        new("vtd.prq-sdev-lookup", "prq_event_thread() / pasid_private_find() / svm_lookup_device_by_sid()", Vtd, "5.14", Confidence.V, "5.14–6.0: no svm for the PASID or the device is not bound to it: INVALID before any report"),
        new("vtd.prq-report", "prq_event_thread() -> intel_svm_prq_report()", Vtd, "06f4b8d09dba", Confidence.V, "6.1+: no svm/sdev lookup, the request goes to the IOPF queue"),
        new("amd.ppr-no-sva", "iommu_poll_ppr_log()", Amd, "5.11", Confidence.U, "before 6.10 no PPR of an AMD device reaches the IOPF core (amd_iommu_v2 served its own users, removed in 6.7): no response is modelled"),
        new("amd.ppr-invalid", "iommu_call_iopf_notifier() / ppr_is_valid()", Amd, "6.10", Confidence.V, "AMD 6.10+: a PPR without PASID, for PASID 0 or >= max_pasids: the driver completes it FAILURE"),
        new("vtd.prq-report-failed", "prq_event_thread() -> handle_bad_prq_event()", Vtd, "5.14", Confidence.V, "5.14–6.8: iommu_report_device_fault() failed (device not on an IOPF queue): the driver answers INVALID"),
        new("arm.access-aborted", "arm_smmu_sva_release() fault-everything CD", Arm, "6.11", Confidence.V, "after release the CD has CD_0_S/CD_0_R cleared (no STALL_FORCE): the SMMU aborts the access, no event, no page request, no response"),

        // ---- invalidation and release -------------------------------------------------------------------
        new("inv.arm-btm-atc-only", "arm_smmu_mm_invalidate_range()", Arm, "5.11", Confidence.V, "5.11 Arm SVA required BTM: no TLBI from the notifier, ATC invalidation only"),
        new("inv.arm-range", "arm_smmu_mm_invalidate_range()", Arm, "5.12", Confidence.V, "5.12-6.5: range TLBI by ASID for any size, ATC for the PASID"),
        new("inv.arm-threshold", "arm_smmu_mm_arch_invalidate_secondary_tlbs()", Arm, "d5afb4b47e13", Confidence.V, "6.6+: a range of CMDQ_MAX_TLBI_OPS pages or more becomes a whole-ASID TLBI"),
        new("inv.pasid-flush", "intel_flush_svm_range() / cache tags", Vtd, "5.11", Confidence.U, "VT-d / AMD: flush by PASID (IOTLB + device TLB) for every attached device (sessions before issue 19)"),
        new("inv.vtd-range", "intel_invalidate_range() -> intel_flush_svm_range()", Vtd, "5.11", Confidence.V, "VT-d: one callback per svm (mm / PASID): PASID-selective IOTLB flush of the range, devTLB for every bound device"),
        new("inv.vtd-whole-pasid", "intel_arch_invalidate_secondary_tlbs() -> intel_flush_svm_all()", Vtd, "e7ad6c2a4b1a", Confidence.V, "6.6+: x86 promotes a flush of more than 33 pages to (0, -1): whole-PASID IOTLB flush and full devTLB (6.6.0–6.6.4: lost, see a what-if file)"),
        new("inv.vtd-lost", "intel_arch_invalidate_secondary_tlbs()", Vtd, "6bbd42e2df8f", Confidence.V, "6.6.0–6.6.4: the promoted (0, -1) range overflows the rounding: IOTLB and devTLB are not invalidated"),
        new("inv.vtd-cache-tag", "intel_arch_invalidate_secondary_tlbs() -> cache_tag_flush_range() / cache_tag_flush_all()", Vtd, "6.10", Confidence.I, "6.10+: one callback per SVA domain; the promoted range flushes all of the domain's cache tags"),
        new("inv.amd-pasid", "sva_arch_invalidate_secondary_tlbs() -> amd_iommu_dev_flush_pasid_pages()", Amd, "6.10", Confidence.I, "AMD 6.10+: one callback per SVA domain: PASID flush of the range for every attached device"),
        new("vtd.mm-release", "intel_mm_release() -> intel_pasid_tear_down_entry()", Vtd, "5.11", Confidence.V, "VT-d: release clears the PASID entry (not present, FPD set: non-recoverable faults are not recorded), flushes the PASID cache, IOTLB and devTLB by PASID; no CD, no ASID"),
        new("amd.mm-release", "sva_mn_release() -> remove_dev_pasid() -> amd_iommu_clear_gcr3()", Amd, "6.10", Confidence.V, "AMD 6.10+: release clears the GCR3 entry of the PASID and flushes it for every attached device"),
        new("inv.no-notifier", "mmu_notifier_invalidate_range()", null, "-", Confidence.V, "no live notifier on the mm: nothing reaches the IOMMU"),
        new("release.quiet-cd", "arm_smmu_mm_release()", Arm, "5.11", Confidence.V, "G1-G4: quiet CD (EPD0) at the PASID, TLBI ASID, full ATC; the bond stays"),
        new("release.fault-all-cd", "arm_smmu_sva_domain_release()", Arm, "6.11", Confidence.V, "G5: fault-everything CD (S/R cleared unless STALL_FORCE), TLBI ASID, full ATC"),
        new("release.none", "exit_mmap() -> mmu_notifier_release()", null, "-", Confidence.V, "no notifier: the mm goes without touching the IOMMU"),
        new("mm.drop", "__mmdrop() / mm_pasid_drop()", null, "5.18", Confidence.V, "the process's mm_count reference goes; the PASID is freed when mm_count reaches 0 (5.18+)"),

        // ---- non-SVA domains ----------------------------------------------------------------------------------
        new("domain.alloc", "iommu_domain_alloc()", null, "-", Confidence.I, "a paging, identity or blocked domain"),
        new("domain.map", "iommu_map() / iommu_unmap()", null, "-", Confidence.I, "IOVA mappings of a paging domain"),
    ];

    private static readonly Dictionary<string, KernelRule> byId = table.ToDictionary(r => r.Id, StringComparer.Ordinal);

    public static IReadOnlyList<KernelRule> All => table;

    public static KernelRule Get(string id) =>
        byId.TryGetValue(id, out var r) ? r : throw new KeyNotFoundException($"no kernel rule '{id}'");

    public static KernelRule? Find(string? id) => id is not null && byId.TryGetValue(id, out var r) ? r : null;
}
