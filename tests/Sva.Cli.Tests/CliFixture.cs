using System.Diagnostics;
using System.Text;
using Sva.EventStore;
using Sva.Projections;
using Xunit;

namespace Sva.Cli.Tests;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>The real database (SVA_DB or the local cluster from postgres-init) and a way to run the built sva CLI.</summary>
public sealed class CliFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";
    public PgEventStore Store { get; private set; } = null!;
    public string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public string SvaDll { get; } = Path.Combine(AppContext.BaseDirectory, "sva.dll");

    public async Task InitializeAsync()
    {
        ConnectionString = await LocalCluster.ResolveConnectionStringAsync();
        Store = PgEventStore.Create(ConnectionString, [new SvaInlineProjection()]);
        await Store.EnsureSchemaAsync();
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    public string Example(string name) => Path.Combine(Repo, "examples", name);

    public static string UniqueSession(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    public Task<CliResult> RunAsync(params string[] args) => RunWithAsync(ConnectionString, args);

    public Task<CliResult> RunWithAsync(string connectionString, params string[] args) => RunEnvAsync(connectionString, null, args);

    public async Task<CliResult> RunEnvAsync(string connectionString, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(SvaDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SVA_DB"] = connectionString;
        psi.Environment["SVA_REPO"] = Repo;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await p.WaitForExitAsync(cts.Token);
        return new CliResult(p.ExitCode, await stdout, await stderr);
    }

    public string WriteTemp(string name, string text)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sva-cli-tests", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }
}

[CollectionDefinition("cli")]
public sealed class CliCollection : ICollectionFixture<CliFixture>;
