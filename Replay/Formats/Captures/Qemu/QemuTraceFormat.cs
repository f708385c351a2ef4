using System.Globalization;
using System.Text.RegularExpressions;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Qemu;

/// <summary>QEMU "-trace" output of the log backend ("pid@sec.usec:event args", or bare "event args" with -D file)
/// for the intel-iommu (vtd_*) and smmuv3 (smmuv3_*, smmu_*) trace points, and QEMU's error reports from them.</summary>
internal sealed class QemuTraceFormat : GrammarFormat
{
    internal override Grammar Grammar => QemuGrammar.Instance;
    public override string Name => "qemu-trace";
    public override string Description =>
        "QEMU -trace log lines (pid@sec.usec:vtd_*/smmuv3_*/smmu_* args) and 'qemu-system-*: vtd_...: detected ... error' reports";
}

internal sealed class QemuGrammar : Grammar
{
    private static readonly Lazy<QemuGrammar> LazyInstance = new(() => new QemuGrammar());
    public static QemuGrammar Instance => LazyInstance.Value;

    private static readonly Regex PidTime = R(@"\G(?<pid>\d+)@(?<ts>\d+\.\d+):\s*");
    private static readonly Regex IsoTime = R(@"\G(?<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:z|[+-]\d\d:?\d\d)?)\s+");
    private static readonly Regex Splitter = new(@"\s+(?=\d+@\d+\.\d+:)", RegexOptions.CultureInvariant);
    private static readonly Regex EventToken = R(@"^(?<ev>[a-z_][\w]*)(?:\s|$)");
    private static readonly Regex ArgPair = R(@"(?<k>[a-z_][\w.]*)(?:=|:\s*|\s+)(?<v>0x[0-9a-f]+|-?\d+)\b");
    private static readonly Regex ErrorPair = R(@"(?<k>\w+)=(?<v>[^,\s)]+)");

    private const string Boundary = @"(?:\d+@\d+\.\d+:|vtd_\w+\s|smmu(?:v3)?_\w+\s|qemu-system-[\w-]+:)";

    private readonly List<RecordSpec> _specs;

    private QemuGrammar()
    {
        _specs =
        [
            Ev("vtd_dmar_fault", "sid (?<sid>0x[0-9a-f]+) fault (?<fault>\\d+) addr (?<addr>0x[0-9a-f]+) write (?<write>\\d+)",
                ObservationKind.QemuVtdFault, "vtd_dmar_fault sid 0x%x fault %d addr 0x%x write %d", BuildSidAddr),
            Ev("vtd_dmar_slpte", "sid (?<sid>0x[0-9a-f]+) slpte (?<slpte>0x[0-9a-f]+) addr (?<addr>0x[0-9a-f]+) write (?<write>\\d+)",
                ObservationKind.QemuVtdSlpte, "vtd_dmar_slpte sid 0x%x slpte 0x%x addr 0x%x write %d", BuildSidAddr),
            Ev("vtd_dmar_translate",
                "(?:pasid (?<pasid>0x[0-9a-f]+): )?dev (?<dev>[0-9a-f]{1,2}:[0-9a-f]{1,2}\\.[0-9a-f]{1,2}) iova (?<iova>0x[0-9a-f]+) -> gpa (?<gpa>0x[0-9a-f]+) mask (?<mask>0x[0-9a-f]+)",
                ObservationKind.QemuVtdTranslate, "vtd_dmar_translate [pasid 0x%x: ]dev %02x:%02x.%02x iova 0x%x -> gpa 0x%x mask 0x%x", BuildTranslate),
            Ev("vtd_\\w+", "(?<args>.*?)", ObservationKind.QemuVtd, "vtd_<event> <args>", BuildGeneric, fallback: true),
            Ev("smmu(?:v3)?_\\w+", "(?<args>.*?)", ObservationKind.QemuSmmuV3, "smmuv3_<event> <args>", BuildGeneric, fallback: true),
            new RegexSpec("QEMU error report", "qemu-system-<arch>: <function>: <message>[ (key=value, ...)]", ObservationKind.QemuVtdError,
                R(@"^qemu-system-[\w-]+:\s+(?:vtd_|smmu)"),
                R($@"^qemu-system-(?<arch>[\w-]+):\s+(?<function>(?:vtd_|smmu)\w*):\s*(?<message>.*?)(?=\s*$|\s+{Boundary})"),
                BuildError) { OptionalTail = true },
        ];
    }

