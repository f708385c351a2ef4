using Sva.Commands;
using Sva.Formats.Import;
using Xunit.Abstractions;

namespace Sva.Import.Tests;

/// <summary>The streaming entry point the benchmark calls (ImportCaptureHandler.ImportAsync on a TextReader).</summary>
[Collection("import")]
public sealed class ImportPathTests(ImportFixture f, ITestOutputHelper output)
{
    [Fact]
    public async Task a_text_reader_imports_in_batches_into_the_named_session()
    {
        var text = new StringWriter();
        SyntheticCapture.WriteFtrace(text, 6000, Guid.NewGuid().ToString("N"));
        var session = ImportFixture.UniqueSession("path");
        var batches = new List<ImportBatchCommitted>();
        var handler = new ImportCaptureHandler(f.Store);
        var result = await handler.ImportAsync(new StringReader(text.ToString()), "synthetic.txt", new ImportOptions
        {
            Kernel = "6.8",
            Format = "auto",
            Session = session,
            BatchEvents = 1000,
            Hooks = new ImportHooks { BatchCommitted = batches.Add },
        });
        output.WriteLine($"{result.Lines} lines, {result.Events} events in {result.Seconds:F2} s ({result.LinesPerSecond:F0} lines/s, store {result.StoreSeconds:F2} s)");

        var (expected, _) = await ImportDecider.DecideAllAsync(new StringReader(text.ToString()), "synthetic.txt", "ftrace", "6.8");
        Assert.Equal(session, result.Session);
        Assert.Equal(6000, result.Lines);
        Assert.Equal(expected.Count, result.Events);
        Assert.Equal(result.Events, await f.SessionVersionAsync(session));
        Assert.Equal(0, result.FailureCount);
        Assert.Equal(0, result.MismatchCount);
        // batches of at least 1000 events, cut after whole observations, in order and gap-free
        Assert.Equal(result.Batches, batches.Count);
        Assert.Equal(1, batches[0].FirstSeq);
        for (var i = 1; i < batches.Count; i++) Assert.Equal(batches[i - 1].LastSeq + 1, batches[i].FirstSeq);
        Assert.All(batches.SkipLast(1), b => Assert.InRange(b.LastSeq - b.FirstSeq + 1, 1000, 1100));
        Assert.Equal(result.Events, batches[^1].LastSeq);

        // the same reader content again: the session's name is its identity here, nothing is appended
        var again = await handler.ImportAsync(new StringReader(text.ToString()), "synthetic.txt", new ImportOptions { Session = session });
        Assert.True(again.AlreadyImported);
        Assert.Equal(result.Events, await f.SessionVersionAsync(session));
    }
}
