using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Sva.Replay;

/// <summary>Where verbs write: JSON (one object per line) or Spectre tables on stdout; messages on stderr.</summary>
public static class Output
{
    private static readonly JsonSerializerOptions compact = new() { WriteIndented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IAnsiConsole Console { get; } = CreateConsole();

    private static IAnsiConsole CreateConsole()
    {
        var c = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(System.Console.Out),
            Ansi = System.Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = System.Console.IsOutputRedirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
        });
        if (System.Console.IsOutputRedirected) c.Profile.Width = 200; // a pipe or file: do not wrap at 80
        return c;
    }

    public static void JsonLine(JsonNode node) => System.Console.Out.WriteLine(node.ToJsonString(compact));
    public static void JsonDocument(JsonNode node) => System.Console.Out.WriteLine(node.ToJsonString(indented));

    /// <summary>A message on stderr; control characters (a NUL, an ESC echoed from input) are escaped, line breaks kept.</summary>
    public static void Error(string message) => System.Console.Error.WriteLine($"sva: {Sva.Formats.InputLimits.Escape(message, keepNewlines: true)}");

    /// <summary>
    /// Runs <paramref name="work"/> with a Spectre.Console progress bar on stderr when stderr is a terminal (nothing extra
    /// when it is not). The work reports its progress as a count out of <paramref name="total"/> (0: unknown; negative: no bar).
    /// </summary>
    public static async Task<T> WithProgressAsync<T>(string title, long total, Func<Action<long, string?>, Task<T>> work)
    {
        if (System.Console.IsErrorRedirected || total < 0) return await work((_, _) => { });
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Error) });
        return await console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, total));
                return await work((done, text) =>
                {
                    task.Value = Math.Min(done, task.MaxValue);
                    if (text is not null) task.Description = Markup.Escape(text);
                });
            });
    }
    public static void Info(string message) => System.Console.Error.WriteLine(message);

    public static Table Table(params string[] columns)
    {
        var t = new Table().Border(TableBorder.Simple);
        foreach (var c in columns) t.AddColumn(new TableColumn(Markup.Escape(c)));
        return t;
    }

    public static void Row(this Table t, params object?[] cells) =>
        t.AddRow(cells.Select(c => Markup.Escape(c?.ToString() ?? "-")).ToArray());
}
