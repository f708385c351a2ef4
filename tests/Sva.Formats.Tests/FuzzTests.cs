using System.Text;
using Sva.Formats.Captures;

namespace Sva.Formats.Tests;

/// <summary>Bounded fuzzing of the captures and the .sva scripts: cut, wrapped, garbled, padded with garbage, CRLF,
/// and byte-level damage (bit flips, NULs, invalid UTF-8, huge numbers, control characters, 1 MB lines). The seed
/// changes per run (SVA_FUZZ_SEED replays one) and is printed on failure.</summary>
public class FuzzTests
{
    // SVA_FUZZ_MUTATIONS widens a local run.
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
    public Task mutated_captures_never_throw_anything_but_a_located_capture_format_exception() =>
        Fuzz.WithSeedAsync("capture fuzz", MutatedCaptures);

    private static async Task MutatedCaptures(int seed)
    {
        var rng = new Random(seed);
        var sources = Sources.Select(s => (s.File, s.Format, Lines: File.ReadAllLines(TestData.PathOf(s.File)))).ToArray();
        int thrown = 0;
        for (int i = 0; i < Mutations; i++)
        {
            var (file, format, original) = sources[rng.Next(sources.Length)];
            var text = Mutate(rng, original.ToList());
            if (rng.Next(3) == 0) text = Fuzz.MutateBytes(text, rng, allowHugeLines: i % 100 == 7);
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
                if (item is Observation o) AssertStorable(o, context);
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

    /// <summary>What reaches the database holds no NUL / unpaired surrogate and names within the limit.</summary>
    private static void AssertStorable(Observation o, string context)
    {
        foreach (var v in new[] { o.RawText, o.Device, o.Task, o.Access }.Concat(o.Fields.Keys).Concat(o.Fields.Values))
            if (v is not null)
                Assert.True(InputLimits.FirstUnstorable(v) < 0, $"{o.Source}: unstorable text '{InputLimits.Quote(v)}' passed\n{Cut(context)}");
        Assert.True((o.Device?.Length ?? 0) <= InputLimits.MaxNameLength, $"{o.Source}: device name of {o.Device?.Length} characters passed");
        foreach (var f in new[] { "mm", "handle", "name", "iommu" })
            Assert.True((o.Field(f)?.Length ?? 0) <= InputLimits.MaxNameLength, $"{o.Source}: {f} of {o.Field(f)?.Length} characters passed");
    }

    private static string Cut(string context) => context.Length <= 4000 ? context : context[..4000] + $"… ({context.Length} characters)";

    // ------------------------------------------------------------------ .sva scripts

    private static readonly string[] ScriptGarbage =
    [
        "device 0000:00:03.0 pasids=", "mm ", "bind h1 0000:00:03.0 ", "unbind ", "fault 0000:00:03.0 pasid=1 addr=0x", "vma m1 0x1000-",
        "invalidate m1 0x1000-0x2000", "domain d1 type=", "attach d1 0000:00:03.0 pasid=", "map d1 0x0-0x1000 paddr=", "kernel ", "exit ", "drop ",
        "# comment", "pasids=99999999999999999999", "group=-1", "iommu=", "access=rwxq", "last last", "=", "0x-", "\t",
    ];

    [Fact]
    public Task mutated_scripts_parse_or_name_file_and_line() => Fuzz.WithSeedAsync("script fuzz", seed =>
    {
        var rng = new Random(seed ^ 0x5c71);
        var scripts = Directory.GetFiles(TestData.PathOf("scripts"), "*.sva").Select(File.ReadAllLines).ToArray();
        Assert.NotEmpty(scripts);
        int rejected = 0, parsed = 0;
        for (var i = 0; i < Mutations; i++)
        {
            var lines = scripts[rng.Next(scripts.Length)].ToList();
            var text = rng.Next(2) == 0 ? MutateScript(rng, lines) : string.Join("\n", lines);
            if (rng.Next(2) == 0 || text == string.Join("\n", lines)) text = Fuzz.MutateBytes(text, rng, allowHugeLines: i % 100 == 3);
            var name = $"fuzz-{i}.sva";
            var lineCount = CountLines(text);
            try
            {
                var script = Formats.Script.ScriptParser.Parse(text, name);
                parsed++;
                foreach (var line in script.Lines)
                    foreach (var p in line.Call.GetType().GetProperties().Where(p => p.PropertyType == typeof(string)))
                        if (p.GetValue(line.Call) is string v)
                        {
                            Assert.True(v.Length <= InputLimits.MaxNameLength, $"{line.Source}: {p.Name} of {v.Length} characters accepted");
                            Assert.True(InputLimits.FirstUnstorable(v) < 0 && !v.Any(char.IsControl), $"{line.Source}: {p.Name} '{InputLimits.Quote(v)}' accepted");
                        }
            }
            catch (Formats.Script.ScriptFormatException e)
            {
                rejected++;
                Assert.StartsWith($"{name}:{e.Line}: ", e.Message);
                Assert.InRange(e.Line, 1, lineCount);
                Assert.True(Fuzz.Printable(e.Message), $"control characters echoed raw: {InputLimits.Escape(e.Message)}");
                Assert.True(e.Message.Length < 2000, $"a message of {e.Message.Length} characters: input is echoed uncut");
            }
            catch (Exception e)
            {
                Assert.Fail($"{e.GetType().Name}: {e.Message}\n{Cut(text)}\n{e.StackTrace}");
            }
        }
        Assert.True(rejected > 0 && parsed > 0, $"{parsed} parsed, {rejected} rejected: the fuzzing reaches both");
        return Task.CompletedTask;
    });

    private static string MutateScript(Random rng, List<string> lines)
    {
        for (int m = 0, n = 1 + rng.Next(3); m < n && lines.Count > 0; m++)
        {
            var at = rng.Next(lines.Count);
            var line = lines[at];
            switch (rng.Next(6))
            {
                case 0: lines[at] = line[..rng.Next(line.Length + 1)]; break;
                case 1: lines.Insert(at, ScriptGarbage[rng.Next(ScriptGarbage.Length)] + new string((char)rng.Next(33, 127), rng.Next(4))); break;
                case 2: lines.RemoveAt(at); break;
                case 3: lines.Insert(at, line); break;
                case 4:
                    var words = line.Split(' ');
                    words[rng.Next(words.Length)] = ScriptGarbage[rng.Next(ScriptGarbage.Length)];
                    lines[at] = string.Join(' ', words);
                    break;
                default: lines[at] = line + " " + ScriptGarbage[rng.Next(ScriptGarbage.Length)]; break;
            }
        }
        return string.Join("\n", lines);
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
