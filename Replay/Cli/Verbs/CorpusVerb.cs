using System.CommandLine;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sva.Domain;
using Sva.Formats.Captures;
using Sva.Formats.Import;

namespace Sva.Replay.Verbs;

/// <summary>What one session (or capture) does under A and B: identical, or how many calls differ and the first that does.</summary>
public sealed record CorpusResult(string Session, string Kind, int Calls, int Differing, SourcedKernelCall? First, CallSummary? A, CallSummary? B)
{
    public bool Identical => Differing == 0;

    public JsonObject ToJson(KernelVersion a, KernelVersion b)
    {
        var o = new JsonObject
        {
            ["session"] = Session, ["kind"] = Kind, ["identical"] = Identical, ["calls"] = Calls, ["calls_differing"] = Differing,
        };
        if (First is not null)
        {
            o["line"] = First.Line;
            o["seq"] = First.Seq;
            o["source"] = First.Source;
            o["op"] = First.Call.Op;
            o["call"] = RunVerb.Describe(First.Call);
            o["a"] = new JsonObject { ["kernel"] = a.Name, ["text"] = A!.Text, ["rule"] = A.Rule?.ToJson() };
            o["b"] = new JsonObject { ["kernel"] = b.Name, ["text"] = B!.Text, ["rule"] = B.Rule?.ToJson() };
        }
        return o;
    }
}

/// <summary>
/// <c>sva compare --corpus --kernel A --kernel B</c>: every recorded session (its calls read back from the metadata of
/// its events; for imports the calls they imply) and every capture file of <c>--captures DIR</c> (imported in memory
/// under A: nothing recorded) re-decided under A and B in lockstep, one session per core at a time. Per session only
/// counts and the first divergence are kept: memory does not grow with the size of a session's log.
/// </summary>
public static class CorpusVerb
{
    public static async Task<int> RunAsync(CliCommon common, ParseResult pr, KernelVersion a, KernelVersion b, string? glob,
        DirectoryInfo? captures, FileInfo? html, bool json, CancellationToken ct)
    {
        if (captures is not null && !captures.Exists) throw new UserInputException($"--captures {captures.FullName}: no such directory");
        var results = new ConcurrentBag<CorpusResult>();
        var started = System.Diagnostics.Stopwatch.StartNew();
        long calls = 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct };

        await using (var host = await common.OpenReadOnlyAsync(pr, ct))
        {
            var match = glob is null ? null : new Regex("^" + Regex.Escape(glob).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.CultureInvariant);
            var sessions = (await host.Store.ListSessionsAsync(ct)).Where(s => match is null || match.IsMatch(s.Id)).ToList();
            if (glob is not null && sessions.Count == 0 && captures is null)
                throw new UserInputException($"--sessions '{glob}' matches no session (see 'sva sessions')");
            await Parallel.ForEachAsync(sessions, parallel, async (s, token) =>
            {
                var lockstep = new Lockstep(a, b);
                await foreach (var e in host.Store.ReadSessionAsync(s.Id, 1, long.MaxValue, token))
                    if (Sva.Projections.EventMetadata.RecordedCall(e.Seq, e.Metadata) is { } call) lockstep.Feed(call);
                Interlocked.Add(ref calls, lockstep.Calls);
                results.Add(Result(lockstep, s.Id, "session"));
            });
        }
        if (captures is not null)
        {
            var files = captures.EnumerateFiles("*", SearchOption.AllDirectories).Where(f => !f.Name.StartsWith('.')).OrderBy(f => f.FullName, StringComparer.Ordinal).ToList();
            await Parallel.ForEachAsync(files, parallel, async (f, token) =>
            {
                var r = await CaptureAsync(f, captures, a, b, token);
                Interlocked.Add(ref calls, r.Calls);
                results.Add(r);
            });
        }

