using System.Diagnostics;

namespace Sva.EventStore;

/// <summary>
/// Per-stage time of the append path, summed over the process (Stopwatch ticks, updated with Interlocked): the honest
/// profile of where a recorded event's client time goes. Always on (two timestamps per stage per batch, no allocation);
/// <c>sva bench</c> prints it after the recording row.
/// </summary>
public static class AppendProfile
{
    public enum Stage { Decide, EncodeMetadata, Snapshot, Serialize, ReadHead, Hash, UnitOfWork, SaveChanges, Count }

    private static readonly long[] Ticks = new long[(int)Stage.Count];
    private static long _events, _batches;

    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Adds the time since <paramref name="since"/> to <paramref name="stage"/>; returns now (to chain stages).</summary>
    public static long Add(Stage stage, long since)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Add(ref Ticks[(int)stage], now - since);
        return now;
    }

    internal static void Batch(int events)
    {
        Interlocked.Add(ref _events, events);
        Interlocked.Increment(ref _batches);
    }

    public static void Reset()
    {
        for (var i = 0; i < Ticks.Length; i++) Interlocked.Exchange(ref Ticks[i], 0);
        Interlocked.Exchange(ref _events, 0);
        Interlocked.Exchange(ref _batches, 0);
    }

    /// <summary>Each stage's total and its microseconds per appended event since the last <see cref="Reset"/>.</summary>
    public static (long Events, long Batches, IReadOnlyList<(string Stage, double Seconds, double MicrosPerEvent)> Stages) Read()
    {
        var n = Interlocked.Read(ref _events);
        var list = new List<(string, double, double)>();
        for (var i = 0; i < (int)Stage.Count; i++)
        {
            var s = (double)Interlocked.Read(ref Ticks[i]) / Stopwatch.Frequency;
            list.Add((((Stage)i).ToString(), s, n == 0 ? 0 : s * 1e6 / n));
        }
        return (n, Interlocked.Read(ref _batches), list);
    }
}
