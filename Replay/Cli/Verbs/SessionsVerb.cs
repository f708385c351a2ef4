using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Projections;

namespace Sva.Replay.Verbs;

public static class SessionsVerb
{
    public static Command Build(CliCommon common)
    {
        var cmd = new Command("sessions", "The recorded sessions: name, kernel version, events, source, creation time") { common.Json };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            var all = await host.Store.ListSessionsAsync(ct);
            if (pr.GetValue(common.Json))
                foreach (var s in all)
                    Output.JsonLine(new JsonObject { ["session"] = s.Id, ["kernel"] = s.Kernel, ["events"] = s.Version, ["source"] = s.Source, ["created_at"] = s.CreatedAt.ToString("O") });
            else
            {
                var t = Output.Table("session", "kernel", "events", "source", "created");
                foreach (var s in all) t.Row(s.Id, s.Kernel, s.Version, s.Source, s.CreatedAt.ToString("u"));
                Output.Console.Write(t);
            }
            return 0;
        }));
        return cmd;
    }

    public static Command Kernels(CliCommon common)
    {
        var cmd = new Command("kernels", "The supported kernel versions with their generation, parent and what each changed") { common.Json };
        cmd.SetAction((pr, ct) => CliCommon.Guard(() =>
        {
            if (pr.GetValue(common.Json))
                foreach (var v in KernelVersions.All)
                    Output.JsonLine(new JsonObject { ["version"] = v.Name, ["generation"] = v.Generation.ToString(), ["parent"] = v.Parent, ["summary"] = v.Summary });
            else
            {
                var t = Output.Table("version", "gen", "parent", "what it changed");
                foreach (var v in KernelVersions.All) t.Row(v.Name, v.Generation, v.Parent, v.Summary);
                Output.Console.Write(t);
            }
            return Task.FromResult(0);
        }));
        return cmd;
    }

    public static Command Projections(CliCommon common)
    {
        var session = new Option<string?>("--session") { Description = "Only this session (default: all sessions)" };
        var rebuild = new Command("rebuild", "Recompute the inline read model (PASID tables, domains, mms, handles, devices) from the log") { session };
        rebuild.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            foreach (var s in await Sessions(host, pr.GetValue(session), ct))
                Output.Info($"{s}: {await ReadModel.RebuildSessionAsync(host.Store, s, ct)} rows rebuilt");
            return 0;
        }));
        var verify = new Command("verify", "Compare the stored read model with the one recomputed from the log; exit 1 on any difference") { session, common.Json };
        verify.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            var differ = false;
            foreach (var s in await Sessions(host, pr.GetValue(session), ct))
            {
                var diffs = await ReadModel.VerifySessionAsync(host.Store, s, ct);
                differ |= diffs.Count > 0;
                if (pr.GetValue(common.Json))
                    Output.JsonLine(new JsonObject { ["session"] = s, ["differences"] = new JsonArray(diffs.Select(d => (JsonNode)new JsonObject { ["table"] = d.Table, ["key"] = d.Key, ["stored"] = d.Stored, ["expected"] = d.Expected }).ToArray()) });
                else
                {
                    Output.Info($"{s}: {(diffs.Count == 0 ? "read model equals the log" : $"{diffs.Count} differences")}");
                    foreach (var d in diffs) Output.Info($"  {d.Table}[{d.Key}]: stored {d.Stored ?? "(none)"}, from log {d.Expected ?? "(none)"}");
                }
            }
            return differ ? 1 : 0;
        }));
        return new Command("projections", "The inline read model kept beside the log") { rebuild, verify };
    }

    private static async Task<IReadOnlyList<string>> Sessions(SvaHost host, string? one, CancellationToken ct) =>
        one is not null ? [(await host.SessionAsync(one, ct)).Id] : (await host.Store.ListSessionsAsync(ct)).Select(s => s.Id).ToList();
}
