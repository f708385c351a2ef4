using System.Globalization;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Dmesg;

/// <summary>The printk lines of one Arm SMMUv3 event-queue record, and their decoding.</summary>
/// <remarks>
/// Raw event words (arm-smmu-v3.h): word 0 = ID[7:0], SSV[11], SSID[31:12], SID[63:32]; word 1 = STAG[15:0],
/// STALL[31], PnU[33], InD[34], RnW[35], S2[39], CLASS[41:40], TT_READ[44]; word 2 = input address;
/// word 3 = IPA[51:12] (faults) or FETCH_ADDR[51:3] (fetch faults). The PASID is SSID only when SSV is set; with
/// only the 6.x decoded line (no words) a nonzero ssid is taken as the PASID, 0 as none (the kernel prints
/// IOMMU_NO_PASID = 0 when SSV is clear).
/// </remarks>
internal sealed class SmmuV3Record
{
    public LineRecord? Header;
    public readonly List<LineRecord> Words = new();
    public LineRecord? Decoded;
    public LineRecord? Access;

    public static readonly IReadOnlyDictionary<int, string> EventNames = new Dictionary<int, string>
    {
        [0x01] = "F_UUT",
        [0x02] = "C_BAD_STREAMID",
        [0x03] = "F_STE_FETCH",
        [0x04] = "C_BAD_STE",
        [0x05] = "F_BAD_ATS_TREQ",
        [0x06] = "F_STREAM_DISABLED",
        [0x07] = "F_TRANSL_FORBIDDEN",
        [0x08] = "C_BAD_SUBSTREAMID",
        [0x09] = "F_CD_FETCH",
        [0x0a] = "C_BAD_CD",
        [0x0b] = "F_WALK_EABT",
        [0x10] = "F_TRANSLATION",
        [0x11] = "F_ADDR_SIZE",
        [0x12] = "F_ACCESS",
        [0x13] = "F_PERMISSION",
        [0x20] = "F_TLB_CONFLICT",
        [0x21] = "F_CFG_CONFLICT",
        [0x24] = "E_PAGE_REQUEST",
        [0x25] = "F_VMS_FETCH",
    };

    private static readonly string[] ClassNames = ["CD fetch", "Stage 1 translation table fetch", "Input address caused fault", "Reserved"];

    public LineRecord First => Header ?? (Words.Count > 0 ? Words[0] : Decoded ?? Access!);

    private IEnumerable<LineRecord> Parts()
    {
        if (Header is not null) yield return Header;
        foreach (var w in Words) yield return w;
        if (Decoded is not null) yield return Decoded;
        if (Access is not null) yield return Access;
    }

    private SourceRef Source()
    {
        var first = First.Source;
        int end = Parts().Max(p => p.Source.EndLine);
        return new SourceRef(first.File, first.Line, end);
    }

    private string RawText() => string.Join("\n", Parts().Select(p => p.RawText));

    public SkippedLine Truncated() =>
        new(Source(), RawText(), $"truncated: SMMUv3 event record cut off at the end of the capture ({Words.Count} of 4 event words)");

