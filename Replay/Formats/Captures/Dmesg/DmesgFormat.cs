using System.Globalization;
using System.Text.RegularExpressions;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Dmesg;

/// <summary>Kernel log text: dmesg (with or without "[ time]"), journalctl (short and ISO), dmesg -T / -x / -H, caller ids,
/// vendor task prefixes, a log viewer's offset column, with driver prefixes. Multi-line records (SMMUv3 events, Arm SMMU v2
/// fault reports, AMD-Vi 4.x two-line events) are gathered by <see cref="DmesgSink"/>.</summary>
internal sealed class DmesgFormat : GrammarFormat
{
    internal override Grammar Grammar => DmesgGrammar.Instance;
    public override string Name => "dmesg";
    public override string Description =>
        "kernel log lines of Intel DMAR faults and PRQ errors, AMD-Vi events, Arm SMMUv3 events (every event id, decoded lines or raw " +
        "words only), Arm SMMU v1/v2 context and global faults, IOMMU group changes; prefixes: dmesg '[ time]', -T, -H ('[Aug 4 09:48]' " +
        "+ '[  +0.000012]'), -x, '<N>', caller ids, journalctl, log-viewer offset column '0x.. |', vendor '[pid:N,cpuN,task]', driver names";

    protected override IRecordSink CreateSink() => new DmesgSink();
}

internal sealed class DmesgGrammar : Grammar
{
    private static readonly Lazy<DmesgGrammar> LazyInstance = new(() => new DmesgGrammar());
    public static DmesgGrammar Instance => LazyInstance.Value;

    private static readonly Regex LevelPrefix = R(
        @"\G(?:<\d>|(?:kern|user|mail|daemon|auth|syslog|lpr|news)\s*:\s*(?:emerg|alert|crit|err|warn|notice|info|debug)\s*:\s)\s*");
    private static readonly Regex Journal = R(
        @"\G(?:(?<time>[a-z]{3}\s+\d{1,2}\s+\d\d:\d\d:\d\d)\s+(?<host>\S+)\s+|(?<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:z|[+-]\d\d:?\d\d)?)\s+(?<host>\S+)\s+)?kernel:\s*");
    private static readonly Regex Timestamp = R(@"\G\[\s*(?<ts>\d+\.\d+)\]\s*(?:\[\s*(?<caller>[TC]\d+)\]\s*)?");
    private static readonly Regex WallClock = R(@"\G\[(?<time>[a-z]{3}\s+[a-z]{3}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\d{4})\]\s*");
    /// <summary>dmesg -H / --human: "[Aug 4 09:48]" when the minute changes, else "[  +0.000012]" (time since the previous message).</summary>
    private static readonly Regex HumanMinute = R(@"\G\[(?<minute>[a-z]{3}\s*\d{1,2}\s+\d{1,2}:\d\d)\]\s*");
    private static readonly Regex HumanDelta = R(@"\G\[\s*\+(?<delta>\d+\.\d+)\]\s*");
    /// <summary>A log viewer's offset column ("0x000000000277BBFA |   1263.468579:   "), seen in Qualcomm pastes.</summary>
    private static readonly Regex OffsetColumn = R(@"\G0x[0-9a-f]+\s*\|\s*(?:(?<ts>\d+\.\d+):\s*)?");
    /// <summary>A vendor kernel's task prefix in front of the driver name ("[pid:134,cpu0,irq/13-arm-smmu]arm-smmu-v3 ...").</summary>
    private static readonly Regex VendorTask = R(@"\G\[pid:\s*(?<pid>\d+),\s*cpu(?<cpu>\d+),\s*(?<task>[^\]]*)\]\s*");
    private static readonly Regex DriverPrefix = R(@"\G(?<driver>[\w.\-]+) (?<dev>[\w.:\-]+):\s+(?=\S)");
    private static readonly Regex NonContinuation = R(
        @"^(?!(?:sid|ssid|iova|ipa|client|fetch_addr|stag|addr|address|domain|flags|pasid|device):)[\w.\-]+(?: [\w.:\-]+)?:\s");
    private static readonly Regex Splitter = new(@"(?<=[^:\s])\s+(?=\[\s*\d+\.\d{6}\]\s)", RegexOptions.CultureInvariant);

