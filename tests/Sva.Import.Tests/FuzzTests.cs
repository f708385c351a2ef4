using System.Text;
using System.Text.RegularExpressions;
using Sva.Formats.Captures;
using Sva.Formats.Import;

namespace Sva.Import.Tests;

/// <summary>Captures mutated the way pastes break (cut, wrapped, garbled fields, quoted, lines dropped or doubled),
/// a bounded number of times with fixed seeds: the import never crashes, every error names file:line.</summary>
[Collection("import")]
public sealed partial class FuzzTests(ImportFixture f)
{
    private const int MutantsPerFile = 12;

    public static IEnumerable<object[]> Files() =>
        Directory.GetFiles(ImportFixture.Data("captures")).Concat(Directory.GetFiles(ImportFixture.Data("synthetic")))
            .Select(p => new object[] { Path.GetRelativePath(ImportFixture.Data(""), p) }).OrderBy(o => (string)o[0], StringComparer.Ordinal);

    [GeneratedRegex(@"[0-9a-f]")]
    private static partial Regex HexDigit();

    public static string Mutate(string text, Random rnd)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n').ToList();
        var n = rnd.Next(1, 4);
        for (var k = 0; k < n && lines.Count > 0; k++)
        {
            var i = rnd.Next(lines.Count);
            var line = lines[i];
            switch (rnd.Next(7))
            {
                case 0: // cut the capture here
                    lines = lines.Take(i).Append(line[..rnd.Next(line.Length + 1)]).ToList();
                    break;
                case 1 when line.Length > 2: // mail wrap
                    var at = rnd.Next(1, line.Length);
                    lines[i] = line[..at];
                    lines.Insert(i + 1, (rnd.Next(2) == 0 ? "" : "  ") + line[at..]);
                    break;
                case 2: // garble a field
                    var digits = HexDigit().Matches(line);
                    if (digits.Count > 0)
                    {
                        var d = digits[rnd.Next(digits.Count)];
                        lines[i] = line[..d.Index] + "Zq"[rnd.Next(2)] + line[(d.Index + 1)..];
                    }
                    break;
                case 3:
                    lines[i] = (rnd.Next(2) == 0 ? "> " : "| ") + line;
                    break;
                case 4:
                    lines.RemoveAt(i);
                    break;
                case 5:
                    lines.Insert(i, line);
                    break;
                default: // an unrelated line
                    lines.Insert(i, "[  12.345678] usb 1-1: new high-speed USB device number 2 using xhci_hcd");
                    break;
            }
        }
        return string.Join(rnd.Next(4) == 0 ? "\r\n" : "\n", lines);
    }

    private static string FormatOf(string text)
    {
        var head = text.Replace("\r\n", "\n").Split('\n').Take(CaptureReader.SniffLineCount).ToList();
        return CaptureReader.Detect(head).Name;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task mutated_captures_never_crash_the_import_and_errors_name_file_and_line(string relative)
    {
        var original = File.ReadAllText(ImportFixture.Data(relative));
        var format = FormatOf(original);
        var rnd = new Random(relative.Aggregate(17, (h, c) => h * 31 + c));
        for (var m = 0; m < MutantsPerFile; m++)
        {
            var text = Mutate(original, rnd);
            var name = $"mutant{m}.txt";
            var lineCount = text.Split('\n').Length;

            // lenient: decides, checks conformance, never throws
            var (events, state) = await ImportDecider.DecideAllAsync(new StringReader(text), name, format, "6.8");
            var findings = Conformance.Check(events.Select((e, i) => new SeqEvent(i + 1, e.Event, e.Source))).ToList();
            Assert.Equal(events.Count, state.Seq);
            Assert.All(findings, x => Assert.Equal("conformance", x.Kind));

            // strict: either parses or names file:line (a line of the mutant) and the expected format
            try
            {
                await foreach (var _ in CaptureReader.ReadAsync(new StringReader(text), name, format, lenient: false)) { }
            }
            catch (CaptureFormatException e)
            {
                var match = Regex.Match(e.Message, $@"^{Regex.Escape(name)}:(\d+): malformed .* expected '");
                Assert.True(match.Success, e.Message);
                Assert.InRange(int.Parse(match.Groups[1].Value), 1, lineCount);
            }
        }
    }

    [Fact]
    public Task mutants_through_the_cli_exit_0_or_2_naming_file_and_line() => Fuzz.WithSeedAsync("CLI fuzz", MutantsThroughTheCli);

    private async Task MutantsThroughTheCli(int seed)
    {
        var rnd = new Random(seed);
        var sources = new[]
        {
            "captures/ftrace-sva-smmu-2.txt", "synthetic/dmesg-smmuv3-variants.txt", "synthetic/session.jsonl", "synthetic/ftrace-wrapped.txt",
            // issue 12: raw-word SMMUv3 records, Arm SMMU v2 reports in a mail, dmesg -H
            "captures/dmesg-smmuv3-raw-words-stall.txt", "captures/mail-armsmmu-global-fault-labels.txt", "synthetic/dmesg-human.txt",
        };
        foreach (var src in sources)
        {
            var original = File.ReadAllText(ImportFixture.Data(src));
            for (var m = 0; m < 2; m++)
            {
                var text = Mutate(original, rnd);
                if (m == 1) text = Fuzz.MutateBytes(text, rnd, allowHugeLines: rnd.Next(4) == 0);
                text += $"\n\n# {Guid.NewGuid():N}\n";
                var path = f.WriteTemp(Path.GetFileName(src), text);
                if (rnd.Next(3) == 0) File.WriteAllBytes(path, Fuzz.WithInvalidUtf8(text, rnd)); // bytes the CLI decodes itself
                foreach (var strict in new[] { false, true })
                {
                    var args = new List<string> { "import", path, "--format", FormatOf(original), "--json" };
                    if (strict) args.Add("--strict");
                    var r = await f.RunAsync(args.ToArray());
                    Assert.True(r.ExitCode is 0 or 2, Short(r));
                    Assert.True(Fuzz.Printable(r.Stderr), $"raw control characters on stderr: {Short(r)}");
                    if (r.ExitCode == 2)
                        Assert.Matches($@"{Regex.Escape(Path.GetFileName(src))}:\d+", r.Stderr);
                    else
                        Assert.True((long)r.Json()["lines"]! >= 1);
                }
            }
        }

        // .sva scripts through `sva run`: a bad line is exit 2 naming file:line, and nothing is recorded
        var scripts = Directory.GetFiles(Path.Combine(f.Repo, "examples"), "*.sva");
        for (var m = 0; m < 6; m++)
        {
            var src = scripts[rnd.Next(scripts.Length)];
            var text = Fuzz.MutateBytes(File.ReadAllText(src), rnd, allowHugeLines: m == 5);
            var path = f.WriteTemp(Path.GetFileName(src), text);
            if (rnd.Next(3) == 0) File.WriteAllBytes(path, Fuzz.WithInvalidUtf8(text, rnd));
            var session = ImportFixture.UniqueSession("fuzz-run");
            var r = await f.RunAsync("run", path, "--session", session, "--json");
            Assert.True(r.ExitCode is 0 or 2, Short(r));
            Assert.True(Fuzz.Printable(r.Stderr), $"raw control characters on stderr: {Short(r)}");
            if (r.ExitCode == 2)
            {
                Assert.Matches($@"{Regex.Escape(Path.GetFileName(src))}:\d+: ", r.Stderr);
                Assert.Null(await f.SessionVersionAsync(session));
            }
        }
    }

    private static string Short(CliResult r)
    {
        var s = r.ToString();
        return s.Length <= 4000 ? s : s[..4000] + $"… ({s.Length} characters)";
    }
}
