using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Generate;
using Sva.Projections;
using Xunit;

namespace Sva.TimeTravel.Tests;

/// <summary>
/// The real database (SVA_DB or the local cluster from postgres-init), a way to run the built sva CLI, and one
/// generated session shared by the tests (recorded by 'sva generate --session', so that path is exercised too),
/// with the generator's own in-memory events beside it as the expectation.
/// </summary>
public sealed class TtFixture : IAsyncLifetime
{
    public static readonly WorkloadOptions Workload = new(6, 10, 30_000, 5);

    public string ConnectionString { get; private set; } = "";
    public IEventStore Store { get; private set; } = null!;
    public string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");
    public string SvaDll => SvaCli.Dll;
    public string Generated { get; } = UniqueSession("ttgen");
    public List<GeneratedCall> Calls { get; } = WorkloadGenerator.Generate(Workload).ToList();
    public List<SvaEvent> Events => Calls.SelectMany(c => c.Events).ToList();

    public async Task InitializeAsync()
    {
        ConnectionString = await LocalCluster.ResolveConnectionStringAsync();
        Store = await SvaStoreSetup.OpenAsync(ConnectionString);
        var r = await RunAsync("generate", "--devices", "6", "--mms", "10", "--events", "30000", "--seed", "5", "--session", Generated, "--json");
        if (r.ExitCode != 0) throw new InvalidOperationException("sva generate failed: " + r);
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    public static string UniqueSession(string prefix) => SvaCli.UniqueSession(prefix);

    public string Example(string name) => Path.Combine(Repo, "examples", name);

    public Task<CliResult> RunAsync(params string[] args) => SvaCli.RunAsync(ConnectionString, Repo, null, args);

    public string WriteTemp(string name, string text) => SvaCli.WriteTemp("sva-tt-tests", name, text);

    /// <summary>The state after the first <paramref name="seq"/> events, folded in memory.</summary>
    public static string StateJson(IEnumerable<SvaEvent> events, long seq) => Evolve.Fold(events.Take((int)seq)).ToSnapshotJson();
}

[CollectionDefinition("tt")]
public sealed class TtCollection : ICollectionFixture<TtFixture>;
