using Sva.Domain;
using Sva.Formats.Captures;
using Sva.Formats.Import;

namespace Sva.Import.Tests;

/// <summary>The pure parts: observation → calls, and the conformance comparison.</summary>
public sealed class MappingTests
{
    private static async Task<List<(SvaEvent Event, string Source, PlannedCall? Call)>> DecideAsync(string text, string format, string kernel = "6.8", string file = "t.txt")
    {
        var (events, _) = await ImportDecider.DecideAllAsync(new StringReader(text), file, format, kernel);
        return events;
    }

    private static List<ConformanceFinding> Check(IEnumerable<(SvaEvent Event, string Source, PlannedCall? Call)> events) =>
        Conformance.Check(events.Select((e, i) => new SeqEvent(i + 1, e.Event, e.Source))).ToList();

    [Fact]
    public async Task a_page_request_on_a_pasid_first_seen_infers_the_device_the_mm_and_the_bind()
    {
        var events = await DecideAsync("prq_report: dmar0/0000:00:0a.0 seq# 2: rid=0x50 addr=0x559ef6f9c rw--l pasid=0x2 index=0x1\n", "ftrace");
        var calls = events.Where(e => e.Call is not null).Select(e => e.Call!).Distinct().ToList();
        Assert.Equal(["device", "mm", "bind", "fault"], calls.Select(c => c.Call.Op));
        Assert.Equal([true, true, true, false], calls.Select(c => c.Inferred));
        Assert.Equal(new ProbeDevice("0000:00:0a.0", ObservationMapper.InferredMaxPasids, null, true, true, "dmar0", Inferred: true, Driver: Drivers.Vtd), calls[0].Call);
        Assert.Equal(new CreateMm("mm.pasid2", false, true, 2), calls[1].Call);
        Assert.Equal(new PageFault("0000:00:0a.0", 2, 0x559ef6f9c000, "rw", 1, true), calls[3].Call);
        Assert.IsType<CaptureObserved>(events[0].Event);
        Assert.Contains(events, e => e.Event is PageResponseSent { Code: PageResponseCode.SUCCESS, Pasid: 2, Group: 1 });
    }

    [Fact]
    public async Task a_dma_fault_without_pasid_attaches_the_capture_domain_and_faults_unrecoverably()
    {
        var events = await DecideAsync("[    0.361089] DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7cd80000 [fault reason 0x01] Present bit in root entry is clear\n", "dmesg");
        Assert.Equal(["capture_observed", "device_probed", "domain_allocated", "domain_attached", "dma_fault_reported"], events.Select(e => EventTypes.NameOf(e.Event)));
        var fault = Assert.IsType<DmaFaultReported>(events[^1].Event);
        Assert.Equal(("0000:00:02.0", (int?)null, 0x7cd80000UL, "r"), (fault.Device, fault.Pasid, fault.Address, fault.Access));
        var observed = Assert.IsType<CaptureObserved>(events[0].Event);
        Assert.Equal(0.361089, observed.Timestamp);
    }

    [Fact]
    public async Task unbind_free_of_a_pasid_first_seen_infers_the_bind_before_it()
    {
        var events = await DecideAsync("smmu_unbind_free: dev=0000:00:03.0 pasid=7\n", "ftrace");
        var calls = events.Where(e => e.Call is not null).Select(e => e.Call!).Distinct().ToList();
        Assert.Equal(["device", "mm", "bind", "unbind"], calls.Select(c => c.Call.Op));
        Assert.Contains(events, e => e.Event is HandleFreed);
        Assert.DoesNotContain(events, e => ImportDecider.IsFailure(e.Event));
    }

    [Fact]
    public async Task a_second_unbind_is_a_use_after_free_and_a_conformance_mismatch()
    {
        var events = await DecideAsync("""
            smmu_bind_alloc: dev=0000:00:03.0 pasid=1
            smmu_unbind_free: dev=0000:00:03.0 pasid=1
            smmu_unbind_free: dev=0000:00:03.0 pasid=1
            """, "ftrace");
        var rejected = events.Single(e => e.Event is UnbindRejected);
        Assert.Contains("use after free", ((UnbindRejected)rejected.Event).Reason);
        var finding = Assert.Single(Check(events));
        Assert.Equal("t.txt:3", finding.Line);
        Assert.Contains("refused", finding.Message);
    }

    [Theory]
    [InlineData("6.8", 0)]
    [InlineData("6.8-rc1", 1)] // the second bind of the same (device, mm) fails -EBUSY there
    public async Task jsonl_expectations_are_compared_with_the_outcome(string kernel, int mismatches)
    {
        var events = await DecideAsync("""
            {"op":"bind","device":"0000:00:03.0","mm":"m1","expect":"ok"}
            {"op":"bind","device":"0000:00:03.0","mm":"m1","expect":"ok"}
            {"op":"fault","device":"0000:00:03.0","pasid":1,"addr":"0x1000","access":"x","expect":"INVALID"}
            """, "jsonl", kernel);
        var findings = Check(events);
        Assert.Equal(mismatches, findings.Count);
        if (mismatches > 0) Assert.Contains("-EBUSY", findings[0].Message);
    }

