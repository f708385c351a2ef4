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
    public required PgEventStore Store { get; init; }
    public required SvaInlineProjection Inline { get; init; }
    public required Dispatcher Dispatcher { get; init; }

    public static async Task<SvaHost> OpenAsync(TextWriter? verboseLog, CancellationToken ct)
    {
        var cs = await LocalCluster.ResolveConnectionStringAsync(ct);
        var inline = new SvaInlineProjection();
        var store = PgEventStore.Create(cs, [inline]);
        await store.EnsureSchemaAsync(ct);
        var dispatcher = new Dispatcher()
            .Use(new LoggingBehavior(verboseLog))
            .Use(new ValidationBehavior())
            .Handle(new RecordCallsHandler(store));
        return new SvaHost { Store = store, Inline = inline, Dispatcher = dispatcher };
    }

    public async Task<SessionInfo> SessionAsync(string session, CancellationToken ct) =>
        await Store.GetSessionAsync(session, ct) ?? throw new UserInputException($"no session '{session}' (see 'sva sessions')");

    public ValueTask DisposeAsync() => Store.DisposeAsync();
}

/// <summary>Bad input from the user: printed as is, exit code 2.</summary>
public sealed class UserInputException(string message) : Exception(message);
