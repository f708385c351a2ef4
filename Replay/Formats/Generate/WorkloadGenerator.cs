using Sva.Domain;

namespace Sva.Formats.Generate;

/// <summary>What <c>sva generate</c> is asked for. <see cref="Events"/>: the workload stops after the first call
/// that brings the event count to at least this many.</summary>
public sealed record WorkloadOptions(int Devices, int Mms, long Events, ulong Seed, string Kernel = "6.8")
{
    /// <summary>The rule set <see cref="Kernel"/> resolved to (a kernel file's version); null: <see cref="Kernel"/> is resolved as a release.</summary>
    public KernelVersion? Version { get; init; }

    public IEnumerable<string> Validate()
    {
        if (Devices is < 1 or > 4096) yield return $"--devices {Devices}: expected 1..4096";
        if (Mms is < 1 or > 65536) yield return $"--mms {Mms}: expected 1..65536";
        if (Events < 1) yield return $"--events {Events}: expected at least 1";
        if (Version is null && !KernelVersions.TryGet(Kernel, out _)) yield return $"unsupported kernel version '{Kernel}'; supported: {KernelVersions.SupportedList}";
    }

    /// <summary>The command line that reproduces this workload.</summary>
    public string CommandLine => $"sva generate --devices {Devices} --mms {Mms} --events {Events} --seed {Seed} --kernel {Kernel}";
}

/// <summary>One generated call: its line in the generated script, the call, the script text and the events the
/// generator's own engine decided for it (the same events recording it produces, since decide is pure).</summary>
public sealed record GeneratedCall(int Line, KernelCall Call, string Text, IReadOnlyList<SvaEvent> Events);

/// <summary>
/// A seeded, realistic SVA workload: D devices (a few quirky ones), M processes that map two VMAs, bind
/// one or more devices, take page faults (single requests and multi-request groups), see CPU page-table
/// invalidations, re-bind, unbind, exit (faults after release), get dropped and are replaced by new mms;
/// with occasional errors (writes to a read-only VMA, addresses outside any VMA, a PASID too large for a
/// small device, re-binds refused by some kernels, binds to a dropped mm, double unbinds, stray faults
/// on a PASID after its unbind, a process dropped while still bound).
/// </summary>
/// <remarks>
/// Pure and deterministic: the same options give the same calls, byte for byte, on every platform
/// (its own PRNG, ordered collections only). The generator runs the kernel rules itself
/// (<see cref="SvaKernel.Execute"/>) to know what each call did: which PASID a bind got, whether it failed.
/// </remarks>
public sealed class WorkloadGenerator
{
    /// <summary>Lines before the first call in the generated script (a comment and the kernel line).</summary>
    public const int HeaderLines = 2;

    private sealed class Proc
    {
        public required string Mm;
        public required ulong Base;
        public readonly List<Binding> Binds = new();
        public bool Exited;
        public bool Dropped;
        public bool FaultedAfterExit;
        /// <summary>How many devices this process keeps bound (1-3): unbinds are followed by re-binds up to it.</summary>
        public int Target;
    }

    private sealed record Binding(string Label, string Device, int Pasid);

    private readonly WorkloadOptions o;
    private readonly KernelVersion version;
    private readonly SeededRandom rng;
    private readonly SvaState state = new();
    private readonly List<string> devices = new();
    private readonly List<Proc> live = new();
    private readonly List<Proc> exiting = new();
    private readonly List<string> droppedMms = new();
    private readonly SortedSet<int> freeLabels = new();
    private readonly List<(string Device, int Pasid)> recentlyUnbound = new();
    private readonly Dictionary<string, int> prgi = new(StringComparer.Ordinal);
    private readonly Queue<KernelCall> pending = new();
    private int nextLabel = 1;
    private int nextMm = 1;
    private int line = HeaderLines;
    private long events;

