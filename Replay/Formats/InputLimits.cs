using System.Globalization;
using System.Text;

namespace Sva.Formats;

/// <summary>
/// The limits on what input may name and the one way input is echoed in a message. Every identifier a script, a
/// capture or an option gives (session names, mm / device / domain / handle labels, iommu names) is at most
/// <see cref="MaxNameLength"/> characters, and no text that reaches the database may hold a character PostgreSQL
/// text cannot store (NUL, or half of a UTF-16 surrogate pair). Both are checked when the input is parsed, so a bad
/// name is a file:line error (exit 2) with nothing recorded, never a database error.
/// </summary>
public static class InputLimits
{
    /// <summary>Session names, mm / device / domain / handle labels and iommu names: at most this many characters.
    /// Two such names together stay far below a PostgreSQL btree index row (2704 bytes) even in 4-byte UTF-8.</summary>
    public const int MaxNameLength = 200;

    /// <summary>A line of a .sva script: at most this many characters (a call is a few dozen).</summary>
    public const int MaxScriptLineLength = 4096;

    /// <summary>How much of an input value a message quotes before it is cut (with its length given).</summary>
    public const int QuoteLength = 80;

    /// <summary>"the limit" in words, as messages and the README say it.</summary>
    public static string NameLimitText => $"at most {MaxNameLength} characters";

    /// <summary>The index of the first character PostgreSQL text cannot hold (NUL, an unpaired surrogate), or -1.</summary>
    public static int FirstUnstorable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0') return i;
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
                return i;
            }
            if (char.IsLowSurrogate(c)) return i;
        }
        return -1;
    }

    /// <summary>"a NUL byte", "U+0007", ...</summary>
    public static string Describe(char c) => c == '\0' ? "a NUL byte" : $"U+{(int)c:X4}";

    /// <summary>Input echoed in a message: control characters (NUL, ESC, CR, ...) and unpaired surrogates escaped as
    /// \0, \t, \n, \r, \xNN or \uNNNN, and anything longer than <see cref="QuoteLength"/> cut, with its length given.</summary>
    public static string Quote(string? text)
    {
        if (text is null) return "";
        var cut = text.Length > QuoteLength;
        var escaped = Escape(cut ? text[..QuoteLength] : text, keepNewlines: false);
        return cut ? $"{escaped}… ({text.Length.ToString(CultureInfo.InvariantCulture)} characters)" : escaped;
    }

    /// <summary>Escapes control characters and unpaired surrogates (the whole text, no cut). With
    /// <paramref name="keepNewlines"/>, '\n' stays a line break (for a message of several lines).</summary>
    public static string Escape(string text, bool keepNewlines = false)
    {
        var clean = true;
        for (var i = 0; i < text.Length && clean; i++)
            clean = !NeedsEscape(text, i, keepNewlines);
        if (clean) return text;
        var sb = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(c).Append(text[++i]);
                continue;
            }
            if (!NeedsEscape(text, i, keepNewlines)) { sb.Append(c); continue; }
            sb.Append(c switch
            {
                '\0' => "\\0",
                '\t' => "\\t",
                '\n' => "\\n",
                '\r' => "\\r",
                _ when c < 0x100 => $"\\x{(int)c:x2}",
                _ => $"\\u{(int)c:x4}",
            });
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(string text, int i, bool keepNewlines)
    {
        var c = text[i];
        if (c == '\n' && keepNewlines) return false;
        if (char.IsControl(c)) return true;
        if (char.IsHighSurrogate(c)) return !(i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]));
        if (char.IsLowSurrogate(c)) return !(i > 0 && char.IsHighSurrogate(text[i - 1]));
        return c is '\u2028' or '\u2029' or '\u202e' or '\u2066' or '\u2067' or '\u2068' or '\u2069' or '\u202a' or '\u202b' or '\u202c' or '\u202d';
    }
}
