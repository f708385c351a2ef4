using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Sva.EventStore;

/// <summary>
/// The text PostgreSQL renders for a jsonb value (<c>value::jsonb::text</c>), computed on the client so an
/// append need not send every payload twice to learn it (the hash chain is over that text). Rules of
/// PostgreSQL's jsonb output: object keys sorted by UTF-8 length, then bytewise; <c>", "</c> and
/// <c>": "</c> separators; strings with only <c>" \ \b \f \n \r \t</c> and other control characters
/// escaped (<c>\u00xx</c>), everything else raw UTF-8; numbers as written. Anything this does not
/// render with certainty (exponents, negative zero, NUL, duplicate keys) returns false and the caller
/// asks the server. A test compares it with the server on a large random corpus.
/// </summary>
public static class JsonbText
{
    public static bool TryCanonical(string json, out string canonical)
    {
        canonical = "";
        try
        {
            using var doc = JsonDocument.Parse(json);
            var sb = new StringBuilder(json.Length + 16);
            if (!Write(doc.RootElement, sb)) return false;
            canonical = sb.ToString();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool Write(JsonElement e, StringBuilder sb)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
            {
                // Keys in UTF-8 order: for ASCII keys (all of ours) that is the length, then ordinal order of the string;
                // a key with other characters is compared on its UTF-8 bytes.
                var props = new List<(string Name, JsonElement Value)>();
                foreach (var p in e.EnumerateObject()) props.Add((p.Name, p.Value));
                props.Sort(static (a, b) => CompareKeys(a.Name, b.Name));
                for (var i = 1; i < props.Count; i++)
                    if (string.Equals(props[i].Name, props[i - 1].Name, StringComparison.Ordinal)) return false; // duplicate keys: let the server decide
                sb.Append('{');
                for (var i = 0; i < props.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    if (!String(props[i].Name, sb)) return false;
                    sb.Append(": ");
                    if (!Write(props[i].Value, sb)) return false;
                }
                sb.Append('}');
                return true;
            }
            case JsonValueKind.Array:
            {
                sb.Append('[');
                var first = true;
                foreach (var item in e.EnumerateArray())
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    if (!Write(item, sb)) return false;
                }
                sb.Append(']');
                return true;
            }
            case JsonValueKind.String:
                return String(e.GetString()!, sb);
            case JsonValueKind.Number:
            {
                var raw = e.GetRawText();
                if (raw.Contains('e') || raw.Contains('E')) return false;
                if (raw[0] == '-' && raw.AsSpan(1).Trim("0.").IsEmpty) return false; // negative zero
                sb.Append(raw);
                return true;
            }
            case JsonValueKind.True: sb.Append("true"); return true;
            case JsonValueKind.False: sb.Append("false"); return true;
            case JsonValueKind.Null: sb.Append("null"); return true;
            default: return false;
        }
    }

    private static bool IsAscii(string s)
    {
        foreach (var c in s)
            if (c >= 0x80) return false;
        return true;
    }

    private static int CompareKeys(string a, string b)
    {
        if (IsAscii(a) && IsAscii(b))
            return a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b);
        var x = Encoding.UTF8.GetBytes(a);
        var y = Encoding.UTF8.GetBytes(b);
        return x.Length != y.Length ? x.Length.CompareTo(y.Length) : x.AsSpan().SequenceCompareTo(y);
    }

    private static bool String(string s, StringBuilder sb)
    {
        // Fast path: nothing to escape and no surrogate (most strings): the text as it is.
        var plain = true;
        foreach (var c in s)
            if (c < ' ' || c == '"' || c == '\\' || char.IsSurrogate(c)) { plain = false; break; }
        if (plain) { sb.Append('"').Append(s).Append('"'); return true; }
        if (s.Any(char.IsSurrogate) && !PairedSurrogates(s)) return false; // a lone surrogate has no UTF-8 form
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '\0': return false; // jsonb refuses \u0000
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < ' ') sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
        return true;
    }

    private static bool PairedSurrogates(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(s[i])) return false;
        }
        return true;
    }
}
