using Sva.Domain;
using Sva.Formats.Captures;

namespace Sva.Formats.Import;

/// <summary>The kernel version 'sva import' decides a capture under when --kernel is not given, and why.</summary>
public sealed record KernelProposalResult(string Kernel, string Why);

/// <summary>
/// Which kernel's rules fit a capture (pure over its observations). SMMUv3 SVA development traces (the
/// out-of-tree smmu_* events of Brucker's 2020 series, seed 004) come from a tree whose behaviour mainline reached
/// in 5.13: bond model, Arm SVA with the generic IOPF queue (kernel-sva.md §9; on mainline 5.11/5.12 an SMMUv3 master
/// cannot enable SVA at all). Everything else: <see cref="Default"/>.
/// </summary>
public static class KernelProposal
{
    public const string Default = "6.8";
    public const string SmmuV3Development = "5.13";

    /// <summary>How many observations are looked at: the development events come with the first binds.</summary>
    public const int ObservationLimit = 10_000;

    public static KernelProposalResult For(IEnumerable<Observation> observations)
    {
        foreach (var o in observations.Take(ObservationLimit))
            if (IsSmmuDevelopmentEvent(o.Kind))
                return new(SmmuV3Development,
                    $"{o.Source}: SMMUv3 SVA development trace event ({o.Kind}): the 2020 series' behaviour is mainline 5.13 (bond model, Arm SVA with generic IOPF)");
        return new(Default, "no SMMUv3 SVA development trace events: the default kernel");
    }

    public static bool IsSmmuDevelopmentEvent(ObservationKind kind) => kind is ObservationKind.SmmuBindAlloc or ObservationKind.SmmuUnbindFree
        or ObservationKind.SmmuMmInvalidate or ObservationKind.SmmuMmRelease or ObservationKind.SmmuResume or ObservationKind.SmmuCdSync
        or ObservationKind.SmmuEvt;

    /// <summary>Reads the start of the capture (lenient: malformed lines are skipped here, the import itself reports them).</summary>
    public static async Task<KernelProposalResult> ForFileAsync(string path, string format, CancellationToken ct = default)
    {
        using var reader = new StreamReader(path);
        var seen = new List<Observation>();
        await foreach (var item in CaptureReader.ReadAsync(reader, Path.GetFileName(path), format, lenient: true, ct).ConfigureAwait(false))
        {
            if (item is not Observation o) continue;
            if (IsSmmuDevelopmentEvent(o.Kind)) return For([o]);
            seen.Add(o);
            if (seen.Count >= ObservationLimit) break;
        }
        return For(seen);
    }
}
