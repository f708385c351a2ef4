using System.Diagnostics;
using System.Text.Json.Nodes;
using Xunit;

namespace Sva.Shard.Tests;

[Collection("topology")]
public sealed class ShardingTests(TopologyFixture t)
{
    private async Task<string> Generate(string session, int events = 200, IReadOnlyDictionary<string, string>? env = null)
    {
        var r = await t.Sva(env, "generate", "--devices", "2", "--mms", "2", "--events", events.ToString(), "--seed", "3", "--session", session);
        Assert.True(r.ExitCode == 0, r.ToString());
        return session;
    }

    private static async Task<bool> HasSession(string cs, string session) =>
        (long)(await TopologyFixture.ScalarAsync(cs, $"SELECT count(*) FROM mt_doc_sessiondoc WHERE id = '{session}'"))! == 1;

    [Fact]
    public async Task Sessions_land_on_both_shards_and_every_verb_finds_them()
    {
        var on1 = await Generate(t.SessionOn(0, "s1"));
        var on2 = await Generate(t.SessionOn(1, "s2"));
        // Stored where placed, and only there.
        Assert.True(await HasSession(t.Shard1, on1));
        Assert.False(await HasSession(t.Shard2, on1));
        Assert.True(await HasSession(t.Shard2, on2));
        Assert.False(await HasSession(t.Shard1, on2));

        foreach (var s in new[] { on1, on2 })
        {
            var state = await t.Sva("state", s, "--json");
            Assert.True(state.ExitCode == 0, state.ToString());
            Assert.True(state.Json()["seq"]!.GetValue<long>() >= 200, state.ToString());
            var log = await t.Sva("log", s);
            Assert.True(log.ExitCode == 0, log.ToString());
            Assert.Contains($"session {s}", log.Stdout + log.Stderr);
            Assert.Contains("seq", log.Stdout);
            var history = await t.Sva("history", s, "--json");
            Assert.True(history.ExitCode is 0 or 1 && history.Stdout.Length > 0, history.ToString());
            var verify = await t.Sva("verify", s, "--json");
            Assert.True(verify.ExitCode == 0, verify.ToString());
            Assert.True(verify.JsonLines().Single()["ok"]!.GetValue<bool>());
            // More events into the same session go where it lives.
            var again = await t.Sva("generate", "--devices", "2", "--mms", "2", "--events", "50", "--seed", "4", "--session", s);
            Assert.NotEqual(0, again.ExitCode); // a generated session is not appended to twice: it names the existing one
            Assert.Contains(s, again.Stderr + again.Stdout);
        }

        // Without SVA_SHARDS, shard1 alone does not know the session on shard2: the routing above is what found it.
        var alone = await SvaCli.RunAsync(t.Shard1, t.Repo, null, "state", on2);
        Assert.Equal(2, alone.ExitCode);
        Assert.Contains("no session", alone.Stderr);
    }

    [Fact]
    public async Task Run_and_import_record_into_a_session_wherever_it_lives_and_find_it_again()
    {
        var script = Path.Combine(t.Repo, "examples", "two-devices-one-mm.sva");
        var ran = t.SessionOn(1, "run");
        var r1 = await t.Sva("run", script, "--session", ran);
        Assert.True(r1.ExitCode == 0, r1.ToString());
        Assert.True(await HasSession(t.Shard2, ran));
        Assert.False(await HasSession(t.Shard1, ran));
        var seq1 = (await t.Sva("state", ran, "--json")).Json()["seq"]!.GetValue<long>();
        // Appending once more finds the session on shard2 (a second session on shard1 would be an error, not a guess).
        var r2 = await t.Sva("run", script, "--session", ran, "--again");
        Assert.True(r2.ExitCode == 0, r2.ToString());
        var seq2 = (await t.Sva("state", ran, "--json")).Json()["seq"]!.GetValue<long>();
        Assert.True(seq2 > seq1, $"{seq1} -> {seq2}");
        Assert.False(await HasSession(t.Shard1, ran));
        var events2 = (long)(await TopologyFixture.ScalarAsync(t.Shard2, $"SELECT count(*) FROM mt_events WHERE stream_id = '{ran}'"))!;
        Assert.Equal(seq2, events2);

        var capture = Path.Combine(t.Repo, "tests", "data", "captures", "dmesg-smmuv3-1.txt");
        var imported = t.SessionOn(1, "imp");
        var i1 = await t.Sva("import", capture, "--session", imported);
        Assert.True(i1.ExitCode is 0 or 1, i1.ToString()); // 1: the capture has findings
        Assert.True(await HasSession(t.Shard2, imported));
        var before = (long)(await TopologyFixture.ScalarAsync(t.Shard2, $"SELECT count(*) FROM mt_events WHERE stream_id = '{imported}'"))!;
        Assert.True(before > 0);
        // Importing the same capture again finds its recorded progress on shard2: nothing is appended twice.
        var i2 = await t.Sva("import", capture, "--session", imported);
        Assert.True(i2.ExitCode is 0 or 1, i2.ToString());
        Assert.Equal(before, (long)(await TopologyFixture.ScalarAsync(t.Shard2, $"SELECT count(*) FROM mt_events WHERE stream_id = '{imported}'"))!);
        Assert.False(await HasSession(t.Shard1, imported));
    }

