using System.Buffers;
using System.Data.Common;
using Npgsql;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Weasel.Core;

namespace Sva.EventStore;

/// <summary>
/// The Marten headers an event carries for the hash chain, in both stored shapes — the one codec for them: what the
/// append writes, the SQL that takes the fields out for reads and verify, and the projection adapter's metadata.
/// <list type="bullet">
/// <item>Version 1 (no "chain" header; written before issue 15): <c>{"cmd": "&lt;command id&gt;", "meta": "&lt;metadata
/// as an escaped JSON string&gt;", "hash": "&lt;hex&gt;", "state"?: "&lt;hex&gt;"}</c>.</item>
/// <item>Version 2: <c>{"chain": 2, "hash": "&lt;hex&gt;", "meta": &lt;the metadata as a JSON value&gt;, "state"?: "&lt;hex&gt;"}</c>;
/// no "cmd" (the event id is a function of the command id, and the metadata carries it). Metadata that is not JSON
/// is stored as a string there.</item>
/// </list>
/// <see cref="EventHash"/> gives each version's byte layout.
/// </summary>
public static class ChainHeaders
{
    /// <summary>The chain version this build writes.</summary>
    public const int Current = 2;

    /// <summary>The chain version, as text, taken out by PostgreSQL (null: no "chain" header, version 1).</summary>
    public const string ChainSql = "CASE WHEN headers ? 'chain' THEN headers->>'chain' END";

    /// <summary>A version-2 "meta" that is a JSON value (not a string), as jsonb renders it; null otherwise.</summary>
    public const string MetaJsonSql = "CASE WHEN jsonb_typeof(headers->'meta') NOT IN ('string', 'null') THEN (headers->'meta')::text END";

    /// <summary>The command id: the "cmd" header (version 1) or the metadata's "cmd" (version 2, which has no such header).</summary>
    public const string CommandSql =
        "COALESCE(CASE WHEN jsonb_typeof(headers->'cmd') = 'string' THEN headers->>'cmd' END, " +
        "CASE WHEN jsonb_typeof(headers->'meta') = 'object' AND jsonb_typeof(headers->'meta'->'cmd') = 'string' THEN headers->'meta'->>'cmd' END)";

    /// <summary>The chain version of <see cref="ChainSql"/>'s value: 1 when absent, 0 (unknown to every reader) when not an integer.</summary>
    public static int Chain(string? text) =>
        text is null ? 1 : int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;

    /// <summary>The metadata text of a "meta" header value as Marten deserialized it (the projection adapter).</summary>
    public static string MetadataText(object? value) => value switch
    {
        null => "{}",
        string s => s,
        RawJson r => r.Json,
        JsonElement { ValueKind: JsonValueKind.String } je => je.GetString() ?? "{}",
        JsonElement je => CanonicalJson.FromJsonbText(je.GetRawText()),
        _ => value.ToString() ?? "{}",
    };

    /// <summary>The version-2 headers as JSON text (what Marten stores; <see cref="PreparedJson"/> hands it over).</summary>
    internal static string Write(string hashHex, string metadata, bool metadataIsJson, string? state)
    {
        var sb = new StringBuilder(96 + metadata.Length);
        sb.Append("{\"chain\":").Append(Current).Append(",\"hash\":\"").Append(hashHex).Append("\",\"meta\":");
        if (metadataIsJson) sb.Append(metadata);
        else sb.Append(JsonSerializer.Serialize(metadata));
        if (state is not null) sb.Append(",\"state\":\"").Append(state).Append('"');
        return sb.Append('}').ToString();
    }

    /// <summary>A header value that is already JSON text (version 2's "meta"): written as it is.</summary>
    public sealed record RawJson(string Json);

    internal sealed class RawJsonConverter : JsonConverter<RawJson>
    {
        public override RawJson Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            return new RawJson(doc.RootElement.GetRawText());
        }

        public override void Write(Utf8JsonWriter writer, RawJson value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.Json);
    }
}

/// <summary>
/// Marten's serializer, handed the JSON the append already produced: during an append, the event data and header
/// objects it serialized for the hash chain map to their text (<see cref="Scope"/>), so Marten does not serialize them
/// a second time. Everything else (and any object not in the scope) goes to the inner serializer.
/// </summary>
internal sealed class PreparedJson(Marten.ISerializer inner) : Marten.ISerializer
{
    private static readonly AsyncLocal<Dictionary<object, string>?> Current = new();

    /// <summary>Objects → their JSON for the current async flow (an append), until disposed.</summary>
    public static Dictionary<object, string> Scope()
    {
        var d = new Dictionary<object, string>(ReferenceEqualityComparer.Instance);
        Current.Value = d;
        return d;
    }

    public static void EndScope() => Current.Value = null;

    public Marten.ISerializer Inner => inner;
    public EnumStorage EnumStorage => inner.EnumStorage;
    public Casing Casing => inner.Casing;
    public Marten.ValueCasting ValueCasting => inner.ValueCasting;

    private static string? Prepared(object? value) =>
        value is not null && Current.Value is { } d && d.TryGetValue(value, out var json) ? json : null;

    public string ToJson(object? document) => Prepared(document) ?? inner.ToJson(document);

    public void WriteTo(IBufferWriter<byte> writer, object? value)
    {
        if (Prepared(value) is { } json) Encoding.UTF8.GetBytes(json, writer);
        else inner.WriteTo(writer, value);
    }

    public void WriteToParameter(NpgsqlParameter parameter, object? value)
    {
        if (Prepared(value) is { } json)
        {
            parameter.NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Jsonb;
            parameter.Value = json;
        }
        else inner.WriteToParameter(parameter, value);
    }

    public void WriteToParameter(DbParameter parameter, object? value)
    {
        if (parameter is NpgsqlParameter np) WriteToParameter(np, value);
        else ((Weasel.Storage.IStorageSerializer)inner).WriteToParameter(parameter, value);
    }

    public void WriteToCleanJson(IBufferWriter<byte> writer, object? value) => inner.WriteToCleanJson(writer, value);
    public void WriteToJsonWithTypes(IBufferWriter<byte> writer, object value) => inner.WriteToJsonWithTypes(writer, value);

    public T FromJson<T>(Stream stream) => inner.FromJson<T>(stream);
    public T FromJson<T>(DbDataReader reader, int index) => inner.FromJson<T>(reader, index);
    public ValueTask<T> FromJsonAsync<T>(Stream stream, CancellationToken cancellationToken = default) => inner.FromJsonAsync<T>(stream, cancellationToken);
    public ValueTask<T> FromJsonAsync<T>(DbDataReader reader, int index, CancellationToken cancellationToken = default) => inner.FromJsonAsync<T>(reader, index, cancellationToken);
    public object FromJson(Type type, Stream stream) => inner.FromJson(type, stream);
    public object FromJson(Type type, DbDataReader reader, int index) => inner.FromJson(type, reader, index);
    public ValueTask<object> FromJsonAsync(Type type, Stream stream, CancellationToken cancellationToken = default) => inner.FromJsonAsync(type, stream, cancellationToken);
    public ValueTask<object> FromJsonAsync(Type type, DbDataReader reader, int index, CancellationToken cancellationToken = default) => inner.FromJsonAsync(type, reader, index, cancellationToken);
    public string ToCleanJson(object? document) => inner.ToCleanJson(document);
    public string ToJsonWithTypes(object document) => inner.ToJsonWithTypes(document);
}
