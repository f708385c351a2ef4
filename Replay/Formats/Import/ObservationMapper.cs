using System.Globalization;
using Sva.Domain;
using Sva.Formats.Captures;

namespace Sva.Formats.Import;

/// <summary>A kernel call an observation implies. <paramref name="Inferred"/>: the capture did not print it but what
/// it printed needs it (a device or mm first seen, a bind made before the capture started, the DMA domain).</summary>
public sealed record PlannedCall(KernelCall Call, bool Inferred);

/// <summary>What one observation becomes: the <see cref="CaptureObserved"/> event (always) and the calls to decide after it.</summary>
public sealed record MappedObservation(CaptureObserved Observed, IReadOnlyList<PlannedCall> Calls);

/// <summary>
/// Observation → kernel calls (pure: a function of the observation and the session state before it).
/// The table is in README.md next to this file and in <see cref="Describe"/>; every default is named here.
/// </summary>
public static class ObservationMapper
{
    /// <summary>max_pasids of a device first seen in a capture: 20 PASID bits (SMMUv3 SSID and VT-d both allow 2^20).</summary>
    public const int InferredMaxPasids = 1 << 20;

    /// <summary>The one paging domain that captures' DMA-API traffic (map/unmap, RID faults) is modelled on. The
    /// mainline map/unmap trace events name no device or domain, so every device seen doing DMA without PASID has
    /// its RID attached to this domain.</summary>
    public const string DmaDomain = "capture-dma";

    /// <summary>The IOMMU name of an inferred device when the observation does not name one.</summary>
    public const string DefaultIommu = "iommu0";

    /// <summary>The label of the handle a capture bind returns, so that a later unbind of (device, PASID) finds it
    /// (also after it was freed: "use after free").</summary>
    public static string HandleLabel(string device, int pasid) => string.Create(CultureInfo.InvariantCulture, $"pasid{pasid}@{device}");

    /// <summary>The name of the n-th mm seen holding <paramref name="pasid"/> (mm.pasid1, mm.pasid1.2, ...).</summary>
    public static string MmName(int pasid, int incarnation = 1) =>
        incarnation <= 1 ? string.Create(CultureInfo.InvariantCulture, $"mm.pasid{pasid}") : string.Create(CultureInfo.InvariantCulture, $"mm.pasid{pasid}.{incarnation}");

    public static CaptureObserved Observed(Observation o) =>
        new(o.Format, o.Kind.ToString(), o.Device, o.Pasid, o.Address, o.End, o.Group, o.Last, o.Access, o.ResponseCode, o.Timestamp, o.RawText);

