using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Commands;
using Sva.Domain;
using Sva.Formats.Captures;
using Sva.Formats.Import;

namespace Sva.Replay.Verbs;

public static class ImportVerb
{
    /// <summary>Test hook: exit the process (code 75) right after this batch number committed, as a crash would.</summary>
    public const string ExitAfterBatchVariable = "SVA_IMPORT_EXIT_AFTER_BATCH";

    /// <summary>Skipped lines kept in the --json summary with --show-skipped (all are counted).</summary>
    private const int JsonSkippedLimit = 10_000;

    public static Command Build(CliCommon common)
    {
        var file = new Argument<FileInfo>("file") { Description = "The captured session: ftrace text, dmesg/journal, QEMU -trace output or our jsonl (see 'sva formats')" };
        var format = new Option<string>("--format") { Description = "auto (default: detected from the first 1000 lines, up to 10000 when those fit nothing), ftrace, dmesg, qemu-trace or jsonl", DefaultValueFactory = _ => "auto" };
        var kernel = new Option<string?>("--kernel") { Description = $"Kernel version whose rules decide the calls the capture implies. Default: proposed from the capture: {KernelProposal.SmmuV3Development} for SMMUv3 SVA development traces (smmu_* events, e.g. seed 004), else {KernelProposal.Default}. Any release ≥ {KernelVersions.Oldest} (resolved to the rule set that covers it) or a kernel file (.toml). Rule sets: {KernelVersions.SupportedList}" };
        var session = new Option<string?>("--session") { Description = "Session name (at most 200 characters). Default: <file stem>-<first 8 hex of the content's SHA-256>-<kernel>. The same capture under the same kernel always goes to the session it was first imported into" };
        var strict = new Option<bool>("--strict") { Description = "Fail on any unrecognised or malformed line (comments apart), with nothing recorded; default: such lines are counted as skipped" };
        var showSkipped = new Option<bool>("--show-skipped") { Description = "List every skipped line with its reason (with --json: in the summary's skipped_lines)" };
        var batch = new Option<int>("--batch") { Description = "Events per append: each batch is one transaction with its projection rows and the resume checkpoint", DefaultValueFactory = _ => ImportCaptureHandler.DefaultBatchEvents };
        var cmd = new Command("import", """
            Import a captured session (what a machine printed) as a recorded session: each recognised line becomes a capture_observed
            event and the kernel calls it implies, decided under --kernel's rules, each event with its file:line and the original
            timestamp. Objects first seen mid-capture (a device, an mm holding a PASID, a bind made before the capture started) are
            created as inferred. Where the capture shows an outcome (a page response, an unbind, a fault after release) it is
            compared with the simulated one (conformance). Idempotent: re-importing the same file under the same kernel reports
            the earlier import and appends nothing; an interrupted import resumes from its last committed batch.
            Exit codes: 0 imported (also with skipped lines, failed calls or conformance mismatches: they are reported);
            2 bad input (file:line and the expected format named); 3 database unavailable.
            """)
        {
            file, format, kernel, session, strict, showSkipped, batch, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var path = pr.GetValue(file)!;
            InputFiles.CheckReadable(path);
            var json = pr.GetValue(common.Json);
            var listSkipped = pr.GetValue(showSkipped);
            var skippedLines = new List<JsonNode>();
            long skippedListed = 0;
            int? exitAfter = int.TryParse(Environment.GetEnvironmentVariable(ExitAfterBatchVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

            Action<SkippedLine>? onSkipped = null;
            if (listSkipped)
            {
                onSkipped = s =>
                {
                    skippedListed++;
                    if (json)
                    {
                        if (skippedLines.Count < JsonSkippedLimit)
                            skippedLines.Add(new JsonObject { ["source"] = s.Source.ToString(), ["line"] = s.Source.Line, ["reason"] = s.Reason, ["text"] = s.Text });
                    }
                    else Console.Out.WriteLine($"skipped {s.Source}: {s.Reason}: {Sva.Formats.InputLimits.Escape(s.Text)}");
                };
            }

            var kernelName = pr.GetValue(kernel);
            KernelProposalResult? proposed = null;
            if (kernelName is null)
            {
                // An unknown format or an undetectable capture is reported by the import itself (exit 2, formats listed).
                var formatName = pr.GetValue(format)!;
                if (CaptureFormatChoice.IsFormatName(formatName))
                {
                    try { proposed = await KernelProposal.ForFileAsync(path.FullName, formatName, ct); }
                    catch (CaptureDetectionException) { proposed = null; }
                }
                kernelName = proposed?.Kernel ?? KernelProposal.Default;
                if (!json && proposed is not null) Output.Info($"kernel {proposed.Kernel} proposed ({proposed.Why}); --kernel overrides");
            }
            var request = new ImportCapture(path.FullName, kernelName, pr.GetValue(format)!, pr.GetValue(session), pr.GetValue(strict), pr.GetValue(batch))
            {
                Version = KernelArg.Resolve(kernelName),
            };
            await using var host = await common.OpenAsync(pr, ct);

            ImportResult result;
            try
            {
                var showProgress = !Console.IsErrorRedirected;
                if (showProgress)
                {
                    var progressConsole = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                    result = await progressConsole.Progress()
                        .AutoClear(true)
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                        .StartAsync(async ctx =>
                        {
                            var task = ctx.AddTask(Markup.Escape($"import {path.Name}"), maxValue: 1);
                            return await Run(request with { Hooks = Hooks(onSkipped, exitAfter, p =>
                            {
                                if (p.TotalLines is long total && total > 0) task.MaxValue = total;
                                task.Value = Math.Min(p.Lines, task.MaxValue);
                                task.Description = Markup.Escape($"import {path.Name}: {p.Lines:N0} lines, {p.Events:N0} events");
                            }) });
                        });
                }
                else result = await Run(request with { Hooks = Hooks(onSkipped, exitAfter, null) });
            }
            catch (ImportInputException e) { throw new UserInputException(e.Message); }
            catch (CaptureFormatException e) { throw new UserInputException(e.Message); }
            catch (CaptureDetectionException e) { throw new UserInputException($"{path.Name}: {e.Message}"); }

            var detection = AutoFormat(pr.GetValue(format)) ? Detection(path) : null;
            if (json)
            {
                var j = result.ToJson();
                if (detection is not null)
                    j["detection"] = new JsonObject
                    {
                        ["format"] = detection.Format.Name,
                        ["score"] = Math.Round(detection.Score, 3),
                        ["sampled_lines"] = detection.SampledLines,
                        ["fitting_lines"] = new JsonArray(detection.FittingLines.Select(l => (JsonNode)l).ToArray()),
                    };
                if (proposed is not null) j["kernel_proposed"] = proposed.Why;
                if (listSkipped)
                {
                    j["skipped_lines"] = new JsonArray(skippedLines.ToArray());
                    if (skippedListed > skippedLines.Count) j["skipped_lines_truncated"] = true;
                }
                Output.JsonLine(j);
            }
            else
            {
                if (detection is not null) Output.Info($"format detected: {detection}");
                Render(result);
            }
            return 0;

            async Task<ImportResult> Run(ImportCapture r) => await host.Mediator.Send(r, ct);
        }));
        return cmd;
    }

