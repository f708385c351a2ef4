using System.Globalization;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Projections;
using Sva.Projections.Queries;
using Sva.Projections.Views;

namespace Sva.Replay.Views;

/// <summary>
/// The data of a timeline page for a window [from, to] of a session, built in one pass over the log that keeps
/// only what the page shows (the events are not held): memory and page size depend on the window and the zoom,
/// not on the session's length.
/// <list type="bullet">
/// <item>Detail (the window has at most <c>detailLimit</c> events): every binding interval and mark, and every
/// event of the window for the hover text, as the page always showed.</item>
/// <item>Coarse (more events): the window is cut into <see cref="Buckets"/> buckets; per lane, the marks are
/// counted per bucket and kind, and bindings are merged into spans (overlapping or closer than a bucket), each
/// with its number of handles. The page says to cut a window with --from/--to for the events themselves.</item>
/// </list>
/// What each event draws (one lane per (device, PASID), bindings from handle_issued to handle_freed, marks for page
/// responses and withheld ones, queued requests, DMA faults, ATC invalidations, mm exit/drop on every lane the mm was
/// bound on, capture observations) is <see cref="SessionTimeline.EffectsOf"/>, the lane rules the Perfetto export uses too.
/// </summary>
public sealed class TimelineModel
{
    public const int Buckets = 600;
    public const int DefaultDetailLimit = 20_000;
    /// <summary>State tables embedded for the slider: at most this many characters of JSON (points are thinned).</summary>
    public const int StateBudget = 3_000_000;
    public const int MaxStatePoints = 400;
    /// <summary>Coarse mode: at most this many (lane, column, kind) counts; columns are widened until they fit.</summary>
    public const int MaxCountEntries = 100_000;

    private sealed class LaneData(string device, string pasid)
    {
        public string Device { get; } = device;
        public string Pasid { get; } = pasid;
        public List<JsonObject> Intervals { get; } = [];
        public List<JsonObject> Marks { get; } = [];
        public Dictionary<string, (long From, long? To)> Open { get; } = new(StringComparer.Ordinal);
        // coarse: merged binding spans and mark counts per (bucket, kind, label)
        public List<(long From, long? To, int Handles)> Spans { get; } = [];
        public SortedDictionary<(int Bucket, string Kind, string Label), int> Counts { get; } = new();
    }

