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
            if (host.Store is Sva.EventStore.ShardedEventStore sharded)
            {
                // Every shard listed in parallel; each session with the shard it lives on.
                var placed = await sharded.ListSessionsWithShardsAsync(ct);
                if (pr.GetValue(common.Json))
                    foreach (var (s, shard) in placed)
                        Output.JsonLine(new JsonObject { ["session"] = s.Id, ["kernel"] = s.Kernel, ["kernel_given"] = s.KernelGiven, ["events"] = s.Version, ["source"] = s.Source, ["created_at"] = s.CreatedAt.ToString("O"), ["shard"] = shard });
                else
                {
                    var t = Output.Table("session", "kernel", "events", "source", "created", "shard");
                    foreach (var (s, shard) in placed) t.Row(s.Id, KernelShown(s), s.Version, s.Source, s.CreatedAt.ToString("u"), shard);
                    Output.Console.Write(t);
                }
                return 0;
            }
            var all = await host.Store.ListSessionsAsync(ct);
            Sva.EventStore.StartTrace.Mark("sessions read");
            if (pr.GetValue(common.Json))
                foreach (var s in all)
                    Output.JsonLine(new JsonObject { ["session"] = s.Id, ["kernel"] = s.Kernel, ["kernel_given"] = s.KernelGiven, ["events"] = s.Version, ["source"] = s.Source, ["created_at"] = s.CreatedAt.ToString("O") });
            else
            {
                var t = Output.Table("session", "kernel", "events", "source", "created");
                foreach (var s in all) t.Row(s.Id, KernelShown(s), s.Version, s.Source, s.CreatedAt.ToString("u"));
                Sva.EventStore.StartTrace.Mark("table built");
                Output.Console.Write(t);
                Sva.EventStore.StartTrace.Mark("table written");
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>"6.11 (given 6.15)": the rule set, and the name the user gave when it was another.</summary>
    private static string KernelShown(Sva.EventStore.SessionInfo s) => s.KernelGiven is { } g ? $"{s.Kernel} (given {g})" : s.Kernel;

    public static Command Kernels(CliCommon common)
    {
        var switches = new Option<bool>("--switches") { Description = "List every switch: its values, what each means, and which version introduced which value (function, commit, confidence); with --json one line per switch" };
        var cmd = new Command("kernels", """
            The supported kernel rule sets with their generation, parent and what each changed, and the releases each
            stands for (any release ≥ 5.11 resolves to one). --json: one line per version with its complete switches
            (switch → value), the changed switches and the rules each brings (function, commit or release, confidence).
            --switches: the switches a kernel file (.toml) can set.
            """) { switches, common.Json };
        cmd.SetAction((pr, ct) => CliCommon.Guard(() =>
        {
            if (pr.GetValue(switches))
            {
                RenderSwitches(pr.GetValue(common.Json));
                return Task.FromResult(0);
            }
            if (pr.GetValue(common.Json))
                foreach (var v in KernelVersions.All)
                    Output.JsonLine(new JsonObject
                    {
                        ["version"] = v.Name, ["generation"] = v.Generation.ToString(), ["parent"] = v.Parent, ["summary"] = v.Summary,
                        ["covers"] = KernelVersions.Covers(v),
                        ["switches"] = KernelSwitches.ToJson(v.Rules),
                        ["changed_switches"] = v.Parent is null ? new JsonObject() : ChangedSwitches(v),
                        // what differs from the parent: the rule fields, and the rules (with their commits) they bring
                        ["changed_fields"] = new JsonArray(KernelVersions.ChangedFields(v).Select(f => (JsonNode)JsonValue.Create(f)!).ToArray()),
                        ["rules"] = new JsonArray(v.Introduces.Select(id => (JsonNode)KernelRuleTable.Get(id).ToJson()).ToArray()),
                    });
            else
            {
                var t = Output.Table("version", "gen", "parent", "covers", "what it changed");
                foreach (var v in KernelVersions.All) t.Row(v.Name, v.Generation, v.Parent, KernelVersions.Covers(v), v.Summary);
                Output.Console.Write(t);
                if (KernelVersions.Aliases.Count > 0)
                    Output.Info("aliases (rule sets renamed or merged; sessions recorded under them load): "
                        + string.Join(", ", KernelVersions.Aliases.Select(a => $"{a.Key} → {a.Value}")));
            }
            return Task.FromResult(0);
        }));
        return cmd;
    }

    private static JsonObject ChangedSwitches(KernelVersion v)
    {
        var parent = KernelVersions.Get(v.Parent).Rules;
        var o = new JsonObject();
        foreach (var (sw, value) in KernelSwitches.Of(v.Rules))
            if (sw.ValueIn(parent) != value) o[sw.Name] = value.Name;
        return o;
    }

    private static void RenderSwitches(bool json)
    {
        foreach (var sw in KernelSwitches.All)
        {
            var values = sw.Values.Select(v => new
            {
                Value = v,
                At = KernelSwitches.IntroducedAt(sw, v).Select(x => x.Name).ToList(),
            }).ToList();
            if (json)
            {
                Output.JsonLine(new JsonObject
                {
                    ["switch"] = sw.Name, ["area"] = sw.Area, ["driver"] = sw.Driver, ["decides"] = sw.Says,
                    ["values"] = new JsonArray(values.Select(x => (JsonNode)new JsonObject
                    {
                        ["value"] = x.Value.Name, ["means"] = x.Value.Means,
                        ["introduced_in"] = new JsonArray(x.At.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
                        ["function"] = x.Value.Rule.Function, ["commit"] = x.Value.Rule.Introduced, ["confidence"] = x.Value.Rule.Confidence.ToString(),
                        ["rules"] = new JsonArray(x.Value.Rules.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray()),
                    }).ToArray()),
                });
                continue;
            }
            Console.Out.WriteLine($"{sw.Name}  ({sw.Area}{(sw.Driver is null ? "" : $", {sw.Driver} devices")}): {sw.Says}");
            foreach (var x in values)
                Console.Out.WriteLine($"  {x.Value.Name,-26} {(x.At.Count == 0 ? "what-if only" : "from " + string.Join(", again ", x.At)),-22} {x.Value.Rule.Function}, {x.Value.Rule.Introduced} [{x.Value.Rule.Confidence}]: {x.Value.Means}");
        }
    }

    private static readonly string[] ProjectionNames = [SvaReadModelProjection.ProjectionName, AuditBindingsProjection.ProjectionName];

    public static Command Projections(CliCommon common)
    {
        var session = new Option<string?>("--session") { Description = "Only this session (verify)" };
        var name = new Argument<string?>("name") { Description = $"Projection: {SvaReadModelProjection.ProjectionName} or {AuditBindingsProjection.ProjectionName} (both async). Default: all", Arity = ArgumentArity.ZeroOrOne };
        var timeout = new Option<int>("--timeout") { Description = "Seconds a rebuild by Marten's daemon may take before it is abandoned", DefaultValueFactory = _ => 1800 };
        var withDaemon = new Option<bool>("--with-daemon") { Description = $"Rebuild {SvaReadModelProjection.ProjectionName} with Marten's daemon (its per-event pipeline from position 1: ~8x slower in sva bench) instead of the fold" };
        var rebuild = new Command("rebuild",
            $"Recompute projections from the log. {SvaReadModelProjection.ProjectionName} (PASID tables, domains, mms, handles, devices): " +
            "each session folded from seq 1 up to Marten's high-water mark (no uncommitted append is at or below it), the final rows " +
            "replacing the old ones with one COPY in the transaction that sets the projection's checkpoint; the daemon continues " +
            $"from there. {AuditBindingsProjection.ProjectionName}: Marten's daemon from position 1, 5,000 events a page") { name, timeout, withDaemon };
        rebuild.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var which = pr.GetValue(name);
            if (which is not null && !ProjectionNames.Contains(which)) throw new UserInputException($"no projection '{which}'; known: {string.Join(", ", ProjectionNames)}");
            await using var host = await common.OpenAsync(pr, ct);
            var (_, head) = await host.Store.ProjectionStatusAsync(ct);
            foreach (var p in ProjectionNames.Where(p => which is null || p == which))
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                if (p == SvaReadModelProjection.ProjectionName && !pr.GetValue(withDaemon))
                {
                    // A progress bar on stderr when it is a terminal (as run's and import's): the events folded so far.
                    var r = await Output.WithProgressAsync($"rebuild {p}", head, async bar =>
                        await ReadModel.RebuildAsync(host.Store, new Progress(at => bar(at, $"rebuild {p}: {at:N0} events folded")), ct));
                    Output.Info($"{p}: rebuilt from the log up to position {r.Checkpoint} in {sw.Elapsed.TotalSeconds:F2} s " +
                                $"({r.Events:N0} events of {r.Sessions:N0} sessions folded, {r.Documents:N0} rows written; high-water mark " +
                                $"{r.CeilingTime.TotalSeconds:F2} s, read + fold {r.FoldTime.TotalSeconds:F2} s, write {r.WriteTime.TotalSeconds:F2} s)");
                    if (r.Checkpoint < r.Head)
                        Output.Info($"{p}: positions {r.Checkpoint + 1}..{r.Head} are above a sequence gap (an append still in flight, or a " +
                                    "rolled-back one): left to the daemon, which projects them once the gap is filled or proven dead " +
                                    "('sva projections daemon --once')");
                    continue;
                }
                // A progress bar on stderr when it is a terminal (as run's and import's): positions as the daemon's pages commit.
                await Output.WithProgressAsync($"rebuild {p}", head, async bar =>
                {
                    await host.Store.RebuildProjectionAsync(p, TimeSpan.FromSeconds(pr.GetValue(timeout)), ct,
                        new Progress(at => bar(at, $"rebuild {p}: position {at:N0} of {head:N0}")));
                    return true;
                });
                Output.Info($"{p}: rebuilt from the log up to position {head} in {sw.Elapsed.TotalSeconds:F2} s (Marten's daemon)");
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
        var status = new Command("status", "Each projection with its mode, checkpoint (Marten's progression), the store's head position and the lag") { common.Json };
        status.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var (all, head) = await host.Store.ProjectionStatusAsync(ct);
            if (pr.GetValue(common.Json))
                foreach (var p in all)
                    Output.JsonLine(new JsonObject { ["name"] = p.Name, ["mode"] = p.Mode, ["checkpoint"] = p.Position, ["head"] = head, ["lag"] = Math.Max(0, head - p.Position) });
            else
            {
                var t = Output.Table("projection", "mode", "checkpoint", "head", "lag");
                foreach (var p in all) t.Row(p.Name, p.Mode, p.Position, head, Math.Max(0, head - p.Position));
                Output.Console.Write(t);
            }
            return 0;
        }));
        var once = new Option<bool>("--once") { Description = "Catch up to the head and exit instead of following new events" };
        var run = new Command("daemon", "Run the async projections with Marten's daemon: catch up from each checkpoint, then follow new events (LISTEN/NOTIFY, polling fallback) until Ctrl-C") { once, timeout };
        run.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            // Following: any number of daemon processes may run; Marten elects one leader per database (HotCold).
            if (!pr.GetValue(once)) Sva.Projections.SvaStoreSetup.HotColdDaemon = true;
            await using var host = await common.OpenAsync(pr, ct);
            if (pr.GetValue(once))
            {
                await host.Store.RunDaemonAsync(once: true, TimeSpan.FromSeconds(pr.GetValue(timeout)), ct);
                foreach (var p in (await host.Store.ProjectionStatusAsync(ct)).Projections.Where(p => p.Mode == "async"))
                    Output.Info($"{p.Name}: at position {p.Position}");
                return 0;
            }
            Output.Info($"projection daemon running (pid {Environment.ProcessId}; with other daemon processes on the same database, the one Marten elects leader projects, the others stand by); Ctrl-C stops it");
            await host.Store.RunDaemonAsync(once: false, TimeSpan.Zero, ct);
            return 0;
        }));
        return new Command("projections", "The read models kept beside the log as Marten async projections (Marten's daemon; a writing command catches them up after its last batch commits)") { status, rebuild, verify, run };
    }

    private static async Task<IReadOnlyList<string>> Sessions(SvaHost host, string? one, CancellationToken ct) =>
        one is not null ? [(await host.SessionAsync(one, ct)).Id] : (await host.Store.ListSessionsAsync(ct)).Select(s => s.Id).ToList();
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (no synchronisation context).</summary>
internal sealed class Progress(Action<long> report) : IProgress<long>
{
    public void Report(long value) => report(value);
}
