using System.Text.Json.Nodes;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>A crashed `sva run` resumes instead of appending twice; a completed script is not appended again by accident.</summary>
[Collection("cli")]
public sealed class RunResumeTests(CliFixture f)
{
    private async Task<List<(string Type, string Data, string? Source)>> EventsAsync(string session)
    {
        var list = new List<(string, string, string?)>();
        await foreach (var e in f.Store.ReadSessionAsync(session))
            list.Add((e.Type, e.DataJson, (string?)JsonNode.Parse(e.Metadata)?["source"]));
        return list;
    }

    /// <summary>The calls are pulled chunk by chunk as batches commit (a script of any length is never held): at any outcome,
    /// at most a few chunks were read ahead of it.</summary>
    [Fact]
    public async Task record_calls_reads_the_calls_chunk_by_chunk_as_batches_commit()
    {
        var session = CliFixture.UniqueSession("stream");
        var pulled = 0;
        IEnumerable<Sva.Commands.SourcedCall> Calls()
        {
            yield return new(new Sva.Domain.ProbeDevice("0000:00:03.0", 1 << 20, null, true, true, "iommu0"), "s.sva:1");
            for (var i = 0; i < 2000; i++)
            {
                pulled++;
                yield return new(new Sva.Domain.CreateMm($"m{i}", false), $"s.sva:{i + 2}");
            }
        }
        const int chunk = 16;
        var maxAhead = 0;
        var seen = 0;
        var handler = new Sva.Commands.RecordCallsHandler(f.Store);
        var r = await handler.Handle(new Sva.Commands.RecordCalls(session, "6.8", null, Calls(), chunk)
        {
            OnRecorded = c => { seen++; maxAhead = Math.Max(maxAhead, pulled - c.Index); return ValueTask.CompletedTask; },
        }, default);
        Assert.Equal(2001, seen);
        Assert.Empty(r.Calls);
        Assert.True(r.LastSeq >= 2001, $"last seq {r.LastSeq}");
        Assert.InRange(maxAhead, 1, 4 * chunk); // a list held whole would be 2,000 ahead at the first outcome
    }

    [Fact]
    public async Task kill_9_of_run_then_the_same_command_yields_exactly_the_events_of_an_uninterrupted_run()
    {
        var dir = Path.GetDirectoryName(f.WriteTemp("x", ""))!;
        var script = Path.Combine(dir, "big.sva");
        var g = await f.RunAsync("generate", "--devices", "4", "--mms", "6", "--events", "40000", "--seed", "11", "-o", script);
        Assert.True(g.ExitCode == 0, g.ToString());

        // Uninterrupted, for the expectation.
        var whole = CliFixture.UniqueSession("whole");
        var w = await f.RunAsync("run", script, "--session", whole, "--json", "--chunk", "16");
        Assert.True(w.ExitCode == 0, w.ToString()[..Math.Min(2000, w.ToString().Length)]);

        // Interrupted: kill -9 once a few batches have committed (their outcomes were streamed).
        var cut = CliFixture.UniqueSession("cut");
        using (var p = Sva.Tests.Support.SvaCli.Start(f.ConnectionString, f.Repo, null, "run", script, "--session", cut, "--json", "--chunk", "16"))
        {
            var lines = 0;
            while (lines < 300 && await p.StandardOutput.ReadLineAsync() is not null) lines++;
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            Assert.True(lines >= 300, "the run ended before it could be interrupted");
        }
        var partial = (await f.Store.GetSessionAsync(cut))?.Version ?? 0;
        var total = (await f.Store.GetSessionAsync(whole))!.Version;
        Assert.InRange(partial, 1, total - 1);

        var again = await f.RunAsync("run", script, "--session", cut, "--chunk", "16");
        Assert.True(again.ExitCode == 0, again.ToString()[..Math.Min(3000, again.ToString().Length)]);
        Assert.Contains("resumed", again.Stderr + again.Stdout);
        Assert.Equal(await EventsAsync(whole), await EventsAsync(cut));

        // The same script once more: refused (exit 2, nothing appended) unless --again.
        var third = await f.RunAsync("run", script, "--session", cut);
        Assert.Equal(2, third.ExitCode);
        Assert.Contains("--again", third.Stderr);
        Assert.Equal(total, (await f.Store.GetSessionAsync(cut))!.Version);
        var fourth = await f.RunAsync("run", script, "--session", cut, "--again", "--chunk", "256");
        Assert.True(fourth.ExitCode == 0, fourth.ToString()[..Math.Min(2000, fourth.ToString().Length)]);
        Assert.True((await f.Store.GetSessionAsync(cut))!.Version > total);
    }

    [Fact]
    public async Task an_empty_or_comment_only_script_records_no_session()
    {
        foreach (var text in new[] { "", "# nothing here\n\n   # still nothing\n" })
        {
            var session = CliFixture.UniqueSession("empty");
            var r = await f.RunAsync("run", f.WriteTemp("empty.sva", text), "--session", session);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Null(await f.Store.GetSessionAsync(session));
        }
    }
}
