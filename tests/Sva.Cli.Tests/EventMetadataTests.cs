using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.Formats.Script;
using Sva.Projections;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>Event metadata has one reader (<see cref="EventMetadata.Parse"/>): it reads what chain version 1 stored (the
/// writer's text, "cmd" first) and what version 2 stores (a JSON value read back in jsonb's key order), and the recorded
/// calls that compare and corpus re-decide come from it.</summary>
public sealed class EventMetadataTests
{
    [Fact]
    public void recorded_calls_are_read_back_from_event_metadata_first_event_of_each_call_only()
    {
        var script = ScriptParser.Parse("device 00:03.0 pasids=8\nmm m1\nbind q1 00:03.0 m1\n", "r.sva");
        var metadata = new List<(long, string)>();
        var seq = 0L;
        var s = new SvaState();
        foreach (var l in script.Lines)
        {
            var events = SvaKernel.Execute(KernelVersions.Get("6.8"), s, l.Call);
            for (var i = 0; i < events.Count; i++)
            {
                var o = new JsonObject { ["cmd"] = "x", ["source"] = l.Source };
                // jsonb renders shorter keys first, so "op" is not first in the stored call.
                if (i == 0) o["call"] = Reorder(JsonNode.Parse(SvaJson.SerializeCall(l.Call))!.AsObject());
                metadata.Add((++seq, o.ToJsonString()));
            }
        }
        metadata.Add((++seq, "{\"cmd\":\"import\"}"));
        var calls = EventMetadata.RecordedCalls(metadata);
        Assert.Equal(script.Lines.Select(l => l.Call), calls.Select(c => c.Call));
        Assert.Equal([1, 2, 3], calls.Select(c => c.Line!.Value));
        Assert.Equal(1, calls[0].Seq);
        Assert.True(calls[2].Seq > calls[1].Seq);
    }

    [Fact]
    public void an_unreadable_call_is_an_event_format_error_naming_the_seq_for_readers_of_calls_only()
    {
        var ex = Assert.Throws<EventFormatException>(() => EventMetadata.RecordedCalls([(7, "{\"call\":{\"op\":\"teleport\"}}")]));
        Assert.StartsWith("seq 7:", ex.Message);
        var m = EventMetadata.Parse("{\"source\":\"x.sva:3\",\"call\":{\"op\":\"teleport\"}}");
        Assert.Equal(("x.sva:3", (KernelCall?)null), (m.Source, m.Call));
        Assert.NotNull(m.UnreadableCall);
        Assert.Throws<EventFormatException>(() => EventMetadata.RecordedCall(1, "not json"));
    }

    [Fact]
    public void both_stored_shapes_read_to_the_same_record_and_the_writer_uses_jsonb_key_order()
    {
        var script = ScriptParser.Parse("device 00:03.0 pasids=8\n", "k.sva");
        var cmd = Guid.CreateVersion7();
        var m = new EventMetadata(cmd, "k.sva:1", script.Lines[0].Call, Inferred: true, CaptureTimestamp: 12.5, new ImportCheckpoint(3, 40))
        {
            KernelDefinition = "base 6.8\n",
        };
        var written = m.ToJson();
        var keys = JsonNode.Parse(written)!.AsObject().Select(kv => kv.Key).ToList();
        Assert.Equal(keys.OrderBy(k => k.Length).ThenBy(k => k, StringComparer.Ordinal), keys);
        // chain 1 stored the writer's text in its old order ("cmd" first)
        var v1 = $"{{\"cmd\":\"{cmd}\",\"source\":\"k.sva:1\",\"ts\":12.5,\"call\":{SvaJson.SerializeCall(script.Lines[0].Call)},\"inferred\":true," +
                 "\"kernel\":{\"v\":1,\"def\":\"base 6.8\\n\"},\"import\":{\"batch\":3,\"items\":40}}";
        foreach (var text in new[] { written, v1 })
        {
            var r = EventMetadata.Parse(text);
            Assert.Equal((cmd, "k.sva:1", script.Lines[0].Call, true, (double?)12.5, new ImportCheckpoint(3, 40), "base 6.8\n"),
                (r.Command, r.Source, r.Call, r.Inferred, r.CaptureTimestamp, r.Import, r.KernelDefinition));
        }
    }

    private static JsonObject Reorder(JsonObject o)
    {
        var sorted = new JsonObject();
        foreach (var kv in o.OrderBy(kv => kv.Key.Length).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList())
            sorted[kv.Key] = kv.Value?.DeepClone();
        return sorted;
    }
}
