using Sva.Formats.Captures;

namespace Sva.Commands;

/// <summary>Which capture format an import reads: a named one, or "auto" (detected from the head of the capture).</summary>
public static class CaptureFormatChoice
{
    public static bool IsFormatName(string? name) =>
        name is not null && (IsAuto(name) || CaptureReader.Formats.Any(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)));

    private static bool IsAuto(string name) => name.Length == 0 || name.Equals("auto", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Resolves the format before anything is written: "auto" sniffs the head (buffered in <paramref name="lines"/>, which
    /// replays it). Returns the format and the one detection would choose (null: none fits), which names a forced format
    /// in the default session name.
    /// </summary>
    public static async Task<(string Format, string? Detected)> ResolveAsync(CaptureLineReader lines, string fileName, string? requested, CancellationToken ct)
    {
        var head = await lines.BufferHeadAsync(CaptureReader.MaxSniffLineCount, ct); // Detect samples past the first 1000 only when they fit nothing
        string? detected = null;
        try { detected = CaptureReader.Detect(head).Name; }
        catch (CaptureDetectionException) { }
        if (string.IsNullOrEmpty(requested) || IsAuto(requested))
            return (detected ?? throw new ImportInputException($"{fileName}: {DetectionMessage(head)}"), detected);
        try { return (CaptureReader.Get(requested).Name, detected); }
        catch (ArgumentException e) { throw new ImportInputException(e.Message, e); }
    }

    private static string DetectionMessage(IReadOnlyList<string> head)
    {
        try
        {
            CaptureReader.Detect(head);
            return "could not detect the capture format";
        }
        catch (CaptureDetectionException e)
        {
            return e.Message;
        }
    }

    /// <summary>--strict: a malformed line of a known event or any unrecognised line (comments apart) fails the import.</summary>
    public static async Task ValidateStrictAsync(TextReader reader, string fileName, string format, CancellationToken ct)
    {
        try
        {
            await foreach (var item in CaptureReader.ReadAsync(reader, fileName, format, lenient: false, ct))
            {
                if (item is SkippedLine s && s.Reason != "comment")
                    throw new ImportInputException($"{s.Source}: {s.Reason}: '{ImportText.Short(s.Text)}' (--strict: every line must be a recognised record; nothing was recorded)");
            }
        }
        catch (CaptureFormatException e)
        {
            throw new ImportInputException($"{e.Message} (--strict: nothing was recorded)", e);
        }
        catch (CaptureDetectionException e)
        {
            throw new ImportInputException($"{fileName}: {e.Message}", e);
        }
    }
}
