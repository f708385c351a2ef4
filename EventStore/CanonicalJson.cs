using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Sva.EventStore;

/// <summary>
/// The compact canonical form of a JSON value that the version-2 hash chain is over: the text PostgreSQL renders for
/// the stored jsonb (<c>value::jsonb::text</c>) without the blanks it puts after <c>,</c> and <c>:</c>. Object keys in
/// jsonb's order (UTF-8 length, then bytewise), strings and numbers as jsonb renders them, no whitespace. It is a
/// function of the stored value alone: <see cref="FromJsonbText"/> derives it from what the database returns (verify);
/// <see cref="TryWrite"/> derives it on the client from the bytes the writer serialized (append), without building a
/// document or a string when the bytes already are canonical (the common case) and with one byte-level pass when only
/// the key order differs. Anything it cannot render with certainty (escapes, exponents, negative zero, duplicate keys)
/// goes through <see cref="JsonbText"/> (jsonb's full rendering on the client), else the caller asks the server.
/// </summary>
public static class CanonicalJson
{
    /// <summary>The compact canonical text of a jsonb value rendered by PostgreSQL (<c>data::text</c>): its blanks
    /// outside strings removed (jsonb's output has no other whitespace outside strings).</summary>
    public static string FromJsonbText(string jsonbText)
    {
        var sb = new StringBuilder(jsonbText.Length);
        var inString = false;
        var escaped = false;
        foreach (var c in jsonbText)
        {
            if (inString)
            {
                if (escaped) escaped = false;
                else if (c == '\\') escaped = true;
                else if (c == '"') inString = false;
                sb.Append(c);
            }
            else if (c == '"') { inString = true; sb.Append(c); }
            else if (c is not (' ' or '\n' or '\r' or '\t')) sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>Appends the compact canonical form of <paramref name="json"/> (UTF-8) to <paramref name="output"/>; false
    /// (nothing appended) when this cannot render it with certainty or it is not JSON.</summary>
    public static bool TryWrite(string json, ArrayBufferWriter<byte> output)
    {
        var max = Encoding.UTF8.GetMaxByteCount(json.Length);
        var rented = ArrayPool<byte>.Shared.Rent(max);
        try
        {
            var n = Encoding.UTF8.GetBytes(json, rented);
            var utf8 = rented.AsSpan(0, n);
            switch (Scan(utf8))
            {
                case Shape.Canonical:
                    output.Write(utf8);
                    return true;
                case Shape.Plain:
                {
                    var tmp = scratch ??= new ArrayBufferWriter<byte>(1024);
                    tmp.ResetWrittenCount();
                    if (TryRewrite(utf8, tmp)) { output.Write(tmp.WrittenSpan); return true; }
                    break;
                }
            }
            // escapes, exponents, …: jsonb's full rendering, then compact
            if (!JsonbText.TryCanonical(json, out var text)) return false;
            var compact = FromJsonbText(text);
            var bytes = output.GetSpan(Encoding.UTF8.GetMaxByteCount(compact.Length));
            output.Advance(Encoding.UTF8.GetBytes(compact, bytes));
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A System.Text.Json contract modifier: an object's properties are written in jsonb's key order.</summary>
    public static void JsonbKeyOrder(System.Text.Json.Serialization.Metadata.JsonTypeInfo info)
    {
        if (info.Kind != System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object) return;
        var sorted = info.Properties.Select(p => (Property: p, Name: Encoding.UTF8.GetBytes(p.Name))).ToList();
        sorted.Sort((a, b) => CompareKeys(a.Name, b.Name));
        for (var i = 0; i < sorted.Count; i++) sorted[i].Property.Order = i;
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? scratch;

    private enum Shape { NotPlain, Plain, Canonical }

    /// <summary>Canonical: already the compact canonical form. Plain: valid JSON without escapes, control characters,
    /// exponents or negative zero (a byte-level rewrite gives the canonical form). NotPlain: anything else.</summary>
    private static Shape Scan(ReadOnlySpan<byte> utf8)
    {
        var canonical = true;
        var inString = false;
        foreach (var b in utf8)
        {
            if (inString)
            {
                if (b == (byte)'\\' || b < 0x20) return Shape.NotPlain; // an escape: jsonb may render it differently
                if (b == (byte)'"') inString = false;
            }
            else if (b == (byte)'"') inString = true;
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r') canonical = false;
        }
        if (inString) return Shape.NotPlain;
        Span<int> keyStart = stackalloc int[MaxDepth + 2];
        Span<int> keyLength = stackalloc int[MaxDepth + 2];
        try
        {
            var r = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
            while (r.Read())
            {
                switch (r.TokenType)
                {
                    case JsonTokenType.StartObject:
                        keyStart[r.CurrentDepth + 1] = -1;
                        break;
                    case JsonTokenType.PropertyName:
                    {
                        var d = r.CurrentDepth;
                        var start = checked((int)r.TokenStartIndex + 1);
                        var key = r.ValueSpan;
                        if (keyStart[d] >= 0)
                        {
                            var c = CompareKeys(utf8.Slice(keyStart[d], keyLength[d]), key);
                            if (c == 0) return Shape.NotPlain; // duplicate keys: the server decides
                            if (c > 0) canonical = false;
                        }
                        keyStart[d] = start;
                        keyLength[d] = key.Length;
                        break;
                    }
                    case JsonTokenType.Number:
                        if (!PlainNumber(r.ValueSpan)) return Shape.NotPlain;
                        break;
                }
            }
            return canonical ? Shape.Canonical : Shape.Plain;
        }
        catch (JsonException)
        {
            return Shape.NotPlain;
        }
    }

    private const int MaxDepth = 64;

    private static bool PlainNumber(ReadOnlySpan<byte> n)
    {
        if (n.IndexOfAny((byte)'e', (byte)'E') >= 0) return false;
        if (n[0] == (byte)'-' && n[1..].IndexOfAnyExcept((byte)'0', (byte)'.') < 0) return false; // negative zero
        return true;
    }

    /// <summary>jsonb's key order: shorter first, then bytewise (UTF-8).</summary>
    private static int CompareKeys(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        a.Length != b.Length ? a.Length.CompareTo(b.Length) : a.SequenceCompareTo(b);

    /// <summary>Rewrites plain JSON (see <see cref="Scan"/>) compactly with every object's keys in jsonb's order.</summary>
    private static bool TryRewrite(ReadOnlySpan<byte> utf8, ArrayBufferWriter<byte> output)
    {
        try
        {
            var r = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
            return r.Read() && WriteValue(ref r, output);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool WriteValue(ref Utf8JsonReader r, ArrayBufferWriter<byte> w)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.String:
                w.Write("\""u8);
                w.Write(r.ValueSpan);
                w.Write("\""u8);
                return true;
            case JsonTokenType.Number:
                w.Write(r.ValueSpan);
                return true;
            case JsonTokenType.True: w.Write("true"u8); return true;
            case JsonTokenType.False: w.Write("false"u8); return true;
            case JsonTokenType.Null: w.Write("null"u8); return true;
            case JsonTokenType.StartArray:
            {
                w.Write("["u8);
                var first = true;
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    if (!first) w.Write(","u8);
                    first = false;
                    if (!WriteValue(ref r, w)) return false;
                }
                w.Write("]"u8);
                return true;
            }
            case JsonTokenType.StartObject:
            {
                var scratch = new ArrayBufferWriter<byte>(256);
                var members = new List<(int Key, int KeyLength, int Value, int ValueLength)>();
                while (r.Read() && r.TokenType != JsonTokenType.EndObject)
                {
                    var key = scratch.WrittenCount;
                    scratch.Write(r.ValueSpan);
                    var keyLength = scratch.WrittenCount - key;
                    if (!r.Read()) return false;
                    var value = scratch.WrittenCount;
                    if (!WriteValue(ref r, scratch)) return false;
                    members.Add((key, keyLength, value, scratch.WrittenCount - value));
                }
                members.Sort((a, b) => CompareKeys(scratch.WrittenSpan.Slice(a.Key, a.KeyLength), scratch.WrittenSpan.Slice(b.Key, b.KeyLength)));
                var all = scratch.WrittenSpan;
                w.Write("{"u8);
                for (var i = 0; i < members.Count; i++)
                {
                    var m = members[i];
                    if (i > 0)
                    {
                        if (CompareKeys(all.Slice(members[i - 1].Key, members[i - 1].KeyLength), all.Slice(m.Key, m.KeyLength)) == 0) return false;
                        w.Write(","u8);
                    }
                    w.Write("\""u8);
                    w.Write(all.Slice(m.Key, m.KeyLength));
                    w.Write("\":"u8);
                    w.Write(all.Slice(m.Value, m.ValueLength));
                }
                w.Write("}"u8);
                return true;
            }
            default:
                return false;
        }
    }
}
