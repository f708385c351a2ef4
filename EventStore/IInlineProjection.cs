using Npgsql;

namespace Sva.EventStore;

/// <summary>A projection updated in the same transaction as the append. If it throws, nothing of the append remains.</summary>
public interface IInlineProjection
{
    string Name { get; }

    /// <summary>Called inside the append transaction after the events are inserted (seq/position assigned).
    /// Use the connection as is: Npgsql runs commands in the connection's open transaction.</summary>
    Task ApplyAsync(NpgsqlConnection connection, IReadOnlyList<StoredEvent> events, CancellationToken ct);

    /// <summary>The transaction that <see cref="ApplyAsync"/> ran in committed (a projection may now trust what it cached).</summary>
    void Committed(IReadOnlyList<StoredEvent> events) { }

    /// <summary>The append of this session failed or rolled back after <see cref="ApplyAsync"/> may have run.</summary>
    void Aborted(string session) { }
}
