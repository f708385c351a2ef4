using System.Data;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Npgsql;
using NpgsqlTypes;

namespace Sva.EventStore;

/// <summary>
/// The PostgreSQL event store. Thread-safe; one instance per process and connection string
/// (it owns an <see cref="NpgsqlDataSource"/>, i.e. a connection pool).
/// </summary>
/// <remarks>
/// Ordering guarantees: <see cref="StoredEvent.Position"/> is taken from the single <c>store_position</c> row inside
/// the appending transaction, so appends are serialized, positions are gap-free in commit order and a reader that
/// reads forward from its checkpoint never skips an event that commits late (a rolled back append rolls back
/// the counter as well). Per session, seqs are expectedVersion+1 .. expectedVersion+n, gap-free.
/// </remarks>
public sealed partial class PgEventStore : IAsyncDisposable
{
    /// <summary>LISTEN channel; the payload of each append is <c>session:last_seq</c>.</summary>
    public const string NotifyChannel = "sva_events";

    /// <summary>Appends of more events than this use binary COPY; smaller ones one INSERT ... SELECT FROM unnest(...).</summary>
    public const int CopyThreshold = 100;

    /// <summary>Key of the transaction-level advisory lock held while a schema file runs (same as pg-up.sh).</summary>
    public const long SchemaLockKey = 7360001;

    private const int PageSize = 2000;
    private const int MaxSessionIdLength = 200;

    // ---- SQL (all parameters positional; no DDL here: the schema lives in postgres-init/schema) ----
    private const string EventColumns = "position, session, seq, type, data::text, metadata::text, command_id, recorded_at, hash";

    private const string SqlCommandLookup =
        """
        SELECT c.first_seq, c.last_seq, f.position, l.position
        FROM commands c
        JOIN events f ON f.session = c.session AND f.seq = c.first_seq
        JOIN events l ON l.session = c.session AND l.seq = c.last_seq
        WHERE c.session = $1 AND c.command_id = $2
        """;

    private const string SqlSessionHead = "SELECT version, last_hash FROM sessions WHERE id = $1";

    // Round trip through jsonb: the text PostgreSQL will render for what we store (and what we hash).
    private const string SqlNormalize =
        "SELECT u.d::jsonb::text, u.m::jsonb::text FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(d, m, i) ORDER BY u.i";

    private const string SqlTakePositions = "UPDATE store_position SET last = last + $1 WHERE id = 1 RETURNING last, now()";

    private const string SqlBumpSession =
        "UPDATE sessions SET version = $2, last_hash = $3 WHERE id = $1 AND version = $4 AND last_hash IS NOT DISTINCT FROM $5 RETURNING version";

    private const string SqlInsertEvents =
        """
        INSERT INTO events (position, session, seq, type, data, metadata, command_id, hash)
        SELECT $1 + u.i - 1, $2, $3 + u.i - 1, u.t, u.d::jsonb, u.m::jsonb, $4, u.h
        FROM unnest($5::text[], $6::text[], $7::text[], $8::bytea[]) WITH ORDINALITY AS u(t, d, m, h, i)
        """;

    private const string SqlCopyEvents =
        "COPY events (position, session, seq, type, data, metadata, command_id, hash) FROM STDIN (FORMAT BINARY)";

    private const string SqlRecordCommand = "INSERT INTO commands (session, command_id, first_seq, last_seq) VALUES ($1, $2, $3, $4)";
    private const string SqlNotify = "SELECT pg_notify('" + NotifyChannel + "', $1 || ':' || $2::text)";
    private const string SqlSessionVersion = "SELECT version FROM sessions WHERE id = $1";

    private const string SqlReadSessionPage =
        "SELECT " + EventColumns + " FROM events WHERE session = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4";

    private const string SqlReadAllPage =
        "SELECT " + EventColumns + " FROM events WHERE position >= $1 AND position <= $2 ORDER BY position LIMIT $3";

    private const string SqlHead = "SELECT last FROM store_position WHERE id = 1";

    private const string SqlCreateSession =
        "INSERT INTO sessions (id, kernel, source) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING RETURNING created_at";

    private const string SqlGetSession = "SELECT id, kernel, source, created_at, version FROM sessions WHERE id = $1";
    private const string SqlListSessions = "SELECT id, kernel, source, created_at, version FROM sessions ORDER BY created_at, id";

