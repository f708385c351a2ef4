namespace Sva.Domain.Tests;

/// <summary>§3.1 page-request groups, §3.3/§3.4 release, drop and refcounts, §1.5 ASIDs, handle use after free.</summary>
public class FaultAndLifetimeTests
{
    private const string D = "0000:00:03.0";

    private static Sim Bound(string v, params string[] more)
    {
        // 5.11/5.12: Arm SMMUv3 cannot enable SVA (§9), the bound device is a VT-d one there.
        var driver = KernelVersions.Get(v).Rules.GenericIopf ? "" : " driver=vtd";
        var k = Sim.On(v, $"device 00:03.0 pasids=1024{driver}", "mm m1", "vma m1 0x1000-0x4000 prot=rw", "vma m1 0x8000-0x9000 prot=r", "bind q1 00:03.0 m1");
        if (more.Length > 0) k.Do(more);
        return k;
    }

    [Theory, MemberData(nameof(SpecScenarioTests.AllVersions), MemberType = typeof(SpecScenarioTests))]
    public void non_last_requests_are_parked_without_a_response_and_answered_with_the_last(string v)
    {
        var k = Bound(v);
        var first = k.Do("fault 00:03.0 pasid=1 addr=0x1000 access=r group=5");
        Assert.Null(first.Response);
        if (KernelVersions.Get(v).Rules.VtdPrq == VtdPrq.InDriver && !KernelVersions.Get(v).Rules.GenericIopf)
        {
            // 5.11 (a VT-d device here): handled in the driver at once, never parked; the last answers for itself (D4)
            Assert.Equal("SUCCESS", first.Handled);
            k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=w group=5");
            Assert.Empty(k.Dev(D).Partial);
            Assert.Equal("SUCCESS", k.Do("fault 00:03.0 pasid=1 addr=0x3000 access=rw group=5 last").Response);
            Assert.Equal(1, Assert.Single(k.LastOf<PageResponseSent>()).Requests);
            return;
        }
        Assert.Single(k.LastOf<PageRequestQueued>());
        k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=w group=5");
        Assert.Equal(2, k.Dev(D).Partial.Count);
        var last = k.Do("fault 00:03.0 pasid=1 addr=0x3000 access=rw group=5 last");
        Assert.Equal("SUCCESS", last.Response);
        var response = Assert.Single(k.LastOf<PageResponseSent>());
        Assert.Equal(3, response.Requests);
        Assert.Equal(5, response.Group);
        Assert.Empty(k.Dev(D).Partial);
    }

    [Theory, MemberData(nameof(SpecScenarioTests.AllVersions), MemberType = typeof(SpecScenarioTests))]
    public void an_error_in_a_group_is_sticky_one_invalid_response_for_the_whole_group(string v)
    {
        var k = Bound(v, "fault 00:03.0 pasid=1 addr=0x8000 access=w group=6", "fault 00:03.0 pasid=1 addr=0x1000 access=r group=6");
        var last = k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=r group=6 last");
        if (KernelVersions.Get(v).Rules.VtdPrq == VtdPrq.InDriver && !KernelVersions.Get(v).Rules.GenericIopf)
        {
            // 5.11 (a VT-d device here): no sticky error, the last request's own result (D4)
            Assert.Equal("SUCCESS", last.Response);
            Assert.Equal("INVALID", k.Outcomes[^3].Handled);
            return;
        }
        Assert.Equal("INVALID", last.Response);
        Assert.Contains("not permitted", last.Reason);
        Assert.Equal(3, Assert.Single(k.LastOf<PageResponseSent>()).Requests);
    }

    [Theory, InlineData("5.18"), InlineData("6.8"), InlineData("6.11")]
    public void groups_are_gathered_by_group_id_only(string v)
    {
        var k = Bound(v, "fault 00:03.0 pasid=1 addr=0x1000 access=r group=7", "fault 00:03.0 pasid=1 addr=0x1000 access=r group=8");
        k.Do("fault 00:03.0 pasid=1 addr=0x2000 access=r group=7 last");
        Assert.Equal(2, Assert.Single(k.LastOf<PageResponseSent>()).Requests);
        Assert.Single(k.Dev(D).Partial, p => p.Group == 8);
    }

