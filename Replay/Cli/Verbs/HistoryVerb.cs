using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Formats.Script;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

public static class HistoryVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var device = new Option<string?>("--device") { Description = "Only bindings that programmed this device (PCI BDF)" };
        var pasid = new Option<int?>("--pasid") { Description = "Only bindings of this PASID" };
        var mm = new Option<string?>("--mm") { Description = "Only bindings of this mm" };
        var from = new Option<string?>("--from") { Description = "Only bindings alive at or after this seq, or time (ISO 8601, against recorded_at)" };
        var to = new Option<string?>("--to") { Description = "Only bindings alive at or before this seq, or time (ISO 8601, against recorded_at)" };
        var csv = new Option<bool>("--csv") { Description = "One CSV row per binding interval" };
        var fromLog = new Option<bool>("--log")
        {
            Description = "Read the log from seq 1 instead of starting from the audit_bindings projection (the answer is the same; stderr says which was read)",
        };
        var cmd = new Command("history", """
            Binding intervals: which handle held which PASID on which device(s) for which mm, bound at seq/time by which
            call (file:line), unbound at seq/time by which call or still bound, with the page faults (requests queued,
            responses, DMA faults) and the secondary TLB/ATC invalidations inside each interval, the mm's exit and drop,
            and every event that touched the (device, PASID) after the unbind and before it was bound again (a device
            still using a PASID it was told to drop). Exit 1 when any reported binding was touched after its unbind.
            """)
        {
            session, device, pasid, mm, from, to, csv, fromLog, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            if (pr.GetValue(csv) && pr.GetValue(common.Json)) throw new UserInputException("give either --json or --csv, not both");
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var dev = pr.GetValue(device) is { } d ? ScriptParser.NormalizeBdf(d) ?? throw new UserInputException($"--device '{d}': not a PCI BDF such as 0000:6a:01.0") : null;
            var a = await Position(host, name, pr.GetValue(from), "--from", 1, ct);
            var b = await Position(host, name, pr.GetValue(to), "--to", long.MaxValue, ct);
            if (a > b) throw new UserInputException($"--from {pr.GetValue(from)} (seq {a}) is after --to {pr.GetValue(to)} (seq {b}): give a range with --from <= --to");
            var filter = new HistoryFilter(dev, pr.GetValue(pasid), pr.GetValue(mm), a, b);
            // Intervals that overlap [a, b] may have begun before a: the audit_bindings projection says where the earliest one
            // begins and the log is read from there up to b (or from seq 1 when the projection cannot say).
            var (result, how) = await BindingHistory.LoadAsync(host.Store, name, filter, useAudit: !pr.GetValue(fromLog), ct);
            Output.Info(how.Note);
            if (pr.GetValue(common.Json)) foreach (var o in Json(result)) Output.JsonLine(o);
            else if (pr.GetValue(csv)) Console.Out.Write(Csv(result));
            else Render(name, info.Version, filter, result);
            return result.Intervals.Any(i => i.AfterUnbind.Count > 0) ? 1 : 0;
        }));
        return cmd;
    }

    private static async Task<long> Position(SvaHost host, string session, string? text, string option, long dflt, CancellationToken ct)
    {
        if (text is null) return dflt;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seq)) return seq;
        if (text.Length > 0 && text.TrimStart('-').All(char.IsAsciiDigit))
            throw new UserInputException($"{option}: '{Sva.Formats.InputLimits.Quote(text)}' is not a seq ({CliParsing.SeqRange}) or a time (ISO 8601)");
        var t = StateVerb.ParseTime(text, option);
        var at = await host.Store.SeqAtTimeAsync(session, t, ct);
        return option == "--from" ? Math.Max(1, at) : at;
    }

    private static JsonArray Touches(IEnumerable<Touch> l) => new(l.Select(t => (JsonNode)new JsonObject
    {
        ["seq"] = t.Seq, ["at"] = t.At.ToString("O"), ["type"] = t.Type, ["detail"] = t.Detail, ["source"] = t.Source,
    }).ToArray());

    public static IEnumerable<JsonObject> Json(HistoryResult r)
    {
        foreach (var i in r.Intervals)
            yield return new JsonObject
            {
                ["record"] = "binding",
                ["device"] = i.Device,
                ["devices"] = new JsonArray(i.Devices.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
                ["pasid"] = i.Pasid, ["mm"] = i.Mm, ["handle"] = i.Handle, ["domain"] = i.Domain,
                ["labels"] = new JsonArray(i.Labels.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
                ["bound_seq"] = i.BoundSeq, ["bound_at"] = i.BoundAt.ToString("O"), ["bound_by"] = i.BoundBy, ["bound_call"] = i.BoundCall,
                ["unbound_seq"] = i.UnboundSeq, ["unbound_at"] = i.UnboundAt?.ToString("O"), ["unbound_by"] = i.UnboundBy, ["unbound_call"] = i.UnboundCall,
                ["still_bound"] = i.StillBound,
                ["rebinds"] = Touches(i.Rebinds), ["releases"] = Touches(i.Releases),
                ["faults"] = Touches(i.Faults), ["invalidations"] = Touches(i.Invalidations), ["lifecycle"] = Touches(i.Lifecycle),
                ["after_unbind"] = Touches(i.AfterUnbind),
            };
        foreach (var (dev, pasid, t) in r.Unbound)
            yield return new JsonObject
            {
                ["record"] = "touch_without_binding", ["device"] = dev, ["pasid"] = pasid,
                ["seq"] = t.Seq, ["at"] = t.At.ToString("O"), ["type"] = t.Type, ["detail"] = t.Detail, ["source"] = t.Source,
            };
    }

    public static string Csv(HistoryResult r)
    {
        var sb = new StringBuilder();
        sb.Append("device,devices,pasid,mm,handle,labels,domain,bound_seq,bound_at,bound_by,bound_call,unbound_seq,unbound_at,unbound_by,unbound_call,rebinds,faults,invalidations,after_unbind_seqs\n");
        foreach (var i in r.Intervals)
        {
            string?[] cells =
            [
                i.Device, string.Join(" ", i.Devices), I(i.Pasid), i.Mm, i.Handle, string.Join(" ", i.Labels), i.Domain,
                I(i.BoundSeq), i.BoundAt.ToString("O"), i.BoundBy, i.BoundCall,
                i.UnboundSeq is long u ? I(u) : null, i.UnboundAt?.ToString("O"), i.UnboundBy, i.UnboundCall,
                I(i.Rebinds.Count), I(i.Faults.Count), I(i.Invalidations.Count), string.Join(" ", i.AfterUnbind.Select(t => I(t.Seq))),
            ];
            sb.Append(string.Join(",", cells.Select(Cell))).Append('\n');
        }
        return sb.ToString();

        static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
        static string Cell(string? v) => v is null ? "" : v.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + v.Replace("\"", "\"\"") + "\"" : v;
    }

    private static void Render(string session, long version, HistoryFilter f, HistoryResult r)
    {
        var c = Output.Console;
        var what = string.Join(" ", new[] { f.Device, f.Pasid is int p ? $"PASID {p}" : null, f.Mm is { } m ? $"mm {m}" : null }.Where(x => x is not null));
        c.WriteLine($"session {session} ({version} events): {r.Intervals.Count} binding interval(s){(what.Length > 0 ? $" of {what}" : "")}");
        var t = Output.Table("device", "pasid", "mm", "handle", "bound", "by", "unbound", "by", "faults", "invalidations", "after unbind");
        foreach (var i in r.Intervals)
        {
            var bad = i.Faults.Count(x => x.Type != "page_request_queued" && !(x.Type == "page_response_sent" && x.Detail.StartsWith("SUCCESS", StringComparison.Ordinal)));
            t.Row(string.Join(" ", i.Devices), i.Pasid, i.Mm, i.Handle + (i.Labels.Count > 0 ? $" ({string.Join(",", i.Labels)})" : ""),
                $"{i.BoundSeq} @ {i.BoundAt:u}", i.BoundBy,
                i.UnboundSeq is long u ? $"{u} @ {i.UnboundAt:u}" : "still bound", i.UnboundBy,
                i.Faults.Count + (bad > 0 ? $" ({bad} not SUCCESS)" : ""), i.Invalidations.Count,
                i.AfterUnbind.Count == 0 ? "" : $"{i.AfterUnbind.Count}: seq {string.Join(" ", i.AfterUnbind.Take(5).Select(x => x.Seq))}{(i.AfterUnbind.Count > 5 ? " …" : "")}");
        }
        c.Write(t);
        var touched = r.Intervals.Where(i => i.AfterUnbind.Count > 0).ToList();
        if (touched.Count > 0)
        {
            c.Write(new Rule("touched after unbind").LeftJustified());
            var a = Output.Table("device/pasid", "held by", "unbound", "seq", "event", "what", "source");
            foreach (var i in touched)
                foreach (var x in i.AfterUnbind)
                    a.Row($"{i.Device}/{i.Pasid}", $"{i.Handle} mm {i.Mm}", i.UnboundSeq, x.Seq, x.Type, x.Detail, x.Source);
            c.Write(a);
        }
        if (r.Unbound.Count > 0)
        {
            c.Write(new Rule("touches of a (device, PASID) that was never bound").LeftJustified());
            var a = Output.Table("device", "pasid", "seq", "event", "what", "source");
            foreach (var (dev, pasid, x) in r.Unbound.Take(50)) a.Row(dev, pasid, x.Seq, x.Type, x.Detail, x.Source);
            c.Write(a);
            if (r.Unbound.Count > 50) Output.Info($"… and {r.Unbound.Count - 50} more (--json lists them all)");
        }
    }
}
