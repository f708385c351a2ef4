using System.Collections.Concurrent;
using System.Text.Json;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class ConcurrencyTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    private sealed record Written(string Session, string Marker);

    /// <summary>Appends <paramref name="appends"/> batches of 1-3 events, retrying on conflicts with the actual version.</summary>
    private async Task<int> WriterAsync(PgEventStore store, int writer, int appends, string[] sessions, ConcurrentBag<Written> written)
    {
        var rng = new Random(writer);
        var conflicts = 0;
        for (var a = 0; a < appends; a++)
        {
            var session = sessions[(writer + a) % sessions.Length];
            var n = rng.Next(1, 4);
            var markers = Enumerable.Range(0, n).Select(k => $"w{writer}-a{a}-k{k}").ToList();
            var events = markers.Select(m => new NewEvent("Concurrent", $$"""{"marker": "{{m}}", "writer": {{writer}}}""")).ToList();
            var expected = (await store.GetSessionAsync(session))!.Version;
            var cmd = Guid.NewGuid();
            while (true)
            {
                try
                {
                    var r = await store.AppendAsync(session, expected, cmd, events);
                    Assert.False(r.Duplicate);
                    Assert.Equal(expected + 1, r.FirstSeq);
                    break;
                }
                catch (ConcurrencyException ex)
                {
                    Assert.Equal(expected, ex.Expected);
                    Assert.NotEqual(expected, ex.Actual);
                    expected = ex.Actual;
                    conflicts++;
                }
            }

            foreach (var m in markers) written.Add(new Written(session, m));
        }

        return conflicts;
    }

    private static string Marker(StoredEvent e) => JsonDocument.Parse(e.DataJson).RootElement.GetProperty("marker").GetString()!;

    [Fact]
    public async Task Concurrent_appenders_never_gap_duplicate_or_lose()
    {
        var sessions = new[] { await f.NewSessionAsync("conc-a"), await f.NewSessionAsync("conc-b") };
        var headBefore = await f.Store.ReadHeadPositionAsync();
        var written = new ConcurrentBag<Written>();

        var conflicts = await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() => WriterAsync(f.Store, w, 50, sessions, written))));
        var headAfter = await f.Store.ReadHeadPositionAsync();

        Assert.InRange(written.Count, 8 * 50, 8 * 50 * 3); // every one of the 400 appends recorded its 1..3 events
        Assert.True(conflicts.Sum() > 0, "8 writers on 2 sessions should have conflicted at least once");

        foreach (var session in sessions)
        {
            var events = await f.ReadSessionAsync(session);
            var mine = written.Where(w => w.Session == session).Select(w => w.Marker).ToList();
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq)); // 1..N, gap-free
            Assert.Equal(mine.Count, events.Count); // no loss, no extra
            Assert.Equal(mine.Order(StringComparer.Ordinal), events.Select(Marker).Order(StringComparer.Ordinal)); // same set, no duplicates
            Assert.Equal(events.Count, (await f.Store.GetSessionAsync(session))!.Version);
            Assert.True((await f.Store.VerifyAsync(session)).Ok);
        }

        // Globally (whoever else appended meanwhile): positions headBefore+1 .. headAfter, each exactly once, in order.
        var all = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadAllAsync(headBefore + 1, headAfter)) all.Add(e);
        Assert.Equal(Enumerable.Range(0, (int)(headAfter - headBefore)).Select(i => headBefore + 1 + i), all.Select(e => e.Position));
        var ours = all.Where(e => sessions.Contains(e.Session)).ToList();
        Assert.Equal(written.Count, ours.Count);
        // Within a session, position order is seq order.
        foreach (var session in sessions)
        {
            var seqs = ours.Where(e => e.Session == session).Select(e => e.Seq).ToList();
            Assert.Equal(seqs.Order(), seqs);
        }
    }

    [Fact]
    public async Task Polling_reader_never_misses_an_event()
    {
        var sessions = new[] { await f.NewSessionAsync("poll-a"), await f.NewSessionAsync("poll-b"), await f.NewSessionAsync("poll-c") };
        var checkpoint = await f.Store.ReadHeadPositionAsync();
        var written = new ConcurrentBag<Written>();
        var seen = new List<StoredEvent>();
        var gaps = new List<string>();
        using var stop = new CancellationTokenSource();

        async Task PollOnceAsync()
        {
            await foreach (var e in f.Store.ReadAllAsync(checkpoint + 1))
            {
                if (e.Position != checkpoint + 1) gaps.Add($"after {checkpoint} came {e.Position}");
                checkpoint = e.Position;
                seen.Add(e);
            }
        }

        var reader = Task.Run(async () =>
        {
            var polls = 0;
            while (!stop.IsCancellationRequested)
            {
                await PollOnceAsync();
                polls++;
            }

            return polls;
        });

        // A slow-committing writer: its transaction (holding the position lock) stays open while readers poll.
        var slow = PgEventStore.Create(f.ConnectionString, [new SlowProjection()]);
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() => WriterAsync(f.Store, 100 + w, 40, sessions, written)))
            .Append(Task.Run(() => WriterAsync(slow, 200, 10, sessions, written)))
            .ToArray();
        await Task.WhenAll(writers);
        await stop.CancelAsync();
        var polls = await reader;
        await PollOnceAsync(); // final catch-up
        await slow.DisposeAsync();

        Assert.True(polls > 3, $"the reader polled only {polls} times while writers ran");
        Assert.Empty(gaps);
        var seenOurs = seen.Where(e => sessions.Contains(e.Session)).Select(e => (e.Session, Marker(e))).ToList();
        Assert.Equal(seenOurs.Distinct().Count(), seenOurs.Count);
        Assert.Equal(written.Select(w => (w.Session, w.Marker)).Order(), seenOurs.Order());
    }

    private sealed class SlowProjection : IInlineProjection
    {
        public string Name => "slow";

        public Task ApplyAsync(Npgsql.NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct) =>
            Task.Delay(30, ct);
    }
}
