using Sva.Formats.Captures;
using static Sva.Formats.Captures.ObservationKind;

namespace Sva.Formats.Tests;

/// <summary>Issue 12: real pastes (sources in data/README.md) of Arm SMMU v1/v2 faults, SMMUv3 events other than 0x10,
/// raw-word SMMUv3 records, vendor prefixes, dmesg -H, pastes that start with a shell command or a label, amdgpu GPU-MMU
/// faults that are no IOMMU PASIDs.</summary>
public class PastedRoundTwoTests
{
    private static async Task<List<CaptureItem>> Read(string file)
    {
        var items = await TestData.ReadAsync(file);
        // every file reads the same in strict mode: no malformed line, only skipped ones
        var strict = await TestData.ReadAsync(file, "dmesg", lenient: false);
        Assert.Equal(items.Count, strict.Count);
        return items;
    }

    private static List<string?> Sids(IEnumerable<CaptureItem> items) => items.Observations().Select(o => o.Field("sid")).ToList();

    [Fact]
    public async Task arm_smmu_context_fault_behind_a_hex_offset_column()
    {
        var items = await Read("captures/dmesg-armsmmu-offset-column.txt");
        items.AssertKinds((ArmSmmuContextFault, 1));
        var o = items.Observations().Single();
        Assert.Equal(new SourceRef("dmesg-armsmmu-offset-column.txt", 1, 4), o.Source);
        Assert.Equal((1263.468579, 0xfd7ff000UL, "0x19c3", "TF", "r"), (o.Timestamp!.Value, o.Address!.Value, o.Field("sid")!, o.Field("fault")!, o.Access!));
        Assert.Equal(("0x402", "10", "0x0000000000000000", "15000000.iommu"), (o.Field("fsr")!, o.Field("cb")!, o.Field("soft_phys")!, o.Field("@dev")!));
        Assert.Null(o.Device);
        Assert.Null(o.Pasid);
        // the remoteproc line printed in between is kept, after the record
        Assert.Equal([3], items.Skipped().Select(s => s.Source.Line));
        Assert.Equal([1, 3], items.Select(i => i.Source.Line));
    }

    [Fact]
    public async Task arm_smmu_context_fault_with_callbacks_suppressed_and_a_stack_trace()
    {
        var items = await Read("captures/dmesg-armsmmu-callbacks-stack.txt");
        items.AssertKinds((ArmSmmuContextFault, 1));
        var o = items.Observations().Single();
        Assert.Equal((2, "0x409", 0xff3cf000UL, "TF"), (o.Source.Line, o.Field("sid")!, o.Address!.Value, o.Field("fault")!));
        Assert.Equal(32, items.Skipped().Count); // "callbacks suppressed", "Stack trace:", the oops lines
        Assert.Equal(Enumerable.Range(1, 33).Where(l => l != 2), items.Skipped().Select(s => s.Source.Line).Order());
    }

    [Fact]
    public async Task arm_smmu_paste_starting_mid_record_gathers_fsr_and_fsynr0_lines()
    {
        var items = await Read("captures/dmesg-armsmmu-mid-record.txt");
        items.AssertKinds((ArmSmmuContextFault, 4));
        var skipped = items.Skipped().Single();
        Assert.Equal(1, skipped.Source.Line);
        Assert.StartsWith("orphan arm-smmu", skipped.Reason);
        var obs = items.Observations();
        Assert.Equal(["0x800", "0xc40", "0xc40", "0x800"], Sids(items));
        Assert.Equal([2, 5, 8, 11], obs.Select(o => o.Source.Line));
        Assert.All(obs, o => Assert.Equal(o.Source.Line + 2, o.Source.EndLine));
        Assert.Equal([0x9c4b9000UL, 0x9c4b9d00UL, 0x9c4ba700UL, 0x9c4bb000UL], obs.Select(o => o.Address!.Value));
        Assert.All(obs, o => Assert.Equal(("TF", "Format=2 TF", "S1CBNDX=124 PNU PLVL=0", "r"), (o.Field("fault")!, o.Field("fsr_flags")!, o.Field("fsynr0_flags")!, o.Access!)));
        Assert.Equal([null], items.Pasids());
        Assert.Empty(items.Devices());
    }

