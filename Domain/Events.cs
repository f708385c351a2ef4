namespace Sva.Domain;

/// <summary>
/// What happened, in kernel terms, past tense, one fact each. Events carry every value a projection
/// needs (new refcounts, the devices programmed) so that folding them needs no kernel rules.
/// </summary>
public abstract record SvaEvent;

/// <summary>An event that can state a call's outcome; <see cref="Rule"/> is the id of the <see cref="KernelRule"/> that decided it.</summary>
public interface IRuled
{
    string? Rule { get; }
}

// ---- devices, processes, address spaces -------------------------------------------------------
/// <summary><paramref name="Driver"/>: the IOMMU driver whose rules apply (smmuv3, vtd, amd); <paramref name="Iommu"/> is the instance name.</summary>
public sealed record DeviceProbed(string Device, int MaxPasids, int Group, bool Sva, bool Iopf, string Iommu, bool Inferred = false, string Driver = Drivers.Default) : SvaEvent;
public sealed record MmCreated(string Mm, bool Lam, bool Inferred) : SvaEvent;
public sealed record VmaMapped(string Mm, ulong Start, ulong End, string Prot) : SvaEvent;

// ---- PASID allocator ---------------------------------------------------------------------------
public sealed record PasidAllocated(string Mm, int Pasid) : SvaEvent;
/// <summary>The PASID went back to the allocator: at the last unbind (5.11–5.17) or in __mmdrop.</summary>
public sealed record PasidFreed(string Mm, int Pasid, string Reason) : SvaEvent;

// ---- domains -----------------------------------------------------------------------------------
/// <summary>An IOMMU_DOMAIN_SVA for the mm (holds an mmgrab). <paramref name="Asid"/>: private ASID (6.11+ Arm), else null.</summary>
public sealed record SvaDomainAllocated(string Domain, string Mm, int? Asid) : SvaEvent;
/// <summary>A paging, identity or blocked domain allocated by a script's <c>domain</c> line.</summary>
public sealed record DomainAllocated(string Domain, string Name, string Type) : SvaEvent;
/// <summary>The domain took the group's pasid_array slot <paramref name="Pasid"/> (null: the RID) and every device of the group was programmed.</summary>
public sealed record DomainAttached(string Domain, string Device, int? Pasid, IReadOnlyList<string> Devices, string? Rule = null) : SvaEvent, IRuled;
public sealed record DomainDetached(string Domain, string Device, int? Pasid, IReadOnlyList<string> Devices, string? Rule = null) : SvaEvent, IRuled;
/// <summary><c>domain->users</c> changed: binds (G2) or attached devices (G3–G5).</summary>
public sealed record DomainUsersChanged(string Domain, int Users) : SvaEvent;
/// <summary>iommu_domain_free. An SVA domain drops its mmgrab here.</summary>
public sealed record DomainFreed(string Domain) : SvaEvent;
public sealed record IovaMapped(string Domain, ulong Iova, ulong End, ulong Paddr) : SvaEvent;
public sealed record IovaUnmapped(string Domain, ulong Iova, ulong End) : SvaEvent;

// ---- handles (bonds in G1) -----------------------------------------------------------------------
/// <summary>A new handle (G1: bond) with users = 1. <paramref name="Domain"/> is null for G1 bonds.</summary>
public sealed record HandleIssued(string Handle, string Device, string Mm, string? Domain, int Pasid, string? Name, string? Rule = null) : SvaEvent, IRuled;
/// <summary>bind returned an existing handle: bond refs++ (G1) or handle->users++ (G4/G5).</summary>
public sealed record HandleShared(string Handle, int Users, string? Name, string? Rule = null) : SvaEvent, IRuled;
/// <summary>unbind dropped a reference without freeing the handle.</summary>
public sealed record HandleReleased(string Handle, int Users, string? Rule = null) : SvaEvent, IRuled;
public sealed record HandleFreed(string Handle, string? Rule = null) : SvaEvent, IRuled;

// ---- failures are events too ---------------------------------------------------------------------
public sealed record BindFailed(string Device, string Mm, Errno Errno, string Reason, string? Name, string? Rule = null) : SvaEvent, IRuled;
/// <summary>unbind of a handle that is unknown or already freed (a use after free in the caller).</summary>
public sealed record UnbindRejected(string Handle, string Reason, string? Rule = null) : SvaEvent, IRuled;
/// <summary>Any other call the kernel (or the simulator's sanity checks) refused.</summary>
public sealed record CallFailed(string Op, Errno? Errno, string Reason, string? Rule = null) : SvaEvent, IRuled;

/// <summary>
/// The kernel hit a BUG (an oops): <paramref name="Site"/> names it (<c>BUG_ON(mm_users &lt;= 0) in __mmu_notifier_register</c>).
/// The call never returns, so it has no errno; the session is tainted from this event on.
/// </summary>
public sealed record KernelBug(string Op, string Site, string Reason, string? Name, string? Rule = null) : SvaEvent, IRuled;

