using Mediator;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Captures;

namespace Sva.Commands;

/// <summary>
/// Import a captured session (ftrace, dmesg, QEMU -trace, jsonl) from a file: each recognised line becomes a
/// <c>capture_observed</c> event and the kernel calls it implies, decided under <see cref="Kernel"/>'s rules
/// (<see cref="Sva.Formats.Import.ObservationMapper"/>). Idempotent: the same file content under the same kernel and format gives the
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
        if (!CaptureFormatChoice.IsFormatName(Format))
            yield return $"unknown capture format '{Format}'; known formats: auto, {string.Join(", ", CaptureReader.Formats.Select(f => f.Name))}";
        if (Session is not null && SessionName.Problem(Session) is { } problem) yield return $"session name {problem}";
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

/// <summary>Bad capture input or a session conflict (the CLI's exit code 2). The message names file:line where there is one.</summary>
public sealed class ImportInputException(string message, Exception? inner = null) : Exception(message, inner);
