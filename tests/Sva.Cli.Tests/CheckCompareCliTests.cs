using System.Text.Json.Nodes;
using Xunit;

namespace Sva.Cli.Tests;

[Collection("cli")]
public sealed class CheckCompareCliTests(CliFixture f)
{
    private static List<JsonObject> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();

    [Fact]
    public async Task a_recorded_6_8_rc1_session_compared_with_6_8_diverges_at_the_second_bind()
    {
        var session = CliFixture.UniqueSession("rc1");
        Assert.Equal(0, (await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.8-rc1", "--session", session)).ExitCode);
        var check = await f.RunAsync("check", session);
        Assert.True(check.ExitCode == 0, check.ToString());
        var cmp = await f.RunAsync("compare", session, "--kernel", "6.8-rc1", "--kernel", "6.8", "--json");
        Assert.Equal(1, cmp.ExitCode);
        var j = JsonNode.Parse(cmp.Stdout)!;
        Assert.False((bool)j["identical"]!);
        Assert.Equal(10, (int)j["first_divergence"]!["line"]!);
        Assert.Equal("bind", (string?)j["first_divergence"]!["op"]);
    }

    [Theory]
    [InlineData("6.7", "6.8-rc1", 1)]
    [InlineData("6.8-rc1", "6.8", 1)]
    [InlineData("6.8", "6.9", 0)]
    public async Task compare_of_the_uacce_script_between_versions(string a, string b, int exit)
    {
        var r = await f.RunAsync("compare", f.Example("uacce-double-open.sva"), "--kernel", a, "--kernel", b, "--json");
        Assert.True(r.ExitCode == exit, r.ToString());
        Assert.Equal(exit == 0, (bool)JsonNode.Parse(r.Stdout)!["identical"]!);
    }

    [Fact]
    public async Task check_finds_use_after_free_leak_and_dma_after_unmap_with_their_lines()
    {
        var script = f.WriteTemp("leaky.sva", """
            device 0000:00:03.0 pasids=64
            mm m1
            bind h1 0000:00:03.0 m1
            unbind h1
            unbind h1
            mm m2
            bind h2 0000:00:03.0 m2
            exit m2
            drop m2
            device 0000:00:05.0 pasids=0
            domain dma0 type=paging
            attach dma0 0000:00:05.0
            map dma0 0x100000-0x200000 paddr=0x80000000
            unmap dma0 0x100000-0x200000
            fault 0000:00:05.0 addr=0x180000 access=r
            """);
        var session = CliFixture.UniqueSession("leaky");
        Assert.Equal(0, (await f.RunAsync("run", script, "--session", session)).ExitCode);
        var r = await f.RunAsync("check", session, "--json");
        Assert.Equal(1, r.ExitCode);
        var findings = JsonLines(r.Stdout);
        var byKind = findings.ToLookup(x => (string)x["kind"]!);
        Assert.Equal(5, (int)byKind["use-after-free"].Single()["line"]!);
        Assert.Equal(9, (int)byKind["leak"].First()["line"]!);
        var dma = byKind["dma-after-unmap"].Single();
        Assert.Equal(15, (int)dma["line"]!);
        Assert.Contains(dma["involved"]!.AsArray(), i => (int?)i!["line"] == 14); // names the unmap
    }

    [Fact]
    public async Task check_and_compare_of_an_unknown_session_are_bad_input()
    {
        Assert.Equal(2, (await f.RunAsync("check", "no-such-session-abc")).ExitCode);
        Assert.Equal(2, (await f.RunAsync("compare", "no-such-session-abc", "--kernel", "6.7", "--kernel", "6.8")).ExitCode);
    }
}
