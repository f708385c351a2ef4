using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace Sva.Tests.Support;

/// <summary>What one run of the built sva CLI printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

    public JsonObject Json() => JsonNode.Parse(Stdout) as JsonObject ?? throw new InvalidOperationException($"not a JSON object:\n{this}");

    public List<JsonObject> JsonLines() =>
        Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList();
}

/// <summary>
/// Runs the sva CLI that the test project's build copied beside it (sva.dll), against a given database,
/// as a user would: a separate process, its exit code, stdout and stderr. Linked into every test project
/// that runs the CLI (tests/Support), so there is one way to do it.
/// </summary>
public static class SvaCli
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "sva.dll");

    public static string UniqueSession(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    public static Process Start(string connectionString, string repo, IReadOnlyDictionary<string, string>? env, params string[] args) =>
        Start(connectionString, repo, env, [], args);

    /// <summary>As above, run under <paramref name="wrapper"/> (a command and its arguments, e.g. setpriv dropping
    /// the capabilities that let root read and write any file), when it is not empty.</summary>
    public static Process Start(string connectionString, string repo, IReadOnlyDictionary<string, string>? env, IReadOnlyList<string> wrapper, params string[] args)
    {
        var psi = new ProcessStartInfo(wrapper.Count > 0 ? wrapper[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (wrapper.Count > 0)
        {
            foreach (var w in wrapper.Skip(1)) psi.ArgumentList.Add(w);
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SVA_DB"] = connectionString;
        psi.Environment["SVA_REPO"] = repo;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
    }

    public static Task<CliResult> RunAsync(string connectionString, string repo, IReadOnlyDictionary<string, string>? env, params string[] args) =>
        RunAsync(connectionString, repo, env, [], args);

    public static async Task<CliResult> RunAsync(string connectionString, string repo, IReadOnlyDictionary<string, string>? env, IReadOnlyList<string> wrapper, params string[] args)
    {
        using var p = Start(connectionString, repo, env, wrapper, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(cts.Token);
        return new CliResult(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Writes a file in a fresh directory under the temp folder (its name is kept: it shows in file:line).</summary>
    /// <summary>Runs a postgres-init script (pg-up.sh, pg-down.sh, ...) of <paramref name="repo"/> for the cluster at
    /// <paramref name="port"/> with its data in <paramref name="data"/>; returns its stdout, throws on a non-zero exit.</summary>
    public static async Task<string> PostgresScriptAsync(string repo, int port, string data, string script, params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(repo, "postgres-init", script));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SVA_PG_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["SVA_PG_DATA"] = data;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script} {string.Join(' ', args)}: exit {p.ExitCode}\n{await e}");
        return await o;
    }

    public static string WriteTemp(string area, string name, string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), area, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }
}
