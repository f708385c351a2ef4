using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sva.Domain.Json;

/// <summary>
/// JSON for events, calls and state: camelCase, enums as names, addresses as "0x…" strings (a 64-bit
/// address does not survive a JavaScript number). Serialisation is deterministic: same value, same bytes.
/// </summary>
public static class SvaJson
{
    public static readonly JsonSerializerOptions Options = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    private static JsonSerializerOptions Create(bool indented)
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = indented,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            NumberHandling = JsonNumberHandling.Strict,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            // A call read back from jsonb metadata: PostgreSQL orders keys by length, so "op" may not come first.
            AllowOutOfOrderMetadataProperties = true,
        };
        o.Converters.Add(new HexULongConverter());
        o.Converters.Add(new JsonStringEnumConverter());
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    public static string Serialize(SvaEvent e) => JsonSerializer.Serialize(e, e.GetType(), Options);

    /// <summary>Reads an event by its stored type name; unknown names and malformed data are <see cref="EventFormatException"/>.</summary>
    public static SvaEvent Deserialize(string type, string json)
    {
        if (!EventTypes.TryGetType(type, out var t))
            throw new EventFormatException($"unknown event type '{type}'");
        try
        {
            return (SvaEvent)(JsonSerializer.Deserialize(json, t, Options)
                ?? throw new EventFormatException($"event '{type}' has null data"));
        }
        catch (JsonException ex)
        {
            throw new EventFormatException($"event '{type}' has malformed data: {ex.Message}");
        }
    }

    /// <summary>The same from UTF-8 JSON (a rebuild's read: no UTF-16 string per event).</summary>
    public static SvaEvent Deserialize(string type, ReadOnlySpan<byte> utf8Json)
    {
        if (!EventTypes.TryGetType(type, out var t))
            throw new EventFormatException($"unknown event type '{type}'");
        try
        {
            return (SvaEvent)(JsonSerializer.Deserialize(utf8Json, t, Options)
                ?? throw new EventFormatException($"event '{type}' has null data"));
        }
        catch (JsonException ex)
        {
            throw new EventFormatException($"event '{type}' has malformed data: {ex.Message}");
        }
    }

    public static string SerializeCall(KernelCall c) => JsonSerializer.Serialize(c, Options);

    public static KernelCall DeserializeCall(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<KernelCall>(json, Options) ?? throw new EventFormatException("null call");
        }
        catch (JsonException ex)
        {
            throw new EventFormatException($"malformed call: {ex.Message}");
        }
    }

    public static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    public static bool TryParseNumber(string text, out ulong value)
    {
        text = text.Trim();
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private sealed class HexULongConverter : JsonConverter<ulong>
    {
        public override ulong Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number) return reader.GetUInt64();
            var s = reader.GetString() ?? "";
            return TryParseNumber(s, out var v) ? v : throw new JsonException($"not an address: '{s}'");
        }

        public override void Write(Utf8JsonWriter writer, ulong value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Hex(value));
    }
}

/// <summary>A stored event the simulator cannot read (unknown type, malformed data).</summary>
public sealed class EventFormatException(string message) : Exception(message);
