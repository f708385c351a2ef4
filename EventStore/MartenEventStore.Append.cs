using System.Buffers;

namespace Sva.EventStore;

// Append: hash chain, idempotency (deterministic event ids), optimistic concurrency, snapshots and source progress in one transaction.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ append

    public Task<AppendResult> AppendAsync(AppendBatch batch, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ValidateSessionId(batch.Session);
        if (_readOnly) throw new InvalidOperationException("this store was opened read-only");
        ArgumentOutOfRangeException.ThrowIfNegative(batch.ExpectedVersion);
        if (batch.CommandId == Guid.Empty) throw new ArgumentException("the command id must not be Guid.Empty", nameof(batch));
        if (batch.Events.Count == 0) throw new ArgumentException("nothing to append: the event list is empty", nameof(batch));
        for (var i = 0; i < batch.Events.Count; i++)
        {
            var e = batch.Events[i] ?? throw new ArgumentException($"event #{i} is null", nameof(batch));
            if (e.Data is null) throw new ArgumentException($"event #{i} has no data", nameof(batch));
            if (e.Metadata is null) throw new ArgumentException($"event #{i} has no metadata", nameof(batch));
        }
        var last = batch.ExpectedVersion + batch.Events.Count;
        foreach (var s in batch.Snapshots)
            if (s.Seq <= batch.ExpectedVersion || s.Seq > last)
                throw new ArgumentException($"a snapshot at seq {s.Seq} is not in this append ({batch.ExpectedVersion + 1}..{last})", nameof(batch));
        return RunAsync(async () =>
        {
            try
            {
                var r = await AppendCoreAsync(batch, ct);
                if (!r.Duplicate)
                {
                    Interlocked.Increment(ref _appends);
                    if (Interlocked.Add(ref _sinceAnalyze, r.LastSeq - r.FirstSeq + 1) >= AnalyzeEveryEvents)
                    {
                        Interlocked.Exchange(ref _sinceAnalyze, 0);
                        await AnalyzeAsync(ct);
                    }
                }
                return r;
            }
            catch
            {
                _heads.TryRemove(batch.Session, out _);
                throw;
            }
        }, ct);
    }

    private async Task<AppendResult> AppendCoreAsync(AppendBatch batch, CancellationToken ct)
    {
        var session = batch.Session;
        var n = batch.Events.Count;
        var expected = batch.ExpectedVersion;
        if (expected == 0 && batch.Create is null)
            throw new SessionNotFoundException(session);

        var t0 = AppendProfile.Now();
        // Chain version 2: each event's data is serialized once (the text Marten is handed, through PreparedJson) and
        // hashed as the UTF-8 bytes of its compact canonical form (CanonicalJson: a check, or one byte-level pass);
        // the metadata likewise, stored as a JSON value. Only what the client cannot render goes to the server.
        var json = new string[n];
        var canonical = new ArrayBufferWriter<byte>(n * 256);
        var dataAt = new (int Start, int Length)[n];
        var metaAt = new (int Start, int Length, bool IsJson)[n];
        List<int>? onServer = null;
        for (var i = 0; i < n; i++)
        {
            json[i] = _serializer.ToJson(batch.Events[i].Data);
            var at = canonical.WrittenCount;
            if (CanonicalJson.TryWrite(json[i], canonical)) dataAt[i] = (at, canonical.WrittenCount - at);
            else (onServer ??= []).Add(i);
            at = canonical.WrittenCount;
            var meta = batch.Events[i].Metadata;
            if (CanonicalJson.TryWrite(meta, canonical)) metaAt[i] = (at, canonical.WrittenCount - at, true);
            else
            {
                var bytes = Encoding.UTF8.GetBytes(meta); // not JSON (or not renderable here): stored and hashed as text
                canonical.Write(bytes);
                metaAt[i] = (at, bytes.Length, false);
            }
        }
        if (onServer is not null)
        {
            var rendered = await NormalizeOnServerAsync(onServer.Select(i => json[i]).ToArray(), ct);
            for (var k = 0; k < onServer.Count; k++)
            {
                var at = canonical.WrittenCount;
                canonical.Write(Encoding.UTF8.GetBytes(CanonicalJson.FromJsonbText(rendered[k])));
                dataAt[onServer[k]] = (at, canonical.WrittenCount - at);
            }
        }

        t0 = AppendProfile.Add(AppendProfile.Stage.Serialize, t0);
        var prev = await HeadHashAsync(session, expected, ct);
        t0 = AppendProfile.Add(AppendProfile.Stage.ReadHead, t0);
        if (CopyAppendMinEvents > 0 && n >= CopyAppendMinEvents && batch.Create is null)
            return await CopyAppendAsync(batch, json, canonical.WrittenMemory, dataAt, metaAt, prev, t0, ct);
        if (OneRoundTripAppends && batch.Create is null && batch.Snapshots.Count == 0 && batch.Progress is null)
            return await QuickAppendAsync(batch, json, canonical.WrittenMemory, dataAt, metaAt, prev, t0, ct);
        long hashTicks = 0;
        var states = batch.Snapshots.ToDictionary(s => s.Seq, s => s.Digest);
        var prepared = PreparedJson.Scope();
        try
        {
        await using var s = _store.LightweightSession();
        if (batch.Create is { } create)
            s.Store(new SessionDoc { Id = session, Kernel = create.Kernel, KernelGiven = create.KernelGiven, Source = create.Source, CreatedAt = DateTimeOffset.UtcNow });
        var events = new object[n];
        var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hash = new byte[EventHash.Size];
        var all = canonical.WrittenMemory;
        for (var i = 0; i < n; i++)
        {
            var seq = expected + 1 + i;
            var data = batch.Events[i].Data;
            var e = s.Events.BuildEvent(data);
            var type = e.EventTypeName;
            states.TryGetValue(seq, out var state);
            var th = AppendProfile.Now();
            var (ms, ml, metaIsJson) = metaAt[i];
            EventHash.ComputeV2(h, prev, session, seq, type, all.Span.Slice(dataAt[i].Start, dataAt[i].Length), metaIsJson, all.Span.Slice(ms, ml), state, hash);
            prev = (byte[])hash.Clone();
            hashTicks += AppendProfile.Now() - th;
            e.Id = EventId(batch.CommandId, i);
            var hex = Convert.ToHexStringLower(prev);
            var meta = batch.Events[i].Metadata;
            e.SetHeader("chain", ChainHeaders.Current);
            e.SetHeader("hash", hex);
            e.SetHeader("meta", metaIsJson ? new ChainHeaders.RawJson(meta) : meta);
            if (state is not null) e.SetHeader("state", state);
            prepared[data] = json[i];
            prepared[e.Headers!] = ChainHeaders.Write(hex, meta, metaIsJson, state);
            events[i] = e;
        }
        s.Events.Append(session, expected + n, events);
        foreach (var snap in batch.Snapshots)
            s.QueueSqlCommand(
                $"INSERT INTO public.{SnapshotTableFeature.TableName} (session, seq, encoding, bytes) VALUES (?, ?, ?, ?) " +
                "ON CONFLICT (session, seq) DO UPDATE SET encoding = excluded.encoding, bytes = excluded.bytes",
                session, snap.Seq, snap.Encoding, snap.Compressed());
        if (batch.Progress is { } p)
            s.Store(new SourceDoc { Id = p.Id, Session = p.Session, Kind = p.Kind, Complete = p.Complete, Json = p.Json });

        try
        {
            t0 = AppendProfile.Add(AppendProfile.Stage.UnitOfWork, t0 + hashTicks);
            AppendProfile.Add(AppendProfile.Stage.Hash, AppendProfile.Now() - hashTicks);
            t0 = AppendProfile.Now();
            await s.SaveChangesAsync(ct);
            AppendProfile.Add(AppendProfile.Stage.SaveChanges, t0);
            AppendProfile.Batch(n);
        }
        catch (Exception ex) when (IsConflict(ex))
        {
            if (await FindCommandAsync(session, batch.CommandId, n, ct) is { } dup) return dup;
            var actual = (await FetchVersionAsync(session, ct)) ?? 0;
            if (expected > 0 && actual == 0 && await GetSessionAsync(session, ct) is null) throw new SessionNotFoundException(session);
            throw new ConcurrencyException(session, expected, actual);
        }

        var first = (IEvent)events[0];
        var lastEvent = (IEvent)events[^1];
        _heads[session] = (expected + n, prev);
        return new AppendResult(session, expected + 1, expected + n, first.Sequence, lastEvent.Sequence, Duplicate: false);
        }
        finally
        {
            PreparedJson.EndScope();
        }
    }

    /// <summary>Appends of events only take the one-round-trip path (<see cref="QuickAppendAsync"/>); false: every append goes
    /// through a Marten session, as before (the benchmark measures both, in the same run).</summary>
    public static bool OneRoundTripAppends { get; set; } = true;

    /// <summary>Marten's tenant id of a store without multi-tenancy (what its quick append passes).</summary>
    private const string DefaultTenant = "*DEFAULT*";

    // The (stored type name, .NET type name) Marten records for each event type (its event mapping), per CLR type.
    private readonly ConcurrentDictionary<Type, (string Type, string DotNet)> _eventNames = new();

    /// <summary>
    /// An append of events only (no new session, snapshot or progress record: what a recorded command on a session in use
    /// writes) in <b>one round trip</b>: Marten's own append function (<c>mt_quick_append_events</c>, the statement its
    /// quick append sends, with the same arguments) and its append notification as one batch, which PostgreSQL runs as one
    /// implicit transaction. Marten's session path sends BEGIN with the statements and COMMIT as a second round trip, and
    /// builds a unit of work per call. Same rows, same checks: the function's expected-version check (MT003) and the unique
    /// indexes on (stream, version) and event id are the optimistic concurrency and the idempotency, as on Marten's path.
    /// </summary>
    private async Task<AppendResult> QuickAppendAsync(AppendBatch batch, string[] json, ReadOnlyMemory<byte> all,
        (int Start, int Length)[] dataAt, (int Start, int Length, bool IsJson)[] metaAt, byte[] prev, long t0, CancellationToken ct)
    {
        var session = batch.Session;
        var n = batch.Events.Count;
        var expected = batch.ExpectedVersion;
        var ids = new Guid[n];
        var types = new string[n];
        var dotnet = new string[n];
        var headers = new string[n];
        var now = DateTimeOffset.UtcNow; // as Marten's quick append: the client's clock, one timestamp per append
        var times = new DateTimeOffset[n];
        long hashTicks = 0;
        var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hash = new byte[EventHash.Size];
        for (var i = 0; i < n; i++)
        {
            // Marten's own mapping, asked once per event type (the names its quick append would store)
            var (type, dn) = await EventNamesAsync(batch.Events[i].Data);
            var th = AppendProfile.Now();
            var (ms, ml, metaIsJson) = metaAt[i];
            EventHash.ComputeV2(h, prev, session, expected + 1 + i, type, all.Span.Slice(dataAt[i].Start, dataAt[i].Length), metaIsJson, all.Span.Slice(ms, ml), null, hash);
            prev = (byte[])hash.Clone();
            hashTicks += AppendProfile.Now() - th;
            ids[i] = EventId(batch.CommandId, i);
            types[i] = type;
            dotnet[i] = dn;
            headers[i] = ChainHeaders.Write(Convert.ToHexStringLower(prev), batch.Events[i].Metadata, metaIsJson, null);
            times[i] = now;
        }
        t0 = AppendProfile.Add(AppendProfile.Stage.UnitOfWork, t0 + hashTicks);
        AppendProfile.Add(AppendProfile.Stage.Hash, AppendProfile.Now() - hashTicks);
        t0 = AppendProfile.Now();
        long[] result;
        try
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var cmd = new NpgsqlBatch(conn)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("select public.mt_quick_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    {
                        Parameters =
                        {
                            Text(session),
                            new NpgsqlParameter<string?> { NpgsqlDbType = NpgsqlDbType.Varchar, TypedValue = null },
                            new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Varchar, TypedValue = DefaultTenant },
                            new NpgsqlParameter<Guid[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid, TypedValue = ids },
                            new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar, TypedValue = types },
                            new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Varchar, TypedValue = dotnet },
                            new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb, TypedValue = json },
                            new NpgsqlParameter<byte[]?[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, TypedValue = new byte[]?[n] },
                            new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb, TypedValue = headers },
                            new NpgsqlParameter<DateTimeOffset[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz, TypedValue = times },
                            Bigint(expected),
                        },
                    },
                    // what Marten sends with every append (UseListenNotifyForEventAppends): the daemon wakes up at once
                    new NpgsqlBatchCommand("select pg_notify('mt_events_appended', '')"),
                },
            };
            result = await cmd.ExecuteScalarAsync(ct) as long[] ?? throw new InvalidOperationException($"mt_quick_append_events returned nothing for session {session}");
        }
        catch (Exception ex) when (IsConflict(ex))
        {
            if (await FindCommandAsync(session, batch.CommandId, n, ct) is { } dup) return dup;
            var actual = await LastSeqAsync(session, ct);
            if (expected > 0 && actual == 0 && await GetSessionAsync(session, ct) is null) throw new SessionNotFoundException(session);
            throw new ConcurrencyException(session, expected, actual);
        }
        AppendProfile.Add(AppendProfile.Stage.SaveChanges, t0);
        AppendProfile.Batch(n);
        if (result.Length != n + 1 || result[0] != expected + n)
            throw new InvalidOperationException($"session {session}: the append of {n} events after version {expected} reported version {(result.Length > 0 ? result[0] : -1)} and {result.Length - 1} sequence numbers");
        _heads[session] = (expected + n, prev);
        return new AppendResult(session, expected + 1, expected + n, result[1], result[n], Duplicate: false);
    }

    /// <summary>After this many events appended by this process, the store has PostgreSQL refresh its statistics of the events
    /// and snapshots (ANALYZE). COPY fills the log faster than autovacuum's analyze follows (it wakes once a minute): a
    /// million events recorded in half a minute left the planner with the table's old size, and time travel's prepared
    /// statement, planned on those statistics, took p50 192 ms instead of ~8 ms in the benchmark until the
    /// analyze ran. A role that does not own the tables gets PostgreSQL's warning, and nothing else happens.</summary>
    public static long AnalyzeEveryEvents { get; set; } = 200_000;

    private long _sinceAnalyze;

    private async Task AnalyzeAsync(CancellationToken ct)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"ANALYZE public.mt_events, public.{SnapshotTableFeature.TableName}", conn) { CommandTimeout = 0 };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Appends of at least this many events to an existing session take the COPY path (<see cref="CopyAppendAsync"/>);
    /// 0: never (every append goes through Marten's append function; the benchmark measures both in the same run).</summary>
    public static int CopyAppendMinEvents { get; set; } = 256;

    /// <summary>
    /// A big append (a batch of <c>run</c>, <c>generate</c>, <c>import</c>) to an existing session, written with COPY into
    /// Marten's own tables in one transaction, exactly the rows Marten's append function writes (same columns, same type
    /// names, same sequence), at COPY's speed instead of one PL/pgSQL INSERT per event:
    /// <list type="number">
    /// <item>the session's stream row is locked (<c>FOR UPDATE</c>, as Marten's function does for an expected version) and its
    /// version checked against the expected one, and the batch's sequence numbers are taken, in one round trip;</item>
    /// <item>the events are copied (binary COPY);</item>
    /// <item>the stream's version, the snapshots, the progress record (through a Marten session enlisted in this transaction)
    /// and Marten's append notification follow; then the commit.</item>
    /// </list>
    /// A stale version is <see cref="ConcurrencyException"/> with nothing written; a retried command collides on the event-id
    /// index and returns its duplicate, as on the other paths. An event with a sequence number taken but not yet committed is
    /// what Marten's own append leaves while its function runs: its daemon's high-water mark waits for it.
    /// </summary>
    private async Task<AppendResult> CopyAppendAsync(AppendBatch batch, string[] json, ReadOnlyMemory<byte> all,
        (int Start, int Length)[] dataAt, (int Start, int Length, bool IsJson)[] metaAt, byte[] prev, long t0, CancellationToken ct)
    {
        var session = batch.Session;
        var n = batch.Events.Count;
        var expected = batch.ExpectedVersion;
        var states = batch.Snapshots.ToDictionary(x => x.Seq, x => x.Digest);
        var types = new string[n];
        var dotnet = new string[n];
        var headers = new string[n];
        long hashTicks = 0;
        var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hash = new byte[EventHash.Size];
        for (var i = 0; i < n; i++)
        {
            var (type, dn) = await EventNamesAsync(batch.Events[i].Data);
            var seq = expected + 1 + i;
            states.TryGetValue(seq, out var state);
            var th = AppendProfile.Now();
            var (ms, ml, metaIsJson) = metaAt[i];
            EventHash.ComputeV2(h, prev, session, seq, type, all.Span.Slice(dataAt[i].Start, dataAt[i].Length), metaIsJson, all.Span.Slice(ms, ml), state, hash);
            prev = (byte[])hash.Clone();
            hashTicks += AppendProfile.Now() - th;
            types[i] = type;
            dotnet[i] = dn;
            headers[i] = ChainHeaders.Write(Convert.ToHexStringLower(prev), batch.Events[i].Metadata, metaIsJson, state);
        }
        t0 = AppendProfile.Add(AppendProfile.Stage.UnitOfWork, t0 + hashTicks);
        AppendProfile.Add(AppendProfile.Stage.Hash, AppendProfile.Now() - hashTicks);
        t0 = AppendProfile.Now();
        var seqs = new long[n];
        try
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            long? version = null;
            await using (var lockAndTake = new NpgsqlBatch(conn, tx)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("SELECT version, is_archived FROM public.mt_streams WHERE id = $1 FOR UPDATE") { Parameters = { Text(session) } },
                    // only when the version matches (the row is locked by now): a refused append burns no sequence number
                    new NpgsqlBatchCommand("SELECT nextval('public.mt_events_sequence') FROM generate_series(1, $1) WHERE (SELECT version FROM public.mt_streams WHERE id = $2) = $3")
                        { Parameters = { new NpgsqlParameter<int> { TypedValue = n }, Text(session), Bigint(expected) } },
                },
            })
            {
                await using var r = await lockAndTake.ExecuteReaderAsync(ct);
                if (await r.ReadAsync(ct))
                {
                    version = r.IsDBNull(0) ? 0 : r.GetInt64(0);
                    if (!r.IsDBNull(1) && r.GetBoolean(1)) throw new InvalidOperationException($"session {session}: its stream is archived in Marten; nothing can be appended to it");
                }
                if (version != expected) throw new ConcurrencyException(session, expected, version ?? 0);
                await r.NextResultAsync(ct);
                var k = 0;
                while (await r.ReadAsync(ct)) seqs[k++] = r.GetInt64(0);
                if (k != n) throw new InvalidOperationException($"session {session}: {k} sequence numbers taken for {n} events");
            }
            Array.Sort(seqs);
            var now = DateTimeOffset.UtcNow; // as the quick append: the client's clock, one timestamp per append
            await using (var copy = await conn.BeginBinaryImportAsync(
                "COPY public.mt_events (seq_id, id, stream_id, version, data, type, tenant_id, timestamp, mt_dotnet_type, is_archived, headers) FROM STDIN (FORMAT BINARY)", ct))
            {
                for (var i = 0; i < n; i++)
                {
                    await copy.StartRowAsync(ct);
                    await copy.WriteAsync(seqs[i], NpgsqlDbType.Bigint, ct);
                    await copy.WriteAsync(EventId(batch.CommandId, i), NpgsqlDbType.Uuid, ct);
                    await copy.WriteAsync(session, NpgsqlDbType.Varchar, ct);
                    await copy.WriteAsync(expected + 1 + i, NpgsqlDbType.Bigint, ct);
                    await copy.WriteAsync(json[i], NpgsqlDbType.Jsonb, ct);
                    await copy.WriteAsync(types[i], NpgsqlDbType.Varchar, ct);
                    await copy.WriteAsync(DefaultTenant, NpgsqlDbType.Varchar, ct);
                    await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
                    await copy.WriteAsync(dotnet[i], NpgsqlDbType.Varchar, ct);
                    await copy.WriteAsync(false, NpgsqlDbType.Boolean, ct);
                    await copy.WriteAsync(headers[i], NpgsqlDbType.Jsonb, ct);
                }
                await copy.CompleteAsync(ct);
            }
            await using (var rest = new NpgsqlBatch(conn, tx))
            {
                rest.BatchCommands.Add(new NpgsqlBatchCommand("UPDATE public.mt_streams SET version = $2, timestamp = now() WHERE id = $1")
                    { Parameters = { Text(session), Bigint(expected + n) } });
                foreach (var snap in batch.Snapshots)
                    rest.BatchCommands.Add(new NpgsqlBatchCommand(
                        $"INSERT INTO public.{SnapshotTableFeature.TableName} (session, seq, encoding, bytes) VALUES ($1, $2, $3, $4) " +
                        "ON CONFLICT (session, seq) DO UPDATE SET encoding = excluded.encoding, bytes = excluded.bytes")
                    {
                        Parameters =
                        {
                            Text(session), Bigint(snap.Seq), new NpgsqlParameter<short> { TypedValue = snap.Encoding },
                            new NpgsqlParameter<byte[]> { NpgsqlDbType = NpgsqlDbType.Bytea, TypedValue = snap.Compressed() },
                        },
                    });
                // what Marten sends with every append (UseListenNotifyForEventAppends): the daemon wakes up at once
                rest.BatchCommands.Add(new NpgsqlBatchCommand("select pg_notify('mt_events_appended', '')"));
                await rest.ExecuteNonQueryAsync(ct);
            }
            if (batch.Progress is { } p)
            {
                // Marten's own document write, in this transaction (it neither commits nor rolls back)
                await using var docs = _store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(tx, shouldAutoCommit: false));
                docs.Store(new SourceDoc { Id = p.Id, Session = p.Session, Kind = p.Kind, Complete = p.Complete, Json = p.Json });
                await docs.SaveChangesAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
        catch (Exception ex) when (IsConflict(ex))
        {
            if (await FindCommandAsync(session, batch.CommandId, n, ct) is { } dup) return dup;
            var actual = await LastSeqAsync(session, ct);
            if (expected > 0 && actual == 0 && await GetSessionAsync(session, ct) is null) throw new SessionNotFoundException(session);
            throw new ConcurrencyException(session, expected, actual);
        }
        AppendProfile.Add(AppendProfile.Stage.SaveChanges, t0);
        AppendProfile.Batch(n);
        _heads[session] = (expected + n, prev);
        return new AppendResult(session, expected + 1, expected + n, seqs[0], seqs[^1], Duplicate: false);
    }

    /// <summary>The (stored type name, .NET type name) Marten's event mapping gives the event's type (asked once per type).</summary>
    private async ValueTask<(string Type, string DotNet)> EventNamesAsync(object data)
    {
        if (_eventNames.TryGetValue(data.GetType(), out var names)) return names;
        await using var s = _store.LightweightSession();
        var e = s.Events.BuildEvent(data);
        return _eventNames.GetOrAdd(data.GetType(), (e.EventTypeName, e.DotNetTypeName));
    }

    /// <summary>Event ids are a function of (command id, index): a retried command collides on Marten's unique index. The
    /// ids of one command are consecutive (the index is added to the command id's last 32 bits), so with time-ordered
    /// command ids (UUIDv7) the unique index grows at its right edge instead of at random pages.</summary>
    internal static Guid EventId(Guid command, int index)
    {
        Span<byte> b = stackalloc byte[16];
        command.TryWriteBytes(b, bigEndian: true, out _);
        var tail = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[12..]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b[12..], unchecked(tail + (uint)index));
        return new Guid(b, bigEndian: true);
    }

    private static bool IsConflict(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is EventStreamUnexpectedMaxEventIdException or JasperFx.Events.ExistingStreamIdCollisionException or Marten.Exceptions.ExistingStreamIdCollisionException or ConcurrencyException) return true;
            if (e is PostgresException { SqlState: "23505" or "MT003" }) return true; // MT003: mt_quick_append_events' version check
        }
        return false;
    }

    private async Task<AppendResult?> FindCommandAsync(string session, Guid command, int count, CancellationToken ct)
    {
        // The command's events are the ids EventId(command, 0..count-1): found by the unique index, in either header shape.
        var ids = Enumerable.Range(0, count).Select(i => EventId(command, i)).ToArray();
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT min(version), max(version), min(seq_id), max(seq_id) FROM mt_events WHERE id = ANY($2) AND stream_id = $1",
            conn) { Parameters = { Text(session), new NpgsqlParameter<Guid[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Uuid, TypedValue = ids } } };
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct) || r.IsDBNull(0)) return null;
        return new AppendResult(session, r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), Duplicate: true);
    }

    /// <summary>The session's last seq as the events hold it (0: none).</summary>
    private async Task<long> LastSeqAsync(string session, CancellationToken ct)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT max(version) FROM mt_events WHERE stream_id = $1", conn) { Parameters = { Text(session) } };
        return await cmd.ExecuteScalarAsync(ct) is long v ? v : 0;
    }

    /// <summary>The stream's version as Marten keeps it in mt_streams (what its optimistic concurrency checks).</summary>
    private async Task<long?> FetchVersionAsync(string session, CancellationToken ct)
    {
        await using var q = _store.QuerySession();
        return (await q.Events.FetchStreamStateAsync(session, ct))?.Version;
    }

    /// <summary>The hash of the event at <paramref name="version"/> (genesis for 0). Events never change, so a cached
    /// (session, version) → hash is valid forever; the append's version check guards the rest.</summary>
    private async Task<byte[]> HeadHashAsync(string session, long version, CancellationToken ct)
    {
        if (version == 0) return EventHash.Genesis();
        if (_heads.TryGetValue(session, out var head) && head.Version == version) return head.Hash;
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT headers->>'hash' FROM mt_events WHERE stream_id = $1 AND version = $2", conn)
            { Parameters = { Text(session), Bigint(version) } };
        var hex = await cmd.ExecuteScalarAsync(ct) as string;
        // No event at that version: the append fails the version check (nothing written); any prev does.
        return hex is null ? EventHash.Genesis() : Convert.FromHexString(hex);
    }

    private async Task<string[]> NormalizeOnServerAsync(string[] json, CancellationToken ct)
    {
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT u.d::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS u(d, i) ORDER BY u.i", conn)
            { Parameters = { new NpgsqlParameter<string[]> { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, TypedValue = json } } };
        var result = new string[json.Length];
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var i = 0;
        while (await r.ReadAsync(ct)) result[i++] = r.GetString(0);
        return result;
    }

    internal static string Digest(string json) => SnapshotCodec.Digest(json);
}
