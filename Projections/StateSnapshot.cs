using System.Text;
using MemoryPack;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections;

/// <summary>
/// The one snapshot codec of the code: what a snapshot's payload is, both ways. New snapshots are MemoryPack
/// (<see cref="SnapshotCodec.ZstdMemoryPack"/>: binary, loads without parsing text); snapshots of earlier versions are JSON
/// (<see cref="SnapshotCodec.ZstdUtf8"/> rows and the old jsonb documents) and still load. Either way the store checks the
/// payload's SHA-256 against the digest the log recorded at its seq before it returns it (a snapshot stays bound to the chain).
/// The MemoryPack shape is <see cref="StateDto"/>, a mirror of <see cref="SvaState"/> kept outside Domain (Domain stays free of
/// serializer attributes); a test checks that the two have the same members, so a field added to the state cannot be lost.
/// </summary>
public static class StateSnapshot
{
    /// <summary>The snapshot of <paramref name="state"/> at its seq, in the current encoding.</summary>
    public static SnapshotToSave Take(SvaState state) => Take(state, null);

    /// <summary>The snapshot of <paramref name="state"/>, carrying what <paramref name="book"/> knows of the events its rows
    /// were set by (<see cref="SetAtEventDto"/>; blame reads them instead of the log).</summary>
    public static SnapshotToSave Take(SvaState state, ProvenanceBook? book)
    {
        var dto = StateDto.From(state);
        dto.SetAtEvents = book?.TakeFor(state);
        return new(state.Seq, SnapshotCodec.ZstdMemoryPack, MemoryPackSerializer.Serialize(dto));
    }

    /// <summary>The state a loaded snapshot holds, or null when its payload does not decode (an encoding or a shape this version
    /// does not read) or names another seq: a snapshot is only a cache, the caller folds instead.</summary>
    public static SvaState? Decode(LoadedSnapshot snapshot) => DecodeWithSetAtEvents(snapshot).State;

    /// <summary>The state, as <see cref="Decode"/>, and the provenance of its set-at seqs that the snapshot carries
    /// (<see cref="SetAtEventDto.Read"/> reads it; null for a snapshot that carries none).</summary>
    public static (SvaState? State, byte[]? SetAtEvents) DecodeWithSetAtEvents(LoadedSnapshot snapshot)
    {
        try
        {
            SvaState? state;
            byte[]? events = null;
            switch (snapshot.Encoding)
            {
                case SnapshotCodec.ZstdUtf8: state = SvaState.FromSnapshotJson(Encoding.UTF8.GetString(snapshot.Payload)); break;
                case SnapshotCodec.ZstdMemoryPack:
                    var dto = MemoryPackSerializer.Deserialize<StateDto>(snapshot.Payload);
                    state = dto?.ToState();
                    events = dto?.SetAtEvents;
                    break;
                default: state = null; break;
            }
            return state is not null && state.Seq == snapshot.Seq ? (state, events) : (null, null);
        }
        catch (Exception) { return (null, null); }
    }
}

// The MemoryPack shape of SvaState (encoding 2). Its members mirror the state's one to one (StateSnapshotTests checks it);
// changing them changes the bytes: a new shape needs a new encoding number (SnapshotCodec), the old one stays readable or is
// passed over (the state is then folded from an earlier snapshot or from the log).
#pragma warning disable CS1591
[MemoryPackable]
public sealed partial class StateDto
{
    public long Seq { get; set; }
    public KeyValuePair<string, DeviceDto>[] Devices { get; set; } = [];
    public KeyValuePair<int, GroupDto>[] Groups { get; set; } = [];
    public KeyValuePair<string, MmDto>[] Mms { get; set; } = [];
    public KeyValuePair<int, DomainDto>[] Domains { get; set; } = [];
    public KeyValuePair<int, HandleDto>[] Handles { get; set; } = [];
    public KeyValuePair<int, NotifierDto>[] Notifiers { get; set; } = [];
    public KeyValuePair<string, int>[] ContextDescriptors { get; set; } = [];
    public KeyValuePair<int, string>[] Pasids { get; set; } = [];
    public KeyValuePair<string, string>[] HandleNames { get; set; } = [];
    public KeyValuePair<string, string>[] DomainNames { get; set; } = [];
    public KeyValuePair<int, long>[] FreedHandles { get; set; } = [];
    public KeyValuePair<string, long>[] FailedBinds { get; set; } = [];
    public long? TaintedAt { get; set; }
    public string? TaintSite { get; set; }
    public int NextHandle { get; set; }
    public int NextDomain { get; set; }
    public int NextNotifier { get; set; }
    public int NextGroup { get; set; }
    public int NextMmOrdinal { get; set; }
    public KeyValuePair<string, long>[] SetAt { get; set; } = [];
    public int Provenance { get; set; }
    // Provenance 2 (issue 18): members added at the end, which MemoryPack's object layout allows: an encoding-2 payload written
    // before them (provenance 1) still decodes, with these empty (and the state's provenance says they are not to be trusted).
    public KeyValuePair<string, long>[]? GoneAt { get; set; }
    public KeyValuePair<int, long>[]? FreedDomains { get; set; }
    // Not a member of the state: the snapshot's provenance of its set-at seqs (SetAtEventDto[] as MemoryPack, decoded only by
    // blame), added at the end like the two above: a payload written before it decodes with it null.
    public byte[]? SetAtEvents { get; set; }

