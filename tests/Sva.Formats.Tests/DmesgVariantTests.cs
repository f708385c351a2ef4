using Sva.Formats.Captures;
using static Sva.Formats.Captures.ObservationKind;

namespace Sva.Formats.Tests;

public class DmesgVariantTests
{
    [Fact]
    public async Task dmar_fault_forms_prefixes_prq_errors_and_interleaved_oops()
    {
        var items = await TestData.ReadAsync("synthetic/dmesg-dmar-forms.txt");
        items.AssertKinds((DmarFault, 9), (DmarFaultStatus, 5), (DmarPrqError, 3), (GroupAddDevice, 2), (GroupRemoveDevice, 1));
        var skipped = items.Skipped();
        Assert.Equal([12, 13, 14, 15, 16, 17], skipped.Select(s => s.Source.Line));
        Assert.All(skipped, s => Assert.Equal("unrecognised line", s.Reason));

        var obs = items.Observations();
        Observation At(int line) => obs.Single(o => o.Source.Line == line);
        // 5.14+ with PASID
        Assert.Equal((5, "w", "0000:6a:01.0", 0x7f3a2c1b4000UL), (At(3).Pasid!.Value, At(3).Access!, At(3).Device!, At(3).Address!.Value));
        // 5.14-era [0x00:0x02.0]
        Assert.Equal(("0000:00:02.0", "0x00:0x02.0"), (At(4).Device!, At(4).Field("device")!));
        // 5.5-5.13: hex without 0x, PASID ffffffff = none, decimal reason
        Assert.Equal((null, 0x7cd80000UL, "06"), (At(5).Pasid, At(5).Address!.Value, At(5).Field("reason")!));
        Assert.Equal((2, 0x7cd81000UL, "0000:00:1f.6"), (At(6).Pasid!.Value, At(6).Address!.Value, At(6).Device!));
        // interrupt remapping fault: an index, no address
        Assert.Equal(("INTR-REMAP", "0x0", (ulong?)null, (string?)null), (At(7).Field("request")!, At(7).Field("index")!, At(7).Address, At(7).Access));
        // PRQ errors; the invalid request's descriptor is decoded
        Assert.Equal("Page request without PASID", At(9).Field("message"));
        Assert.Equal(("0000:6a:01.0", 5, 0x7f3a2c1b4000UL, "rw", true), (At(10).Device!, At(10).Pasid!.Value, At(10).Address!.Value, At(10).Access!, At(10).Last!.Value));
        Assert.Equal("dmar1", At(11).Field("iommu"));
        // journal prefixes
        Assert.Equal(("Jan 12 10:00:01", "host", (double?)null), (At(18).Field("@time")!, At(18).Field("@host")!, At(18).Timestamp));
        Assert.Equal(0.3611, At(19).Timestamp);
        Assert.Equal(DmarFaultStatus, At(20).Kind);
        Assert.Equal("2024-01-12T10:00:01,123456+01:00", At(21).Field("@time"));
        // wrapped free text, wrapped inside "[fault reason"
        Assert.Equal(new SourceRef("dmesg-dmar-forms.txt", 22, 23), At(22).Source);
        Assert.Equal("Present bit in root entry is clear", At(22).Field("reason_text"));
        Assert.Equal(new SourceRef("dmesg-dmar-forms.txt", 24, 25), At(24).Source);
        Assert.Equal("0x01", At(24).Field("reason"));
        // group changes
        Assert.Equal(("0000:00:02.0", "1"), (At(26).Device!, At(26).Field("groupID")!));
        Assert.Equal("0000:00:03.0", At(27).Device);
        Assert.Equal(GroupRemoveDevice, At(28).Kind);
        // timestamps going backwards (several boots) are kept as printed
        Assert.True(At(5).Timestamp < At(3).Timestamp);
    }

