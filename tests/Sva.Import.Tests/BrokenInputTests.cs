namespace Sva.Import.Tests;

/// <summary>Malformed and unrecognised lines: --strict fails naming file:line and the expected format, with nothing
/// recorded; the default counts them as skipped, with their reason, and lists them with --show-skipped.</summary>
[Collection("import")]
public sealed class BrokenInputTests(ImportFixture f)
{
    public static TheoryData<string, int, string> Broken => new()
    {
        // file, malformed line, expected format quoted in the error
        { "ftrace-broken.txt", 2, "dev_fault: IOMMU:%s type=%d reason=%d addr=0x%016llx" },
        { "dmesg-broken.txt", 3, "fault addr" },
        { "qemu-broken.txt", 3, "vtd_dmar_slpte sid 0x%x slpte 0x%x addr 0x%x write %d" },
        { "broken.jsonl", 2, "{\"op\":\"bind\",\"device\":\"<bdf>\",\"mm\":\"<mm id>\"" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task strict_fails_with_file_line_and_the_expected_format_and_records_nothing(string file, int line, string expected)
    {
        var path = f.FreshCopy("synthetic/" + file);
        var session = ImportFixture.UniqueSession("strict");
        var r = await f.RunAsync("import", path, "--strict", "--session", session, "--json");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains($"{file}:{line}", r.Stderr);
        Assert.Contains("expected", r.Stderr);
        Assert.Contains(expected, r.Stderr);
        Assert.Null(await f.SessionVersionAsync(session));
        Assert.Null(await f.Store.FindSourceBySessionAsync(session, "import"));
    }

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task lenient_counts_the_malformed_line_as_skipped_with_its_reason(string file, int line, string expected)
    {
        var path = f.FreshCopy("synthetic/" + file);
        var r = await f.RunAsync("import", path, "--show-skipped", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = r.Json();
        Assert.Equal(1, (long)j["skipped_by_reason"]!["malformed"]!);
        var skipped = j["skipped_lines"]!.AsArray().Single(s => ((string)s!["reason"]!).StartsWith("malformed"));
        Assert.Equal(line, (int)skipped!["line"]!);
        Assert.Equal($"{file}:{line}", (string)skipped["source"]!);
        Assert.Contains(expected, (string)skipped["reason"]!);
        Assert.True((long)j["events"]! > 0);
    }

    [Fact]
    public async Task strict_refuses_an_unrecognised_line_but_not_comments()
    {
        var path = f.WriteTemp("strict.txt", $"""
            # tracer: nop {Guid.NewGuid():N}
            smmu_bind_alloc: dev=0000:00:03.0 pasid=1
            this is prose in the middle of the trace
            smmu_unbind_free: dev=0000:00:03.0 pasid=1

            """);
        var r = await f.RunAsync("import", path, "--strict");
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains("strict.txt:3: unrecognised line", r.Stderr);

        var ok = f.WriteTemp("strict-ok.txt", $"""
            # tracer: nop {Guid.NewGuid():N}
            smmu_bind_alloc: dev=0000:00:03.0 pasid=1
            smmu_unbind_free: dev=0000:00:03.0 pasid=1

            """);
        var r2 = await f.RunAsync("import", ok, "--strict", "--json");
        Assert.True(r2.ExitCode == 0, r2.ToString());
        Assert.Equal(1, (long)r2.Json()["skipped"]!); // the comment, counted
    }

    [Fact]
    public async Task show_skipped_lists_every_unrecognised_line_in_text_mode()
    {
        var r = await f.RunAsync("import", f.FreshCopy("synthetic/ftrace-5x-headers.txt", trailer: $"unrelated {Guid.NewGuid():N}"), "--show-skipped");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("skipped ftrace-5x-headers.txt:17: unrecognised event 'sched_wakeup'", r.Stdout);
        Assert.Contains("skipped ftrace-5x-headers.txt:23: unrecognised line", r.Stdout);
        Assert.Equal(13, r.Stdout.Split('\n').Count(l => l.StartsWith("skipped ")));
    }

    [Fact]
    public async Task bad_options_and_missing_files_are_exit_2()
    {
        var path = f.FreshCopy("captures/dmesg-dmar-1.txt");
        Assert.Equal(2, (await f.RunAsync("import", path, "--kernel", "4.2")).ExitCode);
        Assert.Equal(2, (await f.RunAsync("import", path, "--format", "pcap")).ExitCode);
        Assert.Equal(2, (await f.RunAsync("import", path + ".missing")).ExitCode);
        var prose = f.WriteTemp("prose.txt", "Hello,\nthis mail has no trace in it at all.\nThanks\n");
        var r = await f.RunAsync("import", prose);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("ftrace", r.Stderr); // the formats are listed
    }
}
