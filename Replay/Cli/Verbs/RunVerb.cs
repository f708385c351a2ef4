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
            var bytes = await File.ReadAllBytesAsync(path.FullName, ct);
            var script = ScriptParser.Parse(await InputFiles.ReadAllTextAsync(path, ct), path.Name);
            var kernelName = pr.GetValue(kernel)
                ?? (script.Kernel is { } k && KernelFiles.LooksLikeFile(k) && !Path.IsPathRooted(k) ? Path.Combine(path.DirectoryName ?? ".", k) : script.Kernel)
                ?? "6.8";
            var version = KernelArg.Resolve(kernelName);
            var sessionName = pr.GetValue(session) ?? $"{DefaultStem(path.Name)}-{Guid.NewGuid().ToString("N")[..6]}";
            await using var host = await common.OpenAsync(pr, ct);
            var calls = script.Lines.Select(l => new SourcedCall(l.Call, l.Source)).ToList();
            var json = pr.GetValue(common.Json);
            var lineOf = script.Lines.ToDictionary(l => l.Source, l => l.Line);
            // --json streams: each outcome is printed as its batch commits, nothing is held for the end.
            var rows = new List<RecordedCall>();
            RecordedCall? last = null;
            RecordResult result;
            try
            {
                result = await Output.WithProgressAsync($"run {path.Name}", calls.Count, progress => host.Mediator.Send(new RecordCalls(sessionName, kernelName, path.FullName, calls, pr.GetValue(chunk))
                {
                    Version = version,
                    ScriptHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)),
                    Again = pr.GetValue(again),
                    OnRecorded = c =>
                    {
                        last = c;
                        progress(c.Index + 1, $"run {path.Name}: {c.Index + 1:N0} calls, seq {c.LastSeq:N0}");
                        if (json) Output.JsonLine(CallJson(sessionName, c, c.Call.Source is { } s ? lineOf[s] : null));
                        else rows.Add(c);
                        return ValueTask.CompletedTask;
                    },
                }, ct).AsTask());
            }
            catch (Sva.EventStore.EventStoreUnavailableException e)
            {
                var done = last is null ? "nothing of this run was committed" : $"committed up to seq {last.LastSeq} (script line {(last.Call.Source is { } s ? lineOf[s] : null)})";
                throw new Sva.EventStore.EventStoreUnavailableException(e.Endpoint, new IOException(
                    $"{done}; run the same command again to resume after the last committed call: sva run {path.FullName} --session {sessionName}", e));
            }
            catch (ScriptAlreadyRecordedException e) { throw new UserInputException(e.Message); }
            catch (ScriptBeingRecordedException e) { throw new UserInputException(e.Message); }
            if (result.CopyBeside is { } other)
                Output.Info($"another live writer ({other}) is recording {path.Name} into {sessionName}: this run recorded a full copy of the script beside it (--again)");
            if (result.ResumedAfter > 0)
                Output.Info($"resumed: calls 1..{result.ResumedAfter} of {path.Name} were committed by an interrupted run; recorded the rest");
            if (!json)
            {
                Output.Info($"session {result.Session} (kernel {result.Kernel}){(result.Created ? "" : ", continued")}: {rows.Count} calls, last seq {result.LastSeq}{(result.Conflicts > 0 ? $", {result.Conflicts} version conflicts re-decided" : "")}");
                var t = Output.Table("line", "call", "outcome", "seq");
                var explained = pr.GetValue(explain);
                foreach (var c in rows)
                {
                    t.Row(c.Call.Source is { } s ? lineOf[s] : null, Describe(c.Call.Call), c.Outcome.Describe(), c.LastSeq);
                    if (explained && c.Outcome.Explain() is { } why) t.Row("", "", "  why: " + why, "");
                }
                Output.Console.Write(t);
            }
            return 0;
        }));
        return cmd;
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
        if (o.Op == "fault") { j["response"] = o.Response; j["pasid"] = o.Pasid; if (o.Domain is not null) j["domain"] = o.Domain; if (o.WireCode is int wire) j["wire_code"] = wire; if (o.Handled is not null) j["handled"] = o.Handled; }
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
