using Sva.Commands;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Generate;
using Sva.Formats.Import;
using Sva.Projections;
using Sva.Projections.Queries;
using Xunit;

namespace Sva.TimeTravel.Tests;

/// <summary>
/// Snapshots carry the provenance of their state's set-at seqs (<see cref="SetAtEventDto"/>), so that blame reads only
/// the seqs set after the snapshot from the log. What a snapshot carries must be exactly what the log says, whether the
/// session was recorded in one process, continued by another from a snapshot, or written by two writers whose conflicts
/// made one of them re-decide.
/// </summary>
[Collection("tt")]
public sealed class SnapshotProvenanceTests(TtFixture f)
{
    private static (long, string, string?, int?, string?, string?, long?) Key(SetAtInfo i) => (i.Seq, i.Type, i.Source, i.Line, i.Op, i.Rule, i.CallSeq);

    /// <summary>For every snapshot of the session: what it carries equals the log's answer, and it carries every set-at seq
    /// of its state (when <paramref name="complete"/>). Returns how many entries were checked.</summary>
    private static async Task<int> AssertSnapshotsCarryTheLogsAnswer(IEventStore store, string session, bool complete)
    {
        var checkedEntries = 0;
        var snapshots = await store.ListSnapshotsAsync(session);
        Assert.NotEmpty(snapshots);
        foreach (var snap in snapshots)
        {
            var loaded = await Blame.LoadAsync(store, session, snap.Seq);
            Assert.Equal(snap.Seq, loaded.SnapshotSeq);
            var seqs = Blame.SetAtOfRows(loaded.State).Values.Distinct().ToList();
            var fromLog = await Blame.ResolveAsync(store, session, seqs);
            foreach (var (seq, carried) in loaded.SetAtEvents)
            {
                Assert.True(fromLog.ContainsKey(seq), $"snapshot {snap.Seq} carries seq {seq}, which sets no row of its state");
                Assert.Equal(Key(fromLog[seq]), Key(carried));
                checkedEntries++;
            }
            if (complete)
                Assert.True(seqs.All(loaded.SetAtEvents.ContainsKey),
                    $"snapshot {snap.Seq} lacks seqs {string.Join(", ", seqs.Where(s => !loaded.SetAtEvents.ContainsKey(s)).Take(5))}");
            // and blame with them gives what blame without them gives
            var blamed = await Blame.ResolveAsync(store, session, seqs, loaded.SetAtEvents);
            Assert.Equal(fromLog.Values.Select(Key).Order(), blamed.Values.Select(Key).Order());
        }
        return checkedEntries;
    }

    [Fact]
    public async Task a_generated_sessions_snapshots_carry_every_set_at_seq_of_their_state_as_the_log_resolves_it()
    {
        Assert.True(await AssertSnapshotsCarryTheLogsAnswer(f.Store, f.Generated, complete: true) > 100);
        // blame between snapshots: the seqs up to the snapshot come from it, the tail's from the log
        var loaded = await Blame.LoadAsync(f.Store, f.Generated, 20_000);
        Assert.True(loaded.SnapshotSeq is > 0 and < 20_000);
        Assert.NotEmpty(loaded.SetAtEvents);
        Assert.All(loaded.SetAtEvents.Keys, s => Assert.True(s <= loaded.SnapshotSeq));
        var seqs = Blame.SetAtOfRows(loaded.State).Values.ToList();
        var a = await Blame.ResolveAsync(f.Store, f.Generated, seqs, loaded.SetAtEvents);
        var b = await Blame.ResolveAsync(f.Store, f.Generated, seqs);
        Assert.Equal(b.Values.Select(Key).Order(), a.Values.Select(Key).Order());
        Assert.Contains(seqs, s => s > loaded.SnapshotSeq); // the tail's seqs were resolved from the log
    }

    [Fact]
    public async Task a_session_continued_by_later_processes_carries_on_what_its_snapshots_carried()
    {
        var lines = WorkloadGenerator.Generate(new WorkloadOptions(4, 6, 6_000, 11)).Select(c => ScriptText.Format(c.Call)).ToList();
        var session = TtFixture.UniqueSession("ttsnapprov");
        // three processes, each continuing the session from its last snapshot
        foreach (var part in lines.Chunk((lines.Count + 2) / 3).Select((l, i) => (Text: string.Join("\n", l), Index: i)))
        {
            var r = await f.RunAsync("run", f.WriteTemp($"part{part.Index}.sva", part.Text + "\n"), "--session", session, "--kernel", "6.8");
            Assert.True(r.ExitCode == 0, r.ToString());
        }
        Assert.True(await AssertSnapshotsCarryTheLogsAnswer(f.Store, session, complete: true) > 0);
    }

    [Fact]
    public async Task an_imported_captures_snapshots_carry_what_the_log_resolves_and_blame_answers_the_same()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sva-tt-{Guid.NewGuid():N}.trace");
        SyntheticCapture.WriteFtrace(path, 6000, $"s{Guid.NewGuid():N}"[..9]); // new content each run: an import of the same capture is recognised as done
        try
        {
            var session = TtFixture.UniqueSession("ttsnapimp");
            var r = await f.RunAsync("import", path, "--session", session);
            Assert.True(r.ExitCode == 0, r.ToString());
            // not every seq: a call that reaches a batch's end, and events outside any call at a batch's start, are left to the log
            Assert.True(await AssertSnapshotsCarryTheLogsAnswer(f.Store, session, complete: false) > 100);
            var last = (await f.Store.GetSessionAsync(session))!.Version;
            var a = await f.RunAsync("state", session, "--at", (last - 7).ToString(), "--blame", "--json");
            var b = await f.RunAsync("state", session, "--at", (last - 7).ToString(), "--blame", "--json", "--no-snapshots");
            Assert.True(a.ExitCode == 0, a.ToString());
            Assert.Equal(b.Stdout, a.Stdout);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task two_writers_whose_conflicts_re_decide_batches_leave_snapshots_that_carry_only_the_logs_answer()
    {
        var calls = WorkloadGenerator.Generate(new WorkloadOptions(4, 6, 4_000, 12)).Select(c => new SourcedCall(c.Call, $"w.sva:{c.Line}")).ToList();
        var session = TtFixture.UniqueSession("ttsnapconf");
        // two handlers, each holding the session's state between commands; every other command of each conflicts with the other's
        var a = new RecordCallsHandler(f.Store);
        var b = new RecordCallsHandler(f.Store);
        var conflicts = 0;
        var i = 0;
        foreach (var chunk in calls.Chunk(40))
        {
            var h = i++ % 3 == 2 ? b : a;
            var r = await h.Handle(new RecordCalls(session, "6.8", null, chunk, 8)
            {
                SnapshotEvery = 64,
            }, default);
            conflicts += r.Conflicts;
        }
        Assert.True(conflicts > 0, "no conflict happened: the test does not test what it says");
        Assert.True(await AssertSnapshotsCarryTheLogsAnswer(f.Store, session, complete: true) > 0);
    }
}
