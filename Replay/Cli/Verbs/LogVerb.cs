using Sva.Projections;
using System.CommandLine;
using System.Text.Json.Nodes;

namespace Sva.Replay.Verbs;

public static class LogVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var from = new Option<long>("--from") { Description = "First seq to show", DefaultValueFactory = _ => 1 };
        var to = new Option<long?>("--to") { Description = "Last seq to show (default: the end)" };
        var cmd = new Command("log", "The events of a session in seq order, with the call and source line that produced them") { session, from, to, common.Json };
        CliParsing.FromNotAfterTo(cmd, from, to);
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            Sva.EventStore.StartTrace.Mark("session read");
            var json = pr.GetValue(common.Json);
            var t = json ? null : Output.Table("seq", "type", "data", "source");
            await foreach (var e in host.Store.ReadSessionAsync(name, pr.GetValue(from), pr.GetValue(to) ?? long.MaxValue, ct))
            {
                var meta = EventCodec.Metadata(e);
                if (json)
                {
                    Output.JsonLine(new JsonObject
                    {
                        ["seq"] = e.Seq,
                        ["type"] = e.Type,
                        ["data"] = JsonNode.Parse(e.DataJson),
                        ["source"] = meta.Source,
                        ["call"] = meta.Call is { } call ? JsonNode.Parse(Sva.Domain.Json.SvaJson.SerializeCall(call)) : null,
                        ["recorded_at"] = e.RecordedAt.ToString("O"),
                    });
                }
                else t!.Row(e.Seq, e.Type, e.DataJson, meta.Source);
            }
            Sva.EventStore.StartTrace.Mark("events read");
            if (t is not null)
            {
                Output.Info($"session {name} (kernel {info.Kernel}), {info.Version} events");
                Output.Console.Write(t);
                Sva.EventStore.StartTrace.Mark("table written");
            }
            return 0;
        }));
        return cmd;
    }
}
