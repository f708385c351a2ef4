using System.Diagnostics;
using System.Text.Json.Nodes;
using Sva.Domain.Json;
using Sva.Formats.Import;

namespace Sva.Import.Tests;

/// <summary>The same capture under the same kernel is one session; an interrupted import resumes from its last
/// committed batch (never half a batch) and ends with exactly the events of an uninterrupted one.</summary>
[Collection("import")]
public sealed class IdempotencyAndResumeTests(ImportFixture f)
{
    [Fact]
    public async Task reimporting_the_same_capture_reports_the_first_import_and_appends_nothing()
    {
        var path = f.FreshCopy("captures/ftrace-sva-smmu-1.txt");
        var first = (await f.RunAsync("import", path, "--json")).Json();
        var session = (string)first["session"]!;
        Assert.False((bool)first["already_imported"]!);
        Assert.StartsWith("ftrace-sva-smmu-1-", session);
        Assert.EndsWith("-5.13", session); // an SMMUv3 SVA development trace: import proposes 5.13

        var again = await f.RunAsync("import", path, "--json");
        Assert.True(again.ExitCode == 0, again.ToString());
        var j = again.Json();
        Assert.True((bool)j["already_imported"]!);
        Assert.Equal(session, (string)j["session"]!);
        Assert.Equal(0, (long)j["appended"]!);
        Assert.Equal((long)first["events"]!, (long)j["events"]!);
        Assert.Equal((long)first["events"]!, await f.SessionVersionAsync(session));

        // another name, a copy under another file name: still the same capture, still that session
        var copy = f.WriteTemp("renamed.txt", File.ReadAllText(path));
        var named = (await f.RunAsync("import", copy, "--session", ImportFixture.UniqueSession("copy"), "--json")).Json();
        Assert.Equal(session, (string)named["session"]!);
        Assert.True((bool)named["already_imported"]!);

        // another kernel is another session
        var other = (await f.RunAsync("import", path, "--kernel", "6.8-rc1", "--json")).Json();
        Assert.NotEqual(session, (string)other["session"]!);
        Assert.False((bool)other["already_imported"]!);

        var text = await f.RunAsync("import", path);
        Assert.Contains("already holds this capture", text.Stderr);
    }

    [Fact]
    public async Task an_existing_session_of_something_else_is_refused()
    {
        var session = ImportFixture.UniqueSession("run");
        var run = await f.RunAsync("run", Path.Combine(f.Repo, "examples", "uacce-double-open.sva"), "--session", session);
        Assert.True(run.ExitCode == 0, run.ToString());
        var r = await f.RunAsync("import", f.FreshCopy("captures/dmesg-dmar-1.txt"), "--session", session);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("not an import", r.Stderr);
    }

    /// <summary>What the same capture decides in memory, event by event (type, data, source).</summary>
    private static async Task<List<(string Type, JsonNode Data, string Source)>> InMemoryAsync(string path, string kernel)
    {
        using var reader = new StreamReader(path);
        var (events, _) = await ImportDecider.DecideAllAsync(reader, Path.GetFileName(path), "auto", kernel);
        return events.Select(e => (Sva.Domain.EventTypes.NameOf(e.Event), JsonNode.Parse(SvaJson.Serialize(e.Event))!, e.Source)).ToList();
    }

    private async Task<List<(string Type, JsonNode Data, string Source)>> StoredAsync(string session)
    {
        var list = new List<(string, JsonNode, string)>();
        await foreach (var e in f.Store.ReadSessionAsync(session))
            list.Add((e.Type, JsonNode.Parse(e.DataJson)!, (string)JsonNode.Parse(e.Metadata)!["source"]!));
        return list;
    }

