namespace Sva.Formats.Captures;

/// <summary>Where an item came from: 1-based lines; <see cref="EndLine"/> &gt; <see cref="Line"/> when a record was
/// joined from wrapped lines or gathered from a multi-line printk record.</summary>
public sealed record SourceRef(string File, int Line, int EndLine)
{
    public SourceRef(string file, int line) : this(file, line, line) { }

    public override string ToString() => EndLine > Line ? $"{File}:{Line}-{EndLine}" : $"{File}:{Line}";
}

/// <summary>One value per recognised event. The names of the source events are in README.md.</summary>
public enum ObservationKind
{
    // mainline iommu: trace events (ftrace) and their dmesg equivalents
    GroupAddDevice,
    GroupRemoveDevice,
    AttachDevice,
    DetachDevice,
    Map,
    Unmap,
    IoPageFault,

    // intel_iommu: trace events
    PrqReport,
    QiSubmit,
    CacheTagAssign,
    CacheTagUnassign,
    CacheTagFlushAll,
    CacheTagFlushRange,

    // out-of-tree SVA development trace events
    DevFault,
    DevPageResponse,
    SvaInvalidate,
    SmmuBindAlloc,
    SmmuUnbindFree,
    SmmuMmInvalidate,
    SmmuMmRelease,
    /// <summary>Any io_mm_* event; the event name is in Fields["@event"].</summary>
    IoMm,
    SmmuResume,
    SmmuCdSync,
    SmmuEvt,
    IopfError,

    // dmesg / journal
    DmarFault,
    DmarFaultStatus,
    DmarPrqError,
    AmdViIoPageFault,
    AmdViInvalidDeviceRequest,
    /// <summary>Any other "AMD-Vi: Event logged [...]" type; the type is in Fields["event"].</summary>
    AmdViEvent,
    /// <summary>An Arm SMMUv3 event-queue record: "event 0xNN received:", its four raw words and (6.x) the decoded lines.</summary>
    SmmuV3Event,

    // QEMU -trace (log backend) and QEMU error reports
    QemuVtdFault,
    QemuVtdTranslate,
    QemuVtdSlpte,
    QemuVtdError,
    /// <summary>Any other vtd_* trace point; name in Fields["@event"].</summary>
    QemuVtd,
    /// <summary>smmuv3_* and smmu_* trace points (and smmu error reports); name in Fields["@event"].</summary>
    QemuSmmuV3,

    // our JSON Lines format
    /// <summary>An exact kernel call from a jsonl capture; the call is Fields["op"].</summary>
    JsonCall,

    // Arm SMMU v1/v2 driver ("arm-smmu"): not SVA, kept as observations (stream id in Fields["sid"])
    /// <summary>"Unhandled context fault: fsr=.., iova=.., fsynr=.., cbfrsynra=.., cb=N" with the lines printed after it
    /// (decoded "FSR = ... [TF], SID=", "FSYNR0 = ...", "soft iova-to-phys=", "hard iova-to-phys (ATOS)="); fault kind in Fields["fault"].</summary>
    ArmSmmuContextFault,
    /// <summary>"Unexpected global fault, this could be serious" with its "GFSR .., GFSYNR0 .., GFSYNR1 .., GFSYNR2 .." line
    /// (and a preceding "Blocked unknown Stream ID 0x.."); stream id from GFSYNR1.</summary>
    ArmSmmuGlobalFault,
}

/// <summary>What <see cref="CaptureReader.ReadAsync"/> streams: an <see cref="Observation"/> or a <see cref="SkippedLine"/>.</summary>
public abstract record CaptureItem(SourceRef Source);

