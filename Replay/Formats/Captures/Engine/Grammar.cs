using System.Collections.ObjectModel;
using System.Text.RegularExpressions;

namespace Sva.Formats.Captures.Engine;

/// <summary>The line-level description of a format: its line prefixes and its records.</summary>
internal abstract class Grammar
{
    private static readonly List<RecordSpec> NoSpecs = new();

    public abstract string FormatName { get; }
    public abstract IReadOnlyList<RecordSpec> Specs { get; }

    /// <summary>Parses the line prefix; <paramref name="bodyStart"/> is where the record text starts.</summary>
    public abstract Header ParseHeader(string text, out int bodyStart);

    /// <summary>Splits a physical line where another record starts mid-line (records run together by a mail client).</summary>
    public virtual Regex? SegmentSplitter => null;

    /// <summary>Lines that can never continue a wrapped record (comments, another message's prefix).</summary>
    public virtual bool IsNonContinuation(string text) => false;

    public virtual string UnrecognisedReason(Header header, string text, string body) => "unrecognised line";

    /// <summary>The specs that claim this body; generic (fallback) specs only when no specific one does.</summary>
    public List<RecordSpec> Candidates(string body)
    {
        List<RecordSpec>? list = null;
        bool specific = false;
        foreach (var s in Specs)
        {
            if (!s.IsCandidate(body))
                continue;
            (list ??= new List<RecordSpec>()).Add(s);
            if (!s.IsFallback)
                specific = true;
        }
        if (list is null)
            return NoSpecs;
        if (specific)
            list.RemoveAll(s => s.IsFallback);
        return list;
    }

    public static ParsedRecord? TryParse(string body, List<RecordSpec> candidates)
    {
        foreach (var spec in candidates)
        {
            var r = spec.TryParse(body);
            if (r is not null)
                return r;
        }
        return null;
    }

    /// <summary>Builds a case-insensitive, explicit-capture regex.</summary>
    public static Regex R(string pattern) =>
        new(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

    /// <summary>Literal spaces in a record pattern match any run of whitespace (pasted text re-spaces lines).</summary>
    public static string Sp(string pattern) => pattern.Replace(" ", @"\s+", StringComparison.Ordinal);
}

/// <summary>Turns a parsed line record into an observation.</summary>
internal static class ObservationFactory
{
    public static Observation Create(LineRecord r, string format) => Create(r.Draft, r.Header, r.Source, format, r.RawText);

    public static Observation Create(ObservationDraft d, Header h, SourceRef source, string format, string rawText)
    {
        var fields = new Dictionary<string, string>(d.Fields.Count + h.Fields.Count, StringComparer.Ordinal);
        foreach (var kv in d.Fields)
            fields.TryAdd(kv.Key, kv.Value);
        foreach (var kv in h.Fields)
            fields.TryAdd(kv.Key, kv.Value);
        return new Observation(source, format, d.Kind, d.Timestamp ?? h.Timestamp, d.Task ?? h.Task, d.Cpu ?? h.Cpu, d.Device, d.Pasid, d.Address, d.End,
            d.Size, d.Group, d.Last, d.Access, d.ResponseCode, new ReadOnlyDictionary<string, string>(fields), rawText);
    }
}

/// <summary>Receives the assembler's output: records (to convert or gather) and skipped lines.</summary>
internal interface IRecordSink
{
    void Record(LineRecord record, ICollection<CaptureItem> output);
    void Skipped(SkippedLine line, ICollection<CaptureItem> output);
    void Complete(ICollection<CaptureItem> output);
}

/// <summary>One record = one observation.</summary>
internal sealed class DirectSink(string format) : IRecordSink
{
    public void Record(LineRecord record, ICollection<CaptureItem> output) => output.Add(ObservationFactory.Create(record, format));
    public void Skipped(SkippedLine line, ICollection<CaptureItem> output) => output.Add(line);
    public void Complete(ICollection<CaptureItem> output) { }
}

/// <summary>A format defined by a <see cref="Grammar"/>; scores itself by how many lines its records claim.</summary>
internal abstract class GrammarFormat : ICaptureFormat
{
    internal abstract Grammar Grammar { get; }
    public abstract string Name { get; }
    public abstract string Description { get; }

    public ICaptureParser CreateParser(string fileName, bool lenient) =>
        new RecordAssembler(Grammar, fileName, lenient, CreateSink());

    protected virtual IRecordSink CreateSink() => new DirectSink(Name);

    /// <summary>Credit for a line that claims to be one of the format's records but does not parse.</summary>
    protected virtual double PartialCredit => 0.5;

    public IReadOnlyList<int> FittingLines(IReadOnlyList<string> lines, int max)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var fit = new List<int>();
        for (int i = 0; i < lines.Count && fit.Count < max; i++)
        {
            var text = TextCleaner.Clean(lines[i] ?? "");
            if (text.Length == 0)
                continue;
            if (text.Length > 2048)
                text = text[..2048];
            Grammar.ParseHeader(text, out var bodyStart);
            var body = text[bodyStart..];
            var candidates = Grammar.Candidates(body);
            if (candidates.Count > 0 && Grammar.TryParse(body, candidates) is not null)
                fit.Add(i + 1);
        }
        return fit;
    }

    public virtual double Sniff(IReadOnlyList<string> firstLines)
    {
        ArgumentNullException.ThrowIfNull(firstLines);
        int total = 0, weak = 0;
        double known = 0;
        foreach (var line in firstLines.Take(CaptureReader.MaxSniffLineCount))
        {
            var text = TextCleaner.Clean(line ?? "");
            if (text.Length == 0)
                continue;
            if (text.Length > 2048)
                text = text[..2048];
            total++;
            var header = Grammar.ParseHeader(text, out var bodyStart);
            var body = text[bodyStart..];
            var candidates = Grammar.Candidates(body);
            if (candidates.Count > 0)
                known += Grammar.TryParse(body, candidates) is null ? PartialCredit : 1;
            else if (header.Strong)
                weak++;
        }
        if (total == 0)
            return 0;
        if (known == 0)
            return weak == 0 ? 0 : 0.1 + 0.2 * weak / total;
        return 0.5 + 0.5 * Math.Min(1.0, (known + 0.25 * weak) / total);
    }
}
