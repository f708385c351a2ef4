using Sva.Domain;
using Sva.Formats.Kernels;

namespace Sva.Replay;

/// <summary>
/// The one resolver for a kernel named on the command line or in a script's <c>kernel</c> line: any release ≥ 5.11
/// (<c>6.15</c>, <c>v6.8-rc3</c>, <c>6.8.0-31-generic</c>) resolves to the rule set covering it, said once on stderr
/// (<c>6.15 → rules of 6.11 (6.11 onwards)</c>); a path ending in <c>.toml</c> (or holding a <c>/</c>) is a kernel file.
/// Anything else is exit 2 with the list.
/// </summary>
public static class KernelArg
{
    private static readonly HashSet<string> said = new(StringComparer.Ordinal);

    public static KernelVersion Resolve(string text, bool quiet = false)
    {
        if (KernelFiles.LooksLikeFile(text.Trim()))
        {
            try { return KernelFiles.Load(text.Trim(), p => File.Exists(p) ? File.ReadAllText(p) : null); }
            catch (KernelFileException ex) { throw new UserInputException(ex.Message); }
            catch (IOException ex) { throw new UserInputException($"{text}: {ex.Message}"); }
            catch (UnauthorizedAccessException ex) { throw new UserInputException($"{text}: {ex.Message}"); }
        }
        var r = KernelVersions.Resolve(text) ?? throw new UnsupportedKernelException(text);
        if (!quiet && r.Note is { } note)
            lock (said)
                if (said.Add(note)) Output.Info(note);
        return r.Version;
    }
}
