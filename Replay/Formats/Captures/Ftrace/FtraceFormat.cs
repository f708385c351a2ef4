using System.Globalization;
using System.Text.RegularExpressions;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Ftrace;

/// <summary>ftrace text: /sys/kernel/tracing/trace, trace-cmd report, perf script (and bare event lines whose
/// header columns were stripped).</summary>
internal sealed class FtraceFormat : GrammarFormat
{
    internal override Grammar Grammar => FtraceGrammar.Instance;
    public override string Name => "ftrace";
    public override string Description =>
        "ftrace / trace-cmd report / perf script text of iommu:, intel_iommu: and SVA development trace events (header columns optional)";
}

internal sealed class FtraceGrammar : Grammar
{
    private static readonly Lazy<FtraceGrammar> LazyInstance = new(() => new FtraceGrammar());
    public static FtraceGrammar Instance => LazyInstance.Value;

    private const string Names =
        @"add_device_to_group|remove_device_from_group|attach_device_to_domain|detach_device_from_domain|io_page_fault" +
        @"|prq_report|qi_submit|cache_tag_assign|cache_tag_unassign|cache_tag_flush_all|cache_tag_flush_range_np|cache_tag_flush_range" +
        @"|dev_fault|dev_page_response|sva_invalidate|smmu_bind_alloc|smmu_unbind_free|smmu_mm_invalidate|smmu_mm_release" +
        @"|smmu_resume|smmu_cdsync|smmu_evt|io_mm_\w+|iopf|map(?=:\s*IOMMU:)|unmap(?=:\s*IOMMU:)";

    /// <summary>Where the next record starts when records run together on one line.</summary>
    private const string Boundary = @"(?:(?:\w+:)?(?:" + Names + @"):(?=\s|$|IOMMU:)" +
        @"|[^\s\[\]]+(?:\s[^\s\[\]]+)?-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s)";

    // task-pid [cpu] flags timestamp:   (flags 4 chars on 5.x, 5 on 6.x, absent in trace-cmd report; "(tgid)" with -o record-tgid)
    private static readonly Regex FtraceHeader = R(
        @"^(?<task>.+?)-(?<pid>\d+)\s+(?:\(\s*(?<tgid>[\d-]+)\)\s+)?\[(?<cpu>\d+)\]\s+(?:(?<flags>[^\s\[\]]{4,5})\s+)?(?<ts>\d+(?:\.\d+)?):\s*");
    // perf script: comm pid[/tid] [cpu] timestamp:
    private static readonly Regex PerfHeader = R(
        @"^(?<task>.+?)\s+(?<pid>\d+)(?:/(?<tid>\d+))?\s+(?:\[(?<cpu>\d+)\]\s+)?(?<ts>\d+\.\d+):\s*");
    private static readonly Regex EventToken = R(@"^(?:(?<sys>\w+):)?(?<ev>\w+):");

    private readonly List<RecordSpec> _specs;

