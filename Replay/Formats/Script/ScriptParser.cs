using System.Globalization;
using System.Text.RegularExpressions;
using Sva.Domain;
using Sva.Domain.Json;

namespace Sva.Formats.Script;

/// <summary>One call of a script with where it came from.</summary>
public sealed record ScriptLine(string File, int Line, KernelCall Call)
{
    public string Source => $"{File}:{Line}";
}

public sealed record Script(string File, string? Kernel, IReadOnlyList<ScriptLine> Lines);

/// <summary>A line the script grammar does not accept: names file:line and what was expected.</summary>
public sealed class ScriptFormatException(string file, int line, string message)
    : Exception($"{file}:{line}: {message}")
{
    public string File { get; } = file;
    public int Line { get; } = line;
}

/// <summary>
/// The <c>.sva</c> scenario language: one kernel call per line, <c>#</c> comments. The whole script is
/// parsed before anything runs, so a bad line records nothing.
/// </summary>
public static partial class ScriptParser
{
    public const string Grammar = """
        kernel VERSION
        device BDF pasids=N [group=N] [sva=on|off] [iopf=on|off] [iommu=NAME] [driver=smmuv3|vtd|amd]
        mm NAME [lam]
        vma MM START-END prot=r|rw|rx|rwx
        bind [LABEL] BDF MM
        unbind LABEL|Hn
        fault BDF [pasid=N] addr=X access=r|w|rw|x|rx [group=N] [last]
        invalidate MM START-END
        exit MM
        drop MM
        domain NAME type=paging|identity|blocked
        attach DOMAIN BDF [pasid=N]
        detach DOMAIN BDF [pasid=N]
        map DOMAIN IOVA-END paddr=X
        unmap DOMAIN IOVA-END
        """;

    /// <summary>PASIDs are 20 bits: a device has at most 2^20 of them (max_pasids), numbered 0..2^20-1.</summary>
    public const int MaxPasids = 1 << 20;

    /// <summary>Input echoed in a message: escaped and cut (<see cref="InputLimits.Quote"/>).</summary>
    private static string Q(string text) => InputLimits.Quote(text);

    public static Script Parse(string text, string file) => Parse(new StringReader(text), file);

    public static Script Parse(TextReader reader, string file)
    {
        string? kernel = null;
        var lines = Stream(reader, file, k => kernel = k).ToList();
        return new Script(file, kernel, lines);
    }

    /// <summary>The script's calls one line at a time (nothing held: a script of any length parses in constant memory);
    /// each 'kernel' line is reported to <paramref name="kernel"/> as it is read. A bad line throws when it is reached.</summary>
    public static IEnumerable<ScriptLine> Stream(TextReader reader, string file, Action<string>? kernel = null)
    {
        var n = 0;
        while (reader.ReadLine() is { } raw)
        {
            n++;
            var hash = raw.IndexOf('#');
            var text = (hash >= 0 ? raw[..hash] : raw).Trim();
            if (text.Length == 0) continue;
            if (text.Length > InputLimits.MaxScriptLineLength)
                throw new ScriptFormatException(file, n, $"the line is {text.Length} characters long; script lines are at most {InputLimits.MaxScriptLineLength} (comments apart)");
            if (InputLimits.FirstUnstorable(text) is var bad and >= 0)
                throw new ScriptFormatException(file, n, $"{InputLimits.Describe(text[bad])} at column {bad + 1}: a script is text ('{Q(text)}')");
            var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var ctx = new LineContext(file, n, words);
            if (words[0] == "kernel")
            {
                ctx.Arity(1, 1, "kernel VERSION");
                if (!Kernels.KernelFiles.LooksLikeFile(words[1]) && !KernelVersions.TryGet(words[1], out _))
                    throw ctx.Error($"unsupported kernel version '{Q(words[1])}': give a release ≥ {KernelVersions.Oldest} (e.g. 6.8, 6.8.0-31-generic) or a kernel file (.toml); supported: {KernelVersions.SupportedList}");
                kernel?.Invoke(words[1]);
                continue;
            }
            yield return new ScriptLine(file, n, ParseCall(ctx));
        }
    }

