using System.Text.Json.Nodes;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>Issue 9: every outcome says why (run --explain / --json, compare, kernels --json), kernel BUGs taint the session.</summary>
[Collection("cli")]
public sealed class ExplainCliTests(CliFixture f)
{
    private static List<JsonObject> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    [Fact]
    public async Task run_explain_prints_the_rule_under_each_call_and_json_carries_the_rule_object()
    {
        var session = CliFixture.UniqueSession("explain");
        var r = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--session", session, "--explain");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("why: iommu_sva_bind_device(), 092edaddb660", r.Stdout);
        Assert.Contains("why: iommu_sva_handle_iopf() -> handle_mm_fault(), 5.13", r.Stdout);
        var without = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--session", CliFixture.UniqueSession("plain"));
        Assert.DoesNotContain("why:", without.Stdout);

        var json = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--session", CliFixture.UniqueSession("explainj"), "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        var lines = JsonLines(json.Stdout);
        Assert.All(lines, l => Assert.NotNull(l["rule"]));
        var ebusy = Assert.Single(lines, l => (string?)l["errno"] == "EBUSY");
        var rule = ebusy["rule"]!;
        Assert.Equal(("g3.rebind-ebusy", "iommu_sva_bind_device()", "092edaddb660", "V"),
            ((string)rule["id"]!, (string)rule["function"]!, (string)rule["introduced"]!, (string)rule["confidence"]!));
    }

    [Fact]
    public async Task a_bind_after_exit_is_a_kernel_bug_that_taints_every_later_outcome_and_check_reports_it()
    {
        var script = f.WriteTemp("bug.sva", """
            device 0000:00:03.0 pasids=64
            mm m1
            exit m1
            bind h1 0000:00:03.0 m1
            mm m2
            """);
        var session = CliFixture.UniqueSession("bug");
        var r = await f.RunAsync("run", script, "--kernel", "6.8", "--session", session, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = JsonLines(r.Stdout);
        var bind = lines[3];
        Assert.False((bool)bind["ok"]!);
        Assert.Null((string?)bind["errno"]);
        Assert.Equal("BUG_ON(mm_users <= 0) in __mmu_notifier_register", (string?)bind["kernel_bug"]);
        Assert.Contains("kernel_bug", bind["events"]!.AsArray().Select(e => (string)e!));
        var taint = (long)bind["tainted_since"]!;
        Assert.Equal(taint, (long)lines[4]["tainted_since"]!);
        Assert.Null(lines[2]["tainted_since"]);

        var text = await f.RunAsync("run", script, "--kernel", "6.11", "--session", CliFixture.UniqueSession("bug611"));
        Assert.Contains("kernel BUG: BUG_ON(mm_users <= 0) in __mmu_notifier_register", text.Stdout);
        Assert.Contains("tainted since seq", text.Stdout);

        var check = await f.RunAsync("check", session, "--json");
        Assert.Equal(1, check.ExitCode);
        var finding = Assert.Single(JsonLines(check.Stdout), x => (string?)x["kind"] == "kernel-bug");
        Assert.Equal(4, (int)finding["line"]!);
        Assert.Contains("__mmu_notifier_register", (string)finding["message"]!);
    }

    [Fact]
    public async Task check_reports_a_handle_still_bound_to_an_exited_mm_at_the_end_with_the_bind_and_exit()
    {
        var script = f.WriteTemp("pinned.sva", """
            device 0000:00:03.0 pasids=64
            mm m1
            bind h1 0000:00:03.0 m1
            exit m1
            """);
        var session = CliFixture.UniqueSession("pinned");
        Assert.Equal(0, (await f.RunAsync("run", script, "--session", session)).ExitCode);
        var check = await f.RunAsync("check", session, "--json");
        Assert.Equal(1, check.ExitCode);
        var finding = Assert.Single(JsonLines(check.Stdout), x => (string?)x["kind"] == "bound-after-exit");
        Assert.Equal(4, (int)finding["line"]!); // the exit
        Assert.Contains(finding["involved"]!.AsArray(), i => (int?)i!["line"] == 3); // the bind
    }

    [Fact]
    public async Task compare_shows_the_rule_on_each_side_of_the_divergence()
    {
        var r = await f.RunAsync("compare", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--kernel", "6.8");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("6.8-rc1: -EBUSY — iommu_sva_bind_device(), 092edaddb660", r.Stdout);
        Assert.Contains("6.8: OK H1 as line 9 users 2", r.Stdout);
        Assert.Contains("iommu_sva_bind_device(), 65d4418c5002", r.Stdout);

        var j = JsonNode.Parse((await f.RunAsync("compare", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--kernel", "6.8", "--json")).Stdout)!;
        Assert.Equal("092edaddb660", (string?)j["first_divergence"]!["a"]!["rule"]!["introduced"]);
        Assert.Equal("65d4418c5002", (string?)j["first_divergence"]!["b"]!["rule"]!["introduced"]);
    }

    [Fact]
    public async Task kernels_lists_5_13_and_per_version_the_rules_that_differ_from_the_parent_with_their_commits()
    {
        var text = await f.RunAsync("kernels");
        Assert.Contains("5.13", text.Stdout);
        var r = await f.RunAsync("kernels", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var versions = JsonLines(r.Stdout).ToDictionary(v => (string)v["version"]!);
        Assert.Equal("5.11", (string?)versions["5.13"]["parent"]);
        Assert.Contains("GenericIopf", versions["5.13"]["changed_fields"]!.AsArray().Select(x => (string)x!));
        var v69 = versions["6.9"]["rules"]!.AsArray().Select(x => (string)x!["introduced"]!).ToList();
        Assert.Contains("c404f55c26fc", v69);
        Assert.Contains("ae91f6552c30", v69);
        Assert.Contains("351ffcb11ca0", v69);
        Assert.Contains("b58b133e680b", versions["6.11"]["rules"]!.AsArray().Select(x => (string)x!["introduced"]!));
        Assert.DoesNotContain("6.12", versions.Keys);
        Assert.Empty(versions["5.11"]["changed_fields"]!.AsArray());
    }
}