    private static bool AutoFormat(string? format) => string.IsNullOrEmpty(format) || format.Equals("auto", StringComparison.OrdinalIgnoreCase);

    /// <summary>How "--format auto" decided, for the summary: the format and the first lines that fit (re-reads the head).</summary>
    private static CaptureDetection? Detection(FileInfo path)
    {
        try
        {
            var head = File.ReadLines(path.FullName).Take(CaptureReader.MaxSniffLineCount).ToList();
            return CaptureReader.DetectDetailed(head);
        }
        catch (Exception e) when (e is CaptureDetectionException or IOException)
        {
            return null;
        }
    }

    private static ImportHooks Hooks(Action<SkippedLine>? onSkipped, int? exitAfter, Action<ImportProgress>? progress) => new()
    {
        Skipped = onSkipped,
        Progress = progress,
        BatchCommitted = exitAfter is { } stop
            ? b =>
            {
                if (b.Batch < stop) return;
                Console.Error.WriteLine($"sva: {ExitAfterBatchVariable}={stop}: exiting after batch {b.Batch} (seqs {b.FirstSeq}..{b.LastSeq}) committed");
                Environment.Exit(75);
            }
            : null,
    };

    private static void Render(ImportResult r)
    {
        var c = Output.Console;
        if (r.AlreadyImported)
            Output.Info($"session {r.Session} already holds this capture under kernel {r.Kernel} ({r.Format}, sha256 {r.ContentHash[..Math.Min(16, r.ContentHash.Length)]}): nothing appended");
        else
            Output.Info($"session {r.Session} (kernel {r.Kernel}): imported {r.File} ({r.Format}){(r.ResumedAfterBatch is { } b ? $", resumed after batch {b}" : "")}");
        c.WriteLine($"lines {r.Lines}  recognized {r.Recognized}  skipped {r.Skipped}  events {r.Events} ({r.Appended} appended, {r.Batches} batches)  calls {r.Calls} ({r.InferredCalls} inferred)  failures {r.FailureCount}");
        c.WriteLine($"devices {r.Devices}  pasids {r.Pasids}  conformance: {r.ConformanceChecked} outcomes compared, {r.MismatchCount} mismatches  ({r.LinesPerSecond:F0} lines/s)");
        if (r.SkippedByReason.Count > 0)
        {
            var t = Output.Table("skipped because", "lines");
            foreach (var kv in r.SkippedByReason.OrderByDescending(kv => kv.Value)) t.Row(kv.Key, kv.Value);
            c.Write(t);
        }
        if (r.CallsByOp.Count > 0)
        {
            var t = Output.Table("call", "count");
            foreach (var kv in r.CallsByOp.OrderBy(kv => kv.Key, StringComparer.Ordinal)) t.Row(kv.Key, kv.Value);
            c.Write(t);
        }
        if (r.Failures.Count > 0)
        {
            c.Write(new Rule("calls the simulator refused").LeftJustified());
            var t = Output.Table("seq", "source", "call", "reason");
            foreach (var f in r.Failures.Take(50)) t.Row(f.Seq, f.Source, f.Op, f.Reason);
            c.Write(t);
        }
        if (r.Mismatches.Count > 0)
        {
            c.Write(new Rule("conformance mismatches (capture vs simulator)").LeftJustified());
            var t = Output.Table("seq", "line", "simulated seq", "simulated line", "message");
            foreach (var m in r.Mismatches) t.Row(m.Seq, m.Line, m.SimulatedSeq, m.SimulatedLine, m.Message);
            c.Write(t);
        }
    }
}
