using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections;

namespace Sva.Replay.Verbs;

/// <summary>
/// Steps through a session one event at a time, showing the PASID tables, domains, handles and the
/// event just applied. On a terminal: → / n next, ← / p previous, g goto, q quit. With stdin piped:
/// one command per line (n, p, g SEQ, q), each printing the view, so it can be scripted and tested.
/// </summary>
public static class StepVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name" };
        var at = new Option<long>("--at") { Description = "Seq to start at (default 0: before the first event)" };
        var cmd = new Command("step", "Step through a session event by event (terminal: →/n next, ←/p previous, g goto, q quit; piped stdin: lines 'n', 'p', 'g SEQ', 'q')") { session, at };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var info = await host.SessionAsync(pr.GetValue(session)!, ct);
            var seq = pr.GetValue(at);
            if (seq < 0 || seq > info.Version) throw new UserInputException($"--at {seq}: session '{info.Id}' has seqs 0..{info.Version}");
            var interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected;
            while (true)
            {
                var state = await StateLoader.LoadAsync(host.Store, info.Id, seq, ct: ct);
                JsonObject? applied = null;
                if (seq > 0)
                    await foreach (var e in host.Store.ReadSessionAsync(info.Id, seq, seq, ct))
                        applied = new JsonObject { ["seq"] = e.Seq, ["type"] = e.Type, ["data"] = JsonNode.Parse(e.DataJson), ["source"] = EventCodec.Metadata(e).Source };
                if (interactive) Output.Console.Clear();
                Output.Console.WriteLine($"── step {seq}/{info.Version} ──");
                Output.Console.WriteLine(applied is null ? "before the first event" : $"event just applied: seq {applied["seq"]} {applied["type"]} {applied["data"]!.ToJsonString()}{(applied["source"] is { } src ? $"  ({src})" : "")}");
                StateVerb.Render(StateView.Of(info.Id, info.Kernel, state));
                var next = interactive ? ReadKey(seq, info.Version) : await ReadLineCommand(seq, info.Version);
                if (next is null) return 0;
                seq = next.Value;
            }
        }));
        return cmd;
    }

    private static long? ReadKey(long seq, long max)
    {
        Output.Console.MarkupLine("[grey]→/n next  ←/p previous  g goto  q quit[/]");
        while (true)
        {
            var k = Console.ReadKey(intercept: true);
            switch (k.Key)
            {
                case ConsoleKey.RightArrow or ConsoleKey.N or ConsoleKey.Spacebar: return Math.Min(seq + 1, max);
                case ConsoleKey.LeftArrow or ConsoleKey.P or ConsoleKey.Backspace: return Math.Max(seq - 1, 0);
                case ConsoleKey.Home: return 0;
                case ConsoleKey.End: return max;
                case ConsoleKey.G:
                    var target = Output.Console.Prompt(new TextPrompt<long>($"go to seq (0..{max}):").Validate(v => v >= 0 && v <= max));
                    return target;
                case ConsoleKey.Q or ConsoleKey.Escape: return null;
            }
        }
    }

    private static async Task<long?> ReadLineCommand(long seq, long max)
    {
        while (await Console.In.ReadLineAsync() is { } line)
        {
            var words = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            switch (words[0])
            {
                case "n" or "next": return Math.Min(seq + 1, max);
                case "p" or "prev": return Math.Max(seq - 1, 0);
                case "g" or "goto" when words.Length == 2 && long.TryParse(words[1], out var to) && to >= 0 && to <= max: return to;
                case "q" or "quit": return null;
                default: Output.Error($"step: unknown command '{line.Trim()}' (n, p, g SEQ with 0..{max}, q)"); break;
            }
        }
        return null;
    }
}
