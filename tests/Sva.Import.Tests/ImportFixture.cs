using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using Sva.EventStore;
using Sva.Projections;

namespace Sva.Import.Tests;

public sealed class ImportFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";
    public IEventStore Store { get; private set; } = null!;
    public string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public string SvaDll => SvaCli.Dll;
    public string TempDir { get; } = Path.Combine(Path.GetTempPath(), "sva-import-tests", Guid.NewGuid().ToString("N")[..8]);

    public async Task InitializeAsync()
    {
        ConnectionString = await LocalCluster.ResolveConnectionStringAsync();
        Store = await SvaStoreSetup.OpenAsync(ConnectionString);
        Directory.CreateDirectory(TempDir);
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        try { Directory.Delete(TempDir, recursive: true); } catch (IOException) { }
    }

    public static string Data(string relative) => Path.Combine(AppContext.BaseDirectory, "data", relative);

    public static string UniqueSession(string prefix) => SvaCli.UniqueSession(prefix);

    public Task<CliResult> RunAsync(params string[] args) => RunWithEnvAsync(null, args);

    public Task<CliResult> RunWithEnvAsync(IReadOnlyDictionary<string, string>? env, params string[] args) =>
        SvaCli.RunAsync(ConnectionString, Repo, env, args);

    public Process Start(IReadOnlyDictionary<string, string>? env, params string[] args) => SvaCli.Start(ConnectionString, Repo, env, args);

    /// <summary>A file in this run's temp directory.</summary>
    public string WriteTemp(string name, string text)
    {
        var dir = Path.Combine(TempDir, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    /// <summary>
    /// A copy of a test capture made unique to this test run by one trailing comment line (after a blank line, so that
    /// no record's free-text tail takes it in): imports are idempotent by content, so without it a database that saw an
    /// earlier run would answer from that run's summary.
    /// </summary>
    public string FreshCopy(string relative, string? trailer = null)
    {
        var text = File.ReadAllText(Data(relative));
        if (text.Length > 0 && !text.EndsWith('\n')) text += "\n";
        return WriteTemp(Path.GetFileName(relative), text + "\n" + (trailer ?? $"# sva import test {Guid.NewGuid():N}") + "\n");
    }

    public async Task<long?> SessionVersionAsync(string session)
    {
        var info = await Store.GetSessionAsync(session);
        return info?.Version;
    }

}

[CollectionDefinition("import")]
public sealed class ImportCollection : ICollectionFixture<ImportFixture>;
