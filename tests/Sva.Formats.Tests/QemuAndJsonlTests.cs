using Sva.Formats.Captures;
using static Sva.Formats.Captures.ObservationKind;

namespace Sva.Formats.Tests;

public class QemuAndJsonlTests
{
    [Fact]
    public async Task qemu_trace_with_and_without_prefix_error_reports_smmuv3_and_wrapped_lines()
    {
        var items = await TestData.ReadAsync("synthetic/qemu-variants.txt");
        items.AssertKinds((QemuVtdSlpte, 1), (QemuVtdTranslate, 3), (QemuVtdFault, 1), (QemuVtdError, 2), (QemuVtd, 1), (QemuSmmuV3, 3));
        Assert.Equal("unrecognised event 'virtio_queue_notify'", items.Skipped().Single().Reason);
        var obs = items.Observations();
        // -D file: no pid@time prefix; QEMU < 7: no pasid
        Assert.Equal(((double?)null, (int?)null, "0000:00:03.0", 0x7000UL), (obs[1].Timestamp, obs[1].Pasid, obs[1].Device!, obs[1].Address!.Value));
        Assert.Equal(5, obs[2].Pasid);
        Assert.Equal(("0000:00:03.0", "w", "6"), (obs[3].Device!, obs[3].Access!, obs[3].Field("fault")!));
        var err = obs[4];
        Assert.Equal(("vtd_iova_to_slpte", "x86_64", 5, 0x7f3a2c1b4000UL, "w", "0x1"),
            (err.Field("function")!, err.Field("arch")!, err.Pasid!.Value, err.Address!.Value, err.Access!, err.Field("level")!));
        Assert.Equal("vtd_inv_desc_iotlb_pages", obs[6].Field("@event"));
        Assert.Equal("0x2", obs[6].Field("domain"));
        Assert.Equal(("smmuv3_translate_success", 0x1000UL, "0x18"), (obs[7].Field("@event")!, obs[7].Address!.Value, obs[7].Field("sid")!));
        Assert.Equal("smmu_configs_inv_sid_range", obs[9].Field("@event"));
        Assert.Equal(new SourceRef("qemu-variants.txt", 12, 13), obs[10].Source);
        Assert.Equal("0x1f2556000", obs[10].Field("gpa"));
    }

    [Fact]
    public async Task jsonl_calls_observations_comments_wrapped_and_run_together_objects()
    {
        var items = await TestData.ReadAsync("synthetic/session.jsonl");
        items.AssertKinds((JsonCall, 12), (DevFault, 1));
        Assert.Equal("comment", items.Skipped().Single().Reason);
        var obs = items.Observations();
        Assert.All(obs, o => Assert.Equal("jsonl", o.Format));
        Assert.Equal(["device", "bind", "fault", "page_response", "invalidate", "invalidate", "exit", "unbind", "drop", null, "bind", "bind", "unbind"],
            obs.Select(o => o.Field("op")));
        Assert.Equal(("0000:00:03.0", "1048576"), (obs[0].Device!, obs[0].Field("pasids")!));
        Assert.Equal((12.5, "m1"), (obs[1].Timestamp!.Value, obs[1].Field("mm")!));
        var fault = obs[2];
        Assert.Equal((1, 0xffff860e6000UL, "w", 74, true), (fault.Pasid!.Value, fault.Address!.Value, fault.Access!, fault.Group!.Value, fault.Last!.Value));
        Assert.Equal(0, obs[3].ResponseCode);
        Assert.Equal((0xffff860e6000UL, 0xffff860e8000UL, 8192UL), (obs[4].Address!.Value, obs[4].End!.Value, obs[4].Size!.Value));
        Assert.Equal((1, 281472932872192UL), (obs[5].Pasid!.Value, obs[5].Address!.Value));
        Assert.Equal("ok", obs[7].Field("expect"));
        Assert.Equal((DevFault, 143), (obs[9].Kind, obs[9].Group!.Value));
        Assert.Equal(new SourceRef("session.jsonl", 12, 13), obs[10].Source);
        Assert.Equal("m2", obs[10].Field("mm"));
        Assert.Equal([14, 14], obs.Skip(11).Select(o => o.Source.Line));
        Assert.Equal("h7", obs[12].Field("handle"));
    }

    [Theory]
    [InlineData("{\"op\":\"bind\",\"device\":\"0000:00:03.0\"}", "jsonl bind")]
    [InlineData("{\"op\":\"frobnicate\",\"device\":\"0000:00:03.0\"}", "jsonl")]
    [InlineData("{\"op\":\"fault\",\"device\":\"0000:00:03.0\",\"addr\":\"0xzz\"}", "jsonl fault")]
    [InlineData("{\"op\":\"fault\",\"device\":\"0000:00:03.0\",\"addr\":\"0x1000\",\"access\":\"q\"}", "jsonl fault")]
    [InlineData("{\"op\":\"page_response\",\"device\":\"0000:00:03.0\",\"code\":7}", "jsonl page_response")]
    [InlineData("{\"obs\":\"NoSuchKind\"}", "jsonl obs")]
    [InlineData("{\"device\":\"0000:00:03.0\"}", "jsonl")]
    [InlineData("{\"op\":\"bind\",\"device\":\"0000:00:03.0\",\"mm\":\"m1\"", "jsonl bind")]
    public async Task jsonl_malformed_objects_name_the_line_and_the_expected_form(string line, string eventName)
    {
        var text = "{\"op\":\"exit\",\"mm\":\"m0\"}\n" + line + "\n{\"op\":\"drop\",\"mm\":\"m0\"}\n";
        var ex = await Assert.ThrowsAsync<CaptureFormatException>(() => TestData.ParseTextAsync(text, "jsonl", file: "s.jsonl"));
        Assert.Equal(2, ex.Source.Line);
        Assert.Equal(eventName, ex.EventName);
        Assert.StartsWith($"s.jsonl:2: malformed {eventName} line: expected '", ex.Message);
        Assert.Contains(eventName == "jsonl obs" ? "{\"obs\":\"" : "{\"op\":\"", ex.Expected);
        Assert.Equal(line, ex.Got);

        var lenient = await TestData.ParseTextAsync(text, "jsonl", lenient: true);
        Assert.Equal(2, lenient.Observations().Count);
        Assert.StartsWith("malformed: ", lenient.Skipped().Single().Reason);
    }

    [Fact]
    public async Task jsonl_broken_file_throws_at_the_bad_line()
    {
        var ex = await Assert.ThrowsAsync<CaptureFormatException>(() => TestData.ReadAsync("synthetic/broken.jsonl", "jsonl"));
        Assert.StartsWith("broken.jsonl:2: malformed jsonl bind line: expected '{\"op\":\"bind\"", ex.Message);
    }
}
