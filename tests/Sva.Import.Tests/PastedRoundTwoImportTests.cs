using System.Text.Json.Nodes;

namespace Sva.Import.Tests;

/// <summary>Issue 12: the real pastes of data/captures (sources in data/README.md) import under 6.8 with every record
/// counted: Arm SMMU v1/v2 faults as observations only, SMMUv3 events other than 0x10, raw-word SMMUv3 records whose
/// master becomes an inferred device named after its StreamID, amdgpu GPU-MMU faults not read as PASIDs.</summary>
[Collection("import")]
public sealed class PastedRoundTwoImportTests(ImportFixture f)
{
    public static TheoryData<string, int, int, int, int, string[]> Captures => new()
    {
        // file, recognized, skipped, events, pasids, devices (state)
        { "dmesg-armsmmu-offset-column.txt", 1, 1, 1, 0, [] },
        { "dmesg-armsmmu-callbacks-stack.txt", 1, 32, 1, 0, [] },
        { "dmesg-armsmmu-mid-record.txt", 4, 1, 4, 0, [] },
        { "dmesg-armsmmu-ufs-pf.txt", 1, 11, 1, 0, [] },
        { "dmesg-armsmmu-caller-id.txt", 1, 6, 1, 0, [] },
        { "mail-armsmmu-global-fault-labels.txt", 2, 10, 2, 0, [] },
        // observations + an inferred probe of the StreamID's master (F_TRANSL_FORBIDDEN: no call)
        { "dmesg-smmuv3-vendor-prefix-0x07.txt", 2, 2, 3, 0, ["sid0x100@arm-smmu-v3.0.auto"] },
        // 2 observations, probe, capture-dma alloc + attach, 2 faults without PASID
        { "dmesg-smmuv3-decoded-callbacks.txt", 2, 1, 7, 0, ["0000:c1:00.0"] },
        // 4 stalled faults (page requests, STAG = group) of a master known only by its StreamID
        { "dmesg-smmuv3-raw-words-stall.txt", 4, 4, 9, 0, ["sid0x3501@arm-smmu-v3.2.auto"] },
        { "mail-smmuv3-raw-words-interleaved.txt", 4, 41, 11, 0, ["0000:02:00.0", "sid0x200@9050000.smmuv3"] },
        { "dmesg-amdgpu-gfxhub-pasid.txt", 0, 15, 0, 0, [] },
        { "dmesg-armsmmu-tegra-downstream.txt", 1, 0, 1, 0, [] },
    };

