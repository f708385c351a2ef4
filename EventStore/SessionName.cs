namespace Sva.EventStore;

/// <summary>
/// The one check of a session name (a stream key): not empty, at most <see cref="MaxLength"/> characters, no character
/// PostgreSQL text cannot store (NUL, half of a UTF-16 surrogate pair), no control character. The store guards its API
/// with it; the commands (run, import) and the CLI's session arguments and options report it as bad input.
/// </summary>
public static class SessionName
{
    /// <summary>The same limit as every other name input may give (<c>InputLimits.MaxNameLength</c>).</summary>
    public const int MaxLength = 200;

    /// <summary>What is wrong with <paramref name="name"/>, worded to follow "session name '…' ", or null when it is usable.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "is empty";
        if (name.Length > MaxLength) return $"is {name.Length} characters long; names are at most {MaxLength} characters";
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1])) { i++; continue; }
            if (c == '\0' || char.IsSurrogate(c)) return $"holds {Describe(c)} at character {i + 1}, which the database cannot store";
        }
        foreach (var c in name)
            if (char.IsControl(c)) return $"holds the control character {Describe(c)}";
        return null;
    }

    private static string Describe(char c) => c == '\0' ? "a NUL byte" : $"U+{(int)c:X4}";
}
