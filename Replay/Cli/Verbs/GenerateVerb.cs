using System.CommandLine;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sva.Commands;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.Projections;
using Sva.EventStore;
using Sva.Formats.Generate;

namespace Sva.Replay.Verbs;

public static class GenerateVerb
{
    /// <summary>Events appended per transaction by default (one binary COPY each).</summary>
    public const int DefaultChunk = 8192;

    public static Command Build(CliCommon common)
    {
        var devices = new Option<int>("--devices") { Description = "Devices (PCI functions with SVA; a few are quirky: one without IOPF queue, one with 32 PASIDs, two sharing a group)", Required = true };
        var mms = new Option<int>("--mms") { Description = "Processes alive at once (each dropped mm is replaced by a new one)", Required = true };
        var events = new Option<long>("--events") { Description = "Events to generate (the last call completes, so a few more may be recorded)", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "PRNG seed: the same options and seed give the same calls, byte for byte", DefaultValueFactory = _ => 1 };
        var kernel = new Option<string>("--kernel") { Description = $"Kernel whose rules decide the calls: any release ≥ {KernelVersions.Oldest} (6.15, 6.8.0-31-generic: resolved to the rule set that covers it) or a kernel file (.toml). Rule sets: {KernelVersions.SupportedList}", DefaultValueFactory = _ => "6.8" };
        var session = new Option<string?>("--session") { Description = "Record into this session (at most 200 characters; default: a new session named after the options)" };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write a .sva script instead of recording (sva run FILE records the same events)" };
        var chunk = new Option<int>("--chunk") { Description = "Events appended per transaction (whole calls)", DefaultValueFactory = _ => DefaultChunk };
        var cmd = new Command("generate", """
            Generate a seeded, realistic workload and record it as a session (decided in memory, appended in large
            batches with snapshots; the projections catch up after the last one) or write it as a .sva script (-o). The mix: page faults
            (single requests and 2-4 request groups), CPU invalidations, binds, re-binds, unbinds, process exits with
            faults after release, drops, new processes replacing dropped ones, and occasional errors (writes to a
            read-only VMA, addresses outside any VMA, PASIDs too large for a small device, binds to a dropped mm,
            double unbinds, stray faults on a PASID after its unbind, a process dropped while still bound).
            Each call's source is FILE:LINE of the script -o would write with the same options.
            """)
        {
            devices, mms, events, seed, kernel, session, output, chunk, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var given = pr.GetValue(kernel)!;
            var resolved = KernelArg.Resolve(given);
            var opts = new WorkloadOptions(pr.GetValue(devices), pr.GetValue(mms), pr.GetValue(events), pr.GetValue(seed), given) { Version = resolved };
            var problems = opts.Validate().ToList();
            if (pr.GetValue(session) is not null && pr.GetValue(output) is not null) problems.Add("give either --session or -o, not both");
            if (pr.GetValue(chunk) < 1) problems.Add($"--chunk {pr.GetValue(chunk)}: expected at least 1");
            if (problems.Count > 0) throw new UserInputException(string.Join("; ", problems));
            if (resolved.Origin is null) opts = opts with { Kernel = resolved.Name };
            var sw = Stopwatch.StartNew();
            var json = pr.GetValue(common.Json);

            if (pr.GetValue(output) is { } file)
            {
                long calls = 0, evs = 0;
                await using (var w = new StreamWriter(file.FullName, false, new UTF8Encoding(false)))
                {
                    foreach (var h in WorkloadGenerator.Header(opts)) await w.WriteAsync(h + "\n");
                    foreach (var c in WorkloadGenerator.Generate(opts))
                    {
                        ct.ThrowIfCancellationRequested();
                        await w.WriteAsync(c.Text);
                        await w.WriteAsync('\n');
                        calls++;
                        evs += c.Events.Count;
                    }
                }
                Report(json, new JsonObject
                {
                    ["file"] = file.FullName, ["calls"] = calls, ["events"] = evs, ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 3),
                    ["command"] = opts.CommandLine,
                });
                return 0;
            }

            await using var host = await common.OpenAsync(pr, ct);
            var name = pr.GetValue(session) ?? $"gen-d{opts.Devices}-m{opts.Mms}-n{opts.Events}-s{opts.Seed}-{Guid.NewGuid().ToString("N")[..6]}";
            var r = await Output.WithProgressAsync($"generate {name}", opts.Events, progress => RecordAsync(host, name, opts, pr.GetValue(chunk), ct: ct, progress: progress));
            var info = await host.SessionAsync(name, ct);
            Report(json, new JsonObject
            {
                ["session"] = name, ["kernel"] = opts.Kernel, ["calls"] = r.Calls, ["events"] = r.Events, ["last_seq"] = info.Version,
                ["snapshots"] = r.Snapshots, ["snapshot_seconds"] = Math.Round(r.SnapshotSeconds, 3), ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 3),
                ["events_per_second"] = Math.Round(r.Events / Math.Max(sw.Elapsed.TotalSeconds, 1e-9)), ["command"] = opts.CommandLine,
                ["source_file"] = ScriptName(opts),
            });
            return 0;
        }));
        return cmd;
    }

    private static void Report(bool json, JsonObject o)
    {
        if (json) Output.JsonLine(o);
        else foreach (var (k, v) in o) Console.Out.WriteLine($"{k,-20} {v}");
    }

    /// <summary>The name of the script -o writes for these options: the source file of every recorded call.</summary>
    public static string ScriptName(WorkloadOptions o) => $"gen-d{o.Devices}-m{o.Mms}-n{o.Events}-s{o.Seed}-k{(o.Version?.Origin is not null ? o.Version.Name : o.Kernel)}.sva";

    public sealed record Recorded(long Calls, long Events, int Snapshots, double SnapshotSeconds);

    /// <summary>
    /// Records the generated calls through the one recorder (the RecordCalls request, sent through the mediator): each
    /// call decided on the session's state, appended in batches of about <paramref name="chunkEvents"/> events with the
    /// snapshots in each transaction. Outcomes are counted as batches commit, not kept.
    /// The session must not exist yet.
    /// </summary>
    public static async Task<Recorded> RecordAsync(SvaHost host, string session, WorkloadOptions opts, int chunkEvents,
        int snapshotEvery = SnapshotPolicy.DefaultEvery, CancellationToken ct = default, Action<long, string?>? progress = null)
    {
        if (await host.Store.GetSessionAsync(session, ct) is not null)
            throw new UserInputException($"session '{session}' exists: sva generate records into a new session");
        var file = ScriptName(opts);
        var calls = WorkloadGenerator.Generate(opts).Select(c => new SourcedCall(c.Call, $"{file}:{c.Line}")).ToList();
        long recorded = 0;
        var r = await host.Mediator.Send(new RecordCalls(session, opts.Kernel, opts.CommandLine, calls, Math.Max(1, chunkEvents / 3))
        {
            Version = opts.Version,
            SnapshotEvery = snapshotEvery,
            OnRecorded = c =>
            {
                recorded++;
                if ((recorded & 255) == 0) progress?.Invoke(c.LastSeq, $"generate {session}: {c.LastSeq:N0} events");
                return ValueTask.CompletedTask;
            },
        }, ct);
        var snaps = snapshotEvery > 0 ? (await host.Store.ListSnapshotsAsync(session, ct)).Count : 0;
        return new Recorded(recorded, r.LastSeq, snaps, 0);
    }
}
