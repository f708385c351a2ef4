using System.Diagnostics;
using Mediator;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Captures;

namespace Sva.Commands;

/// <summary>
/// The import: resolves the format, finds the session (an earlier import of the same capture is reported or resumed),
/// checks the kernel, and runs the import (<see cref="ImportRun"/>). The pieces it uses: <see cref="CaptureHash"/>
/// (identity), <see cref="CaptureFormatChoice"/> (detection), <see cref="ImportRegistry"/>, <see cref="ImportSessionName"/>,
/// <see cref="ImportTally"/> (the result's counters), <see cref="ImportResume"/> and the import's <see cref="SnapshotPolicy"/>.
/// </summary>
public sealed class ImportCaptureHandler : IRequestHandler<ImportCapture, ImportResult>
{
    private readonly IEventStore store;
    private readonly ImportRegistry registry;

    /// <param name="snapshotEvery">Events between state snapshots (a cache for 'sva state'); 0: none.</param>
    public ImportCaptureHandler(IEventStore store, int snapshotEvery = SnapshotPolicy.DefaultEvery)
    {
        this.store = store;
        registry = new ImportRegistry(store);
        SnapshotEvery = snapshotEvery;
    }

    public int SnapshotEvery { get; }

    /// <summary>Events per append: one transaction with its projection rows, binary COPY (above 100 events).</summary>
    public const int DefaultBatchEvents = 2000;

    // ------------------------------------------------------------------ the file entry point

    public async ValueTask<ImportResult> Handle(ImportCapture request, CancellationToken ct)
    {
        var path = request.Path;
        if (!File.Exists(path)) throw new ImportInputException($"{path}: no such file");
        var fileName = Path.GetFileName(path);

        // Pass 1: the content hash (identity) and the line count (progress), on the bytes.
        var (hash, lines) = await CaptureHash.HashAndCountAsync(path, ct);

        // --strict: the whole capture must parse before anything is recorded.
        if (request.Strict)
        {
            using var check = CaptureHash.OpenText(path);
            await CaptureFormatChoice.ValidateStrictAsync(check, fileName, request.Format, ct);
        }

        using var reader = CaptureHash.OpenText(path);
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
        var (format, detected) = await CaptureFormatChoice.ResolveAsync(lines, fileName, options.Format, ct);

        var identity = options.ContentHash ?? "session:" + options.Session;
        var defaultSession = ImportSessionName.Default(fileName, identity, version.Name, format == detected ? null : format);

        // Identity → session: an earlier import of this capture (complete: report it; running: resume it).
        var earlier = await registry.FindAsync(identity, version.Name, format, ct);
        string session;
        if (earlier is not null)
        {
            session = earlier.Value.Session;
            if (earlier.Value.Complete && earlier.Value.Summary is { } summary && await registry.CompleteInLogAsync(session, summary, ct))
            {
                if (options.Hooks?.Skipped is { } onSkipped)
                    await ListSkippedAsync(lines, fileName, format, onSkipped, ct);
                return ImportResult.FromJson(summary) with { AlreadyImported = true, Appended = 0, Seconds = Stopwatch.GetElapsedTime(started).TotalSeconds };
            }
        }
        else
        {
            session = options.Session ?? defaultSession;
            var other = await registry.FindBySessionAsync(session, ct);
            if (other is not null)
                throw new ImportInputException($"session '{session}' holds the import of another capture (sha256 {ImportText.Prefix(other.Value.Hash)}, kernel {other.Value.Kernel}, format {other.Value.Format}); choose another --session");
            var existing = await store.GetSessionAsync(session, ct);
            if (existing is not null)
                throw new ImportInputException($"session '{session}' exists and is not an import of this capture (recorded by 'sva run'?); choose another --session");
            // the session and its registry document are written with the first batch (one transaction)
        }

        var info = await store.GetSessionAsync(session, ct);
        if (info is not null && !SessionKernels.Same(await SessionKernels.ResolveAsync(store, info, ct), version))
            throw new SessionKernelMismatchException(session, info.Kernel, version.Name);
        var create = new NewSession(version.Name, $"import {fileName} ({format}, sha256 {ImportText.Short(identity, 16)})")
        {
            KernelGiven = options.Kernel.Trim() == version.Name ? null : options.Kernel.Trim(),
        };

        var run = new ImportRun(store, session, version, fileName, format, identity, options, started, create, SnapshotPolicy.ForImport(SnapshotEvery, new Sva.Projections.ProvenanceBook()));
        return await run.ExecuteAsync(lines, info?.Version ?? 0, ct);
    }

    private static async Task ListSkippedAsync(CaptureLineReader lines, string fileName, string format, Action<SkippedLine> onSkipped, CancellationToken ct)
    {
        await foreach (var item in CaptureReader.ReadAsync(lines, fileName, format, lenient: true, ct))
            if (item is SkippedLine s) onSkipped(s);
    }
}
