using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;

namespace Sva.Projections.Views;

/// <summary>A binding of (device, PASID): from the event that issued the handle to the one that freed it (null: still bound).</summary>
public sealed record LaneInterval(string Handle, string Mm, string? Domain, long FromSeq, long? ToSeq, DateTimeOffset FromTime, DateTimeOffset? ToTime, string? FromSource, string? ToSource);

/// <summary>Something that happened on a lane at one seq: a page response, a queued request, an invalidation, an mm exit or drop.</summary>
public sealed record LaneMark(long Seq, DateTimeOffset Time, string Kind, string Label, string Detail);

/// <summary>One lane per (device, PASID) ("-" for RID traffic).</summary>
public sealed record Lane(string Device, string Pasid, List<LaneInterval> Intervals, List<LaneMark> Marks)
{
    public string Key => $"{Device} pasid {Pasid}";
}

/// <summary>What one event draws on the lanes. <see cref="SessionTimeline.EffectsOf"/> is the one place that says which
/// events draw what: the Perfetto export (<see cref="SessionTimeline"/>) and the HTML page (Replay's TimelineModel) both use it.</summary>
public abstract record LaneEffect;

/// <summary>A binding opens on (device, PASID): the handle was issued.</summary>
public sealed record LaneBound(string Device, int? Pasid, string Handle, string Mm, string? Domain) : LaneEffect;

/// <summary>The binding of <paramref name="Handle"/> on (device, PASID) closes: the handle was freed.</summary>
public sealed record LaneUnbound(string Device, int? Pasid, string Handle) : LaneEffect;

/// <summary>A mark on (device, PASID): a page response (or a withheld one), a queued request, a DMA fault, an ATC
/// invalidation, a capture observation.</summary>
public sealed record LaneMarked(string Device, int? Pasid, string Kind, string Label, string Detail) : LaneEffect;

/// <summary>A mark on every lane <paramref name="Mm"/> was ever bound on: its exit or drop.</summary>
public sealed record MmLanesMarked(string Mm, string Kind, string Label, string Detail) : LaneEffect;

/// <summary>
/// The session as lanes, built from its events (pure): what the Perfetto export draws. The lane rules are
/// <see cref="EffectsOf"/>, shared with the HTML timeline.
/// </summary>
public sealed class SessionTimeline
{
    public required string Session { get; init; }
    public required string Kernel { get; init; }
    public required long LastSeq { get; init; }
    public required IReadOnlyList<Lane> Lanes { get; init; }
    public required IReadOnlyList<(long Seq, DateTimeOffset Time, string Type, string Data, string? Source)> Events { get; init; }

    /// <summary>The lane's PASID as shown ("-" for RID traffic).</summary>
    public static string PasidText(int? pasid) => pasid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";

    /// <summary>The order of lanes: by device, then by PASID numerically ("-" first).</summary>
    public static string LaneKey(string device, string pasidText) => $"{device}\u0000{pasidText.PadLeft(8, '0')}";

