using System.CommandLine;
using System.Text.Json.Nodes;

namespace Sva.Replay.Verbs;

public static class VerifyVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string?>("session") { Description = "Session to verify (default: every session)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("verify", """
            Tamper evidence: recompute each session's SHA-256 hash chain from the stored events (every event's hash
            covers its session, seq, type, data and metadata and the previous event's hash) and compare it with the
            stored hashes and the session's head. Names the first broken seq. Exit 1 if any session is broken.
            """)
        {
            session, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var names = pr.GetValue(session) is { } one
                ? [(await host.SessionAsync(one, ct)).Id]
                : (await host.Store.ListSessionsAsync(ct)).Select(s => s.Id).ToList();
            var json = pr.GetValue(common.Json);
            var t = json ? null : Output.Table("session", "result", "events checked", "first broken seq", "reason");
            var broken = 0;
            foreach (var name in names)
            {
                var r = await host.Store.VerifyAsync(name, ct);
                if (!r.Ok) broken++;
                if (json)
                    Output.JsonLine(new JsonObject
                    {
                        ["session"] = r.Session, ["ok"] = r.Ok, ["events_checked"] = r.EventsChecked,
                        ["first_broken_seq"] = r.FirstBrokenSeq, ["reason"] = r.Reason,
                    });
                else t!.Row(r.Session, r.Ok ? "ok" : "BROKEN", r.EventsChecked, r.FirstBrokenSeq, r.Reason);
            }
            if (t is not null)
            {
                Output.Console.Write(t);
                Output.Info(broken == 0 ? $"{names.Count} session(s): every hash chain verifies" : $"{broken} of {names.Count} session(s) broken");
            }
            return broken == 0 ? 0 : 1;
        }));
        return cmd;
    }
}