    public static StateDto From(SvaState s) => new()
    {
        Seq = s.Seq,
        Devices = Out(s.Devices, DeviceDto.From),
        Groups = Out(s.Groups, GroupDto.From),
        Mms = Out(s.Mms, MmDto.From),
        Domains = Out(s.Domains, DomainDto.From),
        Handles = Out(s.Handles, HandleDto.From),
        Notifiers = Out(s.Notifiers, NotifierDto.From),
        ContextDescriptors = [.. s.ContextDescriptors],
        Pasids = [.. s.Pasids],
        HandleNames = [.. s.HandleNames],
        DomainNames = [.. s.DomainNames],
        FreedHandles = [.. s.FreedHandles],
        FailedBinds = [.. s.FailedBinds],
        TaintedAt = s.TaintedAt,
        TaintSite = s.TaintSite,
        NextHandle = s.NextHandle,
        NextDomain = s.NextDomain,
        NextNotifier = s.NextNotifier,
        NextGroup = s.NextGroup,
        NextMmOrdinal = s.NextMmOrdinal,
        SetAt = [.. s.SetAt],
        Provenance = s.Provenance,
        GoneAt = [.. s.GoneAt],
        FreedDomains = [.. s.FreedDomains],
    };

    /// <summary>The state, with the same key comparers a new <see cref="SvaState"/> has.</summary>
    public SvaState ToState()
    {
        var s = new SvaState
        {
            Seq = Seq,
            TaintedAt = TaintedAt,
            TaintSite = TaintSite,
            NextHandle = NextHandle,
            NextDomain = NextDomain,
            NextNotifier = NextNotifier,
            NextGroup = NextGroup,
            NextMmOrdinal = NextMmOrdinal,
            Provenance = Provenance,
        };
        In(s.Devices, Devices, d => d.ToObj());
        In(s.Groups, Groups, g => g.ToObj());
        In(s.Mms, Mms, m => m.ToObj());
        In(s.Domains, Domains, d => d.ToObj());
        In(s.Handles, Handles, h => h.ToObj());
        In(s.Notifiers, Notifiers, n => n.ToObj());
        In(s.ContextDescriptors, ContextDescriptors, x => x);
        In(s.Pasids, Pasids, x => x);
        In(s.HandleNames, HandleNames, x => x);
        In(s.DomainNames, DomainNames, x => x);
        In(s.FreedHandles, FreedHandles, x => x);
        In(s.FailedBinds, FailedBinds, x => x);
        In(s.SetAt, SetAt, x => x);
        In(s.GoneAt, GoneAt, x => x);
        In(s.FreedDomains, FreedDomains, x => x);
        return s;
    }

    internal static KeyValuePair<TKey, TDto>[] Out<TKey, TObj, TDto>(SortedDictionary<TKey, TObj> from, Func<TObj, TDto> map) where TKey : notnull
    {
        var a = new KeyValuePair<TKey, TDto>[from.Count];
        var i = 0;
        foreach (var (k, v) in from) a[i++] = new(k, map(v));
        return a;
    }

    /// <summary>Fills <paramref name="into"/> (created by the object's own initializer, so with its comparer).</summary>
    internal static void In<TKey, TDto, TObj>(SortedDictionary<TKey, TObj> into, KeyValuePair<TKey, TDto>[]? from, Func<TDto, TObj> map) where TKey : notnull
    {
        if (from is null) return;
        foreach (var (k, v) in from) into.Add(k, map(v));
    }
}

