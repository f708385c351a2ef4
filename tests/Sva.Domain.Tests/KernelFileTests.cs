using System.Reflection;
using Sva.Domain.Json;
using Sva.Formats.Kernels;

namespace Sva.Domain.Tests;

/// <summary>
/// Issue 17 §1: a version is its parent plus switch changes, and a kernel file with <c>parent = P</c> and V's switch
/// values reproduces V exactly: every row of the spec's scenario table (<see cref="SpecScenarioTests"/>) is re-run
/// with each version replaced by such a file, and must pass with the very same events.
/// </summary>
public class KernelFileTests
{
    private static string FileFor(KernelVersion v, string? parent = null)
    {
        var lines = new List<string> { $"name = \"{v.Name}-as-file\"", $"parent = \"{parent ?? v.Parent}\"" };
        lines.AddRange(KernelSwitches.Of(v.Rules).Select(x => $"{x.Switch.Name} = \"{x.Value.Name}\""));
        return string.Join("\n", lines) + "\n";
    }

    private static KernelVersion Rebuilt(KernelVersion v) =>
        KernelFiles.Load($"/virtual/{v.Name}.toml", p => p == $"/virtual/{v.Name}.toml" ? FileFor(v) : null);

    [Fact]
    public void every_version_is_its_parent_plus_its_switch_values()
    {
        foreach (var v in KernelVersions.All.Where(v => v.Parent is not null))
        {
            var file = Rebuilt(v);
            Assert.Equal(v.Rules, file.Rules);
            Assert.Equal(v.Parent, file.Parent);
            Assert.Empty(KernelSwitches.Conflicts(v.Rules));
        }
    }

