using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>timeline (rendered by headless Chromium), Perfetto export and step, on a recorded example.</summary>
[Collection("cli")]
public sealed class ViewsTests(CliFixture f)
{
    private async Task<string> Recorded()
    {
        var session = CliFixture.UniqueSession("views");
        var run = await f.RunAsync("run", f.Example("smmuv3-seed004.sva"), "--session", session);
        Assert.True(run.ExitCode == 0, run.ToString());
        return session;
    }

    private static async Task<(int Exit, string Stdout)> Chromium(params string[] args)
    {
        var exe = File.Exists("/usr/bin/chromium") ? "/usr/bin/chromium" : "chromium";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", $"--user-data-dir={Path.Combine(Path.GetTempPath(), "sva-chromium-" + Guid.NewGuid().ToString("N")[..8])}" })
            psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("chromium did not start (test.sh installs Debian's chromium)");
        var stdout = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout);
    }

    [Fact]
    public async Task timeline_is_one_self_contained_page_that_chromium_renders_with_lanes_marks_and_state_tables()
    {
        var session = await Recorded();
        var html = Path.Combine(Path.GetTempPath(), $"{session}.html");
        var r = await f.RunAsync("timeline", session, "-o", html);
        Assert.True(r.ExitCode == 0, r.ToString());
        var text = await File.ReadAllTextAsync(html);
        Assert.DoesNotMatch(new Regex("<(script|link|img)[^>]+(src|href)=", RegexOptions.IgnoreCase), text); // nothing loaded from elsewhere

        // The DOM after the page's script ran, at seq 34 (mm job2 just released).
        var (exit, dom) = await Chromium("--virtual-time-budget=5000", "--dump-dom", $"file://{html}?seq=34");
        Assert.Equal(0, exit);
        Assert.Contains("data-ready=\"yes\"", dom);
        Assert.Equal(2, Regex.Matches(dom, "<rect[^>]*class=\"bind").Count);                     // H1 on PASID 1, H2 on PASID 2
        Assert.Equal(2, Regex.Matches(dom, "class=\"lane-label\"").Count);
        Assert.Contains("mark response INVALID", dom);                                            // the fault after release
        Assert.Contains("<b id=\"seqlabel\">34</b>", dom);
        Assert.Contains("mm_released", dom);                                                      // the event just applied
        Assert.Matches("<td[^>]*>job2</td><td[^>]*>2</td><td[^>]*>exited</td>", dom);              // the mm table at seq 34

        var png = Path.Combine(Path.GetTempPath(), $"{session}.png");
        var (shot, _) = await Chromium("--window-size=1300,900", $"--screenshot={png}", $"file://{html}?seq=34");
        Assert.Equal(0, shot);
        var bytes = await File.ReadAllBytesAsync(png);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, bytes[..4]);
        Assert.True(bytes.Length > 20_000, $"screenshot is only {bytes.Length} bytes: the page looks empty");
    }

    [Fact]
    public async Task timeline_state_cells_carry_the_seq_that_set_their_row_and_a_click_moves_the_slider_there()
    {
        var session = await Recorded();
        var html = Path.Combine(Path.GetTempPath(), $"{session}-blame.html");
        var r = await f.RunAsync("timeline", session, "-o", html);
        Assert.True(r.ExitCode == 0, r.ToString());
        // the embedded states: every object has the seq that set it (job2 released at 34; H2 issued at 32 by line 17's bind)
        var data = PageData(await File.ReadAllTextAsync(html));
        var at34 = data["states"]!["34"]!;
        Assert.Equal(34, (long)at34["mms"]!.AsArray().Single(m => (string?)m!["id"] == "job2")!["set_at"]!["seq"]!);
        Assert.Equal(32, (long)at34["handles"]![0]!["set_at"]!["seq"]!);
        Assert.Equal(1, (long)at34["devices"]![0]!["set_at"]!["seq"]!);   // the device line

        // rendered at seq 34: the cells carry it
        var (exit, dom) = await Chromium("--virtual-time-budget=5000", "--dump-dom", $"file://{html}?seq=34");
        Assert.Equal(0, exit);
        Assert.Matches("<td class=\"blame\" data-set-at=\"34\" data-row=\"mm:job2\"[^>]*>job2</td>", dom);
        Assert.Matches("<td class=\"blame\" data-set-at=\"32\" data-row=\"handle:H2\"[^>]*>H2</td>", dom);
        Assert.Contains("<b id=\"seqlabel\">34</b>", dom);

        // a click on H2's cell (the page clicks the cell named by ?follow=) moves the slider to seq 32
        var (exit2, followed) = await Chromium("--virtual-time-budget=5000", "--dump-dom", $"file://{html}?seq=34&follow=handle:H2");
        Assert.Equal(0, exit2);
        Assert.Contains("<b id=\"seqlabel\">32</b>", followed);
        Assert.Contains("handle_issued", followed);                                               // the event just applied: H2's bind
        Assert.Matches("<td class=\"blame\" data-set-at=\"32\" data-row=\"handle:H2\"[^>]*>H2</td>", followed);
    }

    /// <summary>The JSON the page embeds.</summary>
    private static JsonObject PageData(string html) =>
        (JsonObject)JsonNode.Parse(Regex.Match(html, "<script id=\"sva-data\" type=\"application/json\">(.*?)</script>", RegexOptions.Singleline).Groups[1].Value)!;

    private async Task<JsonObject> Timeline(string session, params string[] extra)
    {
        var html = Path.Combine(Path.GetTempPath(), $"{session}-{Guid.NewGuid().ToString("N")[..6]}.html");
        var r = await f.RunAsync(["timeline", session, "-o", html, .. extra]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return PageData(await File.ReadAllTextAsync(html));
    }

    [Fact]
    public async Task timeline_from_to_cuts_a_window_with_the_state_before_it()
    {
        var session = await Recorded();
        var whole = await Timeline(session);
        Assert.Equal("detail", (string?)whole["mode"]);
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), whole["events"]!.AsArray().Select(e => (long)e!["seq"]!));
        var window = await Timeline(session, "--from", "20", "--to", "40");
        Assert.Equal(Enumerable.Range(20, 21).Select(i => (long)i), window["events"]!.AsArray().Select(e => (long)e!["seq"]!));
        Assert.NotNull(window["states"]!["19"]);                       // the slider starts at the state before the window
        Assert.Null(window["states"]!["41"]);
        var marks = window["lanes"]!.AsArray().SelectMany(l => l!["marks"]!.AsArray()).Select(m => (long)m!["seq"]!).ToList();
        Assert.NotEmpty(marks);
        Assert.All(marks, m => Assert.InRange(m, 20, 40));
        // every mark of the whole page inside the window is on the window page
        var inWindow = whole["lanes"]!.AsArray().SelectMany(l => l!["marks"]!.AsArray()).Select(m => (long)m!["seq"]!).Where(m => m is >= 20 and <= 40).Order();
        Assert.Equal(inWindow, marks.Order());
        var bad = await f.RunAsync("timeline", session, "-o", Path.Combine(Path.GetTempPath(), "x.html"), "--from", "30", "--to", "9999");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--to 9999: session", bad.Stderr);
    }

    [Fact]
    public async Task timeline_of_a_window_over_the_detail_limit_is_aggregated_and_counts_every_mark()
    {
        var session = await Recorded();
        var whole = await Timeline(session);
        var coarse = await Timeline(session, "--detail", "10");
        Assert.Equal("coarse", (string?)coarse["mode"]);
        Assert.Empty(coarse["events"]!.AsArray());
        var lanes = coarse["lanes"]!.AsArray();
        Assert.Equal(whole["lanes"]!.AsArray().Count, lanes.Count);
        for (var i = 0; i < lanes.Count; i++)
        {
            var detailLane = whole["lanes"]![i]!;
            var byKind = detailLane["marks"]!.AsArray().GroupBy(m => $"{m!["kind"]} {m["label"]}").ToDictionary(g => g.Key, g => g.Count());
            var counted = lanes[i]!["counts"]!.AsArray().GroupBy(c => $"{c![1]} {c[2]}").ToDictionary(g => g.Key, g => g.Sum(c => (int)c![3]!));
            Assert.Equal(byKind.OrderBy(kv => kv.Key), counted.OrderBy(kv => kv.Key)); // nothing lost by aggregating
            Assert.NotEmpty(lanes[i]!["spans"]!.AsArray());
        }
    }

    [Fact]
    public async Task timeline_of_a_big_session_stays_small_at_coarse_zoom()
    {
        var session = CliFixture.UniqueSession("bigtl");
        var gen = await f.RunAsync("generate", "--devices", "4", "--mms", "16", "--events", "30000", "--seed", "9", "--session", session);
        Assert.True(gen.ExitCode == 0, gen.ToString());
        var html = Path.Combine(Path.GetTempPath(), $"{session}.html");
        var r = await f.RunAsync("timeline", session, "-o", html, "--detail", "2000");
        Assert.True(r.ExitCode == 0, r.ToString());
        var size = new FileInfo(html).Length;
        var detail = Path.Combine(Path.GetTempPath(), $"{session}-detail.html");
        Assert.Equal(0, (await f.RunAsync("timeline", session, "-o", detail, "--detail", "100000")).ExitCode);
        var detailSize = new FileInfo(detail).Length;
        Assert.True(size * 3 < detailSize, $"aggregated page {size} bytes vs {detailSize} with every event");
        Assert.True(size < 4_000_000, $"aggregated page of 30,000 events is {size} bytes");
        var (exit, dom) = await Chromium("--virtual-time-budget=10000", "--dump-dom", $"file://{html}");
        Assert.Equal(0, exit);
        Assert.Contains("data-ready=\"yes\"", dom);
        Assert.Contains("aggregated:", dom);
        var ms = int.Parse(Regex.Match(dom, "data-render-ms=\"(\\d+)\"").Groups[1].Value);
        Assert.True(ms < 3000, $"the page took {ms} ms from navigation to drawn");
        Assert.DoesNotContain("<circle", dom); // aggregated marks are a few paths per lane, not an element each
        Assert.Contains("<path", dom);
    }

    [Fact]
    public async Task timeline_of_a_later_window_starts_at_the_nearest_snapshot_and_draws_the_same_page_as_from_event_1()
    {
        var session = CliFixture.UniqueSession("snaptl");
        var gen = await f.RunAsync("generate", "--devices", "4", "--mms", "8", "--events", "14000", "--seed", "5", "--session", session);
        Assert.True(gen.ExitCode == 0, gen.ToString());
        // a detail window and an aggregated one, both after the first snapshots (every 1024 events)
        foreach (var window in new[] { new[] { "--from", "12001", "--to", "13500" }, ["--from", "9000", "--detail", "1000"] })
        {
            var fast = Path.Combine(Path.GetTempPath(), $"{session}-{Guid.NewGuid().ToString("N")[..6]}.html");
            var slow = Path.Combine(Path.GetTempPath(), $"{session}-{Guid.NewGuid().ToString("N")[..6]}.html");
            var a = await f.RunAsync(["timeline", session, "-o", fast, "-v", .. window]);
            Assert.True(a.ExitCode == 0, a.ToString());
            Assert.Matches(@"from the snapshot at seq \d+", a.Stderr);
            var b = await f.RunAsync(["timeline", session, "-o", slow, "-v", "--no-snapshots", .. window]);
            Assert.True(b.ExitCode == 0, b.ToString());
            Assert.Contains("from event 1", b.Stderr);
            var fastPage = PageData(await File.ReadAllTextAsync(fast));
            Assert.NotEmpty(fastPage["lanes"]!.AsArray());
            Assert.Equal(PageData(await File.ReadAllTextAsync(slow)).ToJsonString(), fastPage.ToJsonString());
        }
    }

    [Fact]
    public async Task perfetto_export_has_a_process_per_device_a_thread_per_pasid_and_a_slice_per_binding()
    {
        var session = await Recorded();
        var file = Path.Combine(Path.GetTempPath(), $"{session}.json");
        var r = await f.RunAsync("export", session, "--perfetto", file);
        Assert.True(r.ExitCode == 0, r.ToString());
        var events = JsonNode.Parse(await File.ReadAllTextAsync(file))!["traceEvents"]!.AsArray();
        Assert.Single(events, e => (string?)e!["name"] == "process_name");
        Assert.Equal(new[] { "PASID 1", "PASID 2" }, events.Where(e => (string?)e!["name"] == "thread_name").Select(e => (string?)e!["args"]!["name"]));
        var slices = events.Where(e => (string?)e!["ph"] == "X").ToList();
        Assert.Equal(2, slices.Count);
        Assert.Equal(10, (long)slices[0]!["args"]!["bound_seq"]!);
        Assert.Equal("smmuv3-seed004.sva:13", (string?)slices[0]!["args"]!["unbound_by"]);
        Assert.Contains(events, e => (string?)e!["ph"] == "i" && (string?)e!["name"] == "INVALID");
        var bad = await f.RunAsync("export", session, "--perfetto", file, "--clock", "tsc");
        Assert.Equal(2, bad.ExitCode);
    }

    [Fact]
    public async Task the_timeline_page_and_the_perfetto_export_draw_the_same_lanes_from_one_set_of_lane_rules()
    {
        // A generated session (bindings, faults, invalidations, exits and drops on many lanes), drawn both ways in-process:
        // the page's model (every event: detail mode) and the export's timeline must hold the same lanes, bindings and marks.
        var session = CliFixture.UniqueSession("lanes");
        var g = await f.RunAsync("generate", "--devices", "4", "--mms", "6", "--events", "3000", "--seed", "11", "--session", session);
        Assert.True(g.ExitCode == 0, g.ToString());
        var info = (await f.Store.GetSessionAsync(session))!;
        var page = await Sva.Replay.Views.TimelineModel.BuildAsync(f.Store, info, 1, info.Version, 1_000_000, default);
        var export = await Sva.Projections.Views.SessionTimeline.BuildAsync(f.Store, info, default);

        static string Lane(string device, string pasid) => $"{device}/{pasid}";
        var fromPage = page["lanes"]!.AsArray().Select(l => (
            Lane: Lane((string)l!["device"]!, (string)l["pasid"]!),
            Bindings: l["intervals"]!.AsArray().Select(i => $"{i!["handle"]} {i["from"]}..{i["to"]}").ToList(),
            Marks: l["marks"]!.AsArray().Select(m => $"{m!["seq"]} {m["kind"]} {m["label"]} {m["detail"]}").ToList())).ToList();
        var fromExport = export.Lanes.Select(l => (
            Lane: Lane(l.Device, l.Pasid),
            Bindings: l.Intervals.Select(i => $"{i.Handle} {i.FromSeq}..{i.ToSeq}").ToList(),
            Marks: l.Marks.Select(m => $"{m.Seq} {m.Kind} {m.Label} {m.Detail}").ToList())).ToList();
        Assert.True(fromExport.Count > 4, $"{fromExport.Count} lanes");
        Assert.Contains(fromExport, l => l.Marks.Any(m => m.Contains(" exit ")));
        Assert.Contains(fromExport, l => l.Marks.Any(m => m.Contains(" response ")));
        Assert.Equal(fromExport.Select(l => l.Lane), fromPage.Select(l => l.Lane));
        foreach (var (e, p) in fromExport.Zip(fromPage))
        {
            Assert.Equal(e.Bindings, p.Bindings);
            Assert.Equal(e.Marks.Order(StringComparer.Ordinal), p.Marks.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task step_moves_forward_and_back_one_event_at_a_time()
    {
        var session = await Recorded();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { f.SvaDll, "step", session, "--at", "9" }) psi.ArgumentList.Add(a);
        psi.Environment["SVA_DB"] = f.ConnectionString;
        psi.Environment["SVA_REPO"] = f.Repo;
        using var p = Process.Start(psi)!;
        await p.StandardInput.WriteAsync("n\nn\np\ng 34\nbogus\nq\n");
        p.StandardInput.Close();
        var stdout = await p.StandardOutput.ReadToEndAsync();
        var stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        var steps = Regex.Matches(stdout, @"── step (\d+)/").Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.Equal(new[] { 9, 10, 11, 10, 34 }, steps);
        Assert.Contains("event just applied: seq 10 handle_issued", stdout);
        Assert.Contains("unknown command 'bogus'", stderr);
    }
}
