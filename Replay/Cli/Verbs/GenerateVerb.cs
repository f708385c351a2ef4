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
        var kernel = new Option<string>("--kernel") { Description = $"Kernel version whose rules decide the calls. Supported: {KernelVersions.SupportedList}", DefaultValueFactory = _ => "6.8" };
        var session = new Option<string?>("--session") { Description = "Record into this session (at most 200 characters; default: a new session named after the options)" };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write a .sva script instead of recording (sva run FILE records the same events)" };
        var chunk = new Option<int>("--chunk") { Description = "Events appended per transaction (whole calls; the inline projections run in each)", DefaultValueFactory = _ => DefaultChunk };
        var cmd = new Command("generate", """
            Generate a seeded, realistic workload and record it as a session (decided in memory, appended in large
            batches with the inline projections and snapshots) or write it as a .sva script (-o). The mix: page faults
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
            var opts = new WorkloadOptions(pr.GetValue(devices), pr.GetValue(mms), pr.GetValue(events), pr.GetValue(seed), pr.GetValue(kernel)!);
            var problems = opts.Validate().ToList();
            if (pr.GetValue(session) is not null && pr.GetValue(output) is not null) problems.Add("give either --session or -o, not both");
            if (pr.GetValue(chunk) < 1) problems.Add($"--chunk {pr.GetValue(chunk)}: expected at least 1");
            if (problems.Count > 0) throw new UserInputException(string.Join("; ", problems));
            opts = opts with { Kernel = KernelVersions.Get(opts.Kernel).Name };
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
            var r = await RecordAsync(host.Store, name, opts, pr.GetValue(chunk), ct: ct);
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
    public static string ScriptName(WorkloadOptions o) => $"gen-d{o.Devices}-m{o.Mms}-n{o.Events}-s{o.Seed}-k{o.Kernel}.sva";

    public sealed record Recorded(long Calls, long Events, int Snapshots, double SnapshotSeconds);

    /// <summary>
    /// The fast path: the generator has already decided every call in memory (its events are those the handler would
    /// decide: decide is pure), so they are encoded with the metadata the RecordCalls handler writes (command id,
    /// source, the call on its first event) and appended in batches of about <paramref name="chunkEvents"/> events,
    /// each batch one transaction with the inline projections. Snapshots follow the handler's policy (right after
    /// the call that crosses each multiple of <paramref name="snapshotEvery"/>), saved once their batch committed.
    /// The session must not exist yet.
    /// </summary>
    public static async Task<Recorded> RecordAsync(PgEventStore store, string session, WorkloadOptions opts, int chunkEvents,
        int snapshotEvery = RecordCallsHandler.DefaultSnapshotEvery, CancellationToken ct = default)
    {
        var file = ScriptName(opts);
        try { await store.CreateSessionAsync(session, opts.Kernel, opts.CommandLine, ct); }
        catch (SessionExistsException) { throw new UserInputException($"session '{session}' exists: sva generate records into a new session"); }
        var state = new SvaState();
        long calls = 0;
        var snapshots = 0;
        var serializing = new Stopwatch();
        double saving = 0;
        var batch = new List<NewEvent>(chunkEvents + 64);
        var pending = new List<(long Seq, string Json)>();
        // One append in flight while the next batch is generated and encoded: client CPU and database work overlap.
        Task inflight = Task.CompletedTask;
        async Task AppendAsync(List<NewEvent> events, long expected, List<(long Seq, string Json)> snaps)
        {
            var r = await store.AppendAsync(session, expected, Guid.NewGuid(), events, ct);
            if (r.Duplicate || r.LastSeq != expected + events.Count)
                throw new InvalidOperationException($"append after seq {expected} returned {r.FirstSeq}..{r.LastSeq}");
            var sw = Stopwatch.StartNew();
            foreach (var (seq, json) in snaps) await store.SaveSnapshotAsync(session, seq, json, ct);
            saving += sw.Elapsed.TotalSeconds;
            snapshots += snaps.Count;
        }
        async Task Flush()
        {
            if (batch.Count == 0) return;
            var expected = state.Seq - batch.Count;
            var (events, snaps) = (batch, pending);
            batch = new List<NewEvent>(chunkEvents + 64);
            pending = new List<(long Seq, string Json)>();
            await inflight; // appends stay in seq order: the next starts once the previous committed
            inflight = AppendAsync(events, expected, snaps);
        }
        var cmdText = Guid.NewGuid().ToString();
        foreach (var c in WorkloadGenerator.Generate(opts))
        {
            var boundary = snapshotEvery > 0 ? state.Seq / snapshotEvery : 0;
            var source = $"{file}:{c.Line}";
            for (var i = 0; i < c.Events.Count; i++)
            {
                var e = c.Events[i];
                Evolve.Apply(state, e);
                batch.Add(EventCodec.Encode(e, Metadata(cmdText, source, i == 0 ? c.Call : null)));
            }
            calls++;
            if (snapshotEvery > 0 && state.Seq / snapshotEvery > boundary)
            {
                serializing.Start();
                pending.Add((state.Seq, state.ToSnapshotJson()));
                serializing.Stop();
            }
            if (batch.Count >= chunkEvents)
            {
                await Flush();
                cmdText = Guid.NewGuid().ToString(); // metadata 'cmd': one per batch, as the handler writes one per chunk
            }
        }
        await Flush();
        await inflight;
        return new Recorded(calls, state.Seq, snapshots, serializing.Elapsed.TotalSeconds + saving);
    }

    /// <summary>The metadata of the RecordCalls handler (<c>{"cmd", "source", "call"}</c>); stored as jsonb, so key order and spacing do not matter.</summary>
    public static string Metadata(string commandId, string source, KernelCall? call) =>
        call is null
            ? $"{{\"cmd\":\"{commandId}\",\"source\":{JsonSerializer.Serialize(source)}}}"
            : $"{{\"cmd\":\"{commandId}\",\"source\":{JsonSerializer.Serialize(source)},\"call\":{SvaJson.SerializeCall(call)}}}";
}