    private const string SqlSaveSnapshot =
        "INSERT INTO snapshots (session, seq, data) VALUES ($1, $2, $3::jsonb) ON CONFLICT (session, seq) DO UPDATE SET data = EXCLUDED.data, created_at = now()";

    private const string SqlLoadSnapshot =
        "SELECT seq, data::text FROM snapshots WHERE session = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1";

    private const string SqlSaveCheckpoint =
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, now()) ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at";

    private const string SqlLoadCheckpoint = "SELECT position FROM projection_checkpoints WHERE name = $1";
    private const string SqlSchemaLock = "SELECT pg_advisory_xact_lock($1)";

    private readonly IInlineProjection[] _inline;

    private PgEventStore(NpgsqlDataSource dataSource, string endpoint, IInlineProjection[] inline)
    {
        DataSource = dataSource;
        Endpoint = endpoint;
        _inline = inline;
    }

    /// <summary>The connection pool, for read-model queries by other projects.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>host:port of the database (as named in exception messages).</summary>
    public string Endpoint { get; }

    /// <summary>Names of the schema files embedded in this assembly, in the order <see cref="EnsureSchemaAsync"/> applies them.</summary>
    public static IReadOnlyList<string> SchemaFileNames => SchemaScripts.All.Select(s => s.Name).ToList();

    public static PgEventStore Create(string connectionString, IEnumerable<IInlineProjection>? inline = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        var endpoint = $"{(string.IsNullOrEmpty(csb.Host) ? "localhost" : csb.Host)}:{csb.Port}";
        var projections = (inline ?? []).ToArray();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in projections)
        {
            ArgumentNullException.ThrowIfNull(p, nameof(inline));
            if (string.IsNullOrWhiteSpace(p.Name)) throw new ArgumentException("an inline projection has no name", nameof(inline));
            if (!names.Add(p.Name)) throw new ArgumentException($"two inline projections are named '{p.Name}'", nameof(inline));
        }

        return new PgEventStore(new NpgsqlDataSourceBuilder(csb.ConnectionString).Build(), endpoint, projections);
    }

    public ValueTask DisposeAsync() => DataSource.DisposeAsync();

    // ------------------------------------------------------------------ schema

    /// <summary>Applies the embedded postgres-init/schema/*.sql files in name order (same as pg-up.sh): each in its own
    /// transaction holding the advisory lock <see cref="SchemaLockKey"/>. Idempotent; safe to call concurrently.</summary>
    public Task EnsureSchemaAsync(CancellationToken ct = default) =>
        RunAsync(async conn =>
        {
            foreach (var (name, sql) in SchemaScripts.All)
            {
                await using var tx = await conn.BeginTransactionAsync(ct);
                await using (var lockCmd = Command(conn, SqlSchemaLock, Bigint(SchemaLockKey)))
                    await lockCmd.ExecuteNonQueryAsync(ct);
                try
                {
                    await using var cmd = new NpgsqlCommand(sql, conn);
                    cmd.CommandTimeout = 300;
                    await cmd.ExecuteNonQueryAsync(ct);
                }
                catch (PostgresException ex)
                {
                    throw new InvalidOperationException($"schema file {name} failed: {ex.MessageText} (SQLSTATE {ex.SqlState})", ex);
                }

                await tx.CommitAsync(ct);
            }

            return true;
        }, ct);

    // ------------------------------------------------------------------ sessions

    public Task<SessionInfo> CreateSessionAsync(string id, string kernel, string? source, CancellationToken ct = default)
    {
        ValidateSessionId(id);
        ArgumentNullException.ThrowIfNull(kernel);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlCreateSession, Text(id), Text(kernel), NullableText(source));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) throw new SessionExistsException(id);
            return new SessionInfo(id, kernel, source, r.GetFieldValue<DateTimeOffset>(0), 0);
        }, ct);
    }

    public Task<SessionInfo?> GetSessionAsync(string id, CancellationToken ct = default)
    {
        ValidateSessionId(id);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlGetSession, Text(id));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            return await r.ReadAsync(ct) ? ReadSession(r) : null;
        }, ct);
    }

    public Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken ct = default) =>
        RunAsync<IReadOnlyList<SessionInfo>>(async conn =>
        {
            await using var cmd = Command(conn, SqlListSessions);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var list = new List<SessionInfo>();
            while (await r.ReadAsync(ct)) list.Add(ReadSession(r));
            return list;
        }, ct);

    // ------------------------------------------------------------------ append

    /// <summary>
    /// Appends <paramref name="events"/> to <paramref name="session"/> if its version (last seq) is
    /// <paramref name="expectedVersion"/>, in one transaction with the inline projections and a NOTIFY.
    /// If <paramref name="commandId"/> already appended to this session, nothing is written and the earlier
    /// result is returned with <see cref="AppendResult.Duplicate"/> = true, whatever <paramref name="expectedVersion"/> is.
    /// </summary>
    /// <exception cref="ConcurrencyException">The session's version is not <paramref name="expectedVersion"/>.</exception>
    /// <exception cref="SessionNotFoundException">No such session.</exception>
    /// <exception cref="InlineProjectionException">An inline projection threw; nothing was written.</exception>
    /// <exception cref="EventStoreUnavailableException">The database cannot be reached.</exception>
    /// <exception cref="ArgumentException">Invalid arguments, or a payload that is not valid JSON.</exception>
    public Task<AppendResult> AppendAsync(string session, long expectedVersion, Guid commandId, IReadOnlyList<NewEvent> events,
        CancellationToken ct = default)
    {
        ValidateSessionId(session);
        ArgumentOutOfRangeException.ThrowIfNegative(expectedVersion);
        if (commandId == Guid.Empty) throw new ArgumentException("the command id must not be Guid.Empty", nameof(commandId));
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0) throw new ArgumentException("nothing to append: the event list is empty", nameof(events));
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i] ?? throw new ArgumentException($"event #{i} is null", nameof(events));
            if (string.IsNullOrWhiteSpace(e.Type)) throw new ArgumentException($"event #{i} has no type", nameof(events));
            if (e.DataJson is null) throw new ArgumentException($"event #{i} ({e.Type}) has no data", nameof(events));
            if (e.MetadataJson is null) throw new ArgumentException($"event #{i} ({e.Type}) has no metadata", nameof(events));
        }

        return RunAsync(conn => AppendCoreAsync(conn, session, expectedVersion, commandId, events, ct), ct);
    }

    private async Task<AppendResult> AppendCoreAsync(NpgsqlConnection conn, string session, long expected, Guid commandId,
        IReadOnlyList<NewEvent> events, CancellationToken ct)
    {
        var n = events.Count;

        // ---- phase 1, outside the transaction (no lock held): duplicate?, session head, normalized payloads.
        AppendResult? duplicate;
        long version;
        byte[]? lastHash;
        var data = new string[n];
        var meta = new string[n];
        // The hash is over PostgreSQL's jsonb rendering of each payload: computed here when JsonbText is
        // certain of it, else asked of the server (one more round trip carrying every payload).
        var normalizedLocally = true;
        for (var i = 0; i < n && normalizedLocally; i++)
            normalizedLocally = JsonbText.TryCanonical(events[i].DataJson, out data[i]) && JsonbText.TryCanonical(events[i].MetadataJson, out meta[i]);
        if (!normalizedLocally)
            for (var i = 0; i < n; i++)
            {
                data[i] = events[i].DataJson;
                meta[i] = events[i].MetadataJson;
            }

        try
        {
            await using var batch = new NpgsqlBatch(conn);
            batch.BatchCommands.Add(BatchCommand(SqlCommandLookup, Text(session), Uuid(commandId)));
            batch.BatchCommands.Add(BatchCommand(SqlSessionHead, Text(session)));
            if (!normalizedLocally) batch.BatchCommands.Add(BatchCommand(SqlNormalize, TextArray(data), TextArray(meta)));
            await batch.PrepareAsync(ct);
            await using var r = await batch.ExecuteReaderAsync(ct);
            duplicate = await ReadDuplicateAsync(r, session, ct);
            await r.NextResultAsync(ct);
            if (!await r.ReadAsync(ct)) throw new SessionNotFoundException(session);
            version = r.GetInt64(0);
            lastHash = r.IsDBNull(1) ? null : r.GetFieldValue<byte[]>(1);
            if (!normalizedLocally)
            {
                await r.NextResultAsync(ct);
                var i = 0;
                while (await r.ReadAsync(ct))
                {
                    data[i] = r.GetString(0);
                    meta[i] = r.GetString(1);
                    i++;
                }

                if (i != n) throw new InvalidOperationException($"normalizing {n} payloads returned {i} rows");
            }
        }
        catch (PostgresException ex) when (ex.SqlState.StartsWith("22", StringComparison.Ordinal))
        {
            throw new ArgumentException($"cannot append to session '{session}': an event's data or metadata is not valid JSON for jsonb: {ex.MessageText}", nameof(events), ex);
        }

        if (duplicate is not null) return duplicate;
        if (version != expected)
        {
            // A concurrent append of this very command may have committed between our two reads: look again.
            duplicate = await LookupCommandAsync(conn, session, commandId, ct);
            if (duplicate is not null) return duplicate;
            throw new ConcurrencyException(session, expected, version);
        }

        // Hash chain, computed client-side over the normalized texts (see EventHash).
        var hashes = new byte[n][];
        using (var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            ReadOnlySpan<byte> prev = lastHash ?? EventHash.Genesis();
            for (var i = 0; i < n; i++)
            {
                var h = new byte[EventHash.Size];
                EventHash.Compute(sha, prev, session, expected + 1 + i, events[i].Type, data[i], meta[i], h);
                hashes[i] = h;
                prev = h;
            }
        }

        // ---- phase 2, the transaction. Its first statement takes the store_position row lock: appends are serialized
        // from here to commit, so positions are handed out in commit order.
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);
        long lastPosition;
        DateTimeOffset recordedAt;
        bool bumped;
        await using (var batch = new NpgsqlBatch(conn, tx))
        {
            batch.BatchCommands.Add(BatchCommand(SqlTakePositions, Bigint(n)));
            // Under the lock: a duplicate committed by anyone before us is visible now.
            batch.BatchCommands.Add(BatchCommand(SqlCommandLookup, Text(session), Uuid(commandId)));
            batch.BatchCommands.Add(BatchCommand(SqlBumpSession, Text(session), Bigint(expected + n), Bytea(hashes[n - 1]),
                Bigint(expected), Bytea(lastHash)));
            await batch.PrepareAsync(ct);
            await using var r = await batch.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) throw new InvalidOperationException("store_position has no row: was the schema applied?");
            lastPosition = r.GetInt64(0);
            recordedAt = r.GetFieldValue<DateTimeOffset>(1);
            await r.NextResultAsync(ct);
            duplicate = await ReadDuplicateAsync(r, session, ct);
            await r.NextResultAsync(ct);
            bumped = await r.ReadAsync(ct);
        }

        if (duplicate is not null)
        {
            await tx.RollbackAsync(ct);
            return duplicate;
        }

        if (!bumped)
        {
            await tx.RollbackAsync(ct);
            var actual = await ReadVersionAsync(conn, session, ct) ?? throw new SessionNotFoundException(session);
            throw new ConcurrencyException(session, expected, actual);
        }

        var firstPosition = lastPosition - n + 1;
        var firstSeq = expected + 1;
        var lastSeq = expected + n;

        if (n <= CopyThreshold)
        {
            var types = new string[n];
            for (var i = 0; i < n; i++) types[i] = events[i].Type;
            await using var batch = new NpgsqlBatch(conn, tx);
            batch.BatchCommands.Add(BatchCommand(SqlInsertEvents, Bigint(firstPosition), Text(session), Bigint(firstSeq), Uuid(commandId),
                TextArray(types), TextArray(data), TextArray(meta), ByteaArray(hashes)));
            batch.BatchCommands.Add(BatchCommand(SqlRecordCommand, Text(session), Uuid(commandId), Bigint(firstSeq), Bigint(lastSeq)));
            batch.BatchCommands.Add(BatchCommand(SqlNotify, Text(session), Bigint(lastSeq)));
            await batch.PrepareAsync(ct);
            await batch.ExecuteNonQueryAsync(ct);
        }
        else
        {
            await using (var importer = await conn.BeginBinaryImportAsync(SqlCopyEvents, ct))
            {
                for (var i = 0; i < n; i++)
                {
                    await importer.StartRowAsync(ct);
                    await importer.WriteAsync(firstPosition + i, NpgsqlDbType.Bigint, ct);
                    await importer.WriteAsync(session, NpgsqlDbType.Text, ct);
                    await importer.WriteAsync(firstSeq + i, NpgsqlDbType.Bigint, ct);
                    await importer.WriteAsync(events[i].Type, NpgsqlDbType.Text, ct);
                    await importer.WriteAsync(data[i], NpgsqlDbType.Jsonb, ct);
                    await importer.WriteAsync(meta[i], NpgsqlDbType.Jsonb, ct);
                    await importer.WriteAsync(commandId, NpgsqlDbType.Uuid, ct);
                    await importer.WriteAsync(hashes[i], NpgsqlDbType.Bytea, ct);
                }

                await importer.CompleteAsync(ct);
            }

            await using var batch = new NpgsqlBatch(conn, tx);
            batch.BatchCommands.Add(BatchCommand(SqlRecordCommand, Text(session), Uuid(commandId), Bigint(firstSeq), Bigint(lastSeq)));
            batch.BatchCommands.Add(BatchCommand(SqlNotify, Text(session), Bigint(lastSeq)));
            await batch.PrepareAsync(ct);
            await batch.ExecuteNonQueryAsync(ct);
        }

        StoredEvent[]? applied = null;
        if (_inline.Length > 0)
        {
            var stored = new StoredEvent[n];
            for (var i = 0; i < n; i++)
            {
                stored[i] = new StoredEvent(firstPosition + i, session, firstSeq + i, events[i].Type, data[i], meta[i], commandId,
                    recordedAt, hashes[i], events[i].Payload);
            }

            foreach (var projection in _inline)
            {
                try
                {
                    await projection.ApplyAsync(conn, stored, ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException && !IsUnavailable(ex))
                {
                    AbortAll(session);
                    throw new InlineProjectionException(projection.Name, session, ex); // the transaction is rolled back on dispose
                }
                catch
                {
                    AbortAll(session);
                    throw;
                }
            }
            applied = stored;
        }

        try
        {
            await tx.CommitAsync(ct);
        }
        catch
        {
            AbortAll(session);
            throw;
        }
        if (applied is not null)
            foreach (var projection in _inline) projection.Committed(applied);
        return new AppendResult(session, firstSeq, lastSeq, firstPosition, lastPosition, Duplicate: false);
    }

    private void AbortAll(string session)
    {
        foreach (var projection in _inline) projection.Aborted(session);
    }

    private static async Task<AppendResult?> ReadDuplicateAsync(NpgsqlDataReader r, string session, CancellationToken ct)
    {
        if (!await r.ReadAsync(ct)) return null;
        return new AppendResult(session, r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), Duplicate: true);
    }

    private static async Task<AppendResult?> LookupCommandAsync(NpgsqlConnection conn, string session, Guid commandId, CancellationToken ct)
    {
        await using var cmd = Command(conn, SqlCommandLookup, Text(session), Uuid(commandId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await ReadDuplicateAsync(r, session, ct);
    }

    private static async Task<long?> ReadVersionAsync(NpgsqlConnection conn, string session, CancellationToken ct)
    {
        await using var cmd = Command(conn, SqlSessionVersion, Text(session));
        var v = await cmd.ExecuteScalarAsync(ct);
        return v is long l ? l : null;
    }

    // ------------------------------------------------------------------ read

    /// <summary>The session's events with fromSeq &lt;= seq &lt;= toSeq, in seq order (read in pages; no transaction is held open).</summary>
    public async IAsyncEnumerable<StoredEvent> ReadSessionAsync(string session, long fromSeq = 1, long toSeq = long.MaxValue,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var next = Math.Max(fromSeq, 1);
        while (next <= toSeq)
        {
            var from = next;
            var page = await RunAsync(conn => ReadPageAsync(conn, SqlReadSessionPage, ct, Text(session), Bigint(from), Bigint(toSeq), Integer(PageSize)), ct);
            foreach (var e in page) yield return e;
            if (page.Count < PageSize || page[^1].Seq == long.MaxValue) yield break;
            next = page[^1].Seq + 1;
        }
    }

    /// <summary>All events with fromPosition &lt;= position &lt;= toPosition, in position (= commit) order, read in pages.
    /// What a call returns is always a gap-free prefix of what will ever be committed from fromPosition on.</summary>
    public async IAsyncEnumerable<StoredEvent> ReadAllAsync(long fromPosition = 1, long toPosition = long.MaxValue,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var next = Math.Max(fromPosition, 1);
        while (next <= toPosition)
        {
            var from = next;
            var page = await RunAsync(conn => ReadPageAsync(conn, SqlReadAllPage, ct, Bigint(from), Bigint(toPosition), Integer(PageSize)), ct);
            foreach (var e in page) yield return e;
            if (page.Count < PageSize || page[^1].Position == long.MaxValue) yield break;
            next = page[^1].Position + 1;
        }
    }

    /// <summary>The last committed position (0 when the store is empty).</summary>
    public Task<long> ReadHeadPositionAsync(CancellationToken ct = default) =>
        RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlHead);
            return await cmd.ExecuteScalarAsync(ct) is long l ? l : 0L;
        }, ct);

    private static async Task<List<StoredEvent>> ReadPageAsync(NpgsqlConnection conn, string sql, CancellationToken ct, params NpgsqlParameter[] ps)
    {
        await using var cmd = Command(conn, sql, ps);
        await cmd.PrepareAsync(ct);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<StoredEvent>();
        while (await r.ReadAsync(ct))
        {
            list.Add(new StoredEvent(
                r.GetInt64(0), r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4), r.GetString(5),
                r.IsDBNull(6) ? null : r.GetGuid(6), r.GetFieldValue<DateTimeOffset>(7), r.GetFieldValue<byte[]>(8)));
        }

        return list;
    }

    // ------------------------------------------------------------------ snapshots and checkpoints

    /// <summary>Stores (or replaces) the snapshot of <paramref name="session"/> at <paramref name="seq"/>. Snapshots are a cache.</summary>
    public Task SaveSnapshotAsync(string session, long seq, string json, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        ArgumentOutOfRangeException.ThrowIfNegative(seq);
        ArgumentNullException.ThrowIfNull(json);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlSaveSnapshot, Text(session), Bigint(seq), Text(json));
            return await cmd.ExecuteNonQueryAsync(ct);
        }, ct);
    }

    /// <summary>The snapshot with the highest seq &lt;= <paramref name="atOrBelowSeq"/>, or null.</summary>
    public Task<(long Seq, string Json)?> LoadSnapshotAsync(string session, long atOrBelowSeq, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        return RunAsync<(long Seq, string Json)?>(async conn =>
        {
            await using var cmd = Command(conn, SqlLoadSnapshot, Text(session), Bigint(atOrBelowSeq));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return null;
            return (r.GetInt64(0), r.GetString(1));
        }, ct);
    }

    /// <summary>Stores the position a (non-inline) projection has processed up to.</summary>
    public Task SaveCheckpointAsync(string projection, long position, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(projection);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlSaveCheckpoint, Text(projection), Bigint(position));
            return await cmd.ExecuteNonQueryAsync(ct);
        }, ct);
    }

    /// <summary>The stored checkpoint of a projection, or null.</summary>
    public Task<long?> LoadCheckpointAsync(string projection, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(projection);
        return RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlLoadCheckpoint, Text(projection));
            return await cmd.ExecuteScalarAsync(ct) is long l ? l : (long?)null;
        }, ct);
    }

    // ------------------------------------------------------------------ verify

    /// <summary>Recomputes the session's hash chain from the stored rows. Reports the first seq that is missing, out of
    /// place or whose stored hash differs from the recomputed one (content or chain altered), and checks the session head.</summary>
    public async Task<VerifyResult> VerifyAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var (version, headHash) = await RunAsync(async conn =>
        {
            await using var cmd = Command(conn, SqlSessionHead, Text(session));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) throw new SessionNotFoundException(session);
            return (r.GetInt64(0), r.IsDBNull(1) ? null : r.GetFieldValue<byte[]>(1));
        }, ct);

        var prev = EventHash.Genesis();
        var computed = new byte[EventHash.Size];
        long expectedSeq = 1, checkedCount = 0;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await foreach (var e in ReadSessionAsync(session, 1, long.MaxValue, ct))
        {
            if (e.Seq != expectedSeq)
                return Broken(expectedSeq, $"seq {expectedSeq} is missing (the next stored seq is {e.Seq})");
            EventHash.Compute(sha, prev, e.Session, e.Seq, e.Type, e.DataJson, e.MetadataJson, computed);
            if (!computed.AsSpan().SequenceEqual(e.Hash))
                return Broken(e.Seq, $"the stored hash of seq {e.Seq} does not match its recomputed hash: the event or an earlier link was altered");
            prev = e.Hash;
            expectedSeq++;
            checkedCount++;
        }

        var lastSeq = expectedSeq - 1;
        if (lastSeq < version)
            return Broken(lastSeq + 1, $"the session's version is {version} but the events end at seq {lastSeq}");
        if (lastSeq > version)
            return Broken(version + 1, $"events are stored beyond the session's version {version} (up to seq {lastSeq})");
        if (version > 0 && (headHash is null || !headHash.AsSpan().SequenceEqual(prev)))
            return Broken(version, $"the session's last_hash does not match the hash of its last event (seq {version})");
        return new VerifyResult(session, true, checkedCount, null, null);

        VerifyResult Broken(long seq, string reason) => new(session, false, checkedCount, seq, reason);
    }

    // ------------------------------------------------------------------ plumbing

    private async Task<T> RunAsync<T>(Func<NpgsqlConnection, Task<T>> body, CancellationToken ct)
    {
        NpgsqlConnection conn;
        try
        {
            conn = await DataSource.OpenConnectionAsync(ct);
        }
        catch (Exception ex) when ((ex is NpgsqlException or SocketException or TimeoutException or IOException) && !ct.IsCancellationRequested)
        {
            throw new EventStoreUnavailableException(Endpoint, ex);
        }

        await using (conn)
        {
            try
            {
                return await body(conn);
            }
            catch (Exception ex) when (IsUnavailable(ex) && !ct.IsCancellationRequested)
            {
                throw new EventStoreUnavailableException(Endpoint, ex);
            }
        }
    }

    /// <summary>Connection-level failures (as opposed to SQL errors).</summary>
    internal static bool IsUnavailable(Exception ex) => ex switch
    {
        EventStoreUnavailableException => false, // already wrapped
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
                                || pg.SqlState is "57P01" or "57P02" or "57P03" or "53300", // shutdown, cannot connect now, too many connections
        NpgsqlException npg => npg.InnerException is SocketException or IOException or TimeoutException || npg.IsTransient,
        SocketException or IOException or TimeoutException => true,
        _ => false,
    };

    private static void ValidateSessionId(string id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id, "session");
        if (id.Length > MaxSessionIdLength)
            throw new ArgumentException($"session id is longer than {MaxSessionIdLength} characters", "session");
        foreach (var c in id)
        {
            if (char.IsControl(c)) throw new ArgumentException("session id contains a control character", "session");
        }
    }

    private static SessionInfo ReadSession(NpgsqlDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.GetInt64(4));

    private static NpgsqlCommand Command(NpgsqlConnection conn, string sql, params NpgsqlParameter[] ps)
    {
        var cmd = new NpgsqlCommand(sql, conn);
        foreach (var p in ps) cmd.Parameters.Add(p);
        return cmd;
    }

    private static NpgsqlBatchCommand BatchCommand(string sql, params NpgsqlParameter[] ps)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var p in ps) cmd.Parameters.Add(p);
        return cmd;
    }

    private static NpgsqlParameter Text(string v) => new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = v };
    private static NpgsqlParameter NullableText(string? v) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)v ?? DBNull.Value };
    private static NpgsqlParameter Bigint(long v) => new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint, TypedValue = v };
    private static NpgsqlParameter Integer(int v) => new NpgsqlParameter<int> { NpgsqlDbType = NpgsqlDbType.Integer, TypedValue = v };
    private static NpgsqlParameter Uuid(Guid v) => new NpgsqlParameter<Guid> { NpgsqlDbType = NpgsqlDbType.Uuid, TypedValue = v };
    private static NpgsqlParameter Bytea(byte[]? v) => new() { NpgsqlDbType = NpgsqlDbType.Bytea, Value = (object?)v ?? DBNull.Value };

    private static NpgsqlParameter TextArray(string[] v) =>
        new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = v };

    private static NpgsqlParameter ByteaArray(byte[][] v) =>
        new NpgsqlParameter<byte[][]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, TypedValue = v };
}