    [Fact]
    public async Task amdvi_one_line_two_line_mid_record_paste_and_cut_header()
    {
        var items = await TestData.ReadAsync("synthetic/dmesg-amdvi-variants.txt");
        items.AssertKinds((AmdViIoPageFault, 5), (AmdViInvalidDeviceRequest, 2), (AmdViEvent, 1));
        var skipped = items.Skipped();
        Assert.Equal([6, 7, 14], skipped.Select(s => s.Source.Line));
        Assert.StartsWith("incomplete:", skipped[0].Reason);
        Assert.StartsWith("truncated:", skipped[2].Reason);

        var obs = items.Observations();
        // paste starting in the middle of a 4.x two-line record
        Assert.Equal(("0000:00:14.0", 0xfdf9103300UL, "w"), (obs[0].Device!, obs[0].Address!.Value, obs[0].Access!));
        // 4.x two-line record gathered
        Assert.Equal(new SourceRef("dmesg-amdvi-variants.txt", 2, 3), obs[1].Source);
        Assert.Equal(5.1, obs[1].Timestamp);
        Assert.Equal(new SourceRef("dmesg-amdvi-variants.txt", 4, 5), obs[2].Source);
        Assert.Equal(AmdViInvalidDeviceRequest, obs[2].Kind);
        // driver prefix gives the device; "iommu ivhd0:" does not, device= does
        Assert.Equal("0000:01:00.0", obs[3].Device);
        Assert.Equal(("0000:05:00.0", "ivhd0", "r"), (obs[4].Device!, obs[4].Field("@dev")!, obs[4].Access!));
        Assert.Equal(3, obs[5].Pasid);
        Assert.Equal(("ILLEGAL_DEV_TABLE_ENTRY", (int?)null), (obs[6].Field("event")!, obs[6].Pasid));
        // one-line record wrapped by a mail client
        Assert.Equal(new SourceRef("dmesg-amdvi-variants.txt", 12, 13), obs[7].Source);
        Assert.Equal(0xcfc01700UL, obs[7].Address);
    }

    [Fact]
    public async Task smmuv3_records_old_and_new_interleaved_orphans_stall_and_truncated()
    {
        var items = await TestData.ReadAsync("synthetic/dmesg-smmuv3-variants.txt");
        items.AssertKinds((SmmuV3Event, 5));
        var skipped = items.Skipped();
        Assert.Equal([1, 2, 10, 29], skipped.Select(s => s.Source.Line));
        Assert.All(skipped.Take(2), s => Assert.StartsWith("orphan SMMUv3 event word", s.Reason));
        Assert.Equal(31, skipped[3].Source.EndLine);
        Assert.StartsWith("truncated:", skipped[3].Reason);

        var obs = items.Observations();
        // old kernel: words only, decoded from the raw words
        var a = obs[0];
        Assert.Equal(new SourceRef("dmesg-smmuv3-variants.txt", 3, 7), a.Source);
        // (issue 12: a master known only by its StreamID is named after it and the SMMU instance)
        Assert.Equal((1, 0xffff860e6000UL, "r", "sid0x18@arm-smmu-v3.0.auto"), (a.Pasid!.Value, a.Address!.Value, a.Access!, a.Device));
        Assert.Equal(("F_TRANSLATION", "0x18", "0x1", "1", "1", "0x3"), (a.Field("event")!, a.Field("sid")!, a.Field("ssid")!, a.Field("ssv")!, a.Field("stall")!, a.Field("stag")!));
        // C_BAD_CD with an unrelated line in between; that line is reported after the record
        var b = obs[1];
        Assert.Equal(new SourceRef("dmesg-smmuv3-variants.txt", 8, 14), b.Source);
        Assert.Equal(("C_BAD_CD", "0000:00:03.0", 1), (b.Field("event")!, b.Device!, b.Pasid!.Value));
        Assert.Null(b.Access);
        var order = items.Select(i => i.Source.Line).ToList();
        Assert.True(order.IndexOf(8) < order.IndexOf(10));
        // 6.x fault with decoded lines (the decoded line wrapped) and a stalled transaction
        var c = obs[2];
        Assert.Equal(new SourceRef("dmesg-smmuv3-variants.txt", 15, 22), c.Source);
        Assert.Equal((2, 0xffffb9d15000UL, "r", "0001:06:00.0"), (c.Pasid!.Value, c.Address!.Value, c.Access!, c.Device!));
        Assert.Equal(("1", "0x5", "priv"), (c.Field("stall")!, c.Field("stag")!, c.Field("priv")!));
        // decoded line alone (no words): ssid 0 means no PASID; unassigned sid has no client device
        var e = obs[3];
        Assert.Equal(("C_BAD_STREAMID", "0x02", (string?)null, (int?)null), (e.Field("event")!, e.Field("id")!, e.Device, e.Pasid));
        // fetch fault: fetch address from word 3
        var f = obs[4];
        Assert.Equal(("F_CD_FETCH", "0x81234568", (int?)null), (f.Field("event")!, f.Field("fetch_addr")!, f.Pasid));
    }

