using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Sva.Formats;

namespace Sva.Replay;

/// <summary>
/// Usage errors in plain words, exit 2: every typed option gets a parser that says what it expected (a seq, a PASID,
/// a count) instead of a .NET type name, and every parse error (unknown verb or option, missing argument, bad value,
/// a range the wrong way round) is printed once, input escaped, with exit code 2.
/// </summary>
public static class CliParsing
{
    public const string SeqRange = "a whole number 0..2^63-1";
    public const string PasidRange = "a whole number 0..2^20-1";

    /// <summary>Installs the value parsers on every typed option of the tree.</summary>
    public static void Install(Command command)
    {
        foreach (var o in command.Options) Install(o);
        foreach (var a in command.Arguments.Where(a => a.Name == "session"))
            a.Validators.Add(r => CheckSessionName(r, "<session>"));
        foreach (var c in command.Subcommands) Install(c);
    }

    /// <summary>A session name is at most <see cref="InputLimits.MaxNameLength"/> characters, without control characters.</summary>
    public static string? SessionNameProblem(string name, string what) =>
        string.IsNullOrWhiteSpace(name) ? $"{what}: a session name cannot be empty"
        : Sva.EventStore.SessionName.Problem(name) is { } p ? $"{what}: session name '{InputLimits.Quote(name)}' {p}"
        : null;

    private static void CheckSessionName(SymbolResult r, string what)
    {
        foreach (var t in r.Tokens)
            if (SessionNameProblem(t.Value, what) is { } problem) r.AddError(problem);
    }

    private static void Install(Option option)
    {
        var name = option.Name;
        var seq = name is "--at" or "--from" or "--to";
        if (option is Option<string> or Option<string?> && name.EndsWith("session", StringComparison.Ordinal))
            option.Validators.Add(r => CheckSessionName(r, name));
        switch (option)
        {
            case Option<long> o:
                o.CustomParser = r => (long)Whole(r, name, seq ? "a seq" : "a whole number", 0, long.MaxValue, seq ? SeqRange : "0..2^63-1");
                break;
            case Option<long?> o:
                o.CustomParser = r => (long)Whole(r, name, seq ? "a seq" : "a whole number", 0, long.MaxValue, seq ? SeqRange : "0..2^63-1");
                break;
            case Option<int> o:
                o.CustomParser = r => (int)Whole(r, name, "a whole number", 0, int.MaxValue, "0..2^31-1");
                break;
            case Option<int?> o when name == "--pasid":
                o.CustomParser = r => (int)Whole(r, name, "a PASID", 0, (1 << 20) - 1, PasidRange);
                break;
            case Option<int?> o:
                o.CustomParser = r => (int)Whole(r, name, "a whole number", 0, int.MaxValue, "0..2^31-1");
                break;
            case Option<ulong> o:
                o.CustomParser = r => Whole(r, name, "a whole number", 0, ulong.MaxValue, "0..2^64-1");
                break;
        }
    }

    /// <summary>A decimal whole number in [min, max]; otherwise an error "--at: '1e9' is not a seq (a whole number 0..2^63-1)".</summary>
    private static ulong Whole(ArgumentResult r, string option, string what, ulong min, ulong max, string range)
    {
        var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max) return v;
        r.AddError($"{option}: '{InputLimits.Quote(text)}' is not {what}{(range.StartsWith("a ", StringComparison.Ordinal) ? $" ({range})" : $" in {range}")}");
        return min;
    }

    /// <summary>A validator for verbs with --from and --to seqs: --from must not be after --to.</summary>
    public static void FromNotAfterTo(Command cmd, Option<long> from, Option<long?> to) =>
        cmd.Validators.Add(r =>
        {
            if (r.GetValue(to) is long t && r.GetValue(from) is var f && f > t)
                r.AddError($"--from {f} is after --to {t}: give a range with --from <= --to");
        });

    /// <summary>
    /// When the command line did not parse: every error on stderr (escaped), a pointer to --help, exit 2. Null when it
    /// parsed (or asks for help or the version, which take precedence).
    /// </summary>
    public static int? Reject(ParseResult parsed)
    {
        if (parsed.Errors.Count == 0 || parsed.Action is not System.CommandLine.Invocation.ParseErrorAction) return null;
        var messages = parsed.Errors.Select(e => Plain(e.Message, parsed.CommandResult.Command is RootCommand)).Distinct().ToList();
        if (messages.Count > 1) messages.Remove("no verb given"); // "unknown verb 'x'" says it
        foreach (var m in messages) Output.Error(m);
        var path = new List<string>();
        for (SymbolResult? s = parsed.CommandResult; s is CommandResult c; s = c.Parent)
            if (c.Command is not RootCommand) path.Insert(0, c.Command.Name);
        Output.Info($"usage: see 'sva {string.Join(' ', path.Append("--help"))}'");
        return 2;
    }

    /// <summary>System.CommandLine's own messages, in the words the README uses.</summary>
    private static string Plain(string message, bool atRoot)
    {
        const string unrecognized = "Unrecognized command or argument '";
        if (message.StartsWith(unrecognized, StringComparison.Ordinal) && message.EndsWith("'.", StringComparison.Ordinal))
        {
            var token = message[unrecognized.Length..^2];
            return token.StartsWith('-') ? $"unknown option '{InputLimits.Quote(token)}'"
                : atRoot ? $"unknown verb '{InputLimits.Quote(token)}'"
                : $"unexpected argument '{InputLimits.Quote(token)}' (one argument too many)";
        }
        if (message == "Required command was not provided.") return "no verb given";
        const string missing = "Required argument '";
        if (message.StartsWith(missing, StringComparison.Ordinal) && message.IndexOf('\'', missing.Length) is var end and > 0)
            return $"missing argument <{message[missing.Length..end]}>";
        return message.TrimEnd('.');
    }
}