    [Fact]
    public async Task Fan_out_verbs_list_every_session_with_its_shard()
    {
        var a = await Generate(t.SessionOn(0, "fa"));
        var b = await Generate(t.SessionOn(1, "fb"));
        var list = await t.Sva("sessions", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var rows = list.JsonLines().ToDictionary(o => o["session"]!.GetValue<string>(), o => o["shard"]!.GetValue<string>());
        Assert.Equal("shard1", rows[a]);
        Assert.Equal("shard2", rows[b]);
        Assert.Contains("shard1", rows.Values);
        Assert.Contains("shard2", rows.Values);
        // Exactly the sessions the two databases hold.
        var total = (long)(await TopologyFixture.ScalarAsync(t.Shard1, "SELECT count(*) FROM mt_doc_sessiondoc"))!
                    + (long)(await TopologyFixture.ScalarAsync(t.Shard2, "SELECT count(*) FROM mt_doc_sessiondoc"))!;
        Assert.Equal(total, rows.Count);

        var verify = await t.Sva("verify", "--json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        var v = verify.JsonLines().ToDictionary(o => o["session"]!.GetValue<string>());
        Assert.Equal(rows.Count, v.Count);
        Assert.Equal("shard1", v[a]["shard"]!.GetValue<string>());
        Assert.Equal("shard2", v[b]["shard"]!.GetValue<string>());
        Assert.All(v.Values, o => Assert.True(o["ok"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task A_read_on_the_replica_right_after_a_write_sees_it_and_a_lagging_replica_is_never_read_silently()
    {
        var env = new Dictionary<string, string> { ["SVA_SHARD_READERS"] = t.Replica };
        var port = t.BasePort + 2;

        var s = await Generate(t.SessionOn(0, "rr"));
        var r = await t.Sva(env, "state", s, "--json", "-v");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"reading the replica at 127.0.0.1:{port}", r.Stderr);
        Assert.True(r.Json()["seq"]!.GetValue<long>() >= 200, r.ToString());

        // Replay paused: the replica cannot have the next write; the read must not answer from it.
        await TopologyFixture.ScalarAsync(t.Replica, "SELECT pg_wal_replay_pause()");
        try
        {
            var late = await Generate(t.SessionOn(0, "rl"));
            Assert.False(await HasSession(t.Replica, late)); // stale replica, for real
            var fallback = await t.Sva(new Dictionary<string, string>(env) { ["SVA_REPLICA_WAIT_MS"] = "500" }, "state", late, "--json");
            Assert.True(fallback.ExitCode == 0, fallback.ToString());
            Assert.Contains($"reading the primary 127.0.0.1:{t.BasePort} instead", fallback.Stderr);
            Assert.True(fallback.Json()["seq"]!.GetValue<long>() >= 200, fallback.ToString());
        }
        finally
        {
            await TopologyFixture.ScalarAsync(t.Replica, "SELECT pg_wal_replay_resume()");
        }
    }

    [Fact]
    public async Task Stopping_one_shard_fails_only_its_sessions_with_exit_3_naming_it()
    {
        var on1 = await Generate(t.SessionOn(0, "k1"));
        var on2 = await Generate(t.SessionOn(1, "k2"));
        await t.ScriptAtAsync(t.BasePort + 1, t.Data + "-shard2", "pg-down.sh");
        try
        {
            var dead = await t.Sva("state", on2, "--json");
            Assert.True(dead.ExitCode == 3, dead.ToString());
            Assert.Contains($"shard2 (127.0.0.1:{t.BasePort + 1})", dead.Stderr);
            var deadLog = await t.Sva("log", on2);
            Assert.Equal(3, deadLog.ExitCode);
            Assert.Contains("shard2", deadLog.Stderr);

            var alive = await t.Sva("state", on1, "--json");
            Assert.True(alive.ExitCode == 0, alive.ToString());
            var aliveVerify = await t.Sva("verify", on1);
            Assert.True(aliveVerify.ExitCode == 0, aliveVerify.ToString());

            // A list over all shards cannot be complete: it says so (exit 3, naming the shard) instead of answering partly.
            var list = await t.Sva("sessions");
            Assert.Equal(3, list.ExitCode);
            Assert.Contains("shard2", list.Stderr);
        }
        finally
        {
            await t.ScriptAsync("pg-up.sh", "--shards", "2", "--replica");
        }
        var back = await t.Sva("state", on2, "--json");
        Assert.True(back.ExitCode == 0, back.ToString());
    }

    [Fact]
    public async Task Two_daemons_share_the_work_the_leader_is_killed_and_the_other_takes_over_from_the_checkpoint()
    {
        // One database (shard2 as SVA_DB, no SVA_SHARDS): two daemon processes on it.
        var db = t.Shard2;
        Task<CliResult> Run(params string[] args) => SvaCli.RunAsync(db, t.Repo, null, args);
        var first = SvaCli.UniqueSession("hc");
        Assert.Equal(0, (await Run("generate", "--devices", "2", "--mms", "3", "--events", "2000", "--seed", "21", "--session", first)).ExitCode);

        var daemons = new[] { SvaCli.Start(db, t.Repo, null, "projections", "daemon"), SvaCli.Start(db, t.Repo, null, "projections", "daemon") };
        try
        {
            var leader = await LeaderAsync(db, daemons.Select(d => d.Id).ToArray(), exclude: null);
            await CaughtUpAsync(Run);
            Process.GetProcessById(leader).Kill(); // SIGKILL: no clean shutdown, its lock goes with its connection

            var second = SvaCli.UniqueSession("hc");
            Assert.Equal(0, (await Run("generate", "--devices", "2", "--mms", "3", "--events", "3000", "--seed", "22", "--session", second)).ExitCode);
            var next = await LeaderAsync(db, daemons.Select(d => d.Id).ToArray(), exclude: leader);
            Assert.NotEqual(leader, next);
            await CaughtUpAsync(Run);
            Assert.True((long)(await TopologyFixture.ScalarAsync(db, $"SELECT count(*) FROM mt_doc_auditbinding WHERE data->>'session' = '{second}'"))! > 0,
                "the new leader projected the events written after the fail-over");
        }
        finally
        {
            foreach (var d in daemons) { try { if (!d.HasExited) d.Kill(); } catch (InvalidOperationException) { } d.Dispose(); }
        }

        const string dump = "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(id || ':' || data::text, ',' ORDER BY id), '')) FROM mt_doc_auditbinding";
        var beforeRebuild = (string)(await TopologyFixture.ScalarAsync(db, dump))!;
        Assert.False(beforeRebuild.StartsWith("0 "), beforeRebuild);
        var rebuild = await Run("projections", "rebuild", "audit_bindings");
        Assert.True(rebuild.ExitCode == 0, rebuild.ToString());
        Assert.Equal((string)(await TopologyFixture.ScalarAsync(db, dump))!, beforeRebuild);
    }

    [Fact]
    public async Task Two_daemons_over_two_shards_the_leader_of_shard1_is_killed_and_the_other_leads_every_shard_and_catches_up()
    {
        var shards = new Dictionary<string, string> { ["SVA_SHARDS"] = t.Shards };
        var cs = new[] { t.Shard1, t.Shard2 };
        foreach (var shard in new[] { 0, 1 }) await Generate(t.SessionOn(shard, "hcs"), 1500, shards);

        var daemons = new[] { SvaCli.Start(t.Shard1, t.Repo, shards, "projections", "daemon"), SvaCli.Start(t.Shard1, t.Repo, shards, "projections", "daemon") };
        var pids = daemons.Select(d => d.Id).ToArray();
        var after = new[] { t.SessionOn(0, "hcs-after"), t.SessionOn(1, "hcs-after") };
        try
        {
            // Each shard has a leader among the two processes (one coordinator per shard in each process).
            var leaders = new[] { await LeaderAsync(cs[0], pids, exclude: null), await LeaderAsync(cs[1], pids, exclude: null) };
            await CaughtUpAsync(a => t.Sva(shards, a));
            var killed = leaders[0];
            Process.GetProcessById(killed).Kill(); // SIGKILL: its locks on every shard go with its connections
            var survivor = pids.Single(p => p != killed);

            foreach (var shard in new[] { 0, 1 }) await Generate(after[shard], 2500, shards);
            // The survivor now leads every shard (the shards the killed one led are taken over; the others it kept).
            foreach (var shard in new[] { 0, 1 }) Assert.Equal(survivor, await LeaderAsync(cs[shard], pids, exclude: killed));
            await CaughtUpAsync(a => t.Sva(shards, a));
            foreach (var shard in new[] { 0, 1 })
                Assert.True((long)(await TopologyFixture.ScalarAsync(cs[shard], $"SELECT count(*) FROM mt_doc_auditbinding WHERE data->>'session' = '{after[shard]}'"))! > 0,
                    $"shard{shard + 1}: the events written after the fail-over were projected");
        }
        finally
        {
            foreach (var d in daemons) { try { if (!d.HasExited) d.Kill(); } catch (InvalidOperationException) { } d.Dispose(); }
        }

        // Nothing skipped or applied twice: each shard's audit documents equal a rebuild from its log.
        const string dump = "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(id || ':' || data::text, ',' ORDER BY id), '')) FROM mt_doc_auditbinding";
        var before = new[] { (string)(await TopologyFixture.ScalarAsync(cs[0], dump))!, (string)(await TopologyFixture.ScalarAsync(cs[1], dump))! };
        var rebuild = await t.Sva(shards, "projections", "rebuild", "audit_bindings");
        Assert.True(rebuild.ExitCode == 0, rebuild.ToString());
        for (var shard = 0; shard < 2; shard++)
            Assert.Equal(before[shard], (string)(await TopologyFixture.ScalarAsync(cs[shard], dump))!);

        // The read model the surviving daemon kept equals the fold rebuild of each shard (each its own transaction and
        // checkpoint, run on both shards by one command).
        const string rows = "SELECT count(*)::text || ' ' || md5(coalesce(string_agg(id || ':' || data::text, ',' ORDER BY id), '')) FROM mt_doc_readmodelrow";
        var kept = new[] { (string)(await TopologyFixture.ScalarAsync(cs[0], rows))!, (string)(await TopologyFixture.ScalarAsync(cs[1], rows))! };
        Assert.All(kept, k => Assert.False(k.StartsWith("0 "), k));
        var folded = await t.Sva(shards, "projections", "rebuild", "sva_read_model");
        Assert.True(folded.ExitCode == 0, folded.ToString());
        Assert.Contains("sva_read_model: rebuilt from the log", folded.Stderr);
        for (var shard = 0; shard < 2; shard++)
        {
            Assert.Equal(kept[shard], (string)(await TopologyFixture.ScalarAsync(cs[shard], rows))!);
            Assert.Equal((long)(await TopologyFixture.ScalarAsync(cs[shard], "SELECT max(seq_id) FROM mt_events"))!,
                (long)(await TopologyFixture.ScalarAsync(cs[shard], "SELECT last_seq_id FROM mt_event_progression WHERE name = 'sva_read_model:All'"))!);
        }
        var verify = await t.Sva(shards, "projections", "verify");
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    /// <summary>The pid of the daemon process holding Marten's leader lock (application_name sva-daemon-PID).</summary>
    private static async Task<int> LeaderAsync(string db, int[] pids, int? exclude)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(60))
        {
            var name = await TopologyFixture.ScalarAsync(db,
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'sva-daemon-%' LIMIT 1") as string;
            if (name is not null && int.TryParse(name["sva-daemon-".Length..], out var pid) && pids.Contains(pid) && pid != exclude) return pid;
            await Task.Delay(200);
        }
        throw new TimeoutException("no daemon process took Marten's leader lock within 60 s");
    }

    private static async Task CaughtUpAsync(Func<string[], Task<CliResult>> run)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var s = await run(["projections", "status", "--json"]);
            Assert.True(s.ExitCode == 0, s.ToString());
            var audit = s.JsonLines().Single(o => o["name"]!.GetValue<string>() == "audit_bindings");
            if (audit["lag"]!.GetValue<long>() == 0 && audit["head"]!.GetValue<long>() > 0) return;
            if (sw.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"audit_bindings did not catch up: {s.Stdout}");
            await Task.Delay(500);
        }
    }
}
