using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Jsonl;

/// <summary>Our own JSON Lines format: one object per line, an exact kernel call ("op") or an observation ("obs").
/// Documented in JSONL.md.</summary>
internal sealed class JsonlFormat : GrammarFormat
{
    internal override Grammar Grammar => JsonlGrammar.Instance;
    public override string Name => "jsonl";
    public override string Description =>
        "JSON Lines: one object per line, {\"op\":\"bind|unbind|fault|page_response|invalidate|exit|drop|device\",...} or {\"obs\":\"<ObservationKind>\",...} (see JSONL.md)";

    /// <summary>Only objects that parse count: C code and other brace-led text must not look like jsonl.</summary>
    protected override double PartialCredit => 0;
}

internal sealed class JsonlGrammar : Grammar
{
    private static readonly Lazy<JsonlGrammar> LazyInstance = new(() => new JsonlGrammar());
    public static JsonlGrammar Instance => LazyInstance.Value;

    /// <summary>The calls, their required members ("a|b" = one of them) and the form quoted in errors.</summary>
    internal static readonly IReadOnlyList<(string Op, string[] Required, string Form)> Ops =
    [
        ("device", ["device"], "{\"op\":\"device\",\"device\":\"<bdf>\"[,\"pasids\":<max_pasids>][,\"group\":<id>][,\"iopf\":true][,\"sva\":true]}"),
        ("bind", ["device", "mm"], "{\"op\":\"bind\",\"device\":\"<bdf>\",\"mm\":\"<mm id>\"[,\"expect\":\"ok|-E...\"]}"),
        ("unbind", ["device|handle", "mm|handle"], "{\"op\":\"unbind\",\"device\":\"<bdf>\",\"mm\":\"<mm id>\"} or {\"op\":\"unbind\",\"handle\":\"<id>\"}"),
        ("fault", ["device", "addr"], "{\"op\":\"fault\",\"device\":\"<bdf>\",\"pasid\":<n>,\"addr\":\"0x...\",\"access\":\"r|w|rw|x...\"[,\"group\":<n>][,\"last\":true]}"),
        ("page_response", ["device", "code"], "{\"op\":\"page_response\",\"device\":\"<bdf>\",\"pasid\":<n>,\"group\":<n>,\"code\":0|1|2}"),
        ("invalidate", ["mm|pasid", "start", "end"], "{\"op\":\"invalidate\",\"mm\":\"<mm id>\"|\"pasid\":<n>,\"start\":\"0x...\",\"end\":\"0x...\"}"),
        ("exit", ["mm"], "{\"op\":\"exit\",\"mm\":\"<mm id>\"}"),
        ("drop", ["mm"], "{\"op\":\"drop\",\"mm\":\"<mm id>\"}"),
    ];

    private readonly List<RecordSpec> _specs;

    private JsonlGrammar()
    {
        _specs = new List<RecordSpec>();
        foreach (var (op, _, form) in Ops)
            _specs.Add(new JsonSpec($"jsonl {op}", form, R($"\"op\"\\s*:\\s*\"{Regex.Escape(op)}\"")));
        _specs.Add(new JsonSpec("jsonl obs", "{\"obs\":\"<ObservationKind>\",...}", R("\"obs\"\\s*:")));
        _specs.Add(new JsonSpec("jsonl", "one JSON object per line: {\"op\":\"<" + string.Join("|", Ops.Select(o => o.Op)) + ">\",...} or {\"obs\":\"<ObservationKind>\",...}", null)
        {
            IsFallback = true,
        });
    }

    public override string FormatName => "jsonl";
    public override IReadOnlyList<RecordSpec> Specs => _specs;

    public override Header ParseHeader(string text, out int bodyStart)
    {
        bodyStart = 0;
        return Header.None;
    }

    public override bool IsNonContinuation(string text) => text.StartsWith('#') || text.StartsWith("//", StringComparison.Ordinal);

    public override string UnrecognisedReason(Header header, string text, string body) =>
        IsNonContinuation(text) ? "comment" : "not a JSON object";
}

internal sealed class JsonSpec(string name, string expected, Regex? opSignature) : RecordSpec(name, expected)
{
    private static readonly JsonReaderOptions ReaderOptions = new() { AllowMultipleValues = true, MaxDepth = 16 };

    public override bool IsCandidate(string body) => body.StartsWith('{') && (opSignature is null || opSignature.IsMatch(body));

    public override ParsedRecord? TryParse(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var reader = new Utf8JsonReader(bytes, ReaderOptions);
        JsonDocument? doc;
        try
        {
            if (!JsonDocument.TryParseValue(ref reader, out doc) || doc is null)
                return null;
        }
        catch (JsonException)
        {
            return null;
        }
        using (doc)
        {
            int consumed = Encoding.UTF8.GetCharCount(bytes, 0, (int)reader.BytesConsumed);
            var rest = body.AsSpan(consumed).TrimStart();
            if (rest.Length > 0 && rest[0] != '{')
                return null;
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                return null;
            try
            {
                var draft = Build(doc.RootElement);
                return draft is null ? null : new ParsedRecord(this, consumed, draft);
            }
            catch (FieldException)
            {
                return null;
            }
            catch (InvalidOperationException)
            {
                return null; // a string escape no .NET string can hold (a lone "\ud800"): not a record
            }
        }
    }