        var ordered = results.OrderBy(r => r.Identical).ThenByDescending(r => r.Differing).ThenBy(r => r.Session, StringComparer.Ordinal).ToList();
        var diverging = ordered.Count(r => !r.Identical);
        var seconds = started.Elapsed.TotalSeconds;
        if (json) foreach (var r in ordered) Output.JsonLine(r.ToJson(a, b));
        else Render(ordered, a, b);
        Output.Info($"corpus {a.Name} vs {b.Name}: {ordered.Count} sessions/captures, {diverging} diverging, {calls:N0} calls re-decided under both "
                    + $"in {seconds:F2} s wall, reading the store included ({Environment.ProcessorCount} cores; 'sva bench' measures re-deciding alone)");
        if (html is not null)
        {
            await File.WriteAllTextAsync(html.FullName, Html(ordered, a, b, calls), new UTF8Encoding(false), ct);
            Output.Info($"wrote {html.FullName}");
        }
        return diverging == 0 ? 0 : 1;
    }

    /// <summary>A capture imported in memory under A (the calls it implies), then those calls re-decided under A and B.</summary>
    private static async Task<CorpusResult> CaptureAsync(FileInfo f, DirectoryInfo root, KernelVersion a, KernelVersion b, CancellationToken ct)
    {
        var name = "capture:" + Path.GetRelativePath(root.FullName, f.FullName);
        using var reader = new StreamReader(f.FullName);
        var head = new List<string>();
        for (var i = 0; i < CaptureReader.MaxSniffLineCount && await reader.ReadLineAsync(ct) is { } l; i++) head.Add(l);
        string format;
        try { format = CaptureReader.Detect(head).Name; }
        catch (CaptureDetectionException) { throw new UserInputException($"{f.FullName}: not a capture of a known format (--captures takes capture files only)"); }
        reader.BaseStream.Position = 0;
        reader.DiscardBufferedData();
        var decider = new ImportDecider(a, new SvaState());
        var lockstep = new Lockstep(a, b);
        await foreach (var item in CaptureReader.ReadAsync(reader, f.Name, format, lenient: true, ct))
        {
            if (item is not Observation o) continue;
            var source = o.Source.ToString();
            foreach (var d in decider.Decide(o))
                if (d.FirstOfCall && d.Call is { } c) lockstep.Feed(new SourcedKernelCall(c.Call, source, null));
        }
        return Result(lockstep, name, "capture");
    }

    private static CorpusResult Result(Lockstep l, string session, string kind) => new(session, kind, l.Calls, l.Differing, l.First, l.FirstA, l.FirstB);

    private static void Render(IReadOnlyList<CorpusResult> ordered, KernelVersion a, KernelVersion b)
    {
        var t = Output.Table("session", "calls", "differ", "first divergence", a.Name, b.Name);
        foreach (var r in ordered)
            t.Row(r.Session, r.Calls, r.Identical ? "identical" : r.Differing,
                r.First is null ? "" : $"{Where(r.First)} {RunVerb.Describe(r.First.Call)}",
                r.A is null ? "" : r.A.Explained, r.B is null ? "" : r.B.Explained);
        Output.Console.Write(t);
    }

    private static string Where(SourcedKernelCall c) => c.Line is int l ? $"line {l}" : c.Seq is long s ? $"seq {s}" : "";

    private static string Html(IReadOnlyList<CorpusResult> ordered, KernelVersion a, KernelVersion b, long calls)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        var diverging = ordered.Where(r => !r.Identical).ToList();
        var h = new StringBuilder();
        h.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>sva corpus ").Append(E(a.Name)).Append(" vs ").Append(E(b.Name)).Append("</title>");
        h.Append("<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}"
                 + "th{background:#eee}.d{background:#fff3f3}code{font-size:12px}.small{color:#666;font-size:12px}</style></head><body>");
        h.Append("<h1>What ").Append(E(b.Name)).Append(" does to the corpus (against ").Append(E(a.Name)).Append(")</h1>");
        foreach (var v in new[] { a, b })
            h.Append("<p><b>").Append(E(v.Name)).Append("</b>: ").Append(E(v.Summary))
             .Append(v.Origin is { } o ? $" <span class=\"small\">(kernel file on {E(o.Base)}{(o.Commit is null ? "" : $", commit {E(o.Commit)}")})</span>" : "").Append("</p>");
        h.Append("<p>").Append(ordered.Count).Append(" sessions and captures, <b>").Append(diverging.Count).Append(" diverging</b>, ")
         .Append(ordered.Count - diverging.Count).Append(" identical; ").Append(calls.ToString("N0")).Append(" calls re-decided under both.</p>");
        if (diverging.Count > 0)
        {
            h.Append("<h2>Diverging</h2><table><tr><th>session</th><th>calls differing</th><th>first divergence</th><th>").Append(E(a.Name)).Append("</th><th>").Append(E(b.Name)).Append("</th></tr>");
            foreach (var r in diverging)
            {
                var detail = r.Kind == "session" ? $"<div class=\"small\">detail: <code>sva timeline {E(r.Session)} --html {E(r.Session)}.html</code>, <code>sva compare {E(r.Session)} --kernel {E(a.Name)} --kernel {E(b.Name)}</code></div>" : "";
                h.Append("<tr class=\"d\"><td>").Append(E(r.Session)).Append(detail).Append("</td><td>").Append(r.Differing).Append(" of ").Append(r.Calls)
                 .Append("</td><td>").Append(E(Where(r.First!))).Append(" <code>").Append(E(RunVerb.Describe(r.First!.Call))).Append("</code></td><td>")
                 .Append(E(r.A!.Explained)).Append("</td><td>").Append(E(r.B!.Explained)).Append("</td></tr>");
            }
            h.Append("</table>");
        }
        h.Append("<h2>Identical</h2><p class=\"small\">").Append(string.Join(", ", ordered.Where(r => r.Identical).Select(r => E(r.Session)))).Append("</p>");
        h.Append("</body></html>\n");
        return h.ToString();
    }
}
