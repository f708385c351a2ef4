using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class AppendReadTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task Create_append_and_read_back()
    {
        var id = StoreFixture.NewSessionId("rw");
        var created = await f.Store.CreateSessionAsync(id, "6.9.1", "trace.jsonl");
        Assert.Equal(id, created.Id);
        Assert.Equal(0, created.Version);

        var first = new List<NewEvent>
        {
            new("DeviceBound", """{"dev": "0000:00:02.0", "pasid": 1}""", """{"by": "test"}"""),
            new("MmAttached", """{"mm": 4096}"""),
        };
        var r1 = await f.Store.AppendAsync(id, 0, Guid.NewGuid(), first);
        Assert.False(r1.Duplicate);
        Assert.Equal((1L, 2L), (r1.FirstSeq, r1.LastSeq));
        Assert.Equal(r1.FirstPosition + 1, r1.LastPosition);

        var r2 = await f.Store.AppendAsync(id, 2, Guid.NewGuid(), StoreFixture.Events(3, "PageFault"));
        Assert.Equal((3L, 5L), (r2.FirstSeq, r2.LastSeq));
        Assert.Equal(r2.FirstPosition + 2, r2.LastPosition);
        Assert.True(r2.FirstPosition > r1.LastPosition);

        var read = await f.ReadSessionAsync(id);
        Assert.Equal([1L, 2, 3, 4, 5], read.Select(e => e.Seq));
        Assert.Equal(["DeviceBound", "MmAttached", "PageFault", "PageFault", "PageFault"], read.Select(e => e.Type));
        Assert.Equal("""{"dev": "0000:00:02.0", "pasid": 1}""", read[0].DataJson);
        Assert.Equal("""{"by": "test"}""", read[0].MetadataJson);
        Assert.Equal("{}", read[1].MetadataJson);
        Assert.Equal("""{"i": 2, "name": "e2"}""", read[4].DataJson);
        Assert.All(read, e => Assert.Equal(id, e.Session));
        Assert.All(read, e => Assert.Equal(32, e.Hash.Length));
        Assert.Equal([r1.FirstPosition, r1.LastPosition, r2.FirstPosition, r2.FirstPosition + 1, r2.LastPosition], read.Select(e => e.Position));
        for (var i = 1; i < read.Count; i++) Assert.True(read[i].Position > read[i - 1].Position);
        Assert.True(read[0].CommandId.HasValue && read[0].CommandId == read[1].CommandId && read[2].CommandId != read[0].CommandId);
        Assert.True(DateTimeOffset.UtcNow - read[0].RecordedAt < TimeSpan.FromMinutes(5));

        var session = await f.Store.GetSessionAsync(id);
        Assert.NotNull(session);
        Assert.Equal(5, session.Version);
        Assert.Equal(("6.9.1", "trace.jsonl"), (session.Kernel, session.Source));

        // Range reads.
        var mid = new List<long>();
        await foreach (var e in f.Store.ReadSessionAsync(id, 2, 4)) mid.Add(e.Seq);
        Assert.Equal([2L, 3, 4], mid);
        var all = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadAllAsync(r1.FirstPosition, r2.LastPosition)) all.Add(e);
        Assert.Equal(read.Select(e => e.Position), all.Where(e => e.Session == id).Select(e => e.Position));
        Assert.True(await f.Store.ReadHeadPositionAsync() >= r2.LastPosition);
    }

    [Fact]
    public async Task Sessions_create_get_list_and_duplicate_create()
    {
        var id = StoreFixture.NewSessionId("sess");
        await f.Store.CreateSessionAsync(id, "6.1", null);
        var ex = await Assert.ThrowsAsync<SessionExistsException>(() => f.Store.CreateSessionAsync(id, "other", "x"));
        Assert.Contains(id, ex.Message);
        var got = await f.Store.GetSessionAsync(id);
        Assert.Equal(("6.1", (string?)null, 0L), (got!.Kernel, got.Source, got.Version));
        Assert.Null(await f.Store.GetSessionAsync(StoreFixture.NewSessionId("missing")));
        Assert.Contains(await f.Store.ListSessionsAsync(), s => s.Id == id && s.Kernel == "6.1");
    }

    [Fact]
    public async Task Optimistic_conflict_is_typed_and_writes_nothing()
    {
        var id = await f.NewSessionAsync("conflict");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(2));

        var ex = await Assert.ThrowsAsync<ConcurrencyException>(() => f.Store.AppendAsync(id, 1, Guid.NewGuid(), StoreFixture.Events(3)));
        Assert.Equal((id, 1L, 2L), (ex.Session, ex.Expected, ex.Actual));
        Assert.Contains(id, ex.Message);
        Assert.Contains("expected version (last seq) 1", ex.Message);
        Assert.Contains("actual 2", ex.Message);

        // Ahead of the real version is a conflict too.
        var ahead = await Assert.ThrowsAsync<ConcurrencyException>(() => f.Store.AppendAsync(id, 7, Guid.NewGuid(), StoreFixture.Events(1)));
        Assert.Equal((7L, 2L), (ahead.Expected, ahead.Actual));

        Assert.Equal(2, (await f.Store.GetSessionAsync(id))!.Version);
        Assert.Equal([1L, 2], (await f.ReadSessionAsync(id)).Select(e => e.Seq));
        Assert.True((await f.Store.VerifyAsync(id)).Ok);
    }

    [Fact]
    public async Task Append_to_missing_session_is_a_clear_error()
    {
        var id = StoreFixture.NewSessionId("nosuch");
        var ex = await Assert.ThrowsAsync<SessionNotFoundException>(() => f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(1)));
        Assert.Contains(id, ex.Message);
    }

    [Fact]
    public async Task Idempotent_by_command_id()
    {
        var id = await f.NewSessionAsync("idem");
        var cmd = Guid.NewGuid();
        var r1 = await f.Store.AppendAsync(id, 0, cmd, StoreFixture.Events(3));
        Assert.False(r1.Duplicate);

        // Same command again with the now stale expected version: duplicate, nothing appended.
        var r2 = await f.Store.AppendAsync(id, 0, cmd, StoreFixture.Events(3));
        Assert.True(r2.Duplicate);
        Assert.Equal(r1 with { Duplicate = true }, r2);

        // Same command with the current version (would otherwise succeed): still a duplicate.
        var r3 = await f.Store.AppendAsync(id, 3, cmd, StoreFixture.Events(5));
        Assert.Equal(r1 with { Duplicate = true }, r3);

        Assert.Equal(3, (await f.Store.GetSessionAsync(id))!.Version);
        Assert.Equal([1L, 2, 3], (await f.ReadSessionAsync(id)).Select(e => e.Seq));

        // The same command id in another session is another command.
        var other = await f.NewSessionAsync("idem-other");
        Assert.False((await f.Store.AppendAsync(other, 0, cmd, StoreFixture.Events(1))).Duplicate);
    }

    [Fact]
    public async Task Concurrent_duplicates_append_once()
    {
        var id = await f.NewSessionAsync("idem-race");
        var cmd = Guid.NewGuid();
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => f.Store.AppendAsync(id, 0, cmd, StoreFixture.Events(4)))));
        Assert.Single(results, r => !r.Duplicate);
        Assert.All(results, r => Assert.Equal((1L, 4L), (r.FirstSeq, r.LastSeq)));
        Assert.Single(results.Select(r => r.FirstPosition).Distinct());
        Assert.Equal(4, (await f.ReadSessionAsync(id)).Count);
    }

    [Fact]
    public async Task Invalid_json_is_an_argument_error_and_writes_nothing()
    {
        var id = await f.NewSessionAsync("badjson");
        var events = new List<NewEvent> { new("Ok", "{}"), new("Bad", "{not json") };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => f.Store.AppendAsync(id, 0, Guid.NewGuid(), events));
        Assert.Contains("not valid JSON", ex.Message);
        Assert.Equal(0, (await f.Store.GetSessionAsync(id))!.Version);
        Assert.Empty(await f.ReadSessionAsync(id));
    }

    [Fact]
    public async Task Arguments_are_validated()
    {
        var id = await f.NewSessionAsync("args");
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.AppendAsync(id, 0, Guid.NewGuid(), []));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.AppendAsync(id, 0, Guid.Empty, StoreFixture.Events(1)));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => f.Store.AppendAsync(id, -1, Guid.NewGuid(), StoreFixture.Events(1)));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.AppendAsync(id, 0, Guid.NewGuid(), [new NewEvent("", "{}")]));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.CreateSessionAsync("", "k", null));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.CreateSessionAsync(new string('x', 201), "k", null));
    }

    [Fact]
    public async Task Append_notifies_session_and_last_seq_on_commit()
    {
        var id = await f.NewSessionAsync("notify");
        await using var listener = await f.OpenAsync();
        var got = new List<string>();
        listener.Notification += (_, e) =>
        {
            if (e.Channel == PgEventStore.NotifyChannel && e.Payload.StartsWith(id + ":", StringComparison.Ordinal))
                lock (got) got.Add(e.Payload);
        };
        await using (var cmd = new NpgsqlCommand("LISTEN " + PgEventStore.NotifyChannel, listener)) await cmd.ExecuteNonQueryAsync();

        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(2));
        await f.Store.AppendAsync(id, 2, Guid.NewGuid(), StoreFixture.Events(150)); // COPY path notifies too
        await Assert.ThrowsAsync<ConcurrencyException>(() => f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(1)));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            lock (got) if (got.Count >= 2) break;
            await listener.WaitAsync(500);
        }

        await listener.WaitAsync(300); // anything extra (there must be nothing for the failed append)
        lock (got) Assert.Equal([$"{id}:2", $"{id}:152"], got);
    }
}
