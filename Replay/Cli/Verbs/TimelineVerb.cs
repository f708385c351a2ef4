using System.CommandLine;
using Sva.Replay.Views;

namespace Sva.Replay.Verbs;

public static class TimelineVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name" };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The HTML file to write (self-contained: no network, no other file)", Required = true };
        var cmd = new Command("timeline", "One self-contained HTML page: a lane per (device, PASID) with binding intervals, fault and invalidation marks, mm exit/drop; hover shows the event; a slider moves the time-travel point and shows the state tables (open FILE.html?seq=N to start at N)") { session, output };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var file = pr.GetValue(output)!;
            InputFiles.CheckWritable(file, "--output");
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var info = await host.SessionAsync(pr.GetValue(session)!, ct);
            var html = await TimelineHtml.RenderAsync(host.Store, info, ct);
            await InputFiles.WriteAllTextAsync(file, "--output", html, ct);
            Output.Info($"{file.FullName}: {html.Length / 1024} KiB");
            return 0;
        }));
        return cmd;
    }
}
