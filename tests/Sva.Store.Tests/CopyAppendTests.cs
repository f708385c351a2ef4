using Sva.EventStore;

namespace Sva.Store.Tests;

/// <summary>Big appends (at least <see cref="MartenEventStore.CopyAppendMinEvents"/> events to an existing session) are
/// written with COPY into Marten's tables: the same rows Marten's append function writes, the chain, the snapshots and the
/// progress record in the same transaction, and the same concurrency and idempotency.</summary>
public sealed class CopyAppendTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    private static int Big => Math.Max(MartenEventStore.CopyAppendMinEvents, 1) + 44;

    private AppendBatch Batch(string s, long expected, int n, Guid? cmd = null, long? snapshotAt = null, string? progress = null)
    {
        var command = cmd ?? Guid.NewGuid();
        return new AppendBatch(s, expected, command, StoreFixture.Events(n, (int)expected + 1, command))
        {
            Snapshots = snapshotAt is { } at ? [new SnapshotToSave(at, $"{{\"seq\":{at},\"s\":\"{s}\"}}")] : [],
            Progress = progress is null ? null : new SourceProgress(progress, s, "run", Complete: false, $"{{\"at\":{expected + n}}}"),
        };
    }

    private Task<string> Shape(string s) => f.ScalarAsync<string>(
        $"SELECT string_agg(concat_ws('|', version, type, tenant_id, mt_dotnet_type, is_archived, bdata IS NULL, timestamp IS NOT NULL, headers->>'chain', data->>'name', id IS NOT NULL), ';' ORDER BY version) FROM mt_events WHERE stream_id = '{s}'");

    [Fact]
    public async Task a_big_append_writes_by_copy_the_rows_marten_writes_with_its_snapshot_and_progress()
    {
        Assert.True(MartenEventStore.CopyAppendMinEvents > 0, "the COPY path is off");
        var s = StoreFixture.NewSession("copy");
        await f.AppendAsync(s, 0, 2); // creates the session (Marten's session path)
        var big = Big;
        var r = await f.Store.AppendAsync(Batch(s, 2, big, snapshotAt: 2 + big / 2, progress: $"run|{s}|x"));
        Assert.Equal((3L, 2L + big, false), (r.FirstSeq, r.LastSeq, r.Duplicate));
        var after = await f.AppendAsync(s, 2 + big, 3); // a small one after it: Marten's function
        var n = 5 + big;
        var shape = $"test_event|*DEFAULT*|{typeof(TestEvent).FullName}, {typeof(TestEvent).Assembly.GetName().Name}|f|t|t|2";
        Assert.Equal(string.Join(';', Enumerable.Range(1, n).Select(v => $"{v}|{shape}|e{v}|t")), await Shape(s));
        Assert.Equal((long)n, await f.ScalarAsync<long>($"SELECT version FROM mt_streams WHERE id = '{s}'"));
        // the sequence numbers: increasing with the version, the COPY's taken as one run
        Assert.Equal(0L, await f.ScalarAsync<long>(
            $"SELECT count(*) FROM (SELECT seq_id, lag(seq_id) OVER (ORDER BY version) AS p FROM mt_events WHERE stream_id = '{s}') x WHERE p IS NOT NULL AND seq_id <= p"));
        Assert.Equal(r.LastPosition - r.FirstPosition, big - 1);
        Assert.True(after.FirstPosition > r.LastPosition);
        // the chain holds (the snapshot's digest in it), the snapshot loads, the progress record is there
        var v = await f.Store.VerifyAsync(s);
        Assert.True(v.Ok, v.Reason);
        var snap = await f.Store.LoadSnapshotAsync(s, n);
        Assert.Equal(2 + big / 2, snap!.Seq);
        Assert.Equal($"{{\"at\":{2 + big}}}", (await f.Store.FindSourceAsync($"run|{s}|x"))!.Json);
        // events read back as written
        var read = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(s, 3, 2 + big)) read.Add(e);
        Assert.Equal(Enumerable.Range(3, big).Select(i => (long)i), read.Select(e => e.Seq));
        Assert.All(read, e => Assert.Equal(r.FirstPosition + e.Seq - 3, e.Position));
    }

    [Fact]
    public async Task a_stale_big_append_is_a_conflict_and_writes_no_event_snapshot_or_progress()
    {
        var s = StoreFixture.NewSession("copystale");
        await f.AppendAsync(s, 0, 4);
        var before = await f.ScalarAsync<long>("SELECT last_value FROM mt_events_sequence");
        var ex = await Assert.ThrowsAsync<ConcurrencyException>(() => f.Store.AppendAsync(Batch(s, 3, Big, snapshotAt: 10, progress: $"run|{s}|stale")));
        Assert.Equal((3L, 4L), (ex.Expected, ex.Actual));
        Assert.Equal(4L, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_events WHERE stream_id = '{s}'"));
        Assert.Equal(0L, await f.ScalarAsync<long>($"SELECT count(*) FROM sva_snapshots WHERE session = '{s}'"));
        Assert.Null(await f.Store.FindSourceAsync($"run|{s}|stale"));
        Assert.Equal(4L, await f.ScalarAsync<long>($"SELECT version FROM mt_streams WHERE id = '{s}'"));
        // the version check comes before the sequence numbers are taken: a refused append burns none
        Assert.Equal(before, await f.ScalarAsync<long>("SELECT last_value FROM mt_events_sequence"));
        // an unknown session: not found, nothing written
        await Assert.ThrowsAsync<SessionNotFoundException>(() => f.Store.AppendAsync(Batch(StoreFixture.NewSession("copynone"), 5, Big)));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
    }

    [Fact]
    public async Task a_retried_big_command_returns_its_seqs_and_appends_nothing()
    {
        var s = StoreFixture.NewSession("copyidem");
        await f.AppendAsync(s, 0, 1);
        var cmd = Guid.NewGuid();
        var first = await f.Store.AppendAsync(Batch(s, 1, Big, cmd));
        var again = await f.Store.AppendAsync(Batch(s, 1, Big, cmd));          // stale version: the same command
        var again2 = await f.Store.AppendAsync(Batch(s, 1 + Big, Big, cmd));   // current version: collides on the event ids
        Assert.True(again.Duplicate && again2.Duplicate && !first.Duplicate);
        Assert.Equal((first.FirstSeq, first.LastSeq, first.FirstPosition, first.LastPosition), (again.FirstSeq, again.LastSeq, again.FirstPosition, again.LastPosition));
        Assert.Equal((first.FirstSeq, first.LastSeq), (again2.FirstSeq, again2.LastSeq));
        Assert.Equal(1L + Big, (await f.Store.GetSessionAsync(s))!.Version);
        Assert.Equal(1L + Big, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_events WHERE stream_id = '{s}'"));
    }

    [Fact]
    public async Task four_writers_racing_with_big_appends_on_one_session_leave_it_gap_free()
    {
        var s = StoreFixture.NewSession("copyrace");
        await f.AppendAsync(s, 0, 1);
        var written = 0;
        var conflicts = 0;
        async Task Writer()
        {
            for (var k = 0; k < 3; k++)
                while (true)
                {
                    var v = (await f.Store.GetSessionAsync(s))!.Version;
                    try { await f.Store.AppendAsync(Batch(s, v, Big)); Interlocked.Add(ref written, Big); break; }
                    catch (ConcurrencyException) { Interlocked.Increment(ref conflicts); }
                }
        }
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(Writer)));
        Assert.Equal(12 * Big, written);
        var n = 1L + 12 * Big;
        Assert.Equal(n, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_events WHERE stream_id = '{s}'"));
        Assert.Equal(n, await f.ScalarAsync<long>($"SELECT max(version) FROM mt_events WHERE stream_id = '{s}'"));
        Assert.Equal(n, await f.ScalarAsync<long>($"SELECT version FROM mt_streams WHERE id = '{s}'"));
        var v = await f.Store.VerifyAsync(s);
        Assert.True(v.Ok, v.Reason);
    }
}
