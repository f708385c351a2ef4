namespace Sva.Projections;

/// <summary>
/// One row of the read model as a Marten document: a kernel object of a session (a device, a PASID-table entry, a domain,
/// an mm, a handle) with its column values as text. Id = session, table and key, so a row is upserted and deleted by key.
/// </summary>
public sealed class ReadModelRow
{
    public string Id { get; set; } = "";
    public string Session { get; set; } = "";
    public string Table { get; set; } = "";
    public string Key { get; set; } = "";
    public string?[] Values { get; set; } = [];

    public static string IdOf(string session, string table, string key) => $"{session}\u001f{table}\u001f{key}";

    public static ReadModelRow From(string session, Row row) => new()
    {
        Id = IdOf(session, row.Table, row.Key),
        Session = session,
        Table = row.Table,
        Key = row.Key,
        Values = row.Values.Select(Text).ToArray(),
    };

    public static string? Text(object? v) => v switch
    {
        null => null,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString(),
    };
}
