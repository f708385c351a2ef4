using System.Collections;
using System.Reflection;
using Sva.Domain;
using Sva.EventStore;
using Sva.Formats.Generate;
using Sva.Projections;
using Xunit;

namespace Sva.TimeTravel.Tests;

/// <summary>Snapshots as MemoryPack (encoding 2): the mirror of the state loses nothing, old JSON snapshots still load, and a
/// recorded session writes the new encoding, bound to the chain like the old one.</summary>
public sealed class StateSnapshotCodecTests
{
    private static readonly (Type Domain, Type Dto)[] Pairs =
    [
        (typeof(SvaState), typeof(StateDto)), (typeof(DeviceObj), typeof(DeviceDto)), (typeof(PasidEntry), typeof(PasidEntryDto)),
        (typeof(PendingRequest), typeof(PendingRequestDto)), (typeof(GroupObj), typeof(GroupDto)), (typeof(PasidSlot), typeof(PasidSlotDto)),
        (typeof(MmObj), typeof(MmDto)), (typeof(Vma), typeof(VmaDto)), (typeof(DomainObj), typeof(DomainDto)),
        (typeof(Attachment), typeof(AttachmentDto)), (typeof(IovaRange), typeof(IovaRangeDto)), (typeof(HandleObj), typeof(HandleDto)),
        (typeof(NotifierObj), typeof(NotifierDto)),
    ];

    private static IEnumerable<PropertyInfo> Members(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0);

    [Fact]
    public void the_memorypack_mirror_has_every_member_of_every_class_the_state_holds()
    {
        // Every Domain class reachable from SvaState has a mirror, with the same member names (a field added to the state
        // and not to the mirror would silently vanish from snapshots: this fails instead).
        var reachable = new HashSet<Type>();
        void Walk(Type t)
        {
            if (!reachable.Add(t)) return;
            foreach (var p in Members(t))
                foreach (var u in Inner(p.PropertyType))
                    if (u.Assembly == typeof(SvaState).Assembly && u.IsClass) Walk(u);
        }
        Walk(typeof(SvaState));
        var mirrored = Pairs.Select(p => p.Domain).ToHashSet();
        Assert.Empty(reachable.Except(mirrored).Select(t => t.Name));
        foreach (var (domain, dto) in Pairs)
            Assert.Equal(Members(domain).Select(p => p.Name).Order(StringComparer.Ordinal),
                Members(dto).Select(p => p.Name).Where(n => dto != typeof(StateDto) || n != nameof(StateDto.SetAtEvents)).Order(StringComparer.Ordinal));
        // the one member beyond the state: the snapshot's provenance of its set-at seqs
        Assert.Contains(nameof(StateDto.SetAtEvents), Members(typeof(StateDto)).Select(p => p.Name));
        Assert.DoesNotContain(nameof(StateDto.SetAtEvents), Members(typeof(SvaState)).Select(p => p.Name));
    }

    private static IEnumerable<Type> Inner(Type t) =>
        t.IsGenericType ? t.GetGenericArguments().SelectMany(Inner).Prepend(t) : [t];

    [Fact]
    public void an_encoding_2_payload_written_before_provenance_2_decodes_as_provenance_1_without_a_claim_on_gone_rows()
    {
        var state = Evolve.Fold(Scripted.Logged().Select(l => l.Event));
        Assert.True(Provenance.KnowsGone(state));
        Assert.NotEmpty(state.FreedDomains);
        // the bytes main wrote before gone_at / freed_domains: the same object with two members fewer (MemoryPack's object
        // header is the member count; a null array is the int -1)
        var dto = StateDto.From(state);
        dto.Provenance = 1;
        dto.GoneAt = null;
        dto.FreedDomains = null;
        dto.SetAtEvents = null;
        var bytes = MemoryPack.MemoryPackSerializer.Serialize(dto);
        var members = bytes[0];
        Assert.All(bytes[^12..], b => Assert.Equal(0xFF, b));
        var old = bytes[..^12];
        old[0] = (byte)(members - 3);
        var back = StateSnapshot.Decode(new LoadedSnapshot(state.Seq, SnapshotCodec.ZstdMemoryPack, old));
        Assert.NotNull(back);
        Assert.Equal(1, back.Provenance);
        Assert.True(Provenance.IsComplete(back));
        Assert.False(Provenance.KnowsGone(back));
        Assert.Empty(back.GoneAt);
        Assert.Empty(back.FreedDomains);
        Assert.Equal(state.SetAt, back.SetAt);
        Assert.Null(Provenance.LastExisted(back, RowRef.Domain("D1")));
        // and today's payload carries them
        var now = StateSnapshot.Decode(new LoadedSnapshot(state.Seq, SnapshotCodec.ZstdMemoryPack, StateSnapshot.Take(state).Payload))!;
        Assert.Equal(state.FreedDomains, now.FreedDomains);
        Assert.Equal(state.GoneAt, now.GoneAt);
        Assert.Equal(Provenance.LastExisted(state, RowRef.Domain("D1")), Provenance.LastExisted(now, RowRef.Domain("D1")));
    }

