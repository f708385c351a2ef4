using System.Reflection;

namespace Sva.EventStore;

/// <summary>The postgres-init/schema/*.sql files, embedded in this assembly at build time.</summary>
internal static class SchemaScripts
{
    private const string Prefix = "Sva.EventStore.Schema.";

    private static readonly Lazy<IReadOnlyList<(string Name, string Sql)>> Scripts = new(Load);

    public static IReadOnlyList<(string Name, string Sql)> All => Scripts.Value;

    private static IReadOnlyList<(string Name, string Sql)> Load()
    {
        var asm = typeof(SchemaScripts).Assembly;
        var list = new List<(string, string)>();
        foreach (var res in asm.GetManifestResourceNames()
                     .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
                     .OrderBy(n => n, StringComparer.Ordinal))
        {
            using var stream = asm.GetManifestResourceStream(res)
                               ?? throw new InvalidOperationException($"embedded schema resource {res} is missing");
            using var reader = new StreamReader(stream);
            list.Add((res[Prefix.Length..], reader.ReadToEnd()));
        }

        if (list.Count == 0)
            throw new InvalidOperationException("no schema files are embedded in Sva.EventStore (postgres-init/schema/*.sql)");
        return list;
    }
}