    /// <param name="useSnapshots">False: read from event 1 (the same page, slower).</param>
    /// <param name="started">Told the seq the build started after (0: event 1; else a snapshot's seq).</param>
    public static async Task<JsonObject> BuildAsync(IEventStore store, SessionInfo info, long from, long to, int detailLimit, CancellationToken ct,
        bool useSnapshots = true, Action<long>? started = null)
    {
        var last = info.Version;
        var window = Math.Max(0, to - from + 1);
        var detail = window <= detailLimit;
        double bucketWidth = Math.Max(1.0, (double)window / Buckets);
        int BucketOf(long seq) => (int)Math.Min(Buckets - 1, (seq - from) / bucketWidth);

        var lanes = new SortedDictionary<string, LaneData>(StringComparer.Ordinal);
        var lanesOfMm = new Dictionary<string, HashSet<LaneData>>(StringComparer.Ordinal);
        var events = new JsonArray();
        var state = new SvaState();

        // State points for the slider: every seq of a small window, else evenly spaced; thinned to the budget.
        var points = new SortedSet<long> { from - 1, to };
        if (window <= 1500) for (var s = from - 1; s <= to; s++) points.Add(s);
        else for (var i = 0; i <= MaxStatePoints; i++) points.Add(from - 1 + window * i / MaxStatePoints);
        var states = new SortedDictionary<long, string>();
        long stateChars = 0;
        // Once the budget has thinned the points, only every stride-th point is built: building the others (a state view
        // of a large session is ~100 KB of JSON) would only see them dropped again. The last point is always built.
        long stride = 1, pointNo = 0;
        void TakeState(long seq)
        {
            if (pointNo++ % stride != 0 && seq != to) return;
            var view = StateView.Of(info.Id, info.Kernel, state).ToJson();
            // provenance for the page: a click on a cell moves the slider to the seq that set its row
            Sva.Projections.Queries.Blame.Annotate(view, state, s => new JsonObject { ["seq"] = s });
            var json = view.ToJsonString();
            states[seq] = json;
            stateChars += json.Length;
            while (stateChars > StateBudget && states.Count > 2)
            {
                // drop every other point, keeping the first and the newest
                var keys = states.Keys.ToList();
                for (var k = 1; k < keys.Count - 1; k += 2) { stateChars -= states[keys[k]].Length; states.Remove(keys[k]); }
                stride *= 2;
            }
        }

        LaneData LaneOf(string device, int? pasid)
        {
            var p = SessionTimeline.PasidText(pasid);
            var key = SessionTimeline.LaneKey(device, p);
            if (!lanes.TryGetValue(key, out var lane)) lanes[key] = lane = new LaneData(device, p);
            return lane;
        }
        void Mark(LaneData lane, long seq, string kind, string label, string detailText)
        {
            if (seq < from) return;
            if (detail) lane.Marks.Add(new JsonObject { ["seq"] = seq, ["kind"] = kind, ["label"] = label, ["detail"] = detailText });
            else
            {
                var k = (BucketOf(seq), kind, label);
                lane.Counts[k] = lane.Counts.GetValueOrDefault(k) + 1;
            }
        }
        void Bound(LaneData lane, string handle, string mm, string? domain, long seq, string? source)
        {
            lane.Open[handle] = (seq, null);
            if (detail)
                lane.Intervals.Add(new JsonObject { ["handle"] = handle, ["mm"] = mm, ["domain"] = domain, ["from"] = Math.Max(seq, from - 1), ["to"] = null, ["from_source"] = source, ["to_source"] = null, ["clipped"] = seq < from - 1 ? true : null });
        }
        void Unbound(LaneData lane, string handle, long seq, string? source)
        {
            if (!lane.Open.Remove(handle, out var b)) return;
            if (seq < from) { RemoveDetail(lane, handle); return; } // ended before the window
            if (detail)
            {
                var i = lane.Intervals.FindLastIndex(x => (string?)x["handle"] == handle && x["to"] is null);
                if (i >= 0) { lane.Intervals[i]["to"] = seq; lane.Intervals[i]["to_source"] = source; }
            }
            else Span(lane, b.From, seq);
        }
        void RemoveDetail(LaneData lane, string handle)
        {
            if (!detail) return;
            var i = lane.Intervals.FindLastIndex(x => (string?)x["handle"] == handle && x["to"] is null);
            if (i >= 0) lane.Intervals.RemoveAt(i);
        }
        void Span(LaneData lane, long bFrom, long? bTo)
        {
            var f = Math.Max(bFrom, from - 1);
            if (lane.Spans.Count > 0)
            {
                var (pf, pt, n) = lane.Spans[^1];
                // merge into the previous span when it is still open, overlaps, or ends less than a bucket before
                if (pt is null || f <= pt.Value + bucketWidth)
                {
                    lane.Spans[^1] = (Math.Min(pf, f), pt is null || bTo is null ? null : Math.Max(pt.Value, bTo.Value), n + 1);
                    return;
                }
            }
            lane.Spans.Add((f, bTo, 1));
        }

        if (points.Contains(0)) TakeState(0);
        // A window that starts later begins at the nearest snapshot before from - 1 (not at event 1): the state is the
        // snapshot's; the bindings open there and the lanes each mm was ever bound on (where its exit and drop are marked)
        // come from the handle_issued events before it alone, read with a filter in the database. What the page shows
        // is the same as from event 1: a binding issued before from - 1 is clipped there either way.
        long start = 0;
        if (useSnapshots && from > 2 && await TimeTravel.NearestSnapshotAsync(store, info.Id, from - 2, ct) is { } snap)
        {
            state = snap;
            start = snap.Seq;
            await foreach (var stored in store.ReadSessionOfTypesAsync(info.Id, [EventTypes.NameOf(typeof(HandleIssued))], 1, start, ct))
            {
                // The snapshot's state is after these events: a handle it still holds is a binding open at the snapshot.
                foreach (var effect in SessionTimeline.EffectsOf(EventCodec.Decode(stored), state))
                {
                    if (effect is not LaneBound h) continue;
                    var lane = LaneOf(h.Device, h.Pasid);
                    if (state.HandleById(h.Handle) is not null) Bound(lane, h.Handle, h.Mm, h.Domain, stored.Seq, null);
                    if (!lanesOfMm.TryGetValue(h.Mm, out var set)) lanesOfMm[h.Mm] = set = [];
                    set.Add(lane);
                }
            }
        }
        started?.Invoke(start);
        await foreach (var stored in store.ReadSessionAsync(info.Id, start + 1, to, ct))
        {
            var e = EventCodec.Decode(stored);
            var seq = stored.Seq;
            var inWindow = seq >= from;
            string? source = null;
            if (inWindow && (detail || e is HandleIssued or HandleFreed))
                source = Sva.Projections.EventCodec.Metadata(stored).Source;
            if (inWindow && detail)
                events.Add(new JsonObject { ["seq"] = seq, ["type"] = stored.Type, ["data"] = JsonNode.Parse(stored.DataJson), ["source"] = source, ["at"] = stored.RecordedAt.ToString("O") });
            foreach (var effect in SessionTimeline.EffectsOf(e, state))
                switch (effect)
                {
                    case LaneBound bound:
                    {
                        var lane = LaneOf(bound.Device, bound.Pasid);
                        Bound(lane, bound.Handle, bound.Mm, bound.Domain, seq, source);
                        if (!lanesOfMm.TryGetValue(bound.Mm, out var set)) lanesOfMm[bound.Mm] = set = [];
                        set.Add(lane);
                        break;
                    }
                    case LaneUnbound unbound:
                        Unbound(LaneOf(unbound.Device, unbound.Pasid), unbound.Handle, seq, source);
                        break;
                    case LaneMarked m when inWindow:
                        Mark(LaneOf(m.Device, m.Pasid), seq, m.Kind, m.Label, m.Detail);
                        break;
                    case MmLanesMarked m when inWindow && lanesOfMm.TryGetValue(m.Mm, out var mmLanes):
                        foreach (var lane in mmLanes) Mark(lane, seq, m.Kind, m.Label, m.Detail);
                        break;
                }
            Evolve.Apply(state, e);
            if (points.Contains(seq)) TakeState(seq);
        }

        // Coarse: fewer, wider columns until the counts fit the budget (many lanes × many kinds).
        var factor = 1;
        if (!detail)
        {
            while (lanes.Values.Sum(l => l.Counts.Count) > MaxCountEntries && factor < Buckets)
            {
                factor *= 2;
                foreach (var lane in lanes.Values)
                {
                    var merged = new SortedDictionary<(int Bucket, string Kind, string Label), int>();
                    foreach (var (k, n) in lane.Counts)
                    {
                        var key = (k.Bucket / 2, k.Kind, k.Label);
                        merged[key] = merged.GetValueOrDefault(key) + n;
                    }
                    lane.Counts.Clear();
                    foreach (var (k, n) in merged) lane.Counts[k] = n;
                }
            }
            bucketWidth *= factor;
        }

        // Bindings still open at the window's end; lanes with nothing in the window are left out.
        var laneArray = new JsonArray();
        foreach (var lane in lanes.Values)
        {
            if (!detail)
                foreach (var (_, b) in lane.Open.OrderBy(kv => kv.Value.From)) Span(lane, b.From, null);
            var o = new JsonObject { ["device"] = lane.Device, ["pasid"] = lane.Pasid };
            if (detail)
            {
                if (lane.Intervals.Count == 0 && lane.Marks.Count == 0) continue;
                o["intervals"] = new JsonArray(lane.Intervals.ToArray());
                o["marks"] = new JsonArray(lane.Marks.ToArray());
            }
            else
            {
                if (lane.Spans.Count == 0 && lane.Counts.Count == 0) continue;
                o["spans"] = new JsonArray(lane.Spans.Select(s => (JsonNode)new JsonArray(s.From, s.To, s.Handles)).ToArray());
                o["counts"] = new JsonArray(lane.Counts.Select(kv => (JsonNode)new JsonArray(kv.Key.Bucket, kv.Key.Kind, kv.Key.Label, kv.Value)).ToArray());
            }
            laneArray.Add(o);
        }
        var stateObject = new JsonObject();
        foreach (var (seq, json) in states) stateObject[seq.ToString(CultureInfo.InvariantCulture)] = JsonNode.Parse(json);
        return new JsonObject
        {
            ["session"] = info.Id,
            ["kernel"] = info.Kernel,
            ["last_seq"] = last,
            ["from"] = from,
            ["to"] = to,
            ["mode"] = detail ? "detail" : "coarse",
            ["detail_limit"] = detailLimit,
            ["bucket_width"] = bucketWidth,
            ["lanes"] = laneArray,
            ["events"] = detail ? events : new JsonArray(),
            ["states"] = stateObject,
        };
    }
}
