using System.Text.Json.Serialization;

namespace Sva.Domain;

/// <summary>
/// A kernel call (or a fact from outside the IOMMU code, such as a process exit) that the simulator
/// decides against the current state. Each call decides to a list of events; failures are events too.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(ProbeDevice), "device")]
[JsonDerivedType(typeof(CreateMm), "mm")]
[JsonDerivedType(typeof(MapVma), "vma")]
[JsonDerivedType(typeof(Bind), "bind")]
[JsonDerivedType(typeof(Unbind), "unbind")]
[JsonDerivedType(typeof(PageFault), "fault")]
[JsonDerivedType(typeof(InvalidateRange), "invalidate")]
[JsonDerivedType(typeof(MmExit), "exit")]
[JsonDerivedType(typeof(MmDrop), "drop")]
[JsonDerivedType(typeof(AllocDomain), "domain")]
[JsonDerivedType(typeof(AttachDomain), "attach")]
[JsonDerivedType(typeof(DetachDomain), "detach")]
[JsonDerivedType(typeof(MapIova), "map")]
[JsonDerivedType(typeof(UnmapIova), "unmap")]
public abstract record KernelCall
{
    /// <summary>The call's name as scripts and outputs spell it (<c>bind</c>, <c>fault</c>, …).</summary>
    [JsonIgnore] public abstract string Op { get; }
}

/// <summary>A device probed by its IOMMU driver. <paramref name="Group"/> null: a singleton group of its own.
/// <paramref name="Iommu"/>: the IOMMU instance; <paramref name="Driver"/>: the IOMMU driver (smmuv3, vtd, amd) whose rules apply.</summary>
public sealed record ProbeDevice(string Device, int MaxPasids, int? Group = null, bool Sva = true, bool Iopf = true, string Iommu = "iommu0", bool Inferred = false, string Driver = Drivers.Default) : KernelCall
{
    [JsonIgnore] public override string Op => "device";
}

/// <summary>A process address space appears. <paramref name="Lam"/>: x86 LAM enabled (arch_pgtable_dma_compat false).
/// <paramref name="Pasid"/>: an mm first seen in a capture already holding that PASID (bound before the capture started).</summary>
public sealed record CreateMm(string Mm, bool Lam = false, bool Inferred = false, int? Pasid = null) : KernelCall
{
    [JsonIgnore] public override string Op => "mm";
}

/// <summary>Declares a VMA of the mm. An mm without VMA lines maps every address read/write.</summary>
public sealed record MapVma(string Mm, ulong Start, ulong End, string Prot) : KernelCall
{
    [JsonIgnore] public override string Op => "vma";
}

/// <summary>iommu_sva_bind_device(dev, mm). <paramref name="Name"/> labels the returned handle for later calls.</summary>
public sealed record Bind(string Device, string Mm, string? Name = null) : KernelCall
{
    [JsonIgnore] public override string Op => "bind";
}

/// <summary>iommu_sva_unbind_device(handle). <paramref name="Handle"/> is a script label or a handle id (H1…).</summary>
public sealed record Unbind(string Handle) : KernelCall
{
    [JsonIgnore] public override string Op => "unbind";
}

/// <summary>
/// A page request from the device: <paramref name="Pasid"/> null is a request without PASID (RID traffic).
/// <paramref name="Group"/> is the page-request group id; only <paramref name="Last"/> requests trigger handling.
/// </summary>
public sealed record PageFault(string Device, int? Pasid, ulong Address, string Access, int? Group, bool Last) : KernelCall
{
    [JsonIgnore] public override string Op => "fault";
}

/// <summary>A CPU page-table change over [Start, End) of the mm (munmap, migration…): secondary TLBs follow.</summary>
public sealed record InvalidateRange(string Mm, ulong Start, ulong End) : KernelCall
{
    [JsonIgnore] public override string Op => "invalidate";
}

/// <summary>The process exits: exit_mmap runs the mmu_notifier release (mm_users reaches 0).</summary>
public sealed record MmExit(string Mm) : KernelCall
{
    [JsonIgnore] public override string Op => "exit";
}

/// <summary>The process's last mmdrop. The PASID is freed once nothing else holds mm_count.</summary>
public sealed record MmDrop(string Mm) : KernelCall
{
    [JsonIgnore] public override string Op => "drop";
}

/// <summary>A non-SVA domain: <c>paging</c>, <c>identity</c> or <c>blocked</c>.</summary>
public sealed record AllocDomain(string Name, string Type) : KernelCall
{
    [JsonIgnore] public override string Op => "domain";
}

/// <summary>iommu_attach_device_pasid (with a PASID) or a RID attach (without).</summary>
public sealed record AttachDomain(string Domain, string Device, int? Pasid) : KernelCall
{
    [JsonIgnore] public override string Op => "attach";
}

public sealed record DetachDomain(string Domain, string Device, int? Pasid) : KernelCall
{
    [JsonIgnore] public override string Op => "detach";
}

public sealed record MapIova(string Domain, ulong Iova, ulong End, ulong Paddr) : KernelCall
{
    [JsonIgnore] public override string Op => "map";
}

public sealed record UnmapIova(string Domain, ulong Iova, ulong End) : KernelCall
{
    [JsonIgnore] public override string Op => "unmap";
}
