using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class InlineProjectionTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    /// <summary>Writes a row into projection_checkpoints (the read-model table at hand) and records what it saw.</summary>
    private sealed class CheckpointProjection(string name, StoreFixture f) : IInlineProjection
    {
        public string Name => name;
        public List<StoredEvent> Seen { get; } = [];
        public long CountInsideTransaction { get; private set; } = -1;
        public long CountFromOtherConnection { get; private set; } = -1;

        public async Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct)
        {
            Seen.AddRange(events);
            var session = events[0].Session;
            await using (var cmd = new NpgsqlCommand(
                             "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, now()) "
                             + "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", connection))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = name });
                cmd.Parameters.Add(new NpgsqlParameter { Value = events[^1].Position });
                await cmd.ExecuteNonQueryAsync(ct);
            }

            await using (var cmd = new NpgsqlCommand("SELECT count(*) FROM events WHERE session = $1", connection))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = session });
                CountInsideTransaction = (long)(await cmd.ExecuteScalarAsync(ct))!;
            }

            await using var other = await f.OpenAsync();
            await using (var cmd = new NpgsqlCommand("SELECT count(*) FROM events WHERE session = $1", other))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = session });
                CountFromOtherConnection = (long)(await cmd.ExecuteScalarAsync(ct))!;
            }
        }
    }

    private sealed class Throwing : IInlineProjection
    {
        public string Name => "throwing";
        public bool Called { get; private set; }

        public Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct)
        {
            Called = true;
            throw new InvalidOperationException("boom from the projection");
        }
    }

    [Fact]
    public async Task Inline_projection_runs_inside_the_append_transaction()
    {
        var name = $"test-inline-{Guid.NewGuid():N}";
        var projection = new CheckpointProjection(name, f);
        await using var store = PgEventStore.Create(f.ConnectionString, [projection]);
        var id = await f.NewSessionAsync("inline");

        var r = await store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(3));

        Assert.Equal([1L, 2, 3], projection.Seen.Select(e => e.Seq));
        Assert.Equal(Enumerable.Range(0, 3).Select(i => r.FirstPosition + i), projection.Seen.Select(e => e.Position));
        Assert.Equal(3, projection.CountInsideTransaction); // sees its own transaction's inserts ...
        Assert.Equal(0, projection.CountFromOtherConnection); // ... which nobody else sees before commit
        Assert.Equal(r.LastPosition, await f.Store.LoadCheckpointAsync(name));
        // What the projection saw is what is stored (hashes, normalized data, recorded_at).
        var stored = await f.ReadSessionAsync(id);
        Assert.Equal(stored.Select(e => (e.Seq, e.DataJson, e.MetadataJson, Convert.ToHexString(e.Hash), e.RecordedAt, e.CommandId)),
            projection.Seen.Select(e => (e.Seq, e.DataJson, e.MetadataJson, Convert.ToHexString(e.Hash), e.RecordedAt, e.CommandId)));
    }

    [Theory]
    [InlineData(2)] // INSERT path
    [InlineData(250)] // COPY path
    public async Task Throwing_inline_projection_leaves_nothing(int count)
    {
        var name = $"test-inline-{Guid.NewGuid():N}";
        var before = new CheckpointProjection(name, f);
        var throwing = new Throwing();
        await using var store = PgEventStore.Create(f.ConnectionString, [before, throwing]);
        var id = await f.NewSessionAsync("inline-throw");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(1));
        var cmd = Guid.NewGuid();

        var ex = await Assert.ThrowsAsync<InlineProjectionException>(() => store.AppendAsync(id, 1, cmd, StoreFixture.Events(count)));
        Assert.Equal("throwing", ex.Projection);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        Assert.True(throwing.Called);
        Assert.Equal(1 + count, before.CountInsideTransaction); // the events had been inserted ...

        var session = await f.Store.GetSessionAsync(id);
        Assert.Equal(1, session!.Version); // ... and are all gone, as is the version bump,
        Assert.Equal([1L], (await f.ReadSessionAsync(id)).Select(e => e.Seq));
        Assert.Null(await f.Store.LoadCheckpointAsync(name)); // the other projection's write,
        var retry = await f.Store.AppendAsync(id, 1, cmd, StoreFixture.Events(count)); // and the command id record.
        Assert.False(retry.Duplicate);
        Assert.Equal(2, retry.FirstSeq);
        Assert.True((await f.Store.VerifyAsync(id)).Ok);
    }
}
