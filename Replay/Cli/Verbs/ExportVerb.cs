using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Projections;
using Sva.Projections.Views;

namespace Sva.Replay.Verbs;

/// <summary>
/// Chrome/Perfetto trace-event JSON: a process per device, a thread per PASID, a complete event per
/// binding, instant events for page responses, invalidations, exits and drops.
/// </summary>
public static class ExportVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name" };
        var perfetto = new Option<FileInfo>("--perfetto") { Description = "Write Chrome/Perfetto trace-event JSON to this file (open in ui.perfetto.dev or chrome://tracing)", Required = true };
        var clock = new Option<string>("--clock") { Description = "Time axis: 'seq' (1 µs per event, default: every event visible) or 'recorded' (wall time of recording)", DefaultValueFactory = _ => "seq" };
        var cmd = new Command("export", "Export a session for the trace viewers kernel developers already use") { session, perfetto, clock };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var clk = pr.GetValue(clock);
            if (clk is not ("seq" or "recorded")) throw new UserInputException($"--clock '{clk}': expected seq or recorded");
            var file = pr.GetValue(perfetto)!;
            InputFiles.CheckWritable(file, "--perfetto");
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var info = await host.SessionAsync(pr.GetValue(session)!, ct);
            var tl = await SessionTimeline.BuildAsync(host.Store, info, ct);
            var json = Perfetto(tl, clk == "recorded");
            await InputFiles.WriteAllTextAsync(file, "--perfetto", json.ToJsonString(), ct);
            Output.Info($"{file.FullName}: {json["traceEvents"]!.AsArray().Count} trace events, {tl.Lanes.Count} lanes");
            return 0;
        }));
        return cmd;
    }

    public static JsonObject Perfetto(SessionTimeline tl, bool wallClock)
    {
        var t0 = tl.Events.Count > 0 ? tl.Events[0].Time : DateTimeOffset.UnixEpoch;
        double Ts(long seq, DateTimeOffset at) => wallClock ? (at - t0).TotalMicroseconds : seq;
        var devices = tl.Lanes.Select(l => l.Device).Distinct().ToList();
        var events = new JsonArray();
        foreach (var (dev, pid) in devices.Select((d, i) => (d, i + 1)))
            events.Add(new JsonObject { ["ph"] = "M", ["name"] = "process_name", ["pid"] = pid, ["args"] = new JsonObject { ["name"] = $"device {dev}" } });
        var tid = 0;
        foreach (var lane in tl.Lanes)
        {
            tid++;
            var pid = devices.IndexOf(lane.Device) + 1;
            events.Add(new JsonObject { ["ph"] = "M", ["name"] = "thread_name", ["pid"] = pid, ["tid"] = tid, ["args"] = new JsonObject { ["name"] = $"PASID {lane.Pasid}" } });
            foreach (var b in lane.Intervals)
            {
                var end = b.ToSeq ?? tl.LastSeq;
                var endTime = b.ToTime ?? tl.Events[^1].Time;
                events.Add(new JsonObject
                {
                    ["ph"] = "X", ["name"] = $"{b.Handle} mm {b.Mm}", ["cat"] = "binding", ["pid"] = pid, ["tid"] = tid,
                    ["ts"] = Ts(b.FromSeq, b.FromTime), ["dur"] = Math.Max(Ts(end, endTime) - Ts(b.FromSeq, b.FromTime), 1),
                    ["args"] = new JsonObject { ["handle"] = b.Handle, ["mm"] = b.Mm, ["domain"] = b.Domain, ["bound_seq"] = b.FromSeq, ["unbound_seq"] = b.ToSeq, ["bound_by"] = b.FromSource, ["unbound_by"] = b.ToSource },
                });
            }
            foreach (var m in lane.Marks)
                events.Add(new JsonObject
                {
                    ["ph"] = "i", ["s"] = "t", ["name"] = m.Label, ["cat"] = m.Kind, ["pid"] = pid, ["tid"] = tid, ["ts"] = Ts(m.Seq, m.Time),
                    ["args"] = new JsonObject { ["seq"] = m.Seq, ["detail"] = m.Detail },
                });
        }
        return new JsonObject
        {
            ["traceEvents"] = events,
            ["displayTimeUnit"] = "ns",
            ["otherData"] = new JsonObject { ["session"] = tl.Session, ["kernel"] = tl.Kernel, ["clock"] = wallClock ? "recorded_at" : "1 us per seq" },
        };
    }
}
