using System.Reflection;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>Usage errors that the command line itself rejects, run in-process through sva's own entry point (a process
/// adds nothing there). SVA_DB points at a port where nothing listens while they run: an exit 2 with the message then
/// also shows that nothing tried the database (touching it would be exit 3), so nothing can have been recorded.
/// Not parallel with other tests: the console and the environment are the process's.</summary>
[Collection("in-process cli")]
public sealed class UsageErrorsInProcessTests
{
    private static readonly SemaphoreSlim One = new(1, 1);

    /// <summary>sva's Main, in this process: exit code, stdout, stderr.</summary>
    public static async Task<CliResult> SvaInProcessAsync(params string[] args)
    {
        await One.WaitAsync();
        var (stdout, stderr, db) = (Console.Out, Console.Error, Environment.GetEnvironmentVariable("SVA_DB"));
        var o = new StringWriter();
        var e = new StringWriter();
        try
        {
            Console.SetOut(o);
            Console.SetError(e);
            Environment.SetEnvironmentVariable("SVA_DB", "Host=127.0.0.1;Port=1;Username=nobody;Database=nothing;Timeout=2");
            var main = typeof(Sva.Replay.CliCommon).Assembly.EntryPoint ?? throw new InvalidOperationException("sva has no entry point");
            var result = main.Invoke(null, [args]);
            var code = result switch { Task<int> t => await t, int i => i, _ => throw new InvalidOperationException($"Main returned {result}") };
            return new CliResult(code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
            Environment.SetEnvironmentVariable("SVA_DB", db);
            One.Release();
        }
    }

    [Theory]
    [InlineData("state S --at 1e9", "--at: '1e9' is not a seq (a whole number 0..2^63-1)")]
    [InlineData("state S --at 0x10", "--at: '0x10' is not a seq")]
    [InlineData("state S --at 99999999999999999999", "--at: '99999999999999999999' is not a seq")]
    [InlineData("state S --at abc", "see 'sva state --help'")]
    [InlineData("history S --pasid 99999999999999", "--pasid: '99999999999999' is not a PASID (a whole number 0..2^20-1)")]
    [InlineData("history S --pasid 1048576", "is not a PASID")]
    [InlineData("state S --bogus", "unknown option '--bogus'")]
    [InlineData("frobnicate", "unknown verb 'frobnicate'")]
    [InlineData("state", "missing argument <session>")]
    [InlineData("log S --from 20 --to 3", "--from 20 is after --to 3")]
    [InlineData("log S --from -5", "--from: '-5' is not a seq")]
    [InlineData("run", "missing argument <file>")]
    [InlineData("state S --at 1\u001b[31m2", "'1\\x1b[31m2' is not a seq")]
    public async Task usage_errors_exit_2_in_plain_words_before_any_database_is_touched(string commandLine, string message)
    {
        var r = await SvaInProcessAsync(commandLine.Split(' '));
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains(message, r.Stderr);
        Assert.Empty(r.Stdout);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("System.", r.Stderr);
    }

    [Fact]
    public async Task help_exits_0_in_process_and_lists_the_verbs()
    {
        var r = await SvaInProcessAsync("--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var verb in new[] { "run", "import", "state", "log", "sessions", "history", "projections" })
            Assert.Contains(verb, r.Stdout);
    }
}

[CollectionDefinition("in-process cli", DisableParallelization = true)]
public sealed class InProcessCliCollection;
