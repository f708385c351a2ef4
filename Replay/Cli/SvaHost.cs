using Mediator;
using Microsoft.Extensions.DependencyInjection;
using Sva.Commands;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Replay;

/// <summary>
/// What every verb needs: the store (SVA_DB, else the local throwaway cluster) and the mediator, wired with
/// Microsoft.Extensions.DependencyInjection. Created on first use so that verbs that need no database never start one.
/// Verbs parse, send a request through the mediator (or run a query), render: none appends on its own.
/// </summary>
public sealed class SvaHost : IAsyncDisposable
{
    public const string ReaderRole = "sva_reader";
    private readonly ServiceProvider services;

    private SvaHost(ServiceProvider services)
    {
        this.services = services;
        Store = services.GetRequiredService<IEventStore>();
        Mediator = services.GetRequiredService<IMediator>();
    }

    public IEventStore Store { get; }
    public IMediator Mediator { get; }

    public static async Task<SvaHost> OpenAsync(TextWriter? verboseLog, CancellationToken ct, bool readOnly = false)
    {
        StartTrace.Mark("open store");
        CheckConnectionString("SVA_DB");
        if (readOnly) CheckConnectionString("SVA_DB_READER");
        IEventStore store;
        if (Sharding.Enabled)
        {
            // Sessions over several databases (SVA_SHARDS): each shard opened on first use (README, "More than one machine").
            store = Sharding.Open(readOnly, OpenReaderAsync, verboseLog);
        }
        else
        {
            var cs = ConnectionString(await LocalCluster.ResolveConnectionStringAsync(ct));
            if (readOnly)
            {
                // Query verbs read through a login that cannot write: SVA_DB_READER when set, else sva_reader on the same
                // server where it can read, else SVA_DB's own login in read-only transactions (ReaderLogin). SVA_DB_READER
                // may be a streaming replica: reads then wait until it has replayed what the primary had committed (else
                // read the primary, and say so).
                var primaryReader = ReaderLogin.AsReaderRole(cs);
                Task<IEventStore> Primary(CancellationToken t) => ReaderErrors(() => ReaderLogin.OpenAsync(cs, OpenReaderRawAsync, verboseLog, "the database", t));
                if (Environment.GetEnvironmentVariable("SVA_DB_READER") is { Length: > 0 } r)
                {
                    verboseLog?.WriteLine($"sva: reading as SVA_DB_READER (login {new Npgsql.NpgsqlConnectionStringBuilder(r).Username ?? Environment.UserName})");
                    var rw = new ReadYourWritesStore("the database", primaryReader, r, (c, t) => c == primaryReader ? Primary(t) : OpenReaderAsync(c, cs, t), cs)
                    {
                        Timeout = Sharding.ReplicaWait(),
                        Log = m => Console.Error.WriteLine($"sva: {m}"),
                        Trace = verboseLog is null ? null : m => verboseLog.WriteLine($"sva: {m}"),
                    };
                    await ReaderErrors(() => rw.EnsureAsync(ct)); // the barrier, and the reader's errors, now
                    store = rw;
                }
                else store = await Primary(ct);
            }
            else store = await SvaStoreSetup.OpenAsync(DaemonName(cs), readOnly: false, ct);
        }

        StartTrace.Mark("store open");
        var services = new ServiceCollection();
        services.AddSingleton(store);
        services.AddSingleton(new RequestLog(verboseLog));
        services.AddMediator((MediatorOptions o) =>
        {
            o.ServiceLifetime = ServiceLifetime.Singleton;
            o.PipelineBehaviors = [typeof(LoggingBehavior<,>), typeof(ValidationBehavior<,>)];
        });
        var host = new SvaHost(services.BuildServiceProvider());
        StartTrace.Mark("mediator built");
        return host;
    }

    /// <summary>A read-only store on <paramref name="reader"/>; a login or permission error is exit 2 saying so.</summary>
    private static Task<IEventStore> OpenReaderAsync(string reader, string writer, CancellationToken ct) =>
        ReaderErrors(() => OpenReaderRawAsync(reader, writer, ct));

