namespace Sva.EventStore;

/// <summary>Optimistic concurrency conflict: the session's version (last seq) was not the expected one. Nothing was written.</summary>
public sealed class ConcurrencyException : Exception
{
    public ConcurrencyException(string session, long expected, long actual)
        : base($"concurrency conflict on session '{session}': expected version (last seq) {expected}, actual {actual}; nothing was appended")
    {
        Session = session;
        Expected = expected;
        Actual = actual;
    }

    public string Session { get; }
    public long Expected { get; }
    public long Actual { get; }
}

/// <summary>The database cannot be reached (connection refused, timeout, connection lost, server shutting down).</summary>
public sealed class EventStoreUnavailableException : Exception
{
    public EventStoreUnavailableException(string endpoint, Exception inner)
        : base($"event store unavailable at {endpoint}: {Describe(inner)}", inner)
    {
        Endpoint = endpoint;
    }

    /// <summary>host:port of the database.</summary>
    public string Endpoint { get; }

    private static string Describe(Exception ex)
    {
        var msg = ex.Message;
        // Npgsql's own message is often a wrapper ("Failed to connect to ..."); add the innermost cause.
        var root = ex;
        while (root.InnerException is not null) root = root.InnerException;
        if (!ReferenceEquals(root, ex) && !msg.Contains(root.Message, StringComparison.Ordinal))
            msg = $"{msg} ({root.Message})";
        return msg;
    }
}

/// <summary>The session does not exist (append, verify).</summary>
public sealed class SessionNotFoundException : Exception
{
    public SessionNotFoundException(string session) : base($"session '{session}' does not exist") => Session = session;
    public string Session { get; }
}

/// <summary>LocalCluster could not bring up the local database (pg-up.sh failed or was not found).</summary>
public sealed class LocalClusterException : Exception
{
    public LocalClusterException(string message, string? stderr = null, Exception? inner = null)
        : base(stderr is { Length: > 0 } ? $"{message}\n--- pg-up.sh stderr ---\n{stderr.TrimEnd()}" : message, inner)
    {
        Stderr = stderr;
    }

    public string? Stderr { get; }
}
