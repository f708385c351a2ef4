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
        Assert.Equal(["Generation"], Changed(KernelVersions.Get("6.7").Rules, KernelVersions.Get("6.8-rc1").Rules));

    [Fact]
    public void six_eight_differs_from_6_8_rc1_by_the_handle_list_and_the_group_max_pasids_check() =>
        Assert.Equal(["Generation", "AttachChecksEveryGroupDevice"], Changed(KernelVersions.Get("6.8-rc1").Rules, KernelVersions.Get("6.8").Rules));

    [Theory]
    [InlineData("5.11", Generation.G1), InlineData("v5.18", Generation.G1), InlineData("6.2", Generation.G2), InlineData("V6.7", Generation.G2),
     InlineData("6.8-rc1", Generation.G3), InlineData("6.8", Generation.G4), InlineData("6.9", Generation.G4), InlineData("6.11", Generation.G5), InlineData("6.12", Generation.G5)]
    public void versions_parse_with_an_optional_v_and_map_to_their_generation(string name, Generation g) =>
        Assert.Equal(g, KernelVersions.Get(name).Generation);

    [Theory, InlineData("4.19"), InlineData("6.10"), InlineData(""), InlineData(null)]
    public void unsupported_versions_list_the_supported_ones(string? name)
    {
        var ex = Assert.Throws<UnsupportedKernelException>(() => KernelVersions.Get(name));
        Assert.Contains("5.11, 5.18, 6.2, 6.4, 6.6, 6.7, 6.8-rc1, 6.8, 6.9, 6.11, 6.12", ex.Message);
    }
}
