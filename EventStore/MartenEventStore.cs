namespace Sva.EventStore;

/// <summary>
/// The event store of record: Marten on PostgreSQL. A Marten stream per session (string key = the session name); the
/// stream version is the session's seq (1..n, gap-free, checked on append: optimistic concurrency). Layered on Marten in
/// the same transaction: command-id idempotency (deterministic event ids under Marten's unique index on event id), the
/// SHA-256 hash chain (header "hash"), snapshots bound to the chain (header "state"), recording-source progress, and the
/// session's identity document. Appends take Marten's exclusive lock on concurrent appends, and its daemon holds back on
/// sequence gaps while a transaction that could fill them is alive, so no projection skips a committed event.
/// This class is the only place that knows Marten's API or runs SQL on its tables.
/// </summary>
public sealed partial class MartenEventStore : IEventStore
{
    private const int PageSize = 2000;
    /// <summary>Key of the advisory lock held while the schema is created or migrated (one process at a time).</summary>
    public const long SchemaLockKey = 7360001;

    // Marten's DocumentStore is built on first use: its configuration and generated code cost ~1 s of start-up, which a
    // query verb that only reads events, sessions and snapshots through SQL never pays (README, "Command start").
    private readonly Lazy<DocumentStore> _lazyStore;
    private DocumentStore _store => _lazyStore.Value;
    private readonly NpgsqlDataSource _dataSource;
    private long _appends;
    private Marten.ISerializer _serializer => _lazySerializer.Value;
    private readonly Lazy<Marten.ISerializer> _lazySerializer;
    private readonly ConcurrentDictionary<string, (long Version, byte[] Hash)> _heads = new(StringComparer.Ordinal);
    private readonly bool _readOnly;
    private IReadOnlyList<MartenProjection> _adapters = [];

    private MartenEventStore(Func<DocumentStore> store, NpgsqlDataSource dataSource, string endpoint, bool readOnly)
    {
        _lazyStore = new Lazy<DocumentStore>(store, LazyThreadSafetyMode.ExecutionAndPublication);
        _lazySerializer = new Lazy<Marten.ISerializer>(() => _store.Options.Serializer(), LazyThreadSafetyMode.ExecutionAndPublication);
        _dataSource = dataSource;
        Endpoint = endpoint;
        _readOnly = readOnly;
    }

    public string Endpoint { get; }

    /// <summary>
    /// Opens the store. As a writer (<paramref name="readOnly"/> false) Marten creates or migrates its schema (tables,
    /// functions, the append-only trigger) first, one process at a time; a reader expects the schema to exist.
    /// </summary>
    public static async Task<MartenEventStore> OpenAsync(string connectionString, StoreSetup setup, bool readOnly = false, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        ArgumentNullException.ThrowIfNull(setup);
        NpgsqlConnectionStringBuilder csb;
        try { csb = new NpgsqlConnectionStringBuilder(connectionString); }
        catch (Exception ex) when (ex is ArgumentException or KeyNotFoundException or FormatException)
        {
            throw new ArgumentException($"not a usable PostgreSQL connection string: {ex.Message}", nameof(connectionString), ex);
        }
        var endpoint = $"{(string.IsNullOrEmpty(csb.Host) ? "localhost" : csb.Host)}:{csb.Port}";
        var dataSourceBuilder = new NpgsqlDataSourceBuilder(csb.ConnectionString);
        // A reader reads only PostgreSQL's built-in types (text, bigint, jsonb, timestamptz, arrays): Npgsql need not load the
        // database's type catalog on its first connection (~50 ms of a query verb's start; README, "Command start").
        if (readOnly) dataSourceBuilder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
        var dataSource = dataSourceBuilder.Build();
        StartTrace.Mark("data source built");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in setup.Projections)
            if (!names.Add(p.Name)) throw new ArgumentException($"two projections are named '{p.Name}'", nameof(setup));

