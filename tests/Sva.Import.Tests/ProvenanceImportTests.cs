using System.Text.Json.Nodes;

namespace Sva.Import.Tests;

/// <summary>sva state --blame and sva why on an imported capture: line and source are the capture's line, so "why" leads
/// back to the pasted log (ftrace-sva-smmu-2 under 5.13: line 1 bind, line 3 the process exits, line 7 unbind).</summary>
[Collection("import")]
public sealed class ProvenanceImportTests(ImportFixture f)
{
    private const string File = "ftrace-sva-smmu-2.txt";

    private static void AssertSetAt(JsonNode? o, long seq, int line, string op, string rule)
    {
        var at = o!["set_at"]!;
        Assert.Equal((seq, line, $"{File}:{line}", op, rule),
            ((long)at["seq"]!, (int)at["line"]!, (string)at["source"]!, (string)at["op"]!, (string)at["rule"]!));
    }

    [Fact]
    public async Task blame_and_why_of_an_imported_capture_point_at_the_capture_lines()
    {
        var imp = await f.RunAsync("import", f.FreshCopy("captures/" + File), "--json");
        Assert.True(imp.ExitCode == 0, imp.ToString());
        var session = (string)imp.Json()["session"]!;

        // seq 14: after line 3 (mm released, the CD quieted); the log: 1 observed, 2 device (inferred), 3 mm (inferred, PASID 1 at 4),
        // 5-8 the bond (H1 at 8), 9-10 line 2's fault, 11-14 line 3's release
        var r = await f.RunAsync("state", session, "--at", "14", "--blame", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var s = JsonNode.Parse(r.Stdout)!;
        var dev = s["devices"]![0]!;
        AssertSetAt(dev, 2, 1, "device", "sim.ok");                        // the device was declared by line 1 (first seen there)
        AssertSetAt(dev["pasids"]![0], 13, 3, "exit", "release.quiet-cd");  // quieted by the release
        Assert.Equal(10, (long)dev["pending_set_at"]!["seq"]!);
        AssertSetAt(s["mms"]![0], 12, 3, "exit", "release.quiet-cd");
        AssertSetAt(s["handles"]![0], 8, 1, "bind", "g1.bond-new");
        AssertSetAt(s["pasid_allocator"]![0], 4, 1, "mm", "sim.ok");      // the mm came with its PASID (bound before the capture)

        // earlier: seq 10 (after line 2): the entry is still the one the bond wrote
        var early = JsonNode.Parse((await f.RunAsync("state", session, "--at", "10", "--blame", "--json")).Stdout)!;
        AssertSetAt(early["devices"]![0]!["pasids"]![0], 7, 1, "bind", "g1.bond-new");
        AssertSetAt(early["mms"]![0], 8, 1, "bind", "g1.bond-new");

        // why H1 at seq 14: the bond (line 1), then the release (line 3), the PASID and the device (line 1)
        var why = await f.RunAsync("why", session, "--at", "14", "--handle", "H1", "--json");
        Assert.True(why.ExitCode == 0, why.ToString());
        var steps = why.JsonLines();
        Assert.Equal([8, 13, 12, 4, 2], steps.Select(x => (long)x["seq"]!));
        Assert.Equal([1, 3, 3, 1, 1], steps.Select(x => (int)x["line"]!));
        Assert.All(steps, x => Assert.Equal($"{File}:{(int)x["line"]!}", (string?)x["source"]));

        // the import writes provenance's shortcuts (the call's rule on its first event, the distance back on the others): the
        // store finds the same calls with them as by walking the metadata, and the rule written is the one the walk derives
        var all = Enumerable.Range(1, 24).Select(i => (long)i).ToList();
        var walked = (await f.Store.ReadGroupsAsync(session, all, Sva.Projections.EventMetadata.CallKey, Sva.Projections.EventMetadata.SourceKey, "rule"))!;
        var fast = (await f.Store.ReadGroupsAsync(session, all, Sva.Projections.EventMetadata.CallKey, Sva.Projections.EventMetadata.SourceKey, "rule",
            Sva.Projections.EventMetadata.OffsetKey, Sva.Projections.EventMetadata.RuleKey))!;
        Assert.Equal(walked.Select(x => x.GroupSeq), fast.Select(x => x.GroupSeq));
        Assert.Contains(fast, x => x.GroupSeq < x.Seq && x.GroupTypes.Count == 0);     // found by the distance, not walked
        foreach (var w in walked.Where(x => x.GroupSeq == x.Seq))
        {
            var m = Sva.Projections.EventMetadata.Parse(w.Metadata);
            if (!m.HasRule) continue;                                                     // the batch's last call: walked
            Assert.Equal(Sva.Domain.CallOutcome.RuleIdOf(m.Call!, w.GroupTypes, w.GroupFields), m.Rule);
        }
        Assert.Contains(walked, x => x.GroupSeq == x.Seq && Sva.Projections.EventMetadata.Parse(x.Metadata).HasRule);

        // at the end H1 is gone: unbound by line 7 (freed at seq 20)
        var gone = await f.RunAsync("why", session, "--handle", "H1");
        Assert.Equal(2, gone.ExitCode);
        Assert.Contains("handle H1 does not exist at seq 24", gone.Stderr);
        Assert.Contains("last existed at seq 19", gone.Stderr);
    }
}
