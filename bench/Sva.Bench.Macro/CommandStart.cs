using System.Diagnostics;
using Sva.EventStore;

namespace Sva.Bench.Macro;

/// <summary>
/// The rows a user feels at the prompt, measured by running the CLI as a user does (`./sva VERB`, a process each): the wall
/// time of a command from start to exit (median of several), and the time to build a timeline page of a late window of the
/// big time-travel session (from its nearest snapshot, and from event 1 for comparison).
/// </summary>
public static class CommandStart
{
    public sealed record Timing(string Command, double MedianSeconds, double[] Runs);

    /// <summary>Runs `./sva ARGS` with SVA_DB = <paramref name="cs"/>; the wall seconds and exit code.</summary>
    public static async Task<(double Seconds, int Exit, string Stderr)> SvaAsync(string cs, string[] args, CancellationToken ct)
    {
        var repo = Environment.GetEnvironmentVariable("SVA_REPO") is { Length: > 0 } r ? r
            : LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
        var psi = new ProcessStartInfo(Path.Combine(repo, "sva")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SVA_DB"] = cs;
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("./sva did not start");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        await stdout;
        return (sw.Elapsed.TotalSeconds, p.ExitCode, await stderr);
    }

    /// <summary>Each command once to warm up (the first `./sva` may build the CLI), then <paramref name="repeats"/> timed runs.</summary>
    public static async Task<List<Timing>> MeasureAsync(string cs, IReadOnlyList<string[]> commands, int repeats, CancellationToken ct)
    {
        var result = new List<Timing>();
        foreach (var args in commands)
        {
            var warm = await SvaAsync(cs, args, ct);
            if (warm.Exit != 0) throw new InvalidOperationException($"./sva {string.Join(' ', args)}: exit {warm.Exit}: {warm.Stderr}");
            var runs = new double[repeats];
            for (var i = 0; i < repeats; i++) runs[i] = (await SvaAsync(cs, args, ct)).Seconds;
            var sorted = runs.Order().ToArray();
            result.Add(new Timing(string.Join(' ', args), sorted[sorted.Length / 2], runs));
        }
        return result;
    }
}
