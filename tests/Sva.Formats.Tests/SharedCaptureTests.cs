using Sva.Formats.Captures;
using static Sva.Formats.Captures.ObservationKind;

namespace Sva.Formats.Tests;

/// <summary>The public captures in shared/captures (copied to data/captures): exact counts and spot checks.</summary>
public class SharedCaptureTests
{
    [Fact]
    public async Task dmesg_amdvi_1_has_four_io_page_faults_of_the_ath10k_device()
    {
        var items = await TestData.ReadAsync("captures/dmesg-amdvi-1.txt");
        items.AssertKinds((AmdViIoPageFault, 4));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:01:00.0"], items.Devices());
        Assert.Equal([null], items.Pasids());
        var first = items.Observations()[0];
        Assert.Equal("dmesg", first.Format);
        Assert.Equal(0xcfc016d0UL, first.Address);
        Assert.Equal(67.409657, first.Timestamp);
        Assert.Equal("w", first.Access); // flags 0x0070 has EVENT_FLAG_RW
        Assert.Equal("0x000d", first.Field("domain"));
        Assert.Equal("ath10k_pci", first.Field("@driver"));
        Assert.Equal(new SourceRef("dmesg-amdvi-1.txt", 1, 1), first.Source);
        Assert.Equal([0xcfc016d0UL, 0xcf243ad0UL, 0xcfd866d0UL, 0xcec96550UL], items.Observations().Select(o => o.Address!.Value));
    }

    [Fact]
    public async Task dmesg_dmar_1_has_two_faults_around_one_status_line()
    {
        var items = await TestData.ReadAsync("captures/dmesg-dmar-1.txt");
        items.AssertKinds((DmarFault, 2), (DmarFaultStatus, 1));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:00:02.0"], items.Devices());
        Assert.Equal([null], items.Pasids());
        var obs = items.Observations();
        Assert.Equal([DmarFault, DmarFaultStatus, DmarFault], obs.Select(o => o.Kind));
        Assert.Equal(0x7cd80000UL, obs[0].Address);
        Assert.Equal("r", obs[0].Access);
        Assert.Equal("0x01", obs[0].Field("reason"));
        Assert.Equal("Present bit in root entry is clear", obs[0].Field("reason_text"));
        Assert.Equal("3", obs[1].Field("status"));
        Assert.Equal(0x7cd87000UL, obs[2].Address);
    }

    [Fact]
    public async Task dmesg_smmuv3_1_gathers_seven_lines_into_one_event()
    {
        var items = await TestData.ReadAsync("captures/dmesg-smmuv3-1.txt");
        items.AssertKinds((SmmuV3Event, 1));
        Assert.Empty(items.Skipped());
        var e = items.Observations().Single();
        Assert.Equal(new SourceRef("dmesg-smmuv3-1.txt", 1, 7), e.Source);
        Assert.Equal("0001:06:00.0", e.Device);
        Assert.Null(e.Pasid); // SSV clear in word 0
        Assert.Equal(0xff9bc000UL, e.Address);
        Assert.Equal("w", e.Access);
        Assert.Equal(70.355743, e.Timestamp);
        Assert.Equal("0x10", e.Field("id"));
        Assert.Equal("F_TRANSLATION", e.Field("event"));
        Assert.Equal("0x20600", e.Field("sid"));
        Assert.Equal("0", e.Field("ssv"));
        Assert.Equal("0", e.Field("stall"));
        Assert.Equal("0x0", e.Field("stag"));
        Assert.Equal("Input address caused fault", e.Field("class"));
        Assert.Equal("0x0002060000000010", e.Field("evt[0]"));
        Assert.Equal("0x0000000000000000", e.Field("evt[3]"));
        Assert.Equal("arm-smmu-v3.5.auto", e.Field("@dev"));
        Assert.Equal(7, e.RawText.Split('\n').Length);
    }

    [Fact]
    public async Task ftrace_iommu_2_has_six_io_page_faults_with_header_columns()
    {
        var items = await TestData.ReadAsync("captures/ftrace-iommu-2.txt");
        items.AssertKinds((IoPageFault, 6));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:05:00.0"], items.Devices());
        Assert.Equal([null], items.Pasids());
        var first = items.Observations()[0];
        Assert.Equal("irq/24-AMD-Vi", first.Task);
        Assert.Equal("48", first.Field("@pid"));
        Assert.Equal(2, first.Cpu);
        Assert.Equal(978.554289, first.Timestamp);
        Assert.Equal("....", first.Field("@flags"));
        Assert.Equal("[drvname]", first.Field("driver"));
        Assert.Equal(0x91482640UL, first.Address);
        Assert.Equal("r", first.Access);
        Assert.Equal(0x914826a0UL, items.Observations()[5].Address);
    }

