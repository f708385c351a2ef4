using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Sva.Commands;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Generate;
using Sva.Formats.Import;
using Sva.Projections;
using Sva.Projections.Queries;

namespace Sva.Bench.Macro;

/// <summary>Sizes of one run.</summary>
public sealed record Sizes(long Events, long TtEvents, int Repeats, long PerCallEvents, int Points, int FoldPoints, int LatencyCalls, int Devices, int Mms, ulong Seed)
{
    /// <summary>Events between snapshots of the time-travel session (the recorder's policy; default <see cref="SnapshotPolicy.DefaultEvery"/>).</summary>
    public int SnapshotEvery { get; init; } = SnapshotPolicy.DefaultEvery;
    /// <summary>Only the time-travel rows (6, 6c), memory and the command-start rows (9): the read side, without the write-side rows.</summary>
    public bool ReadOnlyRows { get; init; }
    /// <summary>Only the rebuild rows (7, 7b) on the time-travel session (recorded first, row 6): the others are skipped.</summary>
    public bool RebuildOnly { get; init; }
}

/// <summary>
/// <c>./sva bench</c>: the macro benchmark, in one process against one PostgreSQL cluster, in a scratch database it
/// creates (sva_bench_&lt;random&gt;) and drops at the end. Throughputs are medians over the repeats.
/// </summary>
public static class Program
{
    private const string Usage = """
        usage: sva bench [--events N] [--tt-events N] [--repeats R] [--per-call-events N] [--seed S] [--snapshot-every N] [--read-side] [--rebuild] [--smoke] [--json]
          --events N           events of the generated workload recorded by each throughput row (default 200000)
          --tt-events N        events of the session time travel and the daemon rebuild are measured on (default 1000000)
          --repeats R          repeats of each throughput row; the median is reported (default 3)
          --per-call-events N  events of the workload the straightforward per-call row records (default 20000; it runs at
                               one SaveChanges per call, so the whole workload would take minutes per repeat)
          --seed S             workload seed (default 1)
          --snapshot-every N   events between snapshots of the time-travel session (default 1024, the recorder's policy)
          --read-side          only the read-side rows: time travel, provenance and snapshot load (6, 6b, 6c), memory, command
                               start and timeline (9); the recording, import, latency, rebuild and corpus rows are skipped
          --rebuild            only the rebuild rows (7: our fold rebuild, 7b: Marten's daemon rebuild, alternating) on the
                               time-travel session (--tt-events) and the warm-up session; the other rows are skipped
          --smoke              tiny sizes, one repeat, seconds: checks that every row runs
          --json               print the result as JSON (progress goes to stderr)
        The database: SVA_DB, else postgres-init/pg-up.sh; the benchmark works in a database of its own, dropped at the end.
        """;

    public static async Task<int> Main(string[] args)
    {
        Sizes z;
        bool json;
        try { (z, json) = Parse(args); }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"sva bench: {e.Message}\n{Usage}");
            return 2;
        }
        if (z is null) { Console.WriteLine(Usage); return 0; }

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        var ct = cts.Token;
        try
        {
            var baseCs = await LocalCluster.ResolveConnectionStringAsync(ct);
            var result = await ScratchDatabase.RunAsync(baseCs, cs => new Bench(cs, z).RunAsync(ct), ct);
            if (json) Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else Render(result);
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("sva bench: cancelled");
            return 130;
        }
        catch (LocalClusterException e)
        {
            await Console.Error.WriteLineAsync($"sva bench: no database: {e.Message}");
            return 3;
        }
    }

    private static (Sizes, bool) Parse(string[] args)
    {
        long events = 200_000, tt = 1_000_000, perCall = 20_000;
        int repeats = 3;
        ulong seed = 1;
        bool smoke = false, json = false, readSide = false, rebuildOnly = false;
        var snapshotEvery = SnapshotPolicy.DefaultEvery;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            long Num(long min)
            {
                var name = args[i];
                var v = Next();
                return long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min ? n
                    : throw new ArgumentException($"{name} {v}: expected a whole number of at least {min}");
            }
            switch (args[i])
            {
                case "--events": events = Num(100); break;
                case "--tt-events": tt = Num(100); break;
                case "--repeats": repeats = (int)Math.Min(Num(1), 100); break;
                case "--per-call-events": perCall = Num(10); break;
                case "--seed": seed = (ulong)Num(0); break;
                case "--snapshot-every": snapshotEvery = (int)Math.Min(Num(64), 1 << 24); break;
                case "--read-side": readSide = true; break;
                case "--rebuild": rebuildOnly = true; break;
                case "--smoke": smoke = true; break;
                case "--json": json = true; break;
                case "-h" or "--help": return (null!, false);
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        var z = smoke
            ? new Sizes(3_000, 8_000, 1, 1_500, 5, 2, 20, 6, 8, seed)
            : new Sizes(events, tt, repeats, Math.Min(perCall, events), 40, 5, 300, 16, 64, seed);
        return (z with { SnapshotEvery = snapshotEvery, ReadOnlyRows = readSide, RebuildOnly = rebuildOnly }, json);
    }

    private static void Render(JsonObject r)
    {
        var m = r["machine"]!;
        Console.WriteLine($"machine: {m["cpu"]}, {m["cores"]} cores, {m["memory_gib"]} GiB, {m["os"]}, {m[".net"]}");
        Console.WriteLine($"PostgreSQL {m["postgresql"]}; scratch database {m["database"]}");
        Console.WriteLine($"load average: start {m["load_average_start"]}, end {m["load_average_end"]}");
        var s = r["sizes"]!;
        Console.WriteLine($"sizes: events {s["events"]}, tt-events {s["tt_events"]}, repeats {s["repeats"]} (medians), workload {s["devices"]} devices / {s["mms"]} mms, seed {s["seed"]}");
        Console.WriteLine($"took {r["seconds"]} s");
        Console.WriteLine();
        var rows = r["rows"]!.AsArray().Select(x => (
            Metric: x!["metric"]!.GetValue<string>(),
            Value: Format(x["value"]!.GetValue<double>()),
            Unit: x["unit"]!.GetValue<string>(),
            Detail: x["detail"]!.GetValue<string>())).ToList();
        var w0 = Math.Max(6, rows.Max(x => x.Metric.Length));
        var w1 = Math.Max(6, rows.Max(x => x.Value.Length));
        var w2 = Math.Max(4, rows.Max(x => x.Unit.Length));
        Console.WriteLine($"{"metric".PadRight(w0)}  {"median".PadLeft(w1)}  {"unit".PadRight(w2)}  detail");
        Console.WriteLine($"{new string('-', w0)}  {new string('-', w1)}  {new string('-', w2)}  {new string('-', 6)}");
        foreach (var x in rows)
            Console.WriteLine($"{x.Metric.PadRight(w0)}  {x.Value.PadLeft(w1)}  {x.Unit.PadRight(w2)}  {x.Detail}".TrimEnd());
    }

    private static string Format(double v) =>
        Math.Abs(v) >= 100 ? v.ToString("N0", CultureInfo.InvariantCulture) : v.ToString("0.00", CultureInfo.InvariantCulture);
}

