using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sva.Commands;
using Sva.Formats.Import;

namespace Sva.Import.Tests;

/// <summary>
/// The import result's JSON (System.Text.Json, snake_case) keeps the member names, order and values the hand-written codec
/// wrote: the CLI's <c>import --json</c> and the summaries stored in import registry documents by earlier releases.
/// </summary>
public sealed class ImportResultJsonTests
{
    private static readonly JsonSerializerOptions Cli = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static ImportResult Sample() => new()
    {
        Session = "cap-3f2a9c1e-6.8", Kernel = "6.8", File = "cap.txt", Format = "ftrace", ContentHash = "3f2a9c1e",
        Lines = 10, Recognized = 7, Skipped = 3,
        SkippedByReason = new Dictionary<string, long> { ["malformed"] = 2, ["Comment Line"] = 1 },
        Events = 12, Appended = 12, Calls = 5, InferredCalls = 1,
        CallsByOp = new Dictionary<string, long> { ["bind"] = 3, ["iommu_sva_unbind_device"] = 2 },
        FailureCount = 1, Failures = [new ImportFailure(4, "cap.txt:4", "bind", "-22 EINVAL"), new ImportFailure(9, null, "?", "x")],
        ConformanceChecked = 6, MismatchCount = 1,
        Mismatches = [new ConformanceFinding("conformance", 3, "c:3", "said <ok> \"here\"", 2, "c:2"), new ConformanceFinding("k", 5, null, "m")],
        Devices = 2, Pasids = 3, Batches = 1, ResumedAfterBatch = null, AlreadyImported = false,
        Seconds = 1.23456, StoreSeconds = 0.5,
    };

    private const string Expected =
        "{\"session\":\"cap-3f2a9c1e-6.8\",\"kernel\":\"6.8\",\"file\":\"cap.txt\",\"format\":\"ftrace\",\"content_hash\":\"3f2a9c1e\"," +
        "\"lines\":10,\"recognized\":7,\"skipped\":3,\"skipped_by_reason\":{\"malformed\":2,\"Comment Line\":1}," +
        "\"events\":12,\"appended\":12,\"calls\":5,\"inferred_calls\":1,\"calls_by_op\":{\"bind\":3,\"iommu_sva_unbind_device\":2}," +
        "\"failures\":1,\"failure_list\":[{\"seq\":4,\"source\":\"cap.txt:4\",\"op\":\"bind\",\"reason\":\"-22 EINVAL\"},{\"seq\":9,\"source\":null,\"op\":\"?\",\"reason\":\"x\"}]," +
        "\"conformance_checked\":6,\"mismatches\":1," +
        "\"conformance\":[{\"kind\":\"conformance\",\"seq\":3,\"line\":\"c:3\",\"message\":\"said <ok> \\\"here\\\"\",\"simulated_seq\":2,\"simulated_line\":\"c:2\"}," +
        "{\"kind\":\"k\",\"seq\":5,\"line\":null,\"message\":\"m\",\"simulated_seq\":null,\"simulated_line\":null}]," +
        "\"devices\":2,\"pasids\":3,\"batches\":1,\"resumed_after_batch\":null,\"already_imported\":false," +
        "\"seconds\":1.235,\"store_seconds\":0.5,\"lines_per_second\":8.1}";

    [Fact]
    public void the_cli_json_keeps_the_names_order_and_rounded_values()
    {
        Assert.Equal(Expected, Sample().ToJson().ToJsonString(Cli));
    }

    [Fact]
    public void a_summary_reads_back_and_an_older_summary_without_the_late_members_reads_too()
    {
        var back = ImportResult.FromJson(JsonNode.Parse(Expected)!.AsObject());
        Assert.Equal(Expected, back.ToJson().ToJsonString(Cli));
        Assert.Equal(new ConformanceFinding("k", 5, null, "m"), back.Mismatches[1]);

        // a summary as an earlier release stored it (no already_imported / seconds / store_seconds), keys in jsonb order
        var old = JsonNode.Parse(Expected)!.AsObject();
        old.Remove("already_imported"); old.Remove("seconds"); old.Remove("store_seconds");
        var r = ImportResult.FromJson(old);
        Assert.False(r.AlreadyImported);
        Assert.Equal(0, r.Seconds);
        Assert.Equal(12, r.Events);
        Assert.Equal(2, r.CallsByOp["iommu_sva_unbind_device"]);
        Assert.Equal("-22 EINVAL", r.Failures[0].Reason);
    }
}
