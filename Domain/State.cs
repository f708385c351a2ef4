using System.Text.Json;
using System.Text.Json.Serialization;
using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// The whole simulated machine of one session: the fold of its events. Mutable for a fast fold;
/// <see cref="Clone"/> gives an independent copy. Every collection is ordered, so rendering never
/// depends on hash order.
/// </summary>
public sealed class SvaState
{
    /// <summary>The seq of the last event applied (0 = empty session).</summary>
    public long Seq { get; set; }
    public SortedDictionary<string, DeviceObj> Devices { get; set; } = new(StringComparer.Ordinal);
    public SortedDictionary<int, GroupObj> Groups { get; set; } = new();
    public SortedDictionary<string, MmObj> Mms { get; set; } = new(StringComparer.Ordinal);
    public SortedDictionary<int, DomainObj> Domains { get; set; } = new();
    public SortedDictionary<int, HandleObj> Handles { get; set; } = new();
    public SortedDictionary<int, NotifierObj> Notifiers { get; set; } = new();
    /// <summary>The per-mm Arm context descriptors (G1–G4): mm → pinned CPU ASID.</summary>
    public SortedDictionary<string, int> ContextDescriptors { get; set; } = new(StringComparer.Ordinal);
    /// <summary>The global PASID allocator: PASID → owning mm.</summary>
    public SortedDictionary<int, string> Pasids { get; set; } = new();
    /// <summary>Script labels of handles (bind h1 …) → handle id; a label stays after its handle is freed.</summary>
    public SortedDictionary<string, string> HandleNames { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Non-SVA domain names from <c>domain NAME</c> lines → domain id.</summary>
    public SortedDictionary<string, string> DomainNames { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Freed handle ids → the seq that freed them (for 'handle used after free').</summary>
    public SortedDictionary<int, long> FreedHandles { get; set; } = new();
    /// <summary>Labels whose bind failed → the seq of the failure (so 'unbind h2' can say why there is no h2).</summary>
    public SortedDictionary<string, long> FailedBinds { get; set; } = new(StringComparer.Ordinal);
    /// <summary>The seq of the first kernel BUG (the session is tainted from there); null: not tainted.</summary>
    public long? TaintedAt { get; set; }
    /// <summary>The site of that BUG.</summary>
    public string? TaintSite { get; set; }
    public int NextHandle { get; set; } = 1;
    public int NextDomain { get; set; } = 1;
    public int NextNotifier { get; set; } = 1;
    public int NextGroup { get; set; } = 1;
    public int NextMmOrdinal { get; set; } = 1;
    /// <summary>Provenance: row key (<see cref="RowRef.Key"/>) → the seq of the last event that touched the row (see <see cref="Domain.Provenance"/>).
    /// Populated in place on reading, so the ordinal order survives a snapshot.</summary>
    [JsonObjectCreationHandling(JsonObjectCreationHandling.Populate)]
    public SortedDictionary<string, long> SetAt { get; set; } = new(StringComparer.Ordinal);
    /// <summary>The shape of <see cref="SetAt"/> (<see cref="Domain.Provenance.Version"/>); 0: unknown, as in a snapshot written
    /// before provenance existed (the field is then missing): such a state cannot say when its rows were set. 1: <see cref="SetAt"/>
    /// only; 2: also <see cref="GoneAt"/>.</summary>
    public int Provenance { get; set; }
    /// <summary>Provenance (version 2): row key → the seq of the event after which the row was gone, for the rows that can go
    /// and come back: a PASID freed, a PASID table entry cleared. A row that comes back leaves it. (Domains: <see cref="FreedDomains"/>;
    /// handles: <see cref="FreedHandles"/>; devices and mms never go.) Missing in snapshots of provenance 0 and 1 (then empty,
    /// and not to be trusted: see <see cref="Domain.Provenance.KnowsGone"/>).</summary>
    [JsonObjectCreationHandling(JsonObjectCreationHandling.Populate)]
    public SortedDictionary<string, long> GoneAt { get; set; } = new(StringComparer.Ordinal);
    /// <summary>Provenance (version 2): freed domain ids → the seq that freed them (ids are never reused; kept by number, as
    /// <see cref="FreedHandles"/>, because there are as many as binds). Same caveat as <see cref="GoneAt"/>.</summary>
    public SortedDictionary<int, long> FreedDomains { get; set; } = new();

    public SvaState Clone() =>
        JsonSerializer.Deserialize<SvaState>(JsonSerializer.Serialize(this, SvaJson.Options), SvaJson.Options)!;

    public string ToSnapshotJson() => JsonSerializer.Serialize(this, SvaJson.Options);

    public static SvaState FromSnapshotJson(string json) =>
        JsonSerializer.Deserialize<SvaState>(json, SvaJson.Options) ?? throw new EventFormatException("empty snapshot");

    // ---- lookups used by the rules ----------------------------------------------------------------
    public static int IdNumber(string id) => int.Parse(id.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);

    public HandleObj? HandleById(string id) =>
        id.Length > 1 && id[0] == 'H' && int.TryParse(id.AsSpan(1), out var n) && Handles.TryGetValue(n, out var h) ? h : null;

    public DomainObj? DomainById(string? id) =>
        id is { Length: > 1 } && id[0] == 'D' && int.TryParse(id.AsSpan(1), out var n) && Domains.TryGetValue(n, out var d) ? d : null;

    public DomainObj Domain(string id) => Domains[IdNumber(id)];
    public HandleObj Handle(string id) => Handles[IdNumber(id)];
    public NotifierObj Notifier(string id) => Notifiers[IdNumber(id)];
    public GroupObj GroupOf(DeviceObj d) => Groups[d.Group];
}

public sealed class DeviceObj
{
    public string Id { get; set; } = "";
    public int MaxPasids { get; set; }
    public int Group { get; set; }
    public bool Sva { get; set; }
    public bool Iopf { get; set; }
    public string Iommu { get; set; } = "iommu0";
    /// <summary>The IOMMU driver (smmuv3, vtd, amd): which driver's rules apply.</summary>
    public string Driver { get; set; } = Drivers.Default;
    /// <summary>First seen in a capture rather than probed by a script line.</summary>
    public bool Inferred { get; set; }
    /// <summary>What the IOMMU is programmed with for each PASID of this device.</summary>
    public SortedDictionary<int, PasidEntry> PasidTable { get; set; } = new();
    /// <summary>Page requests parked until the last request of their group (iopf partial list).</summary>
    public List<PendingRequest> Partial { get; set; } = new();
}

public sealed class PasidEntry
{
    public int Pasid { get; set; }
    public string? Domain { get; set; }
    public string? Mm { get; set; }
    /// <summary><c>active</c>, <c>quiet</c> (release, EPD0) or <c>fault-all</c> (6.11+ release).</summary>
    public string Mode { get; set; } = "active";
}

public sealed class PendingRequest
{
    public int? Pasid { get; set; }
    public int? Group { get; set; }
    public ulong Address { get; set; }
    public string Access { get; set; } = "r";
    public long Seq { get; set; }
}

public sealed class GroupObj
{
    public int Id { get; set; }
    public List<string> Devices { get; set; } = new();
    /// <summary>group->pasid_array: PASID → slot (G2–G4 the domain; G5 the attach handle holding it).</summary>
    public SortedDictionary<int, PasidSlot> PasidArray { get; set; } = new();
    /// <summary>The domain attached to the RID (no PASID), if a script attached one.</summary>
    public string? RidDomain { get; set; }
}

public sealed class PasidSlot
{
    public string Domain { get; set; } = "";
    public string? Handle { get; set; }
}

public enum MmLife { Live, Exited, Dropped }

public sealed class MmObj
{
    public string Id { get; set; } = "";
    public int? Pasid { get; set; }
    public MmLife State { get; set; } = MmLife.Live;
    public bool Lam { get; set; }
    public bool Inferred { get; set; }
    /// <summary>Creation order; the simulated CPU ASID of the mm.</summary>
    public int Ordinal { get; set; }
    public int MmUsers { get; set; } = 1;
    /// <summary>mm_count: the process's reference (until drop) + each SVA domain's mmgrab + the Arm CD's.</summary>
    public int MmCount { get; set; } = 1;
    /// <summary>iommu_mm->sva_domains (G3+; G2 lists its per-device domains too), newest first like list_add.</summary>
    public List<string> SvaDomains { get; set; } = new();
    /// <summary>Live handles (bonds) of this mm, in issue order (G4 iommu_mm->sva_handles).</summary>
    public List<string> Handles { get; set; } = new();
    /// <summary>Declared VMAs; empty means every address is mapped read/write.</summary>
    public List<Vma> Vmas { get; set; } = new();
}

public sealed class Vma
{
    public ulong Start { get; set; }
    public ulong End { get; set; }
    public string Prot { get; set; } = "rw";
}

public sealed class DomainObj
{
    public string Id { get; set; } = "";
    /// <summary><c>sva</c>, <c>paging</c>, <c>identity</c> or <c>blocked</c>.</summary>
    public string Type { get; set; } = "sva";
    public string? Name { get; set; }
    public string? Mm { get; set; }
    public int Users { get; set; }
    public int? Asid { get; set; }
    /// <summary>Where it is attached: "BDF" for the RID, "BDF/pasid" for a PASID slot (the attach point's device).</summary>
    public List<Attachment> Attached { get; set; } = new();
    public List<IovaRange> Mappings { get; set; } = new();
}

public sealed class Attachment
{
    public string Device { get; set; } = "";
    public int? Pasid { get; set; }
    public List<string> Devices { get; set; } = new();
}

public sealed class IovaRange
{
    public ulong Iova { get; set; }
    public ulong End { get; set; }
    public ulong Paddr { get; set; }
}

public sealed class HandleObj
{
    public string Id { get; set; } = "";
    public string Device { get; set; } = "";
    public string Mm { get; set; } = "";
    public string? Domain { get; set; }
    public int Pasid { get; set; }
    public int Users { get; set; } = 1;
    public long IssuedSeq { get; set; }
}

public sealed class NotifierObj
{
    public string Id { get; set; } = "";
    public string Mm { get; set; } = "";
    public int? Group { get; set; }
    public string? Domain { get; set; }
    public int Refs { get; set; } = 1;
    /// <summary>Release already quieted the entries and invalidated (G1–G4 Arm <c>cleared</c>).</summary>
    public bool Cleared { get; set; }
}
