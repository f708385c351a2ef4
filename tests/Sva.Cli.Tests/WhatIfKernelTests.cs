using System.Text.Json.Nodes;
using Sva.EventStore;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>Issue 16 item 1 (any release names a rule set) and issue 17 (kernel files, version matrix, corpus triage), by running the CLI.</summary>
[Collection("cli")]
public sealed class WhatIfKernelTests(CliFixture f)
{
    private const string Patch = "name = \"6.8+rebind-ebusy\"\nparent = \"6.8\"\ncommit = \"092edaddb660\"\nsays = \"6.8 with 6.8-rc1's re-bind\"\nrebind-same-device-mm = \"ebusy\"\n";

    [Fact]
    public async Task a_release_after_the_last_rule_set_runs_under_the_rule_set_that_covers_it_and_the_session_keeps_the_name_given()
    {
        var session = CliFixture.UniqueSession("rel");
        var r = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.12.9-arch1-1", "--session", session);
        Assert.Equal(0, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n'), l => l.Contains("6.12.9-arch1-1 → rules of 6.11 (6.11 onwards)"));
        var info = await f.Store.GetSessionAsync(session);
        Assert.Equal("6.11", info!.Kernel);
        Assert.Equal("6.12.9-arch1-1", info.KernelGiven);
        // continued under another name of the same rule set: accepted
        var again = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.15", "--session", session, "--again");
        Assert.Equal(0, again.ExitCode);
        var below = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "5.10.0-28-amd64");
        Assert.Equal(2, below.ExitCode);
        Assert.Contains("5.11, 5.13, 5.14, 5.18, 6.1, 6.2", below.Stderr);
    }

    [Fact]
    public async Task a_session_recorded_under_a_merged_rule_set_name_loads_continues_and_compares_through_its_alias()
    {
        // what an older sva wrote: the session document names "6.12" (a rule set of its own before it was folded into 6.11)
        var session = CliFixture.UniqueSession("alias");
        var first = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "6.11", "--session", session + "-src", "--json");
        Assert.Equal(0, first.ExitCode);
        var events = new List<NewEvent>();
        await foreach (var e in f.Store.ReadSessionAsync(session + "-src"))
            events.Add(new NewEvent(Sva.Projections.EventCodec.Decode(e), e.Metadata));
        await f.Store.AppendAsync(new AppendBatch(session, 0, Guid.NewGuid(), events) { Create = new NewSession("6.12", "older sva") });
        Assert.Equal("6.12", (await f.Store.GetSessionAsync(session))!.Kernel);