    [Fact]
    public async Task ftrace_prq_vtd_1_has_eight_page_requests_four_of_them_last()
    {
        var items = await TestData.ReadAsync("captures/ftrace-prq-vtd-1.txt");
        items.AssertKinds((PrqReport, 8));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:00:0a.0"], items.Devices());
        Assert.Equal([2], items.Pasids());
        var obs = items.Observations();
        Assert.Equal(4, obs.Count(o => o.Last == true));
        Assert.Equal(0x559ef6f97000UL, obs[0].Address); // page frame 0x559ef6f97 * 4096
        Assert.Equal("r", obs[0].Access);
        Assert.False(obs[0].Last);
        Assert.Equal("rw", obs[1].Access);
        Assert.True(obs[1].Last);
        Assert.Equal(0x559ef6f9c000UL, obs[1].Address);
        Assert.All(obs, o => Assert.Equal(1, o.Group));
        Assert.Equal("dmar0", obs[0].Field("iommu"));
        Assert.Equal("0x50", obs[0].Field("rid"));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), obs.Select(o => o.Field("seq")));
    }

    [Fact]
    public async Task ftrace_sva_smmu_1_is_a_bind_two_faults_four_invalidations_and_an_unbind()
    {
        var items = await TestData.ReadAsync("captures/ftrace-sva-smmu-1.txt");
        items.AssertKinds((SmmuBindAlloc, 1), (DevFault, 2), (DevPageResponse, 2), (SmmuMmInvalidate, 4), (SmmuUnbindFree, 1));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:00:03.0"], items.Devices());
        Assert.Equal([1], items.Pasids());
        var obs = items.Observations();
        Assert.Equal([SmmuBindAlloc, DevFault, DevPageResponse, DevFault, DevPageResponse, SmmuMmInvalidate, SmmuMmInvalidate, SmmuMmInvalidate, SmmuMmInvalidate, SmmuUnbindFree],
            obs.Select(o => o.Kind));
        var fault = obs[1];
        Assert.Equal(0xffff860e6000UL, fault.Address);
        Assert.Equal(74, fault.Group);
        Assert.True(fault.Last);
        Assert.Equal("w", fault.Access);
        Assert.Equal("2", fault.Field("type"));
        Assert.Equal(74, obs[2].Group);
        Assert.Equal(0, obs[2].ResponseCode);
        Assert.Equal(143, obs[3].Group);
        var inv = obs[5];
        Assert.Equal(0xffff860e6000UL, inv.Address);
        Assert.Equal(0xffff860e8000UL, inv.End);
        Assert.Equal(8192UL, inv.Size);
        Assert.Null(inv.Timestamp);
        Assert.Null(inv.Task);
    }

    [Fact]
    public async Task ftrace_sva_smmu_2_has_the_release_between_fault_and_response_and_an_invalid_response()
    {
        var items = await TestData.ReadAsync("captures/ftrace-sva-smmu-2.txt");
        Assert.Equal(7, items.Observations().Count);
        items.AssertKinds((SmmuBindAlloc, 1), (DevFault, 2), (SmmuMmRelease, 1), (DevPageResponse, 2), (SmmuUnbindFree, 1));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:00:03.0"], items.Devices());
        Assert.Equal([1], items.Pasids());
        var obs = items.Observations();
        Assert.Equal([SmmuBindAlloc, DevFault, SmmuMmRelease, DevPageResponse, DevFault, DevPageResponse, SmmuUnbindFree], obs.Select(o => o.Kind));
        Assert.Equal([0, 1], obs.Where(o => o.Kind == DevPageResponse).Select(o => o.ResponseCode!.Value));
        Assert.Equal([259, 383], obs.Where(o => o.Kind == DevFault).Select(o => o.Group!.Value));
        Assert.All(obs.Where(o => o.Kind == DevFault), f => Assert.Equal(0xffffb9d15000UL, f.Address));
        Assert.Equal(1, obs[2].Pasid);
    }

    [Fact]
    public async Task qemu_trace_vtd_2_has_slpte_walks_and_translations_of_device_0b()
    {
        var items = await TestData.ReadAsync("captures/qemu-trace-vtd-2.unwrapped.txt");
        items.AssertKinds((QemuVtdSlpte, 4), (QemuVtdTranslate, 9));
        Assert.Empty(items.Skipped());
        Assert.Equal(["0000:0b:00.0"], items.Devices());
        Assert.Equal([null], items.Pasids()); // pasid 0xffffffff
        var obs = items.Observations();
        Assert.Equal(1676297375.587477, obs[0].Timestamp);
        Assert.Equal("278365", obs[0].Field("@pid"));
        Assert.Equal(0x800000000UL, obs[0].Address);
        Assert.Equal("r", obs[0].Access);
        Assert.Equal("w", obs[2].Access);
        var tr = obs[1];
        Assert.Equal(QemuVtdTranslate, tr.Kind);
        Assert.Equal(0x800000000UL, tr.Address);
        Assert.Equal(4096UL, tr.Size);
        Assert.Equal("0x1f2556000", tr.Field("gpa"));
        Assert.Equal("0b:00.00", tr.Field("dev"));
    }

    [Theory]
    [InlineData("captures/dmesg-amdvi-1.txt", "dmesg")]
    [InlineData("captures/dmesg-dmar-1.txt", "dmesg")]
    [InlineData("captures/dmesg-smmuv3-1.txt", "dmesg")]
    [InlineData("captures/ftrace-iommu-2.txt", "ftrace")]
    [InlineData("captures/ftrace-prq-vtd-1.txt", "ftrace")]
    [InlineData("captures/ftrace-sva-smmu-1.txt", "ftrace")]
    [InlineData("captures/ftrace-sva-smmu-2.txt", "ftrace")]
    [InlineData("captures/qemu-trace-vtd-2.unwrapped.txt", "qemu-trace")]
    public async Task every_capture_parses_the_same_with_its_format_named_as_with_auto(string file, string format)
    {
        var auto = (await TestData.ReadAsync(file)).Observations();
        var named = (await TestData.ReadAsync(file, format)).Observations();
        Assert.Equal(auto.Count, named.Count);
        Assert.All(auto, o => Assert.Equal(format, o.Format));
        for (int i = 0; i < auto.Count; i++)
            TestData.AssertSameMeaning(named[i], auto[i]);
    }
}
