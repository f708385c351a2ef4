using Sva.Formats.Kernels;

namespace Sva.Domain.Tests;

/// <summary>
/// Issue 19: the situations D1–D18 of kernel-sva-vtd-amd.md as the scripts of tests/data/vtd-amd run them, asserted as
/// each script's header says per kernel version and driver (the header is the expectation; the groundwork README says
/// which source each comes from). A script written for <c>driver=vtd</c> is re-run with <c>driver=amd</c> where the
/// header gives the AMD outcome.
/// </summary>
public class VtdAmdScriptTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "vtd-amd");

    public static IEnumerable<string> Scripts => Directory.GetFiles(Dir, "D*.sva").Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    private static IEnumerable<string> Lines(string file, string? driver) =>
        File.ReadAllLines(Path.Combine(Dir, file))
            .Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'))
            .Select(l => driver is null ? l : l.Replace("driver=vtd", $"driver={driver}"));

    private static Sim Run(string prefix, string v, string? driver = null) => Run(prefix, Sim.On(v), driver);

    private static Sim Run(string prefix, Sim k, string? driver = null)
    {
        var file = Directory.GetFiles(Dir, prefix + "-*.sva").Select(Path.GetFileName).Single()!;
        foreach (var line in Lines(file, driver)) k.Do(line);
        return k;
    }

    private static CallOutcome Named(Sim k, string name) => k.Outcomes.Single(o => o.Name == name);
    private static IEnumerable<CallOutcome> Faults(Sim k) => k.Outcomes.Where(o => o.Op == "fault");

    public static TheoryData<string> AllVersions() => new(KernelVersions.All.Select(v => v.Name));
    public static TheoryData<string> AmdVersions() => new(KernelVersions.All.Where(v => v.Rules.AmdSva == AmdSva.SvaDomain).Select(v => v.Name));

    // ---- D1: no AMD SVA before 6.10 -------------------------------------------------------------------------
    [Theory, InlineData("5.11", Errno.ENODEV), InlineData("5.13", Errno.ENODEV), InlineData("5.14", Errno.ENODEV), InlineData("5.18", Errno.ENODEV),
     InlineData("6.1", Errno.ENODEV), InlineData("6.2", Errno.EOPNOTSUPP), InlineData("6.4", Errno.EOPNOTSUPP), InlineData("6.6", Errno.ENOSPC),
     InlineData("6.7", Errno.ENOMEM), InlineData("6.8-rc1", Errno.ENOMEM), InlineData("6.8", Errno.ENOMEM), InlineData("6.9", Errno.ENOMEM),
     InlineData("6.10", null), InlineData("6.11", null)]
    public void d01_amd_binds_only_from_6_10(string v, Errno? errno)
    {
        var k = Run("D01", v);
        Assert.True(Named(k, "v").Ok); // the VT-d control line
        var a = Named(k, "a");
        Assert.Equal(errno, a.Errno);
        Assert.Equal(errno is null, a.Ok);
        if (errno is not null) Assert.StartsWith("amd.", a.Rule?.Id);
    }

    // ---- D2: AMD 6.10+ needs an identity or v2 RID domain ------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d02_amd_refuses_sva_under_a_v1_paging_rid_domain(string v)
    {
        var k = Run("D02", v);
        var (a, b) = (Named(k, "a"), Named(k, "b"));
        if (KernelVersions.Get(v).Rules.AmdSva != AmdSva.SvaDomain) { Assert.False(a.Ok); Assert.False(b.Ok); return; }
        Assert.Equal(Errno.EINVAL, a.Errno);
        Assert.Equal("amd.rid-not-sva-capable", a.Rule?.Id);
        Assert.True(b.Ok);
    }

    // ---- D3: an exited mm another device holds binds without a BUG ----------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d03_vtd_exited_mm_held_elsewhere_binds_and_a_fresh_one_is_a_bug(string v) => D03(Run("D03", v));

    [Theory, MemberData(nameof(AmdVersions))]
    public void d03_amd_exited_mm_held_elsewhere_binds_and_a_fresh_one_is_a_bug(string v) => D03(Run("D03", v, Drivers.Amd));

    private static void D03(Sim k)
    {
        var b = Named(k, "b");
        Assert.True(b.Ok, b.Describe());
        Assert.Null(b.Bug);
        Assert.Equal(Named(k, "a").Pasid, b.Pasid);
        var c = Named(k, "c");
        Assert.Equal("BUG_ON(mm_users <= 0) in __mmu_notifier_register", c.Bug);
        Assert.Matches("^(vtd|amd)\\.exited-mm-bug", c.Rule?.Id);
        // the session is tainted only by the line that is a BUG
        Assert.Equal(k.State.TaintedAt, c.TaintedAt);
        Assert.Null(b.TaintedAt);
    }

    // ---- D4: 5.11-5.13 VT-d handles each page request in the driver, its own result, no sticky error ----------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d04_vtd_in_driver_prq_answers_the_last_request_with_its_own_result(string v)
    {
        var k = Run("D04", v);
        var f = Faults(k).ToList();
        if (KernelVersions.Get(v).Rules.VtdPrq == VtdPrq.InDriver)
        {
            // line A: handled at once, INVALID, no response; nothing parked
            Assert.Null(f[0].Response);
            Assert.Equal("INVALID", f[0].Handled);
            Assert.Equal("vtd.prq-in-driver-vma", f[0].Rule?.Id);
            Assert.Contains("handled in the driver: INVALID, no response", f[0].Describe());
            Assert.Empty(k.Events.OfType<PageRequestQueued>());
            Assert.Empty(k.State.Devices["0000:00:03.0"].Partial);
            // line B: its own result, not the group's first error
            Assert.Equal(("SUCCESS", 0, "vtd.prq-in-driver"), (f[1].Response, f[1].WireCode, f[1].Rule?.Id));
            Assert.Equal(1, k.Events.OfType<PageResponseSent>().Single().Requests);
        }
        else
        {
            Assert.Null(f[0].Response);
            Assert.Null(f[0].Handled);
            Assert.Single(k.Events.OfType<PageRequestQueued>());
            Assert.Equal("INVALID", f[1].Response); // iopf_handle_group: the first failure is sticky
        }
    }

    [Theory, InlineData("5.11"), InlineData("5.13")]
    public void d04_in_driver_prq_ignores_the_iopf_queue_and_serves_an_unbound_device_with_a_warn(string v)
    {
        var k = Sim.On(v);
        foreach (var l in new[] { "device 0000:00:03.0 pasids=64 driver=vtd iopf=off", "device 0000:00:04.0 pasids=64 driver=vtd", "mm m1", "bind h1 0000:00:03.0 m1" }) k.Do(l);
        Assert.Equal(("SUCCESS", "vtd.prq-in-driver"), (k.Do("fault 0000:00:03.0 pasid=1 addr=0x1000 access=r").Response, k.Outcomes[^1].Rule?.Id));
        var unbound = k.Do("fault 0000:00:04.0 pasid=1 addr=0x1000 access=w group=2 last");
        Assert.Equal(("SUCCESS", "vtd.prq-in-driver-unbound"), (unbound.Response, unbound.Rule?.Id));
        Assert.Equal(("INVALID", "vtd.prq-in-driver-no-svm"), (k.Do("fault 0000:00:03.0 pasid=9 addr=0x1000 access=r").Response, k.Outcomes[^1].Rule?.Id));
        k.Do("exit m1");
        Assert.Equal(("INVALID", "vtd.prq-in-driver-mm-exited"), (k.Do("fault 0000:00:03.0 pasid=1 addr=0x1000 access=r").Response, k.Outcomes[^1].Rule?.Id));
        Assert.DoesNotContain(Checks.Run(k.Events), f => f.Kind == FindingKinds.SuccessAfterExit);
    }

    // ---- D5: a VT-d device not on an IOPF queue ---------------------------------------------------------------
    [Theory, InlineData("5.11", "SUCCESS"), InlineData("5.13", "SUCCESS"), InlineData("5.14", "INVALID"), InlineData("5.18", "INVALID"),
     InlineData("6.1", "INVALID"), InlineData("6.2", "INVALID"), InlineData("6.4", "INVALID"), InlineData("6.6", "INVALID"), InlineData("6.7", "INVALID"),
     InlineData("6.8-rc1", "INVALID"), InlineData("6.8", "INVALID"), InlineData("6.9", "NONE"), InlineData("6.10", "NONE"), InlineData("6.11", "INVALID")]
    public void d05_vtd_answers_invalid_when_the_report_fails(string v, string response)
    {
        var f = Faults(Run("D05", v)).Single();
        Assert.Equal(response, f.Response);
        if (KernelVersions.Get(v).Rules is { VtdPrq: not VtdPrq.InDriver, VtdReportFailure: VtdReportFailure.DriverInvalid })
            Assert.Equal("vtd.prq-report-failed", f.Rule?.Id);
    }

    [Theory, InlineData("6.10", "NONE"), InlineData("6.11", "INVALID")]
    public void d05_amd_device_without_an_iopf_queue_gets_the_cores_answer(string v, string response) =>
        Assert.Equal(response, Faults(Run("D05", v, Drivers.Amd)).Single().Response);

    // ---- D6, D7: requests the driver answers itself ------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d06_vtd_answers_a_request_without_pasid_invalid(string v)
    {
        var f = Faults(Run("D06", v)).Single();
        Assert.Equal(("INVALID", "vtd.prq-no-pasid"), (f.Response, f.Rule?.Id));
    }

    [Theory, MemberData(nameof(AmdVersions))]
    public void d06_d07_amd_completes_bad_pprs_failure(string v)
    {
        Assert.Equal(("FAILURE", "amd.ppr-invalid"), Faults(Run("D06", v, Drivers.Amd)).Select(f => (f.Response, f.Rule?.Id)).Single());
        Assert.All(Faults(Run("D07", v)), f => Assert.Equal(("FAILURE", "amd.ppr-invalid"), (f.Response, f.Rule?.Id)));
        Assert.Equal(3, Faults(Run("D07", v)).Count());
    }

    // ---- D8: 5.14-6.0 svm/sdev lookup; 6.1 serves through iommu_sva_find ------------------------------------------
    [Theory, InlineData("5.11", "SUCCESS", "INVALID"), InlineData("5.13", "SUCCESS", "INVALID"), InlineData("5.14", "INVALID", "INVALID"),
     InlineData("5.18", "INVALID", "INVALID"), InlineData("6.1", "SUCCESS", "SUCCESS"), InlineData("6.2", "INVALID", "INVALID"),
     InlineData("6.8", "INVALID", "INVALID"), InlineData("6.9", "FAILURE", "FAILURE"), InlineData("6.10", "FAILURE", "FAILURE"), InlineData("6.11", "INVALID", "INVALID")]
    public void d08_vtd_fault_from_a_device_not_bound_to_the_pasid(string v, string x, string y)
    {
        var f = Faults(Run("D08", v)).ToList();
        Assert.Equal((x, y), (f[0].Response, f[1].Response));
        if (v is "5.14" or "5.18") Assert.All(f, o => Assert.Equal("vtd.prq-sdev-lookup", o.Rule?.Id));
    }

    // ---- D9: VT-d exec requests INVALID from 5.13 ------------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d09_vtd_answers_an_exec_request_invalid_from_5_13(string v)
    {
        var f = Faults(Run("D09", v)).Single();
        if (v == "5.11") Assert.Equal("SUCCESS", f.Response);
        else Assert.Equal(("INVALID", "vtd.prq-exec"), (f.Response, f.Rule?.Id));
    }

    [Theory, MemberData(nameof(AmdVersions))]
    public void d09_amd_has_no_exec_filter(string v) => Assert.Equal("SUCCESS", Faults(Run("D09", v, Drivers.Amd)).Single().Response);

    // ---- D10: non-canonical addresses -----------------------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d10_a_non_canonical_address_is_invalid(string v)
    {
        Assert.Equal(("INVALID", "vtd.prq-noncanonical"), Faults(Run("D10", v)).Select(f => (f.Response, f.Rule?.Id)).Single());
        var rules = KernelVersions.Get(v).Rules;
        if (rules.GenericIopf) Assert.Equal("INVALID", Faults(Run("D10", v, Drivers.SmmuV3)).Single().Response);
        if (rules.AmdSva == AmdSva.SvaDomain) Assert.Equal("INVALID", Faults(Run("D10", v, Drivers.Amd)).Single().Response);
    }

    // ---- D11: one VT-d notifier per mm/PASID (per SVA domain from 6.10) ------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d11_vtd_has_one_notifier_callback_for_both_devices(string v)
    {
        var k = Run("D11", v);
        var round = Assert.Single(k.LastOf<SecondaryTlbInvalidated>());
        Assert.Equal(["0000:00:03.0", "0000:00:04.0"], round.Atc);
        Assert.Single(k.State.Notifiers);
    }

    // ---- D12: range or whole PASID -----------------------------------------------------------------------------------
    [Theory, InlineData("5.11", "range"), InlineData("5.18", "range"), InlineData("6.4", "range"), InlineData("6.6", "all"), InlineData("6.8", "all"),
     InlineData("6.9", "all"), InlineData("6.10", "all"), InlineData("6.11", "all")]
    public void d12_vtd_flushes_a_range_over_33_pages_as_the_whole_pasid_from_6_6(string v, string big)
    {
        var k = Run("D12", v);
        var rounds = k.Events.OfType<SecondaryTlbInvalidated>().ToList();
        Assert.Equal(2, rounds.Count);
        Assert.Equal("pasid 1 range", rounds[0].Tlbi);
        Assert.Equal($"pasid 1 {big}", rounds[1].Tlbi);
        Assert.All(rounds, r => Assert.StartsWith("inv.vtd-", r.Rule));
    }

    [Fact]
    public void d12_a_6_6_0_kernel_file_loses_the_promoted_flush()
    {
        var file = KernelFiles.Load("/virtual/6.6.0.toml", p => p == "/virtual/6.6.0.toml"
            ? "name = \"6.6.0\"\nparent = \"6.6\"\nsays = \"e7ad6c2a4b1a not yet applied (6.6.5 stable)\"\nvtd-notifier-flush = \"range-or-lost\"\n" : null);
        var k = Run("D12", Sim.On(file));
        var rounds = k.Events.OfType<SecondaryTlbInvalidated>().ToList();
        Assert.Equal("pasid 1 range", rounds[0].Tlbi);
        Assert.Null(rounds[1].Tlbi);
        Assert.Empty(rounds[1].Atc);
        Assert.Equal("inv.vtd-lost", rounds[1].Rule);
    }

    // ---- D13: VT-d 5.11-5.13 PASID errnos come from intel_svm_bind_mm ------------------------------------------------
    [Theory, InlineData("5.11", Errno.EINVAL, "vtd.no-pasid-cap", Errno.ENOSPC, "vtd.pasid-width"),
     InlineData("5.13", Errno.EINVAL, "vtd.no-pasid-cap", Errno.ENOSPC, "vtd.pasid-width"),
     InlineData("5.14", null, "vtd.no-pasid-cap-unchecked", Errno.EOVERFLOW, "pasid.range-inside"),
     InlineData("5.18", null, "vtd.no-pasid-cap-unchecked", Errno.EOVERFLOW, "pasid.range-off-by-one"),
     InlineData("6.1", null, "vtd.no-pasid-cap-unchecked", Errno.EOVERFLOW, "pasid.range-off-by-one"),
     InlineData("6.2", Errno.EOPNOTSUPP, "pasid.no-pasid-eopnotsupp", Errno.EOVERFLOW, "pasid.range-off-by-one"),
     InlineData("6.4", Errno.EOPNOTSUPP, "pasid.no-pasid-eopnotsupp", Errno.EOVERFLOW, "pasid.range-above-max"),
     InlineData("6.6", Errno.EOVERFLOW, "pasid.range-above-max", Errno.EOVERFLOW, "pasid.range-above-max"),
     InlineData("6.9", Errno.EOVERFLOW, "pasid.range-above-max", Errno.EOVERFLOW, "pasid.range-above-max"),
     InlineData("6.11", Errno.EOVERFLOW, "pasid.range-above-max", Errno.EOVERFLOW, "pasid.range-above-max")]
    public void d13_vtd_pasid_errnos_come_from_the_driver_until_5_14(string v, Errno? x, string xRule, Errno y, string yRule)
    {
        var k = Run("D13", v);
        Assert.True(Named(k, "w").Ok);
        Assert.True(Named(k, "z").Ok);
        var bx = Named(k, "x");
        Assert.Equal((x, xRule), (bx.Errno, bx.Rule?.Id));
        Assert.Equal(x is null, bx.Ok);
        if (x is null) Assert.Equal(Named(k, "w").Pasid, bx.Pasid); // m1's PASID fits the unsigned -EINVAL width
        var by = Named(k, "y");
        Assert.Equal((y, yRule), (by.Errno, by.Rule?.Id));
    }

    [Fact]
    public void d13_vtd_5_11_exhausted_pasid_space_is_enospc_not_enomem()
    {
        // three PASIDs of a device with pasid_max 4 ([1, 3]), the fourth mm finds the range full
        var k = Sim.On("5.11");
        k.Do("device 0000:00:03.0 pasids=4 driver=vtd");
        foreach (var m in new[] { "m1", "m2", "m3", "m4" }) { k.Do($"mm {m}"); k.Do($"bind {m}b 0000:00:03.0 {m}"); }
        Assert.True(Named(k, "m3b").Ok);
        var full = Named(k, "m4b");
        Assert.Equal((Errno.ENOSPC, "vtd.pasid-exhausted"), (full.Errno, full.Rule?.Id));
        var k14 = Sim.On("5.14");
        k14.Do("device 0000:00:03.0 pasids=4 driver=vtd");
        foreach (var m in new[] { "m1", "m2", "m3", "m4" }) { k14.Do($"mm {m}"); k14.Do($"bind {m}b 0000:00:03.0 {m}"); }
        Assert.Equal(Errno.ENOMEM, Named(k14, "m4b").Errno); // 5.14–6.3: the core's ioasid -ENOMEM
    }

    // ---- D14: a VT-d device with max_pasids 1 ------------------------------------------------------------------------
    [Theory, InlineData("5.11", Errno.ENOSPC, "vtd.pasid-exhausted"), InlineData("5.13", Errno.ENOSPC, "vtd.pasid-exhausted"),
     InlineData("5.14", Errno.EINVAL, "pasid.empty-range"), InlineData("5.18", Errno.EINVAL, "pasid.empty-range"), InlineData("6.1", Errno.EINVAL, "pasid.empty-range"),
     InlineData("6.2", Errno.EINVAL, "pasid.empty-range"), InlineData("6.4", Errno.EINVAL, "pasid.empty-range"),
     InlineData("6.6", Errno.ENOSPC, "pasid.exhausted-global"), InlineData("6.9", Errno.ENOSPC, "pasid.exhausted-global"), InlineData("6.11", Errno.ENOSPC, "pasid.exhausted-global")]
    public void d14_vtd_max_pasids_1(string v, Errno errno, string rule)
    {
        var h1 = Named(Run("D14", v), "h1");
        Assert.Equal((errno, rule), (h1.Errno, h1.Rule?.Id));
        Assert.NotEqual("g1.no-ssids", h1.Rule?.Id);
    }

    // ---- D15: release clears the entry (not present, FPD) ----------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d15_vtd_release_clears_the_pasid_entry_and_the_later_unbind_flushes_nothing(string v) => D15(v, Drivers.Vtd, "not-present-fpd", "vtd.mm-release");

    [Theory, MemberData(nameof(AmdVersions))]
    public void d15_amd_release_clears_the_gcr3_entry(string v) => D15(v, Drivers.Amd, "gcr3-cleared", "amd.mm-release");

    private static void D15(string v, string driver, string mode, string rule)
    {
        var k = Run("D15", v, driver);
        var exit = k.Outcomes.Single(o => o.Op == "exit");
        Assert.Equal(rule, exit.Rule?.Id);
        Assert.Single(k.Events.OfType<PasidEntryQuieted>(), q => q.Mode == mode && q.Pasid == 1);
        Assert.Contains(k.Events.OfType<SecondaryTlbInvalidated>(), t => t.Rule == rule && t.Tlbi == "pasid 1 all");
        Assert.Empty(k.Events.OfType<ContextDescriptorAllocated>());
        Assert.Equal("INVALID", Faults(k).Single().Response);
        // the unbind after release: the entry is not present, the teardown returns early: no flush
        var unbindAt = k.Outcomes.FindIndex(o => o.Op == "unbind");
        var after = k.Events.SkipWhile(e => e is not HandleFreed and not HandleReleased).ToList();
        Assert.True(unbindAt > 0);
        Assert.Empty(after.OfType<SecondaryTlbInvalidated>());
        Assert.Empty(Checks.Run(k.Events));
    }

    // ---- D16: VT-d sva=off is not refused --------------------------------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d16_vtd_binds_with_the_sva_feature_off(string v) => Assert.True(Named(Run("D16", v), "h1").Ok);

    // ---- D17: a core FAILURE goes out as wire code 2 on VT-d and AMD -----------------------------------------------------
    [Theory, MemberData(nameof(AllVersions))]
    public void d17_vtd_page_responses_carry_the_code_as_sent_on_the_wire(string v)
    {
        var f = Faults(Run("D17", v)).Single();
        var sent = Run("D17", v).Events.OfType<PageResponseSent>().Single();
        if (v is "6.9" or "6.10")
        {
            Assert.Equal(("FAILURE", 2), (f.Response, f.WireCode));
            Assert.Contains("sent as wire code 2", f.Describe());
        }
        else if (v is "5.11" or "5.13" or "6.1") Assert.Equal(("SUCCESS", 0), (f.Response, f.WireCode)); // D08: served
        else Assert.Equal(("INVALID", 1), (f.Response, f.WireCode));
        Assert.Equal((int)sent.Code, sent.WireCode);
    }

    [Theory, InlineData("6.10", "FAILURE", 2), InlineData("6.11", "INVALID", 1)]
    public void d17_amd_complete_ppr_carries_the_core_code(string v, string response, int wire)
    {
        var f = Faults(Run("D17", v, Drivers.Amd)).Single();
        Assert.Equal((response, wire), (f.Response, f.WireCode));
        // the driver's own FAILURE (D7) goes out as 2 as well
        Assert.All(Run("D07", v).Events.OfType<PageResponseSent>(), r => Assert.Equal(2, r.WireCode));
    }

    [Theory, InlineData("6.9"), InlineData("6.11")]
    public void d17_arm_responses_have_no_wire_code_and_keep_their_stored_shape(string v)
    {
        var k = Run("D17", v, Drivers.SmmuV3);
        var sent = k.Events.OfType<PageResponseSent>().Single();
        Assert.Null(sent.WireCode);
        Assert.DoesNotContain("wire_code", Sva.Domain.Json.SvaJson.Serialize(sent));
        Assert.Null(Faults(k).Single().WireCode);
    }

    [Fact]
    public void d17_a_page_response_stored_without_wire_code_still_reads_and_one_with_it_round_trips()
    {
        // the shape written before wire codes existed
        const string old = """{"device":"0000:00:04.0","pasid":1,"group":null,"code":"FAILURE","reason":"iopf aborted","requests":1,"rule":"iopf.no-domain-failure"}""";
        var e = Assert.IsType<PageResponseSent>(Sva.Domain.Json.SvaJson.Deserialize("page_response_sent", old));
        Assert.Equal((PageResponseCode.FAILURE, (int?)null), (e.Code, e.WireCode));
        var now = e with { WireCode = 2 };
        var json = Sva.Domain.Json.SvaJson.Serialize(now);
        Assert.Contains("\"wire_code\":2", json);
        Assert.Equal(now, Sva.Domain.Json.SvaJson.Deserialize("page_response_sent", json));
    }

    // ---- D18: no outcome of a VT-d or AMD device names an Arm function ---------------------------------------------------
    [Fact]
    public void d18_no_vtd_or_amd_outcome_names_an_arm_function_in_any_script_under_any_version()
    {
        var bad = new List<string>();
        foreach (var file in Scripts)
            foreach (var driver in new string?[] { null, Drivers.Amd })
                foreach (var v in KernelVersions.All)
                {
                    var k = Sim.On(v.Name);
                    foreach (var line in Lines(file, driver)) k.Do(line);
                    foreach (var o in k.Outcomes.Where(o => o.Rule is not null))
                        if (o.Rule!.Function.Contains("arm_smmu") || o.Rule.Driver == Drivers.SmmuV3)
                            bad.Add($"{file} driver={driver ?? "as written"} {v.Name}: {o.Op} → {o.Rule.Id} {o.Rule.Function}");
                    foreach (var e in k.Events.OfType<IRuled>())
                        if (KernelRuleTable.Find(e.Rule) is { } r && (r.Function.Contains("arm_smmu") || r.Driver == Drivers.SmmuV3))
                            bad.Add($"{file} driver={driver ?? "as written"} {v.Name}: event {e.GetType().Name} → {r.Id}");
                    if (k.Events.OfType<ContextDescriptorAllocated>().Any()) bad.Add($"{file} {v.Name}: an Arm CD for a VT-d/AMD device");
                }
        Assert.Empty(bad);
    }
}
