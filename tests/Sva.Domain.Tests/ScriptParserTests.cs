using Sva.Formats.Script;

namespace Sva.Domain.Tests;

/// <summary>The .sva language: every line form of the grammar, defaults, and file:line errors for bad lines.</summary>
public class ScriptParserTests
{
    private static KernelCall One(string line) => Assert.Single(ScriptParser.Parse(line, "t.sva").Lines).Call;

    [Fact]
    public void device_line_defaults_to_sva_on_an_iopf_queue_a_group_of_its_own_and_iommu0()
    {
        var d = Assert.IsType<ProbeDevice>(One("device 00:03.0 pasids=16"));
        Assert.Equal(new ProbeDevice("0000:00:03.0", 16, null, true, true, "iommu0"), d);
    }

    [Fact]
    public void device_line_takes_every_option_and_hex_numbers()
    {
        var d = Assert.IsType<ProbeDevice>(One("device 0001:6a:01.7 pasids=0x100000 group=3 sva=off iopf=off iommu=smmu1"));
        Assert.Equal(new ProbeDevice("0001:6a:01.7", 0x100000, 3, false, false, "smmu1"), d);
    }

    [Theory, InlineData("smmuv3"), InlineData("vtd"), InlineData("amd")]
    public void device_line_names_the_iommu_driver_apart_from_the_instance(string driver)
    {
        var d = Assert.IsType<ProbeDevice>(One($"device 00:03.0 pasids=16 iommu=dmar3 driver={driver}"));
        Assert.Equal(new ProbeDevice("0000:00:03.0", 16, null, true, true, "dmar3", Driver: driver), d);
        Assert.Equal(Drivers.SmmuV3, Assert.IsType<ProbeDevice>(One("device 00:03.0 pasids=16")).Driver);
    }

    [Fact]
    public void an_unknown_driver_is_an_error_naming_the_line_and_the_drivers()
    {
        var e = Assert.Throws<ScriptFormatException>(() => ScriptParser.Parse("mm m1\ndevice 00:03.0 pasids=16 driver=intel\n", "t.sva"));
        Assert.Contains("t.sva:2", e.Message);
        Assert.Contains("driver=smmuv3|vtd|amd", e.Message);
    }

    [Fact]
    public void mm_vma_bind_unbind_lines()
    {
        Assert.Equal(new CreateMm("m1"), One("mm m1"));
        Assert.Equal(new CreateMm("m1", Lam: true), One("mm m1 lam"));
        Assert.Equal(new MapVma("m1", 0x1000, 0x3000, "rwx"), One("vma m1 0x1000-0x3000 prot=xwr"));
        Assert.Equal(new Bind("0000:00:03.0", "m1", "q1"), One("bind q1 00:03.0 m1"));
        Assert.Equal(new Bind("0000:00:03.0", "m1"), One("bind 00:03.0 m1"));
        Assert.Equal(new Unbind("q1"), One("unbind q1"));
        Assert.Equal(new Unbind("H3"), One("unbind H3"));
    }

    [Fact]
    public void fault_lines_without_pasid_are_rid_traffic_and_without_group_are_their_own_last()
    {
        Assert.Equal(new PageFault("0000:00:03.0", null, 0x1000, "r", null, true), One("fault 00:03.0 addr=0x1000 access=r"));
        Assert.Equal(new PageFault("0000:00:03.0", 5, 0x2000, "rw", 7, false), One("fault 00:03.0 pasid=5 addr=0x2000 access=wr group=7"));
        Assert.Equal(new PageFault("0000:00:03.0", 5, 0x2000, "x", 7, true), One("fault 00:03.0 pasid=5 addr=0x2000 access=x group=7 last"));
    }

    [Fact]
    public void invalidate_exit_drop_and_domain_lines()
    {
        Assert.Equal(new InvalidateRange("m1", 0x7f0000000000, 0x7f0000002000), One("invalidate m1 0x7f0000000000-0x7f0000002000"));
        Assert.Equal(new MmExit("m1"), One("exit m1"));
        Assert.Equal(new MmDrop("m1"), One("drop m1"));
        Assert.Equal(new AllocDomain("P", "paging"), One("domain P type=paging"));
        Assert.Equal(new AllocDomain("I", "identity"), One("domain I type=identity"));
        Assert.Equal(new AllocDomain("B", "blocked"), One("domain B type=blocked"));
        Assert.Equal(new AttachDomain("P", "0000:00:03.0", null), One("attach P 00:03.0"));
        Assert.Equal(new AttachDomain("P", "0000:00:03.0", 9), One("attach P 00:03.0 pasid=9"));
        Assert.Equal(new DetachDomain("P", "0000:00:03.0", 9), One("detach P 00:03.0 pasid=9"));
        Assert.Equal(new MapIova("P", 0x10000, 0x20000, 0x80000000), One("map P 0x10000-0x20000 paddr=0x80000000"));
        Assert.Equal(new UnmapIova("P", 0x10000, 0x20000), One("unmap P 0x10000-0x20000"));
    }

