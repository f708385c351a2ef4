using System.Text.Json;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Projections.Async;

namespace Sva.Projections.Queries;

/// <summary>How a history was read: from the log from seq 1, or from the audit_bindings projection and the log from a later seq.</summary>
public sealed record HistoryRead(bool FromAudit, long FromSeq, long Events, string Note);

public static partial class BindingHistory
{
    /// <summary>Past this many bind calls to read for the devices of the bindings open where the read starts (or of those that
    /// may have held a touched (device, PASID) before it), the whole log is read instead.</summary>
    private const int MaxBindCalls = 512;

    /// <summary>How far before a bind the start of its call is looked for (a bind's call has a few events).</summary>
    private const int CallWindow = 64;

    /// <summary>
    /// The history of <paramref name="session"/>: the same answer as <see cref="BuildAsync"/> over the whole log, read from the
    /// <c>audit_bindings</c> projection where it can: its documents say which bindings the filter and range ask for and where the
    /// earliest of them begins; the log is read from the start of that call (not from seq 1), with the bindings still open there
    /// (their devices from their bind calls) and, for a touch of a (device, PASID) that nothing in the read bound, whether a
    /// binding before the start held it. Where the projection is behind the session, the log is read from the first event it
    /// has not projected at the latest. Falls back to the whole log (and says why) when the projection cannot answer.
    /// </summary>
    public static async Task<(HistoryResult Result, HistoryRead How)> LoadAsync(IEventStore store, string session, HistoryFilter filter, bool useAudit,
        CancellationToken ct = default)
    {
        string why;
        if (!useAudit) why = "--log";
        else
        {
            var (plan, reason) = await PlanAsync(store, session, filter, ct);
            if (plan is not null)
            {
                var b = new Builder(filter) { StartsLate = plan.Start > 1 };
                foreach (var seed in plan.Open) b.Open(seed);
                if (plan.Start != long.MaxValue)
                    await foreach (var e in TimeTravel.ReadAsync(store, session, plan.Start, filter.To, ct).WithCancellation(ct)) b.Step(e);
                await ResolveAsync(store, session, b, plan, ct);
                var r = b.Result();
                return (r, new HistoryRead(true, plan.Start, r.EventsRead,
                    $"history: from the audit_bindings projection (checkpoint {plan.Checkpoint}{(plan.LagFrom is long l ? $"; behind this session from seq {l}, read from the log" : ", past this session's events")}): " +
                    (plan.Start == long.MaxValue ? "no binding of that mm in that range, nothing read from the log"
                        : $"the log read from seq {plan.Start} ({r.EventsRead} events), {plan.Open.Count} binding(s) open there")));
            }
            why = reason;
        }
        var all = await BuildAsync(TimeTravel.ReadAsync(store, session, 1, filter.To, ct), filter, ct);
        return (all, new HistoryRead(false, 1, all.EventsRead, $"history: the log read from seq 1 ({all.EventsRead} events): {why}"));
    }

    private sealed record Plan(long Start, long Checkpoint, long? LagFrom, List<Seed> Open, List<AuditBinding> ClosedBefore);

    private static async Task<(Plan? Plan, string Reason)> PlanAsync(IEventStore store, string session, HistoryFilter filter, CancellationToken ct)
    {
        var docs = await store.ProjectionDocumentsAsync(AuditBindingsProjection.ProjectionName, typeof(AuditBinding), session, ct);
        if (docs is null) return (null, "no audit_bindings projection in this database");
        var (checkpoint, texts) = docs.Value;
        var lagFrom = await store.FirstSeqAfterPositionAsync(session, checkpoint, ct);
        var bindings = new List<AuditBinding>(texts.Count);
        foreach (var t in texts)
            bindings.Add(JsonSerializer.Deserialize<AuditBinding>(t, SvaJson.Options) ?? throw new InvalidOperationException($"session {session}: an audit_bindings document is null"));
        // The bindings the filter and range may report (by PASID and mm: a --device may be any device of the bind's group), and
        // without --mm the touches without binding from --from on.
        var start = filter.Mm is null ? filter.From : long.MaxValue;
        foreach (var x in bindings)
            if (x.IssuedSeq <= filter.To && (x.UnboundSeq ?? long.MaxValue) >= filter.From
                && (filter.Pasid is null || filter.Pasid == x.Pasid) && (filter.Mm is null || filter.Mm == x.Mm))
                start = Math.Min(start, x.IssuedSeq);
        if (lagFrom is long lag) start = Math.Min(start, lag);
        if (start == long.MaxValue) return (new Plan(start, checkpoint, lagFrom, [], []), ""); // no binding of that mm in the range: nothing to read
        if (start <= 1) return (null, lagFrom == 1 ? "audit_bindings has projected none of this session" : "the bindings asked for begin at seq 1");
        // The read starts where the call of that seq starts (the fold needs a call's events from its first).
        var window = await ReadWindowAsync(store, session, [start], ct);
        var at = window.FindIndex(e => e.Seq == start);
        var first = at < 0 ? -1 : CallStartIn(window, at);
        if (first < 0) return (null, $"the call of seq {start} starts more than {CallWindow} events before it");
        start = window[first].Seq;
        if (start <= 1) return (null, "the bindings asked for begin in the first call");
        // Bindings open where the read starts: their devices (the whole group) from their bind calls.
        var open = bindings.Where(x => x.IssuedSeq < start && (x.UnboundSeq ?? long.MaxValue) >= start).OrderBy(x => x.IssuedSeq).ToList();
        if (open.Count > MaxBindCalls) return (null, $"{open.Count} bindings are open at seq {start}");
        var devices = await DevicesAsync(store, session, open, ct);
        if (devices is null) return (null, "a bind call of a binding open at the start could not be read back to its first event");
        var seeds = open.Select(x => new Seed(x.Handle, devices[x.IssuedSeq], x.Pasid, x.Mm, x.IssuedSeq)).ToList();
        return (new Plan(start, checkpoint, lagFrom, seeds, bindings.Where(x => x.UnboundSeq < start).ToList()), "");
    }