// ---- Arm SMMUv3 internals ------------------------------------------------------------------------
/// <summary>The per-mm context descriptor with the pinned CPU ASID (G1–G4 Arm); holds an mmgrab.</summary>
public sealed record ContextDescriptorAllocated(string Mm, int Asid) : SvaEvent;
public sealed record ContextDescriptorFreed(string Mm, int Asid) : SvaEvent;
/// <summary>An mmu_notifier: per (RID domain, mm) in G1–G4 (<paramref name="Domain"/> null), per SVA domain in G5.</summary>
public sealed record NotifierRegistered(string Notifier, string Mm, int? Group, string? Domain) : SvaEvent;
public sealed record NotifierRefsChanged(string Notifier, int Refs) : SvaEvent;
public sealed record NotifierFreed(string Notifier) : SvaEvent;
/// <summary>A bond's context descriptor written at SSID = PASID on the device (G1, where no domain is attached).</summary>
public sealed record PasidEntryWritten(string Device, int Pasid, string Mm) : SvaEvent;
public sealed record PasidEntryCleared(string Device, int Pasid) : SvaEvent;
/// <summary>On mm release the entry stops translating: <c>quiet</c> CD (EPD0, G1–G4 Arm) or <c>fault-all</c> CD (G5 Arm).</summary>
public sealed record PasidEntryQuieted(string Device, int Pasid, string Mode) : SvaEvent;

// ---- I/O page faults -----------------------------------------------------------------------------
/// <summary>A non-last page request parked on the device's partial list until its group's last one.</summary>
public sealed record PageRequestQueued(string Device, int? Pasid, int? Group, ulong Address, string Access, string? Rule = null) : SvaEvent, IRuled;
/// <summary>
/// One response per page-request group. <paramref name="Requests"/>: how many requests it answers. <paramref name="WireCode"/>:
/// the response code the VT-d page-group response / AMD COMPLETE_PPR carries on the wire (D17: the drivers put the core's
/// enum in unchanged, so a core FAILURE goes out as 2, not the PCIe Response Failure 0xF); null for Arm, and in events
/// stored before it existed (not written when null: the stored shape of those responses is unchanged).
/// </summary>
public sealed record PageResponseSent(string Device, int? Pasid, int? Group, PageResponseCode Code, string Reason, int Requests, string? Rule = null,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] int? WireCode = null) : SvaEvent, IRuled;
/// <summary>
/// D4: VT-d 5.11–5.13 prq_event_thread handled a page request that is not the last of its group on its own, at once
/// (faulted in, or refused), and sent no response: only a request with LPIG (or PDP) is answered, with its own result.
/// Nothing is parked: there is no IOPF queue. <paramref name="Result"/>: what handling it gave.
/// </summary>
public sealed record PageRequestHandled(string Device, int? Pasid, int? Group, ulong Address, string Access, PageResponseCode Result, string Reason, string? Rule = null) : SvaEvent, IRuled;
/// <summary>The kernel sent no response (6.9/6.10 'no IOPF queue' WARN_ON(!iopf_param)): the device's stalled request hangs.</summary>
public sealed record PageResponseWithheld(string Device, int? Pasid, int? Group, string Reason, int Requests, string? Rule = null) : SvaEvent, IRuled;
/// <summary>An unrecoverable DMA fault reported against a paging or blocked domain (RID or PASID).</summary>
public sealed record DmaFaultReported(string Device, int? Pasid, ulong Address, string Access, string? Domain, string Reason, string? Rule = null) : SvaEvent, IRuled;
/// <summary>DMA through a paging domain's mapping (or an identity domain) went through: no fault, no page request.</summary>
public sealed record DmaTranslated(string Device, int? Pasid, ulong Address, string Access, string Domain, ulong Paddr, string? Rule = null) : SvaEvent, IRuled;

/// <summary>
/// The SMMU aborted the access itself (6.11+ Arm fault-everything CD after release, no STALL_FORCE): no event
/// record, no fault report, no page response. What the device sees, kept like an observation.
/// </summary>
public sealed record AccessAborted(string Device, int? Pasid, ulong Address, string Access, int? Group, string Reason, string? Rule = null) : SvaEvent, IRuled;