    private const string Boundary =
        @"(?:\[\s*\d+\.\d+\]|DMAR:|AMD-Vi:|[\w.\-]+\s[\w.:\-]+:\s+(?:AMD-Vi:|event\s+0x)|event\s+0x[0-9a-f]+\s+received:)";

    private const string AmdEventNames =
        "IO_PAGE_FAULT|INVALID_DEVICE_REQUEST|ILLEGAL_DEV_TABLE_ENTRY|DEV_TAB_HARDWARE_ERROR|PAGE_TAB_HARDWARE_ERROR" +
        "|ILLEGAL_COMMAND_ERROR|COMMAND_HARDWARE_ERROR|IOTLB_INV_TIMEOUT|INVALID_PPR_REQUEST|RMP_PAGE_FAULT|RMP_HW_ERROR|UNKNOWN";

    private readonly List<RecordSpec> _specs;

    private DmesgGrammar()
    {
        _specs =
        [
            Spec("DMAR fault", @"^DMAR:\s*\[(?:DMA|INTR)",
                @"DMAR:\s*\[(?<request>DMA Read|DMA Write|INTR-REMAP)(?: (?<_tag>NO_PASID|PASID (?<pasid>(?:0x)?[0-9a-f]+)))?\] Request device \[(?<device>[^\]\s]+)\](?: PASID (?<pasid>[0-9a-f]+))? fault (?:addr (?<addr>(?:0x)?[0-9a-f]+)|index (?<index>(?:0x)?[0-9a-f]+))(?: (?:DMAR:\s*)?\[fault reason (?<reason>(?:0x)?[0-9a-f]+)\](?: (?<reason_text>.*?))?)?",
                ObservationKind.DmarFault,
                "DMAR: [DMA Read|DMA Write|INTR-REMAP NO_PASID|PASID 0x%x] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s (or 5.5-5.13: [DMA Read] Request device [bb:dd.f] PASID %x fault addr %llx [fault reason %02d] %s)",
                BuildDmarFault, optionalTail: true),
            // before 4.x the reason was printed on a line of its own: "DMAR:[fault reason 06] PTE Read access is not set"
            Spec("DMAR fault reason", @"^DMAR:\s*\[fault\s+reason",
                @"DMAR:\s*\[fault reason (?<reason>(?:0x)?[0-9a-f]+)\](?: (?<reason_text>.*?))?",
                ObservationKind.DmarFault, "DMAR:[fault reason %02d] %s", null, optionalTail: true, tag: "dmar-reason"),
            Spec("DMAR fault status", @"^DMAR:\s*DRHD:",
                @"DMAR:\s*DRHD: handling fault status reg (?<status>(?:0x)?[0-9a-f]+)",
                ObservationKind.DmarFaultStatus, "DMAR: DRHD: handling fault status reg %x", null),
            Spec("DMAR page request error", @"^(?:DMAR:\s*)?(?:IOMMU:\s*)?dmar\d+:\s+(?:Page request|Invalid page request|Address is not canonical|PRQ overflow)",
                @"(?:DMAR:\s*)?(?:IOMMU:\s*)?(?<iommu>dmar\d+): (?<message>(?:Page request|Invalid page request|Address is not canonical|PRQ overflow).*?)",
                ObservationKind.DmarPrqError, "IOMMU: dmar%d: Page request without PASID | Invalid page request: %08llx %08llx | ...", BuildPrqError,
                optionalTail: true),
            Spec("AMD-Vi event", @"^AMD-Vi:\s*Event\s+logged\s+\[",
                $@"AMD-Vi:\s*Event logged \[(?<event>[A-Z_]+)(?<_kv>(?:\s+[\w\[\]]+=[^\s\]]+)*)\s*\]",
                ObservationKind.AmdViEvent, "AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x%04x address=0x%llx flags=0x%04x]", BuildAmd),
            Spec("AMD-Vi event header", @"^AMD-Vi:\s*Event\s+logged\s+\[",
                @"AMD-Vi:\s*Event logged \[\s*", ObservationKind.AmdViEvent, "AMD-Vi: Event logged [", null, tag: "amd-head"),
            Spec("AMD-Vi event", $@"^(?:{AmdEventNames})\s+[\w\[\]]+=",
                $@"(?<event>{AmdEventNames})(?<_kv>(?:\s+[\w\[\]]+=[^\s\]]+)*)\s*\]",
                ObservationKind.AmdViEvent, "IO_PAGE_FAULT device=%02x:%02x.%x domain=0x%04x address=0x%016llx flags=0x%04x]", BuildAmd, tag: "amd-body"),
            Spec("SMMUv3 event", @"^event\s+0x[0-9a-f]+\s+received:",
                @"event (?<id>0x[0-9a-f]{1,2}) received:", ObservationKind.SmmuV3Event, "arm-smmu-v3 %s: event 0x%02x received:", null, tag: "smmu-header"),
            Spec("SMMUv3 event word", @"^0x[0-9a-f]+$",
                @"(?<word>0x[0-9a-f]{1,16})", ObservationKind.SmmuV3Event, "arm-smmu-v3 %s: \t0x%016llx", null, tag: "smmu-word"),
            Spec("SMMUv3 decoded event", @"^event:\s+\S+\s+client:",
                @"event: (?<event>\S+) client: (?<client>.+?) sid: (?<sid>(?:0x)?[0-9a-f]+) ssid: (?<ssid>(?:0x)?[0-9a-f]+)(?: iova: (?<iova>(?:0x)?[0-9a-f]+) ipa: (?<ipa>(?:0x)?[0-9a-f]+)| fetch_addr: (?<fetch_addr>(?:0x)?[0-9a-f]+))?",
                ObservationKind.SmmuV3Event, "event: %s client: %s sid: %#x ssid: %#x[ iova: %#llx ipa: %#llx| fetch_addr: %#llx]", Numbers("sid", "ssid", "iova", "ipa", "fetch_addr"),
                optionalTail: true, tag: "smmu-decoded"),
            Spec("SMMUv3 access", @"^(?:un)?priv\s+(?:data|inst)\s+(?:read|write)\s",
                "(?<priv>priv|unpriv) (?<inst>data|inst) (?<rw>read|write) (?<stage>s1|s2) \"(?<class>[^\"]*)\"(?: (?<ttd>ttd_read|ttd_write))?(?: (?<stall>stall))? stag: (?<stag>(?:0x)?[0-9a-f]+)",
                ObservationKind.SmmuV3Event, "<unpriv|priv> <data|inst> <read|write> <s1|s2> \"%s\"[ ttd_read|ttd_write][ stall] stag: %#x", Numbers("stag"),
                tag: "smmu-access"),
            // Arm SMMU v1/v2 (drivers/iommu/arm/arm-smmu): context faults and global faults, with the lines printed after them.
            Spec("arm-smmu context fault", @"^Unhandled\s+context\s+fault:",
                @"Unhandled context fault: (?:fsr=(?<fsr>0x[0-9a-f]+), )?iova=(?<iova>0x[0-9a-f]+), fsynr=(?<fsynr>0x[0-9a-f]+),(?: cbfrsynra=(?<cbfrsynra>0x[0-9a-f]+),)? cb=(?<cb>\d+)(?:, sid=(?<sid_dec>\d+)\((?<sid>0x[0-9a-f]+)[^)]*\))?(?<_rest>(?:, \w+=[0-9a-fx]+)*)",
                ObservationKind.ArmSmmuContextFault, "arm-smmu %s: Unhandled context fault: fsr=0x%x, iova=0x%08lx, fsynr=0x%x, cbfrsynra=0x%x, cb=%d",
                BuildArmContextFault, optionalTail: true, tag: "armsmmu-ctx"),
            Spec("arm-smmu FSR", @"^FSR\s*=\s*[0-9a-f]+\s*\[",
                @"FSR = (?<fsr_reg>[0-9a-f]+) \[(?<fsr_flags>[^\]]*)\](?:, SID=(?<sid>0x[0-9a-f]+))?",
                ObservationKind.ArmSmmuContextFault, "arm-smmu %s: FSR    = %08x [%s], SID=0x%x", BuildArmFsr, tag: "armsmmu-fsr"),
            Spec("arm-smmu FSYNR0", @"^FSYNR0\s*=\s*[0-9a-f]+\s*\[",
                @"FSYNR0 = (?<fsynr0_reg>[0-9a-f]+) \[(?<fsynr0_flags>[^\]]*)\]",
                ObservationKind.ArmSmmuContextFault, "arm-smmu %s: FSYNR0 = %08x [S1CBNDX=%u ... PLVL=%u]", Numbers("fsynr0_reg"), tag: "armsmmu-fsynr"),
            Spec("arm-smmu soft iova-to-phys", @"^soft\s+iova-to-phys\s*=",
                @"soft iova-to-phys=(?<soft_phys>0x[0-9a-f]+)",
                ObservationKind.ArmSmmuContextFault, "arm-smmu %s: soft iova-to-phys=%pa", Numbers("soft_phys"), tag: "armsmmu-soft"),
            Spec("arm-smmu hard iova-to-phys", @"^hard\s+iova-to-phys\s+\(ATOS\)\s*=",
                @"hard iova-to-phys \(ATOS\)=(?<hard_phys>0x[0-9a-f]+)",
                ObservationKind.ArmSmmuContextFault, "arm-smmu %s: hard iova-to-phys (ATOS)=%pa", Numbers("hard_phys"), tag: "armsmmu-hard"),
            Spec("arm-smmu blocked stream", @"^Blocked\s+unknown\s+Stream\s+ID",
                @"Blocked unknown Stream ID (?<sid>0x[0-9a-f]+)(?:;.*?)?",
                ObservationKind.ArmSmmuGlobalFault, "arm-smmu %s: Blocked unknown Stream ID 0x%hx; boot with \"arm-smmu.disable_bypass=0\" to allow, but this is unsafe",
                Numbers("sid"), optionalTail: true, tag: "armsmmu-blocked"),
            Spec("arm-smmu global fault", @"^Unexpected\s+global\s+fault",
                @"Unexpected global fault, this could be serious",
                ObservationKind.ArmSmmuGlobalFault, "arm-smmu %s: Unexpected global fault, this could be serious", null, tag: "armsmmu-global"),
            Spec("arm-smmu GFSR", @"^GFSR\s+0x[0-9a-f]+",
                @"GFSR (?<gfsr>0x[0-9a-f]+), GFSYNR0 (?<gfsynr0>0x[0-9a-f]+), GFSYNR1 (?<gfsynr1>0x[0-9a-f]+), GFSYNR2 (?<gfsynr2>0x[0-9a-f]+)",
                ObservationKind.ArmSmmuGlobalFault, "arm-smmu %s: \tGFSR 0x%08x, GFSYNR0 0x%08x, GFSYNR1 0x%08x, GFSYNR2 0x%08x",
                Numbers("gfsr", "gfsynr0", "gfsynr1", "gfsynr2"), tag: "armsmmu-gfsr"),
            Spec("IOMMU group add", @"^(?:Adding to iommu group|iommu:\s*Adding device)",
                @"(?:Adding to iommu group (?<groupID>\d+)|iommu:\s*Adding device (?<device>\S+) to group (?<groupID>\d+))",
                ObservationKind.GroupAddDevice, "Adding to iommu group %d | iommu: Adding device %s to group %d", DeviceOnly),
            Spec("IOMMU group remove", @"^(?:Removing from iommu group|iommu:\s*Removing device)",
                @"(?:Removing from iommu group (?<groupID>\d+)|iommu:\s*Removing device (?<device>\S+) from group (?<groupID>\d+))",
                ObservationKind.GroupRemoveDevice, "Removing from iommu group %d | iommu: Removing device %s from group %d", DeviceOnly),
        ];
    }