[MemoryPackable]
public sealed partial class DeviceDto
{
    public string Id { get; set; } = "";
    public int MaxPasids { get; set; }
    public int Group { get; set; }
    public bool Sva { get; set; }
    public bool Iopf { get; set; }
    public string Iommu { get; set; } = "";
    public string Driver { get; set; } = "";
    public bool Inferred { get; set; }
    public KeyValuePair<int, PasidEntryDto>[] PasidTable { get; set; } = [];
    public PendingRequestDto[] Partial { get; set; } = [];

    public static DeviceDto From(DeviceObj d) => new()
    {
        Id = d.Id, MaxPasids = d.MaxPasids, Group = d.Group, Sva = d.Sva, Iopf = d.Iopf, Iommu = d.Iommu, Driver = d.Driver,
        Inferred = d.Inferred, PasidTable = StateDto.Out(d.PasidTable, PasidEntryDto.From), Partial = [.. d.Partial.Select(PendingRequestDto.From)],
    };

    public DeviceObj ToObj()
    {
        var d = new DeviceObj
        {
            Id = Id, MaxPasids = MaxPasids, Group = Group, Sva = Sva, Iopf = Iopf, Iommu = Iommu, Driver = Driver, Inferred = Inferred,
            Partial = [.. Partial.Select(p => p.ToObj())],
        };
        StateDto.In(d.PasidTable, PasidTable, p => p.ToObj());
        return d;
    }
}

[MemoryPackable]
public sealed partial class PasidEntryDto
{
    public int Pasid { get; set; }
    public string? Domain { get; set; }
    public string? Mm { get; set; }
    public string Mode { get; set; } = "";

    public static PasidEntryDto From(PasidEntry p) => new() { Pasid = p.Pasid, Domain = p.Domain, Mm = p.Mm, Mode = p.Mode };
    public PasidEntry ToObj() => new() { Pasid = Pasid, Domain = Domain, Mm = Mm, Mode = Mode };
}

[MemoryPackable]
public sealed partial class PendingRequestDto
{
    public int? Pasid { get; set; }
    public int? Group { get; set; }
    public ulong Address { get; set; }
    public string Access { get; set; } = "";
    public long Seq { get; set; }

    public static PendingRequestDto From(PendingRequest p) => new() { Pasid = p.Pasid, Group = p.Group, Address = p.Address, Access = p.Access, Seq = p.Seq };
    public PendingRequest ToObj() => new() { Pasid = Pasid, Group = Group, Address = Address, Access = Access, Seq = Seq };
}

[MemoryPackable]
public sealed partial class GroupDto
{
    public int Id { get; set; }
    public string[] Devices { get; set; } = [];
    public KeyValuePair<int, PasidSlotDto>[] PasidArray { get; set; } = [];
    public string? RidDomain { get; set; }

    public static GroupDto From(GroupObj g) => new()
        { Id = g.Id, Devices = [.. g.Devices], PasidArray = StateDto.Out(g.PasidArray, PasidSlotDto.From), RidDomain = g.RidDomain };

    public GroupObj ToObj()
    {
        var g = new GroupObj { Id = Id, Devices = [.. Devices], RidDomain = RidDomain };
        StateDto.In(g.PasidArray, PasidArray, p => p.ToObj());
        return g;
    }
}

[MemoryPackable]
public sealed partial class PasidSlotDto
{
    public string Domain { get; set; } = "";
    public string? Handle { get; set; }

    public static PasidSlotDto From(PasidSlot p) => new() { Domain = p.Domain, Handle = p.Handle };
    public PasidSlot ToObj() => new() { Domain = Domain, Handle = Handle };
}

[MemoryPackable]
public sealed partial class MmDto
{
    public string Id { get; set; } = "";
    public int? Pasid { get; set; }
    public MmLife State { get; set; }
    public bool Lam { get; set; }
    public bool Inferred { get; set; }
    public int Ordinal { get; set; }
    public int MmUsers { get; set; }
    public int MmCount { get; set; }
    public string[] SvaDomains { get; set; } = [];
    public string[] Handles { get; set; } = [];
    public VmaDto[] Vmas { get; set; } = [];

