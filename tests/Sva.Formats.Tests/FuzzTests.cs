using System.Text;
using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

/// <summary>Bounded, deterministic fuzzing of the captures: cut, wrapped, garbled, padded with garbage, CRLF.</summary>
public class FuzzTests
{
    // Fixed by default; SVA_FUZZ_SEED / SVA_FUZZ_MUTATIONS widen a local run.
    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("SVA_FUZZ_SEED"), out var s) ? s : 20240521;
    private static readonly int Mutations = int.TryParse(Environment.GetEnvironmentVariable("SVA_FUZZ_MUTATIONS"), out var m) ? m : 2000;

    private static readonly (string File, string Format)[] Sources =
    [
        ("captures/dmesg-amdvi-1.txt", "dmesg"),
        ("captures/dmesg-dmar-1.txt", "dmesg"),
        ("captures/dmesg-smmuv3-1.txt", "dmesg"),
        ("captures/ftrace-iommu-2.txt", "ftrace"),
        ("captures/ftrace-prq-vtd-1.txt", "ftrace"),
        ("captures/ftrace-sva-smmu-1.txt", "ftrace"),
        ("captures/ftrace-sva-smmu-2.txt", "ftrace"),
        ("captures/qemu-trace-vtd-2.unwrapped.txt", "qemu-trace"),
        ("synthetic/ftrace-wrapped.txt", "ftrace"),
        ("synthetic/ftrace-6x-intel.txt", "ftrace"),
        ("synthetic/dmesg-smmuv3-variants.txt", "dmesg"),
        ("synthetic/dmesg-amdvi-variants.txt", "dmesg"),
        ("synthetic/dmesg-dmar-forms.txt", "dmesg"),
        ("synthetic/qemu-variants.txt", "qemu-trace"),
        ("synthetic/session.jsonl", "jsonl"),
        // issue 12: Arm SMMU v1/v2, SMMUv3 other events / raw words / vendor prefixes, dmesg -H, amdgpu, mail quotes
        ("captures/dmesg-armsmmu-offset-column.txt", "dmesg"),
        ("captures/dmesg-armsmmu-callbacks-stack.txt", "dmesg"),
        ("captures/dmesg-armsmmu-mid-record.txt", "dmesg"),
        ("captures/dmesg-armsmmu-ufs-pf.txt", "dmesg"),
        ("captures/dmesg-armsmmu-caller-id.txt", "dmesg"),
        ("captures/mail-armsmmu-global-fault-labels.txt", "dmesg"),
        ("captures/dmesg-smmuv3-vendor-prefix-0x07.txt", "dmesg"),
        ("captures/dmesg-smmuv3-decoded-callbacks.txt", "dmesg"),
        ("captures/dmesg-smmuv3-raw-words-stall.txt", "dmesg"),
        ("captures/mail-smmuv3-raw-words-interleaved.txt", "dmesg"),
        ("captures/dmesg-amdgpu-gfxhub-pasid.txt", "dmesg"),
        ("captures/dmesg-armsmmu-tegra-downstream.txt", "dmesg"),
        ("synthetic/dmesg-human.txt", "dmesg"),
    ];

    private static readonly string[] Garbage =
    [
        "dev_fault: ", "dev_page_response: IOMMU:", "[  12.345678] DMAR: [DMA Read", "AMD-Vi: Event logged [", "IO_PAGE_FAULT device=",
        "event 0x10 received:", "0x00000000000000", "event: F_TRANSLATION client: ", "priv data read s1 \"", "{\"op\":\"", "{\"op\":\"fault\",",
        "vtd_dmar_fault sid ", "qemu-system-x86_64: vtd_", "  irq/1-x-1  [000] ....  1.000000:", "prq_report: dmar0/", "map: IOMMU: iova=",
        "| ", "> ", ">> ", "[...]", "Call Trace:", "\t", "\u00a0", "#", "smmu_mm_invalidate: pasid=", "cache_tag_flush_range: dmar0 ",
        "Unhandled context fault: fsr=", "FSR    = 00000402 [", "FSYNR0 = ", "soft iova-to-phys=", "GFSR 0x", "Unexpected global fault",
        "Blocked unknown Stream ID 0x", "[Aug 4 09:48] ", "[  +0.000012] ", "0x0000000002 |   1.0:   ", "[pid:1,cpu0,irq/1-x]", "event 0x07 received:",
    ];

    [Fact]
    public async Task mutated_captures_never_throw_anything_but_a_located_capture_format_exception()
    {
        var rng = new Random(Seed);
        var sources = Sources.Select(s => (s.File, s.Format, Lines: File.ReadAllLines(TestData.PathOf(s.File)))).ToArray();
        int thrown = 0;
        for (int i = 0; i < Mutations; i++)
        {
            var (file, format, original) = sources[rng.Next(sources.Length)];
            var text = Mutate(rng, original.ToList());
            var name = $"fuzz-{i}.txt";
            int lineCount = CountLines(text);
            string context = $"mutation {i} of {file}:\n{text}";

            try
            {
                await TestData.ParseTextAsync(text, format, lenient: false, file: name);
            }
            catch (CaptureFormatException e)
            {
                thrown++;
                Assert.True(e.Message.StartsWith($"{name}:{e.Source.Line}: malformed ", StringComparison.Ordinal), context + "\n" + e.Message);
                Assert.InRange(e.Source.Line, 1, lineCount);
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name}: {e.Message}\n{context}\n{e.StackTrace}");
            }

            List<CaptureItem> lenient;
            try
            {
                lenient = await TestData.ParseTextAsync(text, format, lenient: true, file: name);
            }
            catch (Exception e)
            {
                Assert.Fail($"lenient threw {e.GetType().Name}: {e.Message}\n{context}\n{e.StackTrace}");
                return;
            }
            int previous = 0;
            foreach (var item in lenient)
            {
                Assert.InRange(item.Source.Line, 1, lineCount);
                Assert.InRange(item.Source.EndLine, item.Source.Line, lineCount);
                Assert.True(item.Source.Line >= previous, $"items out of order at {item.Source}\n{context}");
                previous = item.Source.Line;
            }

            if (i % 10 == 0)
            {
                try
                {
                    await TestData.ParseTextAsync(text, "auto", lenient: true, file: name);
                }
                catch (CaptureDetectionException)
                {
                }
            }
        }
        Assert.InRange(thrown, 1, Mutations - 1); // the fuzzing does reach malformed lines, and not only them
    }

    private static int CountLines(string text)
    {
        using var r = new StringReader(text);
        int n = 0;
        while (r.ReadLine() is not null)
            n++;
        return n;
    }

    private static string Mutate(Random rng, List<string> lines)
    {
        int count = 1 + rng.Next(4);
        for (int m = 0; m < count && lines.Count > 0; m++)
        {
            int at = rng.Next(lines.Count);
            var line = lines[at];
            switch (rng.Next(11))
            {
                case 0: // cut the line
                    lines[at] = line[..rng.Next(line.Length + 1)];
                    break;
                case 1: // wrap at a random column, maybe keeping a quote prefix
                {
                    int col = rng.Next(line.Length + 1);
                    var prefix = rng.Next(3) == 0 ? "> " : "";
                    lines[at] = line[..col];
                    lines.Insert(at + 1, prefix + line[col..]);
                    break;
                }
                case 2: // garble a character
                    if (line.Length > 0)
                    {
                        const string chars = "xZ!-_ 0f:=.[]{}\"@#";
                        int c = rng.Next(line.Length);
                        lines[at] = line[..c] + chars[rng.Next(chars.Length)] + line[(c + 1)..];
                    }
                    break;
                case 3: // insert garbage
                {
                    var sb = new StringBuilder(Garbage[rng.Next(Garbage.Length)]);
                    int n = rng.Next(40);
                    for (int k = 0; k < n; k++)
                        sb.Append((char)rng.Next(32, 127));
                    lines.Insert(at, sb.ToString());
                    break;
                }
                case 4: // CRLF and trailing spaces
                    for (int k = 0; k < lines.Count; k++)
                        if (rng.Next(2) == 0)
                            lines[k] += rng.Next(2) == 0 ? "\r" : "   ";
                    break;
                case 5:
                    lines.RemoveAt(at);
                    break;
                case 6:
                    lines.Insert(at, line);
                    break;
                case 7: // run two lines together
                    if (at + 1 < lines.Count)
                    {
                        lines[at] = line + " " + lines[at + 1];
                        lines.RemoveAt(at + 1);
                    }
                    break;
                case 8: // quote a block
                    for (int k = at; k < Math.Min(lines.Count, at + 5); k++)
                        lines[k] = "> " + lines[k];
                    break;
                case 9: // cut the capture short
                {
                    lines.RemoveRange(at + 1, lines.Count - at - 1);
                    lines[at] = line[..rng.Next(line.Length + 1)];
                    break;
                }
                default: // blank line
                    lines.Insert(at, "");
                    break;
            }
        }
        return string.Join("\n", lines);
    }
}
