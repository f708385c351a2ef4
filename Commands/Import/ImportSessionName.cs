using System.Text;

namespace Sva.Commands;

/// <summary>The session an import records into when none is given.</summary>
public static class ImportSessionName
{
    /// <summary>"ftrace-sva-smmu-2-3f2a9c1e-6.8": the file's stem, the first 8 hex digits of its identity, the kernel
    /// (and the format when it was forced to something detection would not choose).</summary>
    public static string Default(string fileName, string identity, string kernel, string? forcedFormat)
    {
        var stem = Path.GetFileNameWithoutExtension(fileName);
        var sb = new StringBuilder();
        foreach (var c in stem)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
        if (sb.Length == 0) sb.Append("capture");
        if (sb.Length > 80) sb.Length = 80;
        var id = identity.StartsWith("session:", StringComparison.Ordinal) ? CaptureHash.OfText(identity) : identity;
        sb.Append('-').Append(id.AsSpan(0, Math.Min(8, id.Length))).Append('-').Append(kernel);
        if (forcedFormat is not null) sb.Append('-').Append(forcedFormat);
        if (ImportRegistry.MappingVersion > 1) sb.Append("-m").Append(ImportRegistry.MappingVersion);
        return sb.ToString();
    }
}

internal static class ImportText
{
    /// <summary>A line of input shortened for a message (line breaks folded).</summary>
    public static string Short(string text, int max = 120)
    {
        var t = text.ReplaceLineEndings(" ").Trim();
        return t.Length <= max ? t : t[..(max - 3)] + "...";
    }

    public static string Prefix(string hash) => hash.Length > 16 ? hash[..16] : hash;
}