    public static MmDto From(MmObj m) => new()
    {
        Id = m.Id, Pasid = m.Pasid, State = m.State, Lam = m.Lam, Inferred = m.Inferred, Ordinal = m.Ordinal, MmUsers = m.MmUsers,
        MmCount = m.MmCount, SvaDomains = [.. m.SvaDomains], Handles = [.. m.Handles], Vmas = [.. m.Vmas.Select(VmaDto.From)],
    };

    public MmObj ToObj() => new()
    {
        Id = Id, Pasid = Pasid, State = State, Lam = Lam, Inferred = Inferred, Ordinal = Ordinal, MmUsers = MmUsers, MmCount = MmCount,
        SvaDomains = [.. SvaDomains], Handles = [.. Handles], Vmas = [.. Vmas.Select(v => v.ToObj())],
    };
}

[MemoryPackable]
public sealed partial class VmaDto
{
    public ulong Start { get; set; }
    public ulong End { get; set; }
    public string Prot { get; set; } = "";

    public static VmaDto From(Vma v) => new() { Start = v.Start, End = v.End, Prot = v.Prot };
    public Vma ToObj() => new() { Start = Start, End = End, Prot = Prot };
}

[MemoryPackable]
public sealed partial class DomainDto
{
    public string Id { get; set; } = "";
    public string Type { get; set; } = "";
    public string? Name { get; set; }
    public string? Mm { get; set; }
    public int Users { get; set; }
    public int? Asid { get; set; }
    public AttachmentDto[] Attached { get; set; } = [];
    public IovaRangeDto[] Mappings { get; set; } = [];

    public static DomainDto From(DomainObj d) => new()
    {
        Id = d.Id, Type = d.Type, Name = d.Name, Mm = d.Mm, Users = d.Users, Asid = d.Asid,
        Attached = [.. d.Attached.Select(AttachmentDto.From)], Mappings = [.. d.Mappings.Select(IovaRangeDto.From)],
    };

    public DomainObj ToObj() => new()
    {
        Id = Id, Type = Type, Name = Name, Mm = Mm, Users = Users, Asid = Asid,
        Attached = [.. Attached.Select(a => a.ToObj())], Mappings = [.. Mappings.Select(m => m.ToObj())],
    };
}

[MemoryPackable]
public sealed partial class AttachmentDto
{
    public string Device { get; set; } = "";
    public int? Pasid { get; set; }
    public string[] Devices { get; set; } = [];

    public static AttachmentDto From(Attachment a) => new() { Device = a.Device, Pasid = a.Pasid, Devices = [.. a.Devices] };
    public Attachment ToObj() => new() { Device = Device, Pasid = Pasid, Devices = [.. Devices] };
}

[MemoryPackable]
public partial struct IovaRangeDto
{
    public ulong Iova { get; set; }
    public ulong End { get; set; }
    public ulong Paddr { get; set; }

    public static IovaRangeDto From(IovaRange r) => new() { Iova = r.Iova, End = r.End, Paddr = r.Paddr };
    public readonly IovaRange ToObj() => new() { Iova = Iova, End = End, Paddr = Paddr };
}

[MemoryPackable]
public sealed partial class HandleDto
{
    public string Id { get; set; } = "";
    public string Device { get; set; } = "";
    public string Mm { get; set; } = "";
    public string? Domain { get; set; }
    public int Pasid { get; set; }
    public int Users { get; set; }
    public long IssuedSeq { get; set; }

    public static HandleDto From(HandleObj h) => new()
        { Id = h.Id, Device = h.Device, Mm = h.Mm, Domain = h.Domain, Pasid = h.Pasid, Users = h.Users, IssuedSeq = h.IssuedSeq };

    public HandleObj ToObj() => new() { Id = Id, Device = Device, Mm = Mm, Domain = Domain, Pasid = Pasid, Users = Users, IssuedSeq = IssuedSeq };
}

[MemoryPackable]
public sealed partial class NotifierDto
{
    public string Id { get; set; } = "";
    public string Mm { get; set; } = "";
    public int? Group { get; set; }
    public string? Domain { get; set; }
    public int Refs { get; set; }
    public bool Cleared { get; set; }

    public static NotifierDto From(NotifierObj n) => new() { Id = n.Id, Mm = n.Mm, Group = n.Group, Domain = n.Domain, Refs = n.Refs, Cleared = n.Cleared };
    public NotifierObj ToObj() => new() { Id = Id, Mm = Mm, Group = Group, Domain = Domain, Refs = Refs, Cleared = Cleared };
}
#pragma warning restore CS1591
