namespace Sva.Domain.Tests;

/// <summary>The version list: each version is its parent plus a visible difference; names parse with or without 'v'.</summary>
public class KernelVersionTests
{
    private static IEnumerable<string> Changed(KernelRules a, KernelRules b) =>
        typeof(KernelRules).GetProperties().Where(p => !Equals(p.GetValue(a), p.GetValue(b))).Select(p => p.Name);

    [Fact]
    public void every_version_after_the_first_changes_at_least_one_rule_of_its_parent()
    {
        foreach (var v in KernelVersions.All.Skip(1))
        {
            var parent = KernelVersions.Get(v.Parent);
            Assert.NotEmpty(Changed(parent.Rules, v.Rules));
            Assert.True(KernelVersions.All.ToList().IndexOf(parent) < KernelVersions.All.ToList().IndexOf(v), $"{v} comes after its parent");
        }
    }

    [Fact]
    public void six_eight_rc1_differs_from_6_7_only_by_the_shared_domain_generation() =>
        Assert.Equal(["RebindSameDeviceMm", "SvaBind"], Changed(KernelVersions.Get("6.7").Rules, KernelVersions.Get("6.8-rc1").Rules).Order(StringComparer.Ordinal));

    [Fact]
    public void six_eight_differs_from_6_8_rc1_only_by_the_handle_list() =>
        Assert.Equal(["RebindSameDeviceMm"], Changed(KernelVersions.Get("6.8-rc1").Rules, KernelVersions.Get("6.8").Rules));

    [Fact]
    public void the_6_9_merge_window_brings_the_void_fault_report_the_group_max_pasids_check_and_the_s1_rid_check() =>
        // VtdReportFailure: the same void report ends the VT-d driver's INVALID for a failed report (D5)
        Assert.Equal(["AttachChecksEveryGroupDevice", "NoDomainAnswer", "NonPagingRidDomain", "NotOnIopfQueueAnswer", "VtdReportFailure"],
            Changed(KernelVersions.Get("6.8").Rules, KernelVersions.Get("6.9").Rules).Order(StringComparer.Ordinal));

    [Fact]
    public void five_thirteen_is_5_11_plus_generic_iopf_and_the_range_tlbi()
    {
        // issue 19: 5.13 also brings the VT-d exec filter (78a523fe73b8, kernel-sva-vtd-amd.md D9); 5.14 sits between 5.13 and 5.18
        Assert.Equal(["ArmNotifierTlbi", "GenericIopf", "VtdExecRequestInvalid"], Changed(KernelVersions.Get("5.11").Rules, KernelVersions.Get("5.13").Rules).Order(StringComparer.Ordinal));
        Assert.Equal("5.13", KernelVersions.Get("5.14").Parent);
        Assert.Equal("5.14", KernelVersions.Get("5.18").Parent);
    }

    [Fact]
    public void every_version_names_the_rules_it_brings_and_every_rule_resolves()
    {
        foreach (var v in KernelVersions.All)
        {
            Assert.NotEmpty(v.Introduces);
            Assert.All(v.Introduces, id => Assert.Equal(id, KernelRuleTable.Get(id).Id));
        }
        // a rule id is introduced by one version only, and every kernel rule of the table by some version
        var ids = KernelVersions.All.SelectMany(v => v.Introduces).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Empty(KernelRuleTable.All.Where(r => r.Function != "(simulator)" && !ids.Contains(r.Id)).Select(r => r.Id));
        Assert.DoesNotContain(ids, id => KernelRuleTable.Get(id).Function == "(simulator)");
    }

    [Theory]
    [InlineData("5.11", Generation.G1), InlineData("v5.18", Generation.G1), InlineData("6.2", Generation.G2), InlineData("V6.7", Generation.G2),
     InlineData("6.8-rc1", Generation.G3), InlineData("5.13", Generation.G1), InlineData("6.8", Generation.G4), InlineData("6.9", Generation.G4), InlineData("6.11", Generation.G5)]
    public void versions_parse_with_an_optional_v_and_map_to_their_generation(string name, Generation g) =>
        Assert.Equal(g, KernelVersions.Get(name).Generation);

    // Below 5.11 there is no rule set; garbage is no release (6.10 and 6.12 resolve: KernelResolutionTests).
    [Theory, InlineData("4.19"), InlineData("5.10"), InlineData("5.4.0-150-generic"), InlineData("six"), InlineData("6"), InlineData("6.x"), InlineData("6.8-rcX"), InlineData(""), InlineData(null)]
    public void unsupported_versions_list_the_supported_ones(string? name)
    {
        var ex = Assert.Throws<UnsupportedKernelException>(() => KernelVersions.Get(name));
        Assert.Contains("5.11, 5.13, 5.14, 5.18, 6.1, 6.2, 6.4, 6.6, 6.7, 6.8-rc1, 6.8, 6.9, 6.10, 6.11", ex.Message);
    }
}