    public override string FormatName => "qemu-trace";
    public override IReadOnlyList<RecordSpec> Specs => _specs;
    public override Regex? SegmentSplitter => Splitter;

    public override Header ParseHeader(string text, out int bodyStart)
    {
        bodyStart = 0;
        var m = PidTime.Match(text);
        if (m.Success)
        {
            bodyStart = m.Length;
            var h = new Header
            {
                Strong = true,
                Timestamp = double.Parse(m.Groups["ts"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture),
            };
            h.Fields.Add(new("@pid", m.Groups["pid"].Value));
            return h;
        }
        m = IsoTime.Match(text);
        if (m.Success)
        {
            bodyStart = m.Length;
            var h = new Header { Strong = true };
            h.Fields.Add(new("@time", m.Groups["time"].Value));
            return h;
        }
        return Header.None;
    }

    public override string UnrecognisedReason(Header header, string text, string body)
    {
        var m = EventToken.Match(body);
        return header.Strong && m.Success ? $"unrecognised event '{m.Groups["ev"].Value}'" : "unrecognised line";
    }

    private static RegexSpec Ev(string names, string body, ObservationKind kind, string expected,
        Action<FieldReader, ObservationDraft>? build, bool fallback = false)
    {
        var signature = R($@"^(?:{names})(?:\s|$)");
        var full = R($@"^(?<at_event>{names})(?:\s+{Sp(body)})?(?=\s*$|\s+{Boundary})");
        return new RegexSpec(names, expected, kind, signature, full, build) { IsFallback = fallback, OptionalTail = fallback };
    }

    private static void BuildSidAddr(FieldReader f, ObservationDraft d)
    {
        if (!f.Has("sid"))
            throw new FieldException("missing arguments");
        d.Device = Values.DeviceFromRid(f.U("sid"));
        d.Address = f.U("addr");
        d.Access = f.U("write") != 0 ? "w" : "r";
    }

    private static void BuildTranslate(FieldReader f, ObservationDraft d)
    {
        if (!f.Has("dev"))
            throw new FieldException("missing arguments");
        d.Device = f.Device("dev");
        d.Pasid = f.OptPasid("pasid");
        d.Address = f.U("iova");
        var mask = f.U("mask");
        d.Size = mask == ulong.MaxValue ? null : mask + 1;
        if (d.Size is { } size)
            d.End = Values.AddSaturating(d.Address.Value & ~mask, size);
    }

    private static void BuildGeneric(FieldReader f, ObservationDraft d)
    {
        if (f.S("args") is not { Length: > 0 } args)
            return;
        foreach (Match m in ArgPair.Matches(args))
        {
            var k = m.Groups["k"].Value;
            if (d.Field(k) is null)
                d.Fields.Add(new(k, m.Groups["v"].Value));
        }
        if (d.Field("iova") is { } iova && Values.TryParseNumber(iova, false, out var a, out var neg) && !neg)
            d.Address = a;
    }

    private static void BuildError(FieldReader f, ObservationDraft d)
    {
        var function = f.Req("function");
        d.Kind = function.StartsWith("vtd", StringComparison.OrdinalIgnoreCase) ? ObservationKind.QemuVtdError : ObservationKind.QemuSmmuV3;
        var message = f.Req("message");
        int open = message.LastIndexOf('(');
        if (open >= 0)
            foreach (Match m in ErrorPair.Matches(message, open))
                d.Set(m.Groups["k"].Value, m.Groups["v"].Value);
        if (d.Field("iova") is { } iova)
            d.Address = FieldReader.ParseU(iova, false, "iova");
        if (d.Field("pasid") is { } pasid)
            d.Pasid = FieldReader.ParsePasid(pasid, false, "pasid");
        if (d.Field("write") is { } write)
            d.Access = FieldReader.ParseU(write, false, "write") != 0 ? "w" : "r";
        if (d.Field("sid") is { } sid)
            d.Device = Values.DeviceFromRid(FieldReader.ParseU(sid, false, "sid"));
    }
}
