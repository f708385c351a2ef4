using System.Collections.Concurrent;
using Npgsql;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The PASID tables, domains, mms, handles and devices, updated in the append transaction. It folds the
/// appended events onto its copy of the session state and writes only the rows those events touch.
/// Its copy is trusted only when it ends exactly one seq before the batch and was committed; otherwise
/// it re-folds the session from the log inside the same transaction.
/// </summary>
public sealed class SvaInlineProjection : IInlineProjection
{
    public const string ProjectionName = "sva_read_model";
    private readonly ConcurrentDictionary<string, SvaState> committed = new();
    private readonly ConcurrentDictionary<string, SvaState> pending = new();

    public string Name => ProjectionName;

    /// <summary>How many times the cached state could not be used and the session was re-folded.</summary>
    public int Refolds;

    public async Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        foreach (var batch in events.GroupBy(e => e.Session))
        {
            var list = batch.ToList();
            var session = batch.Key;
            var firstSeq = list[0].Seq;
            // Take the cached state out while this append is in flight: it comes back through Committed,
            // or is dropped by Aborted, so no copy is needed and a rolled-back append can never leak into it.
            var state = committed.TryRemove(session, out var cached) && cached.Seq == firstSeq - 1
                ? cached
                : await RefoldAsync(connection, session, firstSeq - 1, ct);
            var touched = new HashSet<(string, string)>();
            foreach (var stored in list)
            {
                if (stored.Seq != state.Seq + 1) throw new StoredEventException(session, stored.Seq, $"expected seq {state.Seq + 1}");
                var e = EventCodec.DecodeOrPayload(stored);
                foreach (var t in SvaRows.Touched(state, e)) touched.Add(t);
                Evolve.Apply(state, e);
            }
            var upserts = new List<Row>();
            var deletes = new List<(string, object?[])>();
            foreach (var (table, key) in touched)
            {
                var row = SvaRows.Lookup(state, table, key);
                if (row is null) deletes.Add((table, RowWriter.KeyValues(table, key)));
                else upserts.Add(row);
            }
            await RowWriter.WriteAsync(connection, session, upserts, deletes, deleteAllFirst: false, ct);
            pending[session] = state;
        }
    }

    /// <summary>The append committed: the pending states become the trusted ones.</summary>
    public void Committed(IReadOnlyList<StoredEvent> events)
    {
        foreach (var session in events.Select(e => e.Session).Distinct())
            if (pending.TryRemove(session, out var s)) committed[session] = s;
    }

    /// <summary>The append rolled back: forget what it would have done.</summary>
    public void Aborted(string session)
    {
        pending.TryRemove(session, out _);
        committed.TryRemove(session, out _);
    }

    private async Task<SvaState> RefoldAsync(NpgsqlConnection conn, string session, long toSeq, CancellationToken ct)
    {
        Interlocked.Increment(ref Refolds);
        var state = new SvaState();
        await using var cmd = new NpgsqlCommand("SELECT seq, type, data::text FROM events WHERE session = $1 AND seq <= $2 ORDER BY seq", conn);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
        cmd.Parameters.Add(new NpgsqlParameter<long> { TypedValue = toSeq });
        await using var rd = await cmd.ExecuteReaderAsync(ct);
        while (await rd.ReadAsync(ct))
        {
            var seq = rd.GetInt64(0);
            if (seq != state.Seq + 1) throw new StoredEventException(session, seq, $"expected seq {state.Seq + 1}");
            var stored = new StoredEvent(0, session, seq, rd.GetString(1), rd.GetString(2), "{}", null, default, []);
            Evolve.Apply(state, EventCodec.Decode(stored));
        }
        if (state.Seq != toSeq) throw new StoredEventException(session, toSeq, $"log ends at seq {state.Seq}");
        return state;
    }
}
