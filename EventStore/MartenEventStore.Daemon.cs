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

    /// <summary>Key of the advisory lock a writing command holds while it catches the projections up (one at a time).</summary>
    public const long CatchUpLockKey = 7360002;

    public async Task<bool> CatchUpAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        if (_readOnly || Interlocked.Read(ref _appends) == 0) return false;
        return await RunAsync(async () =>
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            // One catching-up writer at a time (the others wait: when they get the lock there is little left to do).
            await using (var l = new NpgsqlCommand("SELECT pg_advisory_lock($1)", conn) { Parameters = { Bigint(CatchUpLockKey) } })
                await l.ExecuteNonQueryAsync(ct);
            try
            {
                // A following daemon (`sva projections daemon`, connections named sva-daemon-PID) that leads holds Marten's
                // advisory leader lock: it projects what was appended; the writer leaves the work to it.
                await using (var t = new NpgsqlCommand(
                    """
                    SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                                   WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
                                     AND a.application_name LIKE 'sva-daemon-%')
                    """, conn))
                    if (await t.ExecuteScalarAsync(ct) is true) return false;
                using var daemon = await _store.BuildProjectionDaemonAsync();
                await daemon.CatchUpAsync(timeout, ct);
                Interlocked.Exchange(ref _appends, 0);
                return true;
            }
            finally
            {
                await using var u = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", conn) { Parameters = { Bigint(CatchUpLockKey) } };
                await u.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }, ct);
    }

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
