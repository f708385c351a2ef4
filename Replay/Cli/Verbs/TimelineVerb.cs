using System.CommandLine;
using Sva.Replay.Views;

namespace Sva.Replay.Verbs;

public static class TimelineVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name" };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The HTML file to write (self-contained: no network, no other file)", Required = true };
        var from = new Option<long>("--from") { Description = "First seq of the window shown (default 1)", DefaultValueFactory = _ => 1 };
        var to = new Option<long?>("--to") { Description = "Last seq of the window shown (default: the session's last event)" };
        var detail = new Option<int>("--detail") { Description = "A window of at most this many events shows every event; a longer one is aggregated (marks counted per column, bindings merged into spans) so that the page stays small", DefaultValueFactory = _ => Views.TimelineModel.DefaultDetailLimit };
        var noSnap = new Option<bool>("--no-snapshots") { Description = "Read from event 1 instead of starting at the nearest snapshot before --from (same page, slower)" };
        var cmd = new Command("timeline", "One self-contained HTML page: a lane per (device, PASID) with binding intervals, fault and invalidation marks, mm exit/drop; hover shows the event; a slider moves the time-travel point and shows the state tables; a click on a table cell moves the slider to the seq that set its row (open FILE.html?seq=N to start at N; &follow=ROW, e.g. handle:H2, clicks that row's cell). A window of more than --detail events is aggregated: cut one with --from/--to to see each event. A window that starts later is built from the nearest snapshot before it, not from event 1") { session, output, from, to, detail, noSnap };
        CliParsing.FromNotAfterTo(cmd, from, to);
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var file = pr.GetValue(output)!;
            InputFiles.CheckWritable(file, "--output");
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var info = await host.SessionAsync(pr.GetValue(session)!, ct);
            var a = Math.Max(1, pr.GetValue(from));
            var b = pr.GetValue(to) ?? info.Version;
            if (b > info.Version) throw new UserInputException($"--to {b}: session '{info.Id}' has seqs 1..{info.Version}");
            if (a > b && info.Version > 0) throw new UserInputException($"--from {a}: session '{info.Id}' has seqs 1..{info.Version}");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            long start = 0;
            var html = await TimelineHtml.RenderAsync(host.Store, info, a, b, pr.GetValue(detail), ct, !pr.GetValue(noSnap), s => start = s);
            if (pr.GetValue(common.Verbose))
                Output.Info($"built in {sw.Elapsed.TotalSeconds:F2} s, {(start > 0 ? $"from the snapshot at seq {start}" : "from event 1")}");
            await InputFiles.WriteAllTextAsync(file, "--output", html, ct);
            Output.Info($"{file.FullName}: {html.Length / 1024} KiB");
            return 0;
        }));
        return cmd;
    }
}
