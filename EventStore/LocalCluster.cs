using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Sva.EventStore;

/// <summary>Finds the database for development and tests: <c>SVA_DB</c> when set, else the repo's throwaway local cluster.</summary>
public static class LocalCluster
{
    /// <summary>Solution files that mark the repository root (.slnx is what `dotnet new sln` makes since .NET 10).</summary>
    private static readonly string[] RootMarkers = ["Sva.EventSourced.sln", "Sva.EventSourced.slnx"];

    private static readonly string ScriptRelativePath = Path.Combine("postgres-init", "pg-up.sh");
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _resolved;

    /// <summary>How long pg-up.sh may take (a cold start on a fresh machine installs PostgreSQL with apt-get).</summary>
    public static TimeSpan ScriptTimeout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Returns <c>SVA_DB</c> when set; else runs postgres-init/pg-up.sh (found by walking up from
    /// <see cref="AppContext.BaseDirectory"/> and the current directory to the folder holding Sva.EventSourced.sln[x],
    /// or taken from <c>SVA_REPO</c>) and returns the connection string it prints. The result is cached per process.
    /// </summary>
    /// <exception cref="LocalClusterException">The repository or the script was not found, or the script failed (its stderr is in the message).</exception>
    public static async Task<string> ResolveConnectionStringAsync(CancellationToken ct = default)
    {
        var fromEnv = Environment.GetEnvironmentVariable("SVA_DB");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return fromEnv.Trim();

        await Gate.WaitAsync(ct);
        try
        {
            if (_resolved is not null) return _resolved;
            var repo = FindRepoRoot() ?? throw new LocalClusterException(
                "cannot find the repository root (a folder holding Sva.EventSourced.sln or postgres-init/pg-up.sh) above "
                + $"'{AppContext.BaseDirectory}' or '{Directory.GetCurrentDirectory()}'; set SVA_REPO to it, or SVA_DB to a connection string");
            var script = Path.Combine(repo, ScriptRelativePath);
            if (!File.Exists(script)) throw new LocalClusterException($"'{script}' does not exist (SVA_REPO or repository root '{repo}')");
            _resolved = await RunScriptAsync(script, ct);
            return _resolved;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The repository root: <c>SVA_REPO</c>, else the nearest folder above the app base directory or the current
    /// directory that holds Sva.EventSourced.sln[x]; failing that, one that holds postgres-init/pg-up.sh.</summary>
    public static string? FindRepoRoot()
    {
        var env = Environment.GetEnvironmentVariable("SVA_REPO");
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);

        string[] starts = [AppContext.BaseDirectory, Directory.GetCurrentDirectory()];
        foreach (var match in new Func<string, bool>[]
                 {
                     dir => RootMarkers.Any(m => File.Exists(Path.Combine(dir, m))),
                     dir => File.Exists(Path.Combine(dir, ScriptRelativePath)),
                 })
        {
            foreach (var start in starts)
            {
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    if (match(dir.FullName)) return dir.FullName;
                }
            }
        }

        return null;
    }

    private static async Task<string> RunScriptAsync(string script, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(script);

        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException)
        {
            throw new LocalClusterException($"cannot run 'bash {script}': {ex.Message}", null, ex);
        }

        process.StandardInput.Close();
        var stdoutTask = process.StandardOutput.ReadToEndAsync(ct);
        var stderrTask = process.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            ct.ThrowIfCancellationRequested();
            var partial = await SafeAsync(stderrTask);
            throw new LocalClusterException($"'{script}' did not finish within {ScriptTimeout}", partial);
        }

        var stdout = await stdoutTask;
        var stderr = await stderrTask;
        if (process.ExitCode != 0)
            throw new LocalClusterException($"'{script}' failed with exit code {process.ExitCode}", stderr);

        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (line is null || !line.Contains("Host=", StringComparison.OrdinalIgnoreCase))
            throw new LocalClusterException($"'{script}' succeeded but printed no connection string (stdout: '{stdout.Trim()}')", stderr);
        return line;
    }

    private static async Task<string?> SafeAsync(Task<string> t)
    {
        try
        {
            return await t.WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception)
        {
            return null;
        }
    }
}