    private FtraceGrammar()
    {
        _specs =
        [
            Ev("add_device_to_group", "IOMMU: groupID=(?<groupID>-?\\d+) device=(?<device>\\S+)", ObservationKind.GroupAddDevice,
                "add_device_to_group: IOMMU: groupID=%d device=%s", DeviceOnly),
            Ev("remove_device_from_group", "IOMMU: groupID=(?<groupID>-?\\d+) device=(?<device>\\S+)", ObservationKind.GroupRemoveDevice,
                "remove_device_from_group: IOMMU: groupID=%d device=%s", DeviceOnly),
            Ev("attach_device_to_domain", "IOMMU: device=(?<device>\\S+)", ObservationKind.AttachDevice,
                "attach_device_to_domain: IOMMU: device=%s", DeviceOnly),
            Ev("detach_device_from_domain", "IOMMU: device=(?<device>\\S+)", ObservationKind.DetachDevice,
                "detach_device_from_domain: IOMMU: device=%s", DeviceOnly),
            Ev("map", "IOMMU: iova=(?<iova>0x[0-9a-f]+)(?: - (?<iova_end>0x[0-9a-f]+))? paddr=(?<paddr>0x[0-9a-f]+) size=(?<size>\\d+)",
                ObservationKind.Map, "map: IOMMU: iova=0x%016llx - 0x%016llx paddr=0x%016llx size=%zu", BuildMapUnmap, signatureExtra: @"\s*IOMMU:"),
            Ev("unmap", "IOMMU: iova=(?<iova>0x[0-9a-f]+)(?: - (?<iova_end>0x[0-9a-f]+))? size=(?<size>\\d+) unmapped_size=(?<unmapped_size>\\d+)",
                ObservationKind.Unmap, "unmap: IOMMU: iova=0x%016llx - 0x%016llx size=%zu unmapped_size=%zu", BuildMapUnmap, signatureExtra: @"\s*IOMMU:"),
            Ev("io_page_fault", "IOMMU:(?<driver>\\S*) (?<device>\\S+) iova=(?<iova>0x[0-9a-f]+) flags=(?<flags>0x[0-9a-f]+)",
                ObservationKind.IoPageFault, "io_page_fault: IOMMU:%s %s iova=0x%016llx flags=0x%04x", BuildIoPageFault),
            Ev("prq_report",
                "(?<iommu>[^/\\s]+)/(?<device>\\S+) seq# (?<seq>\\d+): rid=(?<rid>0x[0-9a-f]+) addr=(?<addr>0x[0-9a-f]+) (?<flags>[r-][w-][x-][p-][l-]) pasid=(?<pasid>0x[0-9a-f]+) index=(?<index>0x[0-9a-f]+)(?: private=(?<private>0x[0-9a-f]+/0x[0-9a-f]+))?",
                ObservationKind.PrqReport, "prq_report: %s/%s seq# %ld: rid=0x%llx addr=0x%llx %c%c%c%c%c pasid=0x%llx index=0x%llx[ private=0x%llx/0x%llx]",
                BuildPrq, optionalTail: true),
            Ev("qi_submit", "(?<type>\\w+) (?<iommu>[^\\s:]+): (?<qw0>0x[0-9a-f]+) (?<qw1>0x[0-9a-f]+) (?<qw2>0x[0-9a-f]+) (?<qw3>0x[0-9a-f]+)",
                ObservationKind.QiSubmit, "qi_submit: %s %s: 0x%llx 0x%llx 0x%llx 0x%llx", BuildQi),
            Ev("cache_tag_assign", CacheTagLog, ObservationKind.CacheTagAssign, "cache_tag_assign: %s/%s type %s did %d pasid %d ref %d", BuildCacheTagLog),
            Ev("cache_tag_unassign", CacheTagLog, ObservationKind.CacheTagUnassign, "cache_tag_unassign: %s/%s type %s did %d pasid %d ref %d", BuildCacheTagLog),
            Ev("cache_tag_flush_all", CacheTagLog, ObservationKind.CacheTagFlushAll, "cache_tag_flush_all: %s/%s type %s did %d pasid %d ref %d", BuildCacheTagLog),
            Ev("cache_tag_flush_range_np|cache_tag_flush_range",
                "(?<iommu>\\S+) (?<device>[^\\s\\[]+)\\[(?<pasid>-?\\d+)\\] type (?<type>\\w+) did (?<did>\\d+) \\[(?<start>0x[0-9a-f]+)-(?<end>0x[0-9a-f]+)\\] addr (?<addr>0x[0-9a-f]+)(?: pages (?<pages>0x[0-9a-f]+))? mask (?<mask>0x[0-9a-f]+)",
                ObservationKind.CacheTagFlushRange, "cache_tag_flush_range: %s %s[%d] type %s did %d [0x%lx-0x%lx] addr 0x%lx [pages 0x%lx ]mask 0x%lx",
                BuildCacheTagFlush, name: "cache_tag_flush_range"),
            Ev("dev_fault",
                "IOMMU:(?<device>\\S+) type=(?<type>\\d+) reason=(?<reason>\\d+) addr=(?<addr>0x[0-9a-f]+)(?: fetch=(?<fetch>0x[0-9a-f]+))? pasid=(?<pasid>-?\\d+) group=(?<group>-?\\d+)(?: flags=(?<flags>(?:0x)?[0-9a-f]+))?(?: last=(?<last>\\d+))? prot=(?<prot>\\d+)",
                ObservationKind.DevFault, "dev_fault: IOMMU:%s type=%d reason=%d addr=0x%016llx [fetch=0x%016llx ]pasid=%d group=%d flags=%x|last=%d prot=%d",
                BuildDevFault),
            Ev("dev_page_response", "IOMMU:(?<device>\\S+) code=(?<code>-?\\d+)(?: addr=(?<addr>0x[0-9a-f]+))? pasid=(?<pasid>-?\\d+) group=(?<group>-?\\d+)",
                ObservationKind.DevPageResponse, "dev_page_response: IOMMU:%s code=%d [addr=0x%016llx ]pasid=%d group=%d", BuildPageResponse),
            Ev("sva_invalidate", KeyValues, ObservationKind.SvaInvalidate,
                "sva_invalidate: IOMMU:%s type=%d flags=0x%08x granu=%d size=%d pasid=%d addr=0x%016llx (fields vary: key=value list)", BuildKeyValues, optionalTail: true),
            Ev("smmu_bind_alloc", "dev=(?<device>\\S+) pasid=(?<pasid>-?\\d+)", ObservationKind.SmmuBindAlloc, "smmu_bind_alloc: dev=%s pasid=%d", BuildDevPasid),
            Ev("smmu_unbind_free", "dev=(?<device>\\S+) pasid=(?<pasid>-?\\d+)", ObservationKind.SmmuUnbindFree, "smmu_unbind_free: dev=%s pasid=%d", BuildDevPasid),
            Ev("smmu_mm_invalidate", "pasid=(?<pasid>-?\\d+) start=(?<start>0x[0-9a-f]+) end=(?<end>0x[0-9a-f]+)", ObservationKind.SmmuMmInvalidate,
                "smmu_mm_invalidate: pasid=%d start=0x%lx end=0x%lx", BuildRange),
            Ev("smmu_mm_release", "pasid=(?<pasid>-?\\d+)", ObservationKind.SmmuMmRelease, "smmu_mm_release: pasid=%d", BuildDevPasid),
            Ev("smmu_resume", "sid=(?<sid>0x[0-9a-f]+) stag=(?<stag>0x[0-9a-f]+) resp=(?<resp>0x[0-9a-f]+)", ObservationKind.SmmuResume,
                "smmu_resume: sid=0x%x stag=0x%x resp=0x%x", null),
            Ev("smmu_cdsync", "sid=(?<sid>0x[0-9a-f]+) ssid=(?<ssid>0x[0-9a-f]+) leaf=(?<leaf>\\d+)", ObservationKind.SmmuCdSync,
                "smmu_cdsync: sid=0x%x ssid=0x%x leaf=%d", BuildCdSync),
            Ev("smmu_evt", KeyValues, ObservationKind.SmmuEvt, "smmu_evt: key=value list", BuildKeyValues, optionalTail: true),
            Ev("io_mm_\\w+", KeyValues, ObservationKind.IoMm, "io_mm_*: pasid=%d [dev=%s] [start=0x%llx end=0x%llx]", BuildKeyValues,
                optionalTail: true, name: "io_mm"),
            Ev("iopf", "err (?<err>-?(?:0x)?[0-9a-f]+)", ObservationKind.IopfError, "iopf: err %x", null),
        ];
    }

