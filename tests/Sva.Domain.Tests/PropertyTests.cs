using FsCheck;
using FsCheck.Fluent;
using Sva.Domain.Json;

namespace Sva.Domain.Tests;

/// <summary>
/// FsCheck properties over random call sequences drawn from a small world (3 devices, 3 mms, a few
/// labels, domains and addresses) so that calls collide: the same handle unbound twice, faults on
/// PASIDs that come and go, groups with several devices, exits and drops in any order.
/// </summary>
public partial class PropertyTests
{
    private static readonly string[] Devices = ["0000:00:03.0", "0000:00:04.0", "0000:00:05.0"];
    private static readonly string[] Mms = ["m1", "m2", "m3"];
    private static readonly string[] Labels = ["h1", "h2", "h3", "H1", "H2", "H9"];
    private static readonly string[] DomainNames = ["P", "Q", "I", "B", "D1"];
    private static readonly ulong[] Addresses = [0x1000, 0x2000, 0x8000, 0x7f0000000000];

    private static readonly Gen<KernelCall> CallGen = Gen.Frequency(
        (3, from d in Gen.Elements(Devices)
            from max in Gen.Elements(0, 1, 2, 3, 16, 1 << 20)
            from g in Gen.Elements<int?>(null, null, 7)
            from sva in Gen.Frequency((5, Gen.Constant(true)), (1, Gen.Constant(false)))
            from iopf in Gen.Frequency((5, Gen.Constant(true)), (1, Gen.Constant(false)))
            from iommu in Gen.Elements("iommu0", "iommu1")
            from driver in Gen.Frequency((4, Gen.Constant(Drivers.SmmuV3)), (1, Gen.Constant(Drivers.Vtd)), (1, Gen.Constant(Drivers.Amd)))
            select (KernelCall)new ProbeDevice(d, max, g, sva, iopf, iommu, Driver: driver)),
        (2, from m in Gen.Elements(Mms) from lam in Gen.Frequency((6, Gen.Constant(false)), (1, Gen.Constant(true)))
            select (KernelCall)new CreateMm(m, lam)),
        (1, from m in Gen.Elements(Mms) from a in Gen.Elements(Addresses) from prot in Gen.Elements("r", "rw", "rwx")
            select (KernelCall)new MapVma(m, a, a + 0x2000, prot)),
        (6, from d in Gen.Elements(Devices) from m in Gen.Elements(Mms) from l in Gen.Elements<string?>(null, "h1", "h2", "h3")
            select (KernelCall)new Bind(d, m, l)),
        (4, from l in Gen.Elements(Labels) select (KernelCall)new Unbind(l)),
        (5, from d in Gen.Elements(Devices) from p in Gen.Elements<int?>(null, 1, 2, 3, 15)
            from a in Gen.Elements(Addresses) from acc in Gen.Elements("r", "w", "rw", "x")
            from g in Gen.Elements<int?>(null, 1, 2) from last in Gen.Elements(true, false)
            select (KernelCall)new PageFault(d, p, a, acc, g, last || g is null)),
        (2, from m in Gen.Elements(Mms) from a in Gen.Elements(Addresses) from pages in Gen.Elements(1UL, 2UL, 512UL)
            select (KernelCall)new InvalidateRange(m, a, a + pages * 0x1000)),
        (2, from m in Gen.Elements(Mms) select (KernelCall)new MmExit(m)),
        (2, from m in Gen.Elements(Mms) select (KernelCall)new MmDrop(m)),
        (1, from n in Gen.Elements(DomainNames) from t in Gen.Elements("paging", "identity", "blocked")
            select (KernelCall)new AllocDomain(n, t)),
        (2, from n in Gen.Elements(DomainNames) from d in Gen.Elements(Devices) from p in Gen.Elements<int?>(null, 0, 1, 2, 16)
            select (KernelCall)new AttachDomain(n, d, p)),
        (1, from n in Gen.Elements(DomainNames) from d in Gen.Elements(Devices) from p in Gen.Elements<int?>(null, 1, 2)
            select (KernelCall)new DetachDomain(n, d, p)),
        (1, from n in Gen.Elements(DomainNames) from a in Gen.Elements(Addresses) select (KernelCall)new MapIova(n, a, a + 0x1000, 0x9000_0000)),
        (1, from n in Gen.Elements(DomainNames) from a in Gen.Elements(Addresses) select (KernelCall)new UnmapIova(n, a, a + 0x1000)));