    public override string FormatName => "dmesg";
    public override IReadOnlyList<RecordSpec> Specs => _specs;
    public override Regex? SegmentSplitter => Splitter;

    public override bool IsNonContinuation(string text) => NonContinuation.IsMatch(text);

    public override Header ParseHeader(string text, out int bodyStart)
    {
        int pos = 0;
        bool strong = false;
        string? time = null, host = null, caller = null;
        double? ts = null;

        string? reltime = null, vpid = null, vtask = null;
        int? vcpu = null;
        var m = OffsetColumn.Match(text, pos);
        if (m.Success)
        {
            pos += m.Length;
            strong = true;
            if (m.Groups["ts"].Success)
                ts = double.Parse(m.Groups["ts"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
        }
        m = LevelPrefix.Match(text, pos);
        if (m.Success) { pos += m.Length; strong = true; }
        m = Journal.Match(text, pos);
        if (m.Success)
        {
            pos += m.Length;
            strong = true;
            if (m.Groups["time"].Success) time = m.Groups["time"].Value;
            if (m.Groups["host"].Success) host = m.Groups["host"].Value;
        }
        m = Timestamp.Match(text, pos);
        if (m.Success)
        {
            pos += m.Length;
            strong = true;
            ts = double.Parse(m.Groups["ts"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            if (m.Groups["caller"].Success) caller = m.Groups["caller"].Value;
        }
        else if ((m = WallClock.Match(text, pos)).Success)
        {
            pos += m.Length;
            strong = true;
            time = m.Groups["time"].Value;
        }
        else if ((m = HumanDelta.Match(text, pos)).Success || (m = HumanMinute.Match(text, pos)).Success)
        {
            pos += m.Length;
            strong = true;
            reltime = m.Groups["delta"].Success ? "+" + m.Groups["delta"].Value : m.Groups["minute"].Value;
        }
        m = VendorTask.Match(text, pos);
        if (m.Success)
        {
            pos += m.Length;
            strong = true;
            vpid = m.Groups["pid"].Value;
            vtask = m.Groups["task"].Value;
            vcpu = int.TryParse(m.Groups["cpu"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var vc) ? vc : null;
        }
        string? driver = null, dev = null;
        m = DriverPrefix.Match(text, pos);
        if (m.Success)
        {
            pos += m.Length;
            driver = m.Groups["driver"].Value;
            dev = m.Groups["dev"].Value;
        }
        bodyStart = pos;
        if (!strong && driver is null)
            return Header.None;
        int? cpu = caller is not null && caller[0] is 'C' or 'c'
            && int.TryParse(caller.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : null;
        var h = new Header { Strong = strong, Timestamp = ts, Cpu = cpu ?? vcpu, Task = vtask };
        if (time is not null) h.Fields.Add(new("@time", time));
        if (reltime is not null) h.Fields.Add(new("@reltime", reltime));
        if (vpid is not null) h.Fields.Add(new("@pid", vpid));
        if (host is not null) h.Fields.Add(new("@host", host));
        if (caller is not null) h.Fields.Add(new("@caller", caller));
        if (driver is not null) h.Fields.Add(new("@driver", driver));
        if (dev is not null) h.Fields.Add(new("@dev", dev));
        return h;
    }

    private static RegexSpec Spec(string name, string signature, string body, ObservationKind kind, string expected,
        Action<FieldReader, ObservationDraft>? build, bool optionalTail = false, string? tag = null)
    {
        var full = R($@"^{Sp(body)}(?=\s*$|\s+{Boundary})");
        return new RegexSpec(name, expected, kind, R(signature), full, build) { OptionalTail = optionalTail, Tag = tag };
    }

    // ---- builders -------------------------------------------------------------------------------------------

    private static void DeviceOnly(FieldReader f, ObservationDraft d) => d.Device = f.Device("device");

    /// <summary>Only checks that these (hex) fields convert.</summary>
    private static Action<FieldReader, ObservationDraft> Numbers(params string[] names) => (f, d) =>
    {
        foreach (var n in names)
            f.OptU(n, hex: true);
    };

    private static void BuildDmarFault(FieldReader f, ObservationDraft d)
    {
        d.Device = f.Device("device");
        // NO_PASID or no PASID part: none; "PASID ffffffff" (5.5-5.13): none.
        d.Pasid = f.OptPasid("pasid", hex: true);
        d.Address = f.OptU("addr", hex: true);
        var request = f.Req("request");
        d.Access = request.EndsWith("Read", StringComparison.OrdinalIgnoreCase) ? "r"
            : request.EndsWith("Write", StringComparison.OrdinalIgnoreCase) ? "w" : null;
        if (f.S("reason") is { } reason)
            _ = f.U("reason", hex: reason.StartsWith("0x", StringComparison.OrdinalIgnoreCase));
        else if (f.Has("_tag") || f.Has("pasid") || f.Has("index") || f.Req("addr").StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            throw new FieldException("only kernels before 4.x print the fault reason on a line of its own");
    }

    private static void BuildArmContextFault(FieldReader f, ObservationDraft d)
    {
        _ = f.OptU("fsr", hex: true);
        d.Address = f.U("iova", hex: true);
        _ = f.U("fsynr", hex: true);
        _ = f.U("cb");
        if (f.OptU("cbfrsynra", hex: true) is { } cbfrsynra && f.S("sid") is null)
            d.Set("sid", Values.Hex(cbfrsynra & 0xffff)); // CBFRSYNRA.SID[15:0]: the stream that faulted
        if (f.S("sid") is { } sid)
            _ = FieldReader.ParseU(sid, true, "sid");
    }

    private static void BuildArmFsr(FieldReader f, ObservationDraft d)
    {
        _ = f.U("fsr_reg", hex: true);
        if (f.S("sid") is { } sid)
            _ = FieldReader.ParseU(sid, true, "sid");
    }

    private static readonly Regex InvalidPageRequest = R(@"Invalid\s+page\s+request:\s+(?<qw0>[0-9a-f]+)\s+(?<qw1>[0-9a-f]+)");

    private static void BuildPrqError(FieldReader f, ObservationDraft d)
    {
        var m = InvalidPageRequest.Match(f.Req("message"));
        if (!m.Success)
            return;
        var qw0 = FieldReader.ParseU(m.Groups["qw0"].Value, true, "qw0");
        var qw1 = FieldReader.ParseU(m.Groups["qw1"].Value, true, "qw1");
        d.Set("qw0", m.Groups["qw0"].Value);
        d.Set("qw1", m.Groups["qw1"].Value);
        // VT-d page request descriptor: qw0 pasid_present bit 8, rid 31:16, pasid 51:32, exe 52, pm 53;
        // qw1 read bit 0, write bit 1, lpig bit 2, prg_index 11:3, address 63:12.
        d.Device = Values.DeviceFromRid((qw0 >> 16) & 0xffff);
        if (((qw0 >> 8) & 1) != 0)
            d.Pasid = (int)((qw0 >> 32) & 0xfffff);
        d.Address = qw1 & ~0xfffUL;
        d.Access = Values.Access((qw1 & 1) != 0, (qw1 & 2) != 0, ((qw0 >> 52) & 1) != 0);
        d.Last = ((qw1 >> 2) & 1) != 0;
        d.Group = (int)((qw1 >> 3) & 0x1ff);
    }

    private static readonly Regex AmdKeyValue = R(@"(?<k>[\w\[\]]+)=(?<v>[^\s\]]+)");

    private static void BuildAmd(FieldReader f, ObservationDraft d)
    {
        var ev = f.Req("event").ToUpperInvariant();
        d.Kind = ev switch
        {
            "IO_PAGE_FAULT" => ObservationKind.AmdViIoPageFault,
            "INVALID_DEVICE_REQUEST" => ObservationKind.AmdViInvalidDeviceRequest,
            _ => ObservationKind.AmdViEvent,
        };
        if (f.S("_kv") is { Length: > 0 } kv)
            foreach (Match m in AmdKeyValue.Matches(kv))
                d.Set(m.Groups["k"].Value, m.Groups["v"].Value);
        if (d.Field("device") is { } dev)
            d.Device = Values.NormaliseDevice(dev);
        if (d.Field("address") is { } a)
            d.Address = FieldReader.ParseU(a, false, "address");
        if (d.Field("pasid") is { } p)
        {
            var pasid = FieldReader.ParsePasid(p, true, "pasid");
            d.Pasid = pasid == 0 ? null : pasid;
        }
        ulong? flags = d.Field("flags") is { } fl ? FieldReader.ParseU(fl, true, "flags") : null;
        if (d.Kind == ObservationKind.AmdViIoPageFault && flags is { } flv)
            d.Access = (flv & 0x20) != 0 ? "w" : "r"; // EVENT_FLAG_RW
        if (d.Field("domain") is { } dom)
            _ = FieldReader.ParseU(dom, true, "domain");
    }
}
