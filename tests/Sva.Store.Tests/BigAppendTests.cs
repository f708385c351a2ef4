using System.Diagnostics;
using System.Text.Json.Nodes;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class BigAppendTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task Hundred_thousand_events_in_one_append_take_the_copy_path_and_read_back_identically()
    {
        const int n = 100_000;
        var id = await f.NewSessionAsync("big");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(1, "Head"));
        var events = Enumerable.Range(0, n)
            .Select(i => new NewEvent(i % 3 == 0 ? "IotlbInvalidate" : "PageFault",
                $$"""{"pasid":{{i % 1000}}, "addr":"0x{{(0x7f000000L + i * 4096L):x}}","i":{{i}},"flags":["r","w"],"s":"ü\"\\{{i}}"}""",
                i % 2 == 0 ? "{}" : $$"""{"cpu": {{i % 2}}}"""))
            .ToList();

        var sw = Stopwatch.StartNew();
        var r = await f.Store.AppendAsync(id, 1, Guid.NewGuid(), events);
        var appendTime = sw.Elapsed;
        Assert.Equal((2L, n + 1L), (r.FirstSeq, r.LastSeq));
        Assert.Equal(r.FirstPosition + n - 1, r.LastPosition);

        sw.Restart();
        var read = await f.ReadSessionAsync(id);
        var readTime = sw.Elapsed;
        Assert.Equal(n + 1, read.Count);
        var body = read.Skip(1).ToList();
        Assert.Equal(Enumerable.Range(2, n).Select(i => (long)i), body.Select(e => e.Seq));
        Assert.Equal(Enumerable.Range(0, n).Select(i => r.FirstPosition + i), body.Select(e => e.Position));
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(events[i].Type, body[i].Type);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(events[i].DataJson), JsonNode.Parse(body[i].DataJson)), $"data of #{i} differs: {body[i].DataJson}");
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(events[i].MetadataJson), JsonNode.Parse(body[i].MetadataJson)), $"metadata of #{i} differs");
        }

        Assert.Contains("ü", body[0].DataJson);
        var verify = await f.Store.VerifyAsync(id);
        Assert.True(verify.Ok, verify.Reason);
        Assert.Equal(n + 1, verify.EventsChecked);
        Console.WriteLine($"append {n} events: {appendTime.TotalMilliseconds:F0} ms, read back: {readTime.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public async Task Copy_path_and_insert_path_agree_at_the_threshold()
    {
        var id = await f.NewSessionAsync("threshold");
        var a = await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(PgEventStore.CopyThreshold));
        var b = await f.Store.AppendAsync(id, a.LastSeq, Guid.NewGuid(), StoreFixture.Events(PgEventStore.CopyThreshold + 1, offset: 1000));
        var c = await f.Store.AppendAsync(id, b.LastSeq, Guid.NewGuid(), StoreFixture.Events(1, offset: 5000));
        Assert.Equal(2 * PgEventStore.CopyThreshold + 2, c.LastSeq);
        var read = await f.ReadSessionAsync(id);
        Assert.Equal(Enumerable.Range(1, read.Count).Select(i => (long)i), read.Select(e => e.Seq));
        Assert.Equal("""{"i": 1000, "name": "e1000"}""", read[PgEventStore.CopyThreshold].DataJson);
        Assert.True((await f.Store.VerifyAsync(id)).Ok);
    }
}
