using System.Text.Json.Nodes;
using Npgsql;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections.Async;

/// <summary>Binding intervals across all sessions: opened by handle_issued, closed by handle_freed.</summary>
public sealed class AuditBindingsProjection : IAsyncProjection
{
    public const string ProjectionName = "audit_bindings";
    public string Name => ProjectionName;

    private const string SqlOpen = """
        INSERT INTO audit_bindings (session, handle, issued_seq, device, pasid, mm, domain, bound_at, bound_by)
        SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::integer[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
        ON CONFLICT DO NOTHING
        """;
    private const string SqlClose = """
        UPDATE audit_bindings b SET unbound_seq = c.seq, unbound_at = c.at, unbound_by = c.src
        FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[]) AS c(session, handle, seq, at, src)
        WHERE b.session = c.session AND b.handle = c.handle AND b.unbound_seq IS NULL
        """;

    public async Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        var opens = new List<(string S, string H, long Seq, string Dev, int Pasid, string Mm, string? Dom, DateTime At, string? By)>();
        var closes = new List<(string S, string H, long Seq, DateTime At, string? By)>();
        foreach (var e in events)
        {
            if (e.Type is not ("handle_issued" or "handle_freed")) continue;
            var source = (JsonNode.Parse(e.MetadataJson) as JsonObject)?["source"]?.GetValue<string>();
            switch (EventCodec.Decode(e))
            {
                case HandleIssued h:
                    opens.Add((e.Session, h.Handle, e.Seq, h.Device, h.Pasid, h.Mm, h.Domain, e.RecordedAt.UtcDateTime, source));
                    break;
                case HandleFreed f:
                    // An interval opened in this same page must exist before it is closed.
                    closes.Add((e.Session, f.Handle, e.Seq, e.RecordedAt.UtcDateTime, source));
                    break;
            }
        }
        if (opens.Count == 0 && closes.Count == 0) return;
        await using var batch = new NpgsqlBatch(connection);
        if (opens.Count > 0)
        {
            var c = new NpgsqlBatchCommand(SqlOpen);
            c.Parameters.Add(new() { Value = opens.Select(o => o.S).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.H).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.Seq).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.Dev).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.Pasid).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.Mm).ToArray() });
            c.Parameters.Add(new() { Value = opens.Select(o => o.Dom).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            c.Parameters.Add(new() { Value = opens.Select(o => o.At).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz });
            c.Parameters.Add(new() { Value = opens.Select(o => o.By).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            batch.BatchCommands.Add(c);
        }
        if (closes.Count > 0)
        {
            var c = new NpgsqlBatchCommand(SqlClose);
            c.Parameters.Add(new() { Value = closes.Select(o => o.S).ToArray() });
            c.Parameters.Add(new() { Value = closes.Select(o => o.H).ToArray() });
            c.Parameters.Add(new() { Value = closes.Select(o => o.Seq).ToArray() });
            c.Parameters.Add(new() { Value = closes.Select(o => o.At).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.TimestampTz });
            c.Parameters.Add(new() { Value = closes.Select(o => o.By).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            batch.BatchCommands.Add(c);
        }
        await batch.ExecuteNonQueryAsync(ct);
    }

    public async Task ResetAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("DELETE FROM audit_bindings", connection);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
