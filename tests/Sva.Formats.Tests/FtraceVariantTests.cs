using Sva.Formats.Captures;
using static Sva.Formats.Captures.ObservationKind;

namespace Sva.Formats.Tests;

public class FtraceVariantTests
{
    [Fact]
    public async Task five_x_headers_with_four_flag_columns_and_odd_task_names()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-5x-headers.txt");
        items.AssertKinds((GroupAddDevice, 1), (AttachDevice, 1), (IoPageFault, 1), (Map, 2), (Unmap, 2), (DetachDevice, 1), (GroupRemoveDevice, 1));
        var skipped = items.Skipped();
        Assert.Equal(12, skipped.Count);
        Assert.Equal(11, skipped.Count(s => s.Reason == "comment"));
        Assert.Contains(skipped, s => s.Reason == "unrecognised event 'sched_wakeup'" && s.Source.Line == 17);

        var obs = items.Observations();
        Assert.Equal("(udev-worker)", obs[0].Task);
        Assert.Equal("532", obs[0].Field("@pid"));
        Assert.Equal("7", obs[0].Field("groupID"));
        Assert.Equal("irq/26-AMD-Vi", obs[2].Task);
        Assert.Equal("154", obs[2].Field("@pid"));
        Assert.Equal("d...", obs[2].Field("@flags"));
        Assert.Equal("w", obs[2].Access);
        var map = obs[3];
        Assert.Equal("Web Content", map.Task);
        Assert.Equal((0xfff00000UL, 0xfff01000UL, 4096UL), (map.Address!.Value, map.End!.Value, map.Size!.Value));
        var oldMap = obs.Where(o => o.Kind == Map).Last();
        Assert.Null(oldMap.Field("iova_end"));
        Assert.Equal((0x100000UL, 0x102000UL, 8192UL), (oldMap.Address!.Value, oldMap.End!.Value, oldMap.Size!.Value));
        var oldUnmap = obs.Where(o => o.Kind == Unmap).Last();
        Assert.Equal("8192", oldUnmap.Field("unmapped_size"));
        Assert.Equal(0x102000UL, oldUnmap.End);
    }

    [Fact]
    public async Task six_x_intel_events_with_five_flag_columns_decode_descriptors_and_cache_tags()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-6x-intel.txt");
        items.AssertKinds((CacheTagAssign, 3), (PrqReport, 2), (QiSubmit, 3), (CacheTagFlushRange, 3), (CacheTagFlushAll, 1), (CacheTagUnassign, 1));
        Assert.Single(items.Skipped()); // CPU:2 [LOST 170 EVENTS]
        var obs = items.Observations();
        Assert.Equal(".....", obs[0].Field("@flags"));
        Assert.Equal(5, obs[0].Pasid);

        var prq = obs[3];
        Assert.Equal("0x1/0x2", prq.Field("private"));
        Assert.Equal("rx", prq.Access);
        Assert.Equal(4, prq.Group);

        var resp = obs[4];
        Assert.Equal("page_grp_resp", resp.Field("type"));
        Assert.Equal((5, "0000:6a:01.0", 0, 3, true), (resp.Pasid!.Value, resp.Device!, resp.ResponseCode!.Value, resp.Group!.Value, resp.Last!.Value));

        var piotlb = obs[5];
        Assert.Equal((5, 0x7f3a2c1b4000UL, 8192UL), (piotlb.Pasid!.Value, piotlb.Address!.Value, piotlb.Size!.Value));
        var devtlb = obs[6];
        Assert.Equal((5, 0x7f3a2c1b4000UL, 8192UL, "0000:6a:01.0"), (devtlb.Pasid!.Value, devtlb.Address!.Value, devtlb.Size!.Value, devtlb.Device!));

        var flush = obs[7];
        Assert.Equal((0x7f3a2c1b4000UL, 0x7f3a2c1b6000UL, 8192UL, 5), (flush.Address!.Value, flush.End!.Value, flush.Size!.Value, flush.Pasid!.Value));
        Assert.Equal("0x2", obs[8].Field("pages"));
        Assert.Equal("cache_tag_flush_range_np", obs[9].Field("@event"));
        Assert.Null(obs[10].Pasid); // pasid 0 = IOMMU_NO_PASID

        // a second boot: timestamps go backwards and are kept as printed
        Assert.Equal(2.000001, obs[^1].Timestamp);
        Assert.True(obs[^1].Timestamp < obs[^2].Timestamp);
        Assert.Equal("<...>", obs[^1].Task);
    }

    [Fact]
    public async Task trace_cmd_report_and_perf_script_layouts()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-perf-tracecmd.txt");
        items.AssertKinds((IoPageFault, 3), (CacheTagAssign, 1), (DevFault, 2));
        Assert.Equal("cpus=8", items.Skipped().Single().Text);
        var obs = items.Observations();
        Assert.Equal(("kworker/0:1", 0, 123.456789), (obs[0].Task!, obs[0].Cpu!.Value, obs[0].Timestamp!.Value));
        Assert.Null(obs[0].Field("@flags"));
        Assert.Equal("2b400000.gpu", obs[0].Device); // platform device kept as is
        Assert.Equal("panfrost", obs[0].Field("driver"));
        Assert.Equal("d..1.", obs[1].Field("@flags"));
        Assert.Equal(("accel", "4242", 5, "intel_iommu"), (obs[2].Task!, obs[2].Field("@pid")!, obs[2].Cpu!.Value, obs[2].Field("@system")!));
        Assert.Equal("4243", obs[3].Field("@tid"));
        Assert.Equal(("iommu", "r", 138), (obs[4].Field("@system")!, obs[4].Access!, obs[4].Group!.Value));
        Assert.Equal(new SourceRef("ftrace-perf-tracecmd.txt", 7, 8), obs[5].Source);
    }

    [Fact]
    public async Task out_of_tree_sva_event_variants()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-sva-variants.txt");
        items.AssertKinds((DevFault, 4), (DevPageResponse, 2), (SvaInvalidate, 1), (IoMm, 5), (SmmuResume, 1), (SmmuCdSync, 2), (SmmuEvt, 1), (IopfError, 1));
        Assert.Empty(items.Skipped());
        var obs = items.Observations();
        Assert.Equal("0x0000000000000000", obs[0].Field("fetch"));
        Assert.Equal((false, "rw"), (obs[1].Last!.Value, obs[1].Access!));
        Assert.True(obs[2].Last);
        // unrecoverable fault with flags lacking PASID_VALID: no PASID, no group
        Assert.Equal((null, null, null, "r"), (obs[3].Pasid, obs[3].Group, obs[3].Last, obs[3].Access));
        Assert.Equal((0xffff860e8000UL, 0), (obs[4].Address!.Value, obs[4].ResponseCode!.Value));
        Assert.Equal(2, obs[5].ResponseCode);
        Assert.Equal(("0000:00:03.0", 1, 0xffff860e6000UL, "1"), (obs[6].Device!, obs[6].Pasid!.Value, obs[6].Address!.Value, obs[6].Field("granu")!));
        Assert.Equal(["io_mm_alloc", "io_mm_attach", "io_mm_invalidate", "io_mm_detach", "io_mm_free"],
            obs.Where(o => o.Kind == IoMm).Select(o => o.Field("@event")));
        var ioInv = obs[9];
        Assert.Equal((0xffff860e6000UL, 0xffff860e8000UL), (ioInv.Address!.Value, ioInv.End!.Value));
        Assert.Equal("0000:00:03.0", obs[8].Device);
        Assert.Equal("0x1", obs[12].Field("resp"));
        Assert.Equal(1, obs[13].Pasid);
        Assert.Null(obs[14].Pasid);
        Assert.Equal("0x10", obs[15].Field("id"));
        Assert.Equal("0xfffffff2", obs[16].Field("err"));
    }

    [Fact]
    public async Task mail_quirks_quotes_wraps_run_together_records_split_headers_crlf()
    {
        var items = await TestData.ReadAsync("synthetic/ftrace-wrapped.txt");
        items.AssertKinds((CacheTagFlushRange, 1), (PrqReport, 1), (QiSubmit, 1), (DevFault, 1), (SmmuMmInvalidate, 2), (IoPageFault, 2), (SmmuMmRelease, 2));
        Assert.Equal(["Hi Baolu,", "With the patch applied I see these in the trace:", "Thanks,", "Jacob"], items.Skipped().Select(s => s.Text));

        var obs = items.Observations();
        string F(Observation o) => o.Source.ToString();
        // "| " quote, split between a field name and its value ("addr\n0x...")
        Assert.Equal("ftrace-wrapped.txt:5-6", F(obs[0]));
        Assert.Equal(0x7f3a2c1b4000UL, obs[0].Address);
        Assert.Equal("0x7f3a2c1b4000", obs[0].Field("addr"));
        // ">> " quote, optional tail on the next line
        Assert.Equal("ftrace-wrapped.txt:7-8", F(obs[1]));
        Assert.Equal("0x0/0x0", obs[1].Field("private"));
        // "> > " quote, last field on the next line
        Assert.Equal("ftrace-wrapped.txt:9-10", F(obs[2]));
        Assert.Equal(5, obs[2].Group);
        // split inside a hex number: joined without a space
        Assert.Equal("ftrace-wrapped.txt:11-12", F(obs[3]));
        Assert.Equal(0xffff860e6000UL, obs[3].Address);
        // two records on one line (with CRLF)
        Assert.Equal(["ftrace-wrapped.txt:13", "ftrace-wrapped.txt:13"], obs.Where(o => o.Kind == SmmuMmInvalidate).Select(F));
        // header columns kept, last field wrapped; header alone on one line, event on the next
        Assert.Equal("ftrace-wrapped.txt:14-15", F(obs[6]));
        Assert.Equal(("irq/26-AMD-Vi", 12.5), (obs[6].Task!, obs[6].Timestamp!.Value));
        Assert.Equal("ftrace-wrapped.txt:16-17", F(obs[7]));
        Assert.Equal(12.5001, obs[7].Timestamp);
        Assert.Equal(0xfff01000UL, obs[7].Address);
        // two header-led records run together on one line
        Assert.Equal([1, 2], obs.Where(o => o.Kind == SmmuMmRelease).Select(o => o.Pasid!.Value));
        Assert.Equal([20.0, 20.0001], obs.Where(o => o.Kind == SmmuMmRelease).Select(o => o.Timestamp!.Value));
        Assert.DoesNotContain(items, i => i is SkippedLine s && s.Text.Contains('\r'));
    }

    [Fact]
    public async Task a_line_that_is_only_an_event_name_at_the_end_is_joined_with_the_next_line()
    {
        var items = await TestData.ParseTextAsync(
            "> smmu_mm_release: pasid=3 smmu_unbind_free:\n> dev=0000:00:03.0 pasid=3\n", "ftrace");
        Assert.Equal([SmmuMmRelease, SmmuUnbindFree], items.Observations().Select(o => o.Kind));
        Assert.Equal(new SourceRef("inline.txt", 1, 2), items.Observations()[1].Source);
    }

    [Fact]
    public async Task dma_api_and_other_events_are_kept_as_skipped_lines()
    {
        var text = string.Join("\n",
            "  kworker/0:1-12    [000] ....   1.000000: dma_map_page: dev=0000:00:03.0 dir=TO_DEVICE dma_addr=1000 size=4096",
            "  kworker/0:1-12    [000] ....   1.000001: map_single: dev=0000:00:03.0 dev_addr=0x1000 phys_addr=0x2000 size=4096",
            "  kworker/0:1-12    [000] ....   1.000002: smmu_mm_release: pasid=4");
        var items = await TestData.ParseTextAsync(text, "ftrace");
        Assert.Equal(["unrecognised event 'dma_map_page'", "unrecognised event 'map_single'"], items.Skipped().Select(s => s.Reason));
        Assert.Equal(4, items.Observations().Single().Pasid);
    }
}
