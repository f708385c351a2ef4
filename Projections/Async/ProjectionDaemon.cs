using Npgsql;
using Sva.EventStore;

namespace Sva.Projections.Async;

/// <summary>The daemon met a hole in the global positions: it stops rather than skip an event.</summary>
public sealed class ProjectionGapException(string projection, long checkpoint, long found)
    : Exception($"projection {projection}: expected position {checkpoint + 1} after checkpoint {checkpoint}, found {found}; refusing to skip events")
{
    public long Checkpoint { get; } = checkpoint;
    public long Found { get; } = found;
}

public sealed record ProjectionStatus(string Name, string Mode, long Checkpoint, long Head, DateTimeOffset? UpdatedAt)
{
    public long Lag => Head - Checkpoint;
}

/// <summary>
/// Runs async projections from the global log. Each page is one transaction: lock the projection's
/// checkpoint row, read the next positions, check they follow the checkpoint without a hole, apply,
/// move the checkpoint, commit. Positions are gap-free in commit order (the store serialises appends
/// under one row lock), so "no hole" is an invariant, checked, never assumed. Woken by NOTIFY on
/// <see cref="PgEventStore.NotifyChannel"/>, with a polling fallback.
/// </summary>
public sealed class ProjectionDaemon(PgEventStore store, IReadOnlyList<IAsyncProjection> projections, TextWriter? log = null)
{
    public int PageSize { get; init; } = 5000;
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    public static IReadOnlyList<IAsyncProjection> Default() => [new AuditBindingsProjection()];

    private const string SqlEnsure = "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, now()) ON CONFLICT DO NOTHING";
    private const string SqlLock = "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE";
    private const string SqlPage = """
        SELECT position, session, seq, type, data::text, metadata::text, command_id, recorded_at, hash
        FROM events WHERE position > $1 ORDER BY position LIMIT $2
        """;
    private const string SqlMove = "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1";

    /// <summary>Applies every committed event after the checkpoint; returns the new checkpoint.</summary>
    public async Task<long> CatchUpAsync(IAsyncProjection p, CancellationToken ct = default)
    {
        while (true)
        {
            var (moved, checkpoint) = await PageAsync(p, ct);
            if (!moved) return checkpoint;
        }
    }

    private async Task<(bool Moved, long Checkpoint)> PageAsync(IAsyncProjection p, CancellationToken ct)
    {
        await using var conn = await store.DataSource.OpenConnectionAsync(ct);
        await using (var ensure = new NpgsqlCommand(SqlEnsure, conn))
        {
            ensure.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            await ensure.ExecuteNonQueryAsync(ct);
        }
        await using var tx = await conn.BeginTransactionAsync(ct);
        long checkpoint;
        await using (var lk = new NpgsqlCommand(SqlLock, conn))
        {
            lk.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            checkpoint = (long)(await lk.ExecuteScalarAsync(ct))!;
        }
        var page = new List<StoredEvent>(Math.Min(PageSize, 1024));
        long? hole = null;
        await using (var read = new NpgsqlCommand(SqlPage, conn))
        {
            read.Parameters.Add(new NpgsqlParameter<long> { TypedValue = checkpoint });
            read.Parameters.Add(new NpgsqlParameter<int> { TypedValue = PageSize });
            await using var r = await read.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var pos = r.GetInt64(0);
                var expected = checkpoint + page.Count + 1;
                if (pos != expected) { hole = pos; break; } // apply what precedes the hole, then stop
                page.Add(new StoredEvent(pos, r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4), r.GetString(5),
                    r.IsDBNull(6) ? null : r.GetGuid(6), r.GetFieldValue<DateTimeOffset>(7), r.GetFieldValue<byte[]>(8)));
            }
        }
        if (page.Count == 0)
        {
            await tx.CommitAsync(ct);
            if (hole is { } h0) throw new ProjectionGapException(p.Name, checkpoint, h0);
            return (false, checkpoint);
        }
        await p.ApplyAsync(conn, page, ct);
        var next = page[^1].Position;
        await using (var mv = new NpgsqlCommand(SqlMove, conn))
        {
            mv.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            mv.Parameters.Add(new NpgsqlParameter<long> { TypedValue = next });
            await mv.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        log?.WriteLine($"[daemon] {p.Name}: {checkpoint + 1}..{next}");
        if (hole is { } h) throw new ProjectionGapException(p.Name, next, h);
        return (true, next);
    }

    /// <summary>Empties a projection and sets its checkpoint to 0 in one transaction; the next catch-up rebuilds it.</summary>
    public async Task ResetAsync(IAsyncProjection p, CancellationToken ct = default)
    {
        await using var conn = await store.DataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var ensure = new NpgsqlCommand(SqlEnsure, conn))
        {
            ensure.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            await ensure.ExecuteNonQueryAsync(ct);
        }
        await using (var lk = new NpgsqlCommand(SqlLock, conn))
        {
            lk.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            await lk.ExecuteScalarAsync(ct);
        }
        await p.ResetAsync(conn, ct);
        await using (var mv = new NpgsqlCommand(SqlMove, conn))
        {
            mv.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            mv.Parameters.Add(new NpgsqlParameter<long> { TypedValue = 0L });
            await mv.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>Catches up, then waits for NOTIFY (or the poll interval) and catches up again, until cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var listen = await store.DataSource.OpenConnectionAsync(ct);
                await using (var cmd = new NpgsqlCommand($"LISTEN {PgEventStore.NotifyChannel}", listen)) await cmd.ExecuteNonQueryAsync(ct);
                while (!ct.IsCancellationRequested)
                {
                    foreach (var p in projections) await CatchUpAsync(p, ct);
                    // A notification is only a hint; the timeout is the fallback for a lost one.
                    await listen.WaitAsync(PollInterval, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (NpgsqlException ex)
            {
                log?.WriteLine($"[daemon] connection lost ({ex.Message}); reconnecting");
                await Task.Delay(PollInterval, ct);
            }
        }
    }

    public async Task<IReadOnlyList<ProjectionStatus>> StatusAsync(CancellationToken ct = default)
    {
        var head = await store.ReadHeadPositionAsync(ct);
        var list = new List<ProjectionStatus> { new(SvaInlineProjection.ProjectionName, "inline", head, head, null) };
        await using var conn = await store.DataSource.OpenConnectionAsync(ct);
        foreach (var p in projections)
        {
            await using var cmd = new NpgsqlCommand("SELECT position, updated_at FROM projection_checkpoints WHERE name = $1", conn);
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = p.Name });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            list.Add(await r.ReadAsync(ct)
                ? new ProjectionStatus(p.Name, "async", r.GetInt64(0), head, r.IsDBNull(1) ? null : r.GetFieldValue<DateTimeOffset>(1))
                : new ProjectionStatus(p.Name, "async", 0, head, null));
        }
        return list;
    }
}
