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
    private PgEventStore store = null!;

    public async Task InitializeAsync()
    {
        db = "sva_t_" + Guid.NewGuid().ToString("N")[..12];
        await using (var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = "postgres" }.ConnectionString))
        {
            await admin.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {db}", admin);
            await cmd.ExecuteNonQueryAsync();
        }
        store = PgEventStore.Create(new NpgsqlConnectionStringBuilder(f.ConnectionString) { Database = db }.ConnectionString, [new SvaInlineProjection()]);
        await store.EnsureSchemaAsync();
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

    [Fact]
    public async Task daemon_and_rebuild_under_concurrent_writers_skip_and_lose_nothing()
    {
        var handler = new RecordCallsHandler(store);
        var daemon = new ProjectionDaemon(store, [new AuditBindingsProjection()]) { PageSize = 37, PollInterval = TimeSpan.FromMilliseconds(100) };
        using var stop = new CancellationTokenSource();
        var daemonRun = daemon.RunAsync(stop.Token);

        var sessions = new[] { "10", "11", "12", "13" };
        var writers = sessions.Select(s => Task.Run(() => handler.HandleAsync(new RecordCalls("w" + s, "6.8", null, Workload(s, 60), ChunkSize: 1), default))).ToList();
        // Rebuild and swap the read model while the writers run.
        var until = DateTime.UtcNow.AddSeconds(60);
        while (await store.ReadHeadPositionAsync() < 300 && DateTime.UtcNow < until) await Task.Delay(20);
        Assert.False(writers.All(w => w.IsCompleted), "the writers finished before the rebuild: the test would not test the swap under load");
        var rebuilt = await ReadModel.RebuildAllAsync(store);
        Assert.True(rebuilt.Events > 0);
        await Task.WhenAll(writers);

        var head = await store.ReadHeadPositionAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await daemon.StatusAsync()).Single(p => p.Name == AuditBindingsProjection.ProjectionName).Checkpoint < head && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        await stop.CancelAsync();
        await daemonRun;

        // Global positions: 1..head, no hole, no duplicate.
        var positions = new List<long>();
        await foreach (var e in store.ReadAllAsync()) positions.Add(e.Position);
        Assert.Equal(Enumerable.Range(1, (int)head).Select(i => (long)i), positions);

        // The inline read model equals the log for every session, despite the swap in the middle.
        foreach (var s in sessions)
            Assert.Empty(await ReadModel.VerifySessionAsync(store, "w" + s));

        // The audit projection saw every binding interval exactly once, closed exactly when freed.
        var expected = new List<(string, string, long, long?)>();
        foreach (var s in sessions)
        {
            var open = new Dictionary<string, long>();
            await foreach (var stored in store.ReadSessionAsync("w" + s))
                switch (EventCodec.Decode(stored))
                {
                    case HandleIssued h: open[h.Handle] = stored.Seq; expected.Add(("w" + s, h.Handle, stored.Seq, null)); break;
                    case HandleFreed fr:
                        var i = expected.FindIndex(x => x.Item1 == "w" + s && x.Item2 == fr.Handle);
                        expected[i] = expected[i] with { Item4 = stored.Seq };
                        break;
                }
        }
        var actual = new List<(string, string, long, long?)>();
        await using (var conn = await store.DataSource.OpenConnectionAsync())
        await using (var cmd = new NpgsqlCommand("SELECT session, handle, issued_seq, unbound_seq FROM audit_bindings", conn))
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync()) actual.Add((r.GetString(0), r.GetString(1), r.GetInt64(2), r.IsDBNull(3) ? null : r.GetInt64(3)));
        Assert.Equal(expected.Order(), actual.Order());
        Assert.Contains(actual, a => a.Item4 is null);   // some bindings are still open
        Assert.Contains(actual, a => a.Item4 is not null);
    }

    [Fact]
    public async Task a_hole_in_positions_stops_the_daemon_instead_of_skipping()
    {
        var handler = new RecordCallsHandler(store);
        await handler.HandleAsync(new RecordCalls("gap", "6.8", null, Workload("20", 3)), default);
        // Burn positions without events, as a broken writer would.
        await using (var conn = await store.DataSource.OpenConnectionAsync())
        await using (var cmd = new NpgsqlCommand("UPDATE store_position SET last = last + 5 WHERE id = 1", conn))
            await cmd.ExecuteNonQueryAsync();
        await handler.HandleAsync(new RecordCalls("gap", "6.8", null, Workload("21", 1).Skip(2).ToList()), default);
        var daemon = new ProjectionDaemon(store, [new AuditBindingsProjection()]);
        var ex = await Assert.ThrowsAsync<ProjectionGapException>(() => daemon.CatchUpAsync(new AuditBindingsProjection()));
        var before = (await daemon.StatusAsync()).Single(p => p.Name == AuditBindingsProjection.ProjectionName).Checkpoint;
        Assert.Equal(ex.Checkpoint, before);           // stopped at the hole, nothing beyond it applied
        Assert.Equal(ex.Checkpoint + 6, ex.Found);
    }
}
