namespace Sva.Formats.Captures.Engine;

/// <summary>Removes what pasting adds around a line: line-end CR, trailing spaces, mail/commit quote prefixes
/// ("> ", ">> ", "> > ", "| ") and leading indentation; non-breaking spaces become spaces.</summary>
internal static class TextCleaner
{
    public static string Clean(string raw)
    {
        ReadOnlySpan<char> span = raw;
        if (span.Length > 0 && span[0] == '\uFEFF')
            span = span[1..];
        span = span.TrimEnd();
        int i = 0;
        while (true)
        {
            while (i < span.Length && (span[i] == ' ' || span[i] == '\t' || span[i] == '\u00a0'))
                i++;
            if (i < span.Length && span[i] == '>')
            {
                i++;
                continue;
            }
            if (i < span.Length && span[i] == '|' && (i + 1 == span.Length || span[i + 1] == ' ' || span[i + 1] == '\t'))
            {
                i++;
                continue;
            }
            break;
        }
        var s = span[i..];
        return s.Contains('\u00a0') ? s.ToString().Replace('\u00a0', ' ') : s.ToString();
    }
}
