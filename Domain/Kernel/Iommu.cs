using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>attach/detach of domains at a RID or PASID, map/unmap (drivers/iommu/iommu.c): the <c>pasid-attach-api</c> and <c>attach-max-pasids</c> switches.</summary>
public static partial class SvaKernel
{
    private sealed partial class Run
    {
        /// <summary>
        /// Why iommu_attach_device_pasid(domain, dev, pasid) of an SVA domain would fail; null if it succeeds.
        /// <paramref name="domain"/> null: a fresh SVA domain of <paramref name="mm"/>. Order as in the kernel:
        /// the core's checks (G4+: every group device's max_pasids; the slot), then set_dev_pasid on every
        /// device of the group (the driver's checks).
        /// </summary>
        private Failure? AttachRefusal(DomainObj? domain, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            if (MaxPasidsRefusal(group, pasid) is { } tooBig) return tooBig;
            if (group.PasidArray.TryGetValue(pasid, out var slot))
                return new(Errno.EBUSY, slot.Domain == domain?.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {slot.Domain} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}", "attach.slot-busy");
            if (RidRefusal(group, dev) is { } rid) return rid;
            if (IsAmd(dev) && AmdSetDevPasidRefusal(group, dev, pasid) is { } amd) return amd;
            // VT-d intel_svm_set_dev_pasid checks no SVA feature (D16); the PASID allocation already decided max_pasids.
            if (IsArm(dev))
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
                if (!SvaUsable(member))
                    return new(Errno.ENODEV, $"set_dev_pasid: SVA not enabled on {member.Id}{(member.MaxPasids <= 1 ? $" (max_pasids {member.MaxPasids})" : "")}", "sva.not-enabled");
            if (domain is not null && r.SvaDomainPerIommuInstance && IsArm(dev))
            {
                var owner = domain.Attached.Select(a => s.Devices[a.Device].Iommu).FirstOrDefault();
                if (owner is not null && owner != dev.Iommu)
                    return new(Errno.EINVAL, $"{domain.Id} belongs to {owner}, {dev.Id} is behind {dev.Iommu} [U]", "arm.other-smmu");
            }
            if (ExitedMmRefusal(group, dev, mm, existingDomain: domain is not null) is { } exited) return exited;
            return null;
        }

        /// <summary>G4+ (c404f55c26fc): every device of the group must have pasid &lt; max_pasids, max_pasids 0 included.</summary>
        private Failure? MaxPasidsRefusal(GroupObj group, int pasid)
        {
            if (!r.AttachChecksEveryGroupDevice) return null;
            foreach (var member in group.Devices.Select(d => s.Devices[d]))
                if (pasid >= member.MaxPasids)
                    return new(Errno.EINVAL, $"PASID {pasid} >= max_pasids {member.MaxPasids} of group member {member.Id}", "attach.member-max-pasids");
            return null;
        }

        /// <summary>The driver enables SVA only on a master that has it on and has SSIDs (max_pasids >= 2).</summary>
        private static bool SvaUsable(DeviceObj d) => d.Sva && d.MaxPasids > 1;

        /// <summary>Take the group's pasid_array slot, program every device; G2–G4 Arm also gets its bond/notifier.</summary>
        private void AttachSva(string domain, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            Emit(new DomainAttached(domain, dev.Id, pasid, group.Devices.ToList()));
            if (DomainNotifier(dev)) return;
            if (IsArm(dev)) ArmBondGet(group, mm, writeEntries: false);
            else VtdSvmGet(group, mm, writeEntries: false);
        }

        private void DetachSva(DomainObj d, DeviceObj dev, int pasid, MmObj mm)
        {
            var group = s.GroupOf(dev);
            var at = d.Attached.FirstOrDefault(a => a.Pasid == pasid && s.Devices[a.Device].Group == group.Id);
            Emit(new DomainDetached(d.Id, at?.Device ?? dev.Id, pasid, at?.Devices.ToList() ?? group.Devices.ToList()));
            if (!DomainNotifier(dev))
            {
                if (IsArm(dev)) ArmBondPut(group, mm, pasid, clearEntries: false);
                else VtdSvmPut(group, mm, pasid, clearEntries: false);
            }
            MaybeMmFree(mm);
        }

        private void AllocDomain(AllocDomain c)
        {
            if (s.DomainNames.ContainsKey(c.Name)) { Emit(new CallFailed("domain", Errno.EEXIST, $"domain {c.Name} already exists", Sim)); return; }
            if (c.Type is not ("paging" or "identity" or "blocked")) { Emit(new CallFailed("domain", Errno.EINVAL, $"domain type '{c.Type}' is not paging, identity or blocked", "sim.misuse")); return; }
            Emit(new DomainAllocated("D" + s.NextDomain, c.Name, c.Type));
        }

