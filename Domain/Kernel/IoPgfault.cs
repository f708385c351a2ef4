using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>page requests (drivers/iommu/io-pgfault.c): the <c>iopf-queue</c>, <c>fault-*</c> switches, and the Arm abort after release.</summary>
public static partial class SvaKernel
{
    private sealed partial class Run
    {
        // ---- the switches of this file: each is read here and nowhere else (KernelSwitches names them) ----
        /// <summary>Switch <c>fault-no-domain</c>.</summary>
        private RefusedFaultAnswer NoDomain => r.NoDomainAnswer;
        /// <summary>Switch <c>fault-no-iopf-queue</c>.</summary>
        private RefusedFaultAnswer NoQueue => r.NotOnIopfQueueAnswer;
        /// <summary>Switch <c>iopf-queue</c>.</summary>
        private bool IopfGeneric => r.GenericIopf;

        /// <summary>
        /// A page request (kernel-sva.md §3.1 as corrected by §9). Per request: a non-SVA domain at the slot means
        /// plain DMA (translated, or an unrecoverable fault); on 6.11+ an Arm master whose PASID entry is the
        /// fault-everything CD (released mm) has the access aborted by the SMMU; otherwise the IOPF path of the version: where the handler
        /// is looked up, what a refused request gets back, the partial list, then the group's requests one by
        /// one (sticky errors) and one response for the group.
        /// </summary>
        private void Fault(PageFault c)
        {
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("fault", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            var group = s.GroupOf(dev);

            var slotDomain = c.Pasid is int sp
                ? (group.PasidArray.TryGetValue(sp, out var sl) ? s.Domain(sl.Domain) : null)
                : s.DomainById(group.RidDomain);
            if (slotDomain is { Type: not "sva" }) { Dma(dev, c, slotDomain); return; }

            // 6.11+ Arm (§9): release wrote a fault-everything CD with CD_0_S/CD_0_R cleared (the modelled masters
            // have no STALL_FORCE): the SMMU aborts the access itself: no event, no fault report, no page response.
            if (IsArm(dev) && r.ArmReleaseAbortsAccess && c.Pasid is int ap && dev.PasidTable.TryGetValue(ap, out var entry) && entry.Mode == "fault-all")
            {
                Emit(new AccessAborted(dev.Id, c.Pasid, c.Address, c.Access, c.Group,
                    $"PASID {ap} of {dev.Id} holds a fault-everything CD (mm {entry.Mm} released): the SMMU aborts the access, no page request", "arm.access-aborted"));
                return;
            }

            // The VT-d driver's own checks (prq_event_thread), the AMD PPR filter (6.10+), before the IOPF core.
            // 5.11–5.13 VT-d (D4): prq_event_thread handles every request itself, one at a time; no IOPF queue.
            if (IsVtd(dev) && VtdPrqMode == VtdPrq.InDriver) { VtdPrqInDriver(dev, c); return; }
            if (IsVtd(dev) && VtdPrqAnswered(dev, c, GroupSize(dev, c))) return;
            if (IsAmd(dev) && AmdPprAnswered(dev, c, GroupSize(dev, c))) return;

            // The SVA domain that handles this request's PASID (the IOPF handler), if any.
            var handler = c.Pasid is int hp && group.PasidArray.TryGetValue(hp, out var hs) ? s.Domain(hs.Domain) : null;
            var what = c.Pasid is null ? "RID" : $"PASID {c.Pasid}";

            // 6.11+ (b58b133e680b, the Aug-2024 fix): find_fault_handler before anything else, for every request.
            if (r.FaultHandlerLookup == FaultHandlerLookup.BeforeAnything && handler is null)
            {
                Refuse(NoDomain, dev, c, GroupSize(dev, c), $"iopf ({what}) without a fault handler", "iopf.no-handler-invalid");
                return;
            }
            // No IOPF queue: iommu_report_device_fault fails (or WARNs) for every request, last or not.
            // (5.11–5.13 VT-d handles page requests in the driver: no queue involved.)
            if (!dev.Iopf && !(IsVtd(dev) && VtdPrqMode == VtdPrq.InDriver))
            {
                Refuse(NoQueue, dev, c, 1, $"{dev.Id} is not on an IOPF queue", NoQueue switch
                {
                    RefusedFaultAnswer.Failure => "iopf.no-queue-failure",
                    RefusedFaultAnswer.NoResponse => "iopf.no-queue-withheld",
                    _ => "iopf.no-queue-invalid",
                });
                return;
            }
            // Non-last requests are parked on the partial list, never answered.
            if (!c.Last)
            {
                Emit(new PageRequestQueued(dev.Id, c.Pasid, c.Group, c.Address, c.Access, Prq("iopf.partial")));
                return;
            }

            // The last request: the group is the parked requests with its grpid (iopf_group_alloc matches
            // on grpid only), then this one.
            var requests = dev.Partial.Where(p => p.Group == c.Group)
                .Select(p => (p.Address, p.Access)).Append((c.Address, c.Access)).ToList();

            MmObj mm;
            switch (r.FaultDispatch)
            {
                case FaultDispatch.GlobalPasidLookup:
                    // 5.13–6.1: the work item finds the mm by PASID, globally (iommu_sva_find).
                    if (c.Pasid is not int gp) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count, Prq("iopf.global-pasid")); return; }
                    if (!s.Pasids.TryGetValue(gp, out var owner)) { Respond(dev, c, PageResponseCode.INVALID, $"iommu_sva_find({gp}): PASID not allocated", requests.Count, Prq("iopf.global-pasid")); return; }
                    mm = s.Mms[owner];
                    break;
                case FaultDispatch.DomainLookupInWork:
                    // 6.2–6.6: the work item looks up iommu_get_domain_for_dev_pasid(dev, pasid, 0).
                    if (c.Pasid is null) { Respond(dev, c, PageResponseCode.INVALID, "page request without PASID", requests.Count, "iopf.domain-in-work"); return; }
                    if (handler is null) { Respond(dev, c, PageResponseCode.INVALID, $"no domain attached at {what}", requests.Count, "iopf.domain-in-work"); return; }
                    mm = s.Mms[handler.Mm!];
                    break;
                default:
                    // 6.7+: the report path looks the domain (6.11+: the attach handle) up; refusals per version.
                    if (handler is null)
                    {
                        if (NoDomain == RefusedFaultAnswer.Invalid)
                            // 6.7–6.8 (§9): the work item iopf_handler finds no domain and answers INVALID itself.
                            Respond(dev, c, PageResponseCode.INVALID, $"iopf_handler: no domain attached at {what}", requests.Count, "iopf.no-domain-invalid-6.7");
                        else
                            Refuse(NoDomain, dev, c, requests.Count, $"iopf with {what} aborted: no domain attached", "iopf.no-domain-failure");
                        return;
                    }
                    mm = s.Mms[handler.Mm!];
                    break;
            }