    public static MappedObservation Map(Observation o, SvaState state)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(state);
        var p = new Planner(state);
        p.Plan(o);
        return new MappedObservation(Observed(o), p.Calls);
    }

    /// <summary>What each observation kind becomes (for 'sva formats' and the README).</summary>
    public static string Describe(ObservationKind kind) => kind switch
    {
        ObservationKind.GroupAddDevice => "device (inferred) if first seen",
        ObservationKind.GroupRemoveDevice => "observation only",
        ObservationKind.AttachDevice => $"device; RID attach of the paging domain '{DmaDomain}' (inferred) if the RID has none",
        ObservationKind.DetachDevice => $"detach '{DmaDomain}' from the RID if attached",
        ObservationKind.Map => $"map on '{DmaDomain}' (domain inferred)",
        ObservationKind.Unmap => $"unmap on '{DmaDomain}'",
        ObservationKind.IoPageFault or ObservationKind.DmarFault or ObservationKind.AmdViIoPageFault or ObservationKind.QemuVtdFault
            or ObservationKind.QemuVtdError =>
            $"DMA fault: device; without PASID: RID attached to '{DmaDomain}' if it has no domain, then a fault without PASID (unrecoverable: dma_fault_reported, or dma_translated if mapped); with PASID: a fault only when a non-SVA domain holds that PASID, else observation only",
        ObservationKind.PrqReport => "page request: device; mm + bind inferred for a PASID first seen; fault (group = index, last = 'l'); a stop marker (no r/w/x) is observation only",
        ObservationKind.QiSubmit => "observation (page_grp_resp: the observed page response, checked for conformance)",
        ObservationKind.CacheTagAssign or ObservationKind.CacheTagUnassign or ObservationKind.CacheTagFlushAll or ObservationKind.CacheTagFlushRange =>
            "device (inferred) if first seen; observation",
        ObservationKind.DevFault => "type=2: page request (as prq_report; group, last from flags bit 1 or last=); other types: DMA fault",
        ObservationKind.DevPageResponse => "observation: the observed page response, checked for conformance",
        ObservationKind.SvaInvalidate => "observation only",
        ObservationKind.SmmuBindAlloc => "device, mm named after the PASID (created holding it when no mm does; an exited mm without handles is dropped first: the PASID was recycled), bind",
        ObservationKind.SmmuUnbindFree => "unbind of the handle bound for (device, PASID); a PASID first seen: inferred mm + bind first",
        ObservationKind.SmmuMmInvalidate => "invalidate on the PASID's mm (inferred if first seen)",
        ObservationKind.SmmuMmRelease => "exit (mm release) of the PASID's mm",
        ObservationKind.IoMm => "io_mm_alloc: mm; io_mm_attach: bind; io_mm_detach: unbind; io_mm_invalidate: invalidate; io_mm_exit/io_mm_release: exit; others observation only",
        ObservationKind.SmmuResume or ObservationKind.SmmuCdSync or ObservationKind.SmmuEvt or ObservationKind.IopfError => "observation only",
        ObservationKind.DmarFaultStatus or ObservationKind.DmarPrqError or ObservationKind.AmdViInvalidDeviceRequest or ObservationKind.AmdViEvent =>
            "device (inferred) if named; observation",
        ObservationKind.SmmuV3Event => "F_TRANSLATION..F_PERMISSION with stall: page request (group = stag, last) with the SSID as PASID; without stall: DMA fault; other events: observation. Raw words only (no client printed): the master is the inferred device 'sid0x<StreamID>@<smmu>'",
        ObservationKind.ArmSmmuContextFault or ObservationKind.ArmSmmuGlobalFault =>
            "observation only: Arm SMMU v1/v2 faults are not SVA (stream id, iova, fault kind kept in the observation; no device is inferred)",
        ObservationKind.QemuVtdTranslate or ObservationKind.QemuVtdSlpte or ObservationKind.QemuVtd or ObservationKind.QemuSmmuV3 => "device (inferred) if named; observation",
        ObservationKind.JsonCall => "the call itself (device, bind, unbind, fault, invalidate, exit, drop; page_response is an observation); devices first seen are inferred, mms named by a bind are created",
        _ => "observation only",
    };

    private sealed class Planner(SvaState s)
    {
        public readonly List<PlannedCall> Calls = new();
        private readonly HashSet<string> probed = new(StringComparer.Ordinal);
        private readonly HashSet<string> mms = new(StringComparer.Ordinal);
        private readonly Dictionary<int, string> pasidOwners = new();
        private readonly HashSet<string> ridAttached = new(StringComparer.Ordinal);
        private readonly HashSet<string> labels = new(StringComparer.Ordinal);
        private bool dmaDomain;

        private void Add(KernelCall call, bool inferred = false) => Calls.Add(new PlannedCall(call, inferred));

        public void Plan(Observation o)
        {
            if (o.Kind == ObservationKind.JsonCall)
            {
                PlanJsonCall(o);
                return;
            }
            if (o.Device is { } dev && o.Kind != ObservationKind.GroupRemoveDevice)
                EnsureDevice(dev, IommuOf(o), DriverOf(o));
            switch (o.Kind)
            {
                case ObservationKind.AttachDevice when o.Device is { } d:
                    EnsureRidDomain(d);
                    break;
                case ObservationKind.DetachDevice when o.Device is { } d:
                    if (s.Devices.TryGetValue(d, out var dd) && s.Groups.TryGetValue(dd.Group, out var g) && g.RidDomain is { } rid
                        && s.DomainNames.TryGetValue(DmaDomain, out var dmaId) && rid == dmaId)
                        Add(new DetachDomain(DmaDomain, d, null));
                    break;
                case ObservationKind.Map when o.Address is { } a && o.End is { } e && e > a:
                    EnsureDmaDomain();
                    Add(new MapIova(DmaDomain, a, e, Number(o.Field("paddr")) ?? 0));
                    break;
                case ObservationKind.Unmap when o.Address is { } a && o.End is { } e && e > a:
                    EnsureDmaDomain();
                    Add(new UnmapIova(DmaDomain, a, e));
                    break;
                case ObservationKind.IoPageFault or ObservationKind.DmarFault or ObservationKind.AmdViIoPageFault
                    or ObservationKind.QemuVtdFault or ObservationKind.QemuVtdError:
                    DmaFault(o);
                    break;
                case ObservationKind.PrqReport:
                    PageRequest(o, o.Group, o.Last ?? false);
                    break;
                case ObservationKind.DevFault:
                    // type 2 = IOMMU_FAULT_PAGE_REQ; a jsonl DevFault without a type is a page request when it has a group
                    if (o.Field("type") is "2" || (o.Field("type") is null && o.Group is not null)) PageRequest(o, o.Group, o.Last ?? true);
                    else DmaFault(o);
                    break;
                case ObservationKind.SmmuV3Event:
                    SmmuEvent(o);
                    break;
                case ObservationKind.SmmuBindAlloc when o.Device is { } d && o.Pasid is { } pasid:
                    BindPasid(d, pasid);
                    break;
                case ObservationKind.SmmuUnbindFree when o.Device is { } d && o.Pasid is { } pasid:
                    UnbindPasid(d, pasid);
                    break;
                case ObservationKind.SmmuMmInvalidate when o.Pasid is { } pasid && o.Address is { } a && o.End is { } e:
                    Add(new InvalidateRange(MmOf(pasid), a, e));
                    break;
                case ObservationKind.SmmuMmRelease when o.Pasid is { } pasid:
                    Add(new MmExit(MmOf(pasid)));
                    break;
                case ObservationKind.IoMm:
                    IoMm(o);
                    break;
            }
        }

        // ---- objects ------------------------------------------------------------------------------------
        private static string? IommuOf(Observation o)
        {
            // prq_report / cache_tag_* / qi_submit print the IOMMU ("dmar0"); SMMUv3 dmesg lines carry it in the driver prefix.
            if (o.Field("iommu") is { Length: > 0 } i) return i;
            if (o.Kind == ObservationKind.SmmuV3Event && o.Field("@dev") is { Length: > 0 } smmu) return smmu;
            return null;
        }

        /// <summary>
        /// The IOMMU driver an observation reveals: SMMUv3 events (the Arm SVA development events smmu_*, the
        /// SMMUv3 event queue, QEMU smmuv3_*) → smmuv3; DMAR, PRQ and the intel_iommu events, QEMU vtd_* → vtd;
        /// AMD-Vi → amd. An IOMMU instance name (dmarN, smmuN / arm-smmu-v3, AMD-Vi) decides too. Null: nothing
        /// driver-specific (mainline iommu: events, dev_fault, io_mm_*): the device gets the default driver.
        /// </summary>
        public static string? DriverOf(Observation o)
        {
            switch (o.Kind)
            {
                case ObservationKind.SmmuBindAlloc or ObservationKind.SmmuUnbindFree or ObservationKind.SmmuMmInvalidate
                    or ObservationKind.SmmuMmRelease or ObservationKind.SmmuResume or ObservationKind.SmmuCdSync or ObservationKind.SmmuEvt
                    or ObservationKind.SmmuV3Event or ObservationKind.QemuSmmuV3:
                    return Drivers.SmmuV3;
                case ObservationKind.PrqReport or ObservationKind.QiSubmit or ObservationKind.CacheTagAssign or ObservationKind.CacheTagUnassign
                    or ObservationKind.CacheTagFlushAll or ObservationKind.CacheTagFlushRange or ObservationKind.DmarFault
                    or ObservationKind.DmarFaultStatus or ObservationKind.DmarPrqError or ObservationKind.QemuVtdFault
                    or ObservationKind.QemuVtdTranslate or ObservationKind.QemuVtdSlpte or ObservationKind.QemuVtdError or ObservationKind.QemuVtd:
                    return Drivers.Vtd;
                case ObservationKind.AmdViIoPageFault or ObservationKind.AmdViInvalidDeviceRequest or ObservationKind.AmdViEvent:
                    return Drivers.Amd;
            }
            var iommu = o.Field("iommu") ?? o.Field("@dev");
            if (iommu is null) return null;
            if (iommu.StartsWith("dmar", StringComparison.OrdinalIgnoreCase)) return Drivers.Vtd;
            if (iommu.Contains("smmu", StringComparison.OrdinalIgnoreCase)) return Drivers.SmmuV3;
            if (iommu.Contains("AMD-Vi", StringComparison.OrdinalIgnoreCase)) return Drivers.Amd;
            return null;
        }

        private bool DeviceKnown(string dev) => s.Devices.ContainsKey(dev) || probed.Contains(dev);

        private void EnsureDevice(string dev, string? iommu = null, string? driver = null)
        {
            if (DeviceKnown(dev)) return;
            probed.Add(dev);
            Add(new ProbeDevice(dev, InferredMaxPasids, null, Sva: true, Iopf: true, Iommu: iommu ?? DefaultIommu, Inferred: true, Driver: driver ?? Drivers.Default), inferred: true);
        }

        private bool MmKnown(string mm) => s.Mms.ContainsKey(mm) || mms.Contains(mm);

        private string FreshMmName(int pasid)
        {
            for (var n = 1; ; n++)
            {
                var name = MmName(pasid, n);
                if (!MmKnown(name)) return name;
            }
        }

        /// <summary>The mm holding <paramref name="pasid"/>, or a new one created holding it (inferred).</summary>
        private string MmOf(int pasid) => Owner(pasid) ?? CreateMmHolding(pasid);

        private string? Owner(int pasid) =>
            pasidOwners.TryGetValue(pasid, out var planned) ? planned : s.Pasids.TryGetValue(pasid, out var owner) ? owner : null;

        private string CreateMmHolding(int pasid, bool inferred = true)
        {
            var name = FreshMmName(pasid);
            mms.Add(name);
            pasidOwners[pasid] = name;
            Add(new CreateMm(name, Lam: false, Inferred: inferred, Pasid: pasid), inferred);
            return name;
        }

        private bool LabelKnown(string label) => s.HandleNames.ContainsKey(label) || labels.Contains(label);

        private void BindLabelled(string dev, string mm, int pasid, bool inferred)
        {
            var label = HandleLabel(dev, pasid);
            labels.Add(label);
            Add(new Bind(dev, mm, label), inferred);
        }

        /// <summary>
        /// A page request or stall for (dev, PASID) needs a bind. Inferred (made before the capture started) when the
        /// PASID is first seen, or its live mm was never bound to this device in the session. An mm that exited, or a
        /// device whose handle was freed, is left as it is: the fault after release / unbind is the story.
        /// </summary>
        private void EnsureBound(string dev, int pasid)
        {
            var owner = Owner(pasid);
            if (owner is null)
            {
                var mm = CreateMmHolding(pasid);
                BindLabelled(dev, mm, pasid, inferred: true);
                return;
            }
            if (LabelKnown(HandleLabel(dev, pasid)) || s.Handles.Values.Any(h => h.Device == dev && h.Pasid == pasid)) return;
            if (s.Mms.TryGetValue(owner, out var m) && m.State != MmLife.Live) return;
            BindLabelled(dev, owner, pasid, inferred: true);
        }

        private void BindPasid(string dev, int pasid)
        {
            var owner = Owner(pasid);
            if (owner is not null && s.Mms.TryGetValue(owner, out var m) && m.State != MmLife.Live && m.Handles.Count == 0)
            {
                // A new bind of a PASID whose process exited and holds no bond: the capture's kernel dropped that mm
                // and recycled its PASID for a new process (no trace event shows the mmdrop).
                if (m.State == MmLife.Exited) Add(new MmDrop(owner), inferred: true);
                owner = null;
                pasidOwners.Remove(pasid);
            }
            var mm = owner ?? CreateMmHolding(pasid);
            BindLabelled(dev, mm, pasid, inferred: false);
        }

        private void UnbindPasid(string dev, int pasid)
        {
            var live = s.Handles.Values.FirstOrDefault(h => h.Device == dev && h.Pasid == pasid);
            if (live is not null)
            {
                Add(new Unbind(live.Id));
                return;
            }
            var label = HandleLabel(dev, pasid);
            if (!LabelKnown(label))
            {
                // Never bound on this device in the session: the bind happened before the capture started.
                var owner = Owner(pasid);
                if (owner is null || mms.Contains(owner) || (s.Mms.TryGetValue(owner, out var m) && m.State == MmLife.Live))
                    BindLabelled(dev, owner ?? CreateMmHolding(pasid), pasid, inferred: true);
                else
                    return; // its mm exited before the capture showed this device: nothing the simulator had (observation only)
            }
            Add(new Unbind(label));
        }

        private void EnsureDmaDomain()
        {
            if (dmaDomain || s.DomainNames.ContainsKey(DmaDomain)) return;
            dmaDomain = true;
            Add(new AllocDomain(DmaDomain, "paging"), inferred: true);
        }

        /// <summary>The device's RID gets the capture's paging domain unless something is attached there already.</summary>
        private void EnsureRidDomain(string dev)
        {
            if (ridAttached.Contains(dev)) return;
            if (s.Devices.TryGetValue(dev, out var d) && s.Groups.TryGetValue(d.Group, out var g) && g.RidDomain is not null) return;
            EnsureDmaDomain();
            ridAttached.Add(dev);
            Add(new AttachDomain(DmaDomain, dev, null), inferred: true);
        }

        // ---- faults -------------------------------------------------------------------------------------
        private void PageRequest(Observation o, int? group, bool last)
        {
            if (o.Device is not { } dev || o.Address is not { } addr) return;
            var access = o.Access ?? "r";
            if (access.Length == 0) return; // stop marker (no R/W): dropped by the IOMMU driver
            if (o.Pasid is { } pasid) EnsureBound(dev, pasid);
            Add(new PageFault(dev, o.Pasid, addr, access, group, last));
        }

        /// <summary>An unrecoverable fault the IOMMU reported (no page request).</summary>
        private void DmaFault(Observation o)
        {
            if (o.Device is not { } dev || o.Address is not { } addr) return;
            var access = string.IsNullOrEmpty(o.Access) ? "r" : o.Access;
            if (o.Pasid is not { } pasid)
            {
                EnsureRidDomain(dev);
                Add(new PageFault(dev, null, addr, access, null, true));
                return;
            }
            // With a PASID the simulator can only say something when a non-SVA domain is attached there: a fault on an
            // SVA PASID that the IOMMU reported as unrecoverable has no call (observation only).
            if (s.Devices.TryGetValue(dev, out var d) && s.Groups.TryGetValue(d.Group, out var g)
                && g.PasidArray.TryGetValue(pasid, out var slot) && s.DomainById(slot.Domain) is { Type: not "sva" })
                Add(new PageFault(dev, pasid, addr, access, null, true));
        }

        private void SmmuEvent(Observation o)
        {
            var id = Number(o.Field("id"));
            if (id is not (>= 0x10 and <= 0x13)) return; // C_BAD_CD, C_BAD_STE, ...: configuration errors, observation only
            if (o.Field("stall") == "1")
            {
                // A stalled transaction is reported to the IOPF core as a page request: grpid = STAG, last page.
                var stag = Number(o.Field("stag"));
                PageRequest(o, stag is { } t ? (int)Math.Min(t, int.MaxValue) : null, true);
            }
            else DmaFault(o);
        }

        private void IoMm(Observation o)
        {
            var ev = o.Field("@event") ?? "";
            if (o.Pasid is not { } pasid) return;
            switch (ev)
            {
                case "io_mm_alloc":
                    if (Owner(pasid) is null) CreateMmHolding(pasid, inferred: false);
                    break;
                case "io_mm_attach" or "io_mm_bind" when o.Device is { } d:
                    BindPasid(d, pasid);
                    break;
                case "io_mm_detach" or "io_mm_unbind" when o.Device is { } d:
                    UnbindPasid(d, pasid);
                    break;
                case "io_mm_invalidate" when o.Address is { } a && o.End is { } e:
                    Add(new InvalidateRange(MmOf(pasid), a, e));
                    break;
                case "io_mm_exit" or "io_mm_release":
                    Add(new MmExit(MmOf(pasid)));
                    break;
            }
        }

        // ---- jsonl: exact calls -------------------------------------------------------------------------
        private void PlanJsonCall(Observation o)
        {
            var op = o.Field("op");
            var dev = o.Device;
            var mm = o.Field("mm");
            switch (op)
            {
                case "device" when dev is not null:
                    probed.Add(dev);
                    Add(new ProbeDevice(dev, Int(o.Field("pasids")) ?? InferredMaxPasids, Int(o.Field("group")),
                        Bool(o.Field("sva")) ?? true, Bool(o.Field("iopf")) ?? true, o.Field("iommu") ?? DefaultIommu, Inferred: false,
                        Driver: o.Field("driver") ?? Drivers.Default));
                    break;
                case "bind" when dev is not null && mm is not null:
                    EnsureDevice(dev);
                    if (!MmKnown(mm))
                    {
                        mms.Add(mm);
                        Add(new CreateMm(mm)); // jsonl has no mm line: an mm named by a bind is declared by it
                    }
                    Add(new Bind(dev, mm, o.Field("handle") ?? o.Field("name")));
                    break;
                case "unbind":
                    if (o.Field("handle") is { } handle) Add(new Unbind(handle));
                    else if (dev is not null && mm is not null)
                    {
                        var live = s.Handles.Values.FirstOrDefault(h => h.Device == dev && h.Mm == mm);
                        Add(new Unbind(live?.Id ?? $"{mm}@{dev}"));
                    }
                    break;
                case "fault" when dev is not null && o.Address is { } addr:
                {
                    EnsureDevice(dev);
                    var pasid = o.Pasid ?? (mm is not null && s.Mms.TryGetValue(mm, out var m) ? m.Pasid : null);
                    var access = string.IsNullOrEmpty(o.Access) ? "r" : o.Access;
                    Add(new PageFault(dev, pasid, addr, access, o.Group, o.Last ?? o.Group is null));
                    break;
                }
                case "invalidate" when o.Address is { } a && o.End is { } e:
                {
                    var target = mm ?? (o.Pasid is { } p ? Owner(p) ?? MmName(p) : null);
                    if (target is not null) Add(new InvalidateRange(target, a, e));
                    break;
                }
                case "exit" when mm is not null:
                    Add(new MmExit(mm));
                    break;
                case "drop" when mm is not null:
                    Add(new MmDrop(mm));
                    break;
            }
        }

        private static ulong? Number(string? text) =>
            text is not null && Values.TryParseNumber(text, false, out var v, out var neg) && !neg ? v : null;

        private static int? Int(string? text) => Number(text) is { } v && v <= int.MaxValue ? (int)v : null;

        private static bool? Bool(string? text) => text?.ToLowerInvariant() switch
        {
            "true" or "1" or "on" => true,
            "false" or "0" or "off" => false,
            _ => null,
        };
    }
}