    [Fact]
    public async Task arm_smmu_permission_fault_on_a_write_then_driver_register_dump()
    {
        var items = await Read("captures/dmesg-armsmmu-ufs-pf.txt");
        items.AssertKinds((ArmSmmuContextFault, 1));
        var o = items.Observations().Single();
        Assert.Equal((new SourceRef("dmesg-armsmmu-ufs-pf.txt", 1, 3), "0x80", "PF", "w", 0xff8c7c000UL),
            (o.Source, o.Field("sid")!, o.Field("fault")!, o.Access!, o.Address!.Value));
        Assert.Equal(11, items.Skipped().Count);
    }

    [Fact]
    public async Task arm_smmu_fault_with_caller_ids()
    {
        var items = await Read("captures/dmesg-armsmmu-caller-id.txt");
        items.AssertKinds((ArmSmmuContextFault, 1));
        var o = items.Observations().Single();
        Assert.Equal((0, "C0", 116.882012, "0x1004", "33"), (o.Cpu!.Value, o.Field("@caller")!, o.Timestamp!.Value, o.Field("sid")!, o.Field("cb")!));
        Assert.Equal(6, items.Skipped().Count);
    }

    [Fact]
    public async Task arm_smmu_global_faults_quoted_in_a_mail_with_labels_on_their_own_lines()
    {
        var items = await Read("captures/mail-armsmmu-global-fault-labels.txt");
        items.AssertKinds((ArmSmmuGlobalFault, 2));
        var obs = items.Observations();
        Assert.Equal([new SourceRef("mail-armsmmu-global-fault-labels.txt", 7, 8), new SourceRef("mail-armsmmu-global-fault-labels.txt", 11, 12)], obs.Select(o => o.Source));
        Assert.Equal(["0x43", "0x4c3"], Sids(items));
        Assert.All(obs, o => Assert.Equal(("USF", "0x00000002", (string?)null), (o.Field("fault")!, o.Field("gfsr")!, o.Device)));
        // "Quoting ...", the mail text, "QUP0:", "QUP1:", the sign-offs
        Assert.Equal([1, 2, 3, 4, 6, 10, 14, 15, 17, 18], items.Skipped().Select(s => s.Source.Line));
        Assert.Equal("dmesg", CaptureReader.Detect(File.ReadAllLines(TestData.PathOf("captures/mail-armsmmu-global-fault-labels.txt"))).Name);
    }

    [Fact]
    public async Task smmuv3_event_0x07_behind_a_vendor_task_prefix_after_the_command_line()
    {
        var items = await Read("captures/dmesg-smmuv3-vendor-prefix-0x07.txt");
        items.AssertKinds((SmmuV3Event, 2));
        var obs = items.Observations();
        Assert.Equal([new SourceRef("dmesg-smmuv3-vendor-prefix-0x07.txt", 2, 6), new SourceRef("dmesg-smmuv3-vendor-prefix-0x07.txt", 7, 11)], obs.Select(o => o.Source));
        Assert.All(obs, o =>
        {
            Assert.Equal(("F_TRANSL_FORBIDDEN", "0x07", "0x100", "0"), (o.Field("event")!, o.Field("id")!, o.Field("sid")!, o.Field("ssv")!));
            Assert.Equal(("sid0x100@arm-smmu-v3.0.auto", (int?)null, 0UL, "w"), (o.Device!, o.Pasid, o.Address!.Value, o.Access!));
            Assert.Equal(("irq/13-arm-smmu", 0, "134", "arm-smmu-v3.0.auto"), (o.Task!, o.Cpu!.Value, o.Field("@pid")!, o.Field("@dev")!));
        });
        var skipped = items.Skipped();
        Assert.Equal([1, 12], skipped.Select(s => s.Source.Line));
        Assert.Equal("unrecognised line", skipped[0].Reason); // "sudo dmesg | grep smmu"
        Assert.StartsWith("truncated:", skipped[1].Reason);   // the paste ends after an event's first line
        var detection = CaptureReader.DetectDetailed(File.ReadAllLines(TestData.PathOf("captures/dmesg-smmuv3-vendor-prefix-0x07.txt")));
        Assert.Equal("dmesg", detection.Format.Name);
        Assert.Equal([2, 3, 4, 5, 6, 7, 8, 9, 10, 11], detection.FittingLines);
    }

