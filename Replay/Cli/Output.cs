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
