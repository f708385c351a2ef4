namespace Sva.Domain.Tests;

/// <summary>
/// kernel-sva.md §4 as corrected by §9, one row after the other: each test is one cell (or a group of cells
/// that agree), the kernel version is the [Theory] parameter, every version the cell applies to is a row.
/// G1 = 5.11 (VT-d only: Arm SMMUv3 cannot enable SVA), 5.13, 5.18 · G2 = 6.2, 6.4, 6.6, 6.7 · G3 = 6.8-rc1 ·
/// G4 = 6.8, 6.9 (6.9 stands for 6.9/6.10) · G5 = 6.11.
/// </summary>
public class SpecScenarioTests
{
    private const string D = "0000:00:03.0";
    private const string D2 = "0000:00:04.0";

    /// <summary>A driver that can do SVA under the version: Arm SMMUv3 (the default) from 5.13, VT-d on 5.11/5.12 (§9).</summary>
    private static string Drv(string v) => KernelVersions.Get(v).Rules.GenericIopf ? "" : " driver=vtd";
    private static Sim OneDevice(string v, int pasids = 1024) => Sim.On(v, $"device 00:03.0 pasids={pasids}{Drv(v)}", "mm m1");
    private static Sim TwoDevices(string v) => Sim.On(v, $"device 00:03.0 pasids=1024{Drv(v)}", $"device 00:04.0 pasids=1024{Drv(v)}", "mm m1");

    // ---- row 1: bind(dev, mm) twice -------------------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row01_second_bind_of_same_dev_and_mm_returns_the_same_bond_with_refs_2(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind q1 00:03.0 m1");
        var second = k.Do("bind q2 00:03.0 m1");
        Assert.True(second.Ok);
        Assert.Equal(first.Handle, second.Handle);
        Assert.Equal(2, k.Handle("q1").Users);
        Assert.Null(second.Domain);
        Assert.Equal(1, second.Pasid);
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7")]
    public void row01_second_bind_returns_a_different_handle_on_the_same_domain_with_users_2(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind q1 00:03.0 m1");
        var second = k.Do("bind q2 00:03.0 m1");
        Assert.True(second.Ok);
        Assert.NotEqual(first.Handle, second.Handle);
        Assert.Equal(first.Domain, second.Domain);
        Assert.Equal(2, k.Domain(first.Domain!).Users);
        Assert.Equal(1, k.Handle("q1").Users);
        Assert.Equal(1, k.Handle("q2").Users);
    }

    [Theory, InlineData("6.8-rc1")]
    public void row01_second_bind_of_same_dev_and_mm_fails_EBUSY(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind q1 00:03.0 m1");
        var second = k.Do("bind q2 00:03.0 m1");
        Assert.False(second.Ok);
        Assert.Equal(Errno.EBUSY, second.Errno);
        Assert.Equal(1, k.Domain(first.Domain!).Users);
        Assert.Single(k.State.Domains);
        Assert.True(k.HandleLive("q1"));
    }

    [Theory, InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row01_second_bind_of_same_dev_and_mm_returns_the_same_handle_with_users_2(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind q1 00:03.0 m1");
        var second = k.Do("bind q2 00:03.0 m1");
        Assert.True(second.Ok);
        Assert.Equal(first.Handle, second.Handle);
        Assert.Equal(2, k.Handle("q2").Users);
        Assert.Equal(1, k.Domain(first.Domain!).Users);
    }

    // ---- row 2: first unbind after (1) ----------------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row02_first_unbind_drops_a_bond_ref_and_leaves_the_hardware_alone(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "bind q2 00:03.0 m1");
        var u = k.Do("unbind q2");
        Assert.True(u.Ok);
        Assert.Equal(1, k.Handle("q1").Users);
        Assert.Equal([typeof(HandleReleased)], k.Last.Select(e => e.GetType()));
        Assert.True(k.Dev(D).PasidTable.ContainsKey(1));
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7")]
    public void row02_first_unbind_frees_that_handle_and_domain_users_drop_to_1(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind q1 00:03.0 m1");
        k.Do("bind q2 00:03.0 m1");
        k.Do("unbind q2");
        Assert.False(k.HandleLive("q2"));
        Assert.True(k.HandleLive("q1"));
        Assert.Equal(1, k.Domain(first.Domain!).Users);
        Assert.Empty(k.LastOf<DomainDetached>());
        Assert.True(k.Dev(D).PasidTable.ContainsKey(1));
    }

    [Theory, InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row02_first_unbind_drops_handle_users_to_1_and_leaves_the_hardware_alone(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "bind q2 00:03.0 m1", "unbind q2");
        Assert.Equal(1, k.Handle("q1").Users);
        Assert.Equal([typeof(HandleReleased)], k.Last.Select(e => e.GetType()));
    }

    // ---- row 3: last unbind ---------------------------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row03_last_unbind_tears_down_bond_notifier_and_cd_with_tlbi_and_atc(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "unbind q1");
        Assert.Single(k.LastOf<HandleFreed>());
        Assert.Single(k.LastOf<PasidEntryCleared>(), c => c.Device == D && c.Pasid == 1);
        var inv = Assert.Single(k.LastOf<SecondaryTlbInvalidated>());
        Assert.Equal("asid 1 all", inv.Tlbi);
        Assert.Equal([D], inv.Atc);
        Assert.Single(k.LastOf<NotifierFreed>());
        Assert.Single(k.LastOf<ContextDescriptorFreed>());
        Assert.Empty(k.Dev(D).PasidTable);
        Assert.Equal(1, k.Mm("m1").MmCount);
    }