    [Fact]
    public async Task smmuv3_decoded_events_after_callbacks_suppressed_and_a_blank_line()
    {
        var items = await Read("captures/dmesg-smmuv3-decoded-callbacks.txt");
        items.AssertKinds((SmmuV3Event, 2));
        var obs = items.Observations();
        Assert.Equal([new SourceRef("dmesg-smmuv3-decoded-callbacks.txt", 2, 8), new SourceRef("dmesg-smmuv3-decoded-callbacks.txt", 9, 16)], obs.Select(o => o.Source));
        Assert.All(obs, o => Assert.Equal(("0000:c1:00.0", (int?)null, 0UL, "w", "0xc100"), (o.Device!, o.Pasid, o.Address!.Value, o.Access!, o.Field("sid")!)));
        Assert.Equal([1], items.Skipped().Select(s => s.Source.Line));
    }

    [Fact]
    public async Task smmuv3_raw_words_only_decode_stream_id_stall_tag_and_address()
    {
        var items = await Read("captures/dmesg-smmuv3-raw-words-stall.txt");
        items.AssertKinds((SmmuV3Event, 4));
        var obs = items.Observations();
        Assert.Equal([1, 6, 11, 16], obs.Select(o => o.Source.Line));
        Assert.Equal(21, obs[3].Source.EndLine); // a hns3 line printed between its words
        Assert.Equal(["0x3f", "0x43e", "0x436", "0x43a"], obs.Select(o => o.Field("stag")!));
        Assert.Equal([0xa50e0800UL, 0xa50a0800UL, 0xa50a0880UL, 0xa50e0840UL], obs.Select(o => o.Address!.Value));
        Assert.All(obs, o =>
        {
            Assert.Equal(("sid0x3501@arm-smmu-v3.2.auto", (int?)null, "r"), (o.Device!, o.Pasid, o.Access!));
            Assert.Equal(("F_TRANSLATION", "0x3501", "0", "1", "sid", "Input address caused fault"),
                (o.Field("event")!, o.Field("sid")!, o.Field("ssv")!, o.Field("stall")!, o.Field("device_from")!, o.Field("class")!));
        });
        var skipped = items.Skipped();
        Assert.Equal([20, 22, 23, 25], skipped.Select(s => s.Source.Line));
        Assert.StartsWith("truncated:", skipped[2].Reason);
        Assert.Equal(24, skipped[2].Source.EndLine);
    }

    [Fact]
    public async Task smmuv3_raw_words_quoted_in_a_mail_with_interleaved_lines()
    {
        var items = await Read("captures/mail-smmuv3-raw-words-interleaved.txt");
        items.AssertKinds((GroupAddDevice, 1), (SmmuV3Event, 3));
        var smmu = items.Observations().Where(o => o.Kind == SmmuV3Event).ToList();
        Assert.Equal([new SourceRef("mail-smmuv3-raw-words-interleaved.txt", 39, 47), new SourceRef("mail-smmuv3-raw-words-interleaved.txt", 49, 53),
            new SourceRef("mail-smmuv3-raw-words-interleaved.txt", 54, 59)], smmu.Select(o => o.Source));
        Assert.All(smmu, o => Assert.Equal(("sid0x200@9050000.smmuv3", (int?)null, 0UL, "w", "0"), (o.Device!, o.Pasid, o.Address!.Value, o.Access!, o.Field("stall")!)));
        Assert.Equal(["0000:02:00.0", "sid0x200@9050000.smmuv3"], items.Devices());
        Assert.Equal(1.966934, smmu[0].Timestamp);
        // everything else of the mail is kept as skipped lines, in file order
        // (16 lines make the 4 records)
        Assert.Equal(File.ReadAllLines(TestData.PathOf("captures/mail-smmuv3-raw-words-interleaved.txt")).Count(l => l.Trim(' ', '>').Length > 0) - 16,
            items.Skipped().Count);
        var lines = items.Select(i => i.Source.Line).ToList();
        Assert.True(lines.Zip(lines.Skip(1)).All(p => p.First <= p.Second), string.Join(",", lines));
    }