    private static KernelCall ParseCall(LineContext c)
    {
        var w = c.Words;
        switch (w[0])
        {
            case "device":
            {
                const string usage = "device BDF pasids=N [group=N] [sva=on|off] [iopf=on|off] [iommu=NAME] [driver=smmuv3|vtd|amd]";
                c.Arity(1, 7, usage);
                var dev = c.Device(w[1], usage);
                var kv = c.Options(2, usage, "pasids", "group", "sva", "iopf", "iommu", "driver");
                var driver = kv.TryGetValue("driver", out var dv) ? dv : Drivers.Default;
                if (!Drivers.All.Contains(driver)) throw c.Error($"unknown driver '{driver}'; expected '{usage}'");
                if (!kv.TryGetValue("pasids", out var pasids)) throw c.Error($"missing pasids=N; expected '{usage}'");
                return new ProbeDevice(dev, c.Int(pasids, "pasids", 0, MaxPasids, "0..2^20"), kv.TryGetValue("group", out var g) ? c.Int(g, "group") : null,
                    !kv.TryGetValue("sva", out var sva) || c.OnOff(sva, "sva"),
                    !kv.TryGetValue("iopf", out var iopf) || c.OnOff(iopf, "iopf"),
                    kv.TryGetValue("iommu", out var iommu) ? c.Name(iommu, usage) : "iommu0", Driver: driver);
            }
            case "mm":
                c.Arity(1, 2, "mm NAME [lam]");
                if (w.Length == 3 && w[2] != "lam") throw c.Error($"unexpected '{Q(w[2])}'; expected 'mm NAME [lam]'");
                return new CreateMm(c.Name(w[1], "mm NAME [lam]"), w.Length == 3);
            case "vma":
            {
                const string usage = "vma MM START-END prot=r|rw|rx|rwx";
                c.Arity(3, 3, usage);
                var (start, end) = c.Range(w[2], usage);
                var kv = c.Options(3, usage, "prot");
                return new MapVma(c.Name(w[1], usage), start, end, c.Access(kv["prot"], "prot"));
            }
            case "bind":
            {
                const string usage = "bind [LABEL] BDF MM";
                c.Arity(2, 3, usage);
                return w.Length == 4
                    ? new Bind(c.Device(w[2], usage), c.Name(w[3], usage), c.Name(w[1], usage))
                    : new Bind(c.Device(w[1], usage), c.Name(w[2], usage));
            }
            case "unbind":
                c.Arity(1, 1, "unbind LABEL");
                return new Unbind(c.Name(w[1], "unbind LABEL"));
            case "fault":
            {
                const string usage = "fault BDF [pasid=N] addr=X access=r|w|rw|x [group=N] [last]";
                if (w.Length < 2) throw c.Error($"expected '{usage}'");
                var dev = c.Device(w[1], usage);
                var last = w.Skip(2).Contains("last");
                var kv = c.Options(2, usage, "pasid", "addr", "access", "group", "last");
                if (!kv.TryGetValue("addr", out var addr)) throw c.Error($"missing addr=X; expected '{usage}'");
                if (!kv.TryGetValue("access", out var access)) throw c.Error($"missing access=r|w|rw|x; expected '{usage}'");
                int? group = kv.TryGetValue("group", out var g) ? c.Int(g, "group") : null;
                // A request without a group id is a single-page request: its own last.
                return new PageFault(dev, kv.TryGetValue("pasid", out var p) ? c.Int(p, "pasid", 0, MaxPasids - 1, "0..2^20-1") : null, c.Number(addr, "addr"),
                    c.Access(access, "access"), group, last || group is null);
            }
            case "invalidate":
            {
                const string usage = "invalidate MM START-END";
                c.Arity(2, 2, usage);
                var (start, end) = c.Range(w[2], usage);
                return new InvalidateRange(c.Name(w[1], usage), start, end);
            }
            case "exit":
                c.Arity(1, 1, "exit MM");
                return new MmExit(c.Name(w[1], "exit MM"));
            case "drop":
                c.Arity(1, 1, "drop MM");
                return new MmDrop(c.Name(w[1], "drop MM"));
            case "domain":
            {
                const string usage = "domain NAME type=paging|identity|blocked";
                c.Arity(2, 2, usage);
                var kv = c.Options(2, usage, "type");
                if (kv["type"] is not ("paging" or "identity" or "blocked")) throw c.Error($"type must be paging, identity or blocked; expected '{usage}'");
                return new AllocDomain(c.Name(w[1], usage), kv["type"]);
            }
            case "attach" or "detach":
            {
                var usage = $"{w[0]} DOMAIN BDF [pasid=N]";
                c.Arity(2, 3, usage);
                var kv = c.Options(3, usage, "pasid");
                int? pasid = kv.TryGetValue("pasid", out var p) ? c.Int(p, "pasid", 0, MaxPasids - 1, "0..2^20-1") : null;
                return w[0] == "attach"
                    ? new AttachDomain(c.Name(w[1], usage), c.Device(w[2], usage), pasid)
                    : new DetachDomain(c.Name(w[1], usage), c.Device(w[2], usage), pasid);
            }
            case "map":
            {
                const string usage = "map DOMAIN IOVA-END paddr=X";
                c.Arity(3, 3, usage);
                var (start, end) = c.Range(w[2], usage);
                var kv = c.Options(3, usage, "paddr");
                return new MapIova(c.Name(w[1], usage), start, end, c.Number(kv["paddr"], "paddr"));
            }
            case "unmap":
            {
                const string usage = "unmap DOMAIN IOVA-END";
                c.Arity(2, 2, usage);
                var (start, end) = c.Range(w[2], usage);
                return new UnmapIova(c.Name(w[1], usage), start, end);
            }
            default:
                throw c.Error($"unknown call '{Q(w[0])}'; expected one of: kernel, device, mm, vma, bind, unbind, fault, invalidate, exit, drop, domain, attach, detach, map, unmap");
        }
    }