    [Fact]
    public async Task an_import_that_dies_after_a_batch_resumes_from_its_checkpoint()
    {
        var path = Path.Combine(f.TempDir, $"resume-{Guid.NewGuid():N}.txt");
        SyntheticCapture.WriteFtrace(path, 3000, Guid.NewGuid().ToString("N"));
        var session = ImportFixture.UniqueSession("resume");

        var crashed = await f.RunWithEnvAsync(new Dictionary<string, string> { ["SVA_IMPORT_EXIT_AFTER_BATCH"] = "3" },
            "import", path, "--session", session, "--batch", "500", "--json");
        Assert.True(crashed.ExitCode == 75, crashed.ToString());
        var version = await f.SessionVersionAsync(session);
        Assert.NotNull(version);
        // exactly three whole batches: the last event carries the checkpoint of batch 3
        var last = await LastMetadataAsync(session, version!.Value);
        Assert.Equal(3, (int)last["import"]!["batch"]!);
        Assert.False((await f.Store.FindSourceBySessionAsync(session, "import"))!.Complete); // running: written with each batch

        var resumed = await f.RunAsync("import", path, "--session", session, "--batch", "500", "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var j = resumed.Json();
        Assert.Equal(3, (int)j["resumed_after_batch"]!);
        Assert.Equal((long)j["events"]! - version.Value, (long)j["appended"]!);
        Assert.Equal(3000, (long)j["lines"]!);
        Assert.True((await f.Store.FindSourceBySessionAsync(session, "import"))!.Complete);

        await AssertSameAsUninterruptedAsync(path, session, j);
    }

    [Fact]
    public async Task a_registry_document_marked_complete_by_hand_is_checked_against_the_log_and_the_import_resumes()
    {
        var path = Path.Combine(f.TempDir, $"tamper-{Guid.NewGuid():N}.txt");
        SyntheticCapture.WriteFtrace(path, 3000, Guid.NewGuid().ToString("N"));
        var session = ImportFixture.UniqueSession("tamper");
        var crashed = await f.RunWithEnvAsync(new Dictionary<string, string> { ["SVA_IMPORT_EXIT_AFTER_BATCH"] = "2" },
            "import", path, "--session", session, "--batch", "500", "--json");
        Assert.True(crashed.ExitCode == 75, crashed.ToString());
        var version = (await f.SessionVersionAsync(session))!.Value;

        // The same capture imported whole elsewhere gives a genuine summary to forge with.
        var whole = (await f.RunAsync("import", path, "--kernel", "6.8-rc1", "--json")).Json();
        Assert.True((long)whole["events"]! > version);

        // Tamper: the interrupted import's registry document now says complete, with that summary (renamed to this session).
        var doc = (await f.Store.FindSourceBySessionAsync(session, "import"))!;
        Assert.False(doc.Complete);
        var json = JsonNode.Parse(doc.Json)!.AsObject();
        var forged = whole.DeepClone().AsObject();
        forged["session"] = session;
        forged["kernel"] = (string)json["kernel"]!;
        json["summary"] = forged;
        await f.Store.SaveSourceAsync(doc with { Complete = true, Json = json.ToJsonString() });

        var again = await f.RunAsync("import", path, "--session", session, "--batch", "500", "--json");
        Assert.True(again.ExitCode == 0, again.ToString());
        var j = again.Json();
        Assert.False((bool)j["already_imported"]!);          // the log (2 batches) does not hold what the document claims
        Assert.Equal(2, (int)j["resumed_after_batch"]!);
        Assert.True((long)j["appended"]! > 0);
        await AssertSameAsUninterruptedAsync(path, session, j);

        // Now genuinely complete: the shortcut holds again.
        var third = (await f.RunAsync("import", path, "--session", session, "--json")).Json();
        Assert.True((bool)third["already_imported"]!);
        Assert.Equal(0, (long)third["appended"]!);
    }

    [Fact]
    public async Task an_import_killed_mid_way_leaves_whole_batches_and_resumes()
    {
        var path = Path.Combine(f.TempDir, $"kill-{Guid.NewGuid():N}.txt");
        SyntheticCapture.WriteFtrace(path, 40_000, Guid.NewGuid().ToString("N"));
        var session = ImportFixture.UniqueSession("kill");

        using (var p = f.Start(null, "import", path, "--session", session, "--batch", "700", "--json"))
        {
            var sw = Stopwatch.StartNew();
            while ((await f.SessionVersionAsync(session) ?? 0) < 1400 && sw.Elapsed < TimeSpan.FromMinutes(2) && !p.HasExited)
                await Task.Delay(20);
            Assert.False(p.HasExited, "the import finished before it could be killed: make the capture larger");
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        var version = await f.SessionVersionAsync(session) ?? 0;
        Assert.True(version > 0);
        var last = await LastMetadataAsync(session, version);
        Assert.NotNull(last["import"]); // never half a batch: the last committed event is a batch's last
        var count = 0L;
        await foreach (var _ in f.Store.ReadSessionAsync(session)) count++;
        Assert.Equal(version, count);

        var resumed = await f.RunAsync("import", path, "--session", session, "--batch", "700", "--json");
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var j = resumed.Json();
        Assert.Equal((int)last["import"]!["batch"]!, (int)j["resumed_after_batch"]!);
        await AssertSameAsUninterruptedAsync(path, session, j);
    }

    private async Task<JsonObject> LastMetadataAsync(string session, long seq)
    {
        await foreach (var e in f.Store.ReadSessionAsync(session, seq, seq))
            return (JsonObject)JsonNode.Parse(e.Metadata)!;
        throw new InvalidOperationException($"no seq {seq}");
    }

    private async Task AssertSameAsUninterruptedAsync(string path, string session, JsonObject summary)
    {
        // the log equals what the capture decides in memory in one go
        var expected = await InMemoryAsync(path, (string)summary["kernel"]!);
        var stored = await StoredAsync(session);
        Assert.Equal(expected.Count, stored.Count);
        Assert.Equal(expected.Count, (long)summary["events"]!);
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, s) = (expected[i], stored[i]);
            Assert.True(e.Type == s.Type && e.Source == s.Source && JsonNode.DeepEquals(e.Data, s.Data),
                $"seq {i + 1}: expected {e.Type} {e.Data.ToJsonString()} {e.Source}, stored {s.Type} {s.Data.ToJsonString()} {s.Source}");
        }
        // and the read model equals the log
        var verify = await f.RunAsync("projections", "verify", "--session", session);
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }
}