            // iommu_sva_handle_mm / iopf_handler: one request after the other, the first error is sticky.
            foreach (var (addr, access) in requests)
            {
                if (mm.MmUsers == 0) { Respond(dev, c, PageResponseCode.INVALID, $"mmget_not_zero(mm {mm.Id}) failed: process exited", requests.Count, Prq("iopf.mm-exited")); return; }
                var denied = VmaDenies(mm, addr, access, IsArm(dev) ? ArmTaskSize : TaskSizeMax);
                if (denied is not null) { Respond(dev, c, PageResponseCode.INVALID, denied, requests.Count, Prq("iopf.vma-denied")); return; }
            }
            Respond(dev, c, PageResponseCode.SUCCESS, $"handle_mm_fault in mm {mm.Id}", requests.Count, Prq("iopf.handled"));
        }

        /// <summary>The generic IOPF rule, or before 5.13 the vendor page-request path it stands in for [U].</summary>
        private string Prq(string generic) => IopfGeneric ? generic : "iopf.vendor-prq";

        private static int GroupSize(DeviceObj dev, PageFault c) => c.Last ? dev.Partial.Count(p => p.Group == c.Group) + 1 : 1;

        /// <summary>DMA through a paging, identity or blocked domain: no page request, translated or an unrecoverable fault.</summary>
        private void Dma(DeviceObj dev, PageFault c, DomainObj d)
        {
            switch (d.Type)
            {
                case "identity":
                    Emit(new DmaTranslated(dev.Id, c.Pasid, c.Address, c.Access, d.Id, c.Address, DmaRule));
                    return;
                case "blocked":
                    Emit(new DmaFaultReported(dev.Id, c.Pasid, c.Address, c.Access, d.Id, $"blocked domain {d.Id}: all DMA is refused", DmaRule));
                    return;
            }
            var m = d.Mappings.FirstOrDefault(m => c.Address >= m.Iova && c.Address < m.End);
            if (m is not null) Emit(new DmaTranslated(dev.Id, c.Pasid, c.Address, c.Access, d.Id, m.Paddr + (c.Address - m.Iova), DmaRule));
            else Emit(new DmaFaultReported(dev.Id, c.Pasid, c.Address, c.Access, d.Id, $"iova {SvaJson.Hex(c.Address)} is not mapped in {d.Id}", DmaRule));
        }

        private static string? VmaDenies(MmObj mm, ulong addr, string access, ulong taskSize)
        {
            // D10: an mm without vma lines maps its whole user address space rw, nothing above TASK_SIZE.
            if (addr >= taskSize) return $"no VMA at {SvaJson.Hex(addr)}: above the user address space (TASK_SIZE)";
            if (mm.Vmas.Count == 0) return access.Contains('x') ? $"no exec permission at {SvaJson.Hex(addr)} (implicit rw mapping)" : null;
            var vma = mm.Vmas.FirstOrDefault(v => addr >= v.Start && addr < v.End);
            if (vma is null) return $"no VMA at {SvaJson.Hex(addr)} in mm {mm.Id}";
            foreach (var want in access)
                if (!vma.Prot.Contains(want)) return $"access '{access}' not permitted by VMA {SvaJson.Hex(vma.Start)}-{SvaJson.Hex(vma.End)} prot={vma.Prot}";
            return null;
        }

        private const string DmaRule = "dma.non-sva-domain";

        /// <summary>
        /// Send the group's page response. VT-d (QI_PGRP_RESP_CODE(msg->code), and the in-driver QI_RESP_SUCCESS/INVALID) and
        /// AMD (amd_iommu_complete_ppr(resp->code)) put the core's code on the wire as it is: the event carries it (D17).
        /// </summary>
        private void Respond(DeviceObj dev, PageFault c, PageResponseCode code, string reason, int requests, string rule) =>
            Emit(new PageResponseSent(dev.Id, c.Pasid, c.Group, code, reason, requests, rule, IsArm(dev) ? null : (int)code));

        private void Refuse(RefusedFaultAnswer answer, DeviceObj dev, PageFault c, int requests, string reason, string rule)
        {
            switch (answer)
            {
                case RefusedFaultAnswer.Failure: Respond(dev, c, PageResponseCode.FAILURE, reason + ": -EINVAL, driver aborts", requests, rule); break;
                case RefusedFaultAnswer.Invalid: Respond(dev, c, PageResponseCode.INVALID, reason + ": core answers INVALID", requests, rule); break;
                default: Emit(new PageResponseWithheld(dev.Id, c.Pasid, c.Group, reason + ": WARN, no response", requests, rule)); break;
            }
        }
    }
}