    /// <summary>What <paramref name="e"/> draws on the lanes, given the state <paramref name="before"/> it (the state is not changed).</summary>
    public static IEnumerable<LaneEffect> EffectsOf(SvaEvent e, SvaState before)
    {
        switch (e)
        {
            case HandleIssued h:
                yield return new LaneBound(h.Device, h.Pasid, h.Handle, h.Mm, h.Domain);
                break;
            case HandleFreed f when before.HandleById(f.Handle) is { } freed:
                yield return new LaneUnbound(freed.Device, freed.Pasid, f.Handle);
                break;
            case PageResponseSent r:
                yield return new LaneMarked(r.Device, r.Pasid, "response", r.Code.ToString(), $"group {r.Group?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}: {r.Reason}");
                break;
            case PageResponseWithheld w:
                yield return new LaneMarked(w.Device, w.Pasid, "withheld", "NO RESPONSE", w.Reason);
                break;
            case PageRequestQueued q:
                yield return new LaneMarked(q.Device, q.Pasid, "queued", "queued", $"{SvaJson.Hex(q.Address)} {q.Access} group {q.Group?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}");
                break;
            case DmaFaultReported d:
                yield return new LaneMarked(d.Device, d.Pasid, "dma-fault", "DMA fault", $"{SvaJson.Hex(d.Address)}: {d.Reason}");
                break;
            case SecondaryTlbInvalidated inv:
                foreach (var dev in inv.Atc)
                    yield return new LaneMarked(dev, inv.Pasid, "invalidate", "inv", $"{(inv.End == ulong.MaxValue ? "all" : $"{SvaJson.Hex(inv.Start)}-{SvaJson.Hex(inv.End)}")} via {inv.Via} {inv.Tlbi ?? "no TLBI"}");
                break;
            case MmReleased rel:
                yield return new MmLanesMarked(rel.Mm, "exit", "exit", $"mm {rel.Mm}");
                break;
            case MmDropped drop:
                yield return new MmLanesMarked(drop.Mm, "drop", "drop", $"mm {drop.Mm}");
                break;
            case CaptureObserved o when o.Device is not null:
                yield return new LaneMarked(o.Device, o.Pasid, "observed", o.Kind, o.Text);
                break;
        }
    }

    public static async Task<SessionTimeline> BuildAsync(IEventStore store, SessionInfo info, CancellationToken ct)
    {
        var lanes = new SortedDictionary<string, Lane>(StringComparer.Ordinal);
        var lanesOfMm = new Dictionary<string, HashSet<Lane>>(StringComparer.Ordinal);
        var events = new List<(long, DateTimeOffset, string, string, string?)>();
        var state = new SvaState();
        Lane LaneOf(string device, int? pasid)
        {
            var p = PasidText(pasid);
            var key = LaneKey(device, p);
            if (!lanes.TryGetValue(key, out var lane)) lanes[key] = lane = new Lane(device, p, new(), new());
            return lane;
        }
        await foreach (var stored in store.ReadSessionAsync(info.Id, ct: ct))
        {
            var e = EventCodec.Decode(stored);
            var source = EventCodec.Metadata(stored).Source;
            var t = stored.RecordedAt;
            var seq = stored.Seq;
            events.Add((seq, t, stored.Type, stored.DataJson, source));
            foreach (var effect in EffectsOf(e, state))
                switch (effect)
                {
                    case LaneBound b:
                    {
                        var lane = LaneOf(b.Device, b.Pasid);
                        lane.Intervals.Add(new LaneInterval(b.Handle, b.Mm, b.Domain, seq, null, t, null, source, null));
                        if (!lanesOfMm.TryGetValue(b.Mm, out var set)) lanesOfMm[b.Mm] = set = [];
                        set.Add(lane);
                        break;
                    }
                    case LaneUnbound u:
                    {
                        var lane = LaneOf(u.Device, u.Pasid);
                        var i = lane.Intervals.FindLastIndex(x => x.Handle == u.Handle && x.ToSeq is null);
                        if (i >= 0) lane.Intervals[i] = lane.Intervals[i] with { ToSeq = seq, ToTime = t, ToSource = source };
                        break;
                    }
                    case LaneMarked m:
                        LaneOf(m.Device, m.Pasid).Marks.Add(new(seq, t, m.Kind, m.Label, m.Detail));
                        break;
                    case MmLanesMarked m when lanesOfMm.TryGetValue(m.Mm, out var mmLanes):
                        foreach (var lane in lanes.Values.Where(mmLanes.Contains))
                            lane.Marks.Add(new(seq, t, m.Kind, m.Label, m.Detail));
                        break;
                }
            Evolve.Apply(state, e);
        }
        return new SessionTimeline { Session = info.Id, Kernel = info.Kernel, LastSeq = state.Seq, Lanes = lanes.Values.ToList(), Events = events };
    }
}
