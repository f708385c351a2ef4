namespace Sva.Domain.Tests;

/// <summary>Issue 16 item 1: any release ≥ 5.11 as a user names it resolves to the rule set that covers it.</summary>
public class KernelResolutionTests
{
    [Theory]
    [InlineData("6.15", "6.11"), InlineData("6.12", "6.11"), InlineData("6.13", "6.11"), InlineData("7.3", "6.11"),
     InlineData("6.10", "6.10"), InlineData("v6.10", "6.10"), InlineData("6.10.14", "6.10"), InlineData("6.10.x", "6.10"), InlineData("5.14.21", "5.14"), InlineData("6.1.0-rc3", "6.1"), InlineData("6.8.0-31-generic", "6.8"), InlineData("6.12.9-arch1-1", "6.11"),
     InlineData("5.12", "5.11"), InlineData("5.15.0-105-generic", "5.14"), InlineData("6.1.55", "6.1"), InlineData("6.0.19", "5.18"), InlineData("5.13.19", "5.13"), InlineData("5.19", "5.18"),
     InlineData("6.3", "6.2"), InlineData("6.5.0-1-amd64", "6.4"), InlineData("6.7-rc4", "6.7"), InlineData("6.8-rc1", "6.8-rc1"),
     InlineData("v6.8-rc3", "6.8-rc1"), InlineData("6.9-rc2", "6.9"), InlineData("6.11.0-rc5", "6.11"), InlineData("6.6.30+rpt-rpi-v8", "6.6"),
     InlineData("V6.8", "6.8"), InlineData("6.8", "6.8")]
    public void a_release_resolves_to_the_rule_set_that_covers_it(string given, string ruleSet)
    {
        var r = KernelVersions.Resolve(given);
        Assert.NotNull(r);
        Assert.Equal(ruleSet, r!.Version.Name);
        Assert.Equal(given, r.Given);
    }

    [Fact]
    public void the_note_says_once_which_rule_set_a_release_gets_and_what_it_covers()
    {
        Assert.Equal("6.15 → rules of 6.11 (6.11 onwards)", KernelVersions.Resolve("6.15")!.Note);
        // issue 19: VT-d/AMD changes at 5.14, 6.1 and 6.10 made them rule sets of their own
        Assert.Null(KernelVersions.Resolve("6.10")!.Note);
        Assert.Equal("6.10.3 → rules of 6.10 (6.10)", KernelVersions.Resolve("6.10.3")!.Note);
        Assert.Equal("6.9.2 → rules of 6.9 (6.9)", KernelVersions.Resolve("6.9.2")!.Note);
        Assert.Equal("6.1.55 → rules of 6.1 (6.1)", KernelVersions.Resolve("6.1.55")!.Note);
        Assert.Equal("5.19 → rules of 5.18 (5.18–6.0)", KernelVersions.Resolve("5.19")!.Note);
        Assert.Equal("5.15.0-105-generic → rules of 5.14 (5.14–5.17)", KernelVersions.Resolve("5.15.0-105-generic")!.Note);
        Assert.Null(KernelVersions.Resolve("6.8")!.Note); // a rule set's own name needs no note
        Assert.Null(KernelVersions.Resolve("v6.8-rc1")!.Note);
    }

    [Fact]
    public void a_merged_rule_set_leaves_an_alias_that_resolves_forever()
    {
        // sessions recorded under "6.12" before it was folded into 6.11 still name a rule set
        foreach (var (old, now) in KernelVersions.Aliases)
        {
            Assert.Equal(now, KernelVersions.Get(old).Name);
            Assert.Contains(KernelVersions.All, v => v.Name == now);
        }
        Assert.Equal("6.11", KernelVersions.Aliases["6.12"]);
        Assert.Contains("alias", KernelVersions.Resolve("6.12")!.Note);
    }
}
