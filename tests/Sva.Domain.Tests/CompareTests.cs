using System.Text.Json.Nodes;
using Sva.Domain.Json;
using Sva.Formats.Script;

namespace Sva.Domain.Tests;

/// <summary>Differential replay: the same calls under two versions, compared by outcome (not by events).</summary>
public class CompareTests
{
    private static List<SourcedKernelCall> Example(string file) =>
        ScriptParser.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "examples", file)), file)
            .Lines.Select(l => new SourcedKernelCall(l.Call, l.Source, null)).ToList();

    private static Comparison Compare(string a, string b, IReadOnlyList<SourcedKernelCall> calls) =>
        Differential.Compare(KernelVersions.Get(a), KernelVersions.Get(b), calls);

    [Theory, InlineData("6.7", "6.8-rc1"), InlineData("6.8-rc1", "6.8")]
    public void uacce_double_open_diverges_at_the_second_bind_ok_against_ebusy(string a, string b)
    {
        var c = Compare(a, b, Example("uacce-double-open.sva"));
        Assert.False(c.Identical);
        var first = c.FirstDivergence!;
        Assert.Equal(10, first.Call.Line);
        Assert.Equal("bind", first.A.Op);
        var (ok, busy) = a == "6.8-rc1" ? (first.B, first.A) : (first.A, first.B);
        Assert.True(ok.Ok);
        Assert.False(busy.Ok);
        Assert.Equal("EBUSY", busy.Errno);
    }

    [Fact]
    public void uacce_double_open_on_6_7_and_6_8_differs_only_in_handle_identity()
    {
        var c = Compare("6.7", "6.8", Example("uacce-double-open.sva"));
        var first = c.FirstDivergence!;
        Assert.Equal(10, first.Call.Line);
        Assert.True(first.A.Ok && first.B.Ok);
        Assert.Equal(3, first.A.HandleFrom);   // 6.7: a new handle, issued by this call (the 4th)
        Assert.Equal(2, first.B.HandleFrom);   // 6.8: the handle of the first bind (the 3rd call)
        Assert.Equal(1, first.A.HandleUsers);
        Assert.Equal(2, first.B.HandleUsers);
        Assert.Contains("new", first.A.Text);
        Assert.Contains("as line 9", first.B.Text);
    }

    [Theory, InlineData("6.8"), InlineData("6.9"), InlineData("6.11"), InlineData("5.18")]
    public void uacce_double_open_is_identical_between_versions_that_share_handles(string b) =>
        Assert.True(Compare("6.8", b, Example("uacce-double-open.sva")).Identical);

    [Fact]
    public void g1_bonds_against_g2_domains_compare_handles_and_pasids_not_the_missing_domain()
    {
        var c = Compare("5.18", "6.2", Example("two-devices-one-mm.sva"));
        Assert.True(c.Calls[3].Same); // bind a: 5.18 has no domain, 6.2 a new one
        Assert.Null(c.Calls[3].A.Domain);
        Assert.NotNull(c.Calls[3].B.Domain);
    }

    [Fact]
    public void two_devices_on_6_7_and_6_8_diverge_at_the_second_bind_by_domain_identity()
    {
        var c = Compare("6.7", "6.8", Example("two-devices-one-mm.sva"));
        var first = c.FirstDivergence!;
        Assert.Equal("bind", first.A.Op);
        Assert.NotEqual(first.A.DomainFrom, first.B.DomainFrom);
    }

    [Fact]
    public void two_devices_on_6_9_and_6_11_diverge_at_the_invalidation_two_rounds_against_one()
    {
        var c = Compare("6.9", "6.11", Example("two-devices-one-mm.sva"));
        var first = c.FirstDivergence!;
        Assert.Equal("invalidate", first.A.Op);
        Assert.Equal(2, first.A.Invalidations);
        Assert.Equal(1, first.B.Invalidations);
    }

    [Fact]
    public void pasid_freed_at_unbind_on_5_13_and_at_drop_on_5_18_is_a_difference()
    {
        var calls = ScriptParser.Parse("device 00:03.0 pasids=8\nmm m1\nbind a 00:03.0 m1\nunbind a\nexit m1\ndrop m1\n", "p.sva")
            .Lines.Select(l => new SourcedKernelCall(l.Call, l.Source, null)).ToList();
        var c = Compare("5.13", "5.18", calls);
        Assert.Equal(4, c.FirstDivergence!.Call.Line);
        Assert.Equal(1, c.FirstDivergence.A.PasidFreed);
        Assert.Null(c.FirstDivergence.B.PasidFreed);
        Assert.Equal(1, c.Calls[5].B.PasidFreed);
    }

    [Fact]
    public void fault_responses_are_compared()
    {
        var calls = ScriptParser.Parse("device 00:03.0 pasids=8 iopf=off\nmm m1\nbind 00:03.0 m1\nfault 00:03.0 pasid=1 addr=0x1000 access=r\n", "f.sva")
            .Lines.Select(l => new SourcedKernelCall(l.Call, l.Source, null)).ToList();
        var c = Compare("6.8", "6.9", calls);
        Assert.Equal("FAILURE", c.FirstDivergence!.A.Response);
        Assert.Equal("NONE", c.FirstDivergence.B.Response);
    }

    [Theory, InlineData("x.sva:12", 12), InlineData("/a/b:c/x.sva:3", 3), InlineData(null, null), InlineData("nofile", null)]
    public void source_line_is_the_number_after_the_last_colon(string? source, int? line) => Assert.Equal(line, SourceLine.Of(source));
}
