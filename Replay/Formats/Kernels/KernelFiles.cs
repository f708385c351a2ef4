using System.Text;
using Sva.Domain;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Sva.Formats.Kernels;

/// <summary>A kernel file that cannot be used: the message starts with <c>file:line</c> and says what is allowed.</summary>
public sealed class KernelFileException(string message) : Exception(message);

/// <summary>
/// What-if kernels from TOML files: <c>name</c>, <c>parent</c> (a release or another kernel file, relative to this
/// one), optional <c>commit</c> and <c>says</c>, and switch values (<c>switch-name = "value"</c>, see
/// <see cref="KernelSwitches"/>). The version is the parent's rules with those switches set. Its
/// <see cref="KernelOrigin.Definition"/> is the resolved content (the built-in release at the root of the parent chain
/// and every switch value) that a session stores, read back by <see cref="FromDefinition"/>.
/// </summary>
public static class KernelFiles
{
    /// <summary>Version 1 of the stored definition's shape (a flat kernel file whose parent is a release).</summary>
    public const int DefinitionVersion = 1;

    private static readonly string[] Fields = ["name", "parent", "commit", "says"];

    /// <summary>A --kernel argument that names a kernel file rather than a release.</summary>
    public static bool LooksLikeFile(string text) =>
        text.EndsWith(".toml", StringComparison.OrdinalIgnoreCase) || text.Contains('/') || text.Contains('\\');

    /// <summary>Loads <paramref name="path"/> and its parent chain; <paramref name="read"/> returns a file's text or null when it does not exist.</summary>
    public static KernelVersion Load(string path, Func<string, string?> read) =>
        Load(Path.GetFullPath(path), path, read, [], null);

    /// <summary>The version a session stored (<see cref="KernelOrigin.Definition"/>): replays identically whatever happened to the file.</summary>
    public static KernelVersion FromDefinition(string definition, string where) =>
        Parse(definition, where, null, parentFile: _ => throw new KernelFileException($"{where}: a stored kernel definition names a release as its parent"));

