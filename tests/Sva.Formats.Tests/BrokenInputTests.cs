using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

public class BrokenInputTests
{
    [Theory]
    [InlineData("synthetic/ftrace-broken.txt", "ftrace", 2, "dev_fault", "dev_fault: IOMMU:%s type=%d")]
    [InlineData("synthetic/dmesg-broken.txt", "dmesg", 3, "DMAR fault", "DMAR: [DMA Read")]
    [InlineData("synthetic/qemu-broken.txt", "qemu-trace", 3, "vtd_dmar_slpte", "vtd_dmar_slpte sid 0x%x")]
    public async Task a_garbled_field_of_a_known_event_throws_naming_file_line_and_format(string file, string format, int line, string eventName, string expectedStart)
    {
        var ex = await Assert.ThrowsAsync<CaptureFormatException>(() => TestData.ReadAsync(file, format));
        var name = Path.GetFileName(file);
        Assert.Equal(new SourceRef(name, line, line), ex.Source);
        Assert.Equal(eventName, ex.EventName);
        Assert.StartsWith(expectedStart, ex.Expected);
        Assert.StartsWith($"{name}:{line}: malformed {eventName} line: expected '{expectedStart}", ex.Message);
        var lines = File.ReadAllLines(TestData.PathOf(file));
        Assert.Equal(lines[line - 1].Trim(), ex.Got);
        Assert.EndsWith($"; got '{ex.Got}'", ex.Message);
    }

    [Theory]
    [InlineData("synthetic/ftrace-broken.txt", "ftrace", 2)]
    [InlineData("synthetic/dmesg-broken.txt", "dmesg", 3)]
    [InlineData("synthetic/qemu-broken.txt", "qemu-trace", 3)]
    [InlineData("synthetic/broken.jsonl", "jsonl", 2)]
    public async Task lenient_turns_the_malformed_line_into_a_skipped_line_and_goes_on(string file, string format, int line)
    {
        var items = await TestData.ReadAsync(file, format, lenient: true);
        var skipped = Assert.Single(items.Skipped());
        Assert.Equal(line, skipped.Source.Line);
        Assert.StartsWith("malformed: ", skipped.Reason);
        Assert.Contains("expected '", skipped.Reason);
        Assert.Equal(File.ReadAllLines(TestData.PathOf(file)).Length - 1, items.Observations().Count);
        Assert.Equal(items.Select(i => i.Source.Line).Order(), items.Select(i => i.Source.Line));
    }

    [Fact]
    public async Task items_before_the_malformed_line_are_streamed_before_the_exception()
    {
        var seen = new List<CaptureItem>();
        using var reader = new StreamReader(TestData.PathOf("synthetic/ftrace-broken.txt"));
        await Assert.ThrowsAsync<CaptureFormatException>(async () =>
        {
            await foreach (var item in CaptureReader.ReadAsync(reader, "ftrace-broken.txt", "ftrace", lenient: false))
                seen.Add(item);
        });
        Assert.Equal(ObservationKind.SmmuBindAlloc, Assert.IsType<Observation>(Assert.Single(seen)).Kind);
    }

    [Fact]
    public async Task a_truncated_last_record_is_skipped_as_truncated_not_an_error()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-truncated.txt", "ftrace");
        Assert.Equal(2, items.Observations().Count);
        var cut = items.Skipped().Single();
        Assert.Equal(3, cut.Source.Line);
        Assert.StartsWith("truncated: dev_page_response", cut.Reason);
    }

    [Theory]
    [InlineData("dmesg", "[ 1.0] DMAR: DRHD: handling fault status reg 3\n[ 1.1] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7cd8")]
    [InlineData("qemu-trace", "1@1.000000:vtd_dmar_fault sid 0x18 fault 6 addr 0x1000 write 1\n1@1.000001:vtd_dmar_fault sid 0x18 fault 6 ad")]
    [InlineData("jsonl", "{\"op\":\"exit\",\"mm\":\"m\"}\n{\"op\":\"drop\",\"m")]
    [InlineData("ftrace", "dev_fault: IOMMU:0000:00:03.0 type=2 reason=0\r\n\r\n")]
    public async Task truncated_tails_in_every_format(string format, string text)
    {
        var items = await TestData.ParseTextAsync(text, format);
        Assert.StartsWith("truncated: ", items.OfType<SkippedLine>().Last().Reason);
    }

    [Fact]
    public async Task a_malformed_line_followed_by_prose_is_malformed_not_truncated()
    {
        var text = "smmu_mm_release: pasid=x\nThanks,\nJean\n";
        var ex = await Assert.ThrowsAsync<CaptureFormatException>(() => TestData.ParseTextAsync(text, "ftrace"));
        Assert.Equal(1, ex.Source.Line);
        var lenient = await TestData.ParseTextAsync(text, "ftrace", lenient: true);
        Assert.Equal(["malformed: smmu_mm_release line: expected 'smmu_mm_release: pasid=%d'", "unrecognised line", "unrecognised line"],
            lenient.Skipped().Select(s => s.Reason));
    }

    [Fact]
    public async Task unknown_format_name_lists_the_formats()
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => TestData.ParseTextAsync("x", "etw"));
        Assert.Contains("ftrace, dmesg, qemu-trace, jsonl", ex.Message);
    }
}