    [Theory, InlineData("5.11"), InlineData("5.13")]
    public void row03_last_unbind_frees_the_pasid_on_5_11_to_5_17(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "unbind q1");
        Assert.Single(k.LastOf<PasidFreed>(), p => p.Pasid == 1);
        Assert.Null(k.Mm("m1").Pasid);
        Assert.Empty(k.State.Pasids);
    }

    [Theory, InlineData("5.18"), InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"),
     InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row03_last_unbind_keeps_the_pasid_while_the_mm_lives(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "unbind q1");
        Assert.Empty(k.LastOf<PasidFreed>());
        Assert.Equal(1, k.Mm("m1").Pasid);
    }

    [Theory, InlineData("5.13"), InlineData("5.18"), InlineData("6.2"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9")]
    public void row03_last_unbind_after_exit_skips_the_invalidation_release_already_did(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "exit m1", "unbind q1");
        Assert.Empty(k.LastOf<SecondaryTlbInvalidated>());
        Assert.Single(k.LastOf<NotifierFreed>());
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7")]
    public void row03_last_unbind_detaches_and_frees_the_domain_dropping_its_mmgrab(string v)
    {
        var k = OneDevice(v);
        var b = k.Do("bind q1 00:03.0 m1");
        Assert.Equal(3, k.Mm("m1").MmCount); // process + SVA domain + Arm CD
        k.Do("unbind q1");
        Assert.Single(k.LastOf<DomainDetached>(), d => d.Domain == b.Domain && d.Pasid == 1);
        Assert.Single(k.LastOf<DomainFreed>(), d => d.Domain == b.Domain);
        Assert.Empty(k.State.Domains);
        Assert.Equal(1, k.Mm("m1").MmCount);
        Assert.Empty(k.Dev(D).PasidTable);
    }

    [Theory, InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row03_unbind_detaches_the_device_and_frees_the_shared_domain_only_at_zero_users(string v)
    {
        var k = TwoDevices(v);
        var a = k.Do("bind a 00:03.0 m1");
        k.Do("bind b 00:04.0 m1");
        k.Do("unbind a");
        Assert.Single(k.LastOf<DomainDetached>(), d => d.Device == D);
        Assert.Empty(k.LastOf<DomainFreed>());
        Assert.Equal(1, k.Domain(a.Domain!).Users);
        k.Do("unbind b");
        Assert.Single(k.LastOf<DomainFreed>(), d => d.Domain == a.Domain);
        Assert.Empty(k.State.Domains);
    }

    // ---- row 4: two devices, one mm -------------------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void row04_two_devices_bound_to_one_mm_use_the_same_pasid(string v)
    {
        var k = TwoDevices(v);
        var a = k.Do("bind a 00:03.0 m1");
        var b = k.Do("bind b 00:04.0 m1");
        Assert.True(a.Ok && b.Ok);
        Assert.Equal(1, a.Pasid);
        Assert.Equal(1, b.Pasid);
        Assert.NotEqual(a.Handle, b.Handle);
    }

    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row04_two_devices_get_separate_bonds_sharing_one_cd_and_asid_with_a_notifier_per_rid_domain(string v)
    {
        var k = TwoDevices(v);
        k.Do("bind a 00:03.0 m1", "bind b 00:04.0 m1");
        Assert.Single(k.State.ContextDescriptors);
        Assert.Equal(2, k.State.Notifiers.Values.Count(n => n.Mm == "m1" && n.Domain is null));
        Assert.Empty(k.State.Domains);
        Assert.Equal(2, k.Mm("m1").MmCount); // process + the shared CD
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7")]
    public void row04_two_devices_get_one_sva_domain_each(string v)
    {
        var k = TwoDevices(v);
        var a = k.Do("bind a 00:03.0 m1");
        var b = k.Do("bind b 00:04.0 m1");
        Assert.NotEqual(a.Domain, b.Domain);
        Assert.Equal(1, k.Domain(a.Domain!).Users);
        Assert.Equal(1, k.Domain(b.Domain!).Users);
    }

    [Theory, InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row04_two_devices_share_one_sva_domain_with_users_2(string v)
    {
        var k = TwoDevices(v);
        var a = k.Do("bind a 00:03.0 m1");
        var b = k.Do("bind b 00:04.0 m1");
        Assert.Equal(a.Domain, b.Domain);
        Assert.Equal(2, k.Domain(a.Domain!).Users);
        Assert.Single(k.State.Domains);
    }

    [Theory, InlineData("6.11")]
    public void row04_devices_behind_different_smmus_get_separate_domains_with_private_asids(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 iommu=smmu0", "device 00:04.0 pasids=1024 iommu=smmu1", "mm m1");
        var a = k.Do("bind a 00:03.0 m1");
        var b = k.Do("bind b 00:04.0 m1");
        Assert.NotEqual(a.Domain, b.Domain);
        Assert.NotEqual(k.Domain(a.Domain!).Asid, k.Domain(b.Domain!).Asid);
        Assert.Equal(1, b.Pasid);
    }

    [Theory, InlineData("6.8"), InlineData("6.9")]
    public void row04_devices_behind_different_smmus_still_share_the_domain_before_6_11(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 iommu=smmu0", "device 00:04.0 pasids=1024 iommu=smmu1", "mm m1");
        var a = k.Do("bind a 00:03.0 m1");
        var b = k.Do("bind b 00:04.0 m1");
        Assert.Equal(a.Domain, b.Domain);
        Assert.Null(k.Domain(a.Domain!).Asid); // the CPU ASID lives in the shared CD
        Assert.Equal(k.Mm("m1").Ordinal, k.State.ContextDescriptors["m1"]);
    }

    // ---- row 5: mm PASID >= device limit --------------------------------------------------------------------
    /// <summary>m0 takes PASID 1 and m1 PASID 2 on a big device; then m1 binds a device with max_pasids = <paramref name="small"/>.</summary>
    private static CallOutcome BindPasid2To(string v, int small)
    {
        var k = Sim.On(v, $"device 00:03.0 pasids=1024{Drv(v)}", $"device 00:04.0 pasids={small}{Drv(v)}", "mm m0", "mm m1",
            "bind 00:03.0 m0", "bind 00:03.0 m1");
        Assert.Equal(2, k.Mm("m1").Pasid);
        return k.Do("bind 00:04.0 m1");
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void row05_bind_fails_EOVERFLOW_when_the_mm_pasid_is_beyond_the_device_range(string v)
    {
        var o = BindPasid2To(v, 2); // valid PASIDs of the small device: [1, 1]
        // 5.11 runs VT-d (Arm cannot do SVA there): intel_svm_bind_mm's own "Limited PASID width" -ENOSPC (D13)
        Assert.Equal(Drv(v) == "" ? Errno.EOVERFLOW : Errno.ENOSPC, o.Errno);
    }

    [Theory, InlineData("5.18"), InlineData("6.2")]
    public void row05_bind_fails_EOVERFLOW_when_the_mm_pasid_is_the_device_top_value_off_by_one(string v)
    {
        var o = BindPasid2To(v, 3); // valid PASIDs [1, 2]: 2 is the top value
        Assert.Equal(Errno.EOVERFLOW, o.Errno);
        Assert.Contains("off-by-one", o.Reason);
    }

    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"),
     InlineData("6.9"), InlineData("6.11")]
    public void row05_bind_accepts_the_device_top_value_outside_the_off_by_one_versions(string v)
    {
        var o = BindPasid2To(v, 3);
        Assert.True(o.Ok);
        Assert.Equal(2, o.Pasid);
    }

    // ---- row 6: device without PASID / SVA off --------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row06_device_without_pasids_fails_ENODEV_in_the_arm_driver(string v)
    {
        Assert.Equal(Errno.ENODEV, OneDevice(v, pasids: 0).Do("bind 00:03.0 m1").Errno);
        Assert.Equal(Errno.ENODEV, OneDevice(v, pasids: 1).Do("bind 00:03.0 m1").Errno);
    }

    [Theory, InlineData("6.2"), InlineData("6.4")]
    public void row06_device_without_pasids_fails_EOPNOTSUPP_on_6_2_to_6_5(string v) =>
        Assert.Equal(Errno.EOPNOTSUPP, OneDevice(v, pasids: 0).Do("bind 00:03.0 m1").Errno);

    [Theory, InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row06_device_without_pasids_fails_ENOSPC_or_EOVERFLOW_when_the_mm_has_a_pasid_from_6_6(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "device 00:04.0 pasids=0", "mm m1", "mm m2", "bind 00:03.0 m1");
        Assert.Equal(Errno.EOVERFLOW, k.Do("bind 00:04.0 m1").Errno);
        Assert.Equal(Errno.ENOSPC, k.Do("bind 00:04.0 m2").Errno);
    }

    [Theory, MemberData(nameof(AllVersions))]
    public void row06_device_with_sva_off_fails_ENODEV(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 sva=off", "mm m1");
        Assert.Equal(Errno.ENODEV, k.Do("bind 00:03.0 m1").Errno);
        Assert.Empty(k.State.Domains);
    }

    // §9: the allocator's argument check (min == 0 || max < min) lived until the global allocator moved to the core in 6.6.
    [Theory, InlineData("6.2"), InlineData("6.4")]
    public void row06_device_with_one_pasid_hits_the_empty_range_check_EINVAL_on_6_2_to_6_5(string v)
    {
        var o = OneDevice(v, pasids: 1).Do("bind 00:03.0 m1");
        Assert.Equal(Errno.EINVAL, o.Errno);
        Assert.Equal("pasid.empty-range", o.Rule?.Id);
    }

    [Theory, InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row06_device_with_one_pasid_gets_ENOSPC_from_the_global_allocator_from_6_6(string v)
    {
        var o = OneDevice(v, pasids: 1).Do("bind 00:03.0 m1");
        Assert.Equal(Errno.ENOSPC, o.Errno);
        Assert.Equal("pasid.exhausted-global", o.Rule?.Id);
    }

    // ---- row 7: PASID space exhausted -----------------------------------------------------------------------
    [Theory, InlineData("5.11", Errno.ENOSPC /* VT-d ioasid_alloc failing in intel_svm_bind_mm (D13) */), InlineData("5.13", Errno.ENOMEM), InlineData("5.18", Errno.ENOMEM), InlineData("6.2", Errno.ENOMEM),
     InlineData("6.4", Errno.ENOSPC), InlineData("6.6", Errno.ENOSPC), InlineData("6.7", Errno.ENOSPC), InlineData("6.8-rc1", Errno.ENOSPC),
     InlineData("6.8", Errno.ENOSPC), InlineData("6.9", Errno.ENOSPC), InlineData("6.11", Errno.ENOSPC)]
    public void row07_bind_fails_when_the_pasid_space_is_exhausted(string v, Errno expected)
    {
        var k = Sim.On(v, $"device 00:03.0 pasids=2{Drv(v)}", "mm m1", "mm m2", "bind 00:03.0 m1");
        var o = k.Do("bind 00:03.0 m2");
        Assert.Equal(expected, o.Errno);
        Assert.Null(k.Mm("m2").Pasid);
    }

    // ---- row 8: group with more than one device -------------------------------------------------------------
    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("5.18")]
    public void row08_group_with_two_devices_is_rejected_EINVAL(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 group=7", "device 00:03.1 pasids=1024 group=7", "mm m1");
        Assert.Equal(Errno.EINVAL, k.Do("bind 00:03.0 m1").Errno);
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"),
     InlineData("6.9"), InlineData("6.11")]
    public void row08_group_with_two_devices_programs_every_device_of_the_group(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 group=7", "device 00:03.1 pasids=1024 group=7", "mm m1");
        var o = k.Do("bind 00:03.0 m1");
        Assert.True(o.Ok);
        var attached = Assert.Single(k.LastOf<DomainAttached>());
        Assert.Equal(["0000:00:03.0", "0000:00:03.1"], attached.Devices);
        Assert.True(k.Dev("00:03.1").PasidTable.ContainsKey(1));
    }

    /// <summary>A group whose second member has max_pasids 2, bound at PASID 2 (m0 holds PASID 1).</summary>
    private static Sim GroupWithSmallMember(string v) => Sim.On(v, "device 00:05.0 pasids=1024",
        "device 00:03.0 pasids=1024 group=7", "device 00:03.1 pasids=2 group=7", "mm m0", "mm m1",
        "bind 00:05.0 m0", "bind 00:05.0 m1");

    // §9: c404f55c26fc is a 6.9 commit.
    [Theory, InlineData("6.9"), InlineData("6.11")]
    public void row08_bind_fails_EINVAL_when_the_pasid_is_beyond_a_group_members_max_pasids(string v)
    {
        var k = GroupWithSmallMember(v);
        var o = k.Do("bind 00:03.0 m1");
        Assert.Equal(Errno.EINVAL, o.Errno);
        Assert.Contains("0000:00:03.1", o.Reason);
        Assert.Equal("c404f55c26fc", o.Rule?.Introduced);
    }

    [Theory, InlineData("6.2"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8")]
    public void row08_bind_programs_a_group_member_beyond_its_max_pasids_before_6_9(string v)
    {
        var k = GroupWithSmallMember(v);
        Assert.True(k.Do("bind 00:03.0 m1").Ok);
        Assert.True(k.Dev("00:03.1").PasidTable.ContainsKey(2));
        Assert.Contains(Checks.Run(k.Events), f => f.Kind == FindingKinds.AttachPastMaxPasids);
    }

    // ---- rows 9–11: the pasid_array slot ---------------------------------------------------------------------
    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"),
     InlineData("6.9"), InlineData("6.11")]
    public void row09_bind_fails_EBUSY_when_the_pasid_slot_holds_a_non_sva_domain(string v)
    {
        var k = OneDevice(v);
        Assert.True(k.Do("domain P type=paging", "attach P 00:03.0 pasid=1").Ok);
        var o = k.Do("bind 00:03.0 m1");
        Assert.Equal(Errno.EBUSY, o.Errno);
        Assert.Equal(1, k.Mm("m1").Pasid); // the PASID was allocated before the slot was looked at
        Assert.DoesNotContain(k.State.Domains.Values, d => d.Type == "sva");
    }

    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void row09_to_11_pasid_attach_does_not_exist_before_6_2(string v)
    {
        var k = OneDevice(v);
        Assert.Equal(Errno.EOPNOTSUPP, k.Do("domain P type=paging", "attach P 00:03.0 pasid=1").Errno);
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"),
     InlineData("6.9"), InlineData("6.11")]
    public void row10_attaching_a_different_domain_to_a_used_pasid_fails_EBUSY(string v)
    {
        var k = OneDevice(v);
        k.Do("domain P type=paging", "domain Q type=paging", "attach P 00:03.0 pasid=5");
        Assert.Equal(Errno.EBUSY, k.Do("attach Q 00:03.0 pasid=5").Errno);
        Assert.Equal(k.State.DomainNames["P"], k.Dev(D).PasidTable[5].Domain);
    }

    [Theory, InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"),
     InlineData("6.9"), InlineData("6.11")]
    public void row11_attaching_the_same_domain_again_fails_EBUSY(string v)
    {
        var k = OneDevice(v);
        k.Do("domain P type=paging", "attach P 00:03.0 pasid=5");
        var o = k.Do("attach P 00:03.0 pasid=5");
        Assert.Equal(Errno.EBUSY, o.Errno);
        Assert.Contains("same domain", o.Reason);
    }

    [Theory, InlineData("6.2"), InlineData("6.8")]
    public void row11_after_detach_the_slot_is_free_again(string v)
    {
        var k = OneDevice(v);
        k.Do("domain P type=paging", "attach P 00:03.0 pasid=5", "detach P 00:03.0 pasid=5");
        Assert.True(k.Do("attach P 00:03.0 pasid=5").Ok);
    }

    [Theory, InlineData("6.9"), InlineData("6.11")]
    public void attach_beyond_a_devices_max_pasids_fails_EINVAL_from_6_9(string v) =>
        Assert.Equal(Errno.EINVAL, OneDevice(v, pasids: 16).Do("domain P type=paging", "attach P 00:03.0 pasid=16").Errno);

    [Theory, InlineData("6.2"), InlineData("6.8-rc1"), InlineData("6.8")]
    public void attach_beyond_a_devices_max_pasids_goes_through_before_6_9_and_check_flags_it(string v)
    {
        var k = OneDevice(v, pasids: 16);
        Assert.True(k.Do("domain P type=paging", "attach P 00:03.0 pasid=16").Ok);
        Assert.Single(Checks.Run(k.Events), f => f.Kind == FindingKinds.AttachPastMaxPasids);
    }

    // ---- row 12: process exits while bound -------------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18"), InlineData("6.2"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9")]
    public void row12_exit_while_bound_writes_a_quiet_cd_and_invalidates_but_keeps_the_bond(string v)
    {
        var k = OneDevice(v);
        var b = k.Do("bind q1 00:03.0 m1");
        k.Do("exit m1");
        Assert.Single(k.LastOf<PasidEntryQuieted>(), q => q.Device == D && q.Pasid == 1 && q.Mode == "quiet");
        var inv = Assert.Single(k.LastOf<SecondaryTlbInvalidated>());
        Assert.Equal("asid 1 all", inv.Tlbi);
        Assert.Equal([D], inv.Atc);
        Assert.True(k.HandleLive("q1"));
        Assert.Equal("quiet", k.Dev(D).PasidTable[1].Mode);
        Assert.Equal(0, k.Mm("m1").MmUsers);
        Assert.Equal(1, k.Mm("m1").Pasid);
        Assert.Empty(k.LastOf<HandleFreed>());
        _ = b;
    }

    [Theory, InlineData("6.11")]
    public void row12_exit_while_bound_writes_a_fault_everything_cd_with_the_private_asid(string v)
    {
        var k = OneDevice(v);
        var b = k.Do("bind q1 00:03.0 m1");
        k.Do("exit m1");
        Assert.Single(k.LastOf<PasidEntryQuieted>(), q => q.Mode == "fault-all");
        Assert.Equal($"asid {k.Domain(b.Domain!).Asid} all", Assert.Single(k.LastOf<SecondaryTlbInvalidated>()).Tlbi);
        Assert.True(k.HandleLive("q1"));
    }

    // ---- row 13: device fault after (12) ---------------------------------------------------------------------
    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("5.18"), InlineData("6.2"), InlineData("6.4"), InlineData("6.6"),
     InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9")]
    public void row13_fault_after_the_process_exited_is_answered_INVALID(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1");
        Assert.Equal("SUCCESS", k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=rw").Response);
        k.Do("exit m1");
        var o = k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=rw");
        Assert.Equal("INVALID", o.Response);
        Assert.Equal(v == "5.11" ? "vtd.prq-in-driver-mm-exited" /* VT-d in the driver (D4) */ : "iopf.mm-exited", o.Rule?.Id);
        Assert.DoesNotContain(Checks.Run(k.Events), f => f.Kind == FindingKinds.SuccessAfterExit);
    }

    // §9: on 6.11+ release writes a fault-everything CD with CD_0_S/CD_0_R cleared (no STALL_FORCE): the SMMU aborts.
    [Theory, InlineData("6.11")]
    public void row13_fault_after_exit_on_an_arm_master_is_aborted_by_the_smmu_without_a_page_response(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1", "exit m1");
        var o = k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=rw");
        Assert.Equal("ABORTED", o.Response);
        Assert.Equal("arm.access-aborted", o.Rule?.Id);
        Assert.Single(k.LastOf<AccessAborted>(), a => a.Device == D && a.Pasid == 1);
        Assert.Empty(k.LastOf<PageResponseSent>());
        Assert.Empty(k.LastOf<PageResponseWithheld>());
        // a non-last request is aborted too: nothing is parked
        k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=r group=4");
        Assert.Single(k.LastOf<AccessAborted>());
        Assert.Empty(k.Dev(D).Partial);
    }

    [Theory, InlineData("6.11")]
    public void row13_fault_after_exit_on_a_vtd_device_is_still_answered_INVALID_on_6_11(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 driver=vtd", "mm m1", "bind q1 00:03.0 m1", "exit m1");
        var o = k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=rw");
        Assert.Equal("INVALID", o.Response);
        Assert.Empty(k.LastOf<AccessAborted>());
    }

    // ---- row 14: fault on a PASID with nothing attached ------------------------------------------------------
    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("5.18")]
    public void row14_fault_on_an_unattached_pasid_is_served_through_the_global_pasid_lookup_if_a_live_mm_owns_it(string v)
    {
        var k = TwoDevices(v);
        k.Do("bind a 00:03.0 m1");
        Assert.Equal("SUCCESS", k.Do("fault 00:04.0 pasid=1 addr=0x1000 access=r").Response);
        Assert.Equal("INVALID", k.Do("fault 00:04.0 pasid=9 addr=0x1000 access=r").Response);
    }

    // §9: 6.7, 6.8-rc1 and 6.8 answer INVALID (iopf_handler); 6.9/6.10 FAILURE (351ffcb11ca0); 6.11+ INVALID (b58b133e680b).
    [Theory, InlineData("5.11", "INVALID", "vtd.prq-in-driver-no-svm"), InlineData("5.13", "INVALID", "iopf.global-pasid"), InlineData("5.18", "INVALID", "iopf.global-pasid"),
     InlineData("6.2", "INVALID", "iopf.domain-in-work"), InlineData("6.4", "INVALID", "iopf.domain-in-work"), InlineData("6.6", "INVALID", "iopf.domain-in-work"),
     InlineData("6.7", "INVALID", "iopf.no-domain-invalid-6.7"), InlineData("6.8-rc1", "INVALID", "iopf.no-domain-invalid-6.7"),
     InlineData("6.8", "INVALID", "iopf.no-domain-invalid-6.7"), InlineData("6.9", "FAILURE", "iopf.no-domain-failure"),
     InlineData("6.11", "INVALID", "iopf.no-handler-invalid")]
    public void row14_fault_on_a_pasid_with_nothing_attached_gets_the_versions_answer(string v, string response, string rule)
    {
        var k = OneDevice(v);
        var o = k.Do("fault 00:03.0 pasid=9 addr=0x1000 access=r");
        Assert.Equal(response, o.Response);
        Assert.Equal(rule, o.Rule?.Id);
    }

    // ---- row 15: address unmapped / permissions ---------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void row15_fault_outside_the_vmas_or_against_their_permissions_is_INVALID(string v)
    {
        var k = OneDevice(v);
        k.Do("vma m1 0x1000-0x3000 prot=r", "vma m1 0x8000-0x9000 prot=rwx", "bind q1 00:03.0 m1");
        Assert.Equal("SUCCESS", k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=r").Response);
        Assert.Equal("SUCCESS", k.Do("fault 00:03.0 pasid=1 addr=0x8000 access=x").Response);
        var noVma = k.Do("fault 00:03.0 pasid=1 addr=0x5000 access=r");
        Assert.Equal("INVALID", noVma.Response);
        Assert.Contains("no VMA", noVma.Reason);
        var perm = k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=w");
        Assert.Equal("INVALID", perm.Response);
        Assert.Contains("not permitted", perm.Reason);
        Assert.Equal("INVALID", k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=x").Response);
    }

    [Theory, InlineData("5.13"), InlineData("6.8")]
    public void row15_an_mm_without_vma_lines_maps_everything_read_write_but_not_exec(string v)
    {
        var k = OneDevice(v);
        k.Do("bind q1 00:03.0 m1");
        Assert.Equal("SUCCESS", k.Do("fault 00:03.0 pasid=1 addr=0xdead000 access=rw").Response);
        Assert.Equal("INVALID", k.Do("fault 00:03.0 pasid=1 addr=0xdead000 access=x").Response);
    }

    // ---- row 16: device never added to an IOPF queue ---------------------------------------------------------
    // §9: up to 6.8 -EINVAL -> Arm FAILURE; 6.9/6.10 WARN, no response (3dfa64aecbaf); 6.11+ INVALID (b58b133e680b).
    // 5.11 runs a VT-d device (Drv): 5.11-5.13 VT-d handles page requests in the driver, no queue involved (D5, issue 19).
    [Theory, InlineData("5.11", "SUCCESS"), InlineData("5.13", "FAILURE"), InlineData("5.18", "FAILURE"), InlineData("6.2", "FAILURE"),
     InlineData("6.4", "FAILURE"), InlineData("6.6", "FAILURE"), InlineData("6.7", "FAILURE"), InlineData("6.8-rc1", "FAILURE"),
     InlineData("6.8", "FAILURE"), InlineData("6.9", "NONE"), InlineData("6.11", "INVALID")]
    public void row16_fault_from_a_device_without_an_iopf_queue_gets_the_versions_answer(string v, string response)
    {
        var k = Sim.On(v, $"device 00:03.0 pasids=1024 iopf=off{Drv(v)}", "mm m1", "bind q1 00:03.0 m1");
        var o = k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=r");
        Assert.Equal(response, o.Response);
        Assert.Equal(response switch { "FAILURE" => "iopf.no-queue-failure", "NONE" => "iopf.no-queue-withheld", "SUCCESS" => "vtd.prq-in-driver", _ => "iopf.no-queue-invalid" }, o.Rule?.Id);
        if (response == "NONE") Assert.Single(k.LastOf<PageResponseWithheld>());
    }

    [Theory, InlineData("6.8"), InlineData("6.9")]
    public void row16_non_last_requests_without_an_iopf_queue_are_refused_one_by_one_and_never_parked(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 iopf=off", "mm m1", "bind q1 00:03.0 m1");
        k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=r group=3");
        Assert.Empty(k.Dev(D).Partial);
        Assert.Equal(1, k.Last.OfType<PageResponseSent>().Count() + k.Last.OfType<PageResponseWithheld>().Count());
    }

    // ---- row 17: munmap with two devices bound ---------------------------------------------------------------
    [Theory, InlineData("5.13"), InlineData("5.18"), InlineData("6.2"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9")]
    public void row17_invalidation_fans_out_once_per_rid_domain_notifier_two_rounds(string v)
    {
        var k = TwoDevices(v);
        k.Do("bind a 00:03.0 m1", "bind b 00:04.0 m1", "invalidate m1 0x7f0000000000-0x7f0000002000");
        var rounds = k.LastOf<SecondaryTlbInvalidated>().ToList();
        Assert.Equal(2, rounds.Count);
        Assert.Equal([[D], [D2]], rounds.Select(r => r.Atc.ToArray()).OrderBy(a => a[0]).ToArray());
        Assert.All(rounds, r => Assert.Equal("asid 1 range", r.Tlbi)); // the shared CPU ASID
        Assert.Single(k.LastOf<MmRangeInvalidated>());
    }

    [Theory, InlineData("6.11")]
    public void row17_invalidation_fans_out_once_per_sva_domain_with_atc_for_every_attached_master(string v)
    {
        var k = TwoDevices(v);
        k.Do("bind a 00:03.0 m1", "bind b 00:04.0 m1", "invalidate m1 0x7f0000000000-0x7f0000002000");
        var round = Assert.Single(k.LastOf<SecondaryTlbInvalidated>());
        Assert.Equal([D, D2], round.Atc);
    }

    // §9: whole-ASID TLBI past the threshold only from 6.6 (d5afb4b47e13).
    [Theory, InlineData("6.6"), InlineData("6.7"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row17_a_range_of_512_pages_or_more_is_invalidated_by_whole_asid_from_6_6(string v)
    {
        var k = OneDevice(v);
        k.Do("bind a 00:03.0 m1");
        var o = k.Do("invalidate m1 0x0-0x200000");
        Assert.EndsWith(" all", Assert.Single(k.LastOf<SecondaryTlbInvalidated>()).Tlbi);
        Assert.Equal("inv.arm-threshold", o.Rule?.Id);
        k.Do("invalidate m1 0x0-0x1ff000");
        Assert.EndsWith(" range", Assert.Single(k.LastOf<SecondaryTlbInvalidated>()).Tlbi);
    }

    [Theory, InlineData("5.13"), InlineData("5.18"), InlineData("6.2"), InlineData("6.4")]
    public void row17_arm_sends_a_range_tlbi_by_asid_for_any_size_on_5_12_to_6_5(string v)
    {
        var k = OneDevice(v);
        k.Do("bind a 00:03.0 m1");
        var o = k.Do("invalidate m1 0x0-0x40000000");
        Assert.Equal("asid 1 range", Assert.Single(k.LastOf<SecondaryTlbInvalidated>()).Tlbi);
        Assert.Equal("inv.arm-range", o.Rule?.Id);
    }

    [Theory, InlineData("5.11")]
    public void row17_on_5_11_arm_sva_needed_btm_so_its_notifier_sends_no_tlbi_and_vtd_flushes_by_pasid(string v)
    {
        // The Arm rule: ATC only (no SMMUv3 master can bind on 5.11, so it is checked on the rules).
        Assert.Equal(ArmNotifierTlbi.AtcOnly, KernelVersions.Get(v).Rules.ArmNotifierTlbi);
        var k = Sim.On(v, "device 00:03.0 pasids=1024 driver=vtd", "mm m1", "bind a 00:03.0 m1");
        var o = k.Do("invalidate m1 0x0-0x200000");
        var round = Assert.Single(k.LastOf<SecondaryTlbInvalidated>());
        // issue 19 (D12): a PASID-selective range flush by intel_flush_svm_range, read in source (V)
        Assert.Equal("pasid 1 range", round.Tlbi);
        Assert.Equal([D], round.Atc);
        Assert.Equal("inv.vtd-range", o.Rule?.Id);
        Assert.Equal(Confidence.V, o.Rule?.Confidence);
    }

    // ---- row 18: PASID reuse ---------------------------------------------------------------------------------
    [Theory, InlineData("5.11"), InlineData("5.13")]
    public void row18_pasid_is_reused_after_the_last_unbind_while_the_first_process_lives(string v)
    {
        var k = Sim.On(v, $"device 00:03.0 pasids=1024{Drv(v)}", "mm m1", "mm m2", "bind a 00:03.0 m1", "unbind a");
        Assert.Equal(1, k.Do("bind b 00:03.0 m2").Pasid);
    }

    [Theory, InlineData("5.18"), InlineData("6.2"), InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"),
     InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row18_pasid_is_reused_only_after_mmdrop(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1", "mm m2", "mm m3", "bind a 00:03.0 m1", "unbind a");
        Assert.Equal(2, k.Do("bind b 00:03.0 m2").Pasid);
        k.Do("exit m1");
        Assert.Equal(1, k.Mm("m1").Pasid);
        k.Do("drop m1");
        Assert.Single(k.LastOf<PasidFreed>(), p => p.Pasid == 1 && p.Reason.Contains("__mmdrop"));
        Assert.Equal(1, k.Do("bind c 00:03.0 m3").Pasid);
    }

    [Theory, InlineData("5.18"), InlineData("6.2"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"),
     InlineData("6.11")]
    public void row18_pasid_of_an_mm_dropped_while_bound_is_freed_at_the_last_unbind(string v)
    {
        var k = OneDevice(v);
        k.Do("bind a 00:03.0 m1", "exit m1", "drop m1");
        var dropped = Assert.Single(k.LastOf<MmDropped>());
        Assert.True(dropped.MmCount > 0); // the SVA domain / Arm CD still hold mm_count
        Assert.Empty(k.LastOf<PasidFreed>());
        Assert.True(k.PasidAllocated(1));
        Assert.Contains(Checks.Run(k.Events), f => f.Kind == FindingKinds.Leak);
        k.Do("unbind a");
        Assert.Single(k.LastOf<MmFreed>());
        Assert.Single(k.LastOf<PasidFreed>(), p => p.Pasid == 1);
        Assert.False(k.PasidAllocated(1));
        Assert.Empty(Checks.Run(k.Events));
    }

    [Theory, InlineData("5.11"), InlineData("5.13")]
    public void row18_on_5_11_to_5_17_the_pasid_goes_at_the_last_unbind_even_after_drop(string v)
    {
        var k = OneDevice(v);
        k.Do("bind a 00:03.0 m1", "drop m1");
        Assert.True(k.PasidAllocated(1));
        k.Do("unbind a");
        var freed = Assert.Single(k.LastOf<PasidFreed>());
        Assert.Contains("last unbind", freed.Reason);
        Assert.Single(k.LastOf<MmFreed>());
    }

    // ---- row 19: LAM ------------------------------------------------------------------------------------------
    [Theory, InlineData("6.4"), InlineData("6.6"), InlineData("6.7"), InlineData("6.8-rc1"), InlineData("6.8"), InlineData("6.9"),
     InlineData("6.11")]
    public void row19_bind_of_a_lam_mm_fails_EBUSY_from_6_4(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1 lam");
        Assert.Equal(Errno.EBUSY, k.Do("bind 00:03.0 m1").Errno);
        Assert.Null(k.Mm("m1").Pasid);
    }

    [Theory, InlineData("5.13"), InlineData("5.18"), InlineData("6.2")]
    public void row19_lam_is_not_checked_before_6_4(string v) =>
        Assert.True(Sim.On(v, "device 00:03.0 pasids=1024", "mm m1 lam").Do("bind 00:03.0 m1").Ok);

    // ---- row 20: bind when the mm already exited ---------------------------------------------------------------
    // §9: no generation returns an errno: a new mmu_notifier hits BUG_ON(mm_users <= 0) in __mmu_notifier_register.
    [Theory, MemberData(nameof(AllVersions))]
    public void row20_a_new_binding_of_an_exited_mm_is_a_kernel_bug_without_errno_and_taints_the_session(string v)
    {
        var k = OneDevice(v);
        k.Do("exit m1");
        var o = k.Do("bind q1 00:03.0 m1");
        Assert.False(o.Ok);
        Assert.Null(o.Errno);
        Assert.Equal("BUG_ON(mm_users <= 0) in __mmu_notifier_register", o.Bug);
        var bug = Assert.Single(k.LastOf<KernelBug>());
        Assert.Contains("__mmu_notifier_register", bug.Site);
        Assert.Empty(k.LastOf<BindFailed>());
        Assert.Equal(k.Events.Count, k.State.TaintedAt);
        Assert.Equal(k.State.TaintedAt, o.TaintedAt);
        // 5.11 runs a VT-d device (Drv): intel_svm_bind_mm's own registration (issue 19)
        Assert.Equal(k.Dev("00:03.0").Driver == Drivers.Vtd ? "vtd.exited-mm-bug" : k.Version.Generation == Generation.G5 ? "bug.notifier-register-g5" : "bug.notifier-register", o.Rule?.Id);
        Assert.Empty(k.State.Domains);
        Assert.Empty(k.State.Notifiers);
        // every later outcome says the session is tainted
        var later = k.Do("mm m2");
        Assert.True(later.Ok);
        Assert.Equal(k.State.TaintedAt, later.TaintedAt);
        Assert.Contains("tainted since seq", later.Describe());
        var finding = Assert.Single(Checks.Run(k.Events), f => f.Kind == FindingKinds.KernelBug);
        Assert.Contains("__mmu_notifier_register", finding.Message);
        Assert.Equal(k.State.TaintedAt, finding.Seq);
    }

    [Theory, InlineData("6.11")]
    public void row20_on_6_11_the_mmget_einval_of_an_existing_domain_is_swallowed_and_the_fresh_domain_hits_the_bug(string v)
    {
        // m1's SVA domain is attached to 00:03.0; after exit, binding 00:04.0 first tries that domain (mmget_not_zero
        // fails -EINVAL in set_dev_pasid), iommu_sva_bind_device discards it and allocates a new domain: BUG.
        var k = TwoDevices(v);
        k.Do("bind a 00:03.0 m1", "exit m1");
        var o = k.Do("bind b 00:04.0 m1");
        Assert.Null(o.Errno);
        Assert.NotNull(o.Bug);
        Assert.Contains("mmget_not_zero", o.Reason);
        Assert.Equal("bug.notifier-register-g5", o.Rule?.Id);
    }

    [Theory, InlineData("5.11"), InlineData("5.13"), InlineData("5.18"), InlineData("6.8"), InlineData("6.9"), InlineData("6.11")]
    public void row20_rebinding_an_existing_pair_after_exit_just_takes_a_reference(string v)
    {
        var k = OneDevice(v);
        var first = k.Do("bind a 00:03.0 m1");
        k.Do("exit m1");
        var again = k.Do("bind b 00:03.0 m1");
        Assert.True(again.Ok);
        Assert.Equal(first.Handle, again.Handle);
        Assert.Null(k.State.TaintedAt);
    }

    [Theory, InlineData("5.11"), InlineData("5.13")]
    public void row20_the_bug_never_returns_so_the_pasid_it_allocated_stays_on_5_11_to_5_17(string v)
    {
        var k = OneDevice(v);
        k.Do("exit m1");
        k.Do("bind 00:03.0 m1");
        Assert.Single(k.LastOf<PasidAllocated>());
        Assert.Empty(k.LastOf<PasidFreed>());
        Assert.True(k.PasidAllocated(1));
    }

    // ---- §9: Arm SMMUv3 on 5.11/5.12; the identity RID domain before 6.9 ----------------------------------------
    [Theory, InlineData("5.11")]
    public void arm_smmuv3_cannot_enable_sva_on_5_11_and_5_12_bind_fails_ENODEV_while_vtd_works(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "device 00:04.0 pasids=1024 driver=vtd", "mm m1");
        var arm = k.Do("bind 00:03.0 m1");
        Assert.Equal(Errno.ENODEV, arm.Errno);
        Assert.Equal("arm.sva-needs-iopf", arm.Rule?.Id);
        Assert.Null(k.Mm("m1").Pasid);
        var vtd = k.Do("bind 00:04.0 m1");
        Assert.True(vtd.Ok);
        Assert.Equal("g1.vtd-bond", vtd.Rule?.Id);
    }

    [Theory, InlineData("5.13"), InlineData("5.18")]
    public void arm_smmuv3_sva_works_from_5_13_in_the_bond_model(string v)
    {
        var o = OneDevice(v).Do("bind 00:03.0 m1");
        Assert.True(o.Ok);
        Assert.Equal("g1.bond-new", o.Rule?.Id);
        Assert.Null(o.Domain);
    }

    [Theory, InlineData("6.2", Confidence.U), InlineData("6.7", Confidence.U), InlineData("6.8-rc1", Confidence.U), InlineData("6.8", Confidence.U),
     InlineData("6.9", Confidence.V)]
    public void identity_rid_domain_then_sva_bind_keeps_ENODEV_but_is_uncertain_before_6_9(string v, Confidence confidence)
    {
        var k = OneDevice(v);
        var o = k.Do("domain I type=identity", "attach I 00:03.0", "bind 00:03.0 m1");
        Assert.Equal(Errno.ENODEV, o.Errno);
        Assert.Equal(confidence, o.Rule?.Confidence);
        Assert.Equal(confidence == Confidence.V ? "ae91f6552c30" : "6.2", o.Rule?.Introduced);
    }

    [Theory, InlineData("6.9")]
    public void identity_rid_domain_on_a_vtd_device_is_not_an_arm_check(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024 driver=vtd", "mm m1");
        Assert.True(k.Do("domain I type=identity", "attach I 00:03.0", "bind 00:03.0 m1").Ok);
    }

    public static TheoryData<string> AllVersions()
    {
        var d = new TheoryData<string>();
        foreach (var v in V.All) d.Add(v);
        return d;
    }
}
