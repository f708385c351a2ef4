using System.Globalization;
using Sva.Domain;
using Sva.Domain.Json;

namespace Sva.Formats.Generate;

/// <summary>A kernel call as one line of the .sva grammar (what <see cref="Script.ScriptParser"/> reads back to the same call).</summary>
public static class ScriptText
{
    public static string Format(KernelCall call) => call switch
    {
        ProbeDevice d => $"device {d.Device} pasids={N(d.MaxPasids)}{(d.Group is int g ? $" group={N(g)}" : "")}{(d.Sva ? "" : " sva=off")}{(d.Iopf ? "" : " iopf=off")}{(d.Iommu == "iommu0" ? "" : $" iommu={d.Iommu}")}{(d.Driver == Drivers.Default ? "" : $" driver={d.Driver}")}",
        CreateMm m => m.Pasid is null && !m.Inferred
            ? $"mm {m.Mm}{(m.Lam ? " lam" : "")}"
            : throw new ArgumentException("an inferred mm or an mm with a captured PASID has no script form"),
        MapVma v => $"vma {v.Mm} {H(v.Start)}-{H(v.End)} prot={v.Prot}",
        Bind b => b.Name is null ? $"bind {b.Device} {b.Mm}" : $"bind {b.Name} {b.Device} {b.Mm}",
        Unbind u => $"unbind {u.Handle}",
        PageFault f => $"fault {f.Device}{(f.Pasid is int p ? $" pasid={N(p)}" : "")} addr={H(f.Address)} access={f.Access}{(f.Group is int g ? $" group={N(g)}" : "")}{(f.Last && f.Group is not null ? " last" : "")}"
            + (f.Group is null && !f.Last ? throw new ArgumentException("a fault without a group is always its own last request") : ""),
        InvalidateRange i => $"invalidate {i.Mm} {H(i.Start)}-{H(i.End)}",
        MmExit e => $"exit {e.Mm}",
        MmDrop d => $"drop {d.Mm}",
        AllocDomain d => $"domain {d.Name} type={d.Type}",
        AttachDomain a => $"attach {a.Domain} {a.Device}{(a.Pasid is int p ? $" pasid={N(p)}" : "")}",
        DetachDomain a => $"detach {a.Domain} {a.Device}{(a.Pasid is int p ? $" pasid={N(p)}" : "")}",
        MapIova m => $"map {m.Domain} {H(m.Iova)}-{H(m.End)} paddr={H(m.Paddr)}",
        UnmapIova u => $"unmap {u.Domain} {H(u.Iova)}-{H(u.End)}",
        _ => throw new ArgumentException($"no script form for {call.GetType().Name}"),
    };

    private static string H(ulong v) => SvaJson.Hex(v);
    private static string N(int v) => v.ToString(CultureInfo.InvariantCulture);
}