    [Fact]
    public void kernel_line_comments_and_blank_lines_are_not_calls_and_lines_keep_their_numbers()
    {
        var s = ScriptParser.Parse("# header\nkernel v6.8-rc1\n\ndevice 00:03.0 pasids=8   # trailing comment\n  mm m1\n", "x.sva");
        Assert.Equal("v6.8-rc1", s.Kernel);
        Assert.Equal([4, 5], s.Lines.Select(l => l.Line));
        Assert.Equal("x.sva:4", s.Lines[0].Source);
    }

    [Theory]
    [InlineData("frobnicate 1", "unknown call 'frobnicate'")]
    [InlineData("kernel 4.19", "unsupported kernel version '4.19'")]
    [InlineData("device 00:03.0", "missing pasids=N")]
    [InlineData("device 00:03.0 pasids=lots", "pasids='lots' is not a number")]
    [InlineData("device 00:03.0 pasids=4 sva=maybe", "expected on or off")]
    [InlineData("device 00:03.0 pasids=4 colour=red", "unknown option 'colour'")]
    [InlineData("device 00:03.0 pasids=4 pasids=5", "option 'pasids' given twice")]
    [InlineData("device nonsense pasids=4", "is not a device")]
    [InlineData("mm m1 fast", "unexpected 'fast'")]
    [InlineData("mm", "expected 'mm NAME [lam]'")]
    [InlineData("vma m1 0x3000-0x1000 prot=r", "is empty")]
    [InlineData("vma m1 0x1000-0x3000 prot=q", "expected r, w, x")]
    [InlineData("vma m1 0x1000 prot=r", "is not a range")]
    [InlineData("bind", "expected 'bind [LABEL] BDF MM'")]
    [InlineData("bind a b c d", "expected 'bind [LABEL] BDF MM'")]
    [InlineData("unbind", "expected 'unbind LABEL'")]
    [InlineData("fault 00:03.0 access=r", "missing addr=X")]
    [InlineData("fault 00:03.0 addr=0x1000", "missing access=")]
    [InlineData("fault 00:03.0 addr=0x1000 access=rr", "expected r, w, x")]
    [InlineData("fault 00:03.0 addr=zz access=r", "addr='zz' is not a number")]
    [InlineData("invalidate m1", "expected 'invalidate MM START-END'")]
    [InlineData("exit", "expected 'exit MM'")]
    [InlineData("drop m1 m2", "expected 'drop MM'")]
    [InlineData("domain P type=dma", "type must be paging, identity or blocked")]
    [InlineData("domain P", "expected 'domain NAME type=")]
    [InlineData("attach P 00:03.0 pasid=x", "pasid='x' is not a number")]
    [InlineData("detach P", "expected 'detach DOMAIN BDF [pasid=N]'")]
    [InlineData("map P 0x1000-0x2000", "expected 'map DOMAIN IOVA-END paddr=X'")]
    [InlineData("unmap P", "expected 'unmap DOMAIN IOVA-END'")]
    public void a_bad_line_is_reported_as_file_colon_line_with_what_was_expected(string bad, string expected)
    {
        var text = "device 00:09.0 pasids=4\n# comment\n" + bad + "\n";
        var ex = Assert.Throws<ScriptFormatException>(() => ScriptParser.Parse(text, "bad.sva"));
        Assert.StartsWith("bad.sva:3: ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.Equal(3, ex.Line);
        Assert.Equal("bad.sva", ex.File);
    }

    [Theory]
    [InlineData("uacce-double-open.sva")]
    [InlineData("two-devices-one-mm.sva")]
    [InlineData("smmuv3-seed004.sva")]
    public void the_examples_parse_and_run_under_every_version_without_findings_other_than_expected(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "examples", file);
        var script = ScriptParser.Parse(File.ReadAllText(path), file);
        Assert.NotEmpty(script.Lines);
        foreach (var v in KernelVersions.All)
        {
            var s = new SvaState();
            var events = script.Lines.SelectMany(l => SvaKernel.Execute(v, s, l.Call)).ToList();
            Assert.Equal(s.ToSnapshotJson(), Evolve.Fold(events).ToSnapshotJson());
            // The examples unbind everything and drop every mm: nothing may leak, under any version.
            Assert.DoesNotContain(Checks.Run(events), f => f.Kind == FindingKinds.Leak);
            Assert.Empty(s.Pasids);
        }
    }
}
