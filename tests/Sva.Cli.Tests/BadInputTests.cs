using Xunit;

namespace Sva.Cli.Tests;

[Collection("cli")]
public sealed class BadInputTests(CliFixture f)
{
    [Fact]
    public async Task one_session_name_check_says_the_same_in_the_cli_the_commands_and_the_store()
    {
        foreach (var name in new[] { new string('s', 201), "a\u0007b", "a\0b", "\ud800x" })
        {
            var problem = Sva.EventStore.SessionName.Problem(name);
            Assert.NotNull(problem);
            Assert.Equal($"session name {problem}", Assert.Single(new Sva.Commands.RecordCalls(name, "6.8", null, []).Validate()));
            Assert.EndsWith(problem, Sva.Replay.CliParsing.SessionNameProblem(name, "--session"));
            var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => f.Store.GetSessionAsync(name));
            Assert.StartsWith($"session name {problem}", e.Message);
        }
        Assert.Null(Sva.EventStore.SessionName.Problem(new string('s', 200)));
    }

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
                     "diff", "bisect", "history", "verify", "generate", "bench", "timeline", "export", "step", "why" })
            Assert.Contains(verb, r.Stdout);
    }
}

/// <summary>
/// A database of its own (created on the test server, dropped at the end), so that "nothing recorded" can be
/// checked exactly: <c>sva sessions --json</c> before and after each bad input is the same text.
/// </summary>
public sealed class OwnDatabase : IAsyncLifetime
{
    private string admin = "";
    public string Name { get; } = $"sva_badinput_{Guid.NewGuid().ToString("N")[..8]}";
    public string ConnectionString { get; private set; } = "";
    public string Repo { get; } = Sva.EventStore.LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    /// <summary>A recorded session the query verbs are pointed at.</summary>
    public string Session { get; } = SvaCli.UniqueSession("hardening");

    public async Task InitializeAsync()
    {
        admin = await Sva.EventStore.LocalCluster.ResolveConnectionStringAsync();
        await using (var conn = new Npgsql.NpgsqlConnection(admin))
        {
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand($"CREATE DATABASE {Name}", conn);
            await cmd.ExecuteNonQueryAsync();
        }
        ConnectionString = new Npgsql.NpgsqlConnectionStringBuilder(admin) { Database = Name }.ConnectionString;
        var run = await RunAsync("run", Path.Combine(Repo, "examples", "uacce-double-open.sva"), "--session", Session);
        if (run.ExitCode != 0) throw new InvalidOperationException(run.ToString());
    }

    public async Task DisposeAsync()
    {
        Npgsql.NpgsqlConnection.ClearAllPools();
        await using var conn = new Npgsql.NpgsqlConnection(admin);
        await conn.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", conn);
        await cmd.ExecuteNonQueryAsync();
    }

    public Task<CliResult> RunAsync(params string[] args) => SvaCli.RunAsync(ConnectionString, Repo, null, args);

    public Task<CliResult> RunEnvAsync(IReadOnlyDictionary<string, string> env, params string[] args) => SvaCli.RunAsync(ConnectionString, Repo, env, args);