    public CaptureItem Build()
    {
        if (Words.Count == 0 && Decoded is null)
            return new SkippedLine(Source(), RawText(), "incomplete: SMMUv3 'event 0x.. received:' line without its event words");

        var d = new ObservationDraft { Kind = ObservationKind.SmmuV3Event };
        int? id = null;
        if (Header?.Draft.Field("id") is { } idText)
        {
            d.Set("id", idText);
            id = (int)FieldReader.ParseU(idText, true, "id");
        }
        var words = new ulong[Words.Count];
        for (int i = 0; i < Words.Count; i++)
        {
            var text = Words[i].Draft.Field("word")!;
            d.Set($"evt[{i}]", text);
            words[i] = FieldReader.ParseU(text, true, "word");
        }
        if (Decoded is not null)
            foreach (var kv in Decoded.Draft.Fields)
                d.Set(kv.Key, kv.Value);
        if (Access is not null)
        {
            foreach (var kv in Access.Draft.Fields)
                d.Set(kv.Key, kv.Value);
            d.Set("stall", Access.Draft.Field("stall") is null ? "0" : "1");
        }

        bool? ssv = null;
        if (words.Length > 0)
        {
            var w0 = words[0];
            id ??= (int)(w0 & 0xff);
            ssv = ((w0 >> 11) & 1) != 0;
            SetIfMissing(d, "sid", Values.Hex(w0 >> 32));
            SetIfMissing(d, "ssid", Values.Hex(ssv.Value ? (w0 >> 12) & 0xfffff : 0));
            d.Set("ssv", ssv.Value ? "1" : "0");
            if (id is >= 0x10 and <= 0x13)
            {
                if (words.Length > 1)
                {
                    var w1 = words[1];
                    var cls = (int)((w1 >> 40) & 3);
                    SetIfMissing(d, "priv", ((w1 >> 33) & 1) != 0 ? "priv" : "unpriv");
                    SetIfMissing(d, "inst", ((w1 >> 34) & 1) != 0 ? "inst" : "data");
                    SetIfMissing(d, "rw", ((w1 >> 35) & 1) != 0 ? "read" : "write");
                    SetIfMissing(d, "stage", ((w1 >> 39) & 1) != 0 ? "s2" : "s1");
                    SetIfMissing(d, "class", ClassNames[cls]);
                    if (id == 0x13 && cls == 1)
                        SetIfMissing(d, "ttd", ((w1 >> 44) & 1) != 0 ? "ttd_read" : "ttd_write");
                    SetIfMissing(d, "stall", ((w1 >> 31) & 1) != 0 ? "1" : "0");
                    SetIfMissing(d, "stag", Values.Hex(w1 & 0xffff));
                }
                if (words.Length > 2)
                    SetIfMissing(d, "iova", Values.Hex(words[2]));
                if (words.Length > 3)
                    SetIfMissing(d, "ipa", Values.Hex(words[3] & 0x000f_ffff_ffff_f000UL));
            }
            else if (id is 0x03 or 0x09 or 0x25 && words.Length > 3)
            {
                SetIfMissing(d, "fetch_addr", Values.Hex(words[3] & 0x000f_ffff_ffff_fff8UL));
            }
            else if (id is 0x01 or 0x05 or 0x07)
            {
                // F_UUT, F_BAD_ATS_TREQ, F_TRANSL_FORBIDDEN: the same PnU/InD/RnW bits and the input address, no stall
                if (words.Length > 1)
                {
                    var w1 = words[1];
                    SetIfMissing(d, "priv", ((w1 >> 33) & 1) != 0 ? "priv" : "unpriv");
                    SetIfMissing(d, "inst", ((w1 >> 34) & 1) != 0 ? "inst" : "data");
                    SetIfMissing(d, "rw", ((w1 >> 35) & 1) != 0 ? "read" : "write");
                }
                if (words.Length > 2)
                    SetIfMissing(d, "iova", Values.Hex(words[2]));
            }
        }
        if (id is null && d.Field("event") is { } evName)
            foreach (var kv in EventNames)
                if (string.Equals(kv.Value, evName, StringComparison.OrdinalIgnoreCase))
                    id = kv.Key;
        if (id is { } known)
        {
            SetIfMissing(d, "id", "0x" + known.ToString("x2", CultureInfo.InvariantCulture));
            SetIfMissing(d, "event", EventNames.TryGetValue(known, out var n) ? n : "unknown event 0x" + known.ToString("x2", CultureInfo.InvariantCulture));
        }

        // typed values
        if (d.Field("client") is { } client && !client.StartsWith('('))
            d.Device = Values.NormaliseDevice(client);
        else if (Decoded is null && words.Length > 0 && id is not 0x02 && d.Field("sid") is { } streamId)
        {
            // Raw words only (kernels before 6.x print no client): the master is known by its StreamID on this SMMU
            // instance. C_BAD_STREAMID names a stream the SMMU does not know: no device.
            var smmu = First.Header.Get("@dev") ?? "arm-smmu-v3";
            d.Device = StreamDevice(smmu, FieldReader.ParseU(streamId, true, "sid"));
            d.Set("device_from", "sid");
        }
        if (d.Field("ssid") is { } ssidText)
        {
            var ssid = FieldReader.ParseU(ssidText, true, "ssid");
            d.Pasid = ssv switch
            {
                true => (int)Math.Min(ssid, int.MaxValue),
                false => null,
                null => ssid == 0 ? null : (int)Math.Min(ssid, int.MaxValue),
            };
        }
        if (d.Field("iova") is { } iova)
            d.Address = FieldReader.ParseU(iova, true, "iova");
        if (d.Field("rw") is { } rw)
        {
            bool read = rw.Equals("read", StringComparison.OrdinalIgnoreCase);
            bool inst = string.Equals(d.Field("inst"), "inst", StringComparison.OrdinalIgnoreCase);
            d.Access = Values.Access(read, !read, inst);
        }

        var first = First;
        return ObservationFactory.Create(d, first.Header, Source(), "dmesg", RawText());
    }

    /// <summary>The name of a device known only by its StreamID on an SMMU instance: "sid0x100@arm-smmu-v3.0.auto".</summary>
    public static string StreamDevice(string smmu, ulong sid) => $"sid{Values.Hex(sid)}@{smmu}";

    private static void SetIfMissing(ObservationDraft d, string name, string value)
    {
        if (d.Field(name) is null)
            d.Set(name, value);
    }
}
