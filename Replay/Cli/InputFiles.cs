using Sva.Formats;

namespace Sva.Replay;

/// <summary>
/// Files the CLI reads (a script, a capture) and writes (a timeline page, a Perfetto trace): each problem is a
/// <see cref="UserInputException"/> (exit 2) that names the path and says what is wrong: no such file, is a
/// directory, permission denied, its directory does not exist, not writable.
/// </summary>
public static class InputFiles
{
    /// <summary>Checks that <paramref name="file"/> is a regular file this process can read (before anything is recorded).</summary>
    public static void CheckReadable(FileInfo file)
    {
        var path = file.FullName;
        if (Directory.Exists(path)) throw new UserInputException($"{Show(path)}: is a directory, not a file");
        if (!File.Exists(path))
        {
            var dir = Path.GetDirectoryName(path);
            throw new UserInputException(dir is not null && !Directory.Exists(dir)
                ? $"{Show(path)}: no such file (directory {Show(dir)} does not exist)"
                : $"{Show(path)}: no such file");
        }
        try
        {
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            if (!s.CanRead) throw new UserInputException($"{Show(path)}: not readable");
        }
        catch (UnauthorizedAccessException) { throw new UserInputException($"{Show(path)}: permission denied (cannot read it)"); }
        catch (IOException e) { throw new UserInputException($"{Show(path)}: cannot read it: {e.Message}"); }
    }

    /// <summary>The whole text of a readable file (UTF-8; invalid bytes become U+FFFD).</summary>
    public static async Task<string> ReadAllTextAsync(FileInfo file, CancellationToken ct)
    {
        CheckReadable(file);
        try { return await File.ReadAllTextAsync(file.FullName, ct); }
        catch (UnauthorizedAccessException) { throw new UserInputException($"{Show(file.FullName)}: permission denied (cannot read it)"); }
        catch (IOException e) when (e is not FileNotFoundException) { throw new UserInputException($"{Show(file.FullName)}: cannot read it: {e.Message}"); }
    }

    /// <summary>
    /// Checks, before any work, that <paramref name="file"/> can be written: not a directory, its directory exists,
    /// and it can be created or replaced (a file this creates to find out is removed again).
    /// </summary>
    public static void CheckWritable(FileInfo file, string option)
    {
        var path = file.FullName;
        if (Directory.Exists(path)) throw new UserInputException($"{option} {Show(path)}: is a directory; give a file name");
        var dir = Path.GetDirectoryName(path);
        if (dir is not null && !Directory.Exists(dir))
            throw new UserInputException($"{option} {Show(path)}: directory {Show(dir)} does not exist");
        var existed = File.Exists(path);
        try
        {
            using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1)) { }
            if (!existed) File.Delete(path);
        }
        catch (UnauthorizedAccessException) { throw new UserInputException($"{option} {Show(path)}: permission denied (cannot write it)"); }
        catch (IOException e) { throw new UserInputException($"{option} {Show(path)}: cannot write it: {e.Message}"); }
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="file"/>; a failure names the path (exit 2).</summary>
    public static async Task WriteAllTextAsync(FileInfo file, string option, string text, CancellationToken ct)
    {
        CheckWritable(file, option);
        try { await File.WriteAllTextAsync(file.FullName, text, ct); }
        catch (UnauthorizedAccessException) { throw new UserInputException($"{option} {Show(file.FullName)}: permission denied (cannot write it)"); }
        catch (IOException e) { throw new UserInputException($"{option} {Show(file.FullName)}: cannot write it: {e.Message}"); }
    }

    private static string Show(string path) => InputLimits.Escape(path);
}