    /// <summary>A read-only store on <paramref name="reader"/>; a database without the schema yet gets it from a writer on
    /// <paramref name="writer"/> first (Marten creates it), then the reader reads. Errors as they come.</summary>
    internal static async Task<IEventStore> OpenReaderRawAsync(string reader, string writer, CancellationToken ct)
    {
        var store = await SvaStoreSetup.OpenAsync(reader, readOnly: true, ct);
        StartTrace.Mark("reader store built");
        try
        {
            try { await ProbeSchemaAsync(store, ct); StartTrace.Mark("schema probed (first connection)"); }
            catch (Exception ex) when (FindPostgres(ex) is { SqlState: "42P01" or "42703" })
            {
                await store.DisposeAsync();
                await (await SvaStoreSetup.OpenAsync(writer, readOnly: false, ct)).DisposeAsync();
                store = await SvaStoreSetup.OpenAsync(reader, readOnly: true, ct);
                await ProbeSchemaAsync(store, ct);
            }
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        return store;
    }

    /// <summary>Reads what the newest schema added (a database an older version wrote lacks it: a writer applies it first).</summary>
    private static Task ProbeSchemaAsync(IEventStore store, CancellationToken ct) =>
        store.ProbeSchemaAsync(ct); // plain SQL: a query verb builds no Marten store for it

    /// <summary>Runs <paramref name="body"/>; a login or permission error of the reading login is exit 2 saying so.</summary>
    internal static async Task ReaderErrors(Func<Task> body) => await ReaderErrors(async () => { await body(); return true; });

    /// <summary>Runs <paramref name="body"/>; a login or permission error of the reading login is exit 2 saying so.</summary>
    internal static async Task<T> ReaderErrors<T>(Func<Task<T>> body)
    {
        try { return await body(); }
        catch (Exception ex) when (FindPostgres(ex) is { SqlState: "28000" or "28P01" or "42501" } pg)
        {
            throw new UserInputException($"cannot read as the read-only role ({pg.MessageText}); query commands read as SVA_DB_READER when set (or SVA_SHARD_READERS), " +
                                         $"else as '{ReaderRole}' where it can read, else as SVA_DB's login in read-only transactions: set SVA_DB_READER to a read-only connection string");
        }
    }

    /// <summary>A daemon process names its connections (application_name sva-daemon-PID), so that who holds Marten's
    /// leader lock can be seen in pg_stat_activity.</summary>
    internal static string DaemonName(string cs) => SvaStoreSetup.HotColdDaemon
        ? new Npgsql.NpgsqlConnectionStringBuilder(cs) { ApplicationName = $"sva-daemon-{Environment.ProcessId}" }.ConnectionString
        : cs;

    /// <summary>The connection string, or exit 2 naming the variable when it cannot be parsed.</summary>
    private static string ConnectionString(string cs)
    {
        try { _ = new Npgsql.NpgsqlConnectionStringBuilder(cs); return cs; }
        catch (Exception ex) when (ex is ArgumentException or KeyNotFoundException or FormatException)
        {
            throw new UserInputException($"SVA_DB is not a usable PostgreSQL connection string ({ex.Message}); e.g. Host=127.0.0.1;Port=5432;Username=me;Database=sva");
        }
    }

    private static Npgsql.PostgresException? FindPostgres(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is Npgsql.PostgresException pg) return pg;
        return null;
    }

    /// <summary>A connection string variable that is set must parse (exit 2 naming the variable, not a .NET exception).</summary>
    public static void CheckConnectionString(string variable)
    {
        if (Environment.GetEnvironmentVariable(variable) is not { Length: > 0 } value) return;
        try { _ = new Npgsql.NpgsqlConnectionStringBuilder(value).ConnectionString; }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            var unknown = value.Split(';').Select(p => p.Split('=')[0].Trim()).FirstOrDefault(k => k.Length > 0 && !new Npgsql.NpgsqlConnectionStringBuilder().ContainsKey(k));
            var why = unknown is not null ? $"unknown keyword '{Sva.Formats.InputLimits.Quote(unknown)}'" : e.Message;
            throw new UserInputException($"{variable} is not an Npgsql connection string ({why}); expected e.g. Host=127.0.0.1;Port=5432;Username=postgres;Database=sva");
        }
    }

    public async Task<SessionInfo> SessionAsync(string session, CancellationToken ct) =>
        CliParsing.SessionNameProblem(session, "session") is { } problem ? throw new UserInputException(problem) :
        await Store.GetSessionAsync(session, ct) ?? throw new UserInputException($"no session '{Sva.Formats.InputLimits.Quote(session)}' (see 'sva sessions')");

    /// <summary>How long a writing command may spend catching the async projections up on its way out.</summary>
    public static TimeSpan CatchUpTimeout { get; set; } = TimeSpan.FromMinutes(30);

    public async ValueTask DisposeAsync()
    {
        // A writing command catches the async projections (the read model, audit_bindings) up to what it appended, after
        // its last batch committed: off the append path, and current when the command returns. A failure here does not
        // hide the command's own outcome: the projections stay behind (`sva projections status` shows the lag) until the
        // next writer or `sva projections daemon` catches them up; nothing is skipped.
        try { await Store.CatchUpAsync(CatchUpTimeout, CancellationToken.None); }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync($"sva: the projections were not caught up ({ex.Message}); 'sva projections daemon --once' catches them up");
        }
        await Store.DisposeAsync();
        await services.DisposeAsync();
        StartTrace.Mark("store disposed");
    }
}

/// <summary>Bad input from the user: printed as is, exit code 2.</summary>
public sealed class UserInputException(string message) : Exception(message);
