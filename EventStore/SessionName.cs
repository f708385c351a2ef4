namespace Sva.EventStore;

/// <summary>
/// The one session-name check (the CLI's arguments, the record and import commands, the store all ask it): a name is not
/// empty, at most <see cref="MaxLength"/> characters, and holds no character PostgreSQL text cannot store (NUL, an unpaired
/// surrogate) and no control character.
/// </summary>
public static class SessionName
{
    public const int MaxLength = 200;

    /// <summary>What is wrong with <paramref name="name"/> as a session name ("is empty", "is 201 characters long; …"), or null.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "is empty";
        if (name.Length > MaxLength) return $"is {name.Length} characters long; names are at most {MaxLength} characters";
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c == '\0') return $"holds a NUL byte at character {i + 1}, which the database cannot store";
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) return $"holds U+{(int)c:X4} at character {i + 1}, which the database cannot store";
        }
        foreach (var c in name)
            if (char.IsControl(c)) return $"holds the control character U+{(int)c:X4}";
        return null;
    }
}
