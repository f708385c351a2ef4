namespace Sva.Import.Tests;

[Collection("import")]
public sealed class FormatsVerbTests(ImportFixture f)
{
    [Fact]
    public async Task formats_lists_every_format_with_its_records()
    {
        var json = await f.RunAsync("formats", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        var lines = json.JsonLines();
        Assert.Equal(["ftrace", "dmesg", "qemu-trace", "jsonl"], lines.Select(l => (string)l["name"]!));
        Assert.All(lines, l => Assert.False(string.IsNullOrWhiteSpace((string?)l["description"])));
        Assert.Contains(lines[0]["records"]!.AsArray(), r => (string?)r!["kind"] == "SmmuBindAlloc");

        var text = await f.RunAsync("formats");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("qemu-trace", text.Stdout);
        Assert.Contains("smmu_unbind_free", text.Stdout);
    }
}
