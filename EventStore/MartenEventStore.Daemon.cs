using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Exceptions;
using Npgsql;
using NpgsqlTypes;
using Weasel.Core;

namespace Sva.EventStore;

// Marten's async daemon: rebuild, catch up, run (HotCold leader election).
public sealed partial class MartenEventStore
{
    public Task RebuildProjectionAsync(string name, TimeSpan timeout, CancellationToken ct = default, IProgress<long>? progress = null) =>
        RunAsync(async () =>
        {
            using var daemon = await _store.BuildProjectionDaemonAsync();
            using var watching = progress is null ? null : daemon.Tracker.Subscribe(new RebuildProgress(name, progress));
            await daemon.RebuildProjectionAsync(name, timeout, ct);
            return true;
        }, ct);

    public Task RunDaemonAsync(bool once, TimeSpan catchUpTimeout, CancellationToken ct = default) =>
        RunAsync(async () =>
        {
            using var daemon = await _store.BuildProjectionDaemonAsync();
            if (once)
            {
                await daemon.CatchUpAsync(catchUpTimeout, ct);
                return true;
            }
            if (_store.Options.Projections.AsyncMode == DaemonMode.HotCold)
            {
                // Marten's own coordinator: leader election on an advisory lock; a standby takes over from the checkpoints.
                await using var coordinator = new Marten.Events.Daemon.Coordination.ProjectionCoordinator(_store,
                    Microsoft.Extensions.Logging.Abstractions.NullLogger<Marten.Events.Daemon.Coordination.ProjectionCoordinator>.Instance);
                await coordinator.StartAsync(CancellationToken.None);
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { }
                await coordinator.StopAsync(CancellationToken.None);
                return true;
            }
            await daemon.StartAllAsync();
            try { await Task.Delay(Timeout.Infinite, ct); }
            catch (OperationCanceledException) { }
            await daemon.StopAllAsync();
            return true;
        }, ct);
}