    [GeneratedRegex(@"^(?:(?<dom>[0-9a-fA-F]{4}):)?(?<bus>[0-9a-fA-F]{2}):(?<dev>[0-9a-fA-F]{2})\.(?<fn>[0-7])$")]
    private static partial Regex BdfRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$")]
    private static partial Regex NameRegex();

    /// <summary>"00:03.0" → "0000:00:03.0"; lower case; null if not a PCI BDF.</summary>
    public static string? NormalizeBdf(string text)
    {
        var m = BdfRegex().Match(text);
        if (!m.Success) return null;
        var dom = m.Groups["dom"].Success ? m.Groups["dom"].Value : "0000";
        return $"{dom}:{m.Groups["bus"].Value}:{m.Groups["dev"].Value}.{m.Groups["fn"].Value}".ToLowerInvariant();
    }

    private sealed class LineContext(string file, int line, string[] words)
    {
        public string[] Words { get; } = words;

        public ScriptFormatException Error(string message) => new(file, line, message);

        public void Arity(int min, int max, string usage)
        {
            var args = Words.Length - 1;
            if (args < min || args > max) throw Error($"expected '{usage}'");
        }

        public string Device(string text, string usage)
        {
            if (NormalizeBdf(text) is { } bdf) return bdf;
            Limit(text, "device name");
            return NameRegex().IsMatch(text) && text.Contains('.') && !text.Contains(':') ? text
                : throw Error($"'{Q(text)}' is not a device (PCI BDF like 0000:00:03.0); expected '{usage}'");
        }