        var cmp = await f.RunAsync("compare", session, "--kernel", "6.11", "--json");
        Assert.Equal(0, cmp.ExitCode);
        Assert.True((bool)JsonNode.Parse(cmp.Stdout)!["identical"]!);
        var cont = await f.RunAsync("run", f.Example("two-devices-one-mm.sva"), "--kernel", "6.12", "--session", session);
        Assert.True(cont.ExitCode == 0, cont.Stderr); // continued under the alias, not refused as another kernel
        Assert.DoesNotContain("recorded with kernel", cont.Stderr);
        Assert.Equal(0, (await f.RunAsync("verify", session)).ExitCode);
    }

    [Fact]
    public async Task a_session_recorded_under_a_kernel_file_replays_identically_after_the_file_is_changed_and_deleted()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sva-whatif-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "patch.toml");
        await File.WriteAllTextAsync(file, Patch);
        var session = CliFixture.UniqueSession("kf");
        var run = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", file, "--session", session, "--explain");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("-EBUSY", run.Stdout);
        Assert.Contains("092edaddb660", run.Stdout);
        var info = await f.Store.GetSessionAsync(session);
        Assert.Equal("6.8+rebind-ebusy", info!.Kernel);

        var before = await f.RunAsync("compare", session, "--kernel", "6.8", "--json");
        await File.WriteAllTextAsync(file, Patch.Replace("ebusy", "new-handle").Replace("6.8\"", "6.7\""));
        var changed = await f.RunAsync("compare", session, "--kernel", "6.8", "--json");
        File.Delete(file);
        var deleted = await f.RunAsync("compare", session, "--kernel", "6.8", "--json");
        Assert.Equal(1, before.ExitCode);
        Assert.Equal(before.Stdout, changed.Stdout);
        Assert.Equal(before.Stdout, deleted.Stdout);
        var first = JsonNode.Parse(before.Stdout)!["first_divergence"]!;
        Assert.Equal(10, (int)first["line"]!);
        Assert.Equal("g3.rebind-ebusy", (string)first["a"]!["rule"]!["id"]!);
        Assert.Equal("092edaddb660", (string)first["a"]!["rule"]!["introduced"]!);
        Assert.Equal(0, (await f.RunAsync("verify", session)).ExitCode);
        Directory.Delete(dir, true);
    }

    [Theory]
    [InlineData("name = \"x\"\nparent = \"6.8\"\nrebind-same-device-mm = \"busy\"\n", "k.toml:3: switch rebind-same-device-mm has no value 'busy'; allowed: same-handle | new-handle | ebusy")]
    [InlineData("name = \"x\"\nparent = \"6.8\"\n\nno-such-switch = \"on\"\n", "k.toml:4: unknown switch 'no-such-switch'")]
    [InlineData("name = \"x\"\nparent = \"k.toml\"\n", "k.toml:2: parent 'k.toml' makes a cycle")]
    [InlineData("name = \"x\"\nparent = \"gone.toml\"\n", "k.toml:2: no such kernel file 'gone.toml'")]
    public async Task a_bad_kernel_file_is_exit_2_with_file_line_and_nothing_recorded(string toml, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sva-badkf-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "k.toml");
        await File.WriteAllTextAsync(file, toml);
        var session = CliFixture.UniqueSession("badkf");
        foreach (var args in new[] { new[] { "run", f.Example("uacce-double-open.sva"), "--kernel", file, "--session", session }, ["compare", f.Example("uacce-double-open.sva"), "--kernel", "6.8", "--kernel", file] })
        {
            var r = await f.RunAsync(args);
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(message, r.Stderr);
        }
        Assert.Null(await f.Store.GetSessionAsync(session));
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task the_version_matrix_shows_where_the_second_bind_of_the_uacce_example_changes()
    {
        var r = await f.RunAsync("compare", f.Example("uacce-double-open.sva"), "--all-kernels", "--changed", "--json");
        Assert.Equal(1, r.ExitCode);
        var rows = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var second = rows.Single(x => (int)x["line"]! == 10);
        Assert.Equal("bind", (string)second["op"]!);
        var outcomes = second["outcomes"]!.AsObject();
        Assert.Equal(Sva.Domain.KernelVersions.All.Count, outcomes.Count); // 14 since issue 19 (5.14, 6.1, 6.10)
        Assert.True((bool)outcomes["6.7"]!["ok"]!);
        Assert.Equal("EBUSY", (string)outcomes["6.8-rc1"]!["errno"]!);
        Assert.Equal("092edaddb660", (string)outcomes["6.8-rc1"]!["rule"]!["introduced"]!);
        Assert.Equal((string)outcomes["6.8"]!["handle"]!, (string)rows.Single(x => (int)x["line"]! == 9)["outcomes"]!["6.8"]!["handle"]!);
        Assert.Contains("6.8-rc1", second["changes_at"]!.AsArray().Select(x => (string)x!));
        Assert.Contains("6.8", second["changes_at"]!.AsArray().Select(x => (string)x!));
        Assert.DoesNotContain("6.7", second["changes_at"]!.AsArray().Select(x => (string)x!));
        Assert.All(rows, x => Assert.NotEmpty(x["changes_at"]!.AsArray())); // --changed: only calls that change
        var text = await f.RunAsync("compare", f.Example("uacce-double-open.sva"), "--all-kernels");
        Assert.Contains("at 6.8-rc1", text.Stdout);
    }

    private static bool BindsOnePairTwice(string script)
    {
        var pairs = script.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.Length >= 4 && w[0] == "bind").Select(w => (w[2], w[3])).ToList();
        return pairs.Count != pairs.Distinct().Count();
    }

    [Fact]
    public async Task a_patch_file_diverges_exactly_on_the_sessions_that_bind_one_device_mm_twice_and_the_corpus_json_equals_per_session_compare()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sva-corpus-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var patch = Path.Combine(dir, "patch.toml");
        await File.WriteAllTextAsync(patch, Patch);
        var prefix = CliFixture.UniqueSession("corpus");
        var scripts = new Dictionary<string, string>
        {
            ["uacce"] = await File.ReadAllTextAsync(f.Example("uacce-double-open.sva")),
            ["two-devices"] = await File.ReadAllTextAsync(f.Example("two-devices-one-mm.sva")),
            ["seed004"] = await File.ReadAllTextAsync(f.Example("smmuv3-seed004.sva")),
            ["rebind-later"] = "device 0000:00:03.0 pasids=64\nmm m1\nmm m2\nbind a 0000:00:03.0 m1\nbind b 0000:00:03.0 m2\nunbind a\nbind c 0000:00:03.0 m2\n",
            ["one-bind"] = "device 0000:00:03.0 pasids=64\nmm m1\nbind a 0000:00:03.0 m1\nfault 0000:00:03.0 pasid=1 addr=0x1000 access=r last\nunbind a\n",
        };
        foreach (var (name, text) in scripts)
            Assert.Equal(0, (await f.RunAsync("run", f.WriteTemp(name + ".sva", text), "--kernel", "6.8", "--session", $"{prefix}-{name}")).ExitCode);

        var corpus = await f.RunAsync("compare", "--corpus", "--kernel", "6.8", "--kernel", patch, "--sessions", prefix + "-*", "--json");
        Assert.Equal(1, corpus.ExitCode);
        var lines = corpus.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(scripts.Count, lines.Count);
        var diverging = lines.Where(l => !(bool)l["identical"]!).Select(l => ((string)l["session"]!)[(prefix.Length + 1)..]).Order().ToList();
        Assert.Equal(scripts.Where(s => BindsOnePairTwice(s.Value)).Select(s => s.Key).Order().ToList(), diverging);
        Assert.NotEmpty(diverging);
        // diverging first, by count
        var counts = lines.Select(l => (bool)l["identical"]! ? -1 : (int)l["calls_differing"]!).ToList();
        Assert.Equal(counts.OrderByDescending(c => c).ToList(), counts);

        foreach (var l in lines)
        {
            var one = await f.RunAsync("compare", (string)l["session"]!, "--kernel", "6.8", "--kernel", patch, "--json");
            var c = JsonNode.Parse(one.Stdout)!;
            Assert.Equal((bool)c["identical"]!, (bool)l["identical"]!);
            Assert.Equal((int)c["differing"]!, (int)l["calls_differing"]!);
            Assert.Equal((int)c["calls"]!, (int)l["calls"]!);
            if (c["first_divergence"] is JsonObject fd)
            {
                Assert.Equal((int?)fd["line"], (int?)l["line"]);
                Assert.Equal((string)fd["op"]!, (string)l["op"]!);
                Assert.Equal(fd["a"]!["rule"]!.ToJsonString(), l["a"]!["rule"]!.ToJsonString());
                Assert.Equal(fd["b"]!["rule"]!.ToJsonString(), l["b"]!["rule"]!.ToJsonString());
            }
        }
        var html = Path.Combine(dir, "report.html");
        var h = await f.RunAsync("compare", "--corpus", "--kernel", "6.8", "--kernel", patch, "--sessions", prefix + "-*", "--html", html);
        Assert.Equal(1, h.ExitCode);
        var page = await File.ReadAllTextAsync(html);
        Assert.Contains("6.8+rebind-ebusy", page);
        Assert.Contains($"{prefix}-uacce", page);
        var same = await f.RunAsync("compare", "--corpus", "--kernel", "6.8", "--kernel", "6.9", "--sessions", prefix + "-uacce");
        Assert.Equal(0, same.ExitCode);
        Directory.Delete(dir, true);
    }
}