        var adapters = setup.Projections.Select(p => new MartenProjection(p)).ToList();
        // The working store never runs DDL (AutoCreate.None): a writer first applies the schema through a short-lived
        // migrating store of the same configuration, one process at a time (EnsureSchemaAsync).
        DocumentStore Build(AutoCreate auto, bool withProjections) => DocumentStore.For(o =>
        {
            o.Connection(dataSource);
            o.DatabaseSchemaName = "public";
            o.AutoCreateSchemaObjects = auto;
            var json = new JsonSerializerOptions(setup.Json);
            json.Converters.Add(new ChainHeaders.RawJsonConverter());
            // Properties in jsonb's key order: an event's JSON then is already its canonical form (nothing to reorder for the hash).
            json.TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.WithAddedModifier(setup.Json.TypeInfoResolver ?? new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(), CanonicalJson.JsonbKeyOrder);
            o.UseSystemTextJsonForSerialization(json, EnumStorage.AsString, Casing.SnakeCase);
            // The append hands Marten the JSON it already serialized for the hash chain (no second serialization).
            o.Serializer(new PreparedJson(o.Serializer()));

            o.Events.StreamIdentity = StreamIdentity.AsString;
            // Quick append: one mt_quick_append_events call per batch instead of one INSERT per event (3× the throughput
            // here); server timestamps. No projection runs in the append (all are async: Marten's daemon).
            o.Events.AppendMode = EventAppendMode.QuickWithServerTimestamps;
            o.Events.MetadataConfig.HeadersEnabled = true;
            o.Events.EnableUniqueIndexOnEventId = true;
            o.Events.UseExclusiveLockOnConcurrentAppends = true;
            foreach (var (type, name) in setup.EventTypes) o.Events.MapEventType(type, name);

            o.Schema.For<SessionDoc>();
            o.Schema.For<SnapshotDoc>().Duplicate(x => x.Session).Duplicate(x => x.Seq);
            o.Schema.For<SourceDoc>().Duplicate(x => x.Session);
            o.Storage.Add(new AppendOnlyFeature(o));
            o.Storage.Add(new SnapshotTableFeature(o));

            // Never skip: in continuous mode as in rebuilds, a bad event stops the projection and says which.
            o.Projections.Errors.SkipApplyErrors = false;
            o.Projections.Errors.SkipSerializationErrors = false;
            o.Projections.Errors.SkipUnknownEvents = false;
            o.Projections.RebuildErrors.SkipApplyErrors = false;
            o.Projections.RebuildErrors.SkipSerializationErrors = false;
            o.Projections.RebuildErrors.SkipUnknownEvents = false;
            o.Projections.UseTransactionEvidenceForGapSkipping = true;
            o.Events.UseListenNotifyForEventAppends = true;
            // The daemon runs in its own process (`sva projections daemon`), not inside every CLI call.
            o.Projections.AsyncMode = setup.HotColdDaemon ? DaemonMode.HotCold : DaemonMode.ExternallyManaged;
            if (setup.HotColdDaemon) o.Projections.LeadershipPollingTime = 1000; // a standby tries for the lock every second
            foreach (var a in adapters)
            {
                foreach (var t in a.Inner.DocumentTypes)
                {
                    o.RegisterDocumentType(t);
                    // Projection documents are read by session: a duplicated, indexed "session" column instead of a scan.
                    if (t.GetProperty("Session") is { PropertyType: var pt } && pt == typeof(string))
                        typeof(MartenEventStore).GetMethod(nameof(DuplicateSession), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                            .MakeGenericMethod(t).Invoke(null, [o]);
                }
                if (!withProjections) continue;
                o.Projections.Add(a, ProjectionLifecycle.Async, a.Inner.Name, x => x.BatchSize = setup.DaemonBatchSize);
            }
        });
        if (!readOnly)
        {
            using var migrator = Build(AutoCreate.CreateOrUpdate, withProjections: false);
            try { await EnsureSchemaAsync(migrator, dataSource, setup.Projections, ct); }
            catch (Exception ex) when (IsUnavailable(ex) && !ct.IsCancellationRequested)
            {
                await dataSource.DisposeAsync();
                throw new EventStoreUnavailableException(endpoint, Unwrap(ex));
            }
        }
        var self = new MartenEventStore(() => Build(AutoCreate.None, withProjections: true), dataSource, endpoint, readOnly)
        {
            _adapters = adapters,
        };
        foreach (var a in adapters) a.Reader = self;
        StartTrace.Mark("store object built");
        return self;
    }

    private static void DuplicateSession<T>(StoreOptions o)
    {
        var x = Expression.Parameter(typeof(T), "x");
        Expression<Func<T, object?>> session = Expression.Lambda<Func<T, object?>>(Expression.Convert(Expression.Property(x, "Session"), typeof(object)), x);
        o.Schema.For<T>().Duplicate(session, null, null, null, false, false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_lazyStore.IsValueCreated) _store.Dispose();
        await _dataSource.DisposeAsync();
    }