    [Fact]
    public async Task amdgpu_gpu_mmu_faults_are_not_iommu_pasids()
    {
        var items = await Read("captures/dmesg-amdgpu-gfxhub-pasid.txt");
        Assert.Empty(items.Observations());
        Assert.Equal(15, items.Skipped().Count);
        Assert.All(items.Skipped(), s => Assert.Equal("unrecognised line", s.Reason));
        Assert.Equal("dmesg", CaptureReader.Detect(File.ReadAllLines(TestData.PathOf("captures/dmesg-amdgpu-gfxhub-pasid.txt"))).Name);
    }

    [Fact]
    public async Task dmesg_human_minute_stamps_and_deltas_reconstruct_the_time()
    {
        var items = await Read("synthetic/dmesg-human.txt");
        items.AssertKinds((SmmuV3Event, 1), (DmarFault, 1), (DmarFaultStatus, 1), (ArmSmmuContextFault, 1), (AmdViIoPageFault, 1));
        var obs = items.Observations();
        Observation At(int line) => obs.Single(o => o.Source.Line == line);
        Assert.Equal(new SourceRef("dmesg-human.txt", 1, 7), At(1).Source);
        Assert.Equal((0.0, "Aug 4 09:48:00.000000", "Aug 4 09:48", "0001:06:00.0"), (At(1).Timestamp!.Value, At(1).Field("@time")!, At(1).Field("@reltime")!, At(1).Device!));
        // the unrelated line's delta (+2.5 s) counts; the next minute stamp is later than the running clock
        Assert.Equal((60.0, "Aug 4 09:49:00.000000"), (At(9).Timestamp!.Value, At(9).Field("@time")!));
        Assert.Equal((60.000011, "+0.000011", "Aug 4 09:49:00.000011"), (At(10).Timestamp!.Value, At(10).Field("@reltime")!, At(10).Field("@time")!));
        // inside a mail quote, wrapped inside the record
        Assert.Equal((new SourceRef("dmesg-human.txt", 12, 15), 120.0, "0x19c3"), (At(12).Source, At(12).Timestamp!.Value, At(12).Field("sid")!));
        // a minute stamp going backwards (another boot) is kept as printed
        Assert.Equal((-60.0, "Aug 4 09:47:00.000000", "0000:00:14.0"), (At(17).Timestamp!.Value, At(17).Field("@time")!, At(17).Device!));
        Assert.Equal([8], items.Skipped().Select(s => s.Source.Line));
    }

    [Fact]
    public async Task arm_smmu_downstream_tegra_context_fault_line()
    {
        var items = await Read("captures/dmesg-armsmmu-tegra-downstream.txt");
        var o = Assert.Single(items.Observations());
        Assert.Equal((ArmSmmuContextFault, "0x11", "17", 0x17fe0fe00UL, "21", "r", (string?)null),
            (o.Kind, o.Field("sid")!, o.Field("sid_dec")!, o.Address!.Value, o.Field("cb")!, o.Access!, o.Field("fault")));
        Assert.Empty(items.Skipped());
    }

