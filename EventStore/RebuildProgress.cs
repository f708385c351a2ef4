using JasperFx.Events.Projections;

namespace Sva.EventStore;

/// <summary>Watches Marten's daemon tracker during a rebuild: each page the projection's shard commits reports the
/// position reached.</summary>
internal sealed class RebuildProgress(string projection, IProgress<long> progress) : IObserver<ShardState>
{
    public void OnNext(ShardState value)
    {
        if (value.ShardName.StartsWith(projection + ":", StringComparison.Ordinal) || value.ShardName == projection)
            progress.Report(value.Sequence);
    }

    public void OnError(Exception error) { }
    public void OnCompleted() { }
}
