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
            var sharded = host.Store as Sva.EventStore.ShardedEventStore;
            var t = json ? null : sharded is null
                ? Output.Table("session", "result", "events checked", "first broken seq", "reason")
                : Output.Table("session", "result", "events checked", "first broken seq", "reason", "shard");
            var broken = 0;
            // Sharded: the shards verify in parallel (one session at a time on each); results are printed in list order.
            var results = sharded is null
                ? null
                : await VerifyPerShardAsync(sharded, names, ct);
            foreach (var name in names)
            {
                var r = results is null ? await host.Store.VerifyAsync(name, ct) : results[name];
                if (!r.Ok) broken++;
                var shard = sharded?.ShardOf(name);
                if (json)
                {
                    var o = new JsonObject
                    {
                        ["session"] = r.Session, ["ok"] = r.Ok, ["events_checked"] = r.EventsChecked,
                        ["first_broken_seq"] = r.FirstBrokenSeq, ["reason"] = r.Reason,
                    };
                    if (sharded is not null) o["shard"] = shard;
                    Output.JsonLine(o);
                }
                else if (sharded is null) t!.Row(r.Session, r.Ok ? "ok" : "BROKEN", r.EventsChecked, r.FirstBrokenSeq, r.Reason);
                else t!.Row(r.Session, r.Ok ? "ok" : "BROKEN", r.EventsChecked, r.FirstBrokenSeq, r.Reason, shard);
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

    private static async Task<Dictionary<string, Sva.EventStore.VerifyResult>> VerifyPerShardAsync(
        Sva.EventStore.ShardedEventStore store, IReadOnlyList<string> names, CancellationToken ct)
    {
        foreach (var n in names) if (store.ShardOf(n) is null) await store.GetSessionAsync(n, ct); // placement known
        var groups = names.GroupBy(n => store.ShardOf(n) ?? "");
        var done = await Task.WhenAll(groups.Select(async g =>
        {
            var list = new List<Sva.EventStore.VerifyResult>();
            foreach (var n in g) list.Add(await store.VerifyAsync(n, ct));
            return list;
        }));
        return done.SelectMany(x => x).ToDictionary(r => r.Session, StringComparer.Ordinal);
    }
}
