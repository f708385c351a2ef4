using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Sva.Formats.Import;

namespace Sva.Commands;

public sealed record ImportFailure(long Seq, string? Source, string Op, string Reason);

/// <summary>
/// What an import did. <see cref="Events"/>: events of the session; <see cref="Appended"/>: appended by this run.
/// Its JSON (the CLI's <c>import --json</c> and the summary kept in the import's registry document) is System.Text.Json
/// with snake_case names, in declaration order; a few members keep older names (<c>failures</c> is the count,
/// <c>failure_list</c> the list, <c>mismatches</c> the count, <c>conformance</c> the list).
/// </summary>
public sealed record ImportResult
{
    public required string Session { get; init; }
    public required string Kernel { get; init; }
    public required string File { get; init; }
    public required string Format { get; init; }
    public required string ContentHash { get; init; }
    public long Lines { get; init; }
    public long Recognized { get; init; }
    public long Skipped { get; init; }
    public IReadOnlyDictionary<string, long> SkippedByReason { get; init; } = new Dictionary<string, long>();
    public long Events { get; init; }
    public long Appended { get; init; }
    public long Calls { get; init; }
    public long InferredCalls { get; init; }
    public IReadOnlyDictionary<string, long> CallsByOp { get; init; } = new Dictionary<string, long>();
    [JsonPropertyName("failures")]
    public long FailureCount { get; init; }
    [JsonPropertyName("failure_list")]
    public IReadOnlyList<ImportFailure> Failures { get; init; } = [];
    public long ConformanceChecked { get; init; }
    [JsonPropertyName("mismatches")]
    public long MismatchCount { get; init; }
    [JsonPropertyName("conformance")]
    public IReadOnlyList<ConformanceFinding> Mismatches { get; init; } = [];
    public int Devices { get; init; }
    public int Pasids { get; init; }
    public int Batches { get; init; }
    /// <summary>The batch a resumed run started after (null: started from the beginning).</summary>
    public int? ResumedAfterBatch { get; init; }
    /// <summary>The session was already a complete import of this capture: nothing was read or appended.</summary>
    public bool AlreadyImported { get; init; }
    [JsonConverter(typeof(Rounded3))]
    public double Seconds { get; init; }
    /// <summary>Of <see cref="Seconds"/>, the time spent in the store's appends (batches with their projection rows) and snapshots.</summary>
    [JsonConverter(typeof(Rounded3))]
    public double StoreSeconds { get; init; }

    [JsonConverter(typeof(Rounded1))]
    public double LinesPerSecond => Seconds > 0 ? Lines / Seconds : 0;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, // dictionary keys (op names, skip reasons) stay as they are
    };

    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, Json)!.AsObject();

    public static ImportResult FromJson(JsonObject j) =>
        j.Deserialize<ImportResult>(Json) ?? throw new JsonException("an import summary is null");

    private sealed class Rounded3 : RoundedDouble { protected override int Digits => 3; }
    private sealed class Rounded1 : RoundedDouble { protected override int Digits => 1; }

    private abstract class RoundedDouble : JsonConverter<double>
    {
        protected abstract int Digits { get; }
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();
        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(Math.Round(value, Digits));
    }
}
