using Npgsql;
using Sva.EventStore;

namespace Sva.Projections.Async;

/// <summary>
/// A projection run by the daemon from the global log. <see cref="ApplyAsync"/> runs in a transaction
/// that also moves the projection's checkpoint, so rows and checkpoint can never disagree.
/// </summary>
public interface IAsyncProjection
{
    string Name { get; }

    /// <summary>Applies a page of events (contiguous positions) inside the daemon's transaction.</summary>
    Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct);

    /// <summary>Empties the projection's rows (inside the transaction that resets its checkpoint to 0).</summary>
    Task ResetAsync(NpgsqlConnection connection, CancellationToken ct);
}