    /// <summary>A session: a kernel version and up to ~60 calls, always starting with two devices and an mm so binds can work.</summary>
    private static readonly Gen<(string Version, KernelCall[] Calls)> SessionGen =
        from v in Gen.Elements(KernelVersions.All.Select(x => x.Name).ToArray())
        from calls in Gen.ArrayOf(CallGen)
        select (v, new KernelCall[] { new ProbeDevice(Devices[0], 1 << 20), new ProbeDevice(Devices[1], 4, 7), new CreateMm("m1") }
            .Concat(calls).ToArray());

    private static readonly Config Config = Config.QuickThrowOnFailure.WithMaxTest(300).WithEndSize(60);

    private static void Check(Func<(string Version, KernelCall[] Calls), bool> property) =>
        Prop.ForAll(SessionGen.ToArbitrary(), property).Check(Config);

    private static (List<SvaEvent> Events, SvaState State, List<int> PerCall) Execute(string version, IEnumerable<KernelCall> calls)
    {
        var v = KernelVersions.Get(version);
        var s = new SvaState();
        var events = new List<SvaEvent>();
        var per = new List<int>();
        foreach (var c in calls)
        {
            var e = SvaKernel.Execute(v, s, c);
            per.Add(e.Count);
            events.AddRange(e);
            _ = CallOutcome.Of(c, e, s).Describe();
        }
        return (events, s, per);
    }

    [Fact]
    public void every_outcome_names_a_rule_of_the_table_and_after_a_kernel_bug_every_outcome_says_tainted() =>
        Check(x =>
        {
            var v = KernelVersions.Get(x.Version);
            var s = new SvaState();
            long? taintedAt = null;
            var seq = 0L;
            foreach (var c in x.Calls)
            {
                var e = SvaKernel.Execute(v, s, c);
                var o = CallOutcome.Of(c, e, s);
                if (o.Rule is null || KernelRuleTable.Find(o.Rule.Id) != o.Rule) return false;
                // only KernelBug events start the taint, at their own seq; it never goes away
                var bug = e.Select((ev, i) => (ev, i)).FirstOrDefault(p => p.ev is KernelBug);
                if (taintedAt is null && bug.ev is not null) taintedAt = seq + bug.i + 1;
                seq += e.Count;
                if (o.TaintedAt != taintedAt) return false;
                if (taintedAt is not null && !o.Describe().Contains($"tainted since seq {taintedAt}")) return false;
                if (o.Bug is not null && (o.Errno is not null || o.Ok)) return false;
            }
            return true;
        });

    [Fact]
    public void random_call_sequences_never_crash_and_every_call_yields_at_least_one_event() =>
        Check(x =>
        {
            var (events, state, per) = Execute(x.Version, x.Calls);
            return per.All(n => n >= 1) && state.Seq == events.Count;
        });

    [Fact]
    public void fold_of_the_decided_events_equals_the_executed_state_byte_for_byte() =>
        Check(x =>
        {
            var (events, state, _) = Execute(x.Version, x.Calls);
            return Evolve.Fold(events).ToSnapshotJson() == state.ToSnapshotJson();
        });

    [Fact]
    public void deciding_is_deterministic_same_calls_same_events_byte_for_byte() =>
        Check(x =>
        {
            var a = Execute(x.Version, x.Calls).Events.Select(e => EventTypes.NameOf(e) + SvaJson.Serialize(e));
            var b = Execute(x.Version, x.Calls).Events.Select(e => EventTypes.NameOf(e) + SvaJson.Serialize(e));
            return a.SequenceEqual(b);
        });

