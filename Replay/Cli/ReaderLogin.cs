using Npgsql;
using Sva.EventStore;

namespace Sva.Replay;

/// <summary>
/// Which login a query verb reads with, on a database given as SVA_DB (or a shard's primary) without SVA_DB_READER:
/// <list type="number">
/// <item><c>sva_reader</c> (postgres-init's read-only role) where that role exists and can connect and read;</item>
/// <item>else SVA_DB's own login, every transaction read-only (<c>default_transaction_read_only</c>, set at connection
/// start): the plain database of a user's own, a managed server where only that login may connect, a server that wants a
/// password for any login.</item>
/// </list>
/// Either way a query cannot write; the log itself stays protected by the append-only trigger and the writer's missing
/// UPDATE/DELETE. <c>--verbose</c> says which login was chosen and why.
/// </summary>
public static class ReaderLogin
{
    /// <summary><paramref name="cs"/> as <c>sva_reader</c> (no password: postgres-init's role has none).</summary>
    public static string AsReaderRole(string cs) =>
        new NpgsqlConnectionStringBuilder(cs) { Username = SvaHost.ReaderRole, Password = null }.ConnectionString;

    /// <summary><paramref name="cs"/>'s own login with every transaction read-only (the server refuses any write: 25006).</summary>
    public static string ReadOnly(string cs)
    {
        var b = new NpgsqlConnectionStringBuilder(cs);
        b.Options = string.IsNullOrWhiteSpace(b.Options) ? "-c default_transaction_read_only=on" : b.Options + " -c default_transaction_read_only=on";
        return b.ConnectionString;
    }

    /// <summary>Opens a read-only store on the server of <paramref name="writerCs"/>: as sva_reader when it can read there,
    /// else as the writer's login in read-only transactions. <paramref name="open"/> opens a reader (reader cs, writer cs).</summary>
    public static async Task<IEventStore> OpenAsync(string writerCs, Func<string, string, CancellationToken, Task<IEventStore>> open,
        TextWriter? verbose, string where, CancellationToken ct)
    {
        var user = new NpgsqlConnectionStringBuilder(writerCs).Username ?? Environment.UserName;
        string why;
        try
        {
            var store = await open(AsReaderRole(writerCs), writerCs, ct);
            verbose?.WriteLine($"sva: {where}: reading as {SvaHost.ReaderRole} (the read-only role)");
            return store;
        }
        catch (Exception ex) when (ReaderCannotRead(ex) is { } reason)
        {
            why = reason;
        }
        var own = await open(ReadOnly(writerCs), writerCs, ct);
        verbose?.WriteLine($"sva: {where}: reading as {user} (SVA_DB's login) in read-only transactions (default_transaction_read_only): " +
                           $"{SvaHost.ReaderRole} cannot read here ({why}); set SVA_DB_READER to read as another login");
        return own;
    }

    /// <summary>Why sva_reader cannot read on this server (no such role, not allowed to connect, a password wanted, no
    /// privilege), or null for any other failure (a server that is down stays exit 3).</summary>
    public static string? ReaderCannotRead(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException { SqlState: "28000" or "28P01" or "42501" } pg: return pg.MessageText;
                case PostgresException: return null;
                case NpgsqlException n when n.InnerException is null && n.Message.Contains("password", StringComparison.OrdinalIgnoreCase):
                    return n.Message;
            }
        }
        return null;
    }
}