    [Fact]
    public async Task arm_smmu_wrapped_inside_a_value_journal_prefix_and_blocked_stream_before_a_global_fault()
    {
        var text = string.Join("\n",
            "Jan 12 10:00:01 host kernel: arm-smmu 15000000.iommu: Unhandled context fault: fsr=0x402, iova=0xfd7ff000, fsynr=0x540003, cbfrsynra=0x19",
            "c3, cb=10",
            "Jan 12 10:00:02 host kernel: arm-smmu 15000000.iommu: Blocked unknown Stream ID 0x2c00; boot with \"arm-smmu.disable_bypass=0\" to allow, but this is unsafe",
            "Jan 12 10:00:02 host kernel: arm-smmu 15000000.iommu: Unexpected global fault, this could be serious",
            "Jan 12 10:00:02 host kernel: arm-smmu 15000000.iommu: \tGFSR 0x80000002, GFSYNR0 0x00000000, GFSYNR1 0x00002c00, GFSYNR2 0x00000000");
        var items = await TestData.ParseTextAsync(text, "dmesg");
        items.AssertKinds((ArmSmmuContextFault, 1), (ArmSmmuGlobalFault, 1));
        var obs = items.Observations();
        Assert.Equal((new SourceRef("inline.txt", 1, 2), "0x19c3", "Jan 12 10:00:01"), (obs[0].Source, obs[0].Field("sid")!, obs[0].Field("@time")!));
        Assert.Equal((new SourceRef("inline.txt", 3, 5), "0x2c00", "USF|MULTI"), (obs[1].Source, obs[1].Field("sid")!, obs[1].Field("fault")!));
        Assert.Empty(items.Skipped());
    }

    [Fact]
    public async Task dumps_after_a_fault_callbacks_suppressed_and_dmesg_T_read_as_before()
    {
        // printk formats of the VT-d fault PTE dump, the AMD-Vi DTE dump and the ratelimit notice (synthetic values)
        var text = string.Join("\n",
            "[   12.000000] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7cd80000 [fault reason 0x01] Present bit in root entry is clear",
            "[   12.000001] DMAR: Dump dmar0 table entries for IOVA 0x7cd80000",
            "[   12.000002] DMAR: scalable mode root entry: hi 0x0000000000000000, low 0x000000010d9a3001",
            "[   12.000003] DMAR: pasid dir entry: 0x000000010c4ff001",
            "[   12.000004] DMAR: pasid table entry[0]: 0x0000000000000000",
            "[   12.000005] DMAR: pte level: 4, pte value: 0x000000010b7c1003",
            "[   12.000006] AMD-Vi: DTE[0]: 6000000000000003",
            "[   12.000007] amd_iommu_report_page_fault: 96 callbacks suppressed",
            "[Mon Jan 12 10:00:01 2024] DMAR: DRHD: handling fault status reg 3");
        var items = await TestData.ParseTextAsync(text, "dmesg");
        items.AssertKinds((DmarFault, 1), (DmarFaultStatus, 1));
        Assert.Equal("Present bit in root entry is clear", items.Observations()[0].Field("reason_text"));
        Assert.Equal(("Mon Jan 12 10:00:01 2024", (double?)null), (items.Observations()[1].Field("@time")!, items.Observations()[1].Timestamp));
        Assert.Equal([2, 3, 4, 5, 6, 7, 8], items.Skipped().Select(s => s.Source.Line));
        Assert.Equal([null], items.Pasids());
    }

    [Fact]
    public async Task dmesg_human_deltas_before_any_minute_stamp_count_from_zero()
    {
        var text = string.Join("\n",
            "[  +0.500000] DMAR: DRHD: handling fault status reg 3",
            "[  +0.250000] DMAR: DRHD: handling fault status reg 2");
        var obs = (await TestData.ParseTextAsync(text, "dmesg")).Observations();
        Assert.Equal([0.5, 0.75], obs.Select(o => o.Timestamp!.Value));
        Assert.All(obs, o => Assert.Null(o.Field("@time")));
    }