    private WorkloadGenerator(WorkloadOptions options)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));
        o = options;
        version = options.Version ?? KernelVersions.Get(options.Kernel);
        rng = new SeededRandom(options.Seed);
    }

    /// <summary>The header of the generated script (<see cref="HeaderLines"/> lines).</summary>
    public static IEnumerable<string> Header(WorkloadOptions o)
    {
        yield return $"# {o.CommandLine}";
        yield return $"kernel {(o.Version?.Origin?.File ?? (o.Version ?? KernelVersions.Get(o.Kernel)).Name)}";
    }

    /// <summary>The workload, lazily: stop enumerating early for a prefix.</summary>
    public static IEnumerable<GeneratedCall> Generate(WorkloadOptions options)
    {
        var g = new WorkloadGenerator(options);
        return g.Run();
    }

    /// <summary>The whole workload as a .sva script.</summary>
    public static string Script(WorkloadOptions options)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var h in Header(options)) sb.Append(h).Append('\n');
        foreach (var c in Generate(options)) sb.Append(c.Text).Append('\n');
        return sb.ToString();
    }

    private IEnumerable<GeneratedCall> Run()
    {
        foreach (var c in Setup()) yield return c;
        while (events < o.Events)
        {
            if (pending.Count > 0) { yield return Do(pending.Dequeue()); continue; }
            foreach (var c in Step()) yield return c;
        }
    }

    private GeneratedCall Do(KernelCall call)
    {
        var evs = SvaKernel.Execute(version, state, call);
        events += evs.Count;
        return new GeneratedCall(++line, call, ScriptText.Format(call), evs);
    }

    // ---- setup ---------------------------------------------------------------------------------------
    private IEnumerable<GeneratedCall> Setup()
    {
        for (var i = 0; i < o.Devices; i++)
        {
            var bdf = $"0000:{0x6a + i / 32:x2}:{i % 32:x2}.0";
            devices.Add(bdf);
            var pasids = o.Devices >= 3 && i == o.Devices - 1 ? 32 : i % 5 == 4 ? 65536 : 1048576;
            var group = o.Devices >= 4 && i == 3 ? 3 : i + 1; // devices 2 and 3 share a group (a multi-function card)
            var iopf = i != 6;                              // the 7th device has no IOPF queue
            // 5.11/5.12: an Arm SMMUv3 master cannot enable SVA (no IOPF support), the workload runs on VT-d there.
            yield return Do(new ProbeDevice(bdf, pasids, group, true, iopf, Driver: version.Rules.GenericIopf ? Drivers.SmmuV3 : Drivers.Vtd));
        }
        for (var i = 0; i < o.Mms; i++)
            foreach (var c in Spawn()) yield return c;
        foreach (var p in live.ToList())
        {
            var n = p.Target;
            for (var k = 0; k < n; k++)
                foreach (var c in BindOne(p)) yield return c;
        }
    }

    private IEnumerable<GeneratedCall> Spawn()
    {
        var ordinal = nextMm++;
        var p = new Proc { Mm = $"m{ordinal}", Base = 0x7f0000000000UL + ((ulong)(ordinal & 0xffff) << 24), Target = Math.Min(o.Devices, rng.Between(1, 3)) };
        live.Add(p);
        yield return Do(new CreateMm(p.Mm));
        yield return Do(new MapVma(p.Mm, p.Base, p.Base + 0x400000, "rw"));           // 1024 pages of heap
        yield return Do(new MapVma(p.Mm, p.Base + 0x800000, p.Base + 0x810000, "r"));  // 16 read-only pages
    }

    // ---- one step of the steady state ---------------------------------------------------------------
    private IEnumerable<GeneratedCall> Step()
    {
        if (exiting.Count > 0 && rng.Chance(0.3)) return Cleanup(exiting[0]);
        var r = rng.NextDouble();
        var bound = live.Where(p => p.Binds.Count > 0).ToList();
        if (r < 0.55 && bound.Count > 0) return Fault(bound);
        if (r < 0.78 && live.Count > 0) return Invalidate(rng.Pick(live));
        if (r < 0.86 && live.Count > 0)
        {
            if (droppedMms.Count > 0 && rng.Chance(0.01)) return BindDropped();
            var short_ = live.Where(p => p.Binds.Count < p.Target).ToList();
            if (short_.Count > 0) return BindOne(rng.Pick(short_));
            if (rng.Chance(0.05)) return BindOne(rng.Pick(live), again: true); // the same device opened twice
        }
        else if (r < 0.88 && bound.Count > 0)
        {
            if (rng.Chance(0.01) && DoubleUnbind() is { } again) return [again];
            var p = rng.Pick(bound);
            return [UnbindOne(p, p.Binds[rng.Next(p.Binds.Count)])];
        }
        else if (r < 0.882 && live.Count > Math.Max(1, o.Mms / 2)) return Exit(rng.Pick(live));
        if (live.Count + exiting.Count < o.Mms) return Spawn();
        if (bound.Count > 0) return Fault(bound);
        if (live.Count > 0) return rng.Chance(0.5) ? BindOne(rng.Pick(live)) : Invalidate(rng.Pick(live));
        if (exiting.Count > 0) return Cleanup(exiting[0]);
        return Spawn();
    }

    private IEnumerable<GeneratedCall> Fault(List<Proc> bound)
    {
        var p = rng.Pick(bound);
        var b = p.Binds[rng.Next(p.Binds.Count)];
        var kind = rng.NextDouble();
        if (kind < 0.02 && recentlyUnbound.Count > 0)
        {
            // A device still issuing DMA with a PASID it was told to stop using.
            var (dev, pasid) = rng.Pick(recentlyUnbound);
            return [Do(new PageFault(dev, pasid, p.Base + 0x1000UL * (ulong)rng.Next(1024), "r", NextPrgi(dev), true))];
        }
        if (kind < 0.05) // write to the read-only VMA
            return [Do(new PageFault(b.Device, b.Pasid, p.Base + 0x800000 + 0x1000UL * (ulong)rng.Next(16), "w", NextPrgi(b.Device), true))];
        if (kind < 0.08) // an address outside every VMA
            return [Do(new PageFault(b.Device, b.Pasid, p.Base + 0xc00000 + 0x1000UL * (ulong)rng.Next(64), "r", NextPrgi(b.Device), true))];
        if (kind < 0.23) // a page-request group of 2-4 requests, the last one triggers handling
        {
            var n = rng.Between(2, 4);
            var group = NextPrgi(b.Device);
            var page = (ulong)rng.Next(1024 - n);
            for (var i = 1; i < n; i++)
                pending.Enqueue(new PageFault(b.Device, b.Pasid, p.Base + 0x1000UL * (page + (ulong)i), Access(), group, i == n - 1));
            return [Do(new PageFault(b.Device, b.Pasid, p.Base + 0x1000UL * page, Access(), group, false))];
        }
        return [Do(new PageFault(b.Device, b.Pasid, p.Base + 0x1000UL * (ulong)rng.Next(1024), Access(), NextPrgi(b.Device), true))];
    }

    private string Access() => rng.Next(10) switch { < 5 => "r", < 8 => "w", _ => "rw" };

    private int NextPrgi(string device)
    {
        prgi.TryGetValue(device, out var n);
        prgi[device] = (n + 1) % 512; // PRGI is 9 bits
        return n;
    }

    private IEnumerable<GeneratedCall> Invalidate(Proc p)
    {
        var pages = rng.Chance(0.1) ? (ulong)rng.Between(512, 1024) : (ulong)rng.Between(1, 16);
        var first = (ulong)rng.Next((int)(1024 - Math.Min(pages, 1023)));
        var start = p.Base + 0x1000UL * first;
        return [Do(new InvalidateRange(p.Mm, start, start + 0x1000UL * pages))];
    }

    private IEnumerable<GeneratedCall> BindOne(Proc p, bool again = false)
    {
        var unbound = devices.Where(d => p.Binds.All(b => b.Device != d)).ToList();
        var dev = again && p.Binds.Count > 0 ? p.Binds[rng.Next(p.Binds.Count)].Device
            : unbound.Count > 0 ? rng.Pick(unbound) : rng.Pick(devices);
        var label = TakeLabel();
        var call = Do(new Bind(dev, p.Mm, label));
        var ok = false;
        foreach (var e in call.Events)
        {
            switch (e)
            {
                case HandleIssued h when h.Name == label: p.Binds.Add(new Binding(label, dev, h.Pasid)); ok = true; break;
                case HandleShared h when h.Name == label: p.Binds.Add(new Binding(label, dev, state.Handle(h.Handle).Pasid)); ok = true; break;
            }
        }
        if (!ok) freeLabels.Add(LabelNumber(label));
        return [call];
    }

    private IEnumerable<GeneratedCall> BindDropped()
    {
        var label = TakeLabel();
        var call = Do(new Bind(rng.Pick(devices), rng.Pick(droppedMms), label)); // -EINVAL: the mm was dropped
        freeLabels.Add(LabelNumber(label));
        return [call];
    }

    private GeneratedCall UnbindOne(Proc p, Binding b)
    {
        p.Binds.Remove(b);
        freeLabels.Add(LabelNumber(b.Label));
        var call = Do(new Unbind(b.Label));
        if (!p.Binds.Any(x => x.Device == b.Device && x.Pasid == b.Pasid))
        {
            recentlyUnbound.Add((b.Device, b.Pasid));
            if (recentlyUnbound.Count > 16) recentlyUnbound.RemoveAt(0);
        }
        return call;
    }

    /// <summary>Unbind a label whose handle is already freed: rejected as a use after free.</summary>
    private GeneratedCall? DoubleUnbind()
    {
        foreach (var n in freeLabels)
        {
            var label = $"b{n}";
            if (state.HandleNames.TryGetValue(label, out var h) && state.HandleById(h) is null)
                return Do(new Unbind(label));
        }
        return null;
    }

    private IEnumerable<GeneratedCall> Exit(Proc p)
    {
        live.Remove(p);
        exiting.Add(p);
        p.Exited = true;
        var result = new List<GeneratedCall> { Do(new MmExit(p.Mm)) };
        if (p.Binds.Count > 0 && rng.Chance(0.02))
        {
            // The process is gone but the device file is still held elsewhere: mmdrop with the bind still there.
            p.Dropped = true;
            result.Add(Do(new MmDrop(p.Mm)));
        }
        return result;
    }

    /// <summary>After exit: maybe one fault from a device still running the job (answered INVALID), then the
    /// driver closes each bind, then the last mmdrop; a new process takes the exited one's place.</summary>
    private IEnumerable<GeneratedCall> Cleanup(Proc p)
    {
        if (p.Binds.Count > 0)
        {
            if (!p.FaultedAfterExit && rng.Chance(0.2))
            {
                p.FaultedAfterExit = true;
                var b = p.Binds[0];
                return [Do(new PageFault(b.Device, b.Pasid, p.Base + 0x1000UL * (ulong)rng.Next(1024), "w", NextPrgi(b.Device), true))];
            }
            return [UnbindOne(p, p.Binds[^1])];
        }
        exiting.Remove(p);
        droppedMms.Add(p.Mm);
        if (droppedMms.Count > 8) droppedMms.RemoveAt(0);
        var result = new List<GeneratedCall>();
        if (!p.Dropped) result.Add(Do(new MmDrop(p.Mm)));
        if (live.Count + exiting.Count < o.Mms) result.AddRange(Spawn());
        return result;
    }

    private string TakeLabel()
    {
        if (freeLabels.Count > 0)
        {
            var n = freeLabels.Min;
            freeLabels.Remove(n);
            return $"b{n}";
        }
        return $"b{nextLabel++}";
    }

    private static int LabelNumber(string label) => int.Parse(label.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
}
