using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

/// <summary>Reads the captures copied next to the test assembly (data/...).</summary>
internal static class TestData
{
    public static string PathOf(string relative) => Path.Combine(AppContext.BaseDirectory, "data", relative);

    public static async Task<List<CaptureItem>> ReadAsync(string relative, string format = "auto", bool lenient = false)
    {
        using var reader = new StreamReader(PathOf(relative));
        return await CaptureReader.ReadAllAsync(reader, Path.GetFileName(relative), format, lenient);
    }

    public static async Task<List<CaptureItem>> ParseTextAsync(string text, string format, bool lenient = false, string file = "inline.txt")
    {
        using var reader = new StringReader(text);
        return await CaptureReader.ReadAllAsync(reader, file, format, lenient);
    }

    public static List<Observation> Observations(this IEnumerable<CaptureItem> items) => items.OfType<Observation>().ToList();

    public static List<SkippedLine> Skipped(this IEnumerable<CaptureItem> items) => items.OfType<SkippedLine>().ToList();

    public static Dictionary<ObservationKind, int> CountByKind(this IEnumerable<CaptureItem> items) =>
        items.OfType<Observation>().GroupBy(o => o.Kind).ToDictionary(g => g.Key, g => g.Count());

    public static List<string> Devices(this IEnumerable<CaptureItem> items) =>
        items.OfType<Observation>().Select(o => o.Device).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();

    public static List<int?> Pasids(this IEnumerable<CaptureItem> items) =>
        items.OfType<Observation>().Select(o => o.Pasid).Distinct().OrderBy(p => p ?? -1).ToList();

    public static void AssertKinds(this IEnumerable<CaptureItem> items, params (ObservationKind Kind, int Count)[] expected)
    {
        var actual = items.CountByKind();
        Assert.Equal(expected.ToDictionary(e => e.Kind, e => e.Count).OrderBy(kv => kv.Key), actual.OrderBy(kv => kv.Key));
    }

    /// <summary>The same observation apart from where it came from and how it was laid out.</summary>
    public static void AssertSameMeaning(Observation expected, Observation actual)
    {
        Assert.Equal(expected.Kind, actual.Kind);
        Assert.Equal(expected.Format, actual.Format);
        Assert.Equal(expected.Timestamp, actual.Timestamp);
        Assert.Equal(expected.Task, actual.Task);
        Assert.Equal(expected.Cpu, actual.Cpu);
        Assert.Equal(expected.Device, actual.Device);
        Assert.Equal(expected.Pasid, actual.Pasid);
        Assert.Equal(expected.Address, actual.Address);
        Assert.Equal(expected.End, actual.End);
        Assert.Equal(expected.Size, actual.Size);
        Assert.Equal(expected.Group, actual.Group);
        Assert.Equal(expected.Last, actual.Last);
        Assert.Equal(expected.Access, actual.Access);
        Assert.Equal(expected.ResponseCode, actual.ResponseCode);
        Assert.Equal(expected.Fields.ToList(), actual.Fields.ToList());
    }
}
