using Sva.Formats.Captures;

namespace Sva.Formats.Import;

/// <summary>What each capture format recognises and what the import makes of it ('sva formats').</summary>
public static class FormatCatalog
{
    public sealed record Record(string Printed, string Kind, string MapsTo);

    private static Record R(string printed, ObservationKind kind) => new(printed, kind.ToString(), ObservationMapper.Describe(kind));

    public sealed record Entry(string Name, string Description, IReadOnlyList<Record> Records);

    private static readonly Dictionary<string, Record[]> records = new(StringComparer.OrdinalIgnoreCase)
    {
        ["ftrace"] =
        [
            R("add_device_to_group", ObservationKind.GroupAddDevice),
            R("remove_device_from_group", ObservationKind.GroupRemoveDevice),
            R("attach_device_to_domain", ObservationKind.AttachDevice),
            R("detach_device_from_domain", ObservationKind.DetachDevice),
            R("map (range and older form)", ObservationKind.Map),
            R("unmap (range and older form)", ObservationKind.Unmap),
            R("io_page_fault", ObservationKind.IoPageFault),
            R("prq_report", ObservationKind.PrqReport),
            R("qi_submit", ObservationKind.QiSubmit),
            R("cache_tag_assign/unassign/flush_all", ObservationKind.CacheTagAssign),
            R("cache_tag_flush_range[_np]", ObservationKind.CacheTagFlushRange),
            R("dev_fault (plain, fetch=, last=)", ObservationKind.DevFault),
            R("dev_page_response (with or without addr=)", ObservationKind.DevPageResponse),
            R("sva_invalidate", ObservationKind.SvaInvalidate),
            R("smmu_bind_alloc", ObservationKind.SmmuBindAlloc),
            R("smmu_unbind_free", ObservationKind.SmmuUnbindFree),
            R("smmu_mm_invalidate", ObservationKind.SmmuMmInvalidate),
            R("smmu_mm_release", ObservationKind.SmmuMmRelease),
            R("io_mm_*", ObservationKind.IoMm),
            R("smmu_resume", ObservationKind.SmmuResume),
            R("smmu_cdsync", ObservationKind.SmmuCdSync),
            R("smmu_evt", ObservationKind.SmmuEvt),
            R("iopf: err", ObservationKind.IopfError),
        ],
        ["dmesg"] =
        [
            R("DMAR: [DMA Read|Write (NO_)PASID ...] fault (5.5+ and 5.14+ forms)", ObservationKind.DmarFault),
            R("DMAR: DRHD: handling fault status reg", ObservationKind.DmarFaultStatus),
            R("dmarN: Page request without PASID / Invalid page request", ObservationKind.DmarPrqError),
            R("AMD-Vi: Event logged [IO_PAGE_FAULT ...] (one line or 4.x two lines)", ObservationKind.AmdViIoPageFault),
            R("AMD-Vi: Event logged [INVALID_DEVICE_REQUEST ...]", ObservationKind.AmdViInvalidDeviceRequest),
            R("AMD-Vi: Event logged [<other> ...]", ObservationKind.AmdViEvent),
            R("arm-smmu-v3: event 0xNN received: + 4 words (+ 6.x decoded lines); every event id of the architecture named (F_UUT..F_VMS_FETCH, else 'unknown event 0xNN'); words only: StreamID, SSID, address, access, stall/STAG decoded", ObservationKind.SmmuV3Event),
            R("arm-smmu: Unhandled context fault: fsr=, iova=, fsynr=, cbfrsynra=, cb= (+ FSR = [..], SID= / FSYNR0 = / soft, hard iova-to-phys lines)", ObservationKind.ArmSmmuContextFault),
            R("arm-smmu: Unexpected global fault, this could be serious + GFSR .., GFSYNR0..2 (+ Blocked unknown Stream ID)", ObservationKind.ArmSmmuGlobalFault),
            R("Adding to iommu group N", ObservationKind.GroupAddDevice),
            R("Removing from iommu group N", ObservationKind.GroupRemoveDevice),
        ],
        ["qemu-trace"] =
        [
            R("vtd_dmar_fault", ObservationKind.QemuVtdFault),
            R("vtd_dmar_translate", ObservationKind.QemuVtdTranslate),
            R("vtd_dmar_slpte", ObservationKind.QemuVtdSlpte),
            R("qemu-system-*: vtd_...: detected ... error (...)", ObservationKind.QemuVtdError),
            R("vtd_* (others)", ObservationKind.QemuVtd),
            R("smmuv3_*, smmu_*", ObservationKind.QemuSmmuV3),
        ],
        ["jsonl"] =
        [
            R("{\"op\": device|bind|unbind|fault|page_response|invalidate|exit|drop, ...}", ObservationKind.JsonCall),
            new("{\"obs\": \"<ObservationKind>\", ...}", "<ObservationKind>", "as that kind printed by its own format"),
        ],
    };

    public static IReadOnlyList<Entry> All =>
        CaptureReader.Formats.Select(f => new Entry(f.Name, f.Description, records.TryGetValue(f.Name, out var r) ? r : [])).ToList();
}
