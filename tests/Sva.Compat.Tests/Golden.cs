using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Npgsql;
using Sva.EventStore;

namespace Sva.Compat.Tests;

/// <summary>
/// One golden database under tests/data/compat/NAME: <c>db.dump</c> (pg_dump -Fc written by the release NAME names),
/// <c>sessions.tsv</c> (its sessions and how each was made) and <c>expected/</c> (that release's own answers on it,
/// files over 64 KiB gzipped). Made by tests/data/compat/make-golden.sh; never rewritten, never deleted.
/// </summary>
public sealed class Golden
{
    public string Name { get; }
    public string Dir { get; }
    public IReadOnlyList<string> Sessions { get; }

    private Golden(string dir)
    {
        Dir = dir;
        Name = Path.GetFileName(dir);
        Sessions = File.ReadAllLines(Path.Combine(dir, "sessions.tsv")).Skip(1)
            .Where(l => l.Length > 0).Select(l => l.Split('\t')[0]).ToList();
    }

    public static string Repo { get; } = LocalCluster.FindRepoRoot() ?? throw new InvalidOperationException("repository root not found");

    public static string Root => Path.Combine(Repo, "tests", "data", "compat");

    public static IReadOnlyList<Golden> All { get; } =
        Directory.GetDirectories(Root).Where(d => File.Exists(Path.Combine(d, "db.dump"))).Order(StringComparer.Ordinal)
            .Select(d => new Golden(d)).ToList();

    public static Golden Get(string name) => All.Single(g => g.Name == name);

    /// <summary>Every golden database's name (xunit theory data).</summary>
    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var g in All) data.Add(g.Name);
        return data;
    }

    /// <summary>Every (golden database, session) pair.</summary>
    public static TheoryData<string, string> GoldenSessions()
    {
        var data = new TheoryData<string, string>();
        foreach (var g in All)
        foreach (var s in g.Sessions) data.Add(g.Name, s);
        return data;
    }

    /// <summary>An expected answer's text (FILE, or FILE.gz), or null when that release did not write it.</summary>
    public string? Expected(string file)
    {
        var path = Path.Combine(Dir, "expected", file);
        if (File.Exists(path)) return File.ReadAllText(path);
        if (!File.Exists(path + ".gz")) return null;
        using var gz = new GZipStream(File.OpenRead(path + ".gz"), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return reader.ReadToEnd();
    }

    private static readonly ConcurrentDictionary<string, Lazy<Task<string>>> Shared = new();

    /// <summary>A restored copy shared by the tests that only read (restored once per test run).</summary>
    public Task<string> SharedCopyAsync() =>
        Shared.GetOrAdd(Name, _ => new Lazy<Task<string>>(() => RestoreAsync("r"))).Value;

    /// <summary>A copy of its own, for a test that writes (continues sessions, rebuilds projections).</summary>
    public Task<string> RestoreAsync(string purpose) => Scratch.RestoreAsync(this, purpose);
}

/// <summary>Scratch databases on the test cluster (SVA_DB's server, or postgres-init's), restored from a dump with pg_restore.</summary>
public static class Scratch
{
    private static readonly ConcurrentBag<string> Made = new();