        public string Name(string text, string usage)
        {
            Limit(text, "name");
            return NameRegex().IsMatch(text) ? text
                : throw Error($"'{Q(text)}' is not a valid name (letters, digits, '_', then also '.', ':', '-'); expected '{usage}'");
        }

        /// <summary>Names are at most <see cref="InputLimits.MaxNameLength"/> characters.</summary>
        private void Limit(string text, string what)
        {
            if (text.Length > InputLimits.MaxNameLength)
                throw Error($"{what} '{Q(text)}' is {text.Length} characters long; names are {InputLimits.NameLimitText}");
        }

        public Dictionary<string, string> Options(int from, string usage, params string[] allowed)
        {
            var kv = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var word in Words.Skip(from))
            {
                if (word == "last" && allowed.Contains("last")) continue;
                var eq = word.IndexOf('=');
                if (eq <= 0) throw Error($"unexpected '{Q(word)}'; expected '{usage}'");
                var key = word[..eq];
                if (!allowed.Contains(key)) throw Error($"unknown option '{Q(key)}'; expected '{usage}'");
                if (!kv.TryAdd(key, word[(eq + 1)..])) throw Error($"option '{Q(key)}' given twice");
            }
            foreach (var required in allowed.Where(a => usage.Contains($" {a}=") && !usage.Contains($"[{a}=")))
                if (!kv.ContainsKey(required))
                {
                    var token = usage.Split(' ').First(t => t.StartsWith(required + "=", StringComparison.Ordinal));
                    throw Error($"missing {token}; expected '{usage}'");
                }
            return kv;
        }

        /// <summary>A whole number in [min, max]; a number outside (negative, too big) says the range.</summary>
        public int Int(string text, string what, long min = 0, long max = int.MaxValue, string? range = null)
        {
            range ??= $"{min}..{max}";
            if (SvaJson.TryParseNumber(text, out var v))
                return v >= (ulong)min && v <= (ulong)max ? (int)v : throw Error($"{what}={Q(text)} is out of range {range}");
            if (LooksNumeric(text)) throw Error($"{what}={Q(text)} is out of range {range}");
            throw Error($"{what}='{Q(text)}' is not a number (decimal or 0x hex, {range})");
        }

        public ulong Number(string text, string what)
        {
            if (SvaJson.TryParseNumber(text, out var v)) return v;
            if (LooksNumeric(text)) throw Error($"{what}={Q(text)} is out of range 0..2^64-1");
            throw Error($"{what}='{Q(text)}' is not a number (decimal or 0x hex)");
        }

        /// <summary>"-5", "99999999999999999999", "0x1ffffffffffffffff": a number, just not one that fits.</summary>
        private static bool LooksNumeric(string text)
        {
            var t = text.StartsWith('-') ? text[1..] : text;
            if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) return t.Length > 2 && t[2..].All(char.IsAsciiHexDigit);
            return t.Length > 0 && t.All(char.IsAsciiDigit);
        }

        public bool OnOff(string text, string what) => text switch
        {
            "on" => true,
            "off" => false,
            _ => throw Error($"{what}='{Q(text)}': expected on or off"),
        };

        public string Access(string text, string what)
        {
            if (text.Length == 0 || text.Any(ch => ch is not ('r' or 'w' or 'x')) || text.Distinct().Count() != text.Length)
                throw Error($"{what}='{Q(text)}': expected r, w, x or a combination such as rw");
            return new string("rwx".Where(text.Contains).ToArray());
        }

        public (ulong Start, ulong End) Range(string text, string usage)
        {
            var dash = text.IndexOf('-');
            if (dash <= 0) throw Error($"'{Q(text)}' is not a range START-END; expected '{usage}'");
            var start = Number(text[..dash], "start");
            var end = Number(text[(dash + 1)..], "end");
            if (end <= start) throw Error($"range '{Q(text)}' is empty (end must be above start)");
            return (start, end);
        }
    }
}