    [Fact]
    public async Task dmesg_wall_clock_caller_id_level_prefix_and_syslog_level()
    {
        var text = string.Join("\n",
            "[Mon Jan 12 10:00:01 2024] DMAR: DRHD: handling fault status reg 3",
            "[  12.345678][  T981] DMAR: DRHD: handling fault status reg 2",
            "[  12.345679][    C3] DMAR: DRHD: handling fault status reg 1",
            "kern  :err   : [  12.345680] DMAR: DRHD: handling fault status reg 0",
            "<3>DMAR: DRHD: handling fault status reg 4");
        var obs = (await TestData.ParseTextAsync(text, "dmesg")).Observations();
        Assert.Equal(5, obs.Count);
        Assert.Equal("Mon Jan 12 10:00:01 2024", obs[0].Field("@time"));
        Assert.Equal(("T981", 12.345678), (obs[1].Field("@caller")!, obs[1].Timestamp!.Value));
        Assert.Equal(3, obs[2].Cpu);
        Assert.Equal(12.34568, obs[3].Timestamp);
        Assert.Equal("4", obs[4].Field("status"));
    }

    [Fact]
    public async Task run_together_dmesg_lines_are_split_at_the_timestamp()
    {
        var text = "[    0.361089] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7cd80000 [fault reason 0x01] Present bit in root entry is clear [    0.361100] DMAR: DRHD: handling fault status reg 3";
        var obs = (await TestData.ParseTextAsync(text, "dmesg")).Observations();
        Assert.Equal([DmarFault, DmarFaultStatus], obs.Select(o => o.Kind));
        Assert.Equal("Present bit in root entry is clear", obs[0].Field("reason_text"));
        Assert.Equal(0.3611, obs[1].Timestamp);
    }

    [Fact]
    public async Task pre_4x_dmar_fault_with_the_reason_on_its_own_line()
    {
        var text = string.Join("\n",
            "[    1.000000] DMAR:[DMA Read] Request device [00:02.0] fault addr 7cd80000 ",
            "[    1.000001] DMAR:[fault reason 06] PTE Read access is not set",
            "[    2.000000] DMAR:[DMA Write] Request device [00:02.0] fault addr 7cd81000 ",
            "[    2.000001] DMAR: DRHD: handling fault status reg 3",
            "[    3.000000] DMAR:[fault reason 05] PTE Write access is not set");
        var items = await TestData.ParseTextAsync(text, "dmesg");
        var obs = items.Observations();
        Assert.Equal([DmarFault, DmarFault, DmarFaultStatus], obs.Select(o => o.Kind));
        Assert.Equal(new SourceRef("inline.txt", 1, 2), obs[0].Source);
        Assert.Equal(("06", "PTE Read access is not set", 0x7cd80000UL, "r"), (obs[0].Field("reason")!, obs[0].Field("reason_text")!, obs[0].Address!.Value, obs[0].Access!));
        Assert.Null(obs[1].Field("reason"));
        Assert.Equal(5, items.Skipped().Single().Source.Line);
    }
}
