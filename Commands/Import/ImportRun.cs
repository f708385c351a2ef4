using System.Diagnostics;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Captures;
using Sva.Formats.Import;
using Sva.Projections;

namespace Sva.Commands;

/// <summary>
/// One run of an import into one session: reads the capture, decides each observation, and hands the decided events to
/// the <see cref="SessionRecorder"/> in batches (each batch's last event carries the resume checkpoint).
/// </summary>
internal sealed class ImportRun(
    IEventStore store, string session, KernelVersion version, string fileName, string format,
    string identity, ImportOptions options, long started, NewSession create, SnapshotPolicy snapshots)
{
    private SessionRecorder? recorder;
    private List<(SvaEvent Event, string Source, double? Ts, PlannedCall? Call, bool First)> pending = new();
    private readonly ImportTally tally = new();
    // Enqueued here, dequeued by the recorder's Committed callback, which runs on the append's thread: concurrent.
    private readonly System.Collections.Concurrent.ConcurrentQueue<ImportCheckpoint> inflight = new();
    private long appended, storeTicks;
    private int batch;
    private Guid batchId;

    public async Task<ImportResult> ExecuteAsync(CaptureLineReader lines, long version0, CancellationToken ct)
    {
        // Resume: the checkpoint is the last event's metadata; the state and the counters come from the log.
        long resumeItems = 0;
        int? resumedAfter = null;
        SvaState state;
        if (version0 > 0)
        {
            var checkpoint = await ImportResume.ReadCheckpointAsync(store, session, version0, ct);
            (resumeItems, batch) = (checkpoint.Items, checkpoint.Batch);
            resumedAfter = batch;
            state = await StateLoader.LoadAsync(store, session, snapshots.Book, ct: ct);
            await tally.ReplayAsync(store, session, ct);
        }
        else state = new SvaState();
        snapshots.StartAt(state.Seq);
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
                    tally.SkippedLine(s.Reason);
                    hooks?.Skipped?.Invoke(s);
                    continue;
                }
                var o = (Observation)it;
                tally.Recognised(o);
                if (item <= resumeItems) continue;

                if (pending.Count == 0) batchId = BatchId(batch + 1, item);
                var source = o.Source.ToString();
                var seq = state.Seq;
                foreach (var d in decider.Decide(o))
                {
                    seq++;
                    pending.Add((d.Event, source, o.Timestamp, d.Call, d.FirstOfCall));
                    tally.Decided(d, seq, source);
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
        tally.Complete();
        hooks?.Progress?.Invoke(new ImportProgress(lines.Lines, options.TotalLines, state.Seq));

        var result = new ImportResult
        {
            Session = session,
            Kernel = version.Name,
            File = fileName,
            Format = format,
            ContentHash = identity,
            Lines = lines.Lines,
            Recognized = tally.Recognized,
            Skipped = tally.Skipped,
            SkippedByReason = tally.SkippedByReason,
            Events = state.Seq,
            Appended = appended,
            Calls = tally.Calls,
            InferredCalls = tally.InferredCalls,
            CallsByOp = tally.CallsByOp,
            FailureCount = tally.FailureCount,
            Failures = tally.Failures,
            ConformanceChecked = tally.ConformanceChecked,
            MismatchCount = tally.MismatchCount,
            Mismatches = tally.Mismatches,
            Devices = state.Devices.Count,
            Pasids = tally.Pasids.Count,
            Batches = batch,
            ResumedAfterBatch = resumedAfter,
            Seconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
            StoreSeconds = Stopwatch.GetElapsedTime(0, storeTicks).TotalSeconds,
        };
        if (state.Seq > 0) await store.SaveSourceAsync(ImportRegistry.Progress(session, identity, version.Name, format, fileName, options.TotalLines, result), ct);
        return result;
    }

    private Guid BatchId(int batchIndex, long firstItem) =>
        CaptureHash.DeterministicGuid($"sva-import|{ImportRegistry.MappingVersion}|{identity}|{version.Name}|{format}|{session}|{batchIndex}|{firstItem}");

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
        var n = events.Count;
        var encoded = new List<NewEvent>(n);
        // provenance's shortcuts, as the recorder writes them (EventMetadata.Rule, CallOffset), for the calls as blame reads them
        // back: a call's first event and the events after it with the same source, none of which carries a call. A batch ends
        // between observations (one source each), so no call is split; events outside any call get neither key.
        var groupStart = -1;
        // What blame would resolve each event to, noted in the snapshots' book (SetAtEventDto) where this batch alone decides
        // it: not for a call that reaches the batch's end (its rule may take events of the next batch), nor for events
        // outside any call at the batch's start (the walk back may find a call of the previous batch with their source).
        var book = snapshots.Book;
        var startRun = true; // events since the batch's start, all of one source and outside any call
        string? groupRule = null;
        var groupRuled = false;
        for (var i = 0; i < n; i++)
        {
            var (e, source, ts, call, first) = events[i];
            var carries = first && call is not null;
            if (carries) groupStart = i;
            else if (groupStart >= 0 && source != events[i - 1].Source) groupStart = -1;
            string? rule = null;
            var ruled = false;
            if (carries)
            {
                var end = i + 1;
                while (end < n && !(events[end].First && events[end].Call is not null) && events[end].Source == source) end++;
                // a call reaching the batch's end could go on in the next batch (two observations of one line): no rule, blame walks
                if (ruled = end < n)
                {
                    var ofCall = new List<SvaEvent>(end - i);
                    for (var k = i; k < end; k++) ofCall.Add(events[k].Event);
                    rule = CallOutcome.RuleIdOf(call!.Call, ofCall);
                }
            }
            if (book is not null)
            {
                var seq = expected + 1 + i;
                if (carries) { groupRule = rule; groupRuled = ruled; startRun = false; }
                else if (i > 0 && source != events[i - 1].Source) startRun = false;
                if (groupStart >= 0)
                {
                    if (groupRuled) book.Add(seq, e, source, events[groupStart].Call!.Call.Op, groupRule, expected + 1 + groupStart);
                }
                else if (!startRun) book.Add(seq, EventTypes.NameOf(e), source, null, (e as IRuled)?.Rule, null);
            }
            encoded.Add(EventCodec.Encode(e, new EventMetadata(id, source, carries ? call!.Call : null, carries && call!.Inferred, ts,
                i == n - 1 ? new ImportCheckpoint(batchIndex, itemsThrough) : null)
            {
                // the session's first event carries a kernel file's resolved content (replays after the file is gone)
                KernelDefinition = expected == 0 && i == 0 ? version.Origin?.Definition : null,
                HasRule = ruled, Rule = rule, CallOffset = !carries && groupStart >= 0 ? i - groupStart : null,
            }));
        }
        // at the batch's last seq, after the book learnt the batch's events
        var snapshot = snapshots.AtBatchEnd(state);
        var prepared = new PreparedBatch(expected, id, encoded)
        {
            Snapshots = snapshot is null ? [] : [snapshot],
            Progress = ImportRegistry.Progress(session, identity, version.Name, format, fileName, options.TotalLines, null),
        };
        recorder ??= new SessionRecorder(store, session, create)
        {
            Committed = (b, r) =>
            {
                if (!r.Duplicate) appended += b.Events.Count;
                if (!inflight.TryDequeue(out var done)) throw new InvalidOperationException($"session {session}: a batch committed that was not in flight");
                options.Hooks?.BatchCommitted?.Invoke(new ImportBatchCommitted(session, done.Batch, b.ExpectedVersion + 1, b.LastSeq, done.Items));
                return Task.CompletedTask;
            },
        };
        inflight.Enqueue(new ImportCheckpoint(batchIndex, itemsThrough));
        var t0 = Stopwatch.GetTimestamp();
        await recorder.EnqueueAsync(prepared, ct);
        storeTicks += Stopwatch.GetTimestamp() - t0;
    }

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
}
