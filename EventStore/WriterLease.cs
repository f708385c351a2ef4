using System.Security.Cryptography;
using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Sva.EventStore;

/// <summary>
/// A writer's claim on a recording source (e.g. one script into one session): a PostgreSQL session-level advisory lock
/// held on a connection of its own for as long as the writer records. It is released when disposed, and by the server
/// when the writer's process or connection dies, so "not held" means "no live writer": only then may a run resume what
/// an earlier one left half done. The connection's application_name names the holder (<c>sva pid@host</c>).
/// </summary>
public sealed class WriterLease : IAsyncDisposable
{
    private readonly NpgsqlConnection? connection;
    private readonly long key;

    private WriterLease(NpgsqlConnection? connection, long key, string? holder)
    {
        this.connection = connection;
        this.key = key;
        Holder = holder;
    }

    /// <summary>Taken: this process holds the lease until disposed.</summary>
    public bool Held => connection is not null;

    /// <summary>When not held: who holds it (application_name, server pid, client address, since), as far as visible.</summary>
    public string? Holder { get; }

    /// <summary>The 64-bit advisory lock key of a name (the first 8 bytes of its SHA-256).</summary>
    public static long KeyOf(string name) => BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("sva-lease|" + name)), 0);

    /// <summary>The application_name this process gives the connection that holds a lease.</summary>
    public static string ThisWriter => Truncate($"sva {Environment.ProcessId}@{Environment.MachineName}", 63);

    /// <summary>Tries to take the lease named <paramref name="name"/> in the database of <paramref name="dataSource"/>
    /// without waiting.</summary>
    public static async Task<WriterLease> TryTakeAsync(NpgsqlDataSource dataSource, string name, CancellationToken ct)
    {
        var key = KeyOf(name);
        var conn = await dataSource.OpenConnectionAsync(ct);
        try
        {
            await using (var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", conn) { Parameters = { Bigint(key) } })
            {
                if ((bool)(await cmd.ExecuteScalarAsync(ct))!)
                {
                    await using var name_ = new NpgsqlCommand("SELECT set_config('application_name', $1, false)", conn)
                    { Parameters = { new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = ThisWriter } } };
                    await name_.ExecuteNonQueryAsync(ct);
                    return new WriterLease(conn, key, null);
                }
            }
            string? holder = null;
            await using (var who = new NpgsqlCommand(
                """
                SELECT coalesce(nullif(a.application_name, ''), '?'), l.pid, coalesce(host(a.client_addr), 'local'), a.backend_start
                FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid::bigint = (($1 >> 32) & 4294967295) AND l.objid::bigint = ($1 & 4294967295) AND l.objsubid = 1
                LIMIT 1
                """, conn) { Parameters = { Bigint(key) } })
            await using (var r = await who.ExecuteReaderAsync(ct))
                if (await r.ReadAsync(ct))
                    holder = $"{r.GetString(0)} (server pid {r.GetInt32(1)}, from {r.GetString(2)}" +
                             (r.IsDBNull(3) ? ")" : $", since {r.GetFieldValue<DateTime>(3).ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC)");
            await conn.DisposeAsync();
            return new WriterLease(null, key, holder ?? "another writer (gone a moment ago: try again)");
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (connection is null) return;
        try
        {
            await using var u = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", connection) { Parameters = { Bigint(key) } };
            await u.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (NpgsqlException) { /* the connection is gone: so is the lock */ }
        await connection.DisposeAsync();
    }

    private static NpgsqlParameter Bigint(long v) => new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint, TypedValue = v };
    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..n];
}