    [Fact]
    public async Task dmesg_human_absurd_delta_keeps_the_relative_time_and_drops_the_wall_clock()
    {
        // found by the fuzzer (SVA_FUZZ_SEED=1132552052): a delta past the calendar overflowed DateTime
        var text = string.Join("\n",
            "[Aug 4 09:48] DMAR: DRHD: handling fault status reg 3",
            "[  +999999999999.000000] DMAR: DRHD: handling fault status reg 2",
            "[  +" + new string('9', 400) + ".0] DMAR: DRHD: handling fault status reg 2");
        var obs = (await TestData.ParseTextAsync(text, "dmesg")).Observations();
        Assert.Equal(0.0, obs[0].Timestamp);
        Assert.All(obs.Skip(1), o => Assert.InRange(o.Timestamp!.Value, 999999999998.0, 1000000000000.0)); // the 400-digit delta is not added
        Assert.Equal("Aug 4 09:48:00.000000", obs[0].Field("@time"));
        Assert.Null(obs[1].Field("@time"));
        Assert.Null(obs[2].Field("@time"));
    }

    [Fact]
    public async Task detection_samples_past_the_first_lines_when_they_fit_nothing()
    {
        var chatter = Enumerable.Range(0, 1500).Select(i => i % 3 == 0 ? "$ sudo dmesg | grep smmu" : $"QUP{i % 2}:").ToList();
        var capture = File.ReadAllLines(TestData.PathOf("captures/dmesg-armsmmu-caller-id.txt"));
        var lines = chatter.Concat(capture).ToList();
        var d = CaptureReader.DetectDetailed(lines);
        Assert.Equal(("dmesg", 1509), (d.Format.Name, d.SampledLines));
        Assert.Equal([1501, 1502, 1503], d.FittingLines);
        Assert.Contains("lines 1501, 1502, 1503 of the first 1509 fit", d.ToString());

        var items = await TestData.ParseTextAsync(string.Join("\n", lines), "auto");
        Assert.Equal(1501, Assert.Single(items.Observations()).Source.Line);

        // nothing within the sample: the message says how far it looked
        var ex = Assert.Throws<CaptureDetectionException>(() => CaptureReader.DetectDetailed(chatter));
        Assert.Contains("fits the first 1500 lines", ex.Message);
        Assert.Equal(1500, ex.SampledLines);
    }

    [Fact]
    public async Task every_smmuv3_event_id_of_the_architecture_has_a_name()
    {
        var text = string.Join("\n", new[] { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x24, 0x25, 0x7e }
            .SelectMany(id => new[]
            {
                $"[    1.000000] arm-smmu-v3 arm-smmu-v3.0.auto: event 0x{id:x2} received:",
                $"[    1.000001] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x00000042000000{id:x2}",
                "[    1.000002] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000",
                "[    1.000003] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000001000",
                "[    1.000004] arm-smmu-v3 arm-smmu-v3.0.auto: \t0x0000000000000000",
            }));
        var obs = (await TestData.ParseTextAsync(text, "dmesg")).Observations();
        Assert.Equal(
            ["F_UUT", "C_BAD_STREAMID", "F_STE_FETCH", "C_BAD_STE", "F_BAD_ATS_TREQ", "F_STREAM_DISABLED", "F_TRANSL_FORBIDDEN", "C_BAD_SUBSTREAMID",
                "F_CD_FETCH", "C_BAD_CD", "F_WALK_EABT", "F_TRANSLATION", "F_ADDR_SIZE", "F_ACCESS", "F_PERMISSION", "F_TLB_CONFLICT", "F_CFG_CONFLICT",
                "E_PAGE_REQUEST", "F_VMS_FETCH", "unknown event 0x7e"],
            obs.Select(o => o.Field("event")!));
        // C_BAD_STREAMID names a stream the SMMU does not know: no device; every other event names the stream's master
        Assert.All(obs, o => Assert.Equal(o.Field("event") == "C_BAD_STREAMID" ? null : "sid0x42@arm-smmu-v3.0.auto", o.Device));
    }
}