    /// <summary>For each touch of a (device, PASID) that nothing bound in the read: did a binding closed before the start hold it?
    /// (Then the whole-log fold has it as that binding's, not as a touch without binding.)</summary>
    private static async Task ResolveAsync(IEventStore store, string session, Builder b, Plan plan, CancellationToken ct)
    {
        if (b.UncertainKeys.Count == 0) return;
        var need = new List<AuditBinding>();
        foreach (var (device, pasid) in b.UncertainKeys)
        {
            if (plan.ClosedBefore.Any(x => x.Pasid == pasid && x.Device == device)) { b.BoundBefore.Add((device, pasid)); continue; }
            need.AddRange(plan.ClosedBefore.Where(x => x.Pasid == pasid));
        }
        need = need.DistinctBy(x => x.IssuedSeq).ToList();
        if (need.Count == 0) return;
        if (need.Count > MaxBindCalls) throw new InvalidOperationException($"session {session}: {need.Count} bind calls to read for the touches without binding");
        var devices = await DevicesAsync(store, session, need, ct)
            ?? throw new InvalidOperationException($"session {session}: a bind call could not be read back to its first event");
        foreach (var x in need)
            foreach (var d in devices[x.IssuedSeq])
                if (b.UncertainKeys.Contains((d, x.Pasid))) b.BoundBefore.Add((d, x.Pasid));
    }

    /// <summary>The devices of each binding's bind (by its issued seq), read from its call; null when one cannot be read back.</summary>
    private static async Task<Dictionary<long, IReadOnlyList<string>>?> DevicesAsync(IEventStore store, string session, IReadOnlyList<AuditBinding> bindings,
        CancellationToken ct)
    {
        var result = new Dictionary<long, IReadOnlyList<string>>();
        if (bindings.Count == 0) return result;
        var window = await ReadWindowAsync(store, session, bindings.Select(x => x.IssuedSeq).ToList(), ct);
        var index = new Dictionary<long, int>();
        for (var i = 0; i < window.Count; i++) index[window[i].Seq] = i;
        foreach (var x in bindings)
        {
            if (!index.TryGetValue(x.IssuedSeq, out var i) || window[i].Event is not HandleIssued h || h.Handle != x.Handle)
                throw new StoredEventException(session, x.IssuedSeq, $"audit_bindings says {x.Handle} was issued here, the log does not");
            if (DevicesOfBind(window, i) is not { } d) return null;
            result[x.IssuedSeq] = d;
        }
        return result;
    }

    /// <summary>The events up to <see cref="CallWindow"/> before each seq and the seq itself, in seq order, one query.</summary>
    private static async Task<List<LoggedEvent>> ReadWindowAsync(IEventStore store, string session, IReadOnlyList<long> seqs, CancellationToken ct)
    {
        var ranges = new List<(long From, long To)>();
        foreach (var s in seqs.Order())
        {
            var from = Math.Max(1, s - CallWindow);
            if (ranges.Count > 0 && from <= ranges[^1].To + 1) ranges[^1] = (ranges[^1].From, Math.Max(ranges[^1].To, s));
            else ranges.Add((from, s));
        }
        var list = new List<LoggedEvent>();
        await foreach (var e in store.ReadSessionRangesAsync(session, ranges, ct)) list.Add(LoggedEvent.Of(e));
        return list;
    }
}
