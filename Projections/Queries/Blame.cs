using System.Globalization;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;

namespace Sva.Projections.Queries;

/// <summary>Where a value came from: the event at <see cref="Seq"/>, its stored type, its source (<c>file:line</c> of the
/// script or capture) and <see cref="Line"/>, the call it belongs to (<see cref="Op"/>) and the rule that decided that call.</summary>
public sealed record SetAtInfo(long Seq, string Type, string? Source, int? Line, string? Op, string? Rule, long? CallSeq)
{
    private SvaEvent? decoded;
    private readonly Func<SvaEvent>? decode;

    public SetAtInfo(long seq, string type, string? source, int? line, string? op, string? rule, SvaEvent @event, long? callSeq)
        : this(seq, type, source, line, op, rule, callSeq) => decoded = @event;

    /// <summary>The event decoded when first asked for (<c>why</c> shows it, <c>state --blame</c> does not); a stored event this
    /// version cannot read is then <see cref="StoredEventException"/> naming its seq.</summary>
    public SetAtInfo(long seq, string type, string? source, int? line, string? op, string? rule, Func<SvaEvent> decode, long? callSeq)
        : this(seq, type, source, line, op, rule, callSeq) => this.decode = decode;

    /// <summary>The event at <see cref="Seq"/>.</summary>
    public SvaEvent Event => decoded ??= decode!();

    public JsonObject ToJson() => new()
    {
        ["seq"] = Seq, ["line"] = Line, ["source"] = Source, ["op"] = Op, ["rule"] = Rule,
    };

    /// <summary>One cell: <c>12 bind a.sva:7 bind.new</c>.</summary>
    public string Short() => string.Join(' ', new[] { Seq.ToString(CultureInfo.InvariantCulture), Op, Source, Rule }.Where(x => x is not null));

