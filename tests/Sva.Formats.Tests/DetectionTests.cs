using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

public class DetectionTests
{
    [Theory]
    [InlineData("captures/dmesg-amdvi-1.txt", "dmesg")]
    [InlineData("captures/dmesg-dmar-1.txt", "dmesg")]
    [InlineData("captures/dmesg-smmuv3-1.txt", "dmesg")]
    [InlineData("captures/ftrace-iommu-2.txt", "ftrace")]
    [InlineData("captures/ftrace-prq-vtd-1.txt", "ftrace")]
    [InlineData("captures/ftrace-sva-smmu-1.txt", "ftrace")]
    [InlineData("captures/ftrace-sva-smmu-2.txt", "ftrace")]
    [InlineData("captures/qemu-trace-vtd-2.unwrapped.txt", "qemu-trace")]
    [InlineData("seeds/004_614d4012e2cbc680.txt", "ftrace")]
    [InlineData("synthetic/ftrace-5x-headers.txt", "ftrace")]
    [InlineData("synthetic/ftrace-6x-intel.txt", "ftrace")]
    [InlineData("synthetic/ftrace-perf-tracecmd.txt", "ftrace")]
    [InlineData("synthetic/ftrace-sva-variants.txt", "ftrace")]
    [InlineData("synthetic/ftrace-wrapped.txt", "ftrace")]
    [InlineData("synthetic/dmesg-dmar-forms.txt", "dmesg")]
    [InlineData("synthetic/dmesg-amdvi-variants.txt", "dmesg")]
    [InlineData("synthetic/dmesg-smmuv3-variants.txt", "dmesg")]
    [InlineData("synthetic/qemu-variants.txt", "qemu-trace")]
    [InlineData("synthetic/session.jsonl", "jsonl")]
    [InlineData("synthetic/dmesg-human.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-offset-column.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-callbacks-stack.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-mid-record.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-ufs-pf.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-caller-id.txt", "dmesg")]
    [InlineData("captures/mail-armsmmu-global-fault-labels.txt", "dmesg")]
    [InlineData("captures/dmesg-smmuv3-vendor-prefix-0x07.txt", "dmesg")]
    [InlineData("captures/dmesg-smmuv3-decoded-callbacks.txt", "dmesg")]
    [InlineData("captures/dmesg-smmuv3-raw-words-stall.txt", "dmesg")]
    [InlineData("captures/mail-smmuv3-raw-words-interleaved.txt", "dmesg")]
    [InlineData("captures/dmesg-amdgpu-gfxhub-pasid.txt", "dmesg")]
    [InlineData("captures/dmesg-armsmmu-tegra-downstream.txt", "dmesg")]
    public void detect_picks_the_right_format(string file, string format)
    {
        var lines = File.ReadLines(TestData.PathOf(file)).Take(CaptureReader.SniffLineCount).ToList();
        Assert.Equal(format, CaptureReader.Detect(lines).Name);
        foreach (var f in CaptureReader.Formats)
        {
            var score = f.Sniff(lines);
            Assert.InRange(score, 0.0, 1.0);
        }
    }

    [Fact]
    public void nothing_that_fits_gives_an_error_listing_the_formats()
    {
        var ex = Assert.Throws<CaptureDetectionException>(() => CaptureReader.Detect(["Hello,", "", "the patch looks good to me.", "{", "  return 0;", "}"]));
        foreach (var f in CaptureReader.Formats)
            Assert.Contains($"  {f.Name}: {f.Description}", ex.Message);
    }

    [Fact]
    public void empty_input_fits_nothing()
    {
        Assert.Throws<CaptureDetectionException>(() => CaptureReader.Detect([]));
        Assert.All(CaptureReader.Formats, f => Assert.Equal(0, f.Sniff([])));
    }

    [Fact]
    public void the_four_formats_have_distinct_names()
    {
        Assert.Equal(["ftrace", "dmesg", "qemu-trace", "jsonl"], CaptureReader.Formats.Select(f => f.Name));
        Assert.Same(CaptureReader.Formats[1], CaptureReader.Get("DMESG"));
    }
}
