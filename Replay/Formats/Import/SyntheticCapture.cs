using System.Globalization;

namespace Sva.Formats.Import;

/// <summary>
/// Large synthetic ftrace captures (throughput, streaming and resume tests, the benchmark's import path): the SMMU SVA
/// story of seed 004 (bind, faults, responses, invalidation, release, unbind) over 6 devices and 40 PASIDs, with DMA-API
/// traffic (map, unmap, a fault after the unmap) and an unrelated event interleaved, under ftrace header columns.
/// About 2.7 events per line under 6.8; deterministic apart from <paramref name="tag"/> (in the first line, a comment:
/// a new tag is a new capture for the import's idempotency).
/// </summary>
public static class SyntheticCapture
{
    public static void WriteFtrace(TextWriter w, int lines, string tag)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteLine($"# tracer: nop ({tag})");
        var written = 1;
        double ts = 100.0;
        var group = 1;
        for (var block = 0; written < lines; block++)
        {
            var pasid = block % 40 + 1;
            var dev = string.Create(CultureInfo.InvariantCulture, $"0000:00:{block % 6 + 3:x2}.0");
            var addr = 0xffff_0000_0000UL + (ulong)(block % 1000) * 0x10000UL;
            foreach (var line in Block(dev, pasid, addr, block, () => group++))
            {
                ts += 0.000013;
                w.Write(string.Create(CultureInfo.InvariantCulture, $"     sva-test-{4000 + block % 97}  [00{block % 8}] .....  {ts:F6}: "));
                w.WriteLine(line);
                if (++written >= lines) break;
            }
        }
    }

    public static void WriteFtrace(string path, int lines, string tag)
    {
        using var w = new StreamWriter(path, false, new System.Text.UTF8Encoding(false), 1 << 16);
        WriteFtrace(w, lines, tag);
    }

    private static IEnumerable<string> Block(string dev, int pasid, ulong addr, int block, Func<int> nextGroup)
    {
        yield return $"smmu_bind_alloc: dev={dev} pasid={pasid}";
        for (var f = 0; f < 3; f++)
        {
            var g = nextGroup() % 512;
            var a = addr + (ulong)f * 0x1000;
            yield return string.Create(CultureInfo.InvariantCulture, $"dev_fault: IOMMU:{dev} type=2 reason=0 addr=0x{a:x16} pasid={pasid} group={g} flags=3 prot=2");
            yield return string.Create(CultureInfo.InvariantCulture, $"dev_page_response: IOMMU:{dev} code=0 pasid={pasid} group={g}");
        }
        yield return string.Create(CultureInfo.InvariantCulture, $"smmu_mm_invalidate: pasid={pasid} start=0x{addr:x} end=0x{addr + 0x2000:x}");
        var iova = 0x1000_0000UL + (ulong)(block % 4096) * 0x1000;
        yield return string.Create(CultureInfo.InvariantCulture, $"map: IOMMU: iova=0x{iova:x16} - 0x{iova + 0x1000:x16} paddr=0x{0x8000_0000UL + iova:x16} size=4096");
        yield return string.Create(CultureInfo.InvariantCulture, $"unmap: IOMMU: iova=0x{iova:x16} - 0x{iova + 0x1000:x16} size=4096 unmapped_size=4096");
        yield return string.Create(CultureInfo.InvariantCulture, $"io_page_fault: IOMMU:[drvname] 0000:05:00.0 iova=0x{iova + 0x40:x16} flags=0x0000");
        yield return "sched_switch: prev_comm=sva-test prev_pid=4242 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120";
        if (block % 3 == 0) yield return $"smmu_mm_release: pasid={pasid}";
        yield return $"smmu_unbind_free: dev={dev} pasid={pasid}";
    }
}
