using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mediator;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Formats.Captures;
using Sva.Formats.Import;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>
/// Import a captured session (ftrace, dmesg, QEMU -trace, jsonl) from a file: each recognised line becomes a
/// <c>capture_observed</c> event and the kernel calls it implies, decided under <see cref="Kernel"/>'s rules
/// (<see cref="ObservationMapper"/>). Idempotent: the same file content under the same kernel and format gives the
/// same session; an interrupted import resumes from its last committed batch.
/// </summary>
public sealed record ImportCapture(
    string Path,
    string Kernel = "6.8",
    string Format = "auto",
    string? Session = null,
    bool Strict = false,
    int BatchEvents = ImportCaptureHandler.DefaultBatchEvents) : IRequest<ImportResult>, IValidatable
{
    /// <summary>Callbacks (skipped lines, progress, batch commits); not part of the request's identity.</summary>
    public ImportHooks? Hooks { get; init; }

    /// <summary>The rule set <see cref="Kernel"/> resolved to (a kernel file's version); null: <see cref="Kernel"/> is resolved as a release.</summary>
    public KernelVersion? Version { get; init; }

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path)) yield return "no capture file given";
        if (Version is null && !KernelVersions.TryGet(Kernel, out _)) yield return $"unsupported kernel version '{Kernel}'; supported: {KernelVersions.SupportedList}";
        if (!ImportCaptureHandler.IsFormatName(Format))
            yield return $"unknown capture format '{Format}'; known formats: auto, {string.Join(", ", CaptureReader.Formats.Select(f => f.Name))}";
        if (Session is not null && SessionName.Problem(Session) is { } problem)
            yield return $"session name {problem}";
        if (BatchEvents < 1) yield return "batch size must be at least 1 event";
    }
}

/// <summary>Options of <see cref="ImportCaptureHandler.ImportAsync"/> (the streaming entry point).</summary>
public sealed record ImportOptions
{
    public string Kernel { get; init; } = "6.8";
    /// <summary>The rule set <see cref="Kernel"/> resolved to (a kernel file's version); null: <see cref="Kernel"/> is resolved as a release.</summary>
    public KernelVersion? Version { get; init; }
    /// <summary>A format name or "auto" (the first 1000 lines are sniffed, then the stream continues).</summary>
    public string Format { get; init; } = "auto";
    /// <summary>The session; null: derived from the file name, <see cref="ContentHash"/> and kernel.</summary>
    public string? Session { get; init; }
    /// <summary>SHA-256 (hex) of the capture's bytes: its identity for idempotency. Null: the session name is the identity
    /// (then <see cref="Session"/> is required).</summary>
    public string? ContentHash { get; init; }
    /// <summary>Lines of the capture when known beforehand (progress).</summary>
    public long? TotalLines { get; init; }
    public int BatchEvents { get; init; } = ImportCaptureHandler.DefaultBatchEvents;
    public ImportHooks? Hooks { get; init; }
}

public sealed class ImportHooks
{
    /// <summary>Each unrecognised or malformed line, in file order (also those before a resume point).</summary>
    public Action<SkippedLine>? Skipped { get; init; }
    /// <summary>Called now and then while reading (and once at the end).</summary>
    public Action<ImportProgress>? Progress { get; init; }
    /// <summary>After each batch committed (test hook: a crash right after a commit).</summary>
    public Action<ImportBatchCommitted>? BatchCommitted { get; init; }
}

public sealed record ImportProgress(long Lines, long? TotalLines, long Events);

public sealed record ImportBatchCommitted(string Session, int Batch, long FirstSeq, long LastSeq, long Items);

public sealed record ImportFailure(long Seq, string? Source, string Op, string Reason);

