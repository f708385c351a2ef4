using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

/// <summary>Runs alone: it measures the process's live memory, which tests running beside it would add to.</summary>
[Collection("alone")]
public class StreamingTests
{
    /// <summary>Produces lines on demand and counts how many were read.</summary>
    private sealed class GeneratedReader(int lines) : TextReader
    {
        public int LinesRead { get; private set; }

        public override string? ReadLine()
        {
            if (LinesRead >= lines)
                return null;
            LinesRead++;
            return LinesRead % 100 == 0
                ? $"  kworker/1:1-77   [001] ....  {LinesRead}.000000: sched_switch: prev_comm=a"
                : $"  kworker/1:1-77   [001] ....  {LinesRead}.000000: smmu_mm_invalidate: pasid=1 start=0xffff860e6000 end=0xffff860e8000";
        }

        public override ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken) => ValueTask.FromResult(ReadLine());
    }

    [Theory]
    [InlineData("ftrace", 2)]
    [InlineData("auto", CaptureReader.SniffLineCount + 1)]
    public async Task the_first_item_comes_before_the_input_is_read(string format, int maxLinesRead)
    {
        var reader = new GeneratedReader(1_000_000);
        await foreach (var item in CaptureReader.ReadAsync(reader, "gen.txt", format, lenient: false))
        {
            Assert.IsType<Observation>(item);
            break;
        }
        Assert.InRange(reader.LinesRead, 1, maxLinesRead);
    }

    [Fact]
    public async Task memory_does_not_grow_with_the_capture()
    {
        const int lines = 300_000;
        var reader = new GeneratedReader(lines);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        long peak = before;
        int observations = 0, skipped = 0;
        await foreach (var item in CaptureReader.ReadAsync(reader, "gen.txt", "ftrace", lenient: false))
        {
            if (item is Observation)
                observations++;
            else
                skipped++;
            if ((observations + skipped) % 50_000 == 0)
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: true));
        }
        Assert.Equal(lines - lines / 100, observations);
        Assert.Equal(lines / 100, skipped);
        // the text read is ~60 MB as UTF-16; what stays alive must not depend on it
        Assert.True(peak - before < 8_000_000, $"live memory grew by {peak - before} bytes");
    }

    [Fact]
    public async Task cancellation_is_honoured()
    {
        using var cts = new CancellationTokenSource();
        var reader = new GeneratedReader(1_000_000);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in CaptureReader.ReadAsync(reader, "gen.txt", "ftrace", lenient: false, cts.Token))
                cts.Cancel();
        });
        Assert.True(reader.LinesRead < 10);
    }
}

[CollectionDefinition("alone", DisableParallelization = true)]
public sealed class AloneCollection;
