namespace Sva.Formats.Captures;

/// <summary>A captured-session text format ("ftrace", "dmesg", "qemu-trace", "jsonl").</summary>
public interface ICaptureFormat
{
    string Name { get; }
    string Description { get; }

    /// <summary>0..1: how sure the format is that these lines (the start of a capture) are written in it.</summary>
    double Sniff(IReadOnlyList<string> firstLines);

    /// <summary>The 1-based numbers of the lines (of <paramref name="lines"/>) that read as one of the format's records,
    /// at most <paramref name="max"/> of them: what detection names as "the lines that fit".</summary>
    IReadOnlyList<int> FittingLines(IReadOnlyList<string> lines, int max) => [];

    /// <summary>A fresh line-at-a-time parser for one capture.</summary>
    /// <param name="lenient">false: a malformed line of a known event throws <see cref="CaptureFormatException"/>;
    /// true: it becomes a <see cref="SkippedLine"/> whose reason starts with "malformed: ".</param>
    ICaptureParser CreateParser(string fileName, bool lenient);
}

/// <summary>Push parser: physical lines in, items out, in file order. Holds at most a few lines back
/// (a record being joined or gathered), so memory does not depend on the size of the capture.</summary>
public interface ICaptureParser
{
    /// <summary>Feeds one physical line (without its line terminator; a trailing '\r' is tolerated).</summary>
    void Feed(string line, int lineNumber, ICollection<CaptureItem> output);

    /// <summary>End of input: flushes what is still held (a cut-off last record becomes a SkippedLine "truncated: ...").</summary>
    void Complete(ICollection<CaptureItem> output);
}
