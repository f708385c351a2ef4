using System.Text.RegularExpressions;

namespace Sva.Formats.Captures.Engine;

/// <summary>What a line prefix told us (ftrace header, dmesg timestamp, journal prefix, driver prefix, QEMU pid@time).</summary>
internal sealed class Header
{
    public static readonly Header None = new();

    /// <summary>A prefix that only starts a new printk / trace line (timestamp, ftrace header): such a line is never
    /// the continuation of a wrapped record.</summary>
    public bool Strong { get; init; }
    public double? Timestamp { get; init; }
    public string? Task { get; init; }
    public int? Cpu { get; init; }
    public List<KeyValuePair<string, string>> Fields { get; } = new();

    public string? Get(string name)
    {
        foreach (var kv in Fields)
            if (kv.Key == name)
                return kv.Value;
        return null;
    }
}

/// <summary>Thrown by builders when a field's text does not convert (overflow, bad digits): the record does not parse.</summary>
internal sealed class FieldException(string message) : Exception(message);

/// <summary>The typed parts of an observation, filled by a spec's builder.</summary>
internal sealed class ObservationDraft
{
    public ObservationKind Kind;
    /// <summary>Set by formats that carry these in the record itself (jsonl); otherwise they come from the line prefix.</summary>
    public double? Timestamp;
    public string? Task;
    public int? Cpu;
    public string? Device;
    public int? Pasid;
    public ulong? Address;
    public ulong? End;
    public ulong? Size;
    public int? Group;
    public bool? Last;
    public string? Access;
    public int? ResponseCode;
    public List<KeyValuePair<string, string>> Fields { get; } = new();

    public string? Field(string name)
    {
        foreach (var kv in Fields)
            if (kv.Key == name)
                return kv.Value;
        return null;
    }

    public void Set(string name, string value)
    {
        for (int i = 0; i < Fields.Count; i++)
        {
            if (Fields[i].Key == name)
            {
                Fields[i] = new(name, value);
                return;
            }
        }
        Fields.Add(new(name, value));
    }
}

/// <summary>A record that parsed: which spec, how many characters of the body it used, what it means.</summary>
internal sealed record ParsedRecord(RecordSpec Spec, int Length, ObservationDraft Draft);

/// <summary>A parsed logical record with its place in the file, before any multi-line gathering.</summary>
internal sealed record LineRecord(RecordSpec Spec, ObservationDraft Draft, Header Header, SourceRef Source, string RawText);

/// <summary>One recognisable record (usually one event) of a format.</summary>
internal abstract class RecordSpec
{
    protected RecordSpec(string name, string expected)
    {
        Name = name;
        Expected = expected;
    }

    /// <summary>Event name used in messages ("dev_fault", "DMAR fault").</summary>
    public string Name { get; }
    /// <summary>The printf-style format, for "expected '...'" in errors.</summary>
    public string Expected { get; }
    /// <summary>A complete record may still continue on the next line (optional trailing part, free text).</summary>
    public bool OptionalTail { get; init; }
    /// <summary>Used only when no specific spec claims the line (generic trace points).</summary>
    public bool IsFallback { get; init; }
    /// <summary>Free tag for multi-line gatherers.</summary>
    public string? Tag { get; init; }

    /// <summary>Does this text (a record body) claim to be this record, well-formed or not?</summary>
    public abstract bool IsCandidate(string body);

    /// <summary>Parses the start of the body; null when it does not parse.</summary>
    public abstract ParsedRecord? TryParse(string body);
}

/// <summary>A record described by two regular expressions: a signature (is it this event?) and the full form.</summary>
internal sealed class RegexSpec : RecordSpec
{
    private readonly Regex _signature;
    private readonly Regex _full;
    private readonly ObservationKind _kind;
    private readonly Action<FieldReader, ObservationDraft>? _build;

    public RegexSpec(string name, string expected, ObservationKind kind, Regex signature, Regex full, Action<FieldReader, ObservationDraft>? build)
        : base(name, expected)
    {
        _signature = signature;
        _full = full;
        _kind = kind;
        _build = build;
    }

    public override bool IsCandidate(string body) => _signature.IsMatch(body);

    public override ParsedRecord? TryParse(string body)
    {
        var m = _full.Match(body);
        if (!m.Success || m.Index != 0)
            return null;
        var d = new ObservationDraft { Kind = _kind };
        foreach (Group g in m.Groups)
        {
            if (!g.Success || g.Name.Length == 0)
                continue;
            if (g.Name.StartsWith("at_", StringComparison.Ordinal))
                d.Fields.Add(new("@" + g.Name[3..], g.Value));
            else if (char.IsLetter(g.Name[0]))
                d.Fields.Add(new(g.Name, g.Value));
        }
        try
        {
            _build?.Invoke(new FieldReader(m), d);
        }
        catch (FieldException)
        {
            return null;
        }
        return new ParsedRecord(this, m.Length, d);
    }
}

/// <summary>Typed access to a match's named groups; conversion errors throw <see cref="FieldException"/>.</summary>
internal readonly struct FieldReader(Match match)
{
    public Match Match => match;

    public bool Has(string name) => match.Groups[name].Success;

    public string? S(string name) => match.Groups[name] is { Success: true } g ? g.Value : null;

    public string Req(string name) => S(name) ?? throw new FieldException($"missing {name}");

    /// <summary>Number; "0x" means hex, otherwise decimal (or hex when <paramref name="hex"/>).</summary>
    public ulong U(string name, bool hex = false) => ParseU(Req(name), hex, name);

    public ulong? OptU(string name, bool hex = false) => S(name) is { } s ? ParseU(s, hex, name) : null;

    public long L(string name, bool hex = false)
    {
        var s = Req(name);
        if (!Values.TryParseNumber(s, hex, out var v, out var neg) || v > long.MaxValue)
            throw new FieldException($"bad number {name}={s}");
        return neg ? -(long)v : (long)v;
    }

    public int I(string name, bool hex = false)
    {
        var v = L(name, hex);
        if (v < int.MinValue || v > int.MaxValue)
            throw new FieldException($"number out of range {name}");
        return (int)v;
    }

    public int? OptI(string name, bool hex = false) => Has(name) ? I(name, hex) : null;

    /// <summary>A PASID field: ffffffff / -1 = no PASID.</summary>
    public int? Pasid(string name, bool hex = false) => ParsePasid(Req(name), hex, name);

    public int? OptPasid(string name, bool hex = false) => S(name) is { } s ? ParsePasid(s, hex, name) : null;

    public string? Device(string name) => S(name) is { } s ? Values.NormaliseDevice(s) : null;

    public static ulong ParseU(string s, bool hex, string name)
    {
        if (!Values.TryParseNumber(s, hex, out var v, out var neg) || neg)
            throw new FieldException($"bad number {name}={s}");
        return v;
    }

    public static int? ParsePasid(string s, bool hex, string name)
    {
        if (s.Equals("NO_PASID", StringComparison.OrdinalIgnoreCase) || s.Equals("none", StringComparison.OrdinalIgnoreCase))
            return null;
        if (!Values.TryParseNumber(s, hex, out var v, out var neg) || !Values.TryPasid(v, neg, out var p))
            throw new FieldException($"bad pasid {name}={s}");
        return p;
    }
}
