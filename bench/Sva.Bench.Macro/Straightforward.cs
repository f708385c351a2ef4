using System.Diagnostics;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Projections;
using Marten;
using Marten.Events.Aggregation;
using Sva.Domain;
using Sva.Domain.Json;
using Weasel.Core;

namespace Sva.Bench.Macro;

/// <summary>A small aggregate of a session, as a .NET developer would keep one next to the stream (an inline projection).</summary>
public sealed class SessionAggregate
{
    public string Id { get; set; } = "";
    /// <summary>The stream version (set by Marten).</summary>
    public long Version { get; set; }
    public long Events { get; set; }
    public int Devices { get; set; }
    public int Mms { get; set; }
    public int LivePasids { get; set; }
    public long Faults { get; set; }
}

/// <summary>The aggregate's projection: one document per stream, updated in the append's transaction.</summary>
public sealed class SessionAggregateProjection : SingleStreamProjection<SessionAggregate, string>
{
    public override SessionAggregate Evolve(SessionAggregate? snapshot, string id, IEvent e)
    {
        var a = snapshot ?? new SessionAggregate { Id = id };
        a.Events++;
        switch (e.Data)
        {
            case DeviceProbed: a.Devices++; break;
            case MmCreated: a.Mms++; break;
            case PasidAllocated: a.LivePasids++; break;
            case PasidFreed: a.LivePasids--; break;
            case PageRequestQueued: a.Faults++; break;
        }
        return a;
    }
}

/// <summary>A Marten store set up the way Marten's docs show, in a schema of its own: string stream keys, the simulator's
/// event type aliases and JSON; <c>configure</c> adds what differs (a projection, the append mode).</summary>
internal static class PlainMarten
{
    public static async Task<DocumentStore> OpenAsync(string connectionString, string schema, Action<StoreOptions> configure, CancellationToken ct)
    {
        var store = DocumentStore.For(o =>
        {
            o.Connection(connectionString);
            o.DatabaseSchemaName = schema;
            o.AutoCreateSchemaObjects = AutoCreate.CreateOrUpdate;
            o.UseSystemTextJsonForSerialization(SvaJson.Options, EnumStorage.AsString, Casing.SnakeCase);
            o.Events.StreamIdentity = StreamIdentity.AsString;
            foreach (var (type, name) in EventTypes.All) o.Events.MapEventType(type, name);
            configure(o);
        });
        await store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        ct.ThrowIfCancellationRequested();
        return store;
    }
}

/// <summary>
/// The straightforward Marten usage for the same calls: a store configured the way Marten's docs show (string stream
/// keys, the same event type aliases and JSON, one inline projection), in a schema of its own ("plain") so it shares
/// nothing with the project's store.
/// </summary>
public sealed class Straightforward : IDisposable
{
    public const string Schema = "plain";
    private readonly DocumentStore store;

    private Straightforward(DocumentStore store) => this.store = store;

    public static async Task<Straightforward> OpenAsync(string connectionString, CancellationToken ct)
    {
        var store = await PlainMarten.OpenAsync(connectionString, Schema,
            o => o.Projections.Add(new SessionAggregateProjection(), ProjectionLifecycle.Inline), ct);
        return new Straightforward(store);
    }

    /// <summary>Per group of <paramref name="callsPerSave"/> calls: FetchForWriting of the aggregate, append the calls'
    /// events, SaveChanges. Returns the seconds taken.</summary>
    public async Task<double> RecordAsync(string stream, IReadOnlyList<IReadOnlyList<SvaEvent>> calls, int callsPerSave, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        foreach (var group in calls.Chunk(callsPerSave))
        {
            await using var s = store.LightweightSession();
            var target = await s.Events.FetchForWriting<SessionAggregate>(stream, ct);
            foreach (var call in group)
                foreach (var e in call) target.AppendOne(e);
            await s.SaveChangesAsync(ct);
        }
        return sw.Elapsed.TotalSeconds;
    }

    public void Dispose() => store.Dispose();
}

/// <summary>
/// Marten alone, no layer of ours and no projection: quick append of the same events, 2,000 per SaveChanges, and
/// Marten's bulk path (<c>BulkInsertEventsAsync</c>, COPY) for the import ceiling. Schema "alone".
/// </summary>
public sealed class MartenAlone : IDisposable
{
    public const string Schema = "alone";
    private readonly DocumentStore store;

    private MartenAlone(DocumentStore store) => this.store = store;

    public static async Task<MartenAlone> OpenAsync(string connectionString, CancellationToken ct)
    {
        var store = await PlainMarten.OpenAsync(connectionString, Schema, o => o.Events.AppendMode = EventAppendMode.Quick, ct);
        return new MartenAlone(store);
    }

    /// <summary>Quick append, <paramref name="perSave"/> events per SaveChanges. Returns the seconds taken.</summary>
    public async Task<double> QuickAppendAsync(string stream, IReadOnlyList<SvaEvent> events, int perSave, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        foreach (var group in events.Chunk(perSave))
        {
            await using var s = store.LightweightSession();
            s.Events.Append(stream, group.Cast<object>().ToArray());
            await s.SaveChangesAsync(ct);
        }
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>BulkInsertEventsAsync (COPY) of one new stream. Returns the seconds taken.</summary>
    public async Task<double> BulkInsertAsync(string stream, IReadOnlyList<SvaEvent> events, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var action = StreamAction.Start((IEventRegistry)store.Options.Events, stream, events.Cast<object>().ToArray());
        await store.BulkInsertEventsAsync([action], 8192, ct);
        return sw.Elapsed.TotalSeconds;
    }

    public void Dispose() => store.Dispose();
}
