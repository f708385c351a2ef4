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

/// <summary>
/// The session as lanes, built from its events (pure): what both the HTML timeline and the Perfetto export draw.
/// </summary>
public sealed class SessionTimeline
{
    public required string Session { get; init; }
    public required string Kernel { get; init; }
    public required long LastSeq { get; init; }
    public required IReadOnlyList<Lane> Lanes { get; init; }
    public required IReadOnlyList<(long Seq, DateTimeOffset Time, string Type, string Data, string? Source)> Events { get; init; }

    public static async Task<SessionTimeline> BuildAsync(IEventStore store, SessionInfo info, CancellationToken ct)
    {
        var lanes = new SortedDictionary<string, Lane>(StringComparer.Ordinal);
        var events = new List<(long, DateTimeOffset, string, string, string?)>();
        var state = new SvaState();
        Lane LaneOf(string device, int? pasid)
        {
            var p = pasid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";
            var key = $"{device}\u0000{p.PadLeft(8, '0')}";
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
            switch (e)
            {
                case HandleIssued h:
                    LaneOf(h.Device, h.Pasid).Intervals.Add(new LaneInterval(h.Handle, h.Mm, h.Domain, seq, null, t, null, source, null));
                    break;
                case HandleFreed f when state.HandleById(f.Handle) is { } freed:
                {
                    var lane = LaneOf(freed.Device, freed.Pasid);
                    var i = lane.Intervals.FindLastIndex(x => x.Handle == f.Handle && x.ToSeq is null);
                    if (i >= 0) lane.Intervals[i] = lane.Intervals[i] with { ToSeq = seq, ToTime = t, ToSource = source };
                    break;
                }
                case PageResponseSent r:
                    LaneOf(r.Device, r.Pasid).Marks.Add(new(seq, t, "response", r.Code.ToString(), $"group {r.Group?.ToString() ?? "-"}: {r.Reason}"));
                    break;
                case PageResponseWithheld w:
                    LaneOf(w.Device, w.Pasid).Marks.Add(new(seq, t, "withheld", "NO RESPONSE", w.Reason));
                    break;
                case PageRequestHandled h: // VT-d 5.11–5.13: handled in the driver, no response (not last in its group)
                    LaneOf(h.Device, h.Pasid).Marks.Add(new(seq, t, "handled", h.Result.ToString(), $"{SvaJson.Hex(h.Address)} {h.Access} group {h.Group?.ToString() ?? "-"}: {h.Reason}"));
                    break;
                case PageRequestQueued q:
                    LaneOf(q.Device, q.Pasid).Marks.Add(new(seq, t, "queued", "queued", $"{SvaJson.Hex(q.Address)} {q.Access} group {q.Group?.ToString() ?? "-"}"));
                    break;
                case DmaFaultReported d:
                    LaneOf(d.Device, d.Pasid).Marks.Add(new(seq, t, "dma-fault", "DMA fault", $"{SvaJson.Hex(d.Address)}: {d.Reason}"));
                    break;
                case SecondaryTlbInvalidated inv:
                    foreach (var dev in inv.Atc)
                        LaneOf(dev, inv.Pasid).Marks.Add(new(seq, t, "invalidate", "inv", $"{(inv.End == ulong.MaxValue ? "all" : $"{SvaJson.Hex(inv.Start)}-{SvaJson.Hex(inv.End)}")} via {inv.Via} {inv.Tlbi ?? "no TLBI"}"));
                    break;
                case MmReleased or MmDropped:
                {
                    var mm = e is MmReleased rel ? rel.Mm : ((MmDropped)e).Mm;
                    foreach (var lane in lanes.Values.Where(l => l.Intervals.Any(x => x.Mm == mm)))
                        lane.Marks.Add(new(seq, t, e is MmReleased ? "exit" : "drop", e is MmReleased ? "exit" : "drop", $"mm {mm}"));
                    break;
                }
                case CaptureObserved o when o.Device is not null:
                    LaneOf(o.Device, o.Pasid).Marks.Add(new(seq, t, "observed", o.Kind, o.Text));
                    break;
            }
            Evolve.Apply(state, e);
        }
        return new SessionTimeline { Session = info.Id, Kernel = info.Kernel, LastSeq = state.Seq, Lanes = lanes.Values.ToList(), Events = events };
    }
}
