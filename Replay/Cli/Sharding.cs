using Npgsql;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Replay;

/// <summary>
/// The store over several servers, from the environment (README, "More than one machine"):
/// <list type="bullet">
/// <item><c>SVA_SHARDS</c>: the shards' writer connection strings, in order (shard1, shard2, …), separated by <c>|</c>;
/// or the path of a file with one connection string per line (blank lines and lines starting with # are skipped).</item>
/// <item><c>SVA_SHARD_READERS</c> (optional): the same, per shard, for the read-only connections of query verbs, e.g. a
/// streaming replica of that shard; an empty entry (or fewer entries) means: the shard's primary as <c>sva_reader</c>.</item>
/// <item><c>SVA_REPLICA_WAIT_MS</c> (optional, default 5000): how long a read waits for a replica to replay what the
/// primary had committed before it falls back to the primary.</item>
/// </list>
/// Without <c>SVA_SHARDS</c> nothing changes: one database (SVA_DB or the local cluster).
/// </summary>
public static class Sharding
{
    public const string ShardsVariable = "SVA_SHARDS";
    public const string ReadersVariable = "SVA_SHARD_READERS";

    public static bool Enabled => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ShardsVariable));

    /// <summary>The entries of a variable: '|'-separated connection strings, or a file of them (one per line).</summary>
    public static List<string> Entries(string variable, bool keepEmpty)
    {
        var raw = Environment.GetEnvironmentVariable(variable) ?? "";
        IEnumerable<string> items;
        if (!raw.Contains('=') && !raw.Contains('|'))
        {
            var path = raw.Trim();
            if (!File.Exists(path)) throw new UserInputException($"{variable}='{path}': neither connection strings separated by '|' nor a file that exists");
            items = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => !l.StartsWith('#'));
            if (!keepEmpty) items = items.Where(l => l.Length > 0);
        }
        else items = raw.Split('|').Select(s => s.Trim());
        var list = items.ToList();
        if (!keepEmpty) list = list.Where(s => s.Length > 0).ToList();
        foreach (var (cs, i) in list.Select((c, i) => (c, i)).Where(x => x.c.Length > 0))
        {
            try { _ = new NpgsqlConnectionStringBuilder(cs); }
            catch (Exception ex) when (ex is ArgumentException or KeyNotFoundException or FormatException)
            {
                throw new UserInputException($"{variable}: entry {i + 1} is not a usable PostgreSQL connection string ({ex.Message})");
            }
        }
        return list;
    }

    public static TimeSpan ReplicaWait() =>
        int.TryParse(Environment.GetEnvironmentVariable("SVA_REPLICA_WAIT_MS"), out var ms) && ms >= 0 ? TimeSpan.FromMilliseconds(ms) : TimeSpan.FromSeconds(5);

    public static ShardedEventStore Open(bool readOnly, Func<string, string, CancellationToken, Task<IEventStore>> openReader, TextWriter? verbose = null)
    {
        var primaries = Entries(ShardsVariable, keepEmpty: false);
        if (primaries.Count == 0) throw new UserInputException($"{ShardsVariable} names no shard");
        var readers = string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(ReadersVariable)) ? [] : Entries(ReadersVariable, keepEmpty: true);
        if (readers.Count > primaries.Count)
            throw new UserInputException($"{ReadersVariable} has {readers.Count} entries for {primaries.Count} shards");
        var specs = primaries.Select((cs, i) =>
        {
            var name = $"shard{i + 1}";
            var reader = i < readers.Count && readers[i].Length > 0 ? readers[i] : null;
            Func<CancellationToken, Task<IEventStore>> open = readOnly
                ? ct => Reader(name, cs, reader, openReader, verbose, ct)
                : async ct => await SvaStoreSetup.OpenAsync(SvaHost.DaemonName(cs), readOnly: false, ct);
            return new ShardSpec(name, ReadYourWritesStore.EndpointOf(cs), open);
        }).ToList();
        return new ShardedEventStore(specs);
    }

    /// <summary>A shard's reader: its replica behind the read-your-writes barrier when one is configured, else its primary as sva_reader.</summary>
    private static async Task<IEventStore> Reader(string name, string primary, string? replica, Func<string, string, CancellationToken, Task<IEventStore>> openReader, TextWriter? verbose, CancellationToken ct)
    {
        var primaryReader = ReaderLogin.AsReaderRole(primary);
        Task<IEventStore> Primary(CancellationToken t) => SvaHost.ReaderErrors(() => ReaderLogin.OpenAsync(primary, SvaHost.OpenReaderRawAsync, verbose, name, t));
        if (replica is null) return await Primary(ct);
        var rw = new ReadYourWritesStore(name, primaryReader, replica, (cs, c) => cs == primaryReader ? Primary(c) : openReader(cs, primary, c), primary)
        {
            Timeout = ReplicaWait(),
            Log = m => Console.Error.WriteLine($"sva: {m}"),
            Trace = verbose is null ? null : m => verbose.WriteLine($"sva: {m}"),
        };
        await SvaHost.ReaderErrors(() => rw.EnsureAsync(ct));
        return rw;
    }
}
