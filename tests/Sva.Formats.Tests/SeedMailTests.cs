using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

/// <summary>Seed 004 (a public mail thread) holds the same SMMU trace twice: clean at lines 824-844 and, in the
/// reply, mail-wrapped and "> " quoted with records run together (lines 878-901).</summary>
public class SeedMailTests
{
    private const string Seed = "seeds/004_614d4012e2cbc680.txt";

    [Fact]
    public async Task wrapped_quoted_copy_parses_to_the_same_observations_as_the_clean_copy()
    {
        var items = await TestData.ReadAsync(Seed, "ftrace");
        var obs = items.Observations();
        var clean = obs.Where(o => o.Source.Line is >= 815 and <= 850).ToList();
        var wrapped = obs.Where(o => o.Source.Line is >= 860 and <= 905).ToList();

        Assert.Equal(17, clean.Count);
        Assert.Equal(17, wrapped.Count);
        Assert.Equal(34, obs.Count); // nothing else in the mail (patch text, prose) is taken for an event
        for (int i = 0; i < clean.Count; i++)
            TestData.AssertSameMeaning(clean[i], wrapped[i]);

        Assert.All(clean, o => Assert.Equal(o.Source.Line, o.Source.EndLine));
        Assert.Contains(wrapped, o => o.Source.EndLine > o.Source.Line);
    }

    [Fact]
    public async Task records_split_and_run_together_keep_their_lines()
    {
        var obs = (await TestData.ReadAsync(Seed, "ftrace")).Observations().Where(o => o.Source.Line >= 860).ToList();
        // ">   dev_fault: ... reason=0" + "> addr=... prot=2"
        Assert.Equal(new SourceRef("004_614d4012e2cbc680.txt", 879, 880), obs[1].Source);
        // "> smmu_mm_release: pasid=1 dev_page_response: IOMMU:0000:00:03.0 code=0" + "> pasid=1 group=259 dev_fault: ..."
        var release = obs.Single(o => o.Kind == ObservationKind.SmmuMmRelease);
        Assert.Equal(new SourceRef("004_614d4012e2cbc680.txt", 897, 897), release.Source);
        var response = obs[obs.IndexOf(release) + 1];
        Assert.Equal(ObservationKind.DevPageResponse, response.Kind);
        Assert.Equal(new SourceRef("004_614d4012e2cbc680.txt", 897, 898), response.Source);
        Assert.Equal(259, response.Group);
        Assert.Equal("dev_page_response: IOMMU:0000:00:03.0 code=0 pasid=1 group=259", response.RawText);
    }

    [Fact]
    public async Task the_mail_detects_as_ftrace_and_keeps_every_other_line_as_skipped()
    {
        using var reader = new StreamReader(TestData.PathOf(Seed));
        var lines = new List<string>();
        while (await reader.ReadLineAsync() is { } l)
            lines.Add(l);
        Assert.Equal("ftrace", CaptureReader.Detect(lines).Name);

        var items = await TestData.ReadAsync(Seed);
        int covered = items.Sum(i => i.Source.EndLine - i.Source.Line + 1);
        int blank = lines.Count(l => l.Trim().TrimStart('>', '|', ' ').Length == 0);
        // every non-blank line is an observation, part of one, or a skipped line (lines shared by two records count twice)
        Assert.True(covered >= lines.Count - blank, $"{covered} covered, {lines.Count - blank} non-blank");
        Assert.All(items.Skipped(), s => Assert.False(string.IsNullOrWhiteSpace(s.Text)));
    }
}
