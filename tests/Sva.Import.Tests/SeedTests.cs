using System.Text.Json.Nodes;

namespace Sva.Import.Tests;

/// <summary>Seed 004 (a mail thread): the SMMU trace clean at lines 824-844 and, in the reply, mail-wrapped and
/// "> " quoted with records run together (lines 878-901). The wrapped copy imports to the same story.</summary>
[Collection("import")]
public sealed class SeedTests(ImportFixture f)
{
    private const string Seed = "seeds/004_614d4012e2cbc680.txt";

    private string Lines(int from, int to, string name)
    {
        var all = File.ReadAllLines(ImportFixture.Data(Seed));
        var text = string.Join("\n", all.Skip(from - 1).Take(to - from + 1)) + $"\n# {Guid.NewGuid():N}\n";
        return f.WriteTemp(name, text);
    }

    /// <summary>The session's events without where they came from: type and data, capture text and timestamps aside.</summary>
    private async Task<List<string>> StoryAsync(string session)
    {
        var log = (await f.RunAsync("log", session, "--json")).JsonLines();
        return log.Select(e =>
        {
            var data = e["data"]!.DeepClone().AsObject();
            if ((string?)e["type"] == "capture_observed") data.Remove("text");
            return $"{e["type"]} {data.ToJsonString()} {e["call"]?.ToJsonString()}";
        }).ToList();
    }

    [Fact]
    public async Task the_wrapped_quoted_copy_imports_to_the_same_story_as_the_clean_copy()
    {
        var clean = await f.RunAsync("import", Lines(815, 850, "clean.txt"), "--format", "ftrace", "--json");
        var wrapped = await f.RunAsync("import", Lines(860, 905, "wrapped.txt"), "--format", "ftrace", "--json");
        Assert.True(clean.ExitCode == 0, clean.ToString());
        Assert.True(wrapped.ExitCode == 0, wrapped.ToString());
        var c = clean.Json();
        var w = wrapped.Json();
        Assert.Equal(17, (long)c["recognized"]!);
        Assert.Equal(17, (long)w["recognized"]!);
        Assert.Equal((long)c["events"]!, (long)w["events"]!);
        Assert.Equal(0, (long)c["mismatches"]!);
        Assert.Equal(0, (long)w["mismatches"]!);
        Assert.Equal(await StoryAsync((string)c["session"]!), await StoryAsync((string)w["session"]!));

        // records joined from wrapped lines keep their first and last line
        var log = (await f.RunAsync("log", (string)w["session"]!, "--json")).JsonLines();
        Assert.Contains(log, e => (string?)e["type"] == "capture_observed" && ((string)e["source"]!).Contains('-'));
    }

    [Fact]
    public async Task the_whole_mail_imports_both_copies_and_the_fault_after_release_conforms()
    {
        var r = await f.RunAsync("import", f.FreshCopy(Seed), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(34, (long)j["recognized"]!);
        Assert.True((long)j["skipped"]! > 1000); // the prose and the patch, counted, never dropped silently
        Assert.Equal(0, (long)j["mismatches"]!);
        Assert.Equal(0, (long)j["failures"]!);
        Assert.Equal(18, (long)j["conformance_checked"]!);
        Assert.Equal(1, (int)j["devices"]!);

        // the four code=1 / code=0 responses after release: the simulator answered INVALID after each smmu_mm_release
        var log = (await f.RunAsync("log", (string)j["session"]!, "--json")).JsonLines();
        var invalid = log.Where(e => (string?)e["type"] == "page_response_sent" && (string?)e["data"]!["code"] == "INVALID").ToList();
        Assert.Equal(2, invalid.Count);
        Assert.All(invalid, e => Assert.Equal(383, (int)e["data"]!["group"]!));
        // imported under the proposed 5.13: the PASID is refcounted by bonds (5.11-5.17), freed at each last unbind,
        // so the next bind of PASID 1 is a new mm without an inferred drop
        Assert.Equal("5.13", (string?)j["kernel"]);
        Assert.Contains(log, e => (string?)e["type"] == "pasid_freed" && ((string)e["data"]!["reason"]!).Contains("last unbind"));
        Assert.DoesNotContain(log, e => e["call"] is JsonObject c && (string?)c["op"] == "drop");
        Assert.Contains(log, e => (string?)e["type"] == "mm_created" && (string?)e["data"]!["mm"] == "mm.pasid1.2");

        // under 6.8 the PASID lives as long as the mm: the third bind of PASID 1 comes after the second process exited
        // and unbound, so its mm was dropped (inferred)
        var r68 = await f.RunAsync("import", f.FreshCopy(Seed), "--kernel", "6.8", "--json");
        Assert.True(r68.ExitCode == 0, r68.ToString());
        Assert.Equal(0, (long)r68.Json()["mismatches"]!);
        var log68 = (await f.RunAsync("log", (string)r68.Json()["session"]!, "--json")).JsonLines();
        Assert.Contains(log68, e => e["call"] is JsonObject c && (string?)c["op"] == "drop");
        Assert.Contains(log68, e => (string?)e["type"] == "mm_created" && (string?)e["data"]!["mm"] == "mm.pasid1.2");
    }

    /// <summary>
    /// Issue 9: seed 004's two captures (ftrace-sva-smmu-1/-2) are SMMUv3 SVA development traces; import proposes
    /// 5.13 (mainline 5.11/5.12 cannot enable Arm SVA) and both import there with no failed bind and no mismatch.
    /// The inferred device is an SMMUv3 one. Under 5.11 the same capture's binds are refused (-ENODEV).
    /// </summary>
    [Theory, InlineData("captures/ftrace-sva-smmu-1.txt", 4), InlineData("captures/ftrace-sva-smmu-2.txt", 5)]
    public async Task seed_004_captures_import_under_the_proposed_5_13_without_failed_binds_or_mismatches(string capture, int compared)
    {
        var r = await f.RunAsync("import", f.FreshCopy(capture), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal("5.13", (string?)j["kernel"]);
        Assert.Contains("SMMUv3 SVA development trace", (string?)j["kernel_proposed"]);
        Assert.Equal(0, (long)j["failures"]!);
        Assert.Equal(0, (long)j["mismatches"]!);
        Assert.Equal(compared, (long)j["conformance_checked"]!);

        var log = (await f.RunAsync("log", (string)j["session"]!, "--json")).JsonLines();
        var probed = Assert.Single(log, e => (string?)e["type"] == "device_probed");
        Assert.Equal("smmuv3", (string?)probed["data"]!["driver"]);
        Assert.Contains(log, e => (string?)e["type"] == "handle_issued" && (string?)e["data"]!["rule"] == "g1.bond-new");
        Assert.DoesNotContain(log, e => (string?)e["type"] is "bind_failed" or "kernel_bug");

        // the same capture under 5.11: an SMMUv3 master cannot enable SVA there, every bind is refused
        var old = await f.RunAsync("import", f.FreshCopy(capture), "--kernel", "5.11", "--json");
        Assert.True(old.ExitCode == 0, old.ToString());
        Assert.True((long)old.Json()["failures"]! > 0);
        Assert.Null(old.Json()["kernel_proposed"]);
    }
}
