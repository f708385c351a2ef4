using Sva.Domain;
using Sva.Domain.Json;
using Sva.Formats.Generate;
using Sva.Formats.Script;
using Xunit;

namespace Sva.TimeTravel.Tests;

public sealed class GeneratorTests
{
    private static readonly WorkloadOptions Opts = new(8, 12, 20_000, 1234);

    [Fact]
    public void the_same_seed_gives_the_same_script_byte_for_byte_and_another_seed_does_not()
    {
        var a = WorkloadGenerator.Script(Opts);
        var b = WorkloadGenerator.Script(Opts);
        var c = WorkloadGenerator.Script(Opts with { Seed = 1235 });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.StartsWith("# sva generate --devices 8 --mms 12 --events 20000 --seed 1234 --kernel 6.8\nkernel 6.8\n", a);
    }

    [Fact]
    public void the_script_parses_back_to_the_same_calls_and_deciding_them_again_gives_the_same_events()
    {
        var calls = WorkloadGenerator.Generate(Opts).ToList();
        var script = ScriptParser.Parse(WorkloadGenerator.Script(Opts), "g.sva");
        Assert.Equal("6.8", script.Kernel);
        Assert.Equal(calls.Count, script.Lines.Count);
        var state = new SvaState();
        var v = KernelVersions.Get("6.8");
        for (var i = 0; i < calls.Count; i++)
        {
            Assert.Equal(calls[i].Call, script.Lines[i].Call);
            Assert.Equal(calls[i].Line, script.Lines[i].Line);
            var events = SvaKernel.Execute(v, state, script.Lines[i].Call);
            Assert.Equal(calls[i].Events.Select(SvaJson.Serialize), events.Select(SvaJson.Serialize));
        }
    }

    [Fact]
    public void it_stops_after_the_call_that_reaches_the_event_count()
    {
        var calls = WorkloadGenerator.Generate(Opts).ToList();
        var total = calls.Sum(c => c.Events.Count);
        Assert.True(total >= Opts.Events, $"{total} events");
        Assert.True(total - calls[^1].Events.Count < Opts.Events, "one call too many");
    }

    [Fact]
    public void the_mix_has_every_kind_of_call_fault_groups_and_occasional_errors()
    {
        var calls = WorkloadGenerator.Generate(Opts with { Events = 60_000 }).ToList();
        var ops = calls.GroupBy(c => c.Call.Op).ToDictionary(g => g.Key, g => g.Count());
        foreach (var op in new[] { "device", "mm", "vma", "bind", "unbind", "fault", "invalidate", "exit", "drop" })
            Assert.True(ops.ContainsKey(op), $"no '{op}' call");
        Assert.True(ops["fault"] > ops["bind"] * 5, "faults should dominate binds");
        var events = calls.SelectMany(c => c.Events).ToList();
        Assert.Contains(events, e => e is PageRequestQueued);                                              // multi-request groups
        Assert.Contains(events, e => e is PageResponseSent { Code: PageResponseCode.SUCCESS, Requests: > 1 });
        Assert.Contains(events, e => e is PageResponseSent { Code: PageResponseCode.INVALID });            // bad VMA access, after exit
        Assert.Contains(events, e => e is BindFailed);
        Assert.Contains(events, e => e is UnbindRejected);                                                 // double unbind
        Assert.Contains(events, e => e is SecondaryTlbInvalidated);
        Assert.Contains(events, e => e is MmFreed);
        Assert.True(calls.Count(c => c.Call is CreateMm) > Opts.Mms, "dropped mms are replaced by new ones");
        // New mms replace dropped ones: never more than --mms processes alive at once.
        var s = Evolve.Fold(events);
        Assert.True(s.Mms.Values.Count(m => m.State == MmLife.Live) <= Opts.Mms);
    }

    [Theory]
    [InlineData("5.11")] // VT-d devices: Arm SMMUv3 cannot enable SVA on 5.11/5.12
    [InlineData("5.13")]
    [InlineData("6.2")]
    [InlineData("6.8-rc1")]
    [InlineData("6.11")]
    public void other_kernels_generate_too(string kernel)
    {
        var calls = WorkloadGenerator.Generate(Opts with { Events = 5_000, Kernel = kernel }).ToList();
        Assert.True(calls.Sum(c => c.Events.Count) >= 5_000);
        Assert.Contains(calls.SelectMany(c => c.Events), e => e is HandleIssued);
    }

    [Fact]
    public void bad_options_are_refused()
    {
        Assert.Throws<ArgumentException>(() => WorkloadGenerator.Generate(new WorkloadOptions(0, 1, 10, 1)).ToList());
        Assert.Throws<ArgumentException>(() => WorkloadGenerator.Generate(new WorkloadOptions(1, 1, 10, 1, "4.0")).ToList());
    }
}