    [Fact]
    public void an_encoding_2_payload_written_before_set_at_events_decodes_the_same_state_carrying_none()
    {
        var state = Evolve.Fold(Scripted.Logged().Select(l => l.Event));
        var book = new ProvenanceBook();
        foreach (var seq in state.SetAt.Values.Distinct()) book.Add(seq, new MmDropped("m1", 0), $"x.sva:{seq}", "drop", "sim.ok", seq);
        var taken = StateSnapshot.Take(state, book);
        var (now, carried) = StateSnapshot.DecodeWithSetAtEvents(new LoadedSnapshot(state.Seq, SnapshotCodec.ZstdMemoryPack, taken.Payload));
        Assert.Equal(state.ToSnapshotJson(), now!.ToSnapshotJson());
        Assert.Equal(state.SetAt.Values.Distinct().Order(), SetAtEventDto.Read(carried).Select(e => e.Seq));
        // the bytes main wrote before set_at_events: one member fewer, the same state, nothing carried
        var dto = StateDto.From(state);
        var bytes = MemoryPack.MemoryPackSerializer.Serialize(dto);
        Assert.All(bytes[^4..], b => Assert.Equal(0xFF, b));
        var old = bytes[..^4];
        old[0] = (byte)(bytes[0] - 1);
        var (back, none) = StateSnapshot.DecodeWithSetAtEvents(new LoadedSnapshot(state.Seq, SnapshotCodec.ZstdMemoryPack, old));
        Assert.Equal(state.ToSnapshotJson(), back!.ToSnapshotJson());
        Assert.Null(none);
        Assert.Empty(SetAtEventDto.Read(none));
        Assert.Empty(SetAtEventDto.Read([1, 2, 3])); // bytes that do not decode carry nothing
    }

    [Fact]
    public void a_state_with_every_member_set_round_trips_through_memorypack_unchanged()
    {
        var n = 0;
        var state = (SvaState)Fill(typeof(SvaState), ref n, 0);
        var taken = StateSnapshot.Take(state);
        Assert.Equal(SnapshotCodec.ZstdMemoryPack, taken.Encoding);
        var back = StateSnapshot.Decode(new LoadedSnapshot(taken.Seq, taken.Encoding, taken.Payload));
        Assert.NotNull(back);
        Assert.Equal(state.ToSnapshotJson(), back.ToSnapshotJson());
        // The keys keep the state's ordinal order (not a culture's): "B" sorts before "a".
        Assert.Equal(state.Devices.Keys, back.Devices.Keys);
        Assert.Equal(StringComparer.Ordinal, back.Devices.Comparer);
        Assert.Equal(StringComparer.Ordinal, back.SetAt.Comparer);
    }

    [Fact]
    public void generated_states_round_trip_and_are_smaller_than_their_json()
    {
        foreach (var kernel in new[] { "5.19", "6.8", "6.12" })
        {
            var events = WorkloadGenerator.Generate(new WorkloadOptions(6, 10, 20_000, 7, kernel)).SelectMany(c => c.Events);
            var state = Evolve.Fold(events);
            var taken = StateSnapshot.Take(state);
            var json = System.Text.Encoding.UTF8.GetBytes(state.ToSnapshotJson());
            Assert.True(taken.Payload.Length < json.Length, $"{kernel}: {taken.Payload.Length} bytes of MemoryPack, {json.Length} of JSON");
            Assert.Equal(state.ToSnapshotJson(), StateSnapshot.Decode(new LoadedSnapshot(state.Seq, taken.Encoding, taken.Payload))!.ToSnapshotJson());
            // The old encoding (JSON text) decodes through the same decoder to the same state.
            Assert.Equal(state.ToSnapshotJson(), StateSnapshot.Decode(new LoadedSnapshot(state.Seq, state.ToSnapshotJson()))!.ToSnapshotJson());
        }
    }

    [Fact]
    public void a_payload_that_does_not_decode_or_names_another_seq_is_not_a_state()
    {
        var state = Evolve.Fold(WorkloadGenerator.Generate(new WorkloadOptions(2, 2, 500, 3)).SelectMany(c => c.Events));
        var taken = StateSnapshot.Take(state);
        Assert.Null(StateSnapshot.Decode(new LoadedSnapshot(state.Seq + 1, taken.Encoding, taken.Payload)));      // another seq
        Assert.Null(StateSnapshot.Decode(new LoadedSnapshot(state.Seq, taken.Encoding, taken.Payload[..(taken.Payload.Length / 2)]))); // cut
        Assert.Null(StateSnapshot.Decode(new LoadedSnapshot(state.Seq, SnapshotCodec.ZstdUtf8, taken.Payload)));   // binary read as JSON
        Assert.Null(StateSnapshot.Decode(new LoadedSnapshot(state.Seq, 99, taken.Payload)));                       // unknown encoding
    }

