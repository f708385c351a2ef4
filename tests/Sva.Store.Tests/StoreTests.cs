using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

/// <summary>The store's contract on Marten, against a real PostgreSQL: append, read, concurrency, idempotency, hash chain,
/// append-only, snapshots bound to the chain, sessions that exist only once they have an event.</summary>
public sealed class StoreTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task appended_events_read_back_in_seq_order_with_their_metadata_and_type_name()
    {
        var s = StoreFixture.NewSession("read");
        var (c1, c2) = (Guid.NewGuid(), Guid.NewGuid());
        var r1 = await f.AppendAsync(s, 0, 3, c1);
        var r2 = await f.AppendAsync(s, 3, 2, c2);
        Assert.Equal((1L, 3L, 4L, 5L), (r1.FirstSeq, r1.LastSeq, r2.FirstSeq, r2.LastSeq));
        Assert.True(r2.FirstPosition > r1.LastPosition);
        var read = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(s)) read.Add(e);
        Assert.Equal([1L, 2, 3, 4, 5], read.Select(e => e.Seq));
        Assert.All(read, e => Assert.Equal("test_event", e.Type));
        // chain version 2: the metadata is stored as a JSON value and read back in its compact canonical form (jsonb's key order)
        Assert.Equal($"{{\"cmd\":\"{c2}\",\"source\":\"t.sva:4\"}}", read[3].Metadata);
        Assert.All(read, e => Assert.Equal(2, e.Chain));
        Assert.Contains("\"name\": \"e4\"", read[3].DataJson);
        Assert.Equal((c1, c1, c2), (read[0].CommandId, read[2].CommandId, read[3].CommandId));
        Assert.Equal(5, (await f.Store.GetSessionAsync(s))!.Version);
    }

    [Fact]
    public async Task an_append_of_events_only_writes_in_one_round_trip_the_rows_marten_writes()
    {
        // The first append (it creates the session) goes through Marten's session; the later ones (events only) through
        // the one-round-trip path: the same bookkeeping columns, the stream's version, the chain, and nothing in between.
        var s = StoreFixture.NewSession("quick");
        await f.AppendAsync(s, 0, 2);
        var r = await f.AppendAsync(s, 2, 3);
        Assert.Equal((3L, 5L, false), (r.FirstSeq, r.LastSeq, r.Duplicate));
        var rows = await f.ScalarAsync<string>(
            $"SELECT string_agg(concat_ws('|', version, type, tenant_id, mt_dotnet_type, is_archived, bdata IS NULL, timestamp IS NOT NULL, headers->>'chain'), ';' ORDER BY version) FROM mt_events WHERE stream_id = '{s}'");
        var shape = $"test_event|*DEFAULT*|{typeof(TestEvent).FullName}, {typeof(TestEvent).Assembly.GetName().Name}|f|t|t|2";
        Assert.Equal(string.Join(';', Enumerable.Range(1, 5).Select(v => $"{v}|{shape}")), rows);
        Assert.Equal(5L, await f.ScalarAsync<long>($"SELECT version FROM mt_streams WHERE id = '{s}'"));
        Assert.Equal(r.LastPosition, r.FirstPosition + 2);
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
        // a stale append through this path: a conflict naming the versions, nothing written
        var ex = await Assert.ThrowsAsync<ConcurrencyException>(() => f.AppendAsync(s, 4, 1));
        Assert.Equal((4L, 5L), (ex.Expected, ex.Actual));
        Assert.Equal(5L, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_events WHERE stream_id = '{s}'"));
    }

    [Fact]
    public async Task a_session_exists_only_once_its_first_event_is_committed()
    {
        var s = StoreFixture.NewSession("exists");
        Assert.Null(await f.Store.GetSessionAsync(s));
        await Assert.ThrowsAsync<SessionNotFoundException>(() => f.Store.AppendAsync(new AppendBatch(s, 0, Guid.NewGuid(), StoreFixture.Events(1))));
        Assert.Null(await f.Store.GetSessionAsync(s));
        await f.AppendAsync(s, 0, 1);
        var info = await f.Store.GetSessionAsync(s);
        Assert.Equal(("6.8-test", "unit-test", 1L), (info!.Kernel, info.Source, info.Version));
        Assert.Contains(await f.Store.ListSessionsAsync(), x => x.Id == s);
    }

    [Fact]
    public async Task a_stale_expected_version_is_a_conflict_and_writes_nothing()
    {
        var s = StoreFixture.NewSession("conflict");
        await f.AppendAsync(s, 0, 2);
        var ex = await Assert.ThrowsAsync<ConcurrencyException>(() => f.AppendAsync(s, 1, 3));
        Assert.Equal((1L, 2L), (ex.Expected, ex.Actual));
        await Assert.ThrowsAsync<ConcurrencyException>(() => f.AppendAsync(s, 0, 1, create: true)); // a second "first" append
        Assert.Equal(2, (await f.Store.GetSessionAsync(s))!.Version);
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
    }

    [Fact]
    public async Task a_retried_command_returns_its_first_seqs_and_appends_nothing()
    {
        var s = StoreFixture.NewSession("idem");
        var cmd = Guid.NewGuid();
        var first = await f.AppendAsync(s, 0, 3, cmd);
        await f.AppendAsync(s, 3, 1);
        var again = await f.AppendAsync(s, 0, 3, cmd);   // stale expected version: still the same command
        var again2 = await f.AppendAsync(s, 4, 3, cmd);  // current expected version: collides on the event ids
        Assert.True(again.Duplicate && again2.Duplicate && !first.Duplicate);
        Assert.Equal((first.FirstSeq, first.LastSeq, first.FirstPosition, first.LastPosition), (again.FirstSeq, again.LastSeq, again.FirstPosition, again.LastPosition));
        Assert.Equal((1L, 3L), (again2.FirstSeq, again2.LastSeq));
        Assert.Equal(4, (await f.Store.GetSessionAsync(s))!.Version);
    }

    [Fact]
    public async Task eight_concurrent_writers_on_one_session_leave_seqs_gap_free_and_nothing_lost()
    {
        var s = StoreFixture.NewSession("race");
        await f.AppendAsync(s, 0, 1);
        var written = 0;
        async Task Writer()
        {
            for (var k = 0; k < 15; k++)
                while (true)
                {
                    var v = (await f.Store.GetSessionAsync(s))!.Version;
                    try { await f.AppendAsync(s, v, 2); Interlocked.Add(ref written, 2); break; }
                    catch (ConcurrencyException) { }
                }
        }
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(Writer)));
        long expected = 1;
        await foreach (var e in f.Store.ReadSessionAsync(s)) Assert.Equal(expected++, e.Seq);
        Assert.Equal(1 + written, expected - 1);
        Assert.Equal(241, expected - 1);
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
    }

    [Fact]
    public async Task verify_names_the_first_altered_event()
    {
        var s = StoreFixture.NewSession("tamper");
        await f.AppendAsync(s, 0, 6);
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
        // Tampering needs the superuser to switch the append-only trigger off first.
        await f.ExecAsync($"""
            ALTER TABLE mt_events DISABLE TRIGGER sva_events_append_only;
            UPDATE mt_events SET data = jsonb_set(data, '{"{n}"}', '99') WHERE stream_id = '{s}' AND version = 4;
            ALTER TABLE mt_events ENABLE TRIGGER sva_events_append_only;
            """);
        var v = await f.Store.VerifyAsync(s);
        Assert.False(v.Ok);
        Assert.Equal(4, v.FirstBrokenSeq);
    }

    [Fact]
    public async Task new_events_carry_chain_version_2_headers_and_verify_catches_altered_metadata()
    {
        var s = StoreFixture.NewSession("chain2");
        await f.AppendAsync(s, 0, 4);
        // {chain: 2, hash, meta: <a JSON object, not an escaped string>}; no cmd header (the event id carries the command)
        Assert.Equal(4L, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_events WHERE stream_id = '{s}' AND headers->>'chain' = '2' " +
            "AND jsonb_typeof(headers->'meta') = 'object' AND NOT headers ? 'cmd' AND length(headers->>'hash') = 64"));
        Assert.Equal("t.sva:3", await f.ScalarAsync<string>($"SELECT headers->'meta'->>'source' FROM mt_events WHERE stream_id = '{s}' AND version = 3"));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
        await f.ExecAsync($"""
            ALTER TABLE mt_events DISABLE TRIGGER sva_events_append_only;
            UPDATE mt_events SET headers = jsonb_set(headers, '{"{meta,source}"}', '"t.sva:99"') WHERE stream_id = '{s}' AND version = 3;
            ALTER TABLE mt_events ENABLE TRIGGER sva_events_append_only;
            """);
        var v = await f.Store.VerifyAsync(s);
        Assert.False(v.Ok);
        Assert.Equal(3, v.FirstBrokenSeq);
    }

    [Fact]
    public async Task metadata_that_is_not_json_is_stored_and_hashed_as_text_and_verifies()
    {
        var s = StoreFixture.NewSession("textmeta");
        await f.Store.AppendAsync(new AppendBatch(s, 0, Guid.NewGuid(),
            [new NewEvent(new TestEvent("a", 1, 1), "not json {"), new NewEvent(new TestEvent("b\u00e9\"q", 2, 2), "{\"source\":\"caf\u00e9 \\\"x\\\".sva:1\"}")])
            { Create = new NewSession("6.8-test", "unit-test") });
        var read = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(s)) read.Add(e);
        Assert.Equal(("not json {", false), (read[0].Metadata, read[0].MetadataIsJson));
        Assert.True(read[1].MetadataIsJson);
        Assert.Equal("caf\u00e9 \"x\".sva:1", System.Text.Json.JsonDocument.Parse(read[1].Metadata).RootElement.GetProperty("source").GetString());
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
    }

    [Fact]
    public async Task metadata_moved_from_a_json_value_to_a_string_or_an_unknown_chain_version_is_named_by_verify()
    {
        var s = StoreFixture.NewSession("chainshape");
        await f.AppendAsync(s, 0, 3);
        await f.ExecAsync($"""
            ALTER TABLE mt_events DISABLE TRIGGER sva_events_append_only;
            UPDATE mt_events SET headers = jsonb_set(headers, '{"{meta}"}', to_jsonb((headers->'meta')::text)) WHERE stream_id = '{s}' AND version = 2;
            UPDATE mt_events SET headers = jsonb_set(headers, '{"{chain}"}', '7') WHERE stream_id = '{s}' AND version = 3;
            ALTER TABLE mt_events ENABLE TRIGGER sva_events_append_only;
            """);
        var v = await f.Store.VerifyAsync(s);
        Assert.False(v.Ok);
        Assert.Equal(2, v.FirstBrokenSeq);
        var read = new List<StoredEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(s)) read.Add(e);
        Assert.Equal((2, 2, 7), (read[0].Chain, read[1].Chain, read[2].Chain));

        var t = StoreFixture.NewSession("chainnext");
        await f.AppendAsync(t, 0, 2);
        await f.ExecAsync($"""
            ALTER TABLE mt_events DISABLE TRIGGER sva_events_append_only;
            UPDATE mt_events SET headers = jsonb_set(headers, '{"{chain}"}', '7') WHERE stream_id = '{t}' AND version = 2;
            ALTER TABLE mt_events ENABLE TRIGGER sva_events_append_only;
            """);
        var next = await f.Store.VerifyAsync(t);
        Assert.Equal((false, 2L), (next.Ok, next.FirstBrokenSeq));
        Assert.Contains("hash-chain version 7", next.Reason);
    }

    [Fact]
    public async Task the_log_is_append_only_for_every_role_and_the_writer_may_not_even_try()
    {
        var s = StoreFixture.NewSession("ao");
        await f.AppendAsync(s, 0, 2);
        var up = await Assert.ThrowsAsync<PostgresException>(() => f.ExecAsync($"UPDATE mt_events SET type = 'x' WHERE stream_id = '{s}'"));
        Assert.Equal("23001", up.SqlState);
        var del = await Assert.ThrowsAsync<PostgresException>(() => f.ExecAsync($"DELETE FROM mt_events WHERE stream_id = '{s}'"));
        Assert.Equal("23001", del.SqlState);
        await Assert.ThrowsAsync<PostgresException>(() => f.ExecAsync("TRUNCATE mt_events CASCADE"));
        // The writer role (postgres-init) may append but holds no UPDATE, DELETE or TRUNCATE on the log at all.
        var writer = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Username = "sva_writer", Password = null, Pooling = false }.ConnectionString;
        foreach (var sql in new[] { $"UPDATE mt_events SET type = 'x' WHERE stream_id = '{s}'", $"DELETE FROM mt_events WHERE stream_id = '{s}'", "TRUNCATE mt_events" })
            Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => StoreFixture.ExecAsync(writer, sql))).SqlState);
        await using (var asWriter = await MartenEventStore.OpenAsync(writer, StoreFixture.Setup(), readOnly: true))
        {
            // ... and it can read the log it may not change (the read path of the adapter, as that role)
            var n = 0;
            await foreach (var _ in asWriter.ReadSessionAsync(s)) n++;
            Assert.Equal(2, n);
        }
        Assert.Equal(2, (await f.Store.GetSessionAsync(s))!.Version);
    }

    [Fact]
    public async Task a_snapshot_is_trusted_only_when_the_log_vouches_for_its_digest()
    {
        var s = StoreFixture.NewSession("snap");
        await f.Store.AppendAsync(new AppendBatch(s, 0, Guid.NewGuid(), StoreFixture.Events(5))
        {
            Create = new NewSession("6.8-test", null),
            Snapshots = [new SnapshotToSave(3, "{\"at\":3}"), new SnapshotToSave(5, "{\"at\":5}")],
        });
        Assert.Equal(new LoadedSnapshot(5, "{\"at\":5}"), await f.Store.LoadSnapshotAsync(s, 9));
        Assert.Equal(new LoadedSnapshot(3, "{\"at\":3}"), await f.Store.LoadSnapshotAsync(s, 4));
        Assert.Null(await f.Store.LoadSnapshotAsync(s, 2));
        // The writer role may change snapshot rows: a forged snapshot is passed over, and verify names it.
        var forged = Convert.ToHexString(SnapshotCodec.Encode("{\"at\":\"forged\"}"));
        await f.ExecAsync($"UPDATE sva_snapshots SET bytes = '\\x{forged}'::bytea WHERE session = '{s}' AND seq = 5");
        Assert.Equal(new LoadedSnapshot(3, "{\"at\":3}"), await f.Store.LoadSnapshotAsync(s, 9));
        var v = await f.Store.VerifyAsync(s);
        Assert.False(v.Ok);
        Assert.Contains("snapshot at seq 5", v.Reason);
        Assert.Equal(2, await f.Store.DeleteSnapshotsAsync(s));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
    }

    [Fact]
    public async Task snapshots_are_compressed_rows_bound_to_the_chain_and_old_json_documents_still_load()
    {
        var s = StoreFixture.NewSession("zsnap");
        var big = "{\"state\":[" + string.Join(",", Enumerable.Range(0, 4000).Select(i => $"{{\"pasid\":{i},\"mm\":\"m{i % 7}\"}}")) + "]}";
        await f.Store.AppendAsync(new AppendBatch(s, 0, Guid.NewGuid(), StoreFixture.Events(6))
        {
            Create = new NewSession("6.8-test", null),
            Snapshots = [new SnapshotToSave(3, "{\"at\":3}"), new SnapshotToSave(6, big)],
        });
        // A row per snapshot, zstd bytes (encoding 1), far smaller than the text; no JSON document any more.
        Assert.Equal(2L, await f.ScalarAsync<long>($"SELECT count(*) FROM sva_snapshots WHERE session = '{s}' AND encoding = 1"));
        Assert.True(await f.ScalarAsync<int>($"SELECT octet_length(bytes) FROM sva_snapshots WHERE session = '{s}' AND seq = 6") * 10 < big.Length);
        Assert.Equal(0L, await f.ScalarAsync<long>($"SELECT count(*) FROM mt_doc_snapshotdoc WHERE session = '{s}'"));
        Assert.Equal(new LoadedSnapshot(6, big), await f.Store.LoadSnapshotAsync(s, 6));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);

        // Bytes that do not decode (or an encoding this version does not know) are passed over and named by verify.
        await f.ExecAsync($"UPDATE sva_snapshots SET bytes = '\\x00ff00ff'::bytea WHERE session = '{s}' AND seq = 6");
        Assert.Equal(new LoadedSnapshot(3, "{\"at\":3}"), await f.Store.LoadSnapshotAsync(s, 6));
        var v = await f.Store.VerifyAsync(s);
        Assert.Contains("snapshot at seq 6", v.Reason);
        Assert.Contains("do not decode", v.Reason);

        // A snapshot document of an earlier version (a JSON string in jsonb) still loads when the log vouches for it.
        await f.ExecAsync($"DELETE FROM sva_snapshots WHERE session = '{s}'");
        await f.ExecAsync($"INSERT INTO mt_doc_snapshotdoc (id, data, session, seq) VALUES ('{SnapshotDoc.IdOf(s, 3)}', jsonb_build_object('id', '{SnapshotDoc.IdOf(s, 3)}', 'session', '{s}', 'seq', 3, 'json', '{{\"at\":3}}'), '{s}', 3)");
        Assert.Equal(new LoadedSnapshot(3, "{\"at\":3}"), await f.Store.LoadSnapshotAsync(s, 6));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
        Assert.Equal(1, await f.Store.DeleteSnapshotsAsync(s));
    }

    [Fact]
    public async Task a_binary_snapshot_is_stored_compressed_under_its_encoding_and_bound_by_the_digest_of_its_payload()
    {
        var s = StoreFixture.NewSession("binsnap");
        var payload = Enumerable.Range(0, 20_000).Select(i => (byte)(i % 13)).ToArray(); // not UTF-8 text, compresses well
        var snap = new SnapshotToSave(4, SnapshotCodec.ZstdMemoryPack, payload);
        await f.Store.AppendAsync(new AppendBatch(s, 0, Guid.NewGuid(), StoreFixture.Events(5)) { Create = new NewSession("6.8-test", null), Snapshots = [snap] });
        Assert.Equal(2, await f.ScalarAsync<short>($"SELECT encoding FROM sva_snapshots WHERE session = '{s}' AND seq = 4"));
        Assert.True(await f.ScalarAsync<int>($"SELECT octet_length(bytes) FROM sva_snapshots WHERE session = '{s}' AND seq = 4") * 10 < payload.Length);
        // The log records the SHA-256 of the uncompressed payload at the snapshot's seq.
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(payload)),
            await f.ScalarAsync<string>($"SELECT headers->>'state' FROM mt_events WHERE stream_id = '{s}' AND version = 4"));
        Assert.Equal(new LoadedSnapshot(4, SnapshotCodec.ZstdMemoryPack, payload), await f.Store.LoadSnapshotAsync(s, 5));
        Assert.True((await f.Store.VerifyAsync(s)).Ok);
        // An encoding this version does not know is treated as absent (and named by verify), not misread.
        await f.ExecAsync($"UPDATE sva_snapshots SET encoding = 77 WHERE session = '{s}'");
        Assert.Null(await f.Store.LoadSnapshotAsync(s, 5));
        Assert.Contains("do not decode", (await f.Store.VerifyAsync(s)).Reason);
    }

    [Fact]
    public async Task a_dead_database_is_unavailable_naming_host_and_port()
    {
        var dead = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Port = 1, Timeout = 2 }.ConnectionString;
        var ex = await Assert.ThrowsAsync<EventStoreUnavailableException>(() => MartenEventStore.OpenAsync(dead, StoreFixture.Setup()));
        Assert.Contains(":1", ex.Endpoint);
    }
}