    /// <summary>Runs sva as root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so file permissions apply to it.</summary>
    public Task<CliResult> RunWithoutFileCapabilitiesAsync(params string[] args) =>
        SvaCli.RunAsync(ConnectionString, Repo, null,
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"], args);

    /// <summary>Everything recorded, as the CLI lists it: sessions with their event counts and import rows.</summary>
    public async Task<string> SnapshotAsync()
    {
        var r = await RunAsync("sessions", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
/// <summary>Issue 10: each bad input is exit 2 with a plain message naming what is wrong, and records nothing.</summary>
[Collection("cli")]
public sealed class HardeningTests(OwnDatabase db) : IClassFixture<OwnDatabase>
{
    private static string Temp(string name, string text) => SvaCli.WriteTemp("sva-hardening", name, text);

    /// <summary>Runs the bad input; asserts exit 2, the message, no stack trace, and the database as it was.</summary>
    private async Task<CliResult> Rejected(string[] args, params string[] messages)
    {
        var before = await db.SnapshotAsync();
        var r = await db.RunAsync(args);
        Assert.True(r.ExitCode == 2, r.ToString());
        foreach (var m in messages) Assert.Contains(m, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.DoesNotContain("System.", r.Stderr);
        Assert.Equal(before, await db.SnapshotAsync());
        return r;
    }

    [Theory]
    [InlineData("frobnicate", "unknown verb 'frobnicate'")]
    [InlineData("diff {S} --from 9 --to 2", "--from 9 is after --to 2")]
    [InlineData("history {S} --from 20 --to 3", "is after --to 3")]
    [InlineData("history {S} --from -5", "--from: '-5' is not a seq")]
    [InlineData("state {S} --at 99999", "has seqs 0..")]
    // The errors the command line itself rejects run in-process (UsageErrorsInProcessTests); here the ones that need the
    // database, and one parse error through a real process.
    public async Task usage_errors_exit_2_in_plain_words(string commandLine, string message)
    {
        var args = commandLine.Split(' ').Select(a => a.Replace("{S}", db.Session)).ToArray();
        await Rejected(args, message);
    }

    [Fact]
    public async Task a_parse_error_exits_2_where_it_used_to_exit_1_and_help_still_exits_0()
    {
        var help = await db.RunAsync("state", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--at", help.Stdout);
        var bad = await Rejected(["state", db.Session, "--at", "abc"], "see 'sva state --help'");
        Assert.Empty(bad.Stdout); // no help text dumped on stdout for an error
    }

    [Fact]
    public async Task control_bytes_in_an_echoed_argument_are_escaped()
    {
        var r = await Rejected(["state", db.Session, "--at", "1\u001b[31m2"], "'1\\x1b[31m2' is not a seq");
        Assert.DoesNotContain('\u001b', r.Stderr);
        var s = await Rejected(["state", "no\u0007such"], "session name 'no\\x07such' holds the control character U+0007");
        Assert.DoesNotContain('\u0007', s.Stderr);
    }

    [Fact]
    public async Task names_longer_than_the_limit_are_rejected_at_parse_time_naming_the_limit()
    {
        var longName = new string('m', 3000);
        var script = Temp("long.sva", $"device 0000:00:03.0 pasids=16\nmm {longName}\n");
        await Rejected(["run", script], "long.sva:2:", "is 3000 characters long; names are at most 200 characters");
        foreach (var line in new[] { $"domain {new string('d', 201)} type=paging", $"bind {new string('h', 201)} 0000:00:03.0 m1",
                     $"device 0000:00:03.0 pasids=4 iommu={new string('i', 201)}", $"device {new string('p', 199)}.0 pasids=4" })
            await Rejected(["run", Temp("x.sva", "mm m1\n" + line + "\n")], "x.sva:2:", "is 201 characters long; names are at most 200 characters");
        // exactly the limit is fine
        var ok = await db.RunAsync("run", Temp("ok.sva", $"mm {new string('m', 200)}\n"), "--session", SvaCli.UniqueSession("limit"));
        Assert.True(ok.ExitCode == 0, ok.ToString());
        var session = new string('s', 201);
        await Rejected(["run", db.Repo + "/examples/uacce-double-open.sva", "--session", session], "--session: session name", "is 201 characters long; names are at most 200 characters");
        await Rejected(["state", session], "<session>: session name", "at most 200 characters");
        await Rejected(["compare", session, "--kernel", "6.8"], "session name", "at most 200 characters"); // a script or a session
    }

    [Theory]
    [InlineData("device 0000:00:03.0 pasids=-5", "pasids=-5 is out of range 0..2^20")]
    [InlineData("device 0000:00:03.0 pasids=99999999999999999999", "pasids=99999999999999999999 is out of range 0..2^20")]
    [InlineData("device 0000:00:03.0 pasids=1048577", "is out of range 0..2^20")]
    [InlineData("fault 0000:00:03.0 pasid=1048576 addr=0x1000 access=r", "pasid=1048576 is out of range 0..2^20-1")]
    [InlineData("fault 0000:00:03.0 pasid=1 addr=0x10000000000000000 access=r", "addr=0x10000000000000000 is out of range 0..2^64-1")]
    [InlineData("fault 0000:00:03.0 pasid=1 addr=1e9 access=r", "addr='1e9' is not a number")]
    public async Task numbers_out_of_range_say_the_range(string line, string message) =>
        await Rejected(["run", Temp("n.sva", "mm m1\n" + line + "\n")], "n.sva:2:", message);

    [Fact]
    public async Task a_nul_or_escape_byte_in_a_script_is_a_file_line_error_echoed_escaped()
    {
        var r = await Rejected(["run", Temp("nul.sva", "mm m1\nmm m\0x\n")], "nul.sva:2:", "a NUL byte", "'mm m\\0x'");
        Assert.DoesNotContain('\0', r.Stderr);
        var e = await Rejected(["run", Temp("esc.sva", "device 0000:00:03.0 pasids=4 iommu=\u001b[2J\n")], "esc.sva:1:", "'\\x1b[2J' is not a valid name");
        Assert.DoesNotContain('\u001b', e.Stderr);
    }

    private const string FtraceHead = "  smmu_bind_alloc: dev=0000:00:03.0 pasid=1\n";
    private const string FtraceNul = "  dev_fault: IOMMU:0000:00:03.0\0 type=2 reason=0 addr=0x0000ffff860e6000 pasid=1 group=74 flags=3 prot=2\n";

    [Theory]
    [InlineData("nul.trace", "ftrace", FtraceHead + FtraceNul, "nul.trace:2:")]
    [InlineData("nul.jsonl", "jsonl", "{\"op\":\"device\",\"device\":\"00:03.0\",\"pasids\":16}\n{\"op\":\"bind\",\"device\":\"0000:00:03.0\",\"mm\":\"m\\u0000x\"}\n", "nul.jsonl:2:")]
    [InlineData("sur.jsonl", "jsonl", "{\"op\":\"device\",\"device\":\"00:03.0\",\"pasids\":16}\n{\"op\":\"bind\",\"device\":\"0000:00:03.0\",\"mm\":\"m\\ud800\"}\n", "sur.jsonl:2:")]
    public async Task a_nul_in_a_capture_field_never_reaches_the_database(string name, string format, string text, string where)
    {
        var path = Temp(name, text);
        // strict: the import fails naming file:line, nothing recorded
        var strict = await Rejected(["import", path, "--format", format, "--strict"], where);
        Assert.DoesNotContain('\0', strict.Stderr);
        // lenient: the line is skipped with that reason; the rest is imported
        var session = SvaCli.UniqueSession("nul");
        var r = await db.RunAsync("import", path, "--format", format, "--session", session, "--show-skipped");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"skipped {where} ", r.Stdout);
        Assert.DoesNotContain('\0', r.Stdout);
        var log = await db.RunAsync("log", session, "--json");
        Assert.True(log.ExitCode == 0, log.ToString());
        Assert.Contains($"\"{where.Replace(":2:", ":1")}\"", log.Stdout);   // line 1 was imported
        Assert.DoesNotContain($"\"{where.TrimEnd(':')}\"", log.Stdout);       // line 2 was not
    }

    [Fact]
    public async Task a_name_over_the_limit_in_a_capture_is_skipped_or_in_strict_mode_rejected()
    {
        var text = "{\"op\":\"device\",\"device\":\"00:03.0\",\"pasids\":16}\n{\"op\":\"bind\",\"device\":\"0000:00:03.0\",\"mm\":\"" + new string('m', 3000) + "\"}\n";
        var path = Temp("long.jsonl", text);
        await Rejected(["import", path, "--strict"], "long.jsonl:2:", "names of at most 200 characters");
        var session = SvaCli.UniqueSession("longcap");
        var r = await db.RunAsync("import", path, "--session", session, "--show-skipped");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("skipped long.jsonl:2: too long: a name of more than 200 characters", r.Stdout);
    }

    [Fact]
    public async Task a_directory_or_a_missing_directory_as_input_says_so()
    {
        var dir = Path.GetDirectoryName(Temp("x.sva", ""))!;
        await Rejected(["run", dir], $"{dir}: is a directory, not a file");
        await Rejected(["import", dir], $"{dir}: is a directory, not a file");
        await Rejected(["compare", dir + "/", "--kernel", "6.8"], "is a directory");
        await Rejected(["run", Path.Combine(dir, "nope", "x.sva")], "no such file (directory", "does not exist)");
        await Rejected(["import", Path.Combine(dir, "missing.trace")], "missing.trace: no such file");
    }

    [Fact]
    public async Task an_unreadable_input_says_permission_denied()
    {
        var path = Temp("secret.sva", "mm m1\n");
        File.SetUnixFileMode(path, UnixFileMode.None);
        foreach (var verb in new[] { "run", "import" })
        {
            var before = await db.SnapshotAsync();
            var r = await db.RunWithoutFileCapabilitiesAsync(verb, path);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains($"{path}: permission denied", r.Stderr);
            Assert.Equal(before, await db.SnapshotAsync());
        }
    }

    [Theory]
    [InlineData("timeline", "-o", "--output")]
    [InlineData("export", "--perfetto", "--perfetto")]
    public async Task an_output_path_that_cannot_be_written_is_named(string verb, string option, string named)
    {
        var dir = Path.GetDirectoryName(Temp("o.txt", ""))!;
        await Rejected([verb, db.Session, option, dir], $"{named} {dir}: is a directory");
        var missing = Path.Combine(dir, "no-such-dir", "out.html");
        await Rejected([verb, db.Session, option, missing], $"directory {Path.Combine(dir, "no-such-dir")} does not exist");
        var ro = Path.Combine(dir, "read-only");
        Directory.CreateDirectory(ro);
        File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var target = Path.Combine(ro, "out.html");
        var r = await db.RunWithoutFileCapabilitiesAsync(verb, db.Session, option, target);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Contains($"{named} {target}: permission denied", r.Stderr);
        Assert.False(File.Exists(target));
        // and a writable path works
        var ok = await db.RunAsync(verb, db.Session, option, Path.Combine(dir, "ok.out"));
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.True(new FileInfo(Path.Combine(dir, "ok.out")).Length > 0);
    }

    [Theory]
    [InlineData("garbage=;;", "unknown keyword 'garbage'")]
    [InlineData("Host=127.0.0.1;Port=notaport", "Port")]
    public async Task a_malformed_SVA_DB_names_the_variable(string value, string message)
    {
        var before = await db.SnapshotAsync();
        foreach (var args in new[] { new[] { "sessions" }, ["run", db.Repo + "/examples/uacce-double-open.sva"] })
        {
            var r = await db.RunEnvAsync(new Dictionary<string, string> { ["SVA_DB"] = value }, args);
            Assert.True(r.ExitCode == 2, r.ToString());
            Assert.Contains("SVA_DB is not an Npgsql connection string", r.Stderr);
            Assert.Contains(message, r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr);
        }
        Assert.Equal(before, await db.SnapshotAsync());
    }
}