    /// <summary>An instance of <paramref name="t"/> with every member set to a value that differs from its default.</summary>
    private static object Fill(Type t, ref int n, int depth)
    {
        n++;
        if (t == typeof(string)) return (n % 2 == 0 ? "B" : "a") + n;
        if (t == typeof(int)) return n;
        if (t == typeof(long)) return (long)n * 1_000_003;
        if (t == typeof(ulong)) return ulong.MaxValue - (ulong)n;
        if (t == typeof(bool)) return true;
        if (Nullable.GetUnderlyingType(t) is { } u) return Fill(u, ref n, depth);
        if (t.IsEnum) return Enum.GetValues(t).GetValue(Enum.GetValues(t).Length - 1)!;
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            var list = (IList)Activator.CreateInstance(t)!;
            for (var i = 0; i < 2; i++) list.Add(Fill(t.GetGenericArguments()[0], ref n, depth + 1));
            return list;
        }
        var o = Activator.CreateInstance(t)!;
        foreach (var p in Members(t))
        {
            var pt = p.PropertyType;
            if (pt.IsGenericType && pt.GetGenericTypeDefinition() == typeof(SortedDictionary<,>))
            {
                var d = (IDictionary)p.GetValue(o)!; // the object's own, with its comparer
                for (var i = 0; i < 3; i++) d[Fill(pt.GetGenericArguments()[0], ref n, depth + 1)] = Fill(pt.GetGenericArguments()[1], ref n, depth + 1);
            }
            else p.SetValue(o, Fill(pt, ref n, depth + 1));
        }
        return o;
    }
}

[Collection("tt")]
public sealed class StateSnapshotStoreTests(TtFixture f)
{
    [Fact]
    public async Task a_recorded_session_writes_memorypack_snapshots_bound_to_the_chain_and_json_rows_of_earlier_versions_still_load()
    {
        // The shared generated session: every snapshot row is encoding 2, loads, and verify vouches for each.
        var snaps = await f.Store.ListSnapshotsAsync(f.Generated);
        Assert.True(snaps.Count >= 5);
        await using var ds = Npgsql.NpgsqlDataSource.Create(f.ConnectionString);
        await using (var cmd = ds.CreateCommand("SELECT count(*) FILTER (WHERE encoding = 2), count(*) FROM sva_snapshots WHERE session = $1"))
        {
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = f.Generated });
            await using var r = await cmd.ExecuteReaderAsync();
            Assert.True(await r.ReadAsync());
            Assert.Equal(r.GetInt64(1), r.GetInt64(0));
        }
        var at = snaps[2].Seq + 7;
        var loaded = await Sva.Projections.Queries.TimeTravel.LoadAsync(f.Store, f.Generated, at);
        Assert.Equal(snaps[2].Seq, loaded.SnapshotSeq);
        Assert.Equal(TtFixture.StateJson(f.Events, at), loaded.State.ToSnapshotJson());
        var v = await f.Store.VerifyAsync(f.Generated);
        Assert.True(v.Ok && v.Warnings.Count == 0, v.Reason);

        // A session an earlier version wrote: its snapshot a zstd JSON row (encoding 1). Same answers, verify clean.
        var logged = Scripted.Logged();
        var session = TtFixture.UniqueSession("ttjsonsnap");
        var cmdId = Guid.NewGuid();
        var json = Evolve.Fold(logged.Take(41).Select(l => l.Event)).ToSnapshotJson();
        await f.Store.AppendAsync(new AppendBatch(session, 0, cmdId,
            logged.Select(l => EventCodec.Encode(l.Event, new EventMetadata(cmdId, l.Source, l.Call))).ToList())
        {
            Create = new NewSession("6.8", "h.sva"),
            Snapshots = [new SnapshotToSave(41, json)],
        });
        var old = await Sva.Projections.Queries.TimeTravel.LoadAsync(f.Store, session, 45);
        Assert.Equal(41, old.SnapshotSeq);
        Assert.Equal(Evolve.Fold(logged.Take(45).Select(l => l.Event)).ToSnapshotJson(), old.State.ToSnapshotJson());
        Assert.True((await f.Store.VerifyAsync(session)).Ok);

        // The binding holds for the binary encoding too: a MemoryPack row swapped for another state's is passed over, and
        // verify names it.
        var other = StateSnapshot.Take(Evolve.Fold(logged.Take(41).Select(l => l.Event).Take(40)));
        await using (var cmd = ds.CreateCommand("UPDATE sva_snapshots SET encoding = 2, bytes = $2 WHERE session = $1 AND seq = 41"))
        {
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = session });
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = other.Compressed() });
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }
        Assert.Equal(0, (await Sva.Projections.Queries.TimeTravel.LoadAsync(f.Store, session, 45)).SnapshotSeq);
        var bad = await f.Store.VerifyAsync(session);
        Assert.Contains("snapshot at seq 41", bad.Reason);
    }
}