    private static ObservationDraft? Build(JsonElement obj)
    {
        var d = new ObservationDraft();
        foreach (var p in obj.EnumerateObject())
        {
            var text = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString() ?? "",
                JsonValueKind.Null => "null",
                _ => p.Value.GetRawText(),
            };
            d.Set(p.Name, text);
        }

        if (obj.TryGetProperty("op", out var op))
        {
            if (op.ValueKind != JsonValueKind.String)
                return null;
            var name = op.GetString();
            var def = JsonlGrammar.Ops.FirstOrDefault(o => o.Op == name);
            if (def.Op is null)
                return null;
            foreach (var required in def.Required)
                if (!required.Split('|').Any(r => obj.TryGetProperty(r, out var v) && v.ValueKind != JsonValueKind.Null))
                    return null;
            d.Kind = ObservationKind.JsonCall;
        }
        else if (obj.TryGetProperty("obs", out var obs))
        {
            if (obs.ValueKind != JsonValueKind.String || !Enum.TryParse<ObservationKind>(obs.GetString(), ignoreCase: true, out var kind)
                || !Enum.IsDefined(kind) || int.TryParse(obs.GetString(), out _))
                return null;
            d.Kind = kind;
        }
        else
        {
            return null;
        }

        if (Str(obj, "device") is { } dev)
            d.Device = Values.NormaliseDevice(dev);
        if (obj.TryGetProperty("pasid", out var pasid))
            d.Pasid = Pasid(pasid);
        ulong? start = Num(obj, "addr") ?? Num(obj, "start");
        d.Address = start;
        d.End = Num(obj, "end");
        d.Size = Num(obj, "size") ?? (start is { } s && d.End is { } e && e >= s ? e - s : null);
        if (Num(obj, "group") is { } g)
            d.Group = (int)Math.Min(g, int.MaxValue);
        if (obj.TryGetProperty("last", out var last))
            d.Last = last.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Number when last.TryGetInt32(out var n) => n != 0,
                JsonValueKind.Null => null,
                _ => throw new FieldException("last must be a boolean"),
            };
        if (Str(obj, "access") is { } access)
        {
            var a = access.ToLowerInvariant();
            if (a.Length == 0 || a.Any(c => c is not ('r' or 'w' or 'x')))
                throw new FieldException("access must be letters from rwx");
            d.Access = Values.Access(a.Contains('r'), a.Contains('w'), a.Contains('x'));
        }
        if (obj.TryGetProperty("code", out var code))
            d.ResponseCode = Code(code);
        if (obj.TryGetProperty("ts", out var ts))
            d.Timestamp = ts.ValueKind == JsonValueKind.Number ? ts.GetDouble() : throw new FieldException("ts must be a number");
        if (Str(obj, "task") is { } task)
            d.Task = task;
        if (Num(obj, "cpu") is { } cpu)
            d.Cpu = (int)Math.Min(cpu, int.MaxValue);
        return d;
    }

    private static string? Str(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            JsonValueKind.Null => null,
            _ => throw new FieldException($"{name} must be a string"),
        } : null;

    private static ulong? Num(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v))
            return null;
        switch (v.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.Number:
                return v.TryGetUInt64(out var n) ? n : throw new FieldException($"{name} must be a non-negative integer");
            case JsonValueKind.String:
                return FieldReader.ParseU(v.GetString() ?? "", false, name);
            default:
                throw new FieldException($"{name} must be a number or a \"0x...\" string");
        }
    }

    private static int? Pasid(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.Number => v.TryGetInt64(out var n) ? (n == -1 || n == 0xffffffff ? null : n is >= 0 and <= int.MaxValue ? (int)n : throw new FieldException("pasid out of range")) : throw new FieldException("pasid must be an integer"),
        JsonValueKind.String => FieldReader.ParsePasid(v.GetString() ?? "", false, "pasid"),
        _ => throw new FieldException("pasid must be a number, a string or null"),
    };

    private static int Code(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n is >= 0 and <= 2)
            return n;
        if (v.ValueKind == JsonValueKind.String)
        {
            var s = v.GetString()?.ToUpperInvariant();
            var c = s switch
            {
                "SUCCESS" or "IOMMU_PAGE_RESP_SUCCESS" or "0" => 0,
                "INVALID" or "IOMMU_PAGE_RESP_INVALID" or "1" => 1,
                "FAILURE" or "IOMMU_PAGE_RESP_FAILURE" or "2" => 2,
                _ => -1,
            };
            if (c >= 0)
                return c;
        }
        throw new FieldException("code must be 0|1|2 or SUCCESS|INVALID|FAILURE");
    }
}
