using Sva.Commands;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Replay;

/// <summary>
/// What every verb needs: the store (SVA_DB, else the local throwaway cluster), its inline projection
/// and the dispatcher. Created on first use so that verbs that need no database never start one.
/// </summary>
public sealed class SvaHost : IAsyncDisposable
{
    public const string ReaderRole = "sva_reader";
    public required PgEventStore Store { get; init; }
    public required SvaInlineProjection Inline { get; init; }
    public required Dispatcher Dispatcher { get; init; }

    public static async Task<SvaHost> OpenAsync(TextWriter? verboseLog, CancellationToken ct, bool readOnly = false)
    {
        CheckConnectionString("SVA_DB");
        if (readOnly) CheckConnectionString("SVA_DB_READER");
        var cs = await LocalCluster.ResolveConnectionStringAsync(ct);
        var inline = new SvaInlineProjection();
        var store = PgEventStore.Create(cs, [inline]);
        await store.EnsureSchemaAsync(ct);
        if (readOnly)
        {
            // Query verbs read through the read-only role: SVA_DB_READER, else the same server as sva_reader
            // (created by postgres-init; the local throwaway cluster trusts loopback logins).
            await store.DisposeAsync();
            var reader = Environment.GetEnvironmentVariable("SVA_DB_READER") is { Length: > 0 } r
                ? r
                : new Npgsql.NpgsqlConnectionStringBuilder(cs) { Username = ReaderRole, Password = null }.ConnectionString;
            store = PgEventStore.Create(reader);
            try
            {
                await using var conn = await store.DataSource.OpenConnectionAsync(ct);
            }
            catch (Npgsql.PostgresException ex) when (ex.SqlState is "28000" or "28P01")
            {
                throw new UserInputException($"cannot connect as the read-only role ({ex.MessageText}); query commands read as '{ReaderRole}': set SVA_DB_READER to a read-only connection string");
            }
        }
        var dispatcher = new Dispatcher()
            .Use(new LoggingBehavior(verboseLog))
            .Use(new ValidationBehavior())
            .Handle(new RecordCallsHandler(store));
        return new SvaHost { Store = store, Inline = inline, Dispatcher = dispatcher };
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

    public ValueTask DisposeAsync() => Store.DisposeAsync();
}

/// <summary>Bad input from the user: printed as is, exit code 2.</summary>
public sealed class UserInputException(string message) : Exception(message);
