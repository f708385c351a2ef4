using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Domain;
using Sva.Formats.Kernels;
using Sva.Formats.Script;

namespace Sva.Replay.Verbs;

/// <summary>
/// <c>sva compare SCRIPT|SESSION --kernel A --kernel B [--json]</c>: differential replay of the same calls
/// under two kernel versions, in memory (<see cref="Differential"/>); nothing is recorded.
/// </summary>
public static class CompareVerb
{
    public static Command Build(CliCommon common)
    {
        var input = new Argument<string?>("script-or-session") { Description = "A .sva script, or a recorded session whose calls are read back from its events (not with --corpus)", Arity = ArgumentArity.ZeroOrOne };
        var kernels = new Option<string[]>("--kernel")
        {
            Description = $"The two kernels to compare (give it twice): releases >= 5.11 or kernel files (.toml). Given once, the other is the script's 'kernel' line or the session's kernel. With --all-kernels: kernel files added to the matrix. Rule sets: {KernelVersions.SupportedList}",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var all = new Option<bool>("--all") { Description = "Table: show every call, not only the ones that differ (and their neighbours)" };
        var allKernels = new Option<bool>("--all-kernels") { Description = "The version matrix: re-decide the calls under every version (plus any --kernel FILE given) and print, per call, its outcome under each, where it changes and the rule/commit that changed it; exit 1 when some call's outcome changes" };
        var changed = new Option<bool>("--changed") { Description = "With --all-kernels: only the calls whose outcome is not the same under every version" };
        var corpus = new Option<bool>("--corpus") { Description = "Corpus triage: re-decide every recorded session (and, with --captures, every capture file of DIR, imported in memory) under --kernel A and --kernel B; diverging sessions first, by the number of calls that differ; exit 0 none differ, 1 some differ" };
        var sessionsGlob = new Option<string?>("--sessions") { Description = "With --corpus: only the sessions whose name matches this glob (* and ?)" };
        var captures = new Option<DirectoryInfo?>("--captures") { Description = "With --corpus: also every capture file in this directory (recursively), imported in memory: nothing is recorded" };
        var html = new Option<FileInfo?>("--html") { Description = "With --corpus: write one self-contained HTML report (summary, diverging sessions with their first divergence)" };
        var cmd = new Command("compare", """
            Re-decide the same calls from an empty machine under two kernel versions and compare what each call
            answered: ok or errno, the handle and the domain by identity (the call that first produced them; a
            G1 bond has no domain, so the domain is only compared when both versions have one), the PASID, the
            page response, invalidation rounds, how release quieted the PASID entries, and whether the PASID was
            freed. Prints the first divergence with the rule that decided each side (kernel function, commit or
            release, confidence when not V) and a per-call table; exit 0 when identical, 1 when they differ,
            2 on bad input. --json: one object with identical, first_divergence {line, seq, op, a, b} and rows (each side with its rule object).
            A kernel is any release >= 5.11 (resolved to the rule set that covers it) or a kernel file (.toml).
            --all-kernels: the version matrix, per call its outcome under every version (and each --kernel FILE), where
            it changes and the rule/commit that changed it. --corpus --kernel A --kernel B: every recorded session (and
            --captures DIR) re-decided under A and B, diverging sessions first.
            """)
        {
            input, kernels, all, allKernels, changed, corpus, sessionsGlob, captures, html, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var given = pr.GetValue(kernels) ?? [];
            var matrix = pr.GetValue(allKernels);
            if (pr.GetValue(corpus))
            {
                if (pr.GetValue(input) is { } extra) throw new UserInputException($"--corpus re-decides the store's sessions: give no script or session ('{extra}')");
                if (matrix) throw new UserInputException("give either --corpus or --all-kernels");
                if (given.Length != 2) throw new UserInputException($"--corpus needs two kernels: --kernel A --kernel B (given {given.Length})");
                return await CorpusVerb.RunAsync(common, pr, KernelArg.Resolve(given[0]), KernelArg.Resolve(given[1]),
                    pr.GetValue(sessionsGlob), pr.GetValue(captures), pr.GetValue(html), pr.GetValue(common.Json), ct);
            }
            if (pr.GetValue(sessionsGlob) is not null || pr.GetValue(captures) is not null || pr.GetValue(html) is not null)
                throw new UserInputException("--sessions, --captures and --html go with --corpus");
            if (pr.GetValue(changed) && !matrix) throw new UserInputException("--changed goes with --all-kernels");
            var what = pr.GetValue(input) ?? throw new UserInputException("compare needs a script or a session (or --corpus)");
            if (!matrix && given.Length is < 1 or > 2) throw new UserInputException(KernelUsage(given.Length));
            List<SourcedKernelCall> calls;
            string? ownKernel;
            KernelVersion? sessionKernel = null;
            string kind;
            if (File.Exists(what) || Directory.Exists(what))
            {
                var script = ScriptParser.Parse(await InputFiles.ReadAllTextAsync(new FileInfo(what), ct), Path.GetFileName(what));
                calls = script.Lines.Select(l => new SourcedKernelCall(l.Call, l.Source, null)).ToList();
                ownKernel = script.Kernel is { } k && KernelFiles.LooksLikeFile(k) && !Path.IsPathRooted(k) ? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(what)) ?? ".", k) : script.Kernel;
                kind = "script";
            }
            else if (what.EndsWith(".sva", StringComparison.OrdinalIgnoreCase) || what.Contains('/') || what.Contains('\\'))
            {
                InputFiles.CheckReadable(new FileInfo(what)); // says what is wrong with the path
                throw new UserInputException($"{what}: no such file");
            }
            else
            {
                await using var host = await common.OpenReadOnlyAsync(pr, ct);
                var info = await host.SessionAsync(what, ct);
                var metadata = new List<(long, string)>();
                await foreach (var e in host.Store.ReadSessionAsync(what, 1, long.MaxValue, ct)) metadata.Add((e.Seq, e.Metadata));
                calls = Sva.Projections.EventMetadata.RecordedCalls(metadata);
                ownKernel = info.Kernel;
                sessionKernel = await Sva.Commands.SessionKernels.ResolveAsync(host.Store, info, ct);
                kind = "session";
            }
            if (matrix)
            {
                var versions = KernelVersions.All.ToList();
                foreach (var g in given)
                {
                    var v = KernelArg.Resolve(g);
                    if (!versions.Any(x => x.Name == v.Name && x.Origin?.Definition == v.Origin?.Definition)) versions.Add(v);
                }
                var m = VersionMatrix.Build(versions, calls);
                var rows = m.Rows.Where(r => !pr.GetValue(changed) || r.Changes).ToList();
                if (pr.GetValue(common.Json)) foreach (var r in rows) Output.JsonLine(m.RowJson(r));
                else RenderMatrix(what, m, rows, calls);
                return m.Rows.Any(r => r.Changes) ? 1 : 0;
            }
            if (given.Length == 1 && ownKernel is null)
                throw new UserInputException($"{what} names no kernel of its own: give --kernel twice");
            var a = given.Length == 2 ? KernelArg.Resolve(given[0]) : sessionKernel ?? KernelArg.Resolve(ownKernel!);
            var b = KernelArg.Resolve(given[^1]);
            var c = Differential.Compare(a, b, calls);

            if (pr.GetValue(common.Json)) Output.JsonDocument(Json(what, kind, c));
            else Render(what, c, pr.GetValue(all));
            return c.Identical ? 0 : 1;
        }));
        return cmd;
    }

    private static string KernelUsage(int count) =>
        $"--kernel given {count} time{(count == 1 ? "" : "s")}: compare needs two versions (--kernel A --kernel B), or one beside a script 'kernel' line or a session";

    private static JsonObject Row(ComparedCall r) => new()
    {
        ["index"] = r.Index,
        ["line"] = r.Call.Line,
        ["seq"] = r.Call.Seq,
        ["source"] = r.Call.Source,
        ["op"] = r.Call.Call.Op,
        ["call"] = RunVerb.Describe(r.Call.Call),
        ["same"] = r.Same,
        ["a"] = r.A.ToJson(),
        ["b"] = r.B.ToJson(),
    };

    public static JsonObject Json(string input, string kind, Comparison c) => new()
    {
        ["input"] = input,
        ["kind"] = kind,
        ["kernel_a"] = c.A.Name,
        ["kernel_b"] = c.B.Name,
        ["identical"] = c.Identical,
        ["calls"] = c.Calls.Count,
        ["differing"] = c.Calls.Count(x => !x.Same),
        ["first_divergence"] = c.FirstDivergence is { } f ? Row(f) : null,
        ["rows"] = new JsonArray(c.Calls.Select(x => (JsonNode)Row(x)).ToArray()),
    };

    /// <summary>Per call: runs of versions with the same outcome ("through 6.7", "at 6.8-rc1", "from 6.8"), each change with its rule.</summary>
    private static void RenderMatrix(string input, VersionMatrix m, IReadOnlyList<MatrixRow> rows, IReadOnlyList<SourcedKernelCall> calls)
    {
        var changing = m.Rows.Count(r => r.Changes);
        Output.Info($"compare {input} under {m.Versions.Count} versions ({string.Join(", ", m.Versions.Select(v => v.Name))}): {m.Rows.Count} calls, "
                    + (changing == 0 ? "none changes" : $"{changing} change between versions"));
        var builtIn = m.Versions.Count(v => v.Origin is null);
        foreach (var r in rows)
        {
            Console.Out.WriteLine($"{Differential.Where(calls, r.Index)}{(r.Call.Seq is long s && r.Call.Line is not null ? $" (seq {s})" : "")}: {RunVerb.Describe(r.Call.Call)}{(r.Changes ? "" : "  (same everywhere)")}");
            var i = 0;
            while (i < m.Versions.Count)
            {
                var start = i;
                if (m.Versions[i].Origin is null)
                    while (i + 1 < builtIn && !r.ChangesAt.Contains(i + 1)) i++;
                var o = r.Outcomes[start];
                string label;
                if (m.Versions[start].Origin is { } origin) label = $"what-if {m.Versions[start].Name} (on {m.Versions[start].Parent})";
                else if (start == i) label = start == 0 ? $"{m.Versions[start].Name}" : $"at {m.Versions[start].Name}";
                else if (start == 0) label = $"through {m.Versions[i].Name}";
                else if (i == builtIn - 1) label = $"from {m.Versions[start].Name}";
                else label = $"{m.Versions[start].Name} through {m.Versions[i].Name}";
                var changedHere = r.ChangesAt.Contains(start);
                var why = o.Rule is null ? "" : $"  ({(changedHere ? "changed by " : "")}{o.Rule.Short})";
                Console.Out.WriteLine($"  {label,-36} {o.Text}{why}");
                i++;
            }
        }
    }

    private static void Render(string input, Comparison c, bool all)
    {
        var differing = c.Calls.Count(x => !x.Same);
        Output.Info($"compare {input}: {c.A.Name} ({c.A.Generation}) vs {c.B.Name} ({c.B.Generation}), {c.Calls.Count} calls, "
                    + (differing == 0 ? "identical" : $"{differing} differ"));
        if (c.FirstDivergence is { } f)
        {
            var where = Differential.Where(c.Calls.Select(x => x.Call).ToList(), f.Index);
            Output.Console.WriteLine($"first divergence at {where}{(f.Call.Seq is long s && f.Call.Line is not null ? $" (seq {s})" : "")}: {RunVerb.Describe(f.Call.Call)}");
            Output.Console.WriteLine($"  {c.A.Name}: {f.A.Explained}");
            Output.Console.WriteLine($"  {c.B.Name}: {f.B.Explained}");
        }
        // By default the calls that differ and one call of context on each side; --all shows every call.
        var show = c.Calls.Where((x, i) => all || !x.Same
            || (i > 0 && !c.Calls[i - 1].Same) || (i + 1 < c.Calls.Count && !c.Calls[i + 1].Same)).ToList();
        if (show.Count == 0) return;
        var t = Output.Table("#", c.Calls.Any(x => x.Call.Line is not null) ? "line" : "seq", "call", c.A.Name, c.B.Name, "");
        foreach (var x in show)
            t.Row(x.Index + 1, (object?)x.Call.Line ?? x.Call.Seq, RunVerb.Describe(x.Call.Call), x.A.Text, x.B.Text, x.Same ? "" : "≠");
        Output.Console.Write(t);
    }
}