    // b58b133e680b (the Aug-2024 fix) is 6.11 (§9).
    [Theory, InlineData("6.11")]
    public void from_6_11_a_non_last_request_without_a_handler_is_answered_INVALID_at_once(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1");
        var o = k.Do("fault 00:03.0 pasid=4 addr=0x1000 access=r group=2");
        Assert.Equal("INVALID", o.Response);
        Assert.Empty(k.Dev(D).Partial);
    }

    [Theory, InlineData("6.7", "INVALID"), InlineData("6.8", "INVALID"), InlineData("6.9", "FAILURE")]
    public void before_6_11_a_non_last_request_without_a_handler_is_parked_and_the_group_refused_at_its_last(string v, string response)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1");
        Assert.Null(k.Do("fault 00:03.0 pasid=4 addr=0x1000 access=r group=2").Response);
        var last = k.Do("fault 00:03.0 pasid=4 addr=0x1000 access=r group=2 last");
        Assert.Equal(response, last.Response);
        Assert.Equal(2, Assert.Single(k.LastOf<PageResponseSent>()).Requests);
    }

    [Theory, InlineData("5.13", "INVALID"), InlineData("6.2", "INVALID"), InlineData("6.8", "INVALID"), InlineData("6.9", "FAILURE"), InlineData("6.11", "INVALID")]
    public void a_request_without_pasid_has_no_sva_handler(string v, string response)
    {
        var k = Bound(v);
        Assert.Equal(response, k.Do("fault 00:03.0 addr=0x1000 access=r").Response);
    }

    [Theory, InlineData("6.2"), InlineData("6.8"), InlineData("6.11")]
    public void dma_through_a_paging_domain_translates_mapped_iovas_and_faults_on_the_rest(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "domain P type=paging", "attach P 00:03.0", "map P 0x10000-0x20000 paddr=0x80000000");
        var ok = k.Do("fault 00:03.0 addr=0x10800 access=r");
        Assert.Equal("translated", ok.Dma);
        Assert.Equal(0x80000800UL, Assert.Single(k.LastOf<DmaTranslated>()).Paddr);
        k.Do("unmap P 0x10000-0x20000");
        var bad = k.Do("fault 00:03.0 addr=0x10800 access=r");
        Assert.Equal("fault", bad.Dma);
        var finding = Assert.Single(Checks.Run(k.Events));
        Assert.Equal(FindingKinds.DmaAfterUnmap, finding.Kind);
        var unmapSeq = k.Events.FindIndex(e => e is IovaUnmapped) + 1;
        Assert.Contains(unmapSeq, finding.Involved);
        Assert.Contains($"unmapped at seq {unmapSeq}", finding.Message);
    }

    [Theory, InlineData("6.2"), InlineData("6.11")]
    public void identity_passes_dma_through_and_blocked_refuses_it(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "device 00:04.0 pasids=1024", "domain I type=identity", "domain B type=blocked",
            "attach I 00:03.0", "attach B 00:04.0");
        Assert.Equal("translated", k.Do("fault 00:03.0 addr=0x1234 access=rw").Dma);
        Assert.Equal("fault", k.Do("fault 00:04.0 addr=0x1234 access=rw").Dma);
    }

    [Theory, InlineData("5.13", Errno.EINVAL), InlineData("5.18", Errno.EINVAL), InlineData("6.2", Errno.ENODEV), InlineData("6.8", Errno.ENODEV), InlineData("6.9", Errno.ENODEV)]
    public void bind_needs_a_stage_1_rid_domain_on_arm_before_6_11(string v, Errno expected)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1", "domain I type=identity", "attach I 00:03.0");
        Assert.Equal(expected, k.Do("bind 00:03.0 m1").Errno);
    }

    [Theory, InlineData("6.11")]
    public void bind_under_an_identity_rid_domain_works_from_6_11(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1", "domain I type=identity", "attach I 00:03.0");
        var o = k.Do("bind 00:03.0 m1");
        Assert.True(o.Ok);
        // it rests on an uncertain reading, and says so
        Assert.Equal(("arm.rid-not-checked", Confidence.U), (o.Rule?.Id, o.Rule?.Confidence));
        Assert.Equal("g3.domain-new", Sim.On(v, "device 00:03.0 pasids=1024", "mm m1").Do("bind 00:03.0 m1").Rule?.Id);
    }

    [Theory, MemberData(nameof(SpecScenarioTests.AllVersions), MemberType = typeof(SpecScenarioTests))]
    public void mm_users_end_at_exit_and_mm_count_at_the_last_holder(string v)
    {
        var k = Bound(v);
        var m = k.Mm("m1");
        Assert.Equal(1, m.MmUsers);
        var held = m.MmCount;
        Assert.True(held >= 2, "the SVA domain or the Arm CD holds an mmgrab");
        k.Do("exit m1");
        Assert.Equal(0, k.Mm("m1").MmUsers);
        Assert.Equal(held, k.Mm("m1").MmCount);
        k.Do("drop m1");
        Assert.Equal(held - 1, k.Mm("m1").MmCount);
        Assert.Empty(k.LastOf<MmFreed>());
        k.Do("unbind q1");
        Assert.Equal(0, k.Mm("m1").MmCount);
        Assert.Single(k.LastOf<MmFreed>());
    }

    [Theory, MemberData(nameof(SpecScenarioTests.AllVersions), MemberType = typeof(SpecScenarioTests))]
    public void drop_of_a_live_mm_runs_release_first(string v)
    {
        var k = Bound(v);
        k.Do("drop m1");
        Assert.Single(k.LastOf<MmReleased>());
        Assert.Single(k.LastOf<PasidEntryQuieted>());
        Assert.Equal(0, k.Mm("m1").MmUsers);
    }

    [Theory, InlineData("5.13"), InlineData("6.2"), InlineData("6.9")]
    public void before_6_11_every_device_of_an_mm_shares_the_pinned_cpu_asid(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "device 00:04.0 pasids=1024", "mm m0", "mm m1", "bind 00:03.0 m1", "bind 00:04.0 m1");
        var cd = Assert.Single(k.State.ContextDescriptors);
        Assert.Equal(k.Mm("m1").Ordinal, cd.Value);
        Assert.All(k.State.Domains.Values, d => Assert.Null(d.Asid));
    }

    [Theory, InlineData("6.11")]
    public void from_6_11_each_sva_domain_has_a_private_asid_and_no_cd_is_shared(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1", "mm m2", "bind 00:03.0 m1", "bind 00:03.0 m2");
        Assert.Empty(k.State.ContextDescriptors);
        Assert.Equal([1, 2], k.State.Domains.Values.Select(d => d.Asid!.Value).Order());
    }

    [Theory, MemberData(nameof(SpecScenarioTests.AllVersions), MemberType = typeof(SpecScenarioTests))]
    public void unbind_of_a_freed_handle_is_rejected_and_check_reports_use_after_free(string v)
    {
        var k = Bound(v, "unbind q1");
        var o = k.Do("unbind q1");
        Assert.False(o.Ok);
        Assert.Contains("use after free", o.Reason);
        var f = Assert.Single(Checks.Run(k.Events));
        Assert.Equal(FindingKinds.UseAfterFree, f.Kind);
        Assert.Equal(k.Events.Count, f.Seq);
    }

    [Theory, InlineData("6.8-rc1")]
    public void unbind_of_a_label_whose_bind_failed_names_the_failure(string v)
    {
        var k = Bound(v, "bind q2 00:03.0 m1");
        var o = k.Do("unbind q2");
        Assert.False(o.Ok);
        Assert.Contains("failed at seq", o.Reason);
    }

    [Theory, InlineData("5.18"), InlineData("6.8"), InlineData("6.11")]
    public void pasid_reuse_while_a_request_of_the_old_owner_is_parked_is_found_by_check(string v)
    {
        var k = Sim.On(v, "device 00:03.0 pasids=1024", "mm m1", "mm m2", "bind a 00:03.0 m1",
            "fault 00:03.0 pasid=1 addr=0x1000 access=r group=9", "unbind a", "exit m1", "drop m1", "bind b 00:03.0 m2");
        Assert.Equal(1, k.Outcomes[^1].Pasid);
        var f = Assert.Single(Checks.Run(k.Events), x => x.Kind == FindingKinds.PasidReusedWithQueuedFault);
        var queued = k.Events.FindIndex(e => e is PageRequestQueued) + 1;
        Assert.Contains(queued, f.Involved);
    }
}