    private static KernelVersion Load(string full, string shown, Func<string, string?> read, List<string> chain, string? from)
    {
        var text = read(full) ?? throw new KernelFileException($"{from ?? shown}: no such kernel file '{shown}'");
        chain.Add(full);
        try
        {
            return Parse(text, shown, full, parentFile: p =>
            {
                var parentFull = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(full)!, p.Value));
                if (chain.Contains(parentFull))
                    throw new KernelFileException($"{shown}:{p.Line}: parent '{p.Value}' makes a cycle: {string.Join(" → ", chain.Append(parentFull).Select(Path.GetFileName))}");
                return Load(parentFull, p.Value, read, chain, $"{shown}:{p.Line}");
            });
        }
        finally { chain.RemoveAt(chain.Count - 1); }
    }

    private sealed record Entry(string Key, string Value, int Line);

    private static KernelVersion Parse(string text, string shown, string? full, Func<Entry, KernelVersion> parentFile)
    {
        DocumentSyntax doc;
        try { doc = SyntaxParser.Parse(text, shown); }
        catch (Exception ex) when (ex is not KernelFileException) { throw new KernelFileException($"{shown}: not TOML: {ex.Message}"); }
        var errors = doc.Diagnostics.Where(d => d.Kind == DiagnosticMessageKind.Error).ToList();
        if (errors.Count > 0) throw new KernelFileException($"{shown}:{errors[0].Span.Start.Line + 1}: not TOML: {errors[0].Message}");
        if (doc.Tables.FirstOrDefault() is { } table)
            throw new KernelFileException($"{shown}:{table.Span.Start.Line + 1}: a kernel file has no tables: only name, parent, commit, says and switch-name = \"value\" lines");

        var entries = new List<Entry>();
        foreach (var kv in doc.KeyValues)
        {
            var line = kv.Span.Start.Line + 1;
            var key = kv.Key?.ToString()?.Trim() ?? "";
            if (key.Length > 1 && key[0] == '"' && key[^1] == '"') key = key[1..^1];
            if (kv.Value is not StringValueSyntax sv)
                throw new KernelFileException($"{shown}:{line}: {key} must be a string (key = \"value\")");
            if (entries.Any(e => e.Key == key)) throw new KernelFileException($"{shown}:{line}: {key} is given twice");
            entries.Add(new Entry(key, sv.Value ?? "", line));
        }
        Entry? Field(string k) => entries.FirstOrDefault(e => e.Key == k);

        var name = Field("name") ?? throw new KernelFileException($"{shown}:1: no name = \"...\" (the what-if version's name)");
        if (name.Value.Length == 0 || name.Value.Length > 100 || name.Value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new KernelFileException($"{shown}:{name.Line}: name '{name.Value}' must be 1-100 characters without spaces");
        if (KernelVersions.All.Any(v => string.Equals(v.Name, name.Value, StringComparison.OrdinalIgnoreCase)) || KernelVersions.Aliases.ContainsKey(name.Value))
            throw new KernelFileException($"{shown}:{name.Line}: name '{name.Value}' is a rule set's name; a what-if version needs a name of its own (e.g. {name.Value}+my-patch)");
        var parentEntry = Field("parent") ?? throw new KernelFileException($"{shown}:1: no parent = \"...\" (a release such as 6.8, or another kernel file)");
        KernelVersion parent;
        if (LooksLikeFile(parentEntry.Value)) parent = parentFile(parentEntry);
        else parent = KernelVersions.Resolve(parentEntry.Value)?.Version
            ?? throw new KernelFileException($"{shown}:{parentEntry.Line}: parent '{parentEntry.Value}' is neither a release ≥ {KernelVersions.Oldest} nor a kernel file (.toml); rule sets: {KernelVersions.SupportedList}");

        var rules = parent.Rules;
        var lastSwitchLine = parentEntry.Line;
        foreach (var e in entries.Where(e => !Fields.Contains(e.Key)))
        {
            var sw = KernelSwitches.Find(e.Key)
                ?? throw new KernelFileException($"{shown}:{e.Line}: unknown switch '{e.Key}'; switches: {KernelSwitches.Names} (and name, parent, commit, says)");
            var value = sw.Find(e.Value)
                ?? throw new KernelFileException($"{shown}:{e.Line}: switch {e.Key} has no value '{e.Value}'; allowed: {sw.Allowed}");
            rules = sw.With(rules, value);
            lastSwitchLine = Math.Max(lastSwitchLine, e.Line);
        }
        if (KernelSwitches.Conflicts(rules).FirstOrDefault() is { } conflict)
            throw new KernelFileException($"{shown}:{lastSwitchLine}: {conflict}");

        var root = parent.Origin is { } po ? KernelVersions.Get(po.Base) : parent;
        var changed = KernelSwitches.Of(rules).Where(x => x.Switch.ValueIn(root.Rules) != x.Value).ToList();
        var introduces = changed.SelectMany(x => x.Value.Rules).Distinct().ToList();
        var commit = Field("commit")?.Value;
        var says = Field("says")?.Value;

        var def = new StringBuilder();
        def.Append("# sva kernel definition v").Append(DefinitionVersion).Append('\n');
        def.Append("name = ").Append(Quote(name.Value)).Append('\n');
        def.Append("parent = ").Append(Quote(root.Name)).Append('\n');
        if (commit is not null) def.Append("commit = ").Append(Quote(commit)).Append('\n');
        if (says is not null) def.Append("says = ").Append(Quote(says)).Append('\n');
        foreach (var (sw, v) in KernelSwitches.Of(rules)) def.Append(sw.Name).Append(" = ").Append(Quote(v.Name)).Append('\n');

        var summary = $"what-if on {parent.Name}: " + (changed.Count == 0 ? "no switch changed" : string.Join(", ", changed.Select(x => $"{x.Switch.Name} = {x.Value.Name}")))
            + (says is null ? "" : $" — {says}");
        return new KernelVersion(name.Value, parent.Name, summary, rules, introduces)
        {
            Generation = parent.Generation,
            Origin = new KernelOrigin(full, root.Name, commit, says, def.ToString()),
        };
    }

    private static string Quote(string s)
    {
        var b = new StringBuilder("\"");
        foreach (var c in s)
            b.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\t' => "\\t",
                '\r' => "\\r",
                _ when char.IsControl(c) => $"\\u{(int)c:X4}",
                _ => c.ToString(),
            });
        return b.Append('"').ToString();
    }
}
