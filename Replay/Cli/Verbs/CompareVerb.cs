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
        var input = new Argument<string>("script-or-session") { Description = "A .sva script, or a recorded session whose calls are read back from its events" };
        var kernels = new Option<string[]>("--kernel")
        {
            Description = $"The two kernel versions to compare (give it twice). Given once, the other is the script's 'kernel' line or the session's kernel. Supported: {KernelVersions.SupportedList}",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var all = new Option<bool>("--all") { Description = "Table: show every call, not only the ones that differ (and their neighbours)" };
        var cmd = new Command("compare", """
            Re-decide the same calls from an empty machine under two kernel versions and compare what each call
            answered: ok or errno, the handle and the domain by identity (the call that first produced them; a
            G1 bond has no domain, so the domain is only compared when both versions have one), the PASID, the
            page response, invalidation rounds, how release quieted the PASID entries, and whether the PASID was
            freed. Prints the first divergence with the rule that decided each side (kernel function, commit or
            release, confidence when not V) and a per-call table; exit 0 when identical, 1 when they differ,
            2 on bad input. --json: one object with identical, first_divergence {line, seq, op, a, b} and rows (each side with its rule object).
            """)
        {
            input, kernels, all, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var what = pr.GetValue(input)!;
            var given = pr.GetValue(kernels) ?? [];
            if (given.Length is < 1 or > 2) throw new UserInputException(KernelUsage(given.Length));
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
                calls = RecordedCalls.FromMetadata(metadata);
                ownKernel = info.Kernel;
                sessionKernel = await Sva.Commands.SessionKernels.ResolveAsync(host.Store, info, ct);
                kind = "session";
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