    // ------------------------------------------------------------------ sessions

    // Sessions are read with one SQL statement over Marten's session document table (no DocumentStore needed: see _lazyStore).
    // The last seq is read from the events themselves (an index look-up per session), not from mt_streams' version column,
    // which the writer role can update: what is read back is what the log holds.
    private const string SessionColumns =
        "d.id, d.data->>'kernel', d.data->>'source', d.data->>'created_at', (SELECT max(e.version) FROM mt_events e WHERE e.stream_id = d.id), d.data->>'kernel_given' FROM mt_doc_sessiondoc d";

    public Task<SessionInfo?> GetSessionAsync(string id, CancellationToken ct = default)
    {
        ValidateSessionId(id);
        return RunAsync(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var cmd = new NpgsqlCommand($"SELECT {SessionColumns} WHERE d.id = $1", conn) { Parameters = { Text(id) } };
            await using var r = await cmd.ExecuteReaderAsync(ct);
            return await r.ReadAsync(ct) ? ReadSession(r) : null;
        }, ct);
    }

    public Task ProbeSchemaAsync(CancellationToken ct = default) =>
        RunAsync(async () =>
        {
            // LIMIT 0: the planner resolves every table and column named, reads no row.
            var sql = new StringBuilder($"SELECT 1 FROM (SELECT {SessionColumns}) s LIMIT 0; SELECT 1 FROM public.{SnapshotTableFeature.TableName} LIMIT 0;");
            foreach (var a in _adapters)
                foreach (var t in a.Inner.DocumentTypes)
                    sql.Append($" SELECT session FROM public.mt_doc_{t.Name.ToLowerInvariant()} LIMIT 0;");
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            StartTrace.Mark("first connection open");
            await using var cmd = new NpgsqlCommand(sql.ToString(), conn);
            await cmd.ExecuteNonQueryAsync(ct);
            return true;
        }, ct);

    public Task<IReadOnlyList<SessionInfo>> ListSessionsAsync(CancellationToken ct = default) =>
        RunAsync<IReadOnlyList<SessionInfo>>(async () =>
        {
            var list = new List<SessionInfo>();
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var cmd = new NpgsqlCommand($"SELECT {SessionColumns}", conn);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) list.Add(ReadSession(r));
            return list.OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
        }, ct);

    private static SessionInfo ReadSession(NpgsqlDataReader r) => new(
        r.GetString(0), r.IsDBNull(1) ? "" : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2),
        r.IsDBNull(3) ? default : DateTimeOffset.Parse(r.GetString(3), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind),
        r.IsDBNull(4) ? 0 : r.GetInt64(4)) { KernelGiven = r.IsDBNull(5) ? null : r.GetString(5) };

    // ------------------------------------------------------------------ plumbing

    private async Task<T> RunAsync<T>(Func<Task<T>> body, CancellationToken ct)
    {
        try
        {
            return await body();
        }
        catch (Exception ex) when (IsUnavailable(ex) && !ct.IsCancellationRequested)
        {
            throw new EventStoreUnavailableException(Endpoint, Unwrap(ex));
        }
    }

    private static Exception Unwrap(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is NpgsqlException or SocketException) return e;
        return ex;
    }

    /// <summary>Connection-level failures (as opposed to SQL errors), also when Marten wrapped them.</summary>
    internal static bool IsUnavailable(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case EventStoreUnavailableException: return false;
                case PostgresException pg:
                    return pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState is "57P01" or "57P02" or "57P03" or "53300";
                case NpgsqlException npg when npg.InnerException is SocketException or IOException or TimeoutException || npg.IsTransient:
                    return true;
                case SocketException:
                    return true;
            }
        }
        return false;
    }

    private static void ValidateSessionId(string id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id, "session");
        if (SessionName.Problem(id) is { } problem) throw new ArgumentException($"session name {problem}", "session");
    }

    private static NpgsqlParameter Text(string v) => new NpgsqlParameter<string> { NpgsqlDbType = NpgsqlDbType.Text, TypedValue = v };
    private static NpgsqlParameter Bigint(long v) => new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint, TypedValue = v };
}