/// <summary>A typed observation of something the machine printed.</summary>
/// <param name="Format">"ftrace", "dmesg", "qemu-trace" or "jsonl".</param>
/// <param name="Device">Normalised PCI BDF ("0000:00:03.0") when known; platform device names kept as printed.</param>
/// <param name="Pasid">null = no PASID (NO_PASID, ffffffff, SMMU SSV=0, ...).</param>
/// <param name="Address">Byte address (prq_report page frames are multiplied by 4096).</param>
/// <param name="End">Exclusive end of a range.</param>
/// <param name="Group">Page-request group id.</param>
/// <param name="Last">Last page request in the group.</param>
/// <param name="Access">Requested access: letters from "rwx" in that order.</param>
/// <param name="ResponseCode">0 SUCCESS, 1 INVALID, 2 FAILURE; for a VT-d <c>qi_submit page_grp_resp</c> the code as the
/// descriptor carries it on the wire (0, 1, the core's FAILURE 2 that VT-d sends unchanged, or PCIe's Response Failure 0xF).</param>
/// <param name="Fields">Every parsed field by its name in the format, raw text; names starting with '@' come from
/// the line prefix (ftrace header, dmesg driver prefix, ...), not from the event itself.</param>
/// <param name="RawText">The record's text after quote prefixes were removed (joined with ' ' when it was
/// wrapped, with '\n' when gathered from several printk lines).</param>
public sealed record Observation(
    SourceRef Source,
    string Format,
    ObservationKind Kind,
    double? Timestamp,
    string? Task,
    int? Cpu,
    string? Device,
    int? Pasid,
    ulong? Address,
    ulong? End,
    ulong? Size,
    int? Group,
    bool? Last,
    string? Access,
    int? ResponseCode,
    IReadOnlyDictionary<string, string> Fields,
    string RawText) : CaptureItem(Source)
{
    /// <summary>The raw text of a field, or null when the record does not have it.</summary>
    public string? Field(string name) => Fields.TryGetValue(name, out var v) ? v : null;
}

/// <summary>A line that is not (part of) a recognised record: kept and counted, never silently dropped.
/// Blank lines are the only lines that produce no item.</summary>
public sealed record SkippedLine(SourceRef Source, string Text, string Reason) : CaptureItem(Source);

/// <summary>A malformed line of a known event, e.g. a garbled field. Message:
/// "file:line: malformed &lt;event&gt; line: expected '&lt;format&gt;'; got '&lt;text&gt;'".</summary>
public sealed class CaptureFormatException : Exception
{
    public CaptureFormatException(SourceRef source, string eventName, string expected, string got)
        : base($"{source.File}:{source.Line}: malformed {eventName} line: expected '{expected}'; got '{got}'")
    {
        Source = source;
        EventName = eventName;
        Expected = expected;
        Got = got;
    }

    public new SourceRef Source { get; }
    public string EventName { get; }
    /// <summary>The format of the event, printf style, as the kernel / QEMU prints it.</summary>
    public string Expected { get; }
    public string Got { get; }
}

/// <summary>Format detection found nothing that fits; the message lists the formats.</summary>
public sealed class CaptureDetectionException : Exception
{
    public CaptureDetectionException(string message) : base(message) { }

    /// <summary>How many lines were sampled before giving up.</summary>
    public int SampledLines { get; init; }
}

/// <summary>What "--format auto" decided: the format, its score (0..1), how many lines it sampled and the first lines
/// (1-based) that read as one of its records.</summary>
public sealed record CaptureDetection(ICaptureFormat Format, double Score, int SampledLines, IReadOnlyList<int> FittingLines)
{
    /// <summary>"dmesg (lines 3, 4, 7 of the first 1000 fit)".</summary>
    public override string ToString() =>
        FittingLines.Count == 0
            ? $"{Format.Name} (no line of the first {SampledLines} reads as a record; its line prefixes fit)"
            : $"{Format.Name} (line{(FittingLines.Count > 1 ? "s" : "")} {string.Join(", ", FittingLines)}{(FittingLines.Count >= CaptureReader.FittingLinesNamed ? ", ..." : "")} of the first {SampledLines} fit)";
}
