using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Sva.Commands;
using Sva.EventStore;
using Sva.Tests.Support;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>
/// Several `sva run` of the same script into the same session at once: a run resumes only what a dead writer left, a
/// second live writer is refused (exit 2, naming the other) or with --again records a full copy of its own; no command
/// exits 0 having printed a call it did not record, or printing fewer calls than its script holds without saying why.
/// </summary>
[Collection("cli")]
public sealed class ConcurrentRunTests(CliFixture f)
{
    private async Task<(string Path, int Calls)> ScriptAsync(int events, int seed)
    {
        var dir = Path.GetDirectoryName(f.WriteTemp("x", ""))!;
        var script = Path.Combine(dir, "same.sva");
        var g = await f.RunAsync("generate", "--devices", "3", "--mms", "4", "--events", events.ToString(), "--seed", seed.ToString(), "-o", script);
        Assert.True(g.ExitCode == 0, g.ToString());
        var calls = File.ReadLines(script).Count(l => l.Trim() is { Length: > 0 } t && !t.StartsWith('#') && !t.StartsWith("kernel", StringComparison.Ordinal));
        return (script, calls);
    }

    /// <summary>Starts every run at once (no sleep: all are started before any is awaited) and collects what each did.</summary>
    private async Task<CliResult[]> AllAtOnceAsync(params string[][] runs)
    {
        var procs = runs.Select(a => SvaCli.Start(f.ConnectionString, f.Repo, null, a)).ToList();
        try
        {
            var outs = procs.Select(p => (Out: p.StandardOutput.ReadToEndAsync(), Err: p.StandardError.ReadToEndAsync())).ToList();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await Task.WhenAll(procs.Select(p => p.WaitForExitAsync(cts.Token)));
            return await Task.WhenAll(procs.Select(async (p, i) => new CliResult(p.ExitCode, await outs[i].Out, await outs[i].Err)));
        }
        finally
        {
            foreach (var p in procs) { if (!p.HasExited) p.Kill(entireProcessTree: true); p.Dispose(); }
        }
    }

    /// <summary>The seqs a run printed (each call's first..last), every one of them.</summary>
    private static IEnumerable<long> PrintedSeqs(CliResult r) =>
        r.JsonLines().SelectMany(j => LongRange((long)j["first_seq"]!, (long)j["seq"]!));

    private static IEnumerable<long> LongRange(long from, long to) { for (var s = from; s <= to; s++) yield return s; }

    [Fact]
    public async Task four_runs_of_the_same_script_at_once_record_it_once_and_the_others_are_refused_naming_the_writer()
    {
        var (script, calls) = await ScriptAsync(3000, 16);
        var session = CliFixture.UniqueSession("same");
        var args = new[] { "run", script, "--session", session, "--json", "--chunk", "16" };
        var results = await AllAtOnceAsync(args, args, args, args);
        var all = string.Join("\n=====\n", results.Select(r => r.ToString()[..Math.Min(1500, r.ToString().Length)]));

        Assert.All(results, r => Assert.True(r.ExitCode is 0 or 2, all));
        var ok = results.Where(r => r.ExitCode == 0).ToList();
        var refused = results.Where(r => r.ExitCode == 2).ToList();
        Assert.True(ok.Count == 1, $"exactly one run records the script, the others are refused:\n{all}");
        // The recording run printed every call of the script (none resumed: no writer died).
        Assert.Equal(calls, ok[0].JsonLines().Count);
        Assert.DoesNotContain("resumed", ok[0].Stderr);
        // A refused run printed nothing and said why: another live writer (named), or the script was recorded completely.
        foreach (var r in refused)
        {
            Assert.Equal("", r.Stdout.Trim());
            Assert.True(r.Stderr.Contains("being recorded into session", StringComparison.Ordinal) && r.Stderr.Contains("live writer: sva ", StringComparison.Ordinal)
                        || r.Stderr.Contains("completely before", StringComparison.Ordinal), r.ToString());
        }
        // The log holds exactly what was printed: seqs 1..head, each printed once.
        var head = (await f.Store.GetSessionAsync(session))!.Version;
        Assert.Equal(LongRange(1, head), PrintedSeqs(ok[0]).Order());
        Assert.True((await f.Store.VerifyAsync(session)).Ok);
    }

    [Fact]
    public async Task runs_with_again_at_once_each_record_a_full_copy_and_every_printed_call_is_in_the_log_once()
    {
        var (script, calls) = await ScriptAsync(1500, 17);
        var session = CliFixture.UniqueSession("again");
        var args = new[] { "run", script, "--session", session, "--json", "--chunk", "16", "--again" };
        var results = await AllAtOnceAsync(args, args, args);
        var all = string.Join("\n=====\n", results.Select(r => r.ToString()[..Math.Min(1500, r.ToString().Length)]));
        Assert.All(results, r => Assert.True(r.ExitCode == 0, all));
        Assert.All(results, r => Assert.Equal(calls, r.JsonLines().Count));
        var head = (await f.Store.GetSessionAsync(session))!.Version;
        Assert.Equal(LongRange(1, head), results.SelectMany(PrintedSeqs).Order());
        Assert.True((await f.Store.VerifyAsync(session)).Ok);
    }

    [Fact]
    public async Task a_live_writer_of_the_script_refuses_a_second_run_and_again_records_a_copy_beside_it()
    {
        var script = f.WriteTemp("live.sva", "device 0000:00:03.0 pasids=8\nmm a\nbind 0000:00:03.0 a\nmm b\nbind 0000:00:03.0 b\n");
        var session = CliFixture.UniqueSession("live");
        var hash = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(script)));
        // This test process is the live writer: it holds the script's lease as a recording sva does.
        await using (var lease = await f.Store.TryLeaseAsync(session, ScriptProgress.IdOf(session, hash)))
        {
            Assert.True(lease.Held);
            var second = await f.RunAsync("run", script, "--session", session);
            Assert.Equal(2, second.ExitCode);
            Assert.Contains("being recorded into session", second.Stderr);
            Assert.Contains(WriterLease.ThisWriter, second.Stderr);      // names the other writer: sva pid@host
            Assert.Contains("--again", second.Stderr);
            Assert.Null(await f.Store.GetSessionAsync(session));          // nothing recorded

            var copy = await f.RunAsync("run", script, "--session", session, "--again", "--json");
            Assert.True(copy.ExitCode == 0, copy.ToString());
            Assert.Equal(5, copy.JsonLines().Count);
            Assert.Contains("full copy", copy.Stderr);
            Assert.Equal((long)copy.JsonLines()[^1]["seq"]!, (await f.Store.GetSessionAsync(session))!.Version);
        }
        // The writer is gone (its lease released): the script's own progress record was never written, so a run records it.
        var after = await f.RunAsync("run", script, "--session", session, "--json");
        Assert.True(after.ExitCode == 0, after.ToString());
        Assert.Equal(5, after.JsonLines().Count);
    }
}
