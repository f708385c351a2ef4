using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

public static class BisectVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var until = new Option<string?>("--until") { Description = "A predicate over the state (grammar below); the answer is the first seq at which it holds" };
        var finding = new Option<string?>("--finding") { Description = $"An invariant of 'sva check' instead: the first seq at which a finding of this kind appears. Kinds: {string.Join(", ", FindingKinds.All)}" };
        var linear = new Option<bool>("--linear") { Description = "Evaluate the predicate after every event from seq 0 (exact for predicates that become false again; slower)" };
        var cmd = new Command("bisect", """
            The first seq at which a predicate over the state holds (--until), or at which an invariant check reports a
            finding (--finding). --until: binary search over the session's snapshots (one snapshot load per probe),
            then a linear fold between the last two probes. Like git bisect it assumes that once the predicate holds it
            keeps holding; use --linear otherwise. Exit 0: found; 1: the predicate does not hold at the end (or never,
            with --linear) / no such finding.

            """ + StatePredicate.Help)
        {
            session, until, finding, linear, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var pred = pr.GetValue(until);
            var kind = pr.GetValue(finding);
            if ((pred is null) == (kind is null)) throw new UserInputException("give one of --until \"PREDICATE\" or --finding KIND");
            if (kind is not null && !FindingKinds.All.Contains(kind))
                throw new UserInputException($"--finding '{kind}': unknown kind; kinds: {string.Join(", ", FindingKinds.All)}");
            StatePredicate? predicate = null;
            if (pred is not null)
            {
                try { predicate = StatePredicate.Parse(pred); }
                catch (PredicateException ex) { throw new UserInputException(ex.Message); }
            }
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var json = pr.GetValue(common.Json);
            var sw = Stopwatch.StartNew();

            if (kind is not null)
            {
                var (first, checkedEvents) = await Bisect.FirstFindingAsync(host.Store, name, kind, ct);
                var o = new JsonObject { ["session"] = name, ["finding"] = kind, ["seq"] = first?.Seq, ["events_checked"] = checkedEvents,
                    ["milliseconds"] = Math.Round(sw.Elapsed.TotalMilliseconds, 1) };
                if (first is not null)
                {
                    o["message"] = first.Message;
                    o["involved"] = new JsonArray(first.Involved.Select(x => (JsonNode)JsonValue.Create(x)).ToArray());
                    o["event"] = await EventJson(host, name, first.Seq, ct);
                }
                if (json) Output.JsonLine(o);
                else if (first is null) Output.Info($"{name}: no '{kind}' finding in {checkedEvents} events");
                else
                {
                    Output.Console.WriteLine($"first '{kind}' finding at seq {first.Seq}: {first.Message}");
                    if (first.Involved.Count > 0) Output.Console.WriteLine($"  involved seqs: {string.Join(" ", first.Involved)}");
                    PrintEvent(o["event"]);
                }
                return first is null ? 1 : 0;
            }

            BisectResult r;
            try { r = await Bisect.UntilAsync(host.Store, name, info.Version, predicate!.Holds, pr.GetValue(linear), ct); }
            catch (PredicateException ex) { throw new UserInputException(ex.Message); }
            var doc = new JsonObject
            {
                ["session"] = name, ["predicate"] = predicate!.Text, ["seq"] = r.Seq, ["linear"] = r.Linear,
                ["probes"] = new JsonArray(r.Probes.Select(p => (JsonNode)new JsonObject { ["seq"] = p.Seq, ["holds"] = p.Holds, ["via"] = p.Via }).ToArray()),
                ["events_folded"] = r.EventsFolded, ["milliseconds"] = Math.Round(sw.Elapsed.TotalMilliseconds, 1),
            };
            if (r.Seq is long s && s > 0) doc["event"] = await EventJson(host, name, s, ct);
            if (json) Output.JsonLine(doc);
            else
            {
                if (r.Seq is null)
                    Output.Info(r.Linear ? $"'{predicate.Text}' holds at no seq of {name} (0..{info.Version})"
                        : $"'{predicate.Text}' does not hold at the end of {name} (seq {info.Version}); bisect needs a point where it holds (try --linear)");
                else
                {
                    Output.Console.WriteLine($"'{predicate.Text}' first holds at seq {r.Seq} ({r.Probes.Count} probes, {r.EventsFolded} events folded, {sw.Elapsed.TotalMilliseconds:F0} ms)");
                    PrintEvent(doc["event"]);
                }
                var t = Output.Table("probe seq", "holds", "via");
                foreach (var p in r.Probes) t.Row(p.Seq, p.Holds ? "yes" : "no", p.Via);
                Output.Console.Write(t);
            }
            return r.Seq is null ? 1 : 0;
        }));
        return cmd;
    }

    private static void PrintEvent(JsonNode? e)
    {
        if (e is null) return;
        Output.Console.WriteLine($"  seq {e["seq"]}: {e["type"]} {e["data"]?.ToJsonString()}");
        if (e["source"] is { } src) Output.Console.WriteLine($"  source {src}{(e["call"] is { } call ? $"  call {call}" : "")}");
    }

    private static async Task<JsonObject?> EventJson(SvaHost host, string session, long seq, CancellationToken ct)
    {
        if (await TimeTravel.EventWithCallAsync(host.Store, session, seq, ct) is not { } found) return null;
        var (e, call, callSeq) = found;
        return new JsonObject
        {
            ["seq"] = e.Seq, ["type"] = EventTypes.NameOf(e.Event), ["data"] = JsonNode.Parse(Sva.Domain.Json.SvaJson.Serialize(e.Event)),
            ["recorded_at"] = e.RecordedAt.ToString("O"), ["source"] = e.Source, ["call"] = call is null ? null : CallText.Describe(call),
            ["call_seq"] = callSeq,
        };
    }
}