/// <summary>What an import did. <see cref="Events"/>: events of the session; <see cref="Appended"/>: appended by this run.</summary>
public sealed record ImportResult
{
    public required string Session { get; init; }
    public required string Kernel { get; init; }
    public required string File { get; init; }
    public required string Format { get; init; }
    public required string ContentHash { get; init; }
    public long Lines { get; init; }
    public long Recognized { get; init; }
    public long Skipped { get; init; }
    public IReadOnlyDictionary<string, long> SkippedByReason { get; init; } = new Dictionary<string, long>();
    public long Events { get; init; }
    public long Appended { get; init; }
    public long Calls { get; init; }
    public long InferredCalls { get; init; }
    public IReadOnlyDictionary<string, long> CallsByOp { get; init; } = new Dictionary<string, long>();
    public long FailureCount { get; init; }
    public IReadOnlyList<ImportFailure> Failures { get; init; } = [];
    public long ConformanceChecked { get; init; }
    public long MismatchCount { get; init; }
    public IReadOnlyList<ConformanceFinding> Mismatches { get; init; } = [];
    public int Devices { get; init; }
    public int Pasids { get; init; }
    public int Batches { get; init; }
    /// <summary>The batch a resumed run started after (null: started from the beginning).</summary>
    public int? ResumedAfterBatch { get; init; }
    /// <summary>The session was already a complete import of this capture: nothing was read or appended.</summary>
    public bool AlreadyImported { get; init; }
    public double Seconds { get; init; }
    /// <summary>Of <see cref="Seconds"/>, the time spent in the store's appends (batches with their projection rows) and snapshots.</summary>
    public double StoreSeconds { get; init; }

    public double LinesPerSecond => Seconds > 0 ? Lines / Seconds : 0;

