using Xunit;

namespace Sva.Cli.Tests;

[Collection("cli")]
public sealed class BadInputTests(CliFixture f)
{
    [Fact]
    public async Task a_bad_line_names_file_and_line_and_records_nothing()
    {
        var session = CliFixture.UniqueSession("bad");
        var path = f.WriteTemp("broken.sva", "device 0000:00:03.0 pasids=64\nmm m1\nbind h1 0000:00:03.0\n");
        var r = await f.RunAsync("run", path, "--session", session);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("broken.sva:3:", r.Stderr);
        Assert.Contains("bind [LABEL] BDF MM", r.Stderr);
        Assert.Null(await f.Store.GetSessionAsync(session));
    }

    [Theory]
    [InlineData("device zz:00.0 pasids=1\n", "not a device")]
    [InlineData("device 0000:00:03.0\n", "missing pasids=N")]
    [InlineData("fault 0000:00:03.0 pasid=1 addr=0xzz access=r\n", "addr='0xzz' is not a number")]
    [InlineData("fault 0000:00:03.0 pasid=1 addr=0x1000 access=q\n", "access='q'")]
    [InlineData("invalidate m1 0x2000-0x1000\n", "is empty")]
    [InlineData("frobnicate m1\n", "unknown call 'frobnicate'")]
    [InlineData("kernel 4.19\n", "supported: 5.11")]
    public async Task malformed_lines_are_rejected_with_what_was_expected(string text, string message)
    {
        var r = await f.RunAsync("run", f.WriteTemp("x.sva", "mm m1\n" + text));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("x.sva:2:", r.Stderr);
        Assert.Contains(message, r.Stderr);
    }

    [Fact]
    public async Task an_unsupported_kernel_lists_the_supported_ones()
    {
        var r = await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--kernel", "4.19");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("unsupported kernel version '4.19'", r.Stderr);
        Assert.Contains("6.8-rc1", r.Stderr);
    }

    [Fact]
    public async Task state_beyond_the_end_and_unknown_sessions_are_clear_errors()
    {
        var session = CliFixture.UniqueSession("end");
        Assert.Equal(0, (await f.RunAsync("run", f.Example("uacce-double-open.sva"), "--session", session)).ExitCode);
        var beyond = await f.RunAsync("state", session, "--at", "9999");
        Assert.Equal(2, beyond.ExitCode);
        Assert.Contains("has seqs 0..", beyond.Stderr);
        var none = await f.RunAsync("state", "no-such-session-xyz");
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("no session 'no-such-session-xyz'", none.Stderr);
    }

    [Fact]
    public async Task a_dead_database_is_exit_3_naming_where()
    {
        var r = await f.RunWithAsync("Host=127.0.0.1;Port=1;Username=postgres;Database=sva;Timeout=2", "sessions");
        Assert.Equal(3, r.ExitCode);
        Assert.Contains("127.0.0.1:1", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr); // no stack trace for an expected failure
    }

    [Fact]
    public async Task query_verbs_read_through_the_read_only_role_and_recording_verbs_do_not()
    {
        var session = CliFixture.UniqueSession("ro");
        var noReader = new Dictionary<string, string> { ["SVA_DB_READER"] = f.ConnectionString.Replace("Username=postgres", "Username=no_such_reader_role") };
        Assert.Contains("Username=no_such_reader_role", noReader["SVA_DB_READER"]);
        var run = await f.RunEnvAsync(f.ConnectionString, noReader, "run", f.Example("uacce-double-open.sva"), "--session", session);
        Assert.True(run.ExitCode == 0, run.ToString());                       // recording does not use the reader
        foreach (var query in new[] { new[] { "state", session }, ["log", session], ["check", session], ["sessions"], ["verify", session] })
        {
            var q = await f.RunEnvAsync(f.ConnectionString, noReader, query);
            Assert.True(q.ExitCode == 2, $"{string.Join(' ', query)}: {q}");
            Assert.Contains("read-only role", q.Stderr);
        }
        var ok = await f.RunAsync("state", session, "--json");                 // the default reader: sva_reader
        Assert.True(ok.ExitCode == 0, ok.ToString());
    }

    [Fact]
    public async Task help_lists_every_verb()
    {
        var r = await f.RunAsync("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var verb in new[] { "run", "import", "formats", "state", "log", "sessions", "kernels", "projections", "check", "compare",
                     "diff", "bisect", "history", "verify", "generate", "bench", "timeline", "export", "step" })
            Assert.Contains(verb, r.Stdout);
    }
}
