using System.Text.Json.Nodes;

namespace Sva.Import.Tests;

/// <summary>'sva state --at', 'sva log' and 'sva check' tell the story of ftrace-sva-smmu-2 (seed 004's second trace:
/// bind, fault, the process kills itself, responses, the fault after release answered INVALID, unbind), imported under
/// the proposed 5.13.</summary>
[Collection("import")]
public sealed class StoryTests(ImportFixture f)
{
    private async Task<(string Session, List<JsonObject> Log)> ImportAsync(string path, params string[] extra)
    {
        var r = await f.RunAsync(["import", path, "--json", .. extra]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var session = (string)r.Json()["session"]!;
        var log = (await f.RunAsync("log", session, "--json")).JsonLines();
        return (session, log);
    }

    private async Task<JsonNode> StateAsync(string session, long at)
    {
        var r = await f.RunAsync("state", session, "--at", at.ToString(), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!;
    }

    private static long SeqOf(List<JsonObject> log, string type, int line, int nth = 0) =>
        (long)log.Where(e => (string?)e["type"] == type && (string?)e["source"] == $"ftrace-sva-smmu-2.txt:{line}").ElementAt(nth)["seq"]!;

    [Fact]
    public async Task state_log_and_check_tell_the_story_of_ftrace_sva_smmu_2()
    {
        var (session, log) = await ImportAsync(f.FreshCopy("captures/ftrace-sva-smmu-2.txt"));

        // log: every line observed, then what the simulator did, pointing back to the line
        Assert.Equal(Enumerable.Range(1, 7).Select(l => $"ftrace-sva-smmu-2.txt:{l}"),
            log.Where(e => (string?)e["type"] == "capture_observed").Select(e => (string)e["source"]!));
        var bindCall = log.First(e => e["call"] is JsonObject c && (string?)c["op"] == "bind")["call"]!;
        Assert.Equal(("0000:00:03.0", "mm.pasid1"), ((string)bindCall["device"]!, (string)bindCall["mm"]!));
        var issued = SeqOf(log, "handle_issued", 1);
        var firstResponse = log.Single(e => (string?)e["type"] == "page_response_sent" && (int?)e["data"]!["group"] == 259);
        Assert.Equal(("SUCCESS", "ftrace-sva-smmu-2.txt:2"), ((string)firstResponse["data"]!["code"]!, (string)firstResponse["source"]!));
        var released = SeqOf(log, "mm_released", 3);
        var secondResponse = log.Single(e => (string?)e["type"] == "page_response_sent" && (int?)e["data"]!["group"] == 383);
        Assert.Equal(("INVALID", "ftrace-sva-smmu-2.txt:5"), ((string)secondResponse["data"]!["code"]!, (string)secondResponse["source"]!));
        Assert.Contains("process exited", (string)secondResponse["data"]!["reason"]!);
        var freed = SeqOf(log, "handle_freed", 7);
        Assert.True(freed < (long)log[^1]["seq"]!);

        // state --at: bound after line 1 (device and mm inferred), exited after line 3, unbound at the end
        var afterBind = await StateAsync(session, issued);
        Assert.True((bool)afterBind["mms"]![0]!["inferred"]!);
        Assert.Equal(("mm.pasid1", 1, "live"), ((string)afterBind["mms"]![0]!["id"]!, (int)afterBind["mms"]![0]!["pasid"]!, (string)afterBind["mms"]![0]!["state"]!));
        Assert.Equal(("H1", 1), ((string)afterBind["handles"]![0]!["id"]!, (int)afterBind["handles"]![0]!["pasid"]!));
        Assert.Equal(1, (int)afterBind["devices"]![0]!["pasids"]![0]!["pasid"]!);
        var afterRelease = await StateAsync(session, released);
        Assert.Equal("exited", (string)afterRelease["mms"]![0]!["state"]!);
        Assert.Single(afterRelease["handles"]!.AsArray());
        var end = await StateAsync(session, (long)log[^1]["seq"]!); // 5.13 frees the bond before it clears the CD
        Assert.Empty(end["handles"]!.AsArray());
        Assert.Empty(end["devices"]![0]!["pasids"]!.AsArray());

        // check: nothing wrong, and the capture conforms to the rules of 5.13 (the kernel import proposes for it)
        var check = await f.RunAsync("check", session, "--json");
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Empty(check.JsonLines());
    }

    [Fact]
    public async Task a_capture_answering_success_after_release_is_a_mismatch_naming_both_lines()
    {
        var text = File.ReadAllText(ImportFixture.Data("captures/ftrace-sva-smmu-2.txt"))
            .Replace("code=1 pasid=1 group=383", "code=0 pasid=1 group=383") + $"# {Guid.NewGuid():N}\n";
        var r = await f.RunAsync("import", f.WriteTemp("ftrace-sva-smmu-2.txt", text), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(1, (long)j["mismatches"]!);
        var m = j["conformance"]![0]!;
        var log = (await f.RunAsync("log", (string)j["session"]!, "--json")).JsonLines();
        Assert.Equal("conformance", (string)m["kind"]!);
        Assert.Equal(SeqOf(log, "capture_observed", 6), (long)m["seq"]!);
        Assert.Equal("ftrace-sva-smmu-2.txt:6", (string)m["line"]!);
        Assert.Equal(SeqOf(log, "page_response_sent", 5), (long)m["simulated_seq"]!);
        Assert.Equal("ftrace-sva-smmu-2.txt:5", (string)m["simulated_line"]!);
        Assert.Contains("SUCCESS", (string)m["message"]!);
        Assert.Contains("INVALID", (string)m["message"]!);
    }

    [Fact]
    public async Task a_use_after_unmap_is_found_by_check_with_both_seqs()
    {
        var text = $"""
            # tracer: nop  {Guid.NewGuid():N}
                 kworker/0:1-12    [000] .....   10.000000: attach_device_to_domain: IOMMU: device=0000:00:14.0
                 kworker/0:1-12    [000] .....   10.000100: map: IOMMU: iova=0x00000000fff00000 - 0x00000000fff02000 paddr=0x0000000123456000 size=8192
              irq/26-AMD-Vi-154    [000] d....   10.000200: io_page_fault: IOMMU:xhci_hcd 0000:00:14.0 iova=0x00000000fff01000 flags=0x0000
                 kworker/0:1-12    [000] .....   10.000300: unmap: IOMMU: iova=0x00000000fff00000 - 0x00000000fff02000 size=8192 unmapped_size=8192
              irq/26-AMD-Vi-154    [000] d....   10.000400: io_page_fault: IOMMU:xhci_hcd 0000:00:14.0 iova=0x00000000fff01000 flags=0x0001

            """;
        var (session, log) = await ImportAsync(f.WriteTemp("uaf.txt", text));
        var unmap = SeqAt(log, "iova_unmapped", "uaf.txt:5");
        var fault = SeqAt(log, "dma_fault_reported", "uaf.txt:6");
        var map = SeqAt(log, "iova_mapped", "uaf.txt:3");
        // the fault while mapped went through (the capture says it faulted: a conformance mismatch, both lines named)
        Assert.Contains(log, e => (string?)e["type"] == "dma_translated" && (string?)e["source"] == "uaf.txt:4");
        Assert.Equal(0, log.Count(e => (string?)e["type"] == "dma_fault_reported" && (string?)e["source"] == "uaf.txt:4"));

        var check = await f.RunAsync("check", session, "--json");
        Assert.Equal(1, check.ExitCode);
        var finding = check.JsonLines().Single(x => (string?)x["kind"] == "dma-after-unmap");
        Assert.Equal(fault, (long)finding["seq"]!);
        var involved = finding["involved"]!.AsArray().Select(i => (long)i!["seq"]!).ToList();
        Assert.Contains(unmap, involved);
        Assert.Contains(map, involved);
        Assert.Equal(6, (int)finding["line"]!);
    }

    private static long SeqAt(List<JsonObject> log, string type, string source) =>
        (long)log.First(e => (string?)e["type"] == type && (string?)e["source"] == source)["seq"]!;
}
