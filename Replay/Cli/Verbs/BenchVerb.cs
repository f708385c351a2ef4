using System.CommandLine;
using System.Diagnostics;
using Sva.EventStore;

namespace Sva.Replay.Verbs;

/// <summary>
/// <c>sva bench</c>: runs the macro benchmark, which lives outside the shipped CLI in bench/Sva.Bench.Macro
/// (<c>dotnet run -c Release --project bench/Sva.Bench.Macro -- ARGS</c>), with the same database settings.
/// </summary>
public static class BenchVerb
{
    public static Command Build(CliCommon common)
    {
        var rest = new Argument<string[]>("args") { Description = "Options of the benchmark (--events N, --tt-events N, --repeats R, --smoke, --json; see 'sva bench -- --help')", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("bench", """
            Measure, in one run on one PostgreSQL cluster (medians over repeats, ratios printed): recording through the
            recorder, the straightforward Marten usage for the same calls, a raw binary COPY of the same rows (the
            ceiling), import, per-call latency, time travel vs folding from event 0, the daemon's rebuild, peak memory.
            The benchmark's code is in bench/Sva.Bench.Macro (not in the shipped CLI); this verb runs it.
            """) { rest };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var repo = LocalCluster.FindRepoRoot() ?? throw new UserInputException("sva bench runs bench/Sva.Bench.Macro from the repository: set SVA_REPO to it");
            var project = Path.Combine(repo, "bench", "Sva.Bench.Macro");
            if (!Directory.Exists(project)) throw new UserInputException($"{project}: the benchmark project is not there");
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false };
            foreach (var a in new[] { "run", "-c", "Release", "--project", project, "--" }) psi.ArgumentList.Add(a);
            foreach (var a in pr.GetValue(rest) ?? []) psi.ArgumentList.Add(a);
            foreach (var a in pr.UnmatchedTokens) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
            await p.WaitForExitAsync(ct);
            return p.ExitCode;
        }));
        return cmd;
    }
}