    /// <summary>Issue 9: a capture that answered a fault after release, against 6.11's Arm abort (no page response at all).</summary>
    [Fact]
    public void a_response_the_smmu_would_have_aborted_on_6_11_is_a_mismatch_naming_the_abort()
    {
        var events = new List<SeqEvent>
        {
            new(1, new CaptureObserved("ftrace", "DevFault", "d", 1, 0x1000, null, 9, true, "w", null, null, "dev_fault ..."), "c:2"),
            new(2, new AccessAborted("d", 1, 0x1000, "w", 9, "fault-everything CD", "arm.access-aborted"), "c:2"),
            new(3, new CaptureObserved("ftrace", "DevPageResponse", "d", 1, null, null, 9, null, null, 1, null, "dev_page_response ..."), "c:3"),
        };
        var f = Assert.Single(Conformance.Check(events));
        Assert.Equal(2, f.SimulatedSeq);
        Assert.Contains("answered INVALID", f.Message);
        Assert.Contains("abort the access", f.Message);
    }

    [Theory]
    [InlineData("6.8", "BUG", 0)]
    [InlineData("6.11", "BUG", 0)]
    [InlineData("6.8", "-EINVAL", 1)] // the old answer: a bind after exit returned no errno in any kernel
    public async Task a_jsonl_bind_after_exit_is_a_kernel_bug_failure(string kernel, string expect, int mismatches)
    {
        // the first bind declares m1; after its exit, a bind of another device is a new pairing: a new notifier
        var events = await DecideAsync($$"""
            {"op":"bind","device":"0000:00:03.0","mm":"m1","expect":"ok"}
            {"op":"exit","mm":"m1"}
            {"op":"bind","device":"0000:00:04.0","mm":"m1","expect":"{{expect}}"}
            """, "jsonl", kernel);
        Assert.Single(events, e => e.Event is KernelBug);
        Assert.Contains(events, e => ImportDecider.IsFailure(e.Event));
        Assert.Equal(mismatches, Check(events).Count);
    }

    [Fact]
    public void the_response_comparison_names_both_lines_and_seqs()
    {
        var events = new List<SeqEvent>
        {
            new(1, new CaptureObserved("ftrace", "DevFault", "d", 1, 0x1000, null, 9, true, "w", null, null, "dev_fault ..."), "c:2"),
            new(2, new PageResponseSent("d", 1, 9, PageResponseCode.INVALID, "mm exited", 1), "c:2"),
            new(3, new CaptureObserved("ftrace", "DevPageResponse", "d", 1, null, null, 9, null, null, 0, null, "dev_page_response ..."), "c:3"),
        };
        var f = Assert.Single(Conformance.Check(events));
        Assert.Equal(new ConformanceFinding("conformance", 3, "c:3", f.Message, 2, "c:2"), f);
        Assert.Contains("answered SUCCESS", f.Message);
        Assert.Contains("answered INVALID", f.Message);
    }

    /// <summary>Issue 19 D17: the VT-d page-group response code as the descriptor carries it, against the simulator's wire code.</summary>
    [Theory]
    [InlineData("0x000000056a082019", 2)]
    [InlineData("0x000000056a08f019", 15)]
    [InlineData("0x000000056a081019", 1)]
    public async Task qi_submit_page_grp_resp_keeps_the_wire_code(string qw0, int code)
    {
        var events = await DecideAsync($"qi_submit: page_grp_resp dmar3: {qw0} 0x000000000000001c 0x0 0x0\n", "ftrace");
        var o = Assert.IsType<CaptureObserved>(events[0].Event);
        Assert.Equal(("QiSubmit", (int?)code, (int?)3), (o.Kind, o.Code, o.Group));
    }

    [Theory]
    [InlineData(2, 2, 0)]    // the core FAILURE as VT-d sends it
    [InlineData(0xf, 2, 1)]  // PCIe Response Failure where the driver sends 2: a finding
    [InlineData(1, 2, 1)]
    [InlineData(2, null, 0)] // a response stored before wire codes: 2 and 0xF both read as FAILURE
    [InlineData(0xf, null, 0)]
    public void a_captured_vtd_wire_code_is_compared_with_the_simulated_one(int captured, int? simulated, int findings)
    {
        var events = new List<SeqEvent>
        {
            new(1, new CaptureObserved("ftrace", "PrqReport", "d", 1, 0x1000, null, 9, true, "r", null, null, "prq_report ..."), "c:2"),
            new(2, new PageResponseSent("d", 1, 9, PageResponseCode.FAILURE, "iopf aborted", 1, "iopf.no-domain-failure", simulated), "c:2"),
            new(3, new CaptureObserved("ftrace", "QiSubmit", "d", 1, null, null, 9, true, null, captured, null, "qi_submit: page_grp_resp ..."), "c:3"),
        };
        var found = Conformance.Check(events).ToList();
        Assert.Equal(findings, found.Count);
        if (findings > 0 && simulated is not null)
        {
            Assert.Contains("wire code 2 (reserved; the core's FAILURE)", found[0].Message);
            Assert.Equal(2, found[0].SimulatedSeq);
        }
    }

    [Fact]
    public void every_observation_kind_has_a_described_mapping()
    {
        foreach (var kind in Enum.GetValues<ObservationKind>())
            Assert.False(string.IsNullOrWhiteSpace(ObservationMapper.Describe(kind)));
        Assert.Equal(["ftrace", "dmesg", "qemu-trace", "jsonl"], FormatCatalog.All.Select(e => e.Name));
    }
}
