using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Dmesg;

/// <summary>The printk lines of one Arm SMMU v1/v2 ("arm-smmu") fault report, and their decoding.</summary>
/// <remarks>
/// Context fault (arm_smmu_context_fault / arm_smmu_print_context_fault_info, Qualcomm's qcom debug variant):
/// "Unhandled context fault: fsr=, iova=, fsynr=, cbfrsynra=, cb=", then "FSR = %08x [flags], SID=0x%x",
/// "FSYNR0 = %08x [...]", "soft iova-to-phys=%pa", "hard iova-to-phys (ATOS)=%pa". The stream id is CBFRSYNRA[15:0]
/// (or the FSR line's SID=); the fault kind is the FSR bits set (TF, AFF, PF, EF, TLBMCF, TLBLKF, ASF, UUT, SS, MULTI);
/// the access is FSYNR0.WNR (bit 4, write), FSYNR0.IND (bit 6, instruction fetch).
/// Global fault (arm_smmu_global_fault): "Blocked unknown Stream ID 0x%hx; ..." (when GFSR.USF and bypass is disabled),
/// "Unexpected global fault, this could be serious", "GFSR .., GFSYNR0 .., GFSYNR1 .., GFSYNR2 ..". The stream id is
/// GFSYNR1[15:0]; the fault kind the GFSR bits set (ICF, USF, SMCF, UCBF, UCIF, CAF, EF, PF, UUT, MULTI).
/// Neither names a device nor a PASID: the import keeps them as observations.
/// </remarks>
internal sealed class ArmSmmuRecord
{
    public readonly List<LineRecord> Parts = new();

    public static bool IsPart(string? tag) => tag is not null && tag.StartsWith("armsmmu-", StringComparison.Ordinal);

    private static int Order(string tag) => tag switch
    {
        "armsmmu-ctx" => 0,
        "armsmmu-fsr" => 1,
        "armsmmu-fsynr" => 2,
        "armsmmu-soft" => 3,
        "armsmmu-hard" => 4,
        "armsmmu-blocked" => 10,
        "armsmmu-global" => 11,
        "armsmmu-gfsr" => 12,
        _ => 99,
    };

    private static bool IsGlobal(string tag) => Order(tag) >= 10;

    /// <summary>Can this line continue the record (same family, later in the report, same SMMU)?</summary>
    public bool Accepts(LineRecord r)
    {
        var last = Parts[^1];
        var tag = r.Spec.Tag!;
        if (IsGlobal(tag) != IsGlobal(last.Spec.Tag!) || Order(tag) <= Order(last.Spec.Tag!))
            return false;
        var a = Parts[0].Header.Get("@dev");
        var b = r.Header.Get("@dev");
        return a is null || b is null || a == b;
    }

    /// <summary>Nothing can follow this part.</summary>
    public bool Complete => Parts[^1].Spec.Tag is "armsmmu-hard" or "armsmmu-gfsr";

    private SourceRef Source()
    {
        var first = Parts[0].Source;
        return new SourceRef(first.File, first.Line, Parts.Max(p => p.Source.EndLine));
    }

    private string RawText() => string.Join("\n", Parts.Select(p => p.RawText));

    private static readonly string[] FsrBits =
        ["", "TF", "AFF", "PF", "EF", "TLBMCF", "TLBLKF", "ASF", "UUT"];

    private static readonly string[] GfsrBits =
        ["ICF", "USF", "SMCF", "UCBF", "UCIF", "CAF", "EF", "PF", "UUT"];

    private static string? Kinds(ulong reg, string[] low, bool ss)
    {
        var names = new List<string>();
        for (int i = 0; i < low.Length; i++)
            if (low[i].Length > 0 && ((reg >> i) & 1) != 0)
                names.Add(low[i]);
        if (ss && ((reg >> 30) & 1) != 0) names.Add("SS");
        if (((reg >> 31) & 1) != 0) names.Add("MULTI");
        return names.Count == 0 ? null : string.Join("|", names);
    }

    public CaptureItem Build()
    {
        var head = Parts[0];
        var tag = head.Spec.Tag!;
        if (tag is "armsmmu-fsynr" or "armsmmu-soft" or "armsmmu-hard")
            return new SkippedLine(Source(), RawText(), $"orphan arm-smmu {head.Spec.Name} line: its 'Unhandled context fault' line is not in the capture");

        var global = IsGlobal(tag);
        var d = new ObservationDraft { Kind = global ? ObservationKind.ArmSmmuGlobalFault : ObservationKind.ArmSmmuContextFault };
        foreach (var p in Parts)
            foreach (var kv in p.Draft.Fields)
                if (d.Field(kv.Key) is null)
                    d.Set(kv.Key, kv.Value);
        d.Address = Parts.Select(p => p.Draft.Address).FirstOrDefault(a => a is not null);

        if (!global)
        {
            ulong? fsr = d.Field("fsr") is { } f ? FieldReader.ParseU(f, true, "fsr") : d.Field("fsr_reg") is { } fr ? FieldReader.ParseU(fr, true, "fsr") : null;
            if (fsr is { } fsrValue && Kinds(fsrValue, FsrBits, ss: true) is { } kinds)
                d.Set("fault", kinds);
            ulong? fsynr = d.Field("fsynr") is { } s ? FieldReader.ParseU(s, true, "fsynr") : d.Field("fsynr0_reg") is { } s0 ? FieldReader.ParseU(s0, true, "fsynr0") : null;
            if (fsynr is { } syn)
            {
                bool write = ((syn >> 4) & 1) != 0, inst = ((syn >> 6) & 1) != 0;
                d.Access = Values.Access(!write, write, inst);
            }
        }
        else
        {
            if (d.Field("sid") is null && d.Field("gfsynr1") is { } g1)
                d.Set("sid", Values.Hex(FieldReader.ParseU(g1, true, "gfsynr1") & 0xffff));
            if (d.Field("gfsr") is { } gfsr && Kinds(FieldReader.ParseU(gfsr, true, "gfsr"), GfsrBits, ss: false) is { } kinds)
                d.Set("fault", kinds);
            else if (d.Field("gfsr") is null && Parts.Any(p => p.Spec.Tag == "armsmmu-blocked"))
                d.Set("fault", "USF");
        }
        if (d.Field("sid") is { } sid)
            d.Set("sid", Values.Hex(FieldReader.ParseU(sid, true, "sid"))); // one spelling: 0x19c3
        return ObservationFactory.Create(d, head.Header, Source(), "dmesg", RawText());
    }
}
