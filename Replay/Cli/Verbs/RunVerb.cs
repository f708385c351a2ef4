using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Commands;
using Sva.Domain;
using Sva.Formats.Script;

namespace Sva.Replay.Verbs;

public static class RunVerb
{
    public static Command Build(CliCommon common)
    {
        var file = new Argument<FileInfo>("file") { Description = "A .sva scenario script (grammar in the README and below)" };
        var kernel = new Option<string?>("--kernel") { Description = $"Kernel version whose rules decide the calls; overrides the script's 'kernel' line (default 6.8). Supported: {KernelVersions.SupportedList}" };
        var session = new Option<string?>("--session") { Description = "Session name (at most 200 characters); an existing session is continued (same kernel only). Default: the script's name plus a unique suffix" };
        var chunk = new Option<int>("--chunk") { Description = "Calls decided and appended per transaction (a version conflict re-decides the chunk)", DefaultValueFactory = _ => 64 };
        var cmd = new Command("run", "Run a .sva script: each call is decided under the kernel version's rules, recorded as events, and its outcome printed (one line per call)\n\nScript grammar:\n" + ScriptParser.Grammar)
        {
            file, kernel, session, chunk, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            var path = pr.GetValue(file)!;
            var script = ScriptParser.Parse(await InputFiles.ReadAllTextAsync(path, ct), path.Name);
            var kernelName = pr.GetValue(kernel) ?? script.Kernel ?? "6.8";
            var version = KernelVersions.Get(kernelName);
            var sessionName = pr.GetValue(session) ?? $"{DefaultStem(path.Name)}-{Guid.NewGuid().ToString("N")[..6]}";
            await using var host = await common.OpenAsync(pr, ct);
            var calls = script.Lines.Select(l => new SourcedCall(l.Call, l.Source)).ToList();
            var result = await host.Dispatcher.SendAsync<RecordCalls, RecordResult>(
                new RecordCalls(sessionName, version.Name, path.FullName, calls, pr.GetValue(chunk)), ct);
            var json = pr.GetValue(common.Json);
            var lineOf = script.Lines.ToDictionary(l => l.Source, l => l.Line);
            if (json)
            {
                foreach (var c in result.Calls) Output.JsonLine(CallJson(result.Session, c, c.Call.Source is { } s ? lineOf[s] : null));
            }
            else
            {
                Output.Info($"session {result.Session} (kernel {result.Kernel}){(result.Created ? "" : ", continued")}: {result.Calls.Count} calls, last seq {result.LastSeq}{(result.Conflicts > 0 ? $", {result.Conflicts} version conflicts re-decided" : "")}");
                var t = Output.Table("line", "call", "outcome", "seq");
                foreach (var c in result.Calls)
                    t.Row(c.Call.Source is { } s ? lineOf[s] : null, Describe(c.Call.Call), c.Outcome.Describe(), c.LastSeq);
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
        if (o.Op == "fault") { j["response"] = o.Response; j["pasid"] = o.Pasid; if (o.Domain is not null) j["domain"] = o.Domain; }
        if (o.Op == "domain") j["domain"] = o.Domain;
        j["reason"] = o.Reason;
        j["events"] = new JsonArray(c.Events.Select(e => (JsonNode)JsonValue.Create(EventTypes.NameOf(e))!).ToArray());
        return j;
    }

    public static string Describe(KernelCall call) => call switch
    {
        ProbeDevice d => $"device {d.Device} pasids={d.MaxPasids}",
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