    private const string CacheTagLog =
        "(?<iommu>[^/\\s]+)/(?<device>\\S+) type (?<type>\\w+) did (?<did>\\d+) pasid (?<pasid>-?\\d+) ref (?<ref>\\d+)";

    /// <summary>Generic "[IOMMU:dev ]key=value ..." body of the events whose fields vary.</summary>
    private const string KeyValues = "(?:IOMMU:(?<device>\\S+))?(?<_kv>(?:\\s*[\\w.]+=[^\\s=]+)*)";

    public override string FormatName => "ftrace";
    public override IReadOnlyList<RecordSpec> Specs => _specs;

    public override bool IsNonContinuation(string text) => text.StartsWith('#');

    public override Header ParseHeader(string text, out int bodyStart)
    {
        bodyStart = 0;
        int limit = Math.Min(text.Length, 256);
        var m = FtraceHeader.Match(text, 0, limit);
        if (!m.Success)
            m = PerfHeader.Match(text, 0, limit);
        if (!m.Success)
            return Header.None;
        bodyStart = m.Length;
        var h = new Header
        {
            Strong = true,
            Task = m.Groups["task"].Value.Trim(),
            Cpu = m.Groups["cpu"].Success && int.TryParse(m.Groups["cpu"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var cpu) ? cpu : null,
            Timestamp = double.TryParse(m.Groups["ts"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var ts) ? ts : null,
        };
        h.Fields.Add(new("@pid", m.Groups["pid"].Value));
        if (m.Groups["tid"].Success)
            h.Fields.Add(new("@tid", m.Groups["tid"].Value));
        if (m.Groups["tgid"].Success)
            h.Fields.Add(new("@tgid", m.Groups["tgid"].Value));
        if (m.Groups["flags"].Success)
            h.Fields.Add(new("@flags", m.Groups["flags"].Value));
        return h;
    }

    public override string UnrecognisedReason(Header header, string text, string body)
    {
        if (text.StartsWith('#'))
            return "comment";
        var m = EventToken.Match(body);
        if (m.Success && (header.Strong || m.Groups["sys"].Success))
            return $"unrecognised event '{m.Groups["ev"].Value}'";
        return "unrecognised line";
    }

    private static RegexSpec Ev(string names, string body, ObservationKind kind, string expected,
        Action<FieldReader, ObservationDraft>? build, bool optionalTail = false, string signatureExtra = "", string? name = null)
    {
        var signature = R($@"^(?:\w+:)?(?:{names}):{signatureExtra}");
        var full = R($@"^(?:(?<at_system>\w+):)?(?<at_event>{names}):\s*{Sp(body)}(?=\s*$|\s+{Boundary})");
        return new RegexSpec(name ?? names, expected, kind, signature, full, build) { OptionalTail = optionalTail, IsFallback = false };
    }

    // ---- builders -------------------------------------------------------------------------------------------

    private static void DeviceOnly(FieldReader f, ObservationDraft d) => d.Device = f.Device("device");

    private static void BuildMapUnmap(FieldReader f, ObservationDraft d)
    {
        var iova = f.U("iova");
        var size = f.U("size");
        d.Address = iova;
        d.Size = size;
        d.End = f.OptU("iova_end") ?? Values.AddSaturating(iova, size);
    }

    private static void BuildIoPageFault(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        d.Address = f.U("iova");
        var flags = f.U("flags");
        // report_iommu_fault flags: IOMMU_FAULT_READ 0x0, IOMMU_FAULT_WRITE 0x1
        d.Access = (flags & 1) != 0 ? "w" : "r";
    }

    private static void BuildPrq(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        var pfn = f.U("addr");
        if (pfn > (ulong.MaxValue >> 12))
            throw new FieldException("page frame too large");
        d.Address = pfn << 12;
        var flags = f.Req("flags").ToLowerInvariant();
        d.Access = Values.Access(flags[0] == 'r', flags[1] == 'w', flags[2] == 'x');
        d.Last = flags[4] == 'l';
        d.Pasid = f.Pasid("pasid");
        d.Group = (int)Math.Min(f.U("index"), int.MaxValue);
    }

    private static void BuildQi(FieldReader f, ObservationDraft d)
    {
        var type = f.Req("type").ToLowerInvariant();
        var qw0 = f.U("qw0");
        var qw1 = f.U("qw1");
        switch (type)
        {
            case "p_iotlb_inv":
            {
                d.Pasid = (int)((qw0 >> 32) & 0xfffff);
                var granularity = (qw0 >> 4) & 3;
                if (granularity == 3) // QI_GRAN_PSI_PASID: page-selective within the PASID
                {
                    var am = qw1 & 0x3f;
                    d.Address = qw1 & ~0xfffUL;
                    if (am < 52)
                    {
                        d.Size = 4096UL << (int)am;
                        d.End = Values.AddSaturating(d.Address.Value, d.Size.Value);
                    }
                }
                break;
            }
            case "p_dev_tlb_inv":
            {
                d.Pasid = (int)((qw0 >> 32) & 0xfffff);
                d.Device = Values.DeviceFromRid((qw0 >> 16) & 0xffff);
                var addr = qw1 & ~0xfffUL;
                if (((qw1 >> 11) & 1) == 0)
                {
                    d.Address = addr;
                    d.Size = 4096;
                }
                else
                {
                    // ATS size encoding: the lowest 0 bit of address[63:12] gives the size.
                    int ones = System.Numerics.BitOperations.TrailingZeroCount(~(qw1 >> 12));
                    if (ones < 51)
                    {
                        d.Size = 4096UL << (ones + 1);
                        d.Address = addr & ~(d.Size.Value - 1);
                    }
                }
                if (d.Address is { } a && d.Size is { } s)
                    d.End = Values.AddSaturating(a, s);
                break;
            }
            case "pc_inv":
                d.Pasid = (int)((qw0 >> 32) & 0xfffff);
                break;
            case "page_grp_resp":
            {
                if (((qw0 >> 4) & 1) != 0)
                    d.Pasid = (int)((qw0 >> 32) & 0xfffff);
                d.Device = Values.DeviceFromRid((qw0 >> 16) & 0xffff);
                // The wire code as the descriptor carries it (D17): conformance compares it with the simulator's
                // wire code (VT-d sends the core's FAILURE as 2; PCIe's Response Failure is 0xF).
                d.ResponseCode = (int)((qw0 >> 12) & 0xf);
                d.Group = (int)((qw1 >> 3) & 0x1ff);
                if (((qw1 >> 2) & 1) != 0)
                    d.Last = true;
                break;
            }
        }
    }

    private static void BuildCacheTagLog(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        var pasid = f.Pasid("pasid");
        d.Pasid = pasid == 0 ? null : pasid; // IOMMU_NO_PASID is 0 in kernels that have cache tags
    }

    private static void BuildCacheTagFlush(FieldReader f, ObservationDraft d)
    {
        BuildCacheTagLog(f, d);
        var start = f.U("start");
        var end = f.U("end");
        d.Address = start;
        d.End = Values.ExclusiveEnd(end); // printed end is inclusive
        if (d.End >= start)
            d.Size = d.End - start;
    }

    private static void BuildDevFault(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        var type = f.I("type");
        d.Address = f.U("addr");
        var flags = f.OptU("flags", hex: true);
        var pasid = f.Pasid("pasid");
        // flags bit 0: PASID valid (IOMMU_FAULT_PAGE_REQUEST_PASID_VALID / IOMMU_FAULT_UNRECOV_PASID_VALID)
        d.Pasid = flags is null || (flags & 1) != 0 ? pasid : null;
        if (type == 2) // IOMMU_FAULT_PAGE_REQ
        {
            d.Group = f.I("group");
            if (f.OptI("last") is { } last)
                d.Last = last != 0;
            else if (flags is { } fl)
                d.Last = (fl & 2) != 0; // IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE
        }
        var prot = f.U("prot");
        d.Access = Values.Access((prot & 1) != 0, (prot & 2) != 0, (prot & 4) != 0);
    }

    private static void BuildPageResponse(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        d.ResponseCode = f.I("code");
        d.Address = f.OptU("addr");
        d.Pasid = f.Pasid("pasid");
        d.Group = f.I("group");
    }

    private static void BuildDevPasid(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        d.Pasid = f.Pasid("pasid");
    }

    private static void BuildRange(FieldReader f, ObservationDraft d)
    {
        d.Pasid = f.Pasid("pasid");
        var start = f.U("start");
        var end = f.U("end");
        d.Address = start;
        d.End = end;
        if (end >= start)
            d.Size = end - start;
    }

    private static void BuildCdSync(FieldReader f, ObservationDraft d)
    {
        var ssid = f.Pasid("ssid");
        d.Pasid = ssid == 0 ? null : ssid; // SSID 0 is the device's own (no-PASID) context
    }

    private static readonly Regex KeyValue = R(@"(?<k>[\w.]+)=(?<v>[^\s=]+)");

    /// <summary>For events whose fields vary: every key=value becomes a field; the usual names fill the typed slots.</summary>
    internal static void BuildKeyValues(FieldReader f, ObservationDraft d)
    {
        if (f.S("_kv") is { Length: > 0 } kv)
        {
            foreach (Match m in KeyValue.Matches(kv))
                d.Set(m.Groups["k"].Value, m.Groups["v"].Value);
        }
        if ((d.Field("device") ?? d.Field("dev")) is { } dev)
            d.Device = Values.NormaliseDevice(dev);
        if (d.Field("pasid") is { } p)
            d.Pasid = FieldReader.ParsePasid(p, false, "pasid");
        var start = d.Field("start") is { } s ? FieldReader.ParseU(s, false, "start") : d.Field("addr") is { } a ? FieldReader.ParseU(a, false, "addr") : (ulong?)null;
        d.Address = start;
        if (d.Field("end") is { } e)
        {
            d.End = FieldReader.ParseU(e, false, "end");
            if (start is { } st && d.End >= st)
                d.Size = d.End - st;
        }
        if (d.Field("group") is { } g)
            d.Group = (int)Math.Min(FieldReader.ParseU(g, false, "group"), int.MaxValue);
        if (d.Field("code") is { } c)
            d.ResponseCode = (int)Math.Min(FieldReader.ParseU(c, false, "code"), int.MaxValue);
        if (d.Field("last") is { } l)
            d.Last = FieldReader.ParseU(l, false, "last") != 0;
        if (d.Field("prot") is { } prot)
        {
            var pv = FieldReader.ParseU(prot, false, "prot");
            d.Access = Values.Access((pv & 1) != 0, (pv & 2) != 0, (pv & 4) != 0);
        }
    }
}
