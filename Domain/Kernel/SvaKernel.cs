using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// decide(state, call) → events, under one kernel version's rules. <see cref="Execute"/> applies each
/// event to the state as it is decided (the kernel's own steps read what earlier steps did), so the
/// state afterwards is exactly fold(state, events). <see cref="Decide"/> is the pure form on a copy.
/// Every call yields at least one event, so every outcome has a seq.
/// </summary>
public static partial class SvaKernel
{
    /// <summary>Pages from which a range invalidation becomes a whole-ASID one (SMMU without range invalidation: 1 &lt;&lt; (PAGE_SHIFT-3)).</summary>
    public const ulong WholeAsidPages = 512;
    public const ulong PageSize = 4096;

    public static IReadOnlyList<SvaEvent> Decide(KernelVersion version, SvaState state, KernelCall call) =>
        Execute(version, state.Clone(), call);

    public static IReadOnlyList<SvaEvent> Execute(KernelVersion version, SvaState state, KernelCall call)
    {
        var k = new Run(version.Rules, state);
        k.Dispatch(call);
        return k.Events;
    }

    private sealed partial class Run(KernelRules r, SvaState s)
    {
        public readonly List<SvaEvent> Events = new();

        private const string Sim = "sim.unknown-object";

        private void Emit(SvaEvent e)
        {
            Evolve.Apply(s, e);
            Events.Add(e);
        }

        public void Dispatch(KernelCall call)
        {
            switch (call)
            {
                case ProbeDevice c: Probe(c); break;
                case CreateMm c: CreateMm(c); break;
                case MapVma c: MapVma(c); break;
                case Bind c: Bind(c); break;
                case Unbind c: Unbind(c); break;
                case PageFault c: Fault(c); break;
                case InvalidateRange c: Invalidate(c); break;
                case MmExit c: Exit(c); break;
                case MmDrop c: Drop(c); break;
                case AllocDomain c: AllocDomain(c); break;
                case AttachDomain c: Attach(c); break;
                case DetachDomain c: Detach(c); break;
                case MapIova c: Map(c); break;
                case UnmapIova c: Unmap(c); break;
                default: throw new ArgumentException($"unknown call {call.GetType().Name}");
            }
            if (Events.Count == 0) throw new InvalidOperationException($"call {call.Op} decided no event");
        }

        // ---- devices and mms ------------------------------------------------------------------------
        private void Probe(ProbeDevice c)
        {
            if (s.Devices.ContainsKey(c.Device)) { Emit(new CallFailed("device", null, $"device {c.Device} is already probed", Sim)); return; }
            if (c.MaxPasids < 0) { Emit(new CallFailed("device", Errno.EINVAL, $"max_pasids {c.MaxPasids} is negative", "sim.misuse")); return; }
            if (!Drivers.All.Contains(c.Driver)) { Emit(new CallFailed("device", Errno.EINVAL, $"unknown IOMMU driver '{c.Driver}' (smmuv3, vtd, amd)", "sim.misuse")); return; }
            var group = c.Group ?? s.NextGroup;
            Emit(new DeviceProbed(c.Device, c.MaxPasids, group, c.Sva, c.Iopf, c.Iommu, c.Inferred, c.Driver));
        }

        private void CreateMm(CreateMm c)
        {
            if (s.Mms.ContainsKey(c.Mm)) { Emit(new CallFailed("mm", null, $"mm {c.Mm} already exists", Sim)); return; }
            if (c.Pasid is int want && (want < 1 || s.Pasids.ContainsKey(want)))
            {
                Emit(new CallFailed("mm", Errno.EINVAL, want < 1 ? $"PASID {want} is not allocatable" : $"PASID {want} is held by mm {s.Pasids[want]}", "sim.misuse"));
                return;
            }
            Emit(new MmCreated(c.Mm, c.Lam, c.Inferred));
            if (c.Pasid is int pasid) Emit(new PasidAllocated(c.Mm, pasid));
        }

        private void MapVma(MapVma c)
        {
            if (!s.Mms.TryGetValue(c.Mm, out var mm)) { Emit(new CallFailed("vma", null, $"no such mm {c.Mm}", Sim)); return; }
            if (mm.State != MmLife.Live) { Emit(new CallFailed("vma", null, $"mm {c.Mm} has exited", "sim.misuse")); return; }
            if (c.End <= c.Start) { Emit(new CallFailed("vma", Errno.EINVAL, $"empty range {SvaJson.Hex(c.Start)}-{SvaJson.Hex(c.End)}", "sim.misuse")); return; }
            Emit(new VmaMapped(c.Mm, c.Start, c.End, c.Prot));
        }
    }
}
