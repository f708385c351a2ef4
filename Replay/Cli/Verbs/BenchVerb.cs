using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Sva.Commands;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Generate;
using Sva.Projections;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

/// <summary>
/// <c>sva bench</c>: the macro benchmark, in one process against the configured PostgreSQL, medians over repeats.
/// Micro-level figures (engine Execute, Evolve, JSON) are in bench/Sva.Bench (BenchmarkDotNet).
/// </summary>
public static class BenchVerb
{
    private sealed record Sizes(long Events, long TtEvents, int Repeats, int Points, int FoldPoints, int LatencyCalls, int Devices, int Mms);

    public static Command Build(CliCommon common)
    {
        var events = new Option<long>("--events") { Description = "Events per recording repeat (a generated workload)", DefaultValueFactory = _ => 200_000 };
        var ttEvents = new Option<long>("--tt-events") { Description = "Events of the generated session time travel is measured on", DefaultValueFactory = _ => 1_000_000 };
        var ttSession = new Option<string?>("--tt-session") { Description = "Measure time travel on this existing session instead of generating one" };
        var repeats = new Option<int>("--repeats") { Description = "Repeats of each throughput measurement (the median is reported)", DefaultValueFactory = _ => 3 };
        var points = new Option<int>("--points") { Description = "Random seqs at which time travel is measured", DefaultValueFactory = _ => 41 };
        var foldPoints = new Option<int>("--fold-points") { Description = "How many of those points are also folded from event 0 (slow on a big session)", DefaultValueFactory = _ => 5 };
        var sweep = new Option<string?>("--sweep") { Description = "Snapshot intervals to compare (comma-separated, e.g. 1024,4096,16384): snapshot cost vs time-travel latency on the time-travel session; its snapshots are restored to the default interval afterwards" };
        var seed = new Option<ulong>("--seed") { Description = "Workload seed", DefaultValueFactory = _ => 1 };
        var smoke = new Option<bool>("--smoke") { Description = "Tiny sizes, one repeat, a few seconds: checks that every measurement runs (CI)" };
        var cmd = new Command("bench", """
            Measure, in one run on the configured PostgreSQL, medians over repeats: recording throughput through the
            RecordCalls handler (decide + append + inline projections, batched, snapshots on), the raw binary COPY of the
            same rows into a scratch table (the ceiling) and the ratio, per-call append latency (p50/p95), time travel
            at random points of a generated session (nearest snapshot + tail) vs folding from event 0 and the ratio,
            read-model rebuild throughput, the in-memory engine (calls/s) and fold (events/s), peak memory. Leaves
            sessions named bench-* behind (the log is append-only).
            """)
        {
            events, ttEvents, ttSession, repeats, points, foldPoints, sweep, seed, smoke, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var sizes = pr.GetValue(smoke)
                ? new Sizes(3_000, 8_000, 1, 5, 2, 20, 6, 8)
                : new Sizes(pr.GetValue(events), pr.GetValue(ttEvents), pr.GetValue(repeats), pr.GetValue(points), pr.GetValue(foldPoints), 300, 16, 64);
            if (sizes.Events < 100 || sizes.TtEvents < 100) throw new UserInputException("--events and --tt-events: at least 100");
            if (sizes.Repeats < 1 || sizes.Points < 1 || sizes.FoldPoints < 0) throw new UserInputException("--repeats and --points: at least 1");
            var intervals = ParseIntervals(pr.GetValue(sweep));
            await using var host = await common.OpenAsync(pr, ct);
            var r = await RunAsync(host, sizes, pr.GetValue(seed), pr.GetValue(ttSession), intervals, ct);
            if (pr.GetValue(common.Json)) Output.JsonDocument(r);
            else Render(r);
            return 0;
        }));
        return cmd;
    }

    private static List<int> ParseIntervals(string? text)
    {
        if (text is null) return [];
        var list = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            list.Add(int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 16 ? n
                : throw new UserInputException($"--sweep: '{part}' is not an interval (a number of events, at least 16)"));
        return list;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        if (a.Length == 0) return double.NaN;
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    private static double Percentile(IEnumerable<double> xs, double p)
    {
        var a = xs.Order().ToArray();
        if (a.Length == 0) return double.NaN;
        var i = (int)Math.Ceiling(p * a.Length) - 1;
        return a[Math.Clamp(i, 0, a.Length - 1)];
    }

    private static double R(double v, int digits = 1) => double.IsFinite(v) ? Math.Round(v, digits) : -1;

    private static long peakHeap;
    private static void SampleMemory() => peakHeap = Math.Max(peakHeap, GC.GetGCMemoryInfo().HeapSizeBytes);

    private static async Task<JsonObject> RunAsync(SvaHost host, Sizes z, ulong seed, string? ttSessionName, List<int> sweep, CancellationToken ct)
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var result = new JsonObject { ["machine"] = await Machine(host, ct), ["sizes"] = new JsonObject
        {
            ["events"] = z.Events, ["tt_events"] = z.TtEvents, ["repeats"] = z.Repeats, ["points"] = z.Points, ["fold_points"] = z.FoldPoints,
            ["devices"] = z.Devices, ["mms"] = z.Mms, ["seed"] = seed, ["snapshot_every"] = RecordCallsHandler.DefaultSnapshotEvery,
        } };
        var rows = new JsonArray();
        result["rows"] = rows;
        void Row(string metric, double value, string unit, string detail = "")
        {
            rows.Add(new JsonObject { ["metric"] = metric, ["value"] = R(value, value < 100 ? 2 : 0), ["unit"] = unit, ["detail"] = detail });
            SampleMemory();
        }

        // ---- the workload, in memory
        var opts = new WorkloadOptions(z.Devices, z.Mms, z.Events, seed);
        var work = WorkloadGenerator.Generate(opts).ToList();
        var calls = work.Select(c => new SourcedCall(c.Call, $"{GenerateVerb.ScriptName(opts)}:{c.Line}")).ToList();
        var nEvents = work.Sum(c => (long)c.Events.Count);
        var version = KernelVersions.Get(opts.Kernel);

        // ---- in-memory engine: decide + apply, and fold alone
        var engine = new List<double>();
        var fold = new List<double>();
        var allEvents = work.SelectMany(c => c.Events).ToList();
        for (var i = 0; i < z.Repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            var s = new SvaState();
            foreach (var c in calls) SvaKernel.Execute(version, s, c.Call);
            engine.Add(calls.Count / sw.Elapsed.TotalSeconds);
            sw.Restart();
            Evolve.Fold(allEvents);
            fold.Add(allEvents.Count / sw.Elapsed.TotalSeconds);
        }
        Row("engine: decide + apply in memory", Median(engine), "calls/s", $"{calls.Count} calls, {nEvents} events ({Median(engine) * nEvents / calls.Count:F0} events/s)");
        Row("engine: fold (Evolve.Apply) in memory", Median(fold), "events/s", $"{allEvents.Count} events");

        // ---- recording through the RecordCalls handler
        const int chunkCalls = 4096;
        var recording = new List<double>();
        var recorded = new List<string>();
        for (var i = 0; i < z.Repeats; i++)
        {
            var session = $"bench-rec-{run}-{i + 1}";
            var handler = new RecordCallsHandler(host.Store);
            var sw = Stopwatch.StartNew();
            foreach (var slice in calls.Chunk(65536))
                await handler.HandleAsync(new RecordCalls(session, version.Name, opts.CommandLine, slice, chunkCalls), ct);
            recording.Add(nEvents / sw.Elapsed.TotalSeconds);
            recorded.Add(session);
            SampleMemory();
        }
        var recMedian = Median(recording);
        Row("recording: decide + append + inline projections + snapshots", recMedian, "events/s",
            $"{nEvents} events, {chunkCalls} calls (~{nEvents * chunkCalls / Math.Max(1, calls.Count)} events) per append, runs: {string.Join(" ", recording.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))}");

        // ---- the ceiling: raw binary COPY of the same stored rows into a scratch table like events
        var copy = await CopyCeilingAsync(host, recorded[0], run, z.Repeats, ct);
        Row("raw COPY of the same rows (ceiling)", copy, "events/s", "binary COPY into a scratch table with the events table's indexes, 8192 rows per transaction");
        Row("recording / raw COPY", recMedian / copy, "ratio");

        // ---- per-call append latency (one call per transaction)
        var lat = await LatencyAsync(host, calls, version.Name, run, z.LatencyCalls, ct);
        Row("per-call record latency p50", Median(lat), "ms", $"{lat.Count} calls, one RecordCalls each (decide + append + inline)");
        Row("per-call record latency p95", Percentile(lat, 0.95), "ms");

        // ---- import throughput: a synthetic ftrace capture (about 2.7 events a line) through the importer
        // (parse, map to calls and observations, decide, append in batches with projections), then the raw COPY
        // of the very rows it stored, as its ceiling.
        var importLines = (int)Math.Max(200, nEvents * 10 / 27);
        var captureText = new StringWriter();
        Sva.Formats.Import.SyntheticCapture.WriteFtrace(captureText, importLines, $"bench-{run}");
        var text = captureText.ToString();
        var importRates = new List<double>();
        var importEventRates = new List<double>();
        string? imported = null;
        long importedEvents = 0;
        for (var i = 0; i < z.Repeats; i++)
        {
            var res = await new ImportCaptureHandler(host.Store).ImportAsync(new StringReader(text), $"bench-{run}-{i + 1}.trace",
                new ImportOptions { Kernel = version.Name, Format = "ftrace", Session = $"bench-imp-{run}-{i + 1}" }, ct);
            importRates.Add(res.Lines / res.Seconds);
            importEventRates.Add(res.Events / res.Seconds);
            imported = res.Session;
            importedEvents = res.Events;
            SampleMemory();
        }
        var importCopy = await CopyCeilingAsync(host, imported!, run + "_imp", z.Repeats, ct);
        Row("import: synthetic ftrace capture", Median(importRates), "lines/s", $"{importLines} lines -> {importedEvents} events, runs: {string.Join(" ", importRates.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))}");
        Row("import: events recorded", Median(importEventRates), "events/s");
        Row("raw COPY of the imported rows (ceiling)", importCopy, "events/s");
        Row("import / raw COPY", Median(importEventRates) / importCopy, "ratio");
        result["import"] = "measured (rows above)";

        // ---- rebuild of the read model from the log
        var rebuild = new List<double>();
        for (var i = 0; i < z.Repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            await ReadModel.RebuildSessionAsync(host.Store, recorded[0], ct);
            rebuild.Add(nEvents / sw.Elapsed.TotalSeconds);
        }
        Row("read-model rebuild (ReadModel.RebuildSessionAsync)", Median(rebuild), "events/s", $"{nEvents} events, fold from the log + rows replaced");

        // ---- time travel on a big generated session
        string tt;
        double? genRate = null;
        if (ttSessionName is not null) tt = (await host.SessionAsync(ttSessionName, ct)).Id;
        else
        {
            tt = $"bench-tt-{run}";
            var ttOpts = new WorkloadOptions(z.Devices, z.Mms, z.TtEvents, seed + 1);
            var sw = Stopwatch.StartNew();
            var g = await GenerateVerb.RecordAsync(host.Store, tt, ttOpts, GenerateVerb.DefaultChunk, ct: ct);
            genRate = g.Events / sw.Elapsed.TotalSeconds;
            Row("sva generate --session (generate + decide + append + inline + snapshots)", genRate.Value, "events/s",
                $"{g.Events} events, {g.Snapshots} snapshots ({g.SnapshotSeconds:F1} s serializing and saving them)");
        }
        var ttInfo = await host.SessionAsync(tt, ct);
        var snaps = await host.Store.ListSnapshotsAsync(tt, ct);
        var (withSnap, fromZero, ratios) = await TimeTravelAsync(host, tt, ttInfo.Version, z.Points, z.FoldPoints, seed, ct);
        Row("time travel: nearest snapshot + tail, median", Median(withSnap), "ms",
            $"{withSnap.Count} random seqs of {tt} ({ttInfo.Version} events, {snaps.Count} snapshots, {snaps.Select(s => s.Bytes).DefaultIfEmpty().Average() / 1024:F0} KB average); p95 {Percentile(withSnap, 0.95):F1} ms");
        if (fromZero.Count > 0)
        {
            Row("time travel: fold from event 0, median", Median(fromZero), "ms", $"{fromZero.Count} of the same seqs");
            Row("time travel speed-up (fold from 0 / snapshot), median", Median(ratios), "x", $"per point: {string.Join(" ", ratios.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))}");
        }
        result["time_travel_session"] = tt;

        // ---- snapshot interval sweep
        if (sweep.Count > 0) result["sweep"] = await SweepAsync(host, tt, sweep, z.Points, seed, ct);

        // ---- memory
        SampleMemory();
        using var proc = Process.GetCurrentProcess();
        Row("peak GC heap", peakHeap / 1048576.0, "MiB", $"allocated in total {GC.GetTotalAllocatedBytes() / 1048576.0:F0} MiB");
        Row("peak working set (process)", proc.PeakWorkingSet64 / 1048576.0, "MiB");
        result["machine"]!["load_average_end"] = LoadAverage();
        return result;
    }

    private static async Task<double> CopyCeilingAsync(SvaHost host, string session, string run, int repeats, CancellationToken ct)
    {
        var rows = new List<StoredEvent>();
        await foreach (var e in host.Store.ReadSessionAsync(session, 1, long.MaxValue, ct)) rows.Add(e);
        var table = $"bench_copy_{run}";
        await using var conn = await host.Store.DataSource.OpenConnectionAsync(ct);
        await Exec(conn, $"CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)", ct);
        try
        {
            var rates = new List<double>();
            for (var i = 0; i < repeats; i++)
            {
                await Exec(conn, $"TRUNCATE {table}", ct);
                var sw = Stopwatch.StartNew();
                foreach (var batch in rows.Chunk(8192))
                {
                    await using var tx = await conn.BeginTransactionAsync(ct);
                    await using (var imp = await conn.BeginBinaryImportAsync(
                        $"COPY {table} (position, session, seq, type, data, metadata, command_id, recorded_at, hash) FROM STDIN (FORMAT BINARY)", ct))
                    {
                        foreach (var e in batch)
                        {
                            await imp.StartRowAsync(ct);
                            await imp.WriteAsync(e.Position, NpgsqlDbType.Bigint, ct);
                            await imp.WriteAsync(e.Session, NpgsqlDbType.Text, ct);
                            await imp.WriteAsync(e.Seq, NpgsqlDbType.Bigint, ct);
                            await imp.WriteAsync(e.Type, NpgsqlDbType.Text, ct);
                            await imp.WriteAsync(e.DataJson, NpgsqlDbType.Jsonb, ct);
                            await imp.WriteAsync(e.MetadataJson, NpgsqlDbType.Jsonb, ct);
                            if (e.CommandId is Guid g) await imp.WriteAsync(g, NpgsqlDbType.Uuid, ct); else await imp.WriteNullAsync(ct);
                            await imp.WriteAsync(e.RecordedAt, NpgsqlDbType.TimestampTz, ct);
                            await imp.WriteAsync(e.Hash, NpgsqlDbType.Bytea, ct);
                        }
                        await imp.CompleteAsync(ct);
                    }
                    await tx.CommitAsync(ct);
                }
                rates.Add(rows.Count / sw.Elapsed.TotalSeconds);
            }
            return Median(rates);
        }
        finally
        {
            await Exec(conn, $"DROP TABLE IF EXISTS {table}", CancellationToken.None);
        }
    }

    private static async Task Exec(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<double>> LatencyAsync(SvaHost host, List<SourcedCall> calls, string kernel, string run, int n, CancellationToken ct)
    {
        var session = $"bench-lat-{run}";
        var handler = new RecordCallsHandler(host.Store);
        var setup = Math.Min(calls.Count / 2, 500);
        await handler.HandleAsync(new RecordCalls(session, kernel, "sva bench", calls.Take(setup).ToList(), 64), ct);
        var lat = new List<double>();
        foreach (var c in calls.Skip(setup).Take(n))
        {
            var sw = Stopwatch.StartNew();
            await handler.HandleAsync(new RecordCalls(session, kernel, "sva bench", [c], 1), ct);
            lat.Add(sw.Elapsed.TotalMilliseconds);
        }
        return lat;
    }

    private static List<long> RandomSeqs(long version, int n, ulong seed)
    {
        var rng = new SeededRandom(seed ^ 0x5eed);
        return Enumerable.Range(0, n).Select(_ => 1 + (long)(rng.NextUInt64() % (ulong)version)).ToList();
    }

    private static async Task<(List<double> Snap, List<double> Zero, List<double> Ratios)> TimeTravelAsync(SvaHost host, string session, long version,
        int points, int foldPoints, ulong seed, CancellationToken ct)
    {
        var seqs = RandomSeqs(version, points, seed);
        // Warm-up (JIT tiers, connection pool): the figures are those of a warm process, as in a server or the bench.
        foreach (var w in RandomSeqs(version, 8, seed + 99)) await TimeTravel.LoadAsync(host.Store, session, w, true, ct);
        var snap = new List<double>();
        var zero = new List<double>();
        var ratios = new List<double>();
        for (var i = 0; i < seqs.Count; i++)
        {
            var sw = Stopwatch.StartNew();
            var a = await TimeTravel.LoadAsync(host.Store, session, seqs[i], true, ct);
            var ms = sw.Elapsed.TotalMilliseconds;
            snap.Add(ms);
            if (i < foldPoints)
            {
                sw.Restart();
                var b = await TimeTravel.LoadAsync(host.Store, session, seqs[i], false, ct);
                var zms = sw.Elapsed.TotalMilliseconds;
                zero.Add(zms);
                ratios.Add(zms / ms);
                if (a.State.ToSnapshotJson() != b.State.ToSnapshotJson())
                    throw new InvalidOperationException($"time travel to seq {seqs[i]} of {session}: the snapshot path and the fold from 0 disagree");
            }
            SampleMemory();
        }
        return (snap, zero, ratios);
    }

    /// <summary>For each interval: rewrite the session's snapshots at that interval (timing serialize + save), then time travel at the random points.</summary>
    private static async Task<JsonArray> SweepAsync(SvaHost host, string session, List<int> intervals, int points, ulong seed, CancellationToken ct)
    {
        var events = new List<SvaEvent>();
        await foreach (var e in host.Store.ReadSessionAsync(session, 1, long.MaxValue, ct)) events.Add(EventCodec.Decode(e));
        var version = events.Count;
        var seqs = RandomSeqs(version, points, seed);
        var table = new JsonArray();
        try
        {
            foreach (var n in intervals)
            {
                var (count, bytes, seconds) = await WriteSnapshotsAsync(host, session, events, n, ct);
                var lat = new List<double>();
                foreach (var w in RandomSeqs(version, 4, seed + 99)) await TimeTravel.LoadAsync(host.Store, session, w, true, ct);
                foreach (var s in seqs)
                {
                    var sw = Stopwatch.StartNew();
                    await TimeTravel.LoadAsync(host.Store, session, s, true, ct);
                    lat.Add(sw.Elapsed.TotalMilliseconds);
                }
                table.Add(new JsonObject
                {
                    ["interval"] = n, ["snapshots"] = count, ["total_mib"] = R(bytes / 1048576.0, 1), ["average_kib"] = R(count == 0 ? 0 : bytes / 1024.0 / count, 0),
                    ["save_ms_per_snapshot"] = R(count == 0 ? 0 : seconds * 1000 / count, 1),
                    ["snapshot_cost_us_per_event"] = R(seconds * 1e6 / version, 2),
                    ["tt_median_ms"] = R(Median(lat), 1), ["tt_p95_ms"] = R(Percentile(lat, 0.95), 1),
                });
                SampleMemory();
            }
        }
        finally
        {
            await WriteSnapshotsAsync(host, session, events, RecordCallsHandler.DefaultSnapshotEvery, CancellationToken.None);
        }
        return table;
    }

    private static async Task<(int Count, long Bytes, double Seconds)> WriteSnapshotsAsync(SvaHost host, string session, List<SvaEvent> events, int every,
        CancellationToken ct)
    {
        await host.Store.DeleteSnapshotsAsync(session, ct);
        var s = new SvaState();
        var sw = new Stopwatch();
        int count = 0;
        long bytes = 0;
        foreach (var e in events)
        {
            Evolve.Apply(s, e);
            if (s.Seq % every == 0)
            {
                sw.Start();
                var json = s.ToSnapshotJson();
                await host.Store.SaveSnapshotAsync(session, s.Seq, json, ct);
                sw.Stop();
                count++;
                bytes += json.Length;
            }
        }
        return (count, bytes, sw.Elapsed.TotalSeconds);
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); }
        catch (IOException) { return "n/a"; }
        catch (UnauthorizedAccessException) { return "n/a"; }
    }

    private static async Task<JsonObject> Machine(SvaHost host, CancellationToken ct)
    {
        string cpu = "n/a";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "n/a";
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        string pg;
        await using (var conn = await host.Store.DataSource.OpenConnectionAsync(ct))
        await using (var cmd = new NpgsqlCommand("SELECT current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers') || ', synchronous_commit ' || current_setting('synchronous_commit')", conn))
            pg = (string)(await cmd.ExecuteScalarAsync(ct))!;
        return new JsonObject
        {
            ["cpu"] = cpu, ["cores"] = Environment.ProcessorCount,
            ["memory_gib"] = R(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1073741824.0, 1),
            ["os"] = RuntimeInformation.OSDescription, [".net"] = RuntimeInformation.FrameworkDescription,
            ["postgresql"] = pg, ["database"] = host.Store.Endpoint, ["load_average_start"] = LoadAverage(),
        };
    }

    private static void Render(JsonObject r)
    {
        var m = r["machine"]!;
        Output.Info($"machine: {m["cpu"]}, {m["cores"]} cores, {m["memory_gib"]} GiB, {m["os"]}, {m[".net"]}; PostgreSQL {m["postgresql"]} at {m["database"]}");
        Output.Info($"load average: start {m["load_average_start"]}, end {m["load_average_end"]}");
        var t = Output.Table("metric", "median", "unit", "detail");
        foreach (var row in r["rows"]!.AsArray())
            t.Row(row!["metric"], Convert.ToString(row["value"]!.GetValue<double>(), CultureInfo.InvariantCulture), row["unit"], row["detail"]);
        Output.Console.Write(t);
        if (r["sweep"] is JsonArray sweep)
        {
            var s = Output.Table("interval", "snapshots", "total MiB", "avg KiB", "save ms/snapshot", "cost µs/event", "tt median ms", "tt p95 ms");
            foreach (var x in sweep)
                s.Row(x!["interval"], x["snapshots"], x["total_mib"], x["average_kib"], x["save_ms_per_snapshot"], x["snapshot_cost_us_per_event"], x["tt_median_ms"], x["tt_p95_ms"]);
            Output.Console.Write(s);
        }
        Output.Info($"import: {r["import"]}");
    }
}