    /// <summary>The line number at the end of a <c>file:line</c> source.</summary>
    public static int? LineOf(string? source)
    {
        if (source is null) return null;
        var colon = source.LastIndexOf(':');
        return colon >= 0 && int.TryParse(source.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}

/// <summary>One step of <c>sva why</c>: an event and the rows of the chain it set last.</summary>
public sealed record WhyStep(SetAtInfo At, IReadOnlyList<RowRef> Rows)
{
    public JsonObject ToJson() => new()
    {
        ["seq"] = At.Seq, ["type"] = At.Type, ["op"] = At.Op, ["line"] = At.Line, ["source"] = At.Source, ["rule"] = At.Rule,
        ["set"] = new JsonArray(Rows.Select(r => (JsonNode)JsonValue.Create(r.Describe())!).ToArray()),
        ["event"] = JsonNode.Parse(SvaJson.Serialize(At.Event)),
    };
}

/// <summary>An object asked about does not exist at the seq (exit 2): names it and the last seq at which it existed, if ever.</summary>
public sealed class NoSuchObjectException(string message) : Exception(message);

/// <summary>
/// Provenance queries: <c>sva state --blame</c> and <c>sva why</c>. The set-at seq of each row is in the state
/// (<see cref="SvaState.SetAt"/>, carried by snapshots); turning a seq into its line, call and rule reads only the
/// events of that one call.
/// </summary>
public static class Blame
{
    /// <summary>The state at <paramref name="atSeq"/> with complete provenance: from the nearest snapshot that carries it
    /// (one written before provenance existed is passed over: an earlier one, or the fold from seq 0, is used instead).</summary>
    public static async Task<LoadedState> LoadAsync(IEventStore store, string session, long atSeq, bool useSnapshots = true, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(atSeq);
        if (atSeq == 0) return new LoadedState(new SvaState(), 0, 0);
        SvaState? from = null;
        byte[]? carried = null;
        var below = atSeq;
        while (useSnapshots && below >= 1)
        {
            var snap = await store.LoadSnapshotAsync(session, below, ct);
            if (snap is null) break;
            var (parsed, events) = StateSnapshot.DecodeWithSetAtEvents(snap);
            if (parsed is not null && Provenance.IsComplete(parsed)) { from = parsed; carried = events; break; }
            below = snap.Seq - 1; // no provenance (an older release's snapshot) or unreadable: look further back
        }
        var start = from?.Seq ?? 0;
        var state = await EventCodec.FoldAsync(store.ReadSessionDataAsync(session, start + 1, atSeq, ct), from, ct);
        if (state.Seq != atSeq) throw new StoredEventException(session, state.Seq + 1, $"the log ends at seq {state.Seq}, before seq {atSeq}");
        if (!Provenance.IsComplete(state)) throw new InvalidOperationException($"session {session}: the state at seq {atSeq} has no provenance");
        var known = new Dictionary<long, SetAtInfo>();
        foreach (var e in SetAtEventDto.Read(carried))
            if (e.Seq >= 1 && e.Seq <= start)
                known[e.Seq] = new SetAtInfo(e.Seq, e.Type, e.Source, SetAtInfo.LineOf(e.Source), e.Op, e.Rule, NotRead(session, e.Seq), e.CallSeq);
        return new LoadedState(state, start, atSeq - start) { SetAtEvents = known };
    }

    // An entry a snapshot carried: its event was not read (blame shows no event; why resolves from the log).
    private static Func<SvaEvent> NotRead(string session, long seq) =>
        () => throw new InvalidOperationException($"session {session} seq {seq}: the event was not read (its provenance came from a snapshot)");

    private const int Window = 7, MergeGap = 8;

    /// <summary>Resolves each seq to its event, call, line and rule in one round trip: the server looks each seq up on the
    /// (session, seq) index and finds the first event of its call (the one whose metadata carries the call, same source) —
    /// by one more look-up where the event's metadata says how far back it is (<see cref="EventMetadata.CallOffset"/>, written by
    /// the recorder), else by a walk back — and, unless that first event carries the call's rule (<see cref="EventMetadata.Rule"/>),
    /// walks to the call's end for the type and rule field of each of its events (<see cref="IEventStore.ReadGroupsAsync"/>);
    /// nothing else is read or decoded. Falls back to reading windows of the log around the seqs when the server cannot read
    /// some metadata as JSON, a call's shape is unknown here or a stored distance does not lead to its call.</summary>
    public static Task<IReadOnlyDictionary<long, SetAtInfo>> ResolveAsync(IEventStore store, string session, IEnumerable<long> seqs,
        CancellationToken ct = default) => ResolveAsync(store, session, seqs, null, ct);

    /// <summary>The same, taking the seqs <paramref name="known"/> holds from it (what a snapshot carried:
    /// <see cref="LoadedState.SetAtEvents"/>) and reading only the others.</summary>
    public static async Task<IReadOnlyDictionary<long, SetAtInfo>> ResolveAsync(IEventStore store, string session, IEnumerable<long> seqs,
        IReadOnlyDictionary<long, SetAtInfo>? known, CancellationToken ct = default)
    {
        var distinct = seqs.Where(s => s >= 1).Distinct();
        if (known is { Count: > 0 })
        {
            var result = new Dictionary<long, SetAtInfo>();
            var rest = new List<long>();
            foreach (var s in distinct)
                if (known.TryGetValue(s, out var k)) result[s] = k;
                else rest.Add(s);
            if (rest.Count > 0)
                foreach (var (s, info) in await ResolveAsync(store, session, rest, null, ct)) result[s] = info;
            return result;
        }
        var wanted = distinct.Order().ToList();
        if (wanted.Count == 0) return new Dictionary<long, SetAtInfo>();
        var rows = await store.ReadGroupsAsync(session, wanted, EventMetadata.CallKey, EventMetadata.SourceKey, "rule",
            EventMetadata.OffsetKey, EventMetadata.RuleKey, ct);
        if (rows is not null && FromGroups(session, wanted, rows) is { } fast) return fast;
        return await ResolveByWindowsAsync(store, session, wanted, ct);
    }

    /// <summary>Resolution from the server's groups; null when a call cannot be read here (the windows path then decides). Reads
    /// of each metadata only what provenance needs (<see cref="EventMetadata.ReadProvenance"/>); a call whose first event carries
    /// no rule (sessions recorded before the recorder wrote it, imports) is read whole, for its rule from its events' types and
    /// rule fields. The events themselves are decoded only when asked for (<see cref="SetAtInfo.Event"/>), except one outside
    /// any call, whose own rule is its rule.</summary>
    private static Dictionary<long, SetAtInfo>? FromGroups(string session, List<long> wanted, IReadOnlyList<GroupedEvent> rows)
    {
        var result = new Dictionary<long, SetAtInfo>(rows.Count);
        var calls = new Dictionary<long, (string Op, string? Rule)>();
        foreach (var g in rows)
        {
            var meta = Fields(g.Seq, g.Metadata);
            var source = meta.Source;
            // a stored distance that does not lead to the first event of a call (the server found none there): read here
            if (meta.CallOffset is { } off && g.GroupSeq != g.Seq - off) return null;
            string? op = null, rule;
            if (g.GroupSeq is { } first)
            {
                if (!calls.TryGetValue(first, out var c))
                {
                    var gm = first == g.Seq ? meta : g.GroupMetadata is { } m ? Fields(first, m) : default;
                    if (!gm.HasCall) return null;
                    if (gm.HasRule && gm.Op is { } recordedOp) c = (recordedOp, gm.Rule); // the recorder's rule: the server read no further
                    else
                    {
                        // read the call whole: its rule from its events
                        if (Parse(first, first == g.Seq ? g.Metadata : g.GroupMetadata!).Call is not { } call) return null; // a shape this version cannot read
                        c = (call.Op, CallOutcome.RuleIdOf(call, g.GroupTypes, g.GroupFields));
                    }
                    calls[first] = c;
                }
                op = c.Op;
                rule = c.Rule;
            }
            else
            {
                var ev = Decode(g);
                result[g.Seq] = new SetAtInfo(g.Seq, g.Type, source, SetAtInfo.LineOf(source), null, (ev as IRuled)?.Rule, ev, null);
                continue;
            }
            var row = g;
            result[g.Seq] = new SetAtInfo(g.Seq, g.Type, source, SetAtInfo.LineOf(source), op, rule, () => Decode(row), g.GroupSeq);
        }
        foreach (var s in wanted)
            if (!result.ContainsKey(s)) throw new StoredEventException(session, s, $"seq {s} is not in the log");
        return result;

        SvaEvent Decode(GroupedEvent g)
        {
            try { return SvaJson.Deserialize(g.Type, g.DataJson); }
            catch (EventFormatException ex) { throw new StoredEventException(session, g.Seq, ex.Message); }
        }

        EventMetadata.ProvenanceFields Fields(long seq, string text)
        {
            try { return EventMetadata.ReadProvenance(text); }
            catch (EventFormatException ex) { throw new StoredEventException(session, seq, ex.Message); }
        }

        EventMetadata Parse(long seq, string text)
        {
            try { return EventMetadata.Parse(text); }
            catch (EventFormatException ex) { throw new StoredEventException(session, seq, ex.Message); }
        }
    }

    /// <summary>The same by reading windows of the log around the seqs, all in one round trip
    /// (<see cref="IEventStore.ReadSessionRangesAsync"/>), widened for the few calls longer than the window, and parsing every
    /// event's metadata here.</summary>
    private static async Task<IReadOnlyDictionary<long, SetAtInfo>> ResolveByWindowsAsync(IEventStore store, string session, List<long> wanted,
        CancellationToken ct)
    {
        var result = new Dictionary<long, SetAtInfo>();
        var last = (await store.GetSessionAsync(session, ct))?.Version ?? 0;
        var log = new Dictionary<long, StoredEvent>();
        var metas = new Dictionary<long, EventMetadata>();
        EventMetadata Meta(long seq) => metas.TryGetValue(seq, out var m) ? m : metas[seq] = EventCodec.Metadata(log[seq]);

        async Task ReadAsync(IEnumerable<(long From, long To)> wantedRanges)
        {
            var ranges = new List<(long From, long To)>();
            foreach (var (f0, t0) in wantedRanges.Select(r => (Math.Max(1, r.From), Math.Min(last, r.To))).Where(r => r.Item1 <= r.Item2).OrderBy(r => r.Item1))
            {
                var (f, to) = (f0, t0);
                while (f <= to && log.ContainsKey(f)) f++;
                while (to >= f && log.ContainsKey(to)) to--;
                if (f > to) continue;
                if (ranges.Count > 0 && f <= ranges[^1].To + MergeGap) ranges[^1] = (ranges[^1].From, Math.Max(ranges[^1].To, to));
                else ranges.Add((f, to));
            }
            if (ranges.Count == 0) return;
            await foreach (var e in store.ReadSessionRangesAsync(session, ranges, ct)) log[e.Seq] = e;
        }

        await ReadAsync(wanted.Select(s => (s - Window, s + Window)));
        var pending = wanted;
        var widen = 64;
        while (pending.Count > 0)
        {
            var more = new List<(long From, long To)>();
            var missing = new List<long>();
            var still = new List<long>();
            foreach (var s in pending)
            {
                if (!log.ContainsKey(s)) throw new StoredEventException(session, s, $"seq {s} is not in the log (it ends at {last})");
                var need = TryResolve(s, out var info);
                if (need is { } r) { more.Add((r.From, r.To)); missing.Add(r.Missing); still.Add(s); }
                else result[s] = info!;
            }
            if (still.Count == 0) break;
            await ReadAsync(more);
            // each range was asked for one missing seq at one of its ends: still missing is a gap in the log
            foreach (var k in missing)
                if (!log.ContainsKey(k)) throw new StoredEventException(session, k, $"seq {k} is missing from the log");
            pending = still;
            widen *= 4;

            // The call of s: back over the events of the same source to the one that carries the call; then its events up to the
            // next call (or another source). Returns a range to read when the window does not reach far enough.
            (long From, long To, long Missing)? TryResolve(long s, out SetAtInfo? info)
            {
                info = null;
                var source = Meta(s).Source;
                long? callSeq = null;
                KernelCall? call = null;
                for (var k = s; k >= 1; k--)
                {
                    if (!log.ContainsKey(k)) return (k - widen, k, k);
                    var m = Meta(k);
                    if (m.Source != source) break;
                    if (m.Call is { } c) { call = c; callSeq = k; break; }
                }
                var events = new List<SvaEvent>();
                if (callSeq is { } first)
                    for (var k = first; k <= last; k++)
                    {
                        if (!log.ContainsKey(k)) return (k, k + widen, k);
                        var m = Meta(k);
                        if (k > first && (m.Call is not null || m.Source != source)) break;
                        events.Add(EventCodec.Decode(log[k]));
                    }
                var ev = EventCodec.Decode(log[s]);
                var rule = call is not null ? CallOutcome.RuleIdOf(call, events) : (ev as IRuled)?.Rule;
                info = new SetAtInfo(s, log[s].Type, source, SetAtInfo.LineOf(source), call?.Op, rule, ev, callSeq);
                return null;
            }
        }
        return result;
    }

    /// <summary>The set-at seq of every row of the state (rows of a state without complete provenance are refused).</summary>
    public static IReadOnlyDictionary<RowRef, long> SetAtOfRows(SvaState s)
    {
        if (!Provenance.IsComplete(s)) throw new InvalidOperationException("the state has no provenance");
        var d = new Dictionary<RowRef, long>();
        foreach (var r in Provenance.Rows(s))
            if (s.SetAt.TryGetValue(r.Key, out var seq)) d[r] = seq;
        return d;
    }

    /// <summary>Adds <c>set_at</c> to every object of a <see cref="StateView.ToJson"/> document (and <c>pending_set_at</c>
    /// to devices: their pending page requests), rendered by <paramref name="render"/> from the row's seq.</summary>
    public static void Annotate(JsonObject view, SvaState s, Func<long, JsonNode?> render)
    {
        JsonNode? At(RowRef r) => s.SetAt.TryGetValue(r.Key, out var seq) && Provenance.Exists(s, r) ? render(seq) : null;
        foreach (var d in view["devices"]!.AsArray())
        {
            var id = (string)d!["id"]!;
            d["set_at"] = At(RowRef.Device(id));
            d["pending_set_at"] = At(RowRef.Pending(id));
            foreach (var p in d["pasids"]!.AsArray()) p!["set_at"] = At(RowRef.Entry(id, (int)p["pasid"]!));
        }
        foreach (var m in view["mms"]!.AsArray()) m!["set_at"] = At(RowRef.Mm((string)m["id"]!));
        foreach (var x in view["domains"]!.AsArray()) x!["set_at"] = At(RowRef.Domain((string)x["id"]!));
        foreach (var h in view["handles"]!.AsArray()) h!["set_at"] = At(RowRef.Handle((string)h["id"]!));
        foreach (var p in view["pasid_allocator"]!.AsArray()) p!["set_at"] = At(RowRef.Allocation((int)p["pasid"]!));
    }

    /// <summary>The causal chain behind a row's value at the state's seq: first the event that set it, then, newest first,
    /// the events that last changed the rows it refers to, recursively (the domain, the mm, the PASID allocation, the device).</summary>
    public static async Task<IReadOnlyList<WhyStep>> WhyAsync(IEventStore store, string session, SvaState s, RowRef root, CancellationToken ct = default)
    {
        if (!Provenance.IsComplete(s)) throw new InvalidOperationException("the state has no provenance");
        if (!Provenance.Exists(s, root)) throw new ArgumentException($"{root.Describe()} does not exist at seq {s.Seq}");
        var rows = RowReferences.Closure(s, root);
        var bySeq = new Dictionary<long, List<RowRef>>();
        foreach (var r in rows)
            if (s.SetAt.TryGetValue(r.Key, out var seq))
            {
                if (!bySeq.TryGetValue(seq, out var l)) bySeq[seq] = l = [];
                l.Add(r);
            }
        var info = await ResolveAsync(store, session, bySeq.Keys, ct);
        var rootSeq = s.SetAt[root.Key];
        return bySeq.Keys.OrderByDescending(k => k == rootSeq).ThenByDescending(k => k)
            .Select(k => new WhyStep(info[k], bySeq[k])).ToList();
    }

    /// <summary>The last seq ≤ the state's seq at which the row existed, or null if it never did up to there. The state knows
    /// (<see cref="Provenance.LastExisted"/>: rows that never go, handle and domain counters, <see cref="SvaState.GoneAt"/>);
    /// only a state folded from a snapshot written before provenance version 2 leaves the log to be read backwards for the
    /// events naming the row.</summary>
    public static async Task<long?> LastExistedAsync(IEventStore store, string session, SvaState atState, RowRef row, CancellationToken ct = default)
    {
        if (Provenance.LastExisted(atState, row) is { } known) return known == 0 ? null : known;
        const int Page = 4096;
        var empty = new SvaState();
        var touched = new List<RowRef>();
        for (var hi = atState.Seq; hi >= 1; hi -= Page)
        {
            var lo = Math.Max(1, hi - Page + 1);
            var naming = new List<long>();
            await foreach (var e in store.ReadSessionAsync(session, lo, hi, ct))
            {
                touched.Clear();
                Provenance.Touched(empty, EventCodec.Decode(e), touched);
                if (touched.Contains(row)) naming.Add(e.Seq);
            }
            for (var i = naming.Count - 1; i >= 0; i--)
            {
                var k = naming[i];
                // it existed just before the event that removed it
                var before = await TimeTravel.LoadAsync(store, session, k - 1, true, ct);
                if (Provenance.Exists(before.State, row))
                {
                    var at = before.State;
                    Evolve.Apply(at, EventCodec.Decode(await SingleAsync(store, session, k, ct)));
                    return Provenance.Exists(at, row) ? k : k - 1;
                }
            }
        }
        return null;
    }

    private static async Task<StoredEvent> SingleAsync(IEventStore store, string session, long seq, CancellationToken ct)
    {
        await foreach (var e in store.ReadSessionAsync(session, seq, seq, ct)) return e;
        throw new StoredEventException(session, seq, $"seq {seq} is not in the log");
    }
}
