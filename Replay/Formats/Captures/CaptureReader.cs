using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Text;
using Sva.Formats.Captures.Dmesg;
using Sva.Formats.Captures.Ftrace;
using Sva.Formats.Captures.Jsonl;
using Sva.Formats.Captures.Qemu;

namespace Sva.Formats.Captures;

/// <summary>Entry point: picks a format (or detects it) and streams the capture's items.</summary>
public static class CaptureReader
{
    /// <summary>How many lines "auto" looks at first (held in memory, then parsed).</summary>
    public const int SniffLineCount = 1000;

    /// <summary>When nothing fits the first <see cref="SniffLineCount"/> lines (a long mail, a shell session before the
    /// log), "auto" samples this far into the capture before it gives up.</summary>
    public const int MaxSniffLineCount = 10000;

    /// <summary>How many fitting line numbers a detection names.</summary>
    public const int FittingLinesNamed = 10;

    /// <summary>Below this score a format is not considered a fit.</summary>
    public const double MinimumScore = 0.1;

    public static IReadOnlyList<ICaptureFormat> Formats { get; } =
        [new FtraceFormat(), new DmesgFormat(), new QemuTraceFormat(), new JsonlFormat()];

    /// <summary>The format with this name (case-insensitive); throws <see cref="ArgumentException"/> listing the known ones.</summary>
    public static ICaptureFormat Get(string name)
    {
        foreach (var f in Formats)
            if (string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase))
                return f;
        throw new ArgumentException($"unknown capture format '{name}'; known formats: auto, {string.Join(", ", Formats.Select(f => f.Name))}", nameof(name));
    }

    /// <summary>The best-scoring format for these first lines ("--format auto").</summary>
    public static ICaptureFormat Detect(IReadOnlyList<string> firstLines) => DetectDetailed(firstLines).Format;

    /// <summary>
    /// The best-scoring format and why: it scores the first <see cref="SniffLineCount"/> lines; when no format fits them
    /// (a paste that starts with a shell prompt, the command that was run, a label, unrelated lines), it samples up to
    /// <see cref="MaxSniffLineCount"/> of the lines given before it decides. Names the first lines that fit.
    /// Throws <see cref="CaptureDetectionException"/> (listing the formats and the lines sampled) when nothing fits.
    /// </summary>
    public static CaptureDetection DetectDetailed(IReadOnlyList<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var sample = lines.Count > SniffLineCount ? lines.Take(SniffLineCount).ToList() : lines;
        var (best, score) = Best(sample);
        if ((best is null || score < MinimumScore) && lines.Count > SniffLineCount)
        {
            sample = lines.Count > MaxSniffLineCount ? lines.Take(MaxSniffLineCount).ToList() : lines;
            (best, score) = Best(sample);
        }
        if (best is null || score < MinimumScore)
        {
            var sb = new StringBuilder($"could not detect the capture format: no known format fits the first {sample.Count} lines; pass one of:");
            foreach (var f in Formats)
                sb.Append("\n  ").Append(f.Name).Append(": ").Append(f.Description);
            throw new CaptureDetectionException(sb.ToString()) { SampledLines = sample.Count };
        }
        return new CaptureDetection(best, score, sample.Count, best.FittingLines(sample, FittingLinesNamed));
    }

    private static (ICaptureFormat? Format, double Score) Best(IReadOnlyList<string> sample)
    {
        ICaptureFormat? best = null;
        double bestScore = 0;
        foreach (var f in Formats)
        {
            var s = f.Sniff(sample);
            if (s > bestScore)
            {
                best = f;
                bestScore = s;
            }
        }
        return (best, bestScore);
    }

    /// <summary>Streams the items of a capture (observations and skipped lines) in file order.</summary>
    /// <param name="format">A format name or "auto".</param>
    /// <param name="lenient">false: throws <see cref="CaptureFormatException"/> at the first malformed line of a known
    /// event (after yielding everything before it); true: such lines become SkippedLine "malformed: ...".</param>
    public static async IAsyncEnumerable<CaptureItem> ReadAsync(
        TextReader reader, string fileName, string format, bool lenient,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(format);

        List<string>? head = null;
        ICaptureFormat fmt;
        if (format.Length == 0 || string.Equals(format, "auto", StringComparison.OrdinalIgnoreCase))
        {
            head = new List<string>();
            while (head.Count < SniffLineCount && await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } l)
                head.Add(l);
            if (head.Count == SniffLineCount && !Fits(head))
            {
                // nothing fits the first lines: sample further before deciding
                while (head.Count < MaxSniffLineCount && await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } more)
                    head.Add(more);
            }
            fmt = Detect(head);
        }
        else
        {
            fmt = Get(format);
        }

        var parser = fmt.CreateParser(fileName, lenient);
        var buffer = new List<CaptureItem>();
        int lineNumber = 0;

        if (head is not null)
        {
            foreach (var line in head)
            {
                ct.ThrowIfCancellationRequested();
                var error = Feed(parser, line, ++lineNumber, buffer, lenient);
                foreach (var item in buffer)
                    yield return item;
                buffer.Clear();
                error?.Throw();
            }
            head = null;
        }

        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            ct.ThrowIfCancellationRequested();
            var error = Feed(parser, line, ++lineNumber, buffer, lenient);
            foreach (var item in buffer)
                yield return item;
            buffer.Clear();
            error?.Throw();
        }

        ExceptionDispatchInfo? last = null;
        try
        {
            parser.Complete(buffer);
        }
        catch (CaptureFormatException e)
        {
            last = ExceptionDispatchInfo.Capture(e);
        }
        if (Screen(buffer, lenient) is { } unstorable)
            last = unstorable;
        foreach (var item in buffer)
            yield return item;
        last?.Throw();
    }

    private static bool Fits(IReadOnlyList<string> lines)
    {
        var (best, score) = Best(lines);
        return best is not null && score >= MinimumScore;
    }

    /// <summary>Skip reason of a record holding a character PostgreSQL text cannot store (NUL, an unpaired surrogate).</summary>
    public const string UnstorableReason = "unstorable: a NUL byte or an unpaired surrogate (PostgreSQL text cannot hold it)";

    /// <summary>Skip reason of a record naming a device, mm, handle or iommu longer than the limit.</summary>
    public static readonly string TooLongReason = $"too long: a name of more than {InputLimits.MaxNameLength} characters";

    /// <summary>Fields that become identifiers (besides <see cref="Observation.Device"/>).</summary>
    private static readonly string[] NameFields = ["mm", "handle", "name", "iommu", "@dev", "id", "domain"];

    /// <summary>
    /// Nothing a database cannot hold leaves the reader: an observation with a NUL (or unpaired surrogate) in any field,
    /// or an identifier over <see cref="InputLimits.MaxNameLength"/> characters, becomes a skipped line with that reason
    /// (lenient) or a <see cref="CaptureFormatException"/> naming file:line (strict); skip reasons are escaped.
    /// </summary>
    private static ExceptionDispatchInfo? Screen(List<CaptureItem> buffer, bool lenient)
    {
        for (var i = 0; i < buffer.Count; i++)
        {
            switch (buffer[i])
            {
                case SkippedLine sk when InputLimits.FirstUnstorable(sk.Reason) >= 0:
                    buffer[i] = sk with { Reason = InputLimits.Escape(sk.Reason) };
                    break;
                case Observation o when Problem(o) is { } reason:
                    if (!lenient)
                    {
                        // strict: what came before is kept, the record and what follows it are not
                        buffer.RemoveRange(i, buffer.Count - i);
                        try
                        {
                            throw new CaptureFormatException(o.Source, o.Kind.ToString(),
                                reason == UnstorableReason ? "text without NUL bytes or unpaired surrogates" : $"names of at most {InputLimits.MaxNameLength} characters",
                                InputLimits.Quote(o.RawText));
                        }
                        catch (CaptureFormatException e)
                        {
                            return ExceptionDispatchInfo.Capture(e);
                        }
                    }
                    buffer[i] = new SkippedLine(o.Source, o.RawText, reason);
                    break;
            }
        }
        return null;
    }

    private static string? Problem(Observation o)
    {
        if (Unstorable(o.RawText) || Unstorable(o.Device) || Unstorable(o.Task) || Unstorable(o.Access)) return UnstorableReason;
        foreach (var (k, v) in o.Fields)
            if (Unstorable(k) || Unstorable(v)) return UnstorableReason;
        if (o.Device is { Length: > InputLimits.MaxNameLength }) return TooLongReason;
        foreach (var f in NameFields)
            if (o.Field(f) is { Length: > InputLimits.MaxNameLength }) return TooLongReason;
        return null;

        static bool Unstorable(string? text) => text is not null && InputLimits.FirstUnstorable(text) >= 0;
    }

    /// <summary>Convenience: reads a whole capture into a list (tests, small inputs).</summary>
    public static async Task<List<CaptureItem>> ReadAllAsync(TextReader reader, string fileName, string format, bool lenient, CancellationToken ct = default)
    {
        var list = new List<CaptureItem>();
        await foreach (var item in ReadAsync(reader, fileName, format, lenient, ct).ConfigureAwait(false))
            list.Add(item);
        return list;
    }

    private static ExceptionDispatchInfo? Feed(ICaptureParser parser, string line, int lineNumber, List<CaptureItem> buffer, bool lenient)
    {
        ExceptionDispatchInfo? error = null;
        try
        {
            parser.Feed(line, lineNumber, buffer);
        }
        catch (CaptureFormatException e)
        {
            error = ExceptionDispatchInfo.Capture(e);
        }
        // The items a parser handed over before it threw are screened too.
        return Screen(buffer, lenient) ?? error;
    }
}