    [Fact]
    public void decide_is_pure_and_equals_execute() =>
        Check(x =>
        {
            var v = KernelVersions.Get(x.Version);
            var s = new SvaState();
            foreach (var c in x.Calls)
            {
                var before = s.ToSnapshotJson();
                var decided = SvaKernel.Decide(v, s, c);
                if (s.ToSnapshotJson() != before) return false;
                var executed = SvaKernel.Execute(v, s, c);
                if (!decided.Select(SvaJson.Serialize).SequenceEqual(executed.Select(SvaJson.Serialize))) return false;
            }
            return true;
        });

    [Fact]
    public void every_event_survives_a_json_round_trip_under_its_stored_type_name() =>
        Check(x =>
        {
            foreach (var e in Execute(x.Version, x.Calls).Events)
            {
                var json = SvaJson.Serialize(e);
                var back = SvaJson.Deserialize(EventTypes.NameOf(e), json);
                if (back.GetType() != e.GetType() || SvaJson.Serialize(back) != json) return false;
            }
            return true;
        });

    [Fact]
    public void every_call_survives_a_json_round_trip_even_with_op_not_first() =>
        Check(x => x.Calls.All(c =>
        {
            var json = SvaJson.SerializeCall(c);
            // PostgreSQL's jsonb puts shorter keys first: move "op" to the end to prove the reader does not care.
            var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
            var op = node["op"]!.DeepClone();
            node.Remove("op");
            node["op"] = op;
            var back = SvaJson.DeserializeCall(node.ToJsonString());
            return SvaJson.SerializeCall(back) == json;
        }));

    [Fact]
    public void snapshots_round_trip_and_folding_from_a_snapshot_equals_folding_from_scratch() =>
        Check(x =>
        {
            var (events, state, _) = Execute(x.Version, x.Calls);
            var half = events.Count / 2;
            var snap = SvaState.FromSnapshotJson(Evolve.Fold(events.Take(half)).ToSnapshotJson());
            return Evolve.Fold(events.Skip(half), snap).ToSnapshotJson() == state.ToSnapshotJson();
        });

    [Fact]
    public void checks_never_crash_and_a_kernel_run_never_answers_success_for_an_exited_mm() =>
        Check(x =>
        {
            var findings = Checks.Run(Execute(x.Version, x.Calls).Events);
            return findings.All(f => f.Kind != FindingKinds.SuccessAfterExit && f.Kind != FindingKinds.RefcountUnderflow
                                     && FindingKinds.All.Contains(f.Kind) && f.Involved.All(s => s != f.Seq));
        });

    [Fact]
    public void counts_never_go_below_their_floor() =>
        Check(x =>
        {
            var v = KernelVersions.Get(x.Version);
            var s = new SvaState();
            foreach (var c in x.Calls)
            {
                SvaKernel.Execute(v, s, c);
                if (s.Mms.Values.Any(m => m.MmCount < 0 || m.MmUsers < 0)) return false;
                if (s.Domains.Values.Any(d => d.Users < 0) || s.Handles.Values.Any(h => h.Users < 1)) return false;
                if (s.Notifiers.Values.Any(n => n.Refs < 1)) return false;
                // Every live handle's domain is allocated and every PASID owner exists.
                if (s.Handles.Values.Any(h => h.Domain is not null && s.DomainById(h.Domain) is null)) return false;
                if (s.Pasids.Values.Any(m => !s.Mms.ContainsKey(m))) return false;
            }
            return true;
        });

    [Fact]
    public void comparing_a_version_with_itself_is_always_identical() =>
        Check(x =>
        {
            var calls = x.Calls.Select((c, i) => new SourcedKernelCall(c, $"r.sva:{i + 1}", null)).ToList();
            var v = KernelVersions.Get(x.Version);
            return Differential.Compare(v, v, calls).Identical;
        });

    [Fact]
    public void every_stored_event_type_name_maps_to_an_event_the_fold_understands()
    {
        foreach (var name in EventTypes.Names)
        {
            Assert.True(EventTypes.TryGetType(name, out var t));
            Assert.Equal(name, EventTypes.NameOf(t));
        }
        var all = typeof(SvaEvent).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(SvaEvent)) && !t.IsAbstract).ToList();
        Assert.All(all, t => Assert.Contains(EventTypes.NameOf(t), EventTypes.Names));
    }
}