    public JsonObject ToJson() => new()
    {
        ["session"] = Session,
        ["kernel"] = Kernel,
        ["file"] = File,
        ["format"] = Format,
        ["content_hash"] = ContentHash,
        ["lines"] = Lines,
        ["recognized"] = Recognized,
        ["skipped"] = Skipped,
        ["skipped_by_reason"] = new JsonObject(SkippedByReason.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["events"] = Events,
        ["appended"] = Appended,
        ["calls"] = Calls,
        ["inferred_calls"] = InferredCalls,
        ["calls_by_op"] = new JsonObject(CallsByOp.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["failures"] = FailureCount,
        ["failure_list"] = new JsonArray(Failures.Select(f => (JsonNode)new JsonObject
        {
            ["seq"] = f.Seq, ["source"] = f.Source, ["op"] = f.Op, ["reason"] = f.Reason,
        }).ToArray()),
        ["conformance_checked"] = ConformanceChecked,
        ["mismatches"] = MismatchCount,
        ["conformance"] = new JsonArray(Mismatches.Select(m => (JsonNode)FindingJson(m)).ToArray()),
        ["devices"] = Devices,
        ["pasids"] = Pasids,
        ["batches"] = Batches,
        ["resumed_after_batch"] = ResumedAfterBatch,
        ["already_imported"] = AlreadyImported,
        ["seconds"] = Math.Round(Seconds, 3),
        ["store_seconds"] = Math.Round(StoreSeconds, 3),
        ["lines_per_second"] = Math.Round(LinesPerSecond, 1),
    };

    public static JsonObject FindingJson(ConformanceFinding f) => new()
    {
        ["kind"] = f.Kind, ["seq"] = f.Seq, ["line"] = f.Line, ["message"] = f.Message,
        ["simulated_seq"] = f.SimulatedSeq, ["simulated_line"] = f.SimulatedLine,
    };

    public static ImportResult FromJson(JsonObject j) => new()
    {
        Session = (string)j["session"]!,
        Kernel = (string)j["kernel"]!,
        File = (string)j["file"]!,
        Format = (string)j["format"]!,
        ContentHash = (string)j["content_hash"]!,
        Lines = (long)j["lines"]!,
        Recognized = (long)j["recognized"]!,
        Skipped = (long)j["skipped"]!,
        SkippedByReason = (j["skipped_by_reason"] as JsonObject ?? new()).ToDictionary(kv => kv.Key, kv => (long)kv.Value!),
        Events = (long)j["events"]!,
        Appended = (long)j["appended"]!,
        Calls = (long)j["calls"]!,
        InferredCalls = (long)j["inferred_calls"]!,
        CallsByOp = (j["calls_by_op"] as JsonObject ?? new()).ToDictionary(kv => kv.Key, kv => (long)kv.Value!),
        FailureCount = (long)j["failures"]!,
        Failures = (j["failure_list"] as JsonArray ?? new()).Select(n => new ImportFailure((long)n!["seq"]!, (string?)n["source"], (string)n["op"]!, (string)n["reason"]!)).ToList(),
        ConformanceChecked = (long)j["conformance_checked"]!,
        MismatchCount = (long)j["mismatches"]!,
        Mismatches = (j["conformance"] as JsonArray ?? new()).Select(n => new ConformanceFinding((string)n!["kind"]!, (long)n["seq"]!, (string?)n["line"],
            (string)n["message"]!, (long?)n["simulated_seq"], (string?)n["simulated_line"])).ToList(),
        Devices = (int)j["devices"]!,
        Pasids = (int)j["pasids"]!,
        Batches = (int)j["batches"]!,
        ResumedAfterBatch = (int?)j["resumed_after_batch"],
        AlreadyImported = (bool?)j["already_imported"] ?? false,
        Seconds = (double?)j["seconds"] ?? 0,
        StoreSeconds = (double?)j["store_seconds"] ?? 0,
    };
}

/// <summary>Bad capture input or a session conflict (the CLI's exit code 2). The message names file:line where there is one.</summary>
public sealed class ImportInputException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class ImportCaptureHandler : IRequestHandler<ImportCapture, ImportResult>
{
    private readonly IEventStore store;

    /// <param name="snapshotEvery">Events between state snapshots (a cache for 'sva state'); 0: none.</param>
    public ImportCaptureHandler(IEventStore store, int snapshotEvery = SnapshotPolicy.DefaultEvery)
    {
        this.store = store;
        SnapshotEvery = snapshotEvery;
    }

    public int SnapshotEvery { get; }

    /// <summary>Events per append: one transaction with its projection rows, binary COPY (above 100 events).</summary>
    public const int DefaultBatchEvents = 2000;

    /// <summary>The version of the observation → call mapping (<see cref="ObservationMapper"/>). Part of an import's
    /// identity: bump it when the mapping changes what a capture becomes, so that re-importing makes a new session
    /// instead of reporting the one the old mapping made.</summary>
    public static readonly int MappingVersion = 1;

    /// <summary>At most this many failures and conformance mismatches are listed in a result (all are counted).</summary>
    public const int ListLimit = 200;

    public static bool IsFormatName(string? name) =>
        name is not null && (name.Length == 0 || name.Equals("auto", StringComparison.OrdinalIgnoreCase)
                             || CaptureReader.Formats.Any(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)));

    // ------------------------------------------------------------------ the file entry point

    public async ValueTask<ImportResult> Handle(ImportCapture request, CancellationToken ct)
    {
        var path = request.Path;
        if (!File.Exists(path)) throw new ImportInputException($"{path}: no such file");
        var fileName = System.IO.Path.GetFileName(path);

        // Pass 1: the content hash (identity) and the line count (progress), on the bytes.
        var (hash, lines) = await HashAndCountAsync(path, ct);

        // --strict: the whole capture must parse before anything is recorded.
        if (request.Strict)
        {
            using var check = OpenText(path);
            await ValidateStrictAsync(check, fileName, request.Format, ct);
        }

        using var reader = OpenText(path);
        return await ImportAsync(reader, fileName, new ImportOptions
        {
            Kernel = request.Kernel,
            Version = request.Version,
            Format = request.Format,
            Session = request.Session,
            ContentHash = hash,
            TotalLines = lines,
            BatchEvents = request.BatchEvents,
            Hooks = request.Hooks,
        }, ct);
    }

    private static StreamReader OpenText(string path) =>
        new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan),
            new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);

    public static async Task<(string Hash, long Lines)> HashAndCountAsync(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long lines = 0;
            byte last = (byte)'\n';
            int n;
            while ((n = await fs.ReadAsync(buffer.AsMemory(0, 1 << 16), ct)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                lines += buffer.AsSpan(0, n).Count((byte)'\n');
                last = buffer[n - 1];
            }
            if (last != (byte)'\n') lines++;
            return (Convert.ToHexStringLower(sha.GetHashAndReset()), lines);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>--strict: a malformed line of a known event or any unrecognised line (comments apart) fails the import.</summary>
    public static async Task ValidateStrictAsync(TextReader reader, string fileName, string format, CancellationToken ct)
    {
        try
        {
            await foreach (var item in CaptureReader.ReadAsync(reader, fileName, format, lenient: false, ct))
            {
                if (item is SkippedLine s && s.Reason != "comment")
                    throw new ImportInputException($"{s.Source}: {s.Reason}: '{Short(s.Text)}' (--strict: every line must be a recognised record; nothing was recorded)");
            }
        }
        catch (CaptureFormatException e)
        {
            throw new ImportInputException($"{e.Message} (--strict: nothing was recorded)", e);
        }
        catch (CaptureDetectionException e)
        {
            throw new ImportInputException($"{fileName}: {e.Message}", e);
        }
    }

    // ------------------------------------------------------------------ the streaming entry point

    /// <summary>
    /// Imports a capture read from <paramref name="reader"/> (streamed: memory does not depend on its size). Lines
    /// that are not recognised are counted and passed to <see cref="ImportHooks.Skipped"/>; malformed lines of known
    /// events too (lenient). Events are appended in batches of about <see cref="ImportOptions.BatchEvents"/>, each
    /// atomic with its projection rows; the last event of each batch carries the resume checkpoint. The benchmark's
    /// "import path" entry point.
    /// </summary>
    public async Task<ImportResult> ImportAsync(TextReader reader, string fileName, ImportOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ContentHash is null && options.Session is null)
            throw new ArgumentException("an import needs a content hash or a session name (its identity)", nameof(options));
        if (options.BatchEvents < 1) throw new ArgumentOutOfRangeException(nameof(options), "BatchEvents must be at least 1");
        var version = options.Version ?? KernelVersions.Get(options.Kernel);
        var started = Stopwatch.GetTimestamp();

        // Format: resolved before anything is written (auto sniffs the head and replays it).
        var lines = new CaptureLineReader(reader);
        var head = await lines.BufferHeadAsync(CaptureReader.MaxSniffLineCount, ct); // Detect samples past the first 1000 only when they fit nothing
        string? detected = null;
        try { detected = CaptureReader.Detect(head).Name; }
        catch (CaptureDetectionException) { }
        string format;
        if (string.IsNullOrEmpty(options.Format) || options.Format.Equals("auto", StringComparison.OrdinalIgnoreCase))
            format = detected ?? throw new ImportInputException($"{fileName}: {DetectionMessage(head)}");
        else
        {
            try { format = CaptureReader.Get(options.Format).Name; }
            catch (ArgumentException e) { throw new ImportInputException(e.Message, e); }
        }

        var identity = options.ContentHash ?? "session:" + options.Session;
        var defaultSession = DefaultSessionName(fileName, identity, version.Name, format == detected ? null : format);

        // Identity → session: an earlier import of this capture (complete: report it; running: resume it).
        var earlier = await FindImportAsync(identity, version.Name, format, ct);
        string session;
        if (earlier is not null)
        {
            session = earlier.Value.Session;
            if (earlier.Value.Complete && earlier.Value.Summary is { } summary && await CompleteInLogAsync(session, summary, ct))
            {
                if (options.Hooks?.Skipped is { } onSkipped)
                    await ListSkippedAsync(lines, fileName, format, onSkipped, ct);
                return ImportResult.FromJson(summary) with { AlreadyImported = true, Appended = 0, Seconds = Elapsed(started) };
            }
        }
        else
        {
            session = options.Session ?? defaultSession;
            var other = await FindImportBySessionAsync(session, ct);
            if (other is not null)
                throw new ImportInputException($"session '{session}' holds the import of another capture (sha256 {Prefix(other.Value.Hash)}, kernel {other.Value.Kernel}, format {other.Value.Format}); choose another --session");
            var existing = await store.GetSessionAsync(session, ct);
            if (existing is not null)
                throw new ImportInputException($"session '{session}' exists and is not an import of this capture (recorded by 'sva run'?); choose another --session");
            // the session and its registry document are written with the first batch (one transaction)
        }

        var info = await store.GetSessionAsync(session, ct);
        if (info is not null && !SessionKernels.Same(await SessionKernels.ResolveAsync(store, info, ct), version))
            throw new SessionKernelMismatchException(session, info.Kernel, version.Name);
        var create = new NewSession(version.Name, $"import {fileName} ({format}, sha256 {Short(identity, 16)})")
        {
            KernelGiven = options.Kernel.Trim() == version.Name ? null : options.Kernel.Trim(),
        };

        var run = new ImportRun(this, store, session, version, fileName, format, identity, options, started, create);
        return await run.ExecuteAsync(lines, info?.Version ?? 0, ct);
    }

    private static double Elapsed(long started) => Stopwatch.GetElapsedTime(started).TotalSeconds;

    /// <summary>
    /// The registry's "complete" (a document a writer can change) is trusted for the already-imported shortcut only when
    /// the hash-chained log agrees with its summary: the session ends at the summary's last seq, and the event there carries
    /// the checkpoint of the summary's last batch. Otherwise the import is treated as interrupted and resumes from the log's
    /// own checkpoint (appending whatever the log lacks).
    /// </summary>
    private async Task<bool> CompleteInLogAsync(string session, JsonObject summary, CancellationToken ct)
    {
        if (await store.GetSessionAsync(session, ct) is not { } info) return false;
        long events; int batches;
        try { events = (long?)summary["events"] ?? -1; batches = (int?)summary["batches"] ?? -1; }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException) { return false; }
        if (events != info.Version || events < 1) return false;
        await foreach (var e in store.ReadSessionAsync(session, events, events, ct))
            return EventCodec.Metadata(e).Import is { } checkpoint && checkpoint.Batch == batches;
        return false;
    }

    private static string DetectionMessage(IReadOnlyList<string> head)
    {
        try
        {
            CaptureReader.Detect(head);
            return "could not detect the capture format";
        }
        catch (CaptureDetectionException e)
        {
            return e.Message;
        }
    }

    /// <summary>"ftrace-sva-smmu-2-3f2a9c1e-6.8": the file's stem, the first 8 hex digits of its identity, the kernel
    /// (and the format when it was forced to something detection would not choose).</summary>
    public static string DefaultSessionName(string fileName, string identity, string kernel, string? forcedFormat)
    {
        var stem = System.IO.Path.GetFileNameWithoutExtension(fileName);
        var sb = new StringBuilder();
        foreach (var c in stem)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
        if (sb.Length == 0) sb.Append("capture");
        if (sb.Length > 80) sb.Length = 80;
        var id = identity.StartsWith("session:", StringComparison.Ordinal)
            ? Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))
            : identity;
        sb.Append('-').Append(id.AsSpan(0, Math.Min(8, id.Length))).Append('-').Append(kernel);
        if (forcedFormat is not null) sb.Append('-').Append(forcedFormat);
        if (MappingVersion > 1) sb.Append("-m").Append(MappingVersion);
        return sb.ToString();
    }

    private static async Task ListSkippedAsync(CaptureLineReader lines, string fileName, string format, Action<SkippedLine> onSkipped, CancellationToken ct)
    {
        await foreach (var item in CaptureReader.ReadAsync(lines, fileName, format, lenient: true, ct))
            if (item is SkippedLine s) onSkipped(s);
    }

    private static string Prefix(string hash) => hash.Length > 16 ? hash[..16] : hash;

    internal static string Short(string text, int max = 120)
    {
        var t = text.ReplaceLineEndings(" ").Trim();
        return t.Length <= max ? t : t[..(max - 3)] + "...";
    }

    /// <summary>A version-5-style UUID from text (the batch's command id: re-running a batch is a no-op in the store).</summary>
    public static Guid DeterministicGuid(string text)
    {
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), h);
        var b = h[..16].ToArray();
        b[6] = (byte)((b[6] & 0x0f) | 0x50);
        b[8] = (byte)((b[8] & 0x3f) | 0x80);
        return new Guid(b, bigEndian: true);
    }

    // ------------------------------------------------------------------ the import registry (source documents)

    private readonly record struct ImportRow(string Session, string Hash, string Kernel, string Format, bool Complete, JsonObject? Summary);

    /// <summary>The identity of an import: content hash, kernel, format and mapping version.</summary>
    private static string SourceId(string hash, string kernel, string format) => $"import|{hash}|{kernel}|{format}|m{MappingVersion}";

    private static ImportRow? Row(SourceProgress? p)
    {
        if (p is null || JsonNode.Parse(p.Json) is not JsonObject j) return null;
        return new ImportRow(p.Session, (string?)j["hash"] ?? "", (string?)j["kernel"] ?? "", (string?)j["format"] ?? "", p.Complete, j["summary"] as JsonObject);
    }

    private async Task<ImportRow?> FindImportAsync(string hash, string kernel, string format, CancellationToken ct) =>
        Row(await store.FindSourceAsync(SourceId(hash, kernel, format), ct));

    private async Task<ImportRow?> FindImportBySessionAsync(string session, CancellationToken ct) =>
        Row(await store.FindSourceBySessionAsync(session, "import", ct));

    /// <summary>The import's registry document as written with each batch (and, complete, with its summary).</summary>
    internal static SourceProgress Progress(string session, string hash, string kernel, string format, string file, long? lines, ImportResult? done) =>
        new(SourceId(hash, kernel, format), session, "import", done is not null, new JsonObject
        {
            ["hash"] = hash, ["kernel"] = kernel, ["format"] = format, ["mapping"] = MappingVersion, ["file"] = file, ["lines"] = lines,
            ["summary"] = done?.ToJson(),
        }.ToJsonString());

        // ------------------------------------------------------------------ one run

    private sealed class ImportRun(
        ImportCaptureHandler owner, IEventStore store, string session, KernelVersion version, string fileName, string format,
        string identity, ImportOptions options, long started, NewSession create)
    {
        private SessionRecorder? recorder;
        private List<(SvaEvent Event, string Source, double? Ts, PlannedCall? Call, bool First)> pending = new();
        private readonly ConformanceChecker checker = new();
        private readonly List<ConformanceFinding> mismatches = new();
        private readonly List<ImportFailure> failures = new();
        private readonly Dictionary<string, long> skippedByReason = new(StringComparer.Ordinal);
        private readonly Dictionary<string, long> callsByOp = new(StringComparer.Ordinal);
        private readonly HashSet<int> pasids = new();
        private long recognized, skipped, calls, inferredCalls, failureCount, appended, lastSnapshot, lastSnapshotChars, storeTicks;
        private int batch, batches;
        private Guid batchId;

        public async Task<ImportResult> ExecuteAsync(CaptureLineReader lines, long version0, CancellationToken ct)
        {
            // Resume: the checkpoint is the last event's metadata; the state and the counters come from the log.
            long resumeItems = 0;
            int? resumedAfter = null;
            SvaState state;
            if (version0 > 0)
            {
                (resumeItems, batch) = await ReadCheckpointAsync(version0, ct);
                resumedAfter = batch;
                state = await StateLoader.LoadAsync(store, session, ct: ct);
                await ReplayCountersAsync(ct);
            }
            else state = new SvaState();
            lastSnapshot = state.Seq;
            var decider = new ImportDecider(version, state);
            var hooks = options.Hooks;

            long item = 0;
            var progressAt = Stopwatch.GetTimestamp();
            try
            {
                await foreach (var it in CaptureReader.ReadAsync(lines, fileName, format, lenient: true, ct))
                {
                    item++;
                    if (it is SkippedLine s)
                    {
                        skipped++;
                        var reason = ReasonKey(s.Reason);
                        skippedByReason[reason] = skippedByReason.GetValueOrDefault(reason) + 1;
                        hooks?.Skipped?.Invoke(s);
                        continue;
                    }
                    var o = (Observation)it;
                    recognized++;
                    if (o.Pasid is { } p && pasids.Count < 1_000_000) pasids.Add(p);
                    if (item <= resumeItems) continue;

                    if (pending.Count == 0) batchId = DeterministicBatchId(batch + 1, item);
                    var source = o.Source.ToString();
                    var seq = state.Seq;
                    foreach (var d in decider.Decide(o))
                    {
                        seq++;
                        pending.Add((d.Event, source, o.Timestamp, d.Call, d.FirstOfCall));
                        Count(d, seq, source);
                    }
                    if (pending.Count >= options.BatchEvents)
                        await FlushAsync(state, item, ct);

                    if (hooks?.Progress is { } progress && Stopwatch.GetElapsedTime(progressAt).TotalMilliseconds >= 100)
                    {
                        progressAt = Stopwatch.GetTimestamp();
                        progress(new ImportProgress(lines.Lines, options.TotalLines, state.Seq));
                    }
                }
            }
            catch (CaptureDetectionException e)
            {
                await DrainQuietlyAsync();
                throw new ImportInputException($"{fileName}: {e.Message}", e);
            }
            catch
            {
                await DrainQuietlyAsync();
                throw;
            }
            if (pending.Count > 0) await FlushAsync(state, item, ct);
            await DrainAsync();
            foreach (var f in checker.Complete()) Mismatch(f);
            hooks?.Progress?.Invoke(new ImportProgress(lines.Lines, options.TotalLines, state.Seq));

            var result = new ImportResult
            {
                Session = session,
                Kernel = version.Name,
                File = fileName,
                Format = format,
                ContentHash = identity,
                Lines = lines.Lines,
                Recognized = recognized,
                Skipped = skipped,
                SkippedByReason = skippedByReason,
                Events = state.Seq,
                Appended = appended,
                Calls = calls,
                InferredCalls = inferredCalls,
                CallsByOp = callsByOp,
                FailureCount = failureCount,
                Failures = failures,
                ConformanceChecked = checker.Checked,
                MismatchCount = checker.Mismatches,
                Mismatches = mismatches,
                Devices = state.Devices.Count,
                Pasids = pasids.Count,
                Batches = batch,
                ResumedAfterBatch = resumedAfter,
                Seconds = Elapsed(started),
                StoreSeconds = Stopwatch.GetElapsedTime(0, storeTicks).TotalSeconds,
            };
            if (state.Seq > 0) await store.SaveSourceAsync(Progress(session, identity, version.Name, format, fileName, options.TotalLines, result), ct);
            return result;
        }

        private int snapshotEvery => owner.SnapshotEvery;

        private Guid DeterministicBatchId(int batchIndex, long firstItem) =>
            DeterministicGuid($"sva-import|{MappingVersion}|{identity}|{version.Name}|{format}|{session}|{batchIndex}|{firstItem}");

        private void Count(DecidedEvent d, long seq, string? source)
        {
            if (d.FirstOfCall && d.Call is { } call)
            {
                calls++;
                if (call.Inferred) inferredCalls++;
                callsByOp[call.Call.Op] = callsByOp.GetValueOrDefault(call.Call.Op) + 1;
            }
            if (ImportDecider.IsFailure(d.Event)) Failure(seq, source, d.Call?.Call.Op ?? "?", d.Event);
            foreach (var f in checker.Add(new SeqEvent(seq, d.Event, source))) Mismatch(f);
        }

        private void Failure(long seq, string? source, string op, SvaEvent e)
        {
            failureCount++;
            if (failures.Count >= ListLimit) return;
            var reason = e switch
            {
                BindFailed b => $"-{b.Errno} {b.Reason}",
                UnbindRejected u => u.Reason,
                CallFailed c => (c.Errno is { } n ? $"-{n} " : "") + c.Reason,
                _ => e.GetType().Name,
            };
            failures.Add(new ImportFailure(seq, source, op, reason));
        }

        private void Mismatch(ConformanceFinding f)
        {
            if (mismatches.Count < ListLimit) mismatches.Add(f);
        }

        private static string ReasonKey(string reason)
        {
            foreach (var prefix in new[] { "malformed", "truncated", "incomplete", "orphan" })
                if (reason.StartsWith(prefix, StringComparison.Ordinal)) return prefix;
            return reason.Length <= 80 ? reason : reason[..80];
        }

        /// <summary>
        /// Hands the pending events over as one batch: encoded and appended in the background while the next batch is
        /// decided (at most one append in flight, so batches commit in order). The snapshot, when due, is taken here, at
        /// the batch's last seq.
        /// </summary>
        private async Task FlushAsync(SvaState state, long itemsThrough, CancellationToken ct)
        {
            var events = pending;
            pending = new(options.BatchEvents + 16);
            var last = state.Seq;
            var expected = last - events.Count;
            var batchIndex = ++batch;
            var id = batchId;
            string? snapshot = null;
            // Snapshots (a cache for 'sva state --at') every snapshotEvery events, spaced further apart as the state grows
            // (at most ~64 bytes of snapshot per imported event), so that a long capture does not write O(n^2) bytes.
            if (snapshotEvery > 0 && last - lastSnapshot >= Math.Max(snapshotEvery, lastSnapshotChars / 64))
            {
                snapshot = state.ToSnapshotJson();
                lastSnapshot = last;
                lastSnapshotChars = snapshot.Length;
            }
            var n = events.Count;
            var encoded = new List<NewEvent>(n);
            for (var i = 0; i < n; i++)
            {
                var (e, source, ts, call, first) = events[i];
                encoded.Add(EventCodec.Encode(e, new EventMetadata(id, source, first ? call?.Call : null, first && call is { Inferred: true }, ts,
                    i == n - 1 ? new ImportCheckpoint(batchIndex, itemsThrough) : null)
                {
                    // the session's first event carries a kernel file's resolved content (replays after the file is gone)
                    KernelDefinition = expected == 0 && i == 0 ? version.Origin?.Definition : null,
                }));
            }
            var prepared = new PreparedBatch(expected, id, encoded)
            {
                Snapshots = snapshot is null ? [] : [new SnapshotToSave(last, snapshot)],
                Progress = Progress(session, identity, version.Name, format, fileName, options.TotalLines, null),
            };
            recorder ??= new SessionRecorder(store, session, create)
            {
                Committed = (b, r) =>
                {
                    batches++;
                    if (!r.Duplicate) appended += b.Events.Count;
                    var done = (ImportCheckpoint)Pending.Dequeue();
                    options.Hooks?.BatchCommitted?.Invoke(new ImportBatchCommitted(session, done.Batch, b.ExpectedVersion + 1, b.LastSeq, done.Items));
                    return Task.CompletedTask;
                },
            };
            Pending.Enqueue(new ImportCheckpoint(batchIndex, itemsThrough));
            var t0 = Stopwatch.GetTimestamp();
            await recorder.EnqueueAsync(prepared, ct);
            storeTicks += Stopwatch.GetTimestamp() - t0;
        }

        private readonly Queue<object> Pending = new();

        /// <summary>Waits for the batch in flight (its failure surfaces here).</summary>
        private async Task DrainAsync()
        {
            if (recorder is null) return;
            var t0 = Stopwatch.GetTimestamp();
            await recorder.DrainAsync();
            storeTicks += Stopwatch.GetTimestamp() - t0;
        }

        /// <summary>On the way out after an error: let the batch in flight finish (or fail) before the error propagates.</summary>
        private async Task DrainQuietlyAsync()
        {
            if (recorder is not null) await recorder.DrainQuietlyAsync();
        }

        private async Task<(long Items, int Batch)> ReadCheckpointAsync(long version0, CancellationToken ct)
        {
            await foreach (var e in store.ReadSessionAsync(session, version0, version0, ct))
            {
                if (EventCodec.Metadata(e).Import is { } imp)
                    return (imp.Items, imp.Batch);
                throw new ImportInputException($"session '{session}' ends with an event (seq {e.Seq}) that no import batch wrote: it cannot be resumed as an import");
            }
            throw new InvalidOperationException($"session {session}: seq {version0} is missing");
        }

        /// <summary>Counters and the conformance state of the batches committed before a resume, from the log.</summary>
        private async Task ReplayCountersAsync(CancellationToken ct)
        {
            await foreach (var stored in store.ReadSessionAsync(session, 1, long.MaxValue, ct))
            {
                var e = EventCodec.Decode(stored);
                var meta = EventCodec.Metadata(stored);
                var source = meta.Source;
                string op = "?";
                if (meta.Call is { } call)
                {
                    calls++;
                    op = call.Op;
                    if (meta.Inferred) inferredCalls++;
                    callsByOp[op] = callsByOp.GetValueOrDefault(op) + 1;
                }
                if (ImportDecider.IsFailure(e)) Failure(stored.Seq, source, op, e);
                foreach (var f in checker.Add(new SeqEvent(stored.Seq, e, source))) Mismatch(f);
            }
        }
    }
}
