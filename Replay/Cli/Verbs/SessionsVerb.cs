using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Projections;
using Sva.Projections.Async;

namespace Sva.Replay.Verbs;

public static class SessionsVerb
{
    public static Command Build(CliCommon common)
    {
        var cmd = new Command("sessions", "The recorded sessions: name, kernel version, events, source, creation time") { common.Json };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
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
        var cmd = new Command("kernels", "The supported kernel versions with their generation, parent and what each changed (--json: also the changed rule fields and the rules each brings, with function, commit or release and confidence)") { common.Json };
        cmd.SetAction((pr, ct) => CliCommon.Guard(() =>
        {
            if (pr.GetValue(common.Json))
                foreach (var v in KernelVersions.All)
                    Output.JsonLine(new JsonObject
                    {
                        ["version"] = v.Name, ["generation"] = v.Generation.ToString(), ["parent"] = v.Parent, ["summary"] = v.Summary,
                        // what differs from the parent: the rule fields, and the rules (with their commits) they bring
                        ["changed_fields"] = new JsonArray(KernelVersions.ChangedFields(v).Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
                        ["rules"] = new JsonArray(v.Introduces.Select(id => (JsonNode)KernelRuleTable.Get(id).ToJson()).ToArray()),
                    });
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
        var session = new Option<string?>("--session") { Description = "Only this session (rebuild: recompute its rows in place)" };
        var name = new Argument<string?>("name") { Description = $"Projection: {SvaInlineProjection.ProjectionName} (inline: fresh tables, then swap) or {AuditBindingsProjection.ProjectionName} (async: reset, then catch up). Default: all", Arity = ArgumentArity.ZeroOrOne };
        var rebuild = new Command("rebuild", "Recompute projections from the log: the inline read model (PASID tables, domains, mms, handles, devices) into fresh tables swapped in under the append lock; async projections from position 1") { name, session };
        rebuild.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            if (pr.GetValue(session) is { } one)
            {
                Output.Info($"{one}: {await ReadModel.RebuildSessionAsync(host.Store, (await host.SessionAsync(one, ct)).Id, ct)} rows rebuilt");
                return 0;
            }
            var which = pr.GetValue(name);
            var daemon = new ProjectionDaemon(host.Store, ProjectionDaemon.Default());
            var known = ProjectionDaemon.Default().Select(p => p.Name).Prepend(SvaInlineProjection.ProjectionName).ToList();
            if (which is not null && !known.Contains(which)) throw new UserInputException($"no projection '{which}'; known: {string.Join(", ", known)}");
            if (which is null or SvaInlineProjection.ProjectionName)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                var (events, rows) = await ReadModel.RebuildAllAsync(host.Store, ct);
                Output.Info($"{SvaInlineProjection.ProjectionName}: {events} events folded, {rows} rows swapped in, {sw.Elapsed.TotalSeconds:F2} s ({events / Math.Max(sw.Elapsed.TotalSeconds, 1e-6):F0} events/s)");
            }
            foreach (var p in ProjectionDaemon.Default().Where(p => which is null || p.Name == which))
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                await daemon.ResetAsync(p, ct);
                var cp = await daemon.CatchUpAsync(p, ct);
                Output.Info($"{p.Name}: rebuilt to position {cp}, {sw.Elapsed.TotalSeconds:F2} s");
            }
            return 0;
        }));
        var verify = new Command("verify", "Compare the stored read model with the one recomputed from the log; exit 1 on any difference") { session, common.Json };
        verify.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
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
        var status = new Command("status", "Each projection with its mode, checkpoint, the store's head position and the lag") { common.Json };
        status.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var all = await new ProjectionDaemon(host.Store, ProjectionDaemon.Default()).StatusAsync(ct);
            if (pr.GetValue(common.Json))
                foreach (var p in all)
                    Output.JsonLine(new JsonObject { ["name"] = p.Name, ["mode"] = p.Mode, ["checkpoint"] = p.Checkpoint, ["head"] = p.Head, ["lag"] = p.Lag, ["updated_at"] = p.UpdatedAt?.ToString("O") });
            else
            {
                var t = Output.Table("projection", "mode", "checkpoint", "head", "lag", "updated");
                foreach (var p in all) t.Row(p.Name, p.Mode, p.Checkpoint, p.Head, p.Lag, p.UpdatedAt?.ToString("u"));
                Output.Console.Write(t);
            }
            return 0;
        }));
        var once = new Option<bool>("--once") { Description = "Catch up to the head and exit instead of waiting for new events" };
        var run = new Command("daemon", "Run the async projections: catch up from each checkpoint, then follow new events (LISTEN/NOTIFY, polling fallback) until Ctrl-C") { once };
        run.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            var daemon = new ProjectionDaemon(host.Store, ProjectionDaemon.Default(), pr.GetValue(common.Verbose) ? Console.Error : null);
            if (pr.GetValue(once))
            {
                foreach (var p in ProjectionDaemon.Default()) Output.Info($"{p.Name}: at position {await daemon.CatchUpAsync(p, ct)}");
                return 0;
            }
            Output.Info("projection daemon running; Ctrl-C stops it");
            await daemon.RunAsync(ct);
            return 0;
        }));
        return new Command("projections", "The read models kept beside the log: the inline one (updated in each append's transaction) and the async ones (the daemon)") { status, rebuild, verify, run };
    }

    private static async Task<IReadOnlyList<string>> Sessions(SvaHost host, string? one, CancellationToken ct) =>
        one is not null ? [(await host.SessionAsync(one, ct)).Id] : (await host.Store.ListSessionsAsync(ct)).Select(s => s.Id).ToList();
}
