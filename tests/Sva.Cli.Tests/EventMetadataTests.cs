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

    [Fact]
    public void the_recorders_rule_and_distance_are_written_in_jsonb_key_order_and_read_alike_by_parse_and_the_provenance_reader()
    {
        var call = ScriptParser.Parse("device 00:03.0 pasids=8\n", "k.sva").Lines[0].Call;
        var cmd = Guid.CreateVersion7();
        var texts = new[]
        {
            new EventMetadata(cmd, "k.sva:1", call) { HasRule = true, Rule = "sim.ok", KernelDefinition = "base 6.8\n" }.ToJson(),
            new EventMetadata(cmd, "k.sva:1", call) { HasRule = true, Rule = null }.ToJson(),         // a call no rule decided
            new EventMetadata(cmd, "k.sva:1") { CallOffset = 3 }.ToJson(),                            // a later event of the call
            new EventMetadata(cmd, "k.sva:1", call).ToJson(),                                         // written before: no rule
            new EventMetadata(cmd, "k.sva:1") { CallOffset = 0, Rule = "x" }.ToJson(),                // neither is written
            // hand-written: escaped keys, other value kinds, nested objects to skip, a call this version cannot build
            "{\"sour\\u0063e\":\"k.sva:2\",\"call\":{\"x\":{\"op\":\"no\"},\"op\":\"teleport\",\"y\":[1,{\"op\":2}]},\"rule\":5,\"first\":1.5}",
            "{\"source\":7,\"call\":\"device\",\"rule\":null,\"first\":2,\"import\":{\"batch\":1,\"items\":2}}",
        };
        foreach (var text in texts)
        {
            var keys = JsonNode.Parse(text)!.AsObject().Select(kv => kv.Key).ToList();
            if (!text.Contains("\\u0063", StringComparison.Ordinal) && !text.StartsWith("{\"source\":7", StringComparison.Ordinal))
                Assert.Equal(keys.OrderBy(k => k.Length).ThenBy(k => k, StringComparer.Ordinal), keys);
            var p = EventMetadata.Parse(text);
            var f = EventMetadata.ReadProvenance(text);
            var o = JsonNode.Parse(text)!.AsObject();
            var op = o["call"] is JsonObject c && c["op"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            Assert.Equal((p.Source, o["call"] is JsonObject, op, p.HasRule, p.Rule, p.CallOffset), (f.Source, f.HasCall, f.Op, f.HasRule, f.Rule, f.CallOffset));
        }
        Assert.Equal(("sim.ok", true, (int?)null), (EventMetadata.Parse(texts[0]).Rule, EventMetadata.Parse(texts[0]).HasRule, EventMetadata.Parse(texts[0]).CallOffset));
        Assert.Equal((null, true), (EventMetadata.Parse(texts[1]).Rule, EventMetadata.Parse(texts[1]).HasRule));
        Assert.Equal((3, false), (EventMetadata.Parse(texts[2]).CallOffset, EventMetadata.Parse(texts[2]).HasRule));
        Assert.False(EventMetadata.Parse(texts[3]).HasRule);
        Assert.Equal((false, (int?)null), (EventMetadata.Parse(texts[4]).HasRule, EventMetadata.Parse(texts[4]).CallOffset));
        Assert.Equal(("k.sva:2", "teleport", false), (EventMetadata.ReadProvenance(texts[5]).Source, EventMetadata.ReadProvenance(texts[5]).Op, EventMetadata.ReadProvenance(texts[5]).HasRule));
        foreach (var bad in new[] { "[1]", "\"x\"", "{\"source\":", "not json" })
            Assert.Throws<EventFormatException>(() => EventMetadata.ReadProvenance(bad));
    }

    private static JsonObject Reorder(JsonObject o)
    {
        var sorted = new JsonObject();
        foreach (var kv in o.OrderBy(kv => kv.Key.Length).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList())
            sorted[kv.Key] = kv.Value?.DeepClone();
        return sorted;
    }
}