    private static IEnumerable<(MethodInfo Method, object?[] Args)> ScenarioRows()
    {
        foreach (var m in typeof(SpecScenarioTests).GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.DeclaringType == typeof(SpecScenarioTests)))
        {
            var rows = m.GetCustomAttributes<InlineDataAttribute>().SelectMany(a => a.GetData(m)).ToList();
            if (m.GetCustomAttribute<FactAttribute>() is not null && rows.Count == 0 && m.GetParameters().Length == 0) rows.Add([]);
            foreach (var r in rows) yield return (m, r);
        }
    }

    private static List<string> RunRow(MethodInfo m, object?[] args, Func<string, KernelVersion?>? substitute)
    {
        Sim.Created = [];
        Sim.Substitute = substitute;
        try
        {
            try { m.Invoke(new SpecScenarioTests(), args); }
            catch (TargetInvocationException ex) { throw new Xunit.Sdk.XunitException($"{m.Name}({string.Join(", ", args)}) under kernel files: {ex.InnerException!.Message}"); }
            return Sim.Created.Select(s => s.Version.Name.Replace("-as-file", "") + ": " + string.Join("\n", s.Events.Select(e => e.GetType().Name + SvaJson.Serialize(e)))).ToList();
        }
        finally { Sim.Created = null; Sim.Substitute = null; }
    }

    [Fact]
    public void a_file_with_the_parent_and_the_switch_values_of_each_version_reproduces_the_scenario_table()
    {
        var files = KernelVersions.All.Where(v => v.Parent is not null).ToDictionary(v => v.Name, Rebuilt);
        var rows = ScenarioRows().ToList();
        Assert.True(rows.Count > 100, $"only {rows.Count} scenario rows found");
        var substituted = 0;
        foreach (var (m, args) in rows)
        {
            var expected = RunRow(m, args, null);
            var actual = RunRow(m, args, name => { var v = KernelVersions.Get(name); if (files.TryGetValue(v.Name, out var f)) { substituted++; return f; } return null; });
            Assert.Equal(expected, actual);
        }
        Assert.True(substituted > 100);
    }

    [Fact]
    public void a_patch_file_on_6_8_with_6_8_rc1s_rebind_fails_the_second_bind_EBUSY_and_names_its_commit()
    {
        const string toml = "name = \"6.8+rebind-ebusy\"\nparent = \"6.8\"\ncommit = \"092edaddb660\"\nsays = \"re-bind of the same (dev, mm) finds the slot taken\"\nrebind-same-device-mm = \"ebusy\"\n";
        var v = KernelFiles.Load("/p/patch.toml", p => p == "/p/patch.toml" ? toml : null);
        Sim.Substitute = _ => v;
        try
        {
            var k = Sim.On("6.8", "device 00:03.0 pasids=1024", "mm m1", "bind q1 00:03.0 m1");
            var second = k.Do("bind q2 00:03.0 m1");
            Assert.Equal(Errno.EBUSY, second.Errno);
            Assert.Equal("g3.rebind-ebusy", second.Rule!.Id);
            Assert.Equal("092edaddb660", second.Rule.Introduced);
            Assert.Contains("slot taken", second.Rule.Says);
            // two devices, one mm: the shared domain is still shared, as under 6.8
            var k2 = Sim.On("6.8", "device 00:03.0 pasids=1024", "device 00:04.0 pasids=1024", "mm m1", "bind q1 00:03.0 m1");
            Assert.True(k2.Do("bind q2 00:04.0 m1").Ok);
        }
        finally { Sim.Substitute = null; }
        // the stored definition is the flattened file: parent the release, every switch
        var again = KernelFiles.FromDefinition(v.Origin!.Definition, "stored");
        Assert.Equal(v.Rules, again.Rules);
        Assert.Equal(v.Introduces, again.Introduces);
        Assert.Equal("092edaddb660", again.Origin!.Commit);
    }

    [Fact]
    public void a_parent_may_be_another_kernel_file()
    {
        var files = new Dictionary<string, string>
        {
            ["/k/a.toml"] = "name = \"a\"\nparent = \"6.8\"\nrebind-same-device-mm = \"ebusy\"\n",
            ["/k/sub/b.toml"] = "name = \"b\"\nparent = \"../a.toml\"\nfault-no-domain = \"failure\"\n",
        };
        var b = KernelFiles.Load("/k/sub/b.toml", p => files.GetValueOrDefault(p));
        Assert.Equal(RebindSameDeviceMm.Ebusy, b.Rules.RebindSameDeviceMm);
        Assert.Equal(RefusedFaultAnswer.Failure, b.Rules.NoDomainAnswer);
        Assert.Equal("a", b.Parent);
        Assert.Contains("parent = \"6.8\"", b.Origin!.Definition);
    }

    [Theory]
    [InlineData("name = \"x\"\nparent = \"6.8\"\nrebind-same-dev = \"ebusy\"\n", "k.toml:3: unknown switch 'rebind-same-dev'; switches: sva-bind, rebind-same-device-mm")]
    [InlineData("name = \"x\"\nparent = \"6.8\"\n\nrebind-same-device-mm = \"busy\"\n", "k.toml:4: switch rebind-same-device-mm has no value 'busy'; allowed: same-handle | new-handle | ebusy")]
    [InlineData("name = \"x\"\nparent = \"4.19\"\n", "k.toml:2: parent '4.19' is neither a release ≥ 5.11 nor a kernel file (.toml)")]
    [InlineData("name = \"x\"\nparent = \"missing.toml\"\n", "k.toml:2: no such kernel file 'missing.toml'")]
    [InlineData("name = \"x\"\nparent = \"k.toml\"\n", "k.toml:2: parent 'k.toml' makes a cycle: k.toml → k.toml")]
    [InlineData("name = \"x\"\nparent = \"6.11\"\nsva-bind = \"bond\"\n", "k.toml:3: sva-bind = bond keeps its notifier per (RID domain, mm)")]
    [InlineData("parent = \"6.8\"\n", "k.toml:1: no name")]
    [InlineData("name = \"x\"\n", "k.toml:1: no parent")]
    [InlineData("name = \"6.9\"\nparent = \"6.8\"\n", "k.toml:1: name '6.9' is a rule set's name")]
    [InlineData("name = \"x\"\nparent = \"6.8\"\narm-tlbi = 3\n", "k.toml:3: arm-tlbi must be a string")]
    [InlineData("name = \"x\"\nparent = \"6.8\"\narm-tlbi = \"range\n", "k.toml:3: not TOML")]
    [InlineData("name = \"x\"\nparent = \"6.8\"\n[smmuv3]\narm-tlbi = \"range\"\n", "k.toml:3: a kernel file has no tables")]
    public void a_bad_kernel_file_is_refused_with_file_line_and_the_allowed_values(string toml, string message)
    {
        var ex = Assert.Throws<KernelFileException>(() => KernelFiles.Load("/d/k.toml", p => p == "/d/k.toml" ? toml : null));
        Assert.StartsWith("/d/" + message, ex.Message);
    }

    [Fact]
    public void a_cycle_through_two_files_names_both()
    {
        var files = new Dictionary<string, string>
        {
            ["/c/a.toml"] = "name = \"a\"\nparent = \"b.toml\"\n",
            ["/c/b.toml"] = "name = \"b\"\n\nparent = \"a.toml\"\n",
        };
        var ex = Assert.Throws<KernelFileException>(() => KernelFiles.Load("/c/a.toml", p => files.GetValueOrDefault(p)));
        Assert.Equal("b.toml:3: parent 'a.toml' makes a cycle: a.toml → b.toml → a.toml", ex.Message);
    }

    [Fact]
    public void every_switch_value_names_a_rule_and_every_version_has_a_value_for_every_switch()
    {
        foreach (var sw in KernelSwitches.All)
        {
            Assert.All(sw.Values, v => Assert.NotNull(v.Rule));
            Assert.Equal(sw.Values.Count, sw.Values.Select(v => v.Name).Distinct().Count());
        }
        foreach (var v in KernelVersions.All) Assert.Equal(KernelSwitches.All.Count, KernelSwitches.ToJson(v.Rules).Count);
        // every KernelRules property is a switch
        Assert.Equal(typeof(KernelRules).GetProperties().Select(p => p.Name).Order(), KernelSwitches.All.Select(s => s.Property).Order());
    }
}
