using System.Diagnostics;
using System.Text;
using Sva.EventStore;
using Sva.Projections;
using Xunit;

namespace Sva.Cli.Tests;

/// <summary>The real database (SVA_DB or the local cluster from postgres-init) and a way to run the built sva CLI.</summary>
public sealed class CliFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";
    public IEventStore Store { get; private set; } = null!;
    public string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public string SvaDll => SvaCli.Dll;

    public async Task InitializeAsync()
    {
        ConnectionString = await LocalCluster.ResolveConnectionStringAsync();
        Store = await SvaStoreSetup.OpenAsync(ConnectionString);
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    public string Example(string name) => Path.Combine(Repo, "examples", name);

    public static string UniqueSession(string prefix) => SvaCli.UniqueSession(prefix);

    public Task<CliResult> RunAsync(params string[] args) => RunWithAsync(ConnectionString, args);

    public Task<CliResult> RunWithAsync(string connectionString, params string[] args) => RunEnvAsync(connectionString, null, args);

    public Task<CliResult> RunEnvAsync(string connectionString, IReadOnlyDictionary<string, string>? env, params string[] args) =>
        SvaCli.RunAsync(connectionString, Repo, env, args);

    public string WriteTemp(string name, string text) => SvaCli.WriteTemp("sva-cli-tests", name, text);
}

[CollectionDefinition("cli")]
public sealed class CliCollection : ICollectionFixture<CliFixture>;