    public static async Task<string> RestoreAsync(Golden golden, string purpose)
    {
        var admin = new NpgsqlConnectionStringBuilder(await LocalCluster.ResolveConnectionStringAsync());
        var db = $"sva_compat_{Sanitize(golden.Name)}_{purpose}_{Guid.NewGuid().ToString("N")[..8]}";
        await AdminAsync(admin, $"CREATE DATABASE {db}");
        Made.Add(db);

        // --no-owner: objects belong to the restoring login; the grants to postgres-init's roles (sva_writer, sva_reader) are kept.
        var psi = new ProcessStartInfo(PgRestore())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--no-owner", "--exit-on-error", "-h", admin.Host!, "-p", admin.Port.ToString(),
                     "-U", admin.Username!, "-d", db, Path.Combine(golden.Dir, "db.dump"),
                 })
            psi.ArgumentList.Add(a);
        if (!string.IsNullOrEmpty(admin.Password)) psi.Environment["PGPASSWORD"] = admin.Password;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"pg_restore of {golden.Dir}/db.dump into {db} failed (exit {p.ExitCode}): {await err}");
        return new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = db }.ConnectionString;
    }

    /// <summary>Drops every scratch database this process made (called once the tests are done).</summary>
    public static async Task DropAllAsync()
    {
        var admin = new NpgsqlConnectionStringBuilder(await LocalCluster.ResolveConnectionStringAsync());
        while (Made.TryTake(out var db)) await AdminAsync(admin, $"DROP DATABASE IF EXISTS {db} WITH (FORCE)");
    }

    private static async Task AdminAsync(NpgsqlConnectionStringBuilder admin, string sql)
    {
        var adminDb = new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = "postgres", Pooling = false };
        await using var conn = new NpgsqlConnection(adminDb.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static string Sanitize(string s) => new(s.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '_').ToArray());

    /// <summary>pg_restore on PATH, else the one of the PostgreSQL 15 packages postgres-init installs.</summary>
    private static string PgRestore()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/lib/postgresql/15/bin"))
        {
            var f = Path.Combine(dir, "pg_restore");
            if (File.Exists(f)) return f;
        }
        throw new InvalidOperationException("pg_restore not found on PATH nor in /usr/lib/postgresql/15/bin (postgres-init/pg-up.sh installs it)");
    }
}

/// <summary>"Says at least what the old release said": every member of the expected JSON is in the actual one with the
/// same value (objects may gain members; arrays keep their length and order). Returns the first difference's path.</summary>
public static class JsonSubset
{
    public static string? FirstDifference(JsonNode? expected, JsonNode? actual, string path = "$")
    {
        switch (expected)
        {
            case null:
                return actual is null ? null : $"{path}: expected null, got {actual.ToJsonString()}";
            case JsonObject eo:
                if (actual is not JsonObject ao) return $"{path}: expected an object, got {Show(actual)}";
                foreach (var (k, v) in eo)
                {
                    if (!ao.ContainsKey(k)) return $"{path}.{k}: missing (expected {Show(v)})";
                    var d = FirstDifference(v, ao[k], $"{path}.{k}");
                    if (d is not null) return d;
                }
                return null;
            case JsonArray ea:
                if (actual is not JsonArray aa) return $"{path}: expected an array, got {Show(actual)}";
                if (ea.Count != aa.Count) return $"{path}: expected {ea.Count} elements, got {aa.Count}";
                for (var i = 0; i < ea.Count; i++)
                {
                    var d = FirstDifference(ea[i], aa[i], $"{path}[{i}]");
                    if (d is not null) return d;
                }
                return null;
            default:
                return JsonNode.DeepEquals(expected, actual) ? null : $"{path}: expected {Show(expected)}, got {Show(actual)}";
        }
    }

    /// <summary>JSON Lines compared line by line (same number of lines).</summary>
    public static string? FirstDifferenceInLines(string expected, string actual)
    {
        var e = Lines(expected);
        var a = Lines(actual);
        for (var i = 0; i < Math.Min(e.Count, a.Count); i++)
        {
            var d = FirstDifference(JsonNode.Parse(e[i]), JsonNode.Parse(a[i]), $"line {i + 1}: $");
            if (d is not null) return d;
        }
        return e.Count == a.Count ? null : $"expected {e.Count} lines, got {a.Count}";
    }

    public static List<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

    private static string Show(JsonNode? n)
    {
        var s = n?.ToJsonString() ?? "null";
        return s.Length > 200 ? s[..200] + "…" : s;
    }
}

/// <summary>Drops the scratch databases when the compatibility tests are done.</summary>
public sealed class ScratchCleanup : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;
    public Task DisposeAsync() => Scratch.DropAllAsync();
}

[CollectionDefinition("compat")]
public sealed class CompatCollection : ICollectionFixture<ScratchCleanup>;
