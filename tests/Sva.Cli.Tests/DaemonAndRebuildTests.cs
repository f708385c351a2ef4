using Npgsql;
using Sva.Commands;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Script;
using Sva.Projections;
using Sva.Projections.Async;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>
/// The async daemon and the read-model rebuild under concurrent writers, on a database of their own
/// (so that positions start at 1 and nothing else writes there).
/// </summary>
[Collection("cli")]
public sealed class DaemonAndRebuildTests(CliFixture f) : IAsyncLifetime
{
    private string db = "";
    private IEventStore store = null!;

    public async Task InitializeAsync()
    {
        db = "sva_t_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = "postgres" }.ConnectionString))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {db}", admin);
            await cmd.ExecuteNonQueryAsync();
        }
        store = await SvaStoreSetup.OpenAsync(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await store.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = "postgres" }.ConnectionString);
        await admin.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {db} WITH (FORCE)", admin);
        await cmd.ExecuteNonQueryAsync();
    }

    private static List<SourcedCall> Workload(string prefix, int n)
    {
        var lines = new List<string> { $"device 0000:{prefix}:00.0 pasids=1048576", $"device 0000:{prefix}:01.0 pasids=1048576" };
        for (var i = 0; i < n; i++)
        {
            lines.Add($"mm m{i}");
            lines.Add($"bind h{i} 0000:{prefix}:0{i % 2}.0 m{i}");
            lines.Add($"bind g{i} 0000:{prefix}:0{(i + 1) % 2}.0 m{i}");
            lines.Add($"fault 0000:{prefix}:00.0 pasid=1 addr=0x{0x1000 * (i + 1):x} access=rw");
            if (i % 3 != 0) lines.Add($"unbind h{i}");
            lines.Add($"exit m{i}");
            if (i % 2 == 0) { lines.Add($"unbind g{i}"); lines.Add($"drop m{i}"); }
        }
        return ScriptParser.Parse(string.Join("\n", lines), $"{prefix}.sva").Lines.Select(l => new SourcedCall(l.Call, l.Source)).ToList();
    }

    private Task<RecordResult> Record(RecordCallsHandler handler, string session, List<SourcedCall> calls, int chunk) =>
        handler.Handle(new RecordCalls(session, "6.8", null, calls, chunk), default).AsTask();

    [Fact]
    public async Task the_read_model_is_off_the_append_path_shows_its_lag_and_the_writer_catches_it_up()
    {
        var handler = new RecordCallsHandler(store);
        var r = await Record(handler, "lag", Workload("30", 6), 4);
        Assert.True(r.LastSeq > 0);
        // The appends wrote no read-model document: the projection is behind by every event, and verify says so.
        Assert.Empty(await ReadModel.StoredRowsAsync(store, "lag"));
        var (before, head) = await store.ProjectionStatusAsync();
        Assert.Equal(0, before.Single(p => p.Name == SvaReadModelProjection.ProjectionName).Position);
        Assert.True(head >= r.LastSeq);
        var behind = await ReadModel.VerifySessionAsync(store, "lag");
        Assert.Equal(ReadModel.HeadTable, Assert.Single(behind).Table);

        // The writer catches the async projections up after its last batch: nothing skipped, no lag.
        Assert.True(await store.CatchUpAsync(TimeSpan.FromMinutes(2)));
        var (after, head2) = await store.ProjectionStatusAsync();
        Assert.All(after, p => Assert.Equal(head2, p.Position));
        Assert.Empty(await ReadModel.VerifySessionAsync(store, "lag"));
        Assert.NotEmpty(await ReadModel.StoredRowsAsync(store, "lag"));
        // Nothing appended since: nothing to do.
        Assert.False(await store.CatchUpAsync(TimeSpan.FromMinutes(2)));

        // A second batch continues from the projection's cached state, and a tampered row is found by verify.
        await Record(handler, "lag", Workload("31", 3), 2);
        Assert.True(await store.CatchUpAsync(TimeSpan.FromMinutes(2)));
        Assert.Empty(await ReadModel.VerifySessionAsync(store, "lag"));
        await using (var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString))
        await using (var cmd = ds.CreateCommand("DELETE FROM mt_doc_readmodelrow WHERE id = (SELECT id FROM mt_doc_readmodelrow WHERE session = 'lag' ORDER BY id LIMIT 1)"))
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        Assert.Single(await ReadModel.VerifySessionAsync(store, "lag"));
    }

    [Fact]
    public async Task eight_concurrent_writers_and_a_rolled_back_transaction_skip_no_event_in_any_projection()
    {
        var handler = new RecordCallsHandler(store);
        var otherHandler = new RecordCallsHandler(store); // a second writer on the same session: version conflicts
        var writers = new List<Task<RecordResult>>();
        for (var w = 0; w < 6; w++) writers.Add(Record(handler, $"w{w}", Workload($"{w + 10:x2}", 12), 3));
        writers.Add(Record(handler, "shared", Workload("20", 10), 2));
        writers.Add(Record(otherHandler, "shared", Workload("20", 10).Skip(2).ToList(), 2));
        // A transaction that takes a global position and rolls back: a hole in mt_events' seq_id the daemon must not mind.
        await using (var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString))
        await using (var conn = await ds.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using var burn = new NpgsqlCommand("SELECT nextval('mt_events_sequence')", conn, tx);
            await burn.ExecuteScalarAsync();
            await tx.RollbackAsync();
        }
        var results = await Task.WhenAll(writers);
        // The two writers of "shared" interleaved (re-deciding on conflicts): every event either recorded is in the log once.
        var shared = results[6].Calls.Concat(results[7].Calls).Sum(c => (long)c.Events.Count);
        Assert.Equal(shared, (await store.GetSessionAsync("shared"))!.Version);

        // Every session's seqs are 1..n without a gap, and its hash chain verifies.
        foreach (var s in await store.ListSessionsAsync())
        {
            long expected = 1;
            await foreach (var e in store.ReadSessionAsync(s.Id)) Assert.Equal(expected++, e.Seq);
            Assert.Equal(s.Version, expected - 1);
            Assert.True((await store.VerifyAsync(s.Id)).Ok);
        }

        // Marten's daemon catches up past the hole: the audit documents equal the bindings folded from each log.
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var audit = await store.QueryAsync<AuditBinding>(b => b.Pasid >= 0);
        var want = new List<(string, string, long, long?)>();
        foreach (var s in await store.ListSessionsAsync())
        {
            var issued = new Dictionary<string, long>();
            await foreach (var e in store.ReadSessionAsync(s.Id))
                switch (EventCodec.Decode(e))
                {
                    case HandleIssued h: issued[h.Handle] = e.Seq; want.Add((s.Id, h.Handle, e.Seq, null)); break;
                    case HandleFreed fr:
                        var i = want.FindIndex(x => x.Item1 == s.Id && x.Item2 == fr.Handle);
                        want[i] = (s.Id, fr.Handle, want[i].Item3, e.Seq);
                        break;
                }
        }
        Assert.Equal(want.OrderBy(x => x.Item1).ThenBy(x => x.Item2).ToList(),
            audit.Select(b => (b.Session, b.Handle, b.IssuedSeq, b.UnboundSeq)).OrderBy(x => x.Session).ThenBy(x => x.Handle).ToList());
        var (status, head) = await store.ProjectionStatusAsync();
        Assert.Equal(head, status.Single(p => p.Name == AuditBindingsProjection.ProjectionName).Position);

        // The read model (caught up by the daemon above) equals the fold of each log, before and after a rebuild.
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));
        await ReadModel.RebuildWithDaemonAsync(store, TimeSpan.FromMinutes(2));
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));
        await ReadModel.RebuildAsync(store);
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));
    }

    private static List<string> AuditRows(IEnumerable<AuditBinding> docs) =>
        docs.Select(b => string.Join("|", b.Id, b.Session, b.Handle, b.IssuedSeq, b.Device, b.Pasid, b.Mm, b.Domain, b.BoundAt.ToUnixTimeMilliseconds(),
            b.BoundBy, b.UnboundSeq, b.UnboundAt?.ToUnixTimeMilliseconds(), b.UnboundBy)).Order(StringComparer.Ordinal).ToList();

    private static string Messages(Exception? e)
    {
        var all = new List<string>();
        for (; e is not null; e = e.InnerException)
        {
            all.Add(e.Message);
            if (e is AggregateException a) all.AddRange(a.InnerExceptions.Select(Messages));
        }
        return string.Join(" / ", all);
    }

    [Fact]
    public async Task audit_bindings_is_the_same_in_pages_of_20_and_an_orphan_handle_freed_stops_it_naming_the_seq()
    {
        var handler = new RecordCallsHandler(store);
        await Record(handler, "pages", Workload("0b", 30), 4);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var whole = AuditRows(await store.QueryAsync<AuditBinding>(b => b.Pasid >= 0));
        Assert.Equal(60, whole.Count);
        Assert.Contains(whole, r => !r.EndsWith("||", StringComparison.Ordinal)); // closed intervals, with who closed them
        Assert.All(whole, r => Assert.Contains("|pages|", r));
        Assert.All(whole, r => Assert.Contains("0b.sva:", r));                    // bound by: the script line

        // Pages of 20 events: most intervals are opened in one page and closed in a later one; the documents are the same.
        var cs = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString;
        await using (var small = await MartenEventStore.OpenAsync(cs, SvaStoreSetup.Create(daemonBatchSize: 20)))
        {
            await small.RebuildProjectionAsync(AuditBindingsProjection.ProjectionName, TimeSpan.FromMinutes(2));
            Assert.Equal(whole, AuditRows(await small.QueryAsync<AuditBinding>(b => b.Pasid >= 0)));
        }

        // A handle_freed that no handle_issued opened: never skipped, the projection stops naming the session and seq.
        await store.AppendAsync(new AppendBatch("orphan", 0, Guid.NewGuid(),
            [EventCodec.Encode(new HandleFreed("h-none"), new EventMetadata(Guid.NewGuid(), "orphan.sva:1"))]) { Create = new NewSession("6.8", "test") });
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => store.RebuildProjectionAsync(AuditBindingsProjection.ProjectionName, TimeSpan.FromMinutes(2)));
        var message = Messages(ex);
        Assert.Contains("session orphan seq 1", message);
        Assert.Contains("handle_freed of h-none", message);
    }

    private string Cs => new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString;

    /// <summary>Every read-model document as stored (id and data), and the projection's checkpoint.</summary>
    private async Task<(long Checkpoint, List<string> Docs)> ReadModelTableAsync()
    {
        await using var ds = NpgsqlDataSource.Create(Cs);
        await using var cp = ds.CreateCommand("SELECT last_seq_id FROM mt_event_progression WHERE name = 'sva_read_model:All'");
        var checkpoint = (long)(await cp.ExecuteScalarAsync())!;
        var docs = new List<string>();
        await using var q = ds.CreateCommand("SELECT id || ' ' || data::text || ' ' || session || ' ' || mt_dotnet_type FROM mt_doc_readmodelrow ORDER BY id");
        await using var r = await q.ExecuteReaderAsync();
        while (await r.ReadAsync()) docs.Add(r.GetString(0));
        return (checkpoint, docs);
    }

    /// <summary>The rows of the fold of every session's whole log, as documents would hold them.</summary>
    private async Task<List<string>> FoldedRowsAsync()
    {
        var rows = new List<string>();
        foreach (var s in await store.ListSessionsAsync())
        {
            var state = await EventCodec.FoldAsync(store.ReadSessionAsync(s.Id));
            rows.AddRange(SvaRows.All(state).Select(r => ReadModelRow.From(s.Id, r)).Select(r => $"{r.Id} {string.Join(",", r.Values)}"));
        }
        return rows.Order(StringComparer.Ordinal).ToList();
    }

    private async Task<List<string>> StoredRowsAsync() =>
        (await store.QueryAsync<ReadModelRow>(r => r.Table != "")).Select(r => $"{r.Id} {string.Join(",", r.Values)}").Order(StringComparer.Ordinal).ToList();

    /// <summary>Inserts an event row as Marten's append writes it (no hash-chain headers), in the caller's transaction.</summary>
    private static async Task<long> InsertEventAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string session, string type, string data)
    {
        await using var cmd = new NpgsqlCommand(
            """
            INSERT INTO mt_events (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, headers)
            SELECT nextval('mt_events_sequence'), gen_random_uuid(), $1, (SELECT max(version) + 1 FROM mt_events WHERE stream_id = $1),
                   $2::jsonb, $3, now(), '*DEFAULT*', 'Sva.Domain.' || $3, NULL
            RETURNING seq_id
            """, conn, tx) { Parameters = { new() { Value = session }, new() { Value = data }, new() { Value = type } } };
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task the_fold_rebuild_equals_the_fold_of_every_session_and_marten_s_daemon_rebuild_and_the_daemon_continues_from_it()
    {
        var handler = new RecordCallsHandler(store);
        for (var w = 0; w < 4; w++) await Record(handler, $"fold{w}", Workload($"{w + 0x40:x2}", 10 + 5 * w), 3 + w);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var folded = await FoldedRowsAsync();
        Assert.True(folded.Count > 20, $"{folded.Count} rows");
        Assert.Equal(folded, await StoredRowsAsync());

        // Marten's daemon rebuild (its per-event pipeline) is the reference: the same documents, byte for byte (apart from
        // Marten's bookkeeping columns), and the same checkpoint.
        await ReadModel.RebuildWithDaemonAsync(store, TimeSpan.FromMinutes(2));
        var (daemonCheckpoint, daemonDocs) = await ReadModelTableAsync();

        // Damage the read model: a row gone, a row changed, a row of no session. The fold rebuild replaces them all.
        await using (var ds = NpgsqlDataSource.Create(Cs))
        {
            await using (var del = ds.CreateCommand("DELETE FROM mt_doc_readmodelrow WHERE id = (SELECT min(id) FROM mt_doc_readmodelrow)"))
                Assert.Equal(1, await del.ExecuteNonQueryAsync());
            await using (var upd = ds.CreateCommand("UPDATE mt_doc_readmodelrow SET data = jsonb_set(data, '{values,0}', '\"bogus\"') WHERE id = (SELECT max(id) FROM mt_doc_readmodelrow)"))
                Assert.Equal(1, await upd.ExecuteNonQueryAsync());
            await using (var ins = ds.CreateCommand(
                "INSERT INTO mt_doc_readmodelrow (id, data, mt_dotnet_type, session) VALUES ('ghost', '{\"id\": \"ghost\", \"key\": \"k\", \"table\": \"proj_mms\", \"values\": [], \"session\": \"ghost\"}', 'Sva.Projections.ReadModelRow', 'ghost')"))
                await ins.ExecuteNonQueryAsync();
            await using (var cp = ds.CreateCommand("UPDATE mt_event_progression SET last_seq_id = 3 WHERE name = 'sva_read_model:All'"))
                await cp.ExecuteNonQueryAsync();
        }
        Assert.NotEqual(folded, await StoredRowsAsync());

        var result = await ReadModel.RebuildAsync(store);
        var (_, head) = await store.ProjectionStatusAsync();
        Assert.Equal(head, result.Checkpoint);
        Assert.Equal(head, result.Head);
        Assert.Equal(4, result.Sessions);
        Assert.Equal(head, result.Events);                 // nothing else in this database: positions 1..head, no gap
        Assert.Equal(folded.Count, result.Documents);
        var (checkpoint, docs) = await ReadModelTableAsync();
        Assert.Equal(daemonCheckpoint, checkpoint);
        Assert.Equal(daemonDocs, docs);
        Assert.Equal(folded, await StoredRowsAsync());
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));

        // Appends after the rebuild (an old session continued, a new one) are projected by the daemon from its checkpoint.
        await Record(handler, "fold1", Workload("41", 6), 4);
        await Record(handler, "fold-new", Workload("4f", 5), 2);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var (status, head2) = await store.ProjectionStatusAsync();
        Assert.True(head2 > head);
        Assert.Equal(head2, status.Single(p => p.Name == SvaReadModelProjection.ProjectionName).Position);
        Assert.Equal(await FoldedRowsAsync(), await StoredRowsAsync());
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));
    }

    [Fact]
    public async Task an_append_in_flight_during_the_fold_rebuild_is_not_passed_by_the_checkpoint_and_is_projected_once_it_commits()
    {
        var handler = new RecordCallsHandler(store);
        await Record(handler, "inflight", Workload("50", 4), 3);
        await Record(handler, "after", Workload("51", 4), 3);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var before = (await store.GetSessionAsync("inflight"))!.Version;

        // An append that took its sequence number and has not committed: a new device probed in session "inflight".
        await using var ds = NpgsqlDataSource.Create(Cs);
        await using var conn = await ds.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        var probe = new DeviceProbed("0000:5f:00.0", 1048576, 95, true, true, "smmu0");
        var taken = await InsertEventAsync(conn, tx, "inflight", EventTypes.NameOf(probe), Sva.Domain.Json.SvaJson.Serialize(probe));
        // Appends committed after it, above its sequence number.
        await Record(handler, "after", Workload("52", 3), 2);
        var (_, headBefore) = await store.ProjectionStatusAsync();
        Assert.True(headBefore > taken);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var result = await ReadModel.RebuildAsync(store);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"the rebuild waited {sw.Elapsed} for the append in flight");
        // The checkpoint stops before the taken sequence number; what is above it is left to the daemon.
        Assert.Equal(taken - 1, result.Checkpoint);
        Assert.Equal(headBefore, result.Head);
        var (checkpoint, _) = await ReadModelTableAsync();
        Assert.Equal(taken - 1, checkpoint);
        Assert.DoesNotContain(await StoredRowsAsync(), r => r.Contains("0000:5f:00.0", StringComparison.Ordinal));
        // "inflight" is complete at the checkpoint (its in-flight event is invisible); "after" is behind by the events above it.
        Assert.Empty(await ReadModel.VerifySessionAsync(store, "inflight"));
        Assert.Equal(ReadModel.HeadTable, Assert.Single(await ReadModel.VerifySessionAsync(store, "after")).Table);

        // The append commits: the daemon projects it (and the events after it) from the rebuild's checkpoint.
        await tx.CommitAsync();
        Assert.Equal(before + 1, (await store.GetSessionAsync("inflight"))!.Version);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var (status, head) = await store.ProjectionStatusAsync();
        Assert.Equal(head, status.Single(p => p.Name == SvaReadModelProjection.ProjectionName).Position);
        Assert.Contains(await StoredRowsAsync(), r => r.StartsWith("inflight\u001fproj_devices\u001f0000:5f:00.0 ", StringComparison.Ordinal));
        Assert.Equal(await FoldedRowsAsync(), await StoredRowsAsync());
        foreach (var s in await store.ListSessionsAsync()) Assert.Empty(await ReadModel.VerifySessionAsync(store, s.Id));
    }

    private async Task AssertUnchangedAsync((long Checkpoint, List<string> Docs) before)
    {
        var now = await ReadModelTableAsync();
        Assert.Equal(before.Checkpoint, now.Checkpoint);
        Assert.Equal(before.Docs, now.Docs);
    }

    [Fact]
    public async Task an_event_the_fold_rebuild_cannot_read_stops_it_naming_session_and_seq_and_nothing_is_written()
    {
        var handler = new RecordCallsHandler(store);
        await Record(handler, "good", Workload("60", 5), 3);
        await Record(handler, "bad", Workload("61", 5), 3);
        await store.RunDaemonAsync(once: true, TimeSpan.FromMinutes(2));
        var badSeq = (await store.GetSessionAsync("bad"))!.Version + 1;
        // A committed event of a type this version does not know (written by a newer version, say), then more events.
        await using (var ds = NpgsqlDataSource.Create(Cs))
        await using (var conn = await ds.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await InsertEventAsync(conn, tx, "bad", "pasid_teleported", "{\"pasid\": 7}");
            await tx.CommitAsync();
        }
        await Record(handler, "good", Workload("62", 2), 2);
        // The checkpoint and documents before: the daemon's, up to the events before the bad one.
        var before = await ReadModelTableAsync();
        Assert.NotEmpty(before.Docs);
        Assert.True(before.Checkpoint > 0);

        var ex = await Assert.ThrowsAsync<StoredEventException>(() => ReadModel.RebuildAsync(store));
        Assert.Equal("bad", ex.Session);
        Assert.Equal(badSeq, ex.Seq);
        Assert.Contains($"session bad seq {badSeq}: unknown event type 'pasid_teleported'", ex.Message);
        await AssertUnchangedAsync(before);

        // Through the CLI: exit 2 naming session and seq, nothing written either.
        var cli = await f.RunWithAsync(Cs, "projections", "rebuild", SvaReadModelProjection.ProjectionName);
        Assert.True(cli.ExitCode == 2, cli.ToString());
        Assert.Contains($"session bad seq {badSeq}", cli.Stderr);
        await AssertUnchangedAsync(before);
    }

    [Fact]
    public async Task projections_rebuild_shows_a_progress_bar_on_a_terminal_and_none_when_stderr_is_redirected()
    {
        var handler = new RecordCallsHandler(store);
        await Record(handler, "rebuild-bar", Workload("0a", 300), 64);
        var cs = new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString;

        // stderr a terminal: a pseudo-terminal from script(1); what the terminal got is script's stdout.
        var psi = new System.Diagnostics.ProcessStartInfo("script") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-qec", $"dotnet {f.SvaDll} projections rebuild", "/dev/null" }) psi.ArgumentList.Add(a);
        psi.Environment["SVA_DB"] = cs;
        psi.Environment["SVA_REPO"] = f.Repo;
        psi.Environment["TERM"] = "xterm";
        using var p = System.Diagnostics.Process.Start(psi)!;
        var tty = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        var terminal = await tty;
        Assert.True(p.ExitCode == 0, terminal + await err);
        foreach (var name in new[] { SvaReadModelProjection.ProjectionName, AuditBindingsProjection.ProjectionName })
        {
            Assert.Contains($"rebuild {name}", terminal);                      // the bar's title
            Assert.Contains($"{name}: rebuilt from the log", terminal);
        }
        Assert.Contains("%", terminal);

        // stderr redirected: the summary lines only.
        var plain = await f.RunWithAsync(cs, "projections", "rebuild");
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Contains($"{SvaReadModelProjection.ProjectionName}: rebuilt from the log", plain.Stderr);
        Assert.DoesNotContain($"rebuild {SvaReadModelProjection.ProjectionName}", plain.Stderr);
        Assert.DoesNotContain("%", plain.Stderr);
    }
}