        private DomainObj? Named(string op, string name)
        {
            if (s.DomainNames.TryGetValue(name, out var id)) return s.Domain(id);
            var byId = s.DomainById(name);
            if (byId is not null) return byId;
            Emit(new CallFailed(op, Errno.EINVAL, $"no such domain {name}", Sim));
            return null;
        }

        /// <summary>
        /// A script's non-SVA attach. RID (no pasid=): iommu_attach_device. PASID: iommu_attach_device_pasid
        /// with the pasid_array slot rules of §2 G2 (a used slot is -EBUSY, even for the same domain).
        /// </summary>
        private void Attach(AttachDomain c)
        {
            var d = Named("attach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("attach", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            if (d.Type == "sva") { Emit(new CallFailed("attach", Errno.EINVAL, $"{d.Id} is an SVA domain: it is attached by bind", "sim.misuse")); return; }
            var group = s.GroupOf(dev);
            if (c.Pasid is not int pasid)
            {
                // [I] iommu_attach_device() is the legacy singleton-group API; the group then owns its RID
                // domain until detached (a second explicit domain is -EBUSY). Not in kernel-sva.md.
                if (group.Devices.Count != 1) { Emit(new CallFailed("attach", Errno.EINVAL, $"iommu_attach_device: group {group.Id} has {group.Devices.Count} devices", "attach.rid")); return; }
                if (group.RidDomain is { } rid) { Emit(new CallFailed("attach", Errno.EBUSY, $"group {group.Id} RID already attached to {rid}", "attach.rid")); return; }
                Emit(new DomainAttached(d.Id, dev.Id, null, group.Devices.ToList(), "attach.rid"));
                return;
            }
            if (!r.PasidAttachApi) { Emit(new CallFailed("attach", Errno.EOPNOTSUPP, "no iommu_attach_device_pasid before 6.2", "attach.no-pasid-api")); return; }
            // G4+ core: pasid != IOMMU_NO_PASID [V]; G2/G3 [I]: the core lets it through and the driver refuses PASID 0.
            if (pasid == 0) { Emit(new CallFailed("attach", Errno.EINVAL, "PASID 0 is IOMMU_NO_PASID", "attach.pasid-zero")); return; }
            if (MaxPasidsRefusal(group, pasid) is { } tooBig) { Emit(new CallFailed("attach", tooBig.Errno, tooBig.Reason, tooBig.Rule)); return; }
            if (group.PasidArray.TryGetValue(pasid, out var slot))
            {
                Emit(new CallFailed("attach", Errno.EBUSY, slot.Domain == d.Id
                    ? $"PASID {pasid} slot of group {group.Id} already holds {d.Id} (same domain)"
                    : $"PASID {pasid} slot of group {group.Id} holds {slot.Domain}", "attach.slot-busy"));
                return;
            }
            Emit(new DomainAttached(d.Id, dev.Id, pasid, group.Devices.ToList(), "attach.ok"));
        }

        private void Detach(DetachDomain c)
        {
            var d = Named("detach", c.Domain);
            if (d is null) return;
            if (!s.Devices.TryGetValue(c.Device, out var dev)) { Emit(new CallFailed("detach", Errno.ENODEV, $"no such device {c.Device}", Sim)); return; }
            var group = s.GroupOf(dev);
            var held = c.Pasid is int p ? (group.PasidArray.TryGetValue(p, out var sl) ? sl.Domain : null) : group.RidDomain;
            if (held != d.Id)
            {
                Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is not attached at {c.Device}{(c.Pasid is null ? "" : $" PASID {c.Pasid}")}", "sim.misuse"));
                return;
            }
            if (d.Type == "sva") { Emit(new CallFailed("detach", Errno.EINVAL, $"{d.Id} is an SVA domain: unbind its handle", "sim.misuse")); return; }
            Emit(new DomainDetached(d.Id, dev.Id, c.Pasid, group.Devices.ToList(), "attach.detach"));
        }

        private void Map(MapIova c)
        {
            var d = Named("map", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("map", Errno.EINVAL, $"{d.Id} is a {d.Type} domain: only paging domains map", "domain.map")); return; }
            if (c.End <= c.Iova) { Emit(new CallFailed("map", Errno.EINVAL, "empty IOVA range", "domain.map")); return; }
            if (d.Mappings.Any(m => c.Iova < m.End && m.Iova < c.End)) { Emit(new CallFailed("map", Errno.EEXIST, $"IOVA {SvaJson.Hex(c.Iova)}-{SvaJson.Hex(c.End)} overlaps a mapping", "domain.map")); return; }
            Emit(new IovaMapped(d.Id, c.Iova, c.End, c.Paddr));
        }

        private void Unmap(UnmapIova c)
        {
            var d = Named("unmap", c.Domain);
            if (d is null) return;
            if (d.Type != "paging") { Emit(new CallFailed("unmap", Errno.EINVAL, $"{d.Id} is a {d.Type} domain", "domain.map")); return; }
            Emit(new IovaUnmapped(d.Id, c.Iova, c.End));
        }
    }
}
