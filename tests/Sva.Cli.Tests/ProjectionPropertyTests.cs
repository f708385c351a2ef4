using FsCheck;
using FsCheck.Fluent;
using Sva.Commands;
using Sva.Domain;
using Sva.Formats.Generate;
using Sva.Projections;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>
/// For random sessions (seed, sizes, kernel version, chunking all drawn by FsCheck), the read model Marten's
/// daemon projected after the appends equals the one folded from the log, and the state folded from
/// the log equals the state the handler decided on.
/// </summary>
[Collection("cli")]
public sealed class ProjectionPropertyTests(CliFixture f)
{
    [Fact]
    public void read_model_equals_the_fold_for_random_sessions()
    {
        var kernels = KernelVersions.All.Select(v => v.Name).ToArray();
        var gen =
            from seed in Gen.Choose(1, int.MaxValue)
            from devices in Gen.Choose(1, 3)
            from mms in Gen.Choose(1, 5)
            from events in Gen.Choose(20, 400)
            from chunk in Gen.Choose(1, 40)
            from kernel in Gen.Elements(kernels)
            select (seed, devices, mms, events, chunk, kernel);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (seed, devices, mms, events, chunk, kernel) = t;
            var session = CliFixture.UniqueSession($"prop-{kernel}");
            var calls = WorkloadGenerator.Generate(new WorkloadOptions(devices, mms, events, (ulong)seed, kernel))
                .Select(c => new SourcedCall(c.Call, $"prop.sva:{c.Line}")).ToList();
            var handler = new RecordCallsHandler(f.Store);
            var result = handler.Handle(new RecordCalls(session, kernel, null, calls, chunk) { SnapshotEvery = 64 }, default).AsTask().GetAwaiter().GetResult();
            // The read model is an async projection: the writer catches it up after its last batch (as a command does).
            f.Store.CatchUpAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
            var diffs = ReadModel.VerifySessionAsync(f.Store, session).GetAwaiter().GetResult();
            Assert.True(diffs.Count == 0, $"{t}: {string.Join("; ", diffs.Take(5))}");
            var folded = StateLoader.LoadAsync(f.Store, session, useSnapshots: false).GetAwaiter().GetResult();
            var viaSnapshots = StateLoader.LoadAsync(f.Store, session).GetAwaiter().GetResult();
            Assert.Equal(result.LastSeq, folded.Seq);
            Assert.Equal(folded.ToSnapshotJson(), viaSnapshots.ToSnapshotJson());
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }
}
