using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

public class ValuesTests
{
    [Theory]
    [InlineData("0000:00:03.0", "0000:00:03.0")]
    [InlineData("00:02.0", "0000:00:02.0")]
    [InlineData("0b:00.00", "0000:0b:00.0")]
    [InlineData("[0x00:0x02.0]", "0000:00:02.0")]
    [InlineData("0x00:0x02.0", "0000:00:02.0")]
    [InlineData("0001:06:00.0", "0001:06:00.0")]
    [InlineData("6A:01.0", "0000:6a:01.0")]
    [InlineData("2b400000.gpu", "2b400000.gpu")]
    [InlineData("arm-smmu-v3.5.auto", "arm-smmu-v3.5.auto")]
    [InlineData("00:20.0", "00:20.0")]
    public void devices_are_normalised_to_full_bdf(string raw, string expected) =>
        Assert.Equal(expected, Values.NormaliseDevice(raw));

    [Fact]
    public void rid_to_device() => Assert.Equal("0000:6a:01.0", Values.DeviceFromRid(0x6a08));

    [Theory]
    [InlineData("pasid=-1")]
    [InlineData("pasid=4294967295")]
    public async Task no_pasid_markers_become_null(string pasid)
    {
        var items = await TestData.ParseTextAsync($"smmu_bind_alloc: dev=0000:00:03.0 {pasid}\n", "ftrace");
        Assert.Null(items.Observations().Single().Pasid);
    }
}