    [Theory]
    [MemberData(nameof(Captures))]
    public async Task each_capture_imports_with_every_record_counted(string file, int recognized, int skipped, int events, int pasids, string[] devices)
    {
        var path = f.FreshCopy("captures/" + file);
        var r = await f.RunAsync("import", path, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal("dmesg", (string?)j["format"]);
        Assert.Equal(File.ReadAllLines(path).Length, (long)j["lines"]!);
        Assert.Equal((recognized, skipped + 1, events, devices.Length, pasids, 0L),
            ((int)(long)j["recognized"]!, (int)(long)j["skipped"]!, (int)(long)j["events"]!, (int)j["devices"]!, (int)j["pasids"]!, (long)j["failures"]!));
        // how auto detection decided: the format and the first lines that fit
        Assert.Equal("dmesg", (string?)j["detection"]!["format"]);
        Assert.Equal(recognized > 0, j["detection"]!["fitting_lines"]!.AsArray().Count > 0);

        var session = (string)j["session"]!;
        if (events == 0)
        {
            // nothing recognised, nothing recorded: a session exists only once its first event is committed
            Assert.Equal(2, (await f.RunAsync("log", session, "--json")).ExitCode);
            return;
        }
        var log = (await f.RunAsync("log", session, "--json")).JsonLines();
        Assert.Equal(events, log.Count);
        Assert.Equal(recognized, log.Count(e => (string?)e["type"] == "capture_observed"));
        var state = JsonNode.Parse((await f.RunAsync("state", session, "--json")).Stdout)!;
        Assert.Equal(devices, state["devices"]!.AsArray().Select(d => (string)d!["id"]!).Order(StringComparer.Ordinal));
        // GPU-MMU and Arm SMMU v2 faults name no IOMMU PASID
        Assert.DoesNotContain(log, e => (string?)e["type"] == "capture_observed" && e["data"]!["pasid"] is not null);
    }

    [Fact]
    public async Task a_raw_word_stall_becomes_a_page_request_of_the_stream_device()
    {
        var r = await f.RunAsync("import", f.FreshCopy("captures/dmesg-smmuv3-raw-words-stall.txt"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var log = (await f.RunAsync("log", (string)r.Json()["session"]!, "--json")).JsonLines();
        var probe = log.Single(e => (string?)e["type"] == "device_probed");
        Assert.Equal(("sid0x3501@arm-smmu-v3.2.auto", "arm-smmu-v3.2.auto", true),
            ((string)probe["data"]!["device"]!, (string)probe["data"]!["iommu"]!, (bool)probe["data"]!["inferred"]!));
        var faults = log.Where(e => (string?)e["call"]?["op"] == "fault").ToList();
        Assert.Equal([63, 1086, 1078, 1082], faults.Select(e => (int)e["call"]!["group"]!)); // STAG 0x3f, 0x43e, 0x436, 0x43a
        Assert.All(faults, e => Assert.Equal(("r", true), ((string)e["call"]!["access"]!, (bool)e["call"]!["last"]!)));
        Assert.Equal(["dmesg-smmuv3-raw-words-stall.txt:1-5", "dmesg-smmuv3-raw-words-stall.txt:6-10", "dmesg-smmuv3-raw-words-stall.txt:11-15", "dmesg-smmuv3-raw-words-stall.txt:16-21"],
            faults.Select(e => (string)e["source"]!));
    }

    [Theory]
    [InlineData("dmesg-smmuv3-vendor-prefix-0x07.txt", 1, "sudo dmesg | grep smmu")]
    [InlineData("dmesg-armsmmu-offset-column.txt", 3, "qcom_q6v5_pas 26300000.remoteproc: fatal error received")]
    [InlineData("mail-armsmmu-global-fault-labels.txt", 1, "Quoting Sai Prakash Ranjan")]
    public async Task strict_mode_names_the_first_line_it_cannot_read(string file, int line, string text)
    {
        var r = await f.RunAsync("import", f.FreshCopy("captures/" + file), "--strict", "--json");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{file}:{line}: unrecognised line: '", r.Stderr);
        Assert.Contains(text, r.Stderr);
    }

    [Fact]
    public async Task auto_detection_samples_past_a_long_preamble_and_names_the_lines_that_fit()
    {
        var preamble = string.Join("\n", Enumerable.Range(0, 1500).Select(i => i % 2 == 0 ? "$ sudo dmesg | grep smmu" : "QUP0:"));
        var capture = File.ReadAllText(ImportFixture.Data("captures/dmesg-armsmmu-caller-id.txt"));
        var path = f.WriteTemp("preamble.txt", preamble + "\n" + capture + $"# {Guid.NewGuid():N}\n");
        var r = await f.RunAsync("import", path, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(("dmesg", 1, 1510), ((string)j["format"]!, (int)(long)j["recognized"]!, (int)j["detection"]!["sampled_lines"]!));
        Assert.Equal([1501, 1502, 1503], j["detection"]!["fitting_lines"]!.AsArray().Select(n => (int)n!));

        var text = await f.RunAsync("import", path);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("format detected: dmesg (lines 1501, 1502, 1503 of the first 1510 fit)", text.Stdout + text.Stderr);
    }

    [Fact]
    public async Task dmesg_human_keeps_the_reconstructed_time_in_the_log()
    {
        var r = await f.RunAsync("import", f.FreshCopy("synthetic/dmesg-human.txt"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal((5, 2), ((int)(long)j["recognized"]!, (int)(long)j["skipped"]!));
        var log = (await f.RunAsync("log", (string)j["session"]!, "--json")).JsonLines();
        var observed = log.Where(e => (string?)e["type"] == "capture_observed").ToList();
        Assert.Equal([0.0, 60.0, 60.000011, 120.0, -60.0], observed.Select(e => (double)e["data"]!["timestamp"]!));
    }

    [Fact]
    public async Task formats_lists_the_new_records()
    {
        var r = await f.RunAsync("formats", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var dmesg = r.JsonLines().Single(l => (string?)l["name"] == "dmesg");
        var kinds = dmesg["records"]!.AsArray().Select(x => (string)x!["kind"]!).ToList();
        Assert.Contains("ArmSmmuContextFault", kinds);
        Assert.Contains("ArmSmmuGlobalFault", kinds);
        Assert.Contains("-H", (string)dmesg["description"]!);
        var v3 = dmesg["records"]!.AsArray().Single(x => (string?)x!["kind"] == "SmmuV3Event")!;
        Assert.Contains("F_VMS_FETCH", (string)v3["printed"]!);
        Assert.Contains("sid0x<StreamID>@<smmu>", (string)v3["maps_to"]!);
    }
}
