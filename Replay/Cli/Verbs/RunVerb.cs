using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Commands;
using Sva.Domain;
using Sva.Formats.Kernels;
using Sva.Formats.Script;

namespace Sva.Replay.Verbs;

public static class RunVerb
{
    public static Command Build(CliCommon common)
    {
        var file = new Argument<FileInfo>("file") { Description = "A .sva scenario script (grammar in the README and below)" };
        var kernel = new Option<string?>("--kernel") { Description = $"Kernel whose rules decide the calls; overrides the script's 'kernel' line (default 6.8): any release ≥ {KernelVersions.Oldest} (6.15, v6.8-rc3, 6.8.0-31-generic: resolved to the rule set that covers it, said once on stderr) or a kernel file (.toml, see 'sva kernels --switches'). Rule sets: {KernelVersions.SupportedList}" };
        var session = new Option<string?>("--session") { Description = "Session name (at most 200 characters); an existing session is continued (same kernel only). Default: the script's name plus a unique suffix" };
        var chunk = new Option<int>("--chunk") { Description = "Calls decided and appended per transaction (a version conflict re-decides the chunk)", DefaultValueFactory = _ => 64 };
        var again = new Option<bool>("--again") { Description = "Append the script although it was recorded into this --session completely before (without it: refused; an interrupted run of the same script resumes after its last committed call). A run of the same script into the same session by a live sva is refused (exit 2, naming it); with --again this run records a full copy beside it" };
        var explain = new Option<bool>("--explain") { Description = "Under each call, the rule that decided it: kernel function (and driver), the commit or release that introduced it, confidence (V read in source, I inferred, U uncertain)" };
        var cmd = new Command("run", "Run a .sva script: each call is decided under the kernel version's rules, recorded as events, and its outcome printed (one line per call, each as its batch commits; --json adds each outcome's rule object; a kernel BUG taints the session and every later outcome says so)\n\nScript grammar:\n" + ScriptParser.Grammar)
        {
            file, kernel, session, chunk, again, explain, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var path = pr.GetValue(file)!;
            InputFiles.CheckReadable(path);
            // The script is read twice and never held: a first pass checks every line (bad input is exit 2 before anything is
            // recorded), counts the calls (the progress bar) and hashes the bytes (resume); the second streams the calls into
            // the recording. Outcomes are printed as each batch commits, in table mode as with --json: memory stays flat.
            var (hash, scriptKernel, callCount) = await ScanAsync(path, ct);
            var kernelName = pr.GetValue(kernel)
                ?? (scriptKernel is { } k && KernelFiles.LooksLikeFile(k) && !Path.IsPathRooted(k) ? Path.Combine(path.DirectoryName ?? ".", k) : scriptKernel)
                ?? "6.8";
            var version = KernelArg.Resolve(kernelName);
            var sessionName = pr.GetValue(session) ?? $"{DefaultStem(path.Name)}-{Guid.NewGuid().ToString("N")[..6]}";
            await using var host = await common.OpenAsync(pr, ct);
            var json = pr.GetValue(common.Json);
            var table = json ? null : new StreamedTable(pr.GetValue(explain));
            RecordedCall? last = null;
            var printed = 0;
            RecordResult result;
            using var reader = OpenText(path);
            var calls = ScriptParser.Stream(reader, path.Name).Select(l => new SourcedCall(l.Call, l.Source));
            try
            {
                // The progress bar (stderr, a terminal) only while the outcomes go elsewhere: rows printed to the same terminal
                // are the progress.
                var bar = Console.IsOutputRedirected;
                result = await Output.WithProgressAsync($"run {path.Name}", bar ? callCount : -1, progress => host.Mediator.Send(new RecordCalls(sessionName, kernelName, path.FullName, calls, pr.GetValue(chunk))
                {
                    Version = version,
                    ScriptHash = hash,
                    Again = pr.GetValue(again),
                    OnRecorded = c =>
                    {
                        last = c;
                        printed++;
                        progress(c.Index + 1, $"run {path.Name}: {c.Index + 1:N0} calls, seq {c.LastSeq:N0}");
                        if (json) Output.JsonLine(CallJson(sessionName, c, LineOf(c.Call.Source)));
                        else table!.Row(c);
                        return ValueTask.CompletedTask;
                    },
                }, ct).AsTask());
            }
            catch (Sva.EventStore.EventStoreUnavailableException e)
            {
                table?.End();
                var done = last is null ? "nothing of this run was committed" : $"committed up to seq {last.LastSeq} (script line {LineOf(last.Call.Source)})";
                throw new Sva.EventStore.EventStoreUnavailableException(e.Endpoint, new IOException(
                    $"{done}; run the same command again to resume after the last committed call: sva run {path.FullName} --session {sessionName}", e));
            }
            catch (ScriptAlreadyRecordedException e) { throw new UserInputException(e.Message); }
            catch (ScriptBeingRecordedException e) { throw new UserInputException(e.Message); }
            finally { table?.End(); }
            if (result.CopyBeside is { } other)
                Output.Info($"another live writer ({other}) is recording {path.Name} into {sessionName}: this run recorded a full copy of the script beside it (--again)");
            if (result.ResumedAfter > 0)
                Output.Info($"resumed: calls 1..{result.ResumedAfter} of {path.Name} were committed by an interrupted run; recorded the rest");
            if (!json)
                Output.Info($"session {result.Session} (kernel {result.Kernel}){(result.Created ? "" : ", continued")}: {printed} calls, last seq {result.LastSeq}{(result.Conflicts > 0 ? $", {result.Conflicts} version conflicts re-decided" : "")}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>The first pass over a script: SHA-256 of its bytes, its 'kernel' line, how many calls; a bad line throws (exit 2).</summary>
    private static async Task<(string Hash, string? Kernel, int Calls)> ScanAsync(FileInfo path, CancellationToken ct)
    {
        string hash;
        try
        {
            await using (var s = new FileStream(path.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true))
                hash = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(s, ct));
        }
        catch (UnauthorizedAccessException) { throw new UserInputException($"{Sva.Formats.InputLimits.Escape(path.FullName)}: permission denied (cannot read it)"); }
        catch (IOException e) when (e is not FileNotFoundException) { throw new UserInputException($"{Sva.Formats.InputLimits.Escape(path.FullName)}: cannot read it: {e.Message}"); }
        string? kernel = null;
        var calls = 0;
        using var reader = OpenText(path);
        foreach (var _ in ScriptParser.Stream(reader, path.Name, k => kernel = k))
        {
            ct.ThrowIfCancellationRequested();
            calls++;
        }
        return (hash, kernel, calls);
    }

    /// <summary>The script as text: UTF-8 (a BOM is honoured; invalid bytes become U+FFFD, as File.ReadAllText reads it).</summary>
    private static StreamReader OpenText(FileInfo path) =>
        new(new FileStream(path.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);

    /// <summary>The line number of a call's source ("file:line").</summary>
    private static int? LineOf(string? source) =>
        source is not null && source.LastIndexOf(':') is var i and >= 0 && int.TryParse(source.AsSpan(i + 1), out var n) ? n : null;

    /// <summary>The outcomes as a plain text table written row by row as each batch commits (columns of fixed width; a longer
    /// cell widens its own row only): nothing is held until the end, unlike a Spectre table that measures every row first.</summary>
    private sealed class StreamedTable(bool explain)
    {
        private const int LineWidth = 7, CallWidth = 48, OutcomeWidth = 24;
        private readonly TextWriter output = Console.Out;
        private bool started, ended;

        public void Row(RecordedCall c)
        {
            if (!started)
            {
                started = true;
                output.WriteLine();
                Write("line", "call", "outcome", "seq");
                output.WriteLine("  " + new string('─', LineWidth + CallWidth + OutcomeWidth + 3 + 8));
            }
            Write(LineOf(c.Call.Source)?.ToString() ?? "-", Describe(c.Call.Call), c.Outcome.Describe(), c.LastSeq.ToString());
            if (explain && c.Outcome.Explain() is { } why) Write("", "", "  why: " + why, "");
        }

        public void End()
        {
            if (ended || !started) return;
            ended = true;
            output.WriteLine();
            output.Flush();
        }

        private void Write(string line, string call, string outcome, string seq) =>
            output.WriteLine($"  {Sva.Formats.InputLimits.Escape(line),-LineWidth} {Sva.Formats.InputLimits.Escape(call),-CallWidth} {Sva.Formats.InputLimits.Escape(outcome),-OutcomeWidth} {seq}".TrimEnd());
    }

    /// <summary>The script's file stem as the start of a default session name: letters, digits, '.', '_', '-' (others
    /// become '_'), at most 80 characters, so the name stays within the limit whatever the file is called.</summary>
    public static string DefaultStem(string fileName)
    {
        var stem = new string(Path.GetFileNameWithoutExtension(fileName)
            .Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_').ToArray());
        return stem.Length == 0 ? "script" : stem.Length > 80 ? stem[..80] : stem;
    }

    public static JsonObject CallJson(string session, RecordedCall c, int? line)
    {
        var o = c.Outcome;
        var j = new JsonObject
        {
            ["session"] = session,
            ["line"] = line,
            ["source"] = c.Call.Source,
            ["op"] = o.Op,
            ["ok"] = o.Ok,
            ["errno"] = o.Errno?.ToString(),
            ["seq"] = c.LastSeq,
            ["first_seq"] = c.FirstSeq,
        };
        if (o.Op == "bind") { j["name"] = o.Name; j["handle"] = o.Handle; j["domain"] = o.Domain; j["pasid"] = o.Pasid; }
        if (o.Op == "unbind") j["handle"] = o.Handle;
        if (o.Op == "fault") { j["response"] = o.Response; j["pasid"] = o.Pasid; if (o.Domain is not null) j["domain"] = o.Domain; }
        if (o.Op == "domain") j["domain"] = o.Domain;
        j["reason"] = o.Reason;
        j["rule"] = o.Rule?.ToJson();
        if (o.Bug is not null) j["kernel_bug"] = o.Bug;
        if (o.TaintedAt is long tainted) j["tainted_since"] = tainted;
        j["events"] = new JsonArray(c.Events.Select(e => (JsonNode)JsonValue.Create(EventTypes.NameOf(e))!).ToArray());
        return j;
    }

    public static string Describe(KernelCall call) => call switch
    {
        ProbeDevice d => $"device {d.Device} pasids={d.MaxPasids}{(d.Driver == Drivers.Default ? "" : $" driver={d.Driver}")}",
        CreateMm m => $"mm {m.Mm}",
        Bind b => $"bind {(b.Name is null ? "" : b.Name + " ")}{b.Device} {b.Mm}",
        Unbind u => $"unbind {u.Handle}",
        PageFault f => $"fault {f.Device}{(f.Pasid is null ? "" : $" pasid={f.Pasid}")} addr=0x{f.Address:x} {f.Access}{(f.Group is null ? "" : $" group={f.Group}")}{(f.Last ? " last" : "")}",
        InvalidateRange i => $"invalidate {i.Mm} 0x{i.Start:x}-0x{i.End:x}",
        MmExit e => $"exit {e.Mm}",
        MmDrop d => $"drop {d.Mm}",
        MapVma v => $"vma {v.Mm} 0x{v.Start:x}-0x{v.End:x} {v.Prot}",
        AllocDomain d => $"domain {d.Name} {d.Type}",
        AttachDomain a => $"attach {a.Domain} {a.Device}{(a.Pasid is null ? "" : $" pasid={a.Pasid}")}",
        DetachDomain a => $"detach {a.Domain} {a.Device}{(a.Pasid is null ? "" : $" pasid={a.Pasid}")}",
        MapIova m => $"map {m.Domain} 0x{m.Iova:x}-0x{m.End:x}",
        UnmapIova u => $"unmap {u.Domain} 0x{u.Iova:x}-0x{u.End:x}",
        _ => call.Op,
    };
}
