using System.Text.Json.Nodes;

namespace Sva.Import.Tests;

/// <summary>Every capture of ../shared/captures (copied into data/captures) imports with known counts under the kernel
/// import proposes: 5.13 for the SMMUv3 SVA development traces, 6.8 for the rest.</summary>
[Collection("import")]
public sealed class SharedCaptureTests(ImportFixture f)
{
    public static TheoryData<string, string, int, int, int, int, int, int> Captures => new()
    {
        // file, format, recognized, events, devices, pasids, conformance compared, mismatches
        { "dmesg-amdvi-1.txt", "dmesg", 4, 11, 1, 0, 0, 0 },
        { "dmesg-dmar-1.txt", "dmesg", 3, 8, 1, 0, 0, 0 },
        { "dmesg-smmuv3-1.txt", "dmesg", 1, 5, 1, 0, 0, 0 },
        { "ftrace-iommu-2.txt", "ftrace", 6, 15, 1, 0, 0, 0 },
        { "ftrace-prq-vtd-1.txt", "ftrace", 8, 24, 1, 1, 0, 0 }, // 24 since issue 19: a VT-d bind no longer allocates an Arm CD (D15/D18)
        // seed 004's SMMUv3 development traces import under the proposed 5.13 (bond model: no SVA domain events)
        { "ftrace-sva-smmu-1.txt", "ftrace", 10, 33, 1, 1, 4, 0 },
        { "ftrace-sva-smmu-2.txt", "ftrace", 7, 24, 1, 1, 5, 0 },
        { "qemu-trace-vtd-2.unwrapped.txt", "qemu-trace", 13, 14, 1, 0, 0, 0 },
    };

    private static string ProposedKernel(string file) => file.StartsWith("ftrace-sva-smmu-", StringComparison.Ordinal) ? "5.13" : "6.8";

    [Theory]
    [MemberData(nameof(Captures))]
    public async Task each_shared_capture_imports_with_the_expected_counts(string file, string format, int recognized, int events, int devices, int pasids, int compared, int mismatches)
    {
        var path = f.FreshCopy("captures/" + file); // + one unique comment line
        var lines = File.ReadAllLines(path).Length;
        var r = await f.RunAsync("import", path, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(format, (string?)j["format"]);
        Assert.Equal(ProposedKernel(file), (string?)j["kernel"]);
        Assert.Equal(lines, (long)j["lines"]!);
        Assert.Equal(recognized, (long)j["recognized"]!);
        Assert.Equal(1, (long)j["skipped"]!); // the trailer
        Assert.Equal(events, (long)j["events"]!);
        Assert.Equal(events, (long)j["appended"]!);
        Assert.Equal(devices, (int)j["devices"]!);
        Assert.Equal(pasids, (int)j["pasids"]!);
        Assert.Equal(0, (long)j["failures"]!);
        Assert.Equal(compared, (long)j["conformance_checked"]!);
        Assert.Equal(mismatches, (long)j["mismatches"]!);
        Assert.False((bool)j["already_imported"]!);

        // the log: one capture_observed per recognised record, each event with its file:line
        var session = (string)j["session"]!;
        var log = (await f.RunAsync("log", session, "--json")).JsonLines();
        Assert.Equal(events, log.Count);
        Assert.Equal(recognized, log.Count(e => (string?)e["type"] == "capture_observed"));
        Assert.All(log, e => Assert.StartsWith(file + ":", (string)e["source"]!));

        // the inferred device is marked so in state
        var state = JsonNode.Parse((await f.RunAsync("state", session, "--json")).Stdout)!;
        Assert.Equal(devices, state["devices"]!.AsArray().Count);
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public async Task the_pristine_copy_gives_the_same_numbers(string file, string format, int recognized, int events, int devices, int pasids, int compared, int mismatches)
    {
        // Imported as is (maybe already by an earlier run against this database: then the stored summary answers).
        var r = await f.RunAsync("import", ImportFixture.Data("captures/" + file), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal((format, recognized, 0L, (long)events, devices, pasids, (long)compared, (long)mismatches),
            ((string)j["format"]!, (int)(long)j["recognized"]!, (long)j["skipped"]!, (long)j["events"]!, (int)j["devices"]!, (int)j["pasids"]!,
                (long)j["conformance_checked"]!, (long)j["mismatches"]!));
        Assert.Equal(events, await f.SessionVersionAsync((string)j["session"]!));
    }
}
