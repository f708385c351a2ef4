using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Formats.Kernels;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>
/// The rule set a recorded session is decided under. A session recorded under a kernel file carries the file's
/// resolved content on its first event (metadata <c>kernel</c>): that is authoritative, whatever the file became.
/// Otherwise the session's kernel name resolves like any release (rule-set names, aliases of renamed or merged
/// rule sets such as 6.12 → 6.11, releases): whatever name a session was recorded under loads forever.
/// </summary>
public static class SessionKernels
{
    public static async Task<KernelVersion> ResolveAsync(IEventStore store, SessionInfo info, CancellationToken ct = default)
    {
        await foreach (var e in store.ReadSessionAsync(info.Id, 1, 1, ct))
            if (EventMetadata.Parse(e.Metadata).KernelDefinition is { } def)
            {
                try { return KernelFiles.FromDefinition(def, $"session {info.Id} seq 1"); }
                catch (KernelFileException ex) { throw new EventFormatException($"session {info.Id} seq 1: stored kernel definition: {ex.Message}"); }
            }
        return KernelVersions.Resolve(info.Kernel)?.Version ?? throw new UnsupportedKernelException(info.Kernel);
    }

    /// <summary>Same rules, and for kernel files the same resolved content.</summary>
    public static bool Same(KernelVersion a, KernelVersion b) =>
        a.Name == b.Name && a.Origin?.Definition == b.Origin?.Definition;
}