// ---- invalidation, release, drop -----------------------------------------------------------------
/// <summary>The CPU page tables of [Start, End) changed (the notifier's invalidate range).</summary>
public sealed record MmRangeInvalidated(string Mm, ulong Start, ulong End) : SvaEvent;
/// <summary>One round of IOTLB/ATC invalidation sent by one notifier. <paramref name="Tlbi"/> null: no TLBI (BTM).</summary>
public sealed record SecondaryTlbInvalidated(string Mm, int Pasid, ulong Start, ulong End, string Via, string? Tlbi, IReadOnlyList<string> Atc, string? Rule = null) : SvaEvent, IRuled;
/// <summary>exit_mmap ran the notifiers' release: mm_users reached 0.</summary>
public sealed record MmReleased(string Mm, string? Rule = null) : SvaEvent, IRuled;
/// <summary>The process dropped its mm_count reference; <paramref name="MmCount"/> is what is left (SVA domains, CDs).</summary>
public sealed record MmDropped(string Mm, int MmCount) : SvaEvent;
/// <summary>__mmdrop: mm_count reached 0, the mm_struct is gone.</summary>
public sealed record MmFreed(string Mm) : SvaEvent;

// ---- captured sessions -----------------------------------------------------------------------------
/// <summary>
/// What a captured trace or log line reported (sva import), kept beside the simulated events so that
/// conformance can be checked: the machine's answer against the simulator's.
/// </summary>
public sealed record CaptureObserved(string Format, string Kind, string? Device, int? Pasid, ulong? Address, ulong? End,
    int? Group, bool? Last, string? Access, int? Code, double? Timestamp, string Text) : SvaEvent;

/// <summary>The stable type names events are stored under. Changing one is a schema change.</summary>
public static class EventTypes
{
    private static readonly (string Name, Type Type)[] table =
    {
        ("device_probed", typeof(DeviceProbed)),
        ("mm_created", typeof(MmCreated)),
        ("vma_mapped", typeof(VmaMapped)),
        ("pasid_allocated", typeof(PasidAllocated)),
        ("pasid_freed", typeof(PasidFreed)),
        ("sva_domain_allocated", typeof(SvaDomainAllocated)),
        ("domain_allocated", typeof(DomainAllocated)),
        ("domain_attached", typeof(DomainAttached)),
        ("domain_detached", typeof(DomainDetached)),
        ("domain_users_changed", typeof(DomainUsersChanged)),
        ("domain_freed", typeof(DomainFreed)),
        ("iova_mapped", typeof(IovaMapped)),
        ("iova_unmapped", typeof(IovaUnmapped)),
        ("handle_issued", typeof(HandleIssued)),
        ("handle_shared", typeof(HandleShared)),
        ("handle_released", typeof(HandleReleased)),
        ("handle_freed", typeof(HandleFreed)),
        ("bind_failed", typeof(BindFailed)),
        ("unbind_rejected", typeof(UnbindRejected)),
        ("call_failed", typeof(CallFailed)),
        ("context_descriptor_allocated", typeof(ContextDescriptorAllocated)),
        ("context_descriptor_freed", typeof(ContextDescriptorFreed)),
        ("notifier_registered", typeof(NotifierRegistered)),
        ("notifier_refs_changed", typeof(NotifierRefsChanged)),
        ("notifier_freed", typeof(NotifierFreed)),
        ("pasid_entry_written", typeof(PasidEntryWritten)),
        ("pasid_entry_cleared", typeof(PasidEntryCleared)),
        ("pasid_entry_quieted", typeof(PasidEntryQuieted)),
        ("page_request_queued", typeof(PageRequestQueued)),
        ("page_response_sent", typeof(PageResponseSent)),
        ("page_response_withheld", typeof(PageResponseWithheld)),
        ("dma_fault_reported", typeof(DmaFaultReported)),
        ("dma_translated", typeof(DmaTranslated)),
        ("mm_range_invalidated", typeof(MmRangeInvalidated)),
        ("secondary_tlb_invalidated", typeof(SecondaryTlbInvalidated)),
        ("mm_released", typeof(MmReleased)),
        ("mm_dropped", typeof(MmDropped)),
        ("mm_freed", typeof(MmFreed)),
        ("capture_observed", typeof(CaptureObserved)),
        ("kernel_bug", typeof(KernelBug)),
        ("access_aborted", typeof(AccessAborted)),
        ("page_request_handled", typeof(PageRequestHandled)),
    };

    private static readonly Dictionary<string, Type> byName = table.ToDictionary(t => t.Name, t => t.Type, StringComparer.Ordinal);
    private static readonly Dictionary<Type, string> byType = table.ToDictionary(t => t.Type, t => t.Name);

    public static IEnumerable<string> Names => table.Select(t => t.Name);
    /// <summary>Every event type with its stored name (the store maps one to the other).</summary>
    public static IReadOnlyList<(Type Type, string Name)> All => table.Select(t => (t.Type, t.Name)).ToList();
    public static string NameOf(SvaEvent e) => byType[e.GetType()];
    public static string NameOf(Type t) => byType[t];
    public static bool TryGetType(string name, out Type type) => byName.TryGetValue(name, out type!);
}