/// <summary>A database of the benchmark's own on the configured cluster, dropped at the end (also after a failure).</summary>
public static class ScratchDatabase
{
    public static async Task<T> RunAsync<T>(string baseConnectionString, Func<string, Task<T>> body, CancellationToken ct)
    {
        var name = "sva_bench_" + Guid.NewGuid().ToString("N")[..10];
        var admin = new NpgsqlConnectionStringBuilder(baseConnectionString) { Pooling = false };
        await Exec(admin.ConnectionString, $"CREATE DATABASE {name}", ct);
        try
        {
            var csb = new NpgsqlConnectionStringBuilder(baseConnectionString) { Database = name };
            return await body(csb.ConnectionString);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            try { await Exec(admin.ConnectionString, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)", CancellationToken.None); }
            catch (NpgsqlException e) { await Console.Error.WriteLineAsync($"sva bench: could not drop scratch database {name}: {e.Message}"); }
        }
    }

    private static async Task Exec(string cs, string sql, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}

/// <summary>One run of every row, on one scratch database.</summary>
public sealed class Bench(string cs, Sizes z)
{
    private const string Kernel = "6.8";
    private const int RecordBatchEvents = 2000;
    private const int TtBatchEvents = 8192;
    private const int PlainCallsPerSave = 100;

    private readonly JsonArray rows = [];
    private readonly Stopwatch total = Stopwatch.StartNew();

    private void Row(string metric, double value, string unit, string detail = "")
    {
        rows.Add(new JsonObject
        {
            ["metric"] = metric,
            ["value"] = double.IsFinite(value) ? Math.Round(value, Math.Abs(value) < 100 ? 3 : 0) : -1,
            ["unit"] = unit,
            ["detail"] = detail,
        });
        Progress($"{metric}: {value.ToString(Math.Abs(value) < 100 ? "0.00" : "N0", CultureInfo.InvariantCulture)} {unit}");
    }

    private void Progress(string text) => Console.Error.WriteLine($"[{total.Elapsed.TotalSeconds,6:F1}s] {text}");

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
        return a[Math.Clamp((int)Math.Ceiling(p * a.Length) - 1, 0, a.Length - 1)];
    }

    private static string Runs(IEnumerable<double> xs) => "runs: " + string.Join(" ", xs.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)));

    private static RecordCalls Record(string session, IReadOnlyList<SourcedCall> calls, int chunk) =>
        new(session, Kernel, "sva bench", calls, chunk) { OnRecorded = _ => ValueTask.CompletedTask };

    private static int ChunkFor(long events, int calls, int targetEvents) =>
        (int)Math.Max(1, Math.Round((double)targetEvents * calls / Math.Max(1, events)));

    public async Task<JsonObject> RunAsync(CancellationToken ct)
    {
        var result = new JsonObject
        {
            ["machine"] = null,
            ["sizes"] = new JsonObject
            {
                ["events"] = z.Events, ["tt_events"] = z.TtEvents, ["repeats"] = z.Repeats, ["per_call_events"] = z.PerCallEvents,
                ["points"] = z.Points, ["fold_points"] = z.FoldPoints, ["latency_calls"] = z.LatencyCalls,
                ["devices"] = z.Devices, ["mms"] = z.Mms, ["seed"] = z.Seed, ["snapshot_every"] = z.SnapshotEvery, ["read_side_only"] = z.ReadOnlyRows,
            },
            ["rows"] = rows,
        };
        await using var ds = NpgsqlDataSource.Create(cs);
        result["machine"] = await MachineAsync(ds, ct);
        Progress($"scratch database {new NpgsqlConnectionStringBuilder(cs).Database}: opening the stores");
        await using var store = await SvaStoreSetup.OpenAsync(cs, ct: ct);
        using var plain = await Straightforward.OpenAsync(cs, ct);
        using var alone = await MartenAlone.OpenAsync(cs, ct);

        // ---- the workload, in memory: the calls (for the recorder) and the events the generator decided for them
        var opts = new WorkloadOptions(z.Devices, z.Mms, z.Events, z.Seed, Kernel);
        var work = WorkloadGenerator.Generate(opts).ToList();
        var calls = work.Select(c => new SourcedCall(c.Call, $"bench.sva:{c.Line}")).ToList();
        var callEvents = work.Select(c => c.Events).ToList();
        var nEvents = callEvents.Sum(e => (long)e.Count);
        work = null;
        Progress($"workload: {calls.Count} calls, {nEvents} events ({(double)nEvents / calls.Count:F2} events per call)");

        // Warm-up (JIT, connection pools, Marten's first-use compilation) outside the timed runs.
        var warm = Math.Min(calls.Count, 300);
        await new RecordCallsHandler(store).Handle(Record("bench-warm", calls.Take(warm).ToList(), 16), ct);
        await plain.RecordAsync("plain-warm", callEvents.Take(warm).ToList(), 10, ct);

        if (!z.ReadOnlyRows && !z.RebuildOnly)
        {
            // ---- 1. recording through our recorder
            var chunk = ChunkFor(nEvents, calls.Count, RecordBatchEvents);
            var recording = new List<double>();
            var viaFunction = new List<double>();
            var profSeconds = new Dictionary<string, double>();
            long profEvents = 0, profBatches = 0;
            var copyMin = MartenEventStore.CopyAppendMinEvents;
            for (var i = 0; i < z.Repeats; i++)
            {
                // the default append path, and alternately before or after it every append through Marten's append function
                // (mt_quick_append_events, CopyAppendMinEvents = 0): the in-run comparison of the COPY path
                for (var k = 0; k < 2; k++)
                {
                    var isDefault = (k == 0) == (i % 2 == 0);
                    var session = isDefault ? $"bench-rec-{i + 1}" : $"bench-rec-fn-{i + 1}";
                    MartenEventStore.CopyAppendMinEvents = isDefault ? copyMin : 0;
                    AppendProfile.Reset();
                    var sw = Stopwatch.StartNew();
                    RecordResult r;
                    try { r = await new RecordCallsHandler(store).Handle(Record(session, calls, chunk), ct); }
                    finally { MartenEventStore.CopyAppendMinEvents = copyMin; }
                    (isDefault ? recording : viaFunction).Add(nEvents / sw.Elapsed.TotalSeconds);
                    if (r.LastSeq != nEvents) throw new InvalidOperationException($"{session}: recorded {r.LastSeq} events, the workload has {nEvents}");
                    if (!isDefault) continue;
                    var p = AppendProfile.Read();
                    profEvents += p.Events;
                    profBatches += p.Batches;
                    foreach (var (stage, sec, _) in p.Stages) profSeconds[stage] = profSeconds.GetValueOrDefault(stage) + sec;
                }
            }
            var rec = Median(recording);
            Row("1. recording: RecordCallsHandler (decide + append + hash chain + snapshots; read model async)", rec, "events/s",
                $"{nEvents} events, {calls.Count} calls, {chunk} calls (~{nEvents * chunk / calls.Count} events) per append, appends of {copyMin}+ events by COPY; {Runs(recording)}");
            foreach (var (stage, sec) in profSeconds)
                Row($"   recording profile: {stage}", profEvents == 0 ? 0 : sec * 1e6 / profEvents, "µs/event", $"summed over the {z.Repeats} runs ({profEvents} events, {profBatches} appends); Stopwatch counters of the append path (AppendProfile)");
            Row("   recording with every append through Marten's append function (mt_quick_append_events)", Median(viaFunction), "events/s",
                $"the same workload, alternated with the runs above; {Runs(viaFunction)}");
            Row("   recording: COPY path / Marten's append function", rec / Median(viaFunction), "ratio");

            // ---- 2. the straightforward Marten usage, on the same events
            var perCallCount = 0;
            for (long n = 0; perCallCount < callEvents.Count && n < z.PerCallEvents; perCallCount++) n += callEvents[perCallCount].Count;
            var perCallCalls = callEvents.Take(perCallCount).ToList();
            var perCallEvents = perCallCalls.Sum(e => (long)e.Count);
            var plainA = new List<double>();
            var plainB = new List<double>();
            for (var i = 0; i < z.Repeats; i++)
            {
                plainA.Add(perCallEvents / await plain.RecordAsync($"plain-a-{i + 1}", perCallCalls, 1, ct));
                plainB.Add(nEvents / await plain.RecordAsync($"plain-b-{i + 1}", callEvents, PlainCallsPerSave, ct));
            }
            var pa = Median(plainA);
            var pb = Median(plainB);
            Row("2a. straightforward Marten: FetchForWriting + append + SaveChanges per call (inline projection)", pa, "events/s",
                $"{perCallEvents} events, {perCallCount} calls (the first of the workload); {Runs(plainA)}");
            Row($"2b. straightforward Marten: the same, {PlainCallsPerSave} calls per SaveChanges", pb, "events/s",
                $"{nEvents} events, ~{nEvents * PlainCallsPerSave / calls.Count} events per SaveChanges; {Runs(plainB)}");

            // ---- 3. the ceiling: raw binary COPY of the recorded rows
            var (copy, copyRuns, recBytes) = await CopyCeilingAsync(ds, "bench-rec-1", ct);
            Row("3. raw binary COPY of the same rows into a scratch table (ceiling)", copy, "events/s",
                $"mt_events' columns and indexes, 8192 rows per transaction, {recBytes:F0} bytes of data+headers per event; {Runs(copyRuns)}");
            Row("   recording / raw COPY", rec / copy, "ratio", "target >= 0.25");
            Row($"   recording / straightforward ({PlainCallsPerSave} calls per SaveChanges)", rec / pb, "ratio", "target >= 1.5");
            Row("   recording / straightforward (per call)", rec / pa, "ratio");

            // ---- 2c. Marten alone: quick append of the same events, 2,000 per SaveChanges, no projection, none of our layers
            var flat = callEvents.SelectMany(e => e).ToList();
            var aloneRuns = new List<double>();
            for (var i = 0; i < z.Repeats; i++) aloneRuns.Add(nEvents / await alone.QuickAppendAsync($"alone-{i + 1}", flat, 2000, ct));
            var al = Median(aloneRuns);
            Row("2c. Marten alone: quick append, 2,000 per SaveChanges, no projection", al, "events/s", $"{nEvents} events; {Runs(aloneRuns)}");
            Row("   recording / Marten alone", rec / al, "ratio", "our overhead over Marten's own append (decide, hash chain, snapshots, idempotency)");

            // ---- 4. import of a synthetic ftrace capture
            var importLines = (int)Math.Max(200, nEvents * 10 / 27);
            var capture = new StringWriter();
            SyntheticCapture.WriteFtrace(capture, importLines, "sva bench");
            var text = capture.ToString();
            var importLineRates = new List<double>();
            var importEventRates = new List<double>();
            string? imported = null;
            long importedEvents = 0;
            for (var i = 0; i < z.Repeats; i++)
            {
                var res = await new ImportCaptureHandler(store).ImportAsync(new StringReader(text), $"bench-{i + 1}.trace",
                    new ImportOptions { Kernel = Kernel, Format = "ftrace", Session = $"bench-imp-{i + 1}", ContentHash = $"bench-import-{i + 1}" }, ct);
                if (res.AlreadyImported || res.Events == 0) throw new InvalidOperationException($"import {i + 1}: nothing was imported");
                importLineRates.Add(res.Lines / res.Seconds);
                importEventRates.Add(res.Events / res.Seconds);
                imported = res.Session;
                importedEvents = res.Events;
            }
            var (importCopy, _, impBytes) = await CopyCeilingAsync(ds, imported!, ct);
            var imp = Median(importEventRates);
            Row("4. import: ImportCaptureHandler.ImportAsync of a synthetic ftrace capture", Median(importLineRates), "lines/s",
                $"{importLines} lines -> {importedEvents} events; {Runs(importLineRates)}");
            Row("   import: events recorded", imp, "events/s", Runs(importEventRates));
            Row("   raw binary COPY of the imported rows (ceiling)", importCopy, "events/s", $"{impBytes:F0} bytes of data+headers per event");
            Row("   import / raw COPY", imp / importCopy, "ratio", "target >= 0.4");
            var bulkRuns = new List<double>();
            for (var i = 0; i < z.Repeats; i++) bulkRuns.Add(nEvents / await alone.BulkInsertAsync($"bulk-{i + 1}", flat, ct));
            var bulk = Median(bulkRuns);
            Row("   Marten's bulk path: BulkInsertEventsAsync (COPY), the workload's events", bulk, "events/s", $"{nEvents} events, 8192 per COPY batch; {Runs(bulkRuns)}");
            Row("   import / Marten bulk path", imp / bulk, "ratio");
            Row("   Marten bulk path / raw COPY", bulk / importCopy, "ratio");

            // ---- 5. per-call latency: one call per RecordCalls (ChunkSize 1) on a fresh session. Two variants of the append,
            // alternated call by call (and which goes first alternates too, so neither gains from order or a warmer cache):
            // one round trip (MartenEventStore.OneRoundTripAppends, the default) and every append through a Marten session
            // (BEGIN + statements, then COMMIT: two round trips), each on its own session.
            var (lat, viaSession, callProf) = await LatencyPairAsync(store, calls, ct);
            var (fast, slow) = MartenEventStore.OneRoundTripAppends ? (lat, viaSession) : (viaSession, lat);
            Row("5. per-call latency p50 (RecordCalls of one call, ChunkSize 1)", Median(lat), "ms",
                $"{lat.Count} calls on a fresh session after {Math.Min(calls.Count / 2, 500)} set-up calls, the default append path ({(MartenEventStore.OneRoundTripAppends ? "one round trip" : "a Marten session")}); target p50 <= 1 ms");
            Row("   per-call latency p95", Percentile(lat, 0.95), "ms");
            Row("   per-call latency p50 / target 1 ms", Median(lat) / 1.0, "ratio", "target <= 1");
            // Where one call's time goes: the append path's stages per call (means), and the machine's round-trip floor.
            var perAppend = callProf.Batches == 0 ? 0 : 1e3 / callProf.Batches;
            foreach (var (stage, sec) in callProf.Stages.Where(x => x.Seconds > 0))
                Row($"   per-call profile: {stage}", sec * perAppend, "ms/call", $"mean over {callProf.Batches} appends of the default path; AppendProfile");
            Row("   per-call profile: handler and recorder (mean latency - append stages)", lat.Average() - callProf.Stages.Sum(x => x.Seconds) * perAppend, "ms/call");
            Row("   per-call latency p50, one round trip", Median(fast), "ms", $"p95 {Percentile(fast, 0.95):F2} ms");
            Row("   per-call latency p50, appends through a Marten session", Median(slow), "ms", $"p95 {Percentile(slow, 0.95):F2} ms; the same calls on a session of its own, alternated with the other");
            Row("   per-call p50: one round trip / Marten session", Median(fast) / Median(slow), "ratio", "< 1: the one round trip is faster");
            var rtt = await RoundTripAsync(cs, 300, ct);
            Row("   round trip floor: SELECT 1 on an open connection, p50", Median(rtt), "ms", $"p95 {Percentile(rtt, 0.95):F3} ms; {rtt.Count} queries");
            var txn = await CommitRoundTripAsync(cs, 300, ct);
            Row("   BEGIN + one-row INSERT + COMMIT on an open connection (two round trips), p50", Median(txn), "ms", $"p95 {Percentile(txn, 0.95):F3} ms; a scratch table");
        }

        // ---- 6. time travel on a big session recorded in big batches
        var tt = "bench-tt";
        var (ttRate, ttVersion) = await RecordBigAsync(store, tt, ct);
        Row("6. recording the time-travel session (generate + RecordCallsHandler, ~8192 events per append)", ttRate, "events/s",
            $"{ttVersion} events, one run; a snapshot every {z.SnapshotEvery} events");
        if (!z.RebuildOnly)
        {
            var snaps = await store.ListSnapshotsAsync(tt, ct);
            var (withSnap, fromZero, foldSeqs) = await TimeTravelAsync(store, tt, ttVersion, ct);
            Row("   time travel p50: TimeTravel.LoadAsync (trusted snapshot + tail)", Median(withSnap), "ms",
                $"{withSnap.Count} random seqs of {ttVersion}; {snaps.Count} snapshots, {snaps.Select(s => (double)s.Bytes).DefaultIfEmpty().Average() / 1024:F0} KiB average");
            Row("   time travel p95", Percentile(withSnap, 0.95), "ms", "target <= 20 ms");
            Row("   time travel p95 / target 20 ms", Percentile(withSnap, 0.95) / 20.0, "ratio", "target <= 1");
            Row("   fold from seq 0 (TimeTravel.LoadAsync without snapshots), median", Median(fromZero), "ms",
                $"{fromZero.Count} of the same seqs: {string.Join(" ", foldSeqs)}");
            Row("   fold from 0 / snapshot + tail (medians)", Median(fromZero) / Median(withSnap), "x");

            // ---- 6c. one snapshot's load, the old encoding (zstd JSON, 1) against the new one (zstd MemoryPack, 2), same state
            await SnapshotLoadAsync(store, tt, snaps, ct);

        }

        {
            // ---- 6b. provenance (issue 18): sva state --blame and sva why at random seqs of the time-travel session
            if (!z.RebuildOnly)
            {
                var (blameMs, logOnlyMs, whyMs, blameRows, blameSeqs, blameCarried) = await ProvenanceAsync(store, tt, ttVersion, ct);
                Row("   blame p50: Blame.LoadAsync + ResolveAsync of every row (sva state --blame)", Median(blameMs), "ms",
                    $"{blameMs.Count} random seqs of {ttVersion}; {blameRows:F0} rows, {blameSeqs:F0} distinct set-at seqs on average, {blameCarried:F0} of them carried by the snapshot");
                Row("   blame p95", Percentile(blameMs, 0.95), "ms", "target <= 50 ms");
                Row("   blame from the log alone (snapshots' set-at events unused), p50", Median(logOnlyMs), "ms",
                    $"p95 {Percentile(logOnlyMs, 0.95):F1} ms; the same seqs, alternated with the rows above");
                Row("   why p50: Blame.LoadAsync + WhyAsync of a PASID table entry, else an mm (sva why)", Median(whyMs), "ms", $"{whyMs.Count} random seqs");
                Row("   why p95", Percentile(whyMs, 0.95), "ms", "target <= 50 ms");
            }

            // ---- 7. rebuild of the read model over the whole database: ours (each session folded from the plain-SQL read up to
            // Marten's high-water mark, the final rows written with one COPY in the checkpoint's transaction) against Marten's
            // daemon rebuild (its per-event pipeline), alternating in the same run on the same database.
            var all = await ScalarAsync<long>(ds, "SELECT count(*) FROM public.mt_events", ct);
            var head = await ScalarAsync<long>(ds, "SELECT coalesce(max(seq_id), 0) FROM public.mt_events", ct);
            var rebuild = new List<double>();
            var daemonRebuild = new List<double>();
            var folds = new List<FoldRebuildResult>();
            ProjectionProfile.Reset();
            for (var i = 0; i < z.Repeats; i++)
            {
                foreach (var ours in i % 2 == 0 ? new[] { true, false } : [false, true])
                {
                    var sw = Stopwatch.StartNew();
                    if (ours)
                    {
                        var r = await ReadModel.RebuildAsync(store, ct: ct);
                        rebuild.Add(all / sw.Elapsed.TotalSeconds);
                        folds.Add(r);
                        if (r.Checkpoint != head || r.Events != all)
                            throw new InvalidOperationException($"the rebuild folded {r.Events} events up to {r.Checkpoint}; the log has {all} up to {head}");
                    }
                    else
                    {
                        await store.RebuildProjectionAsync(SvaReadModelProjection.ProjectionName, TimeSpan.FromMinutes(30), ct);
                        daemonRebuild.Add(all / sw.Elapsed.TotalSeconds);
                    }
                }
            }
            Row($"7. rebuild: ReadModel.RebuildAsync (sva projections rebuild {SvaReadModelProjection.ProjectionName})", Median(rebuild), "events/s",
                $"{all} events of every session in the database; {Runs(rebuild)}; target >= 150,000");
            Row("   rebuild / target 150,000", Median(rebuild) / 150_000, "ratio", "target >= 1");
            Row("   rebuild profile: Marten's high-water detection", Median(folds.Select(f => f.CeilingTime.TotalMilliseconds)), "ms", "median");
            Row("   rebuild profile: read + fold, per event", Median(folds.Select(f => f.FoldTime.TotalMilliseconds * 1000 / Math.Max(1, f.Events))), "µs/event",
                $"{folds[0].Sessions} sessions; one task reads, one folds");
            Row("   rebuild profile: write (checkpoint, DELETE, COPY of the final rows)", Median(folds.Select(f => f.WriteTime.TotalMilliseconds)), "ms",
                $"{folds[0].Documents} rows");
            Row($"7b. daemon rebuild: RebuildProjectionAsync(\"{SvaReadModelProjection.ProjectionName}\") (sva projections rebuild --with-daemon)", Median(daemonRebuild), "events/s",
                $"{all} events; {Runs(daemonRebuild)}; alternating with row 7");
            Row("   rebuild / daemon rebuild", Median(rebuild) / Median(daemonRebuild), "ratio", "same run, alternating");
            {
                var (pe, pages, adapt, apply, writes) = ProjectionProfile.Read();
                var wall = Median(daemonRebuild) > 0 ? 1e6 / Median(daemonRebuild) : 0;
                Row("   daemon rebuild profile: adapter (Marten events -> ProjectedEvent)", pe == 0 ? 0 : adapt * 1e6 / pe, "µs/event", $"{pe} events in {pages} pages over the {z.Repeats} rebuilds; ProjectionProfile");
                Row("   daemon rebuild profile: projections' apply (fold + documents)", pe == 0 ? 0 : apply * 1e6 / pe, "µs/event", "");
                Row("   daemon rebuild profile: documents stored or deleted per event", pe == 0 ? 0 : (double)writes / pe, "ratio", $"{writes} document writes");
                Row("   daemon rebuild profile: wall per event", wall, "µs/event", "the rest is Marten's: load + deserialize the page, store the documents, progress");
            }

            if (!z.RebuildOnly)
            {
                // ---- corpus triage (issue 17): the workload's calls re-decided in memory under two versions in lockstep
                // (Lockstep, as 'sva compare --corpus' does per session), one session per core.
                {
                    var corpusA = KernelVersions.Get("6.7");
                    var corpusB = KernelVersions.Get("6.8-rc1");
                    var sourced = calls.Select(c => new SourcedKernelCall(c.Call, c.Source, null)).ToList();
                    var sessions = Environment.ProcessorCount * 2;
                    var rates = new List<double>();
                    for (var rep = 0; rep < z.Repeats; rep++)
                    {
                        var sw = Stopwatch.StartNew();
                        Parallel.For(0, sessions, _ =>
                        {
                            var l = new Lockstep(corpusA, corpusB);
                            foreach (var c in sourced) l.Feed(c);
                        });
                        rates.Add((double)sourced.Count * sessions / sw.Elapsed.TotalSeconds);
                    }
                    Row("corpus: calls re-decided under two versions (6.7 vs 6.8-rc1, lockstep, all cores)", Median(rates), "calls/s",
                        $"{sessions} copies of the {sourced.Count}-call workload on {Environment.ProcessorCount} cores; each call decided under both; {Runs(rates)}");
                }
            }
        }

        // ---- 8. memory
        using (var proc = Process.GetCurrentProcess())
            Row("8. peak RSS (Process.PeakWorkingSet64)", proc.PeakWorkingSet64 / 1048576.0, "MiB",
                $"peak GC heap {GC.GetGCMemoryInfo().HeapSizeBytes / 1048576.0:F0} MiB now, {GC.GetTotalAllocatedBytes() / 1048576.0:F0} MiB allocated in total");

        // ---- 9. command start and the timeline (issue 15, read side): the CLI run as a user runs it, a process per command
        if (!z.RebuildOnly)
        {
            var small = "bench-start";
            await new RecordCallsHandler(store).Handle(Record(small, calls.Take(Math.Min(calls.Count, 40)).ToList(), 16), ct);
            var smallSeq = (await store.GetSessionAsync(small, ct))!.Version;
            var startRuns = z.Repeats < 3 ? 3 : 5;
            var starts = await Sva.Bench.Macro.CommandStart.MeasureAsync(cs,
                [["kernels"], ["sessions"], ["state", small, "--at", (smallSeq / 2).ToString(CultureInfo.InvariantCulture)], ["log", small]], startRuns, ct);
            foreach (var t in starts)
                Row($"9. command start: ./sva {t.Command} (wall, process start to exit)", t.MedianSeconds, "s",
                    $"median of {t.Runs.Length}; {string.Join(" ", t.Runs.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}{(t.Command == "kernels" ? "; no database" : "; target <= 0.3 s")}");
            // A timeline page of the last 20,000 events of the time-travel session: from the nearest snapshot, and from event 1.
            var from = Math.Max(1, ttVersion - 19_999);
            var page = Path.Combine(Path.GetTempPath(), $"sva-bench-timeline-{Environment.ProcessId}.html");
            try
            {
                foreach (var (label, extra) in new[] { ("from the nearest snapshot", Array.Empty<string>()), ("from event 1 (--no-snapshots)", ["--no-snapshots"]) })
                {
                    var (sec, exit, err) = await Sva.Bench.Macro.CommandStart.SvaAsync(cs, ["timeline", tt, "-o", page, "--from", from.ToString(CultureInfo.InvariantCulture), "-v", .. extra], ct);
                    if (exit != 0) throw new InvalidOperationException($"timeline: exit {exit}: {err}");
                    Row($"   timeline page of seqs {from}..{ttVersion} of {ttVersion}, {label}", sec, "s", err.Trim().Replace('\n', ' ') + (extra.Length == 0 ? "; target <= 10 s" : ""));
                }
            }
            finally { File.Delete(page); }
        }

        result["machine"]!["load_average_end"] = LoadAverage();
        result["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1);
        return result;
    }

    // ------------------------------------------------------------------ COPY ceiling

    /// <summary>Binary COPY of a session's stored rows (as Marten wrote them: mt_events' columns) into a scratch table with
    /// mt_events' columns and indexes, 8192 rows per transaction. Returns the median rows/s and the data+headers size.</summary>
    private async Task<(double Median, List<double> Runs, double BytesPerEvent)> CopyCeilingAsync(NpgsqlDataSource ds, string session, CancellationToken ct)
    {
        var rows = new List<(long Seq, Guid Id, string Stream, long Version, string Data, string Type, DateTimeOffset Ts, string Tenant, string? DotNet, string? Headers)>();
        await using (var cmd = ds.CreateCommand(
            "SELECT seq_id, id, stream_id, version, data::text, type, timestamp, tenant_id, mt_dotnet_type, headers::text FROM public.mt_events WHERE stream_id = $1 ORDER BY version"))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = session });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                rows.Add((r.GetInt64(0), r.GetGuid(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetString(5), r.GetFieldValue<DateTimeOffset>(6),
                    r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9)));
        }
        if (rows.Count == 0) throw new InvalidOperationException($"no rows stored for {session}");
        var bytes = rows.Average(x => (double)x.Data.Length + (x.Headers?.Length ?? 0));
        const string table = "bench_copy";
        await using var conn = await ds.OpenConnectionAsync(ct);
        await Exec(conn, $"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE public.mt_events INCLUDING DEFAULTS INCLUDING INDEXES)", ct);
        try
        {
            var rates = new List<double>();
            for (var i = 0; i < z.Repeats; i++)
            {
                await Exec(conn, $"TRUNCATE {table}", ct);
                var sw = Stopwatch.StartNew();
                foreach (var batch in rows.Chunk(8192))
                {
                    await using var tx = await conn.BeginTransactionAsync(ct);
                    await using (var w = await conn.BeginBinaryImportAsync(
                        $"COPY {table} (seq_id, id, stream_id, version, data, type, timestamp, tenant_id, mt_dotnet_type, headers, is_archived) FROM STDIN (FORMAT BINARY)", ct))
                    {
                        foreach (var e in batch)
                        {
                            await w.StartRowAsync(ct);
                            await w.WriteAsync(e.Seq, NpgsqlDbType.Bigint, ct);
                            await w.WriteAsync(e.Id, NpgsqlDbType.Uuid, ct);
                            await w.WriteAsync(e.Stream, NpgsqlDbType.Varchar, ct);
                            await w.WriteAsync(e.Version, NpgsqlDbType.Bigint, ct);
                            await w.WriteAsync(e.Data, NpgsqlDbType.Jsonb, ct);
                            await w.WriteAsync(e.Type, NpgsqlDbType.Varchar, ct);
                            await w.WriteAsync(e.Ts, NpgsqlDbType.TimestampTz, ct);
                            await w.WriteAsync(e.Tenant, NpgsqlDbType.Varchar, ct);
                            if (e.DotNet is null) await w.WriteNullAsync(ct); else await w.WriteAsync(e.DotNet, NpgsqlDbType.Varchar, ct);
                            if (e.Headers is null) await w.WriteNullAsync(ct); else await w.WriteAsync(e.Headers, NpgsqlDbType.Jsonb, ct);
                            await w.WriteAsync(false, NpgsqlDbType.Boolean, ct);
                        }
                        await w.CompleteAsync(ct);
                    }
                    await tx.CommitAsync(ct);
                }
                rates.Add(rows.Count / sw.Elapsed.TotalSeconds);
            }
            return (Median(rates), rates, bytes);
        }
        finally
        {
            await Exec(conn, $"DROP TABLE IF EXISTS {table}", CancellationToken.None);
        }
    }

    // ------------------------------------------------------------------ latency

    /// <summary>Per-call latency of the default append path and of the other one (<see cref="MartenEventStore.OneRoundTripAppends"/>
    /// flipped), each on a session of its own, alternated call by call with the order alternating too; the append profile of the
    /// default path's calls only.</summary>
    private async Task<(List<double> Default, List<double> Other, (long Batches, List<(string Stage, double Seconds)> Stages) Profile)> LatencyPairAsync(
        IEventStore store, List<SourcedCall> calls, CancellationToken ct)
    {
        var dflt = MartenEventStore.OneRoundTripAppends;
        var (a, b) = (new RecordCallsHandler(store), new RecordCallsHandler(store));
        var setup = Math.Min(calls.Count / 2, 500);
        var stages = new Dictionary<string, double>();
        long batches = 0;
        try
        {
            MartenEventStore.OneRoundTripAppends = dflt;
            await a.Handle(Record("bench-lat", calls.Take(setup).ToList(), 64), ct);
            MartenEventStore.OneRoundTripAppends = !dflt;
            await b.Handle(Record("bench-lat-other", calls.Take(setup).ToList(), 64), ct);
            var (la, lb) = (new List<double>(), new List<double>());
            var i = 0;
            foreach (var c in calls.Skip(setup).Take(z.LatencyCalls))
            {
                var first = i++ % 2 == 0;
                for (var k = 0; k < 2; k++)
                {
                    var isDefault = (k == 0) == first;
                    MartenEventStore.OneRoundTripAppends = isDefault ? dflt : !dflt;
                    AppendProfile.Reset();
                    var sw = Stopwatch.StartNew();
                    await (isDefault ? a : b).Handle(Record(isDefault ? "bench-lat" : "bench-lat-other", [c], 1), ct);
                    (isDefault ? la : lb).Add(sw.Elapsed.TotalMilliseconds);
                    if (!isDefault) continue;
                    var p = AppendProfile.Read();
                    batches += p.Batches;
                    foreach (var (stage, sec, _) in p.Stages) stages[stage] = stages.GetValueOrDefault(stage) + sec;
                }
            }
            return (la, lb, (batches, stages.Select(kv => (kv.Key, kv.Value)).ToList()));
        }
        finally { MartenEventStore.OneRoundTripAppends = dflt; }
    }

    /// <summary>The latency floor of the machine: one-statement round trips on an open connection.</summary>
    private static async Task<List<double>> RoundTripAsync(string cs, int n, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("SELECT 1", conn);
        for (var i = 0; i < 20; i++) await cmd.ExecuteScalarAsync(ct);
        var list = new List<double>(n);
        for (var i = 0; i < n; i++)
        {
            var sw = Stopwatch.StartNew();
            await cmd.ExecuteScalarAsync(ct);
            list.Add(sw.Elapsed.TotalMilliseconds);
        }
        return list;
    }

    /// <summary>A write transaction's floor: BEGIN (sent with the INSERT) and COMMIT, two round trips, on an open connection.</summary>
    private static async Task<List<double>> CommitRoundTripAsync(string cs, int n, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync(ct);
        var table = $"bench_rtt_{Environment.ProcessId}";
        await using (var c = new NpgsqlCommand($"CREATE TEMP TABLE {table} (id bigint, v text)", conn)) await c.ExecuteNonQueryAsync(ct);
        var list = new List<double>(n);
        for (var i = -20; i < n; i++)
        {
            var sw = Stopwatch.StartNew();
            await using (var tx = await conn.BeginTransactionAsync(ct))
            {
                await using (var c = new NpgsqlCommand($"INSERT INTO {table} VALUES ($1, 'x')", conn, tx) { Parameters = { new NpgsqlParameter<long> { TypedValue = i } } })
                    await c.ExecuteNonQueryAsync(ct);
                await tx.CommitAsync(ct);
            }
            if (i >= 0) list.Add(sw.Elapsed.TotalMilliseconds);
        }
        return list;
    }

    // ------------------------------------------------------------------ time travel

    /// <summary>Generates the --tt-events workload lazily and records it in slices (bounded memory), ~8192 events per append.</summary>
    private async Task<(double Rate, long Version)> RecordBigAsync(IEventStore store, string session, CancellationToken ct)
    {
        var opts = new WorkloadOptions(z.Devices, z.Mms, z.TtEvents, z.Seed + 1, Kernel);
        var handler = new RecordCallsHandler(store);
        var sw = Stopwatch.StartNew();
        long events = 0, last = 0;
        var slice = new List<SourcedCall>(65536);
        long sliceEvents = 0;
        async Task Flush()
        {
            if (slice.Count == 0) return;
            var r = await handler.Handle(Record(session, slice, ChunkFor(sliceEvents, slice.Count, TtBatchEvents)) with { SnapshotEvery = z.SnapshotEvery }, ct);
            last = r.LastSeq;
            slice = new List<SourcedCall>(65536);
            sliceEvents = 0;
            Progress($"time-travel session: {last} events");
        }
        foreach (var c in WorkloadGenerator.Generate(opts))
        {
            slice.Add(new SourcedCall(c.Call, $"bench-tt.sva:{c.Line}"));
            sliceEvents += c.Events.Count;
            events += c.Events.Count;
            if (sliceEvents >= 100_000) await Flush();
        }
        await Flush();
        if (last != events) throw new InvalidOperationException($"{session}: recorded {last} events, the workload has {events}");
        return (events / sw.Elapsed.TotalSeconds, last);
    }

    /// <summary>Row 6c: the load of one snapshot (the session's last), warm, median of 30: the whole read (LoadSnapshotAsync: one
    /// round trip, decompress, SHA-256 against the log's digest) + decode; and, in memory on the same state, the two encodings'
    /// decompress + SHA-256 + decode, with their sizes.</summary>
    private async Task SnapshotLoadAsync(IEventStore store, string session, IReadOnlyList<(long Seq, long Bytes)> snaps, CancellationToken ct)
    {
        if (snaps.Count == 0) { Row("6c. snapshot load: no snapshot in the time-travel session", double.NaN, "ms"); return; }
        var last = snaps[^1];
        const int n = 30;
        var whole = new List<double>();
        SvaState? state = null;
        for (var i = 0; i < n + 3; i++)
        {
            var sw = Stopwatch.StartNew();
            var loaded = await store.LoadSnapshotAsync(session, last.Seq, ct) ?? throw new InvalidOperationException($"{session}: snapshot at {last.Seq} did not load");
            state = StateSnapshot.Decode(loaded) ?? throw new InvalidOperationException($"{session}: snapshot at {last.Seq} did not decode");
            if (i >= 3) whole.Add(sw.Elapsed.TotalMilliseconds);
        }
        var json = new SnapshotToSave(state!.Seq, state.ToSnapshotJson());
        var pack = StateSnapshot.Take(state);
        // The two encodings are measured interleaved (old, new, old, new, ...): on a loaded machine both see the same load.
        var stores = new[] { json, pack }.Select(s => s.Compressed()).ToArray();
        var decodeRuns = new[] { new List<double>(), new List<double>() };
        for (var i = 0; i < n + 3; i++)
            for (var k = 0; k < 2; k++)
            {
                var s = k == 0 ? json : pack;
                var sw = Stopwatch.StartNew();
                var payload = SnapshotCodec.Decompress(s.Encoding, stores[k])!;
                var digest = SnapshotCodec.Digest(payload);
                var back = StateSnapshot.Decode(new LoadedSnapshot(s.Seq, s.Encoding, payload));
                if (back is null || digest != s.Digest) throw new InvalidOperationException($"snapshot encoding {s.Encoding} did not round-trip");
                if (i >= 3) decodeRuns[k].Add(sw.Elapsed.TotalMilliseconds);
            }
        var (jsonMs, jsonBytes) = (Median(decodeRuns[0]), (long)stores[0].Length);
        var (packMs, packBytes) = (Median(decodeRuns[1]), (long)stores[1].Length);
        var rowsInState = state.Devices.Count + state.Mms.Count + state.Domains.Count + state.Handles.Count + state.SetAt.Count;
        Row("6c. snapshot load: LoadSnapshotAsync + StateSnapshot.Decode of the last snapshot (as time travel does it)", Median(whole), "ms",
            $"seq {last.Seq}, {last.Bytes / 1024.0:F0} KiB stored; median of {n}, warm");
        Row("   snapshot decode, old encoding (zstd JSON): decompress + SHA-256 + parse", jsonMs, "ms",
            $"{jsonBytes / 1024.0:F0} KiB stored, {json.Payload.Length / 1024.0:F0} KiB JSON; {rowsInState} rows+provenance entries; median of {n}, interleaved with the new");
        Row("   snapshot decode, new encoding (zstd MemoryPack): decompress + SHA-256 + decode", packMs, "ms",
            $"{packBytes / 1024.0:F0} KiB stored, {pack.Payload.Length / 1024.0:F0} KiB MemoryPack; median of {n}");
        Row("   snapshot decode old / new", jsonMs / packMs, "x", $"stored size old / new {(double)jsonBytes / packBytes:F2}");
    }

    private async Task<(List<double> Snap, List<double> Zero, List<long> FoldSeqs)> TimeTravelAsync(IEventStore store, string session, long version,
        CancellationToken ct)
    {
        var rng = new SeededRandom(z.Seed ^ 0x5eed);
        long Pick() => 1 + (long)(rng.NextUInt64() % (ulong)version);
        // Warm-up: the figures are those of a warm process (a server, a REPL).
        for (var i = 0; i < 8; i++) await TimeTravel.LoadAsync(store, session, Pick(), true, ct);
        var seqs = Enumerable.Range(0, z.Points).Select(_ => Pick()).ToList();
        var snap = new List<double>();
        var zero = new List<double>();
        var foldSeqs = new List<long>();
        for (var i = 0; i < seqs.Count; i++)
        {
            var sw = Stopwatch.StartNew();
            var a = await TimeTravel.LoadAsync(store, session, seqs[i], true, ct);
            snap.Add(sw.Elapsed.TotalMilliseconds);
            if (i >= z.FoldPoints) continue;
            sw.Restart();
            var b = await TimeTravel.LoadAsync(store, session, seqs[i], false, ct);
            zero.Add(sw.Elapsed.TotalMilliseconds);
            foldSeqs.Add(seqs[i]);
            if (a.State.ToSnapshotJson() != b.State.ToSnapshotJson())
                throw new InvalidOperationException($"time travel to seq {seqs[i]} of {session}: snapshot + tail and the fold from 0 disagree");
        }
        return (snap, zero, foldSeqs);
    }

    /// <summary>Issue 18: blame (state + every row's event, call, line and rule) and why at random seqs, warm.</summary>
    private async Task<(List<double> Blame, List<double> LogOnly, List<double> Why, double Rows, double Seqs, double Carried)> ProvenanceAsync(IEventStore store, string session, long version,
        CancellationToken ct)
    {
        var rng = new SeededRandom(z.Seed ^ 0xb1a3e);
        long Pick() => 1 + (long)(rng.NextUInt64() % (ulong)version);
        for (var i = 0; i < 8; i++) await Blame.LoadAsync(store, session, Pick(), true, ct);
        var blame = new List<double>();
        var why = new List<double>();
        double rows = 0, seqs = 0, carried = 0;
        var logOnly = new List<double>();
        async Task<double> BlameFromLogAsync(long at)
        {
            var sw = Stopwatch.StartNew();
            var l = await Blame.LoadAsync(store, session, at, true, ct);
            await Blame.ResolveAsync(store, session, Blame.SetAtOfRows(l.State).Values, ct);
            return sw.Elapsed.TotalMilliseconds;
        }
        var checkedPoints = 0;
        foreach (var seq in Enumerable.Range(0, z.Points).Select(_ => Pick()).ToList())
        {
            // blame as sva state --blame does it (what the snapshot carries, the rest from the log), and alternately before or
            // after it, from the log alone (as before snapshots carried it): the in-run comparison
            var logFirst = checkedPoints % 2 == 1;
            if (logFirst) logOnly.Add(await BlameFromLogAsync(seq));
            var sw = Stopwatch.StartNew();
            var loaded = await Blame.LoadAsync(store, session, seq, true, ct);
            var set = Blame.SetAtOfRows(loaded.State);
            var info = await Blame.ResolveAsync(store, session, set.Values, loaded.SetAtEvents, ct);
            blame.Add(sw.Elapsed.TotalMilliseconds);
            if (!logFirst) logOnly.Add(await BlameFromLogAsync(seq));
            rows += set.Count;
            seqs += info.Count;
            carried += info.Keys.Count(loaded.SetAtEvents.ContainsKey);
            if (checkedPoints++ < 3)
            {
                // what the snapshot carried must be what the log says (outside the timing)
                var fromLog = await Blame.ResolveAsync(store, session, set.Values, ct);
                foreach (var (k, v) in info)
                    if ((v.Seq, v.Type, v.Source, v.Line, v.Op, v.Rule, v.CallSeq) is var a && fromLog[k] is var w
                        && a != (w.Seq, w.Type, w.Source, w.Line, w.Op, w.Rule, w.CallSeq))
                        throw new InvalidOperationException($"blame at seq {seq} of {session}: seq {k} from the snapshot {v} but from the log {fromLog[k]}");
            }

            var candidates = set.Keys.Where(r => r.Kind == RowKind.PasidEntry).DefaultIfEmpty(set.Keys.FirstOrDefault(r => r.Kind == RowKind.Mm)).ToList();
            if (candidates.Count == 0 || candidates[0].Id is null) continue;
            var row = candidates[(int)(rng.NextUInt64() % (ulong)candidates.Count)];
            sw.Restart();
            var s = (await Blame.LoadAsync(store, session, seq, true, ct)).State;
            var steps = await Blame.WhyAsync(store, session, s, row, ct);
            why.Add(sw.Elapsed.TotalMilliseconds);
            if (steps.Count == 0) throw new InvalidOperationException($"why {row.Describe()} at seq {seq} of {session}: no step");
        }
        return (blame, logOnly, why, rows / Math.Max(1, blame.Count), seqs / Math.Max(1, blame.Count), carried / Math.Max(1, blame.Count));
    }

    // ------------------------------------------------------------------ plumbing

    private static async Task Exec(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlDataSource ds, string sql, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand(sql);
        return (T)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); }
        catch (IOException) { return "n/a"; }
        catch (UnauthorizedAccessException) { return "n/a"; }
    }

    private static async Task<JsonObject> MachineAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        var cpu = "n/a";
        try { cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "n/a"; }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        var pg = await ScalarAsync<string>(ds,
            "SELECT current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers') || ', synchronous_commit ' || current_setting('synchronous_commit') || ', fsync ' || current_setting('fsync')",
            ct);
        var csb = new NpgsqlConnectionStringBuilder(ds.ConnectionString);
        return new JsonObject
        {
            ["cpu"] = cpu,
            ["cores"] = Environment.ProcessorCount,
            ["memory_gib"] = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 1073741824.0, 1),
            ["os"] = RuntimeInformation.OSDescription,
            [".net"] = RuntimeInformation.FrameworkDescription,
            ["postgresql"] = pg,
            ["database"] = $"{csb.Host}:{csb.Port}/{csb.Database}",
            ["load_average_start"] = LoadAverage(),
        };
    }
}
