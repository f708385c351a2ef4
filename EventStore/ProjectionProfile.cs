using System.Diagnostics;

namespace Sva.EventStore;

/// <summary>
/// Where a projection page's client time goes inside our code (Stopwatch ticks summed over the process): the adapter
/// turning Marten's events into <see cref="ProjectedEvent"/>s, and the projection's own apply (fold and documents).
/// Whatever else a rebuild takes is Marten's (loading and deserializing the page, storing the documents, progress).
/// <c>sva bench</c> prints it after the rebuild row.
/// </summary>
public static class ProjectionProfile
{
    private static long _adapt, _apply, _events, _pages, _writes;

    internal static void Write() => Interlocked.Increment(ref _writes);

    internal static void Add(long adaptTicks, long applyTicks, int events)
    {
        Interlocked.Add(ref _adapt, adaptTicks);
        Interlocked.Add(ref _apply, applyTicks);
        Interlocked.Add(ref _events, events);
        Interlocked.Increment(ref _pages);
    }

    public static void Reset()
    {
        Interlocked.Exchange(ref _adapt, 0);
        Interlocked.Exchange(ref _apply, 0);
        Interlocked.Exchange(ref _events, 0);
        Interlocked.Exchange(ref _pages, 0);
        Interlocked.Exchange(ref _writes, 0);
    }

    /// <summary>Events and pages seen, seconds in the adapter and in the projections' apply, documents stored or deleted.</summary>
    public static (long Events, long Pages, double AdaptSeconds, double ApplySeconds, long Writes) Read() =>
        (Interlocked.Read(ref _events), Interlocked.Read(ref _pages),
         (double)Interlocked.Read(ref _adapt) / Stopwatch.Frequency, (double)Interlocked.Read(ref _apply) / Stopwatch.Frequency,
         Interlocked.Read(ref _writes));
}
