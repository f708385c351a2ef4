using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Projections.Async;

namespace Sva.Projections;

/// <summary>How the SVA simulator sets up the store: its event types under their stored names, its JSON, its projections.</summary>
public static class SvaStoreSetup
{
    /// <summary>A new setup with a fresh inline read-model projection (its state cache is per store instance).</summary>
    public static StoreSetup Create(int daemonBatchSize = 5000) => new()
    {
        EventTypes = EventTypes.All,
        Json = SvaJson.Options,
        Projections = [new SvaReadModelProjection(), new AuditBindingsProjection()],
        DaemonBatchSize = daemonBatchSize,
        HotColdDaemon = HotColdDaemon,
    };

    /// <summary>Set by `sva projections daemon` (following, not --once) before it opens the store: the daemon processes
    /// share the work through Marten's leader election (DaemonMode.HotCold).</summary>
    public static bool HotColdDaemon { get; set; }

    /// <summary>Opens the store as a writer (Marten creates or migrates its schema) or as a reader.</summary>
    public static async Task<IEventStore> OpenAsync(string connectionString, bool readOnly = false, CancellationToken ct = default)
    {
        var setup = Create();
        StartTrace.Mark("store setup (event types, JSON options, projections)");
        return await MartenEventStore.OpenAsync(connectionString, setup, readOnly, ct);
    }
}
