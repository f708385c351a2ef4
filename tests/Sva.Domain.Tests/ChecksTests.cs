using Sva.Formats.Script;

namespace Sva.Domain.Tests;

/// <summary>Invariant checks: each finding kind on a session that has it, with its seq and the events involved; none on clean sessions.</summary>
public class ChecksTests
{
    private static long SeqOf<T>(Sim k, Func<T, bool>? where = null) where T : SvaEvent =>
        k.Events.FindIndex(e => e is T t && (where is null || where(t))) + 1;

    [Theory, InlineData("5.18"), InlineData("6.7"), InlineData("6.8"), InlineData("6.11")]
    public void a_dropped_mm_still_bound_at_the_end_is_a_leak_naming_the_drop_and_its_holders(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=64", "mm m1", "bind q1 00:03.0 m1", "exit m1", "drop m1");
        var findings = Checks.Run(k.Events);
        Assert.Equal([FindingKinds.BoundAfterExit, FindingKinds.Leak], findings.Select(x => x.Kind).Order(StringComparer.Ordinal));
        var f = Assert.Single(findings, x => x.Kind == FindingKinds.Leak);
        Assert.Equal(SeqOf<MmDropped>(k), f.Seq);
        Assert.Contains(SeqOf<HandleIssued>(k), f.Involved);
        Assert.Contains("PASID 1", f.Message);
        Assert.Contains("H1 (q1)", f.Message);
    }

    [Theory, InlineData("6.8")]
    public void an_exited_but_not_dropped_mm_is_not_a_leak(string v) =>
        Assert.DoesNotContain(Checks.Run(Sim.On(v, "device 00:03.0 pasids=64", "mm m1", "bind q1 00:03.0 m1", "exit m1").Events), f => f.Kind == FindingKinds.Leak);

    // Issue 9: the driver never unbound a handle of an mm whose process exited: the PASID and domain stay pinned.
    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("6.2"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void a_handle_still_bound_at_the_end_to_an_exited_mm_is_reported_with_the_bind_and_exit_seqs(string v)
    {
        var driver = KernelVersions.Get(v).Rules.GenericIopf ? "" : " driver=vtd";
        var k = Sim.On(v, $"device 00:03.0 pasids=64{driver}", "mm m1", "mm m2", "bind q1 00:03.0 m1", "bind q2 00:03.0 m2", "exit m1", "exit m2", "unbind q2");
        var f = Assert.Single(Checks.Run(k.Events), x => x.Kind == FindingKinds.BoundAfterExit);
        var bind = SeqOf<HandleIssued>(k, h => h.Mm == "m1");
        var exit = SeqOf<MmReleased>(k, r => r.Mm == "m1");
        Assert.Equal(exit, f.Seq);
        Assert.Equal([bind], f.Involved);
        Assert.Contains($"bound at seq {bind}", f.Message);
        Assert.Contains($"exited at seq {exit}", f.Message);
        Assert.Contains("q1", f.Message);
        Assert.DoesNotContain("q2", f.Message);
    }

    [Theory, InlineData("6.8")]
    public void unbinding_before_the_end_leaves_nothing_bound_after_exit(string v) =>
        Assert.DoesNotContain(Checks.Run(Sim.On(v, "device 00:03.0 pasids=64", "mm m1", "bind q1 00:03.0 m1", "exit m1", "unbind q1").Events),
            f => f.Kind == FindingKinds.BoundAfterExit);

    [Fact]
    public void a_pasid_left_allocated_to_a_freed_mm_is_a_leak()
    {
        var events = new List<SvaEvent>
        {
            new MmCreated("m1", false, false), new PasidAllocated("m1", 4), new MmReleased("m1"), new MmDropped("m1", 0), new MmFreed("m1"),
        };
        var f = Assert.Single(Checks.Run(events));
        Assert.Equal(FindingKinds.Leak, f.Kind);
        Assert.Contains("PASID 4", f.Message);
    }

    [Fact]
    public void refcount_underflow_is_reported_once_per_object_at_the_event_that_did_it()
    {
        var events = new List<SvaEvent>
        {
            new MmCreated("m1", false, false),
            new SvaDomainAllocated("D1", "m1", null),
            new DomainUsersChanged("D1", 0),
            new DomainUsersChanged("D1", -1),
            new DomainUsersChanged("D1", -2),
            new MmDropped("m1", -1),
        };
        var findings = Checks.Run(events);
        Assert.Equal(2, findings.Count);
        Assert.Equal((FindingKinds.RefcountUnderflow, 4L), (findings[0].Kind, findings[0].Seq));
        Assert.Equal([2L], findings[0].Involved);
        Assert.Equal((FindingKinds.RefcountUnderflow, 6L), (findings[1].Kind, findings[1].Seq));
    }

    [Fact]
    public void a_success_response_for_an_exited_mm_names_the_exit()
    {
        var events = new List<SvaEvent>
        {
            new DeviceProbed("d", 16, 1, true, true, "iommu0", false),
            new MmCreated("m1", false, false),
            new PasidAllocated("m1", 1),
            new PasidEntryWritten("d", 1, "m1"),
            new MmReleased("m1"),
            new PageResponseSent("d", 1, 3, PageResponseCode.SUCCESS, "recorded from a capture", 1),
        };
        var f = Assert.Single(Checks.Run(events));
        Assert.Equal(FindingKinds.SuccessAfterExit, f.Kind);
        Assert.Equal(6, f.Seq);
        Assert.Equal([5L], f.Involved);
    }

    [Theory, InlineData("6.8")]
    public void a_dma_fault_on_an_iova_remapped_after_the_unmap_is_not_reported(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=8", "domain P type=paging", "attach P 00:03.0", "map P 0x1000-0x3000 paddr=0x9000",
            "unmap P 0x1000-0x3000", "map P 0x1000-0x2000 paddr=0xa000", "fault 00:03.0 addr=0x2800 access=r", "fault 00:03.0 addr=0x1800 access=r");
        var f = Assert.Single(Checks.Run(k.Events));
        Assert.Equal(FindingKinds.DmaAfterUnmap, f.Kind);
        Assert.Contains(0x2800.ToString("x"), f.Message);
        Assert.Equal("translated", k.Outcomes[^1].Dma);
    }

    [Theory, InlineData("6.8")]
    public void a_dma_fault_on_an_iova_never_mapped_is_not_a_finding(string v) =>
        Assert.Empty(Checks.Run(Sim.On(v, "device 00:03.0 pasids=8", "domain P type=paging", "attach P 00:03.0", "fault 00:03.0 addr=0x2800 access=r").Events));

    [Theory, InlineData("5.13"), InlineData("6.2"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.11")]
    public void the_examples_are_clean_under_every_generation(string v)
    {
        foreach (var file in new[] { "uacce-double-open.sva", "two-devices-one-mm.sva", "smmuv3-seed004.sva" })
        {
            var script = ScriptParser.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "examples", file)), file);
            var k = Sim.On(v);
            foreach (var l in script.Lines) k.Call(l.Call);
            Assert.Empty(Checks.Run(k.Events));
        }
    }

    [Fact]
    public void findings_use_the_stored_seqs_not_positions()
    {
        var events = new (long, SvaEvent)[]
        {
            (101, new MmCreated("m1", false, false)),
            (102, new SvaDomainAllocated("D1", "m1", null)),
            (103, new DomainUsersChanged("D1", -1)),
        };
        var f = Assert.Single(Checks.Run(events));
        Assert.Equal(103, f.Seq);
        Assert.Equal([102L], f.Involved);
    }
}
