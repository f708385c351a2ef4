using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Dmesg;

/// <summary>
/// Gathers the printk lines that form one record:
/// <list type="bullet">
/// <item>Arm SMMUv3: "event 0xNN received:", four raw event words, then (6.x) "event: ... client: ..." and, for
/// faults, the access line — one <see cref="ObservationKind.SmmuV3Event"/> whose source covers all of them. Unrelated
/// lines printed in between (up to 4) are reported after it. A paste that starts in the middle of a record yields
/// SkippedLines for orphan words; a decoded line alone is still an observation.</item>
/// <item>AMD-Vi 4.x: "AMD-Vi: Event logged [" followed by "IO_PAGE_FAULT device=... ]" — one observation; the second
/// line alone (paste starting mid-record) is an observation too.</item>
/// <item>Arm SMMU v1/v2: "Unhandled context fault" and the FSR / FSYNR0 / iova-to-phys lines after it, or "Blocked unknown
/// Stream ID" / "Unexpected global fault" / "GFSR" — one observation (<see cref="ArmSmmuRecord"/>); unrelated lines in
/// between (up to 4) are reported after it; a detail line without its fault line is an orphan SkippedLine.</item>
/// </list>
/// Every line, record or not, also goes through the <see cref="HumanClock"/> that rebuilds `dmesg -H` timestamps.
/// </summary>
internal sealed class DmesgSink : IRecordSink
{
    private const string Format = "dmesg";
    private const int MaxDeferred = 4;

    private SmmuV3Record? _smmu;
    private ArmSmmuRecord? _arm;
    private readonly HumanClock _clock = new();
    private LineRecord? _amdHead;
    private LineRecord? _dmarHead;
    private readonly List<CaptureItem> _deferred = new();

    public void Record(LineRecord r, ICollection<CaptureItem> output)
    {
        r = _clock.Apply(r);
        if (ArmSmmuRecord.IsPart(r.Spec.Tag))
        {
            if (_arm is { } pending && pending.Accepts(r))
                pending.Parts.Add(r);
            else
            {
                Flush(output);
                _arm = new ArmSmmuRecord();
                _arm.Parts.Add(r);
            }
            if (_arm.Complete)
                Flush(output);
            return;
        }
        switch (r.Spec.Tag)
        {
            case "smmu-header":
                Flush(output);
                _smmu = new SmmuV3Record { Header = r };
                return;
            case "smmu-word":
                if (_smmu is { Header: not null, Decoded: null } g && g.Words.Count < 4 && SameSmmu(g, r))
                {
                    g.Words.Add(r);
                    return;
                }
                Flush(output);
                output.Add(Skip(r, "orphan SMMUv3 event word: its 'event 0x.. received:' line is not in the capture"));
                return;
            case "smmu-decoded":
                if (_smmu is { Decoded: null } g2 && SameSmmu(g2, r))
                    g2.Decoded = r;
                else
                {
                    Flush(output);
                    _smmu = new SmmuV3Record { Decoded = r };
                }
                if (r.Draft.Field("iova") is null)
                    Flush(output); // no access line follows non-fault events
                return;
            case "smmu-access":
                if (_smmu is { Decoded: not null, Access: null } g3)
                {
                    g3.Access = r;
                    Flush(output);
                    return;
                }
                Flush(output);
                output.Add(Skip(r, "orphan SMMUv3 access line: its 'event:' line is not in the capture"));
                return;
            case "dmar-reason":
                if (_dmarHead is { } fault)
                {
                    _dmarHead = null;
                    output.Add(Merge(fault, r));
                    return;
                }
                Flush(output);
                output.Add(Skip(r, "orphan DMAR fault reason line: its 'DMAR:[DMA ...] Request device' line is not in the capture"));
                return;
            case "amd-head":
                Flush(output);
                _amdHead = r;
                return;
            case "amd-body":
                if (_amdHead is { } head)
                {
                    _amdHead = null;
                    output.Add(Merge(head, r));
                    return;
                }
                Flush(output);
                output.Add(Convert(r));
                return;
            default:
                Flush(output);
                if (r.Draft.Kind == ObservationKind.DmarFault && r.Draft.Field("reason") is null)
                    _dmarHead = r; // pre-4.x: the reason follows on its own line
                else
                    output.Add(Convert(r));
                return;
        }
    }

    public void Skipped(SkippedLine line, ICollection<CaptureItem> output)
    {
        _clock.Observe(line.Text);
        if ((_smmu is not null || _arm is not null) && _deferred.Count < MaxDeferred)
        {
            _deferred.Add(line);
            return;
        }
        Flush(output);
        output.Add(line);
    }

    public void Complete(ICollection<CaptureItem> output)
    {
        if (_smmu is { Header: not null, Decoded: null } g && g.Words.Count < 4)
        {
            output.Add(g.Truncated());
            _smmu = null;
        }
        if (_amdHead is { } head)
        {
            output.Add(Skip(head, "truncated: AMD-Vi 'Event logged [' line cut off at the end of the capture"));
            _amdHead = null;
        }
        Flush(output);
    }

    private void Flush(ICollection<CaptureItem> output)
    {
        if (_smmu is { } g)
        {
            _smmu = null;
            CaptureItem item;
            try
            {
                item = g.Build();
            }
            catch (FieldException e)
            {
                item = new SkippedLine(g.First.Source, g.First.RawText, "malformed: SMMUv3 event record: " + e.Message);
            }
            output.Add(item);
        }
        if (_arm is { } arm)
        {
            _arm = null;
            CaptureItem item;
            try
            {
                item = arm.Build();
            }
            catch (FieldException e)
            {
                item = new SkippedLine(arm.Parts[0].Source, arm.Parts[0].RawText, "malformed: arm-smmu fault report: " + e.Message);
            }
            output.Add(item);
        }
        foreach (var d in _deferred)
            output.Add(d);
        _deferred.Clear();
        if (_amdHead is { } head)
        {
            _amdHead = null;
            output.Add(Skip(head, "incomplete: AMD-Vi 'Event logged [' line without the event line that follows it"));
        }
        if (_dmarHead is { } fault)
        {
            _dmarHead = null;
            output.Add(Convert(fault)); // a fault without its reason is still a fault
        }
    }

    private static bool SameSmmu(SmmuV3Record g, LineRecord r)
    {
        var a = g.First.Header.Get("@dev");
        var b = r.Header.Get("@dev");
        return a is null || b is null || a == b;
    }

    private static SkippedLine Skip(LineRecord r, string reason) => new(r.Source, r.RawText, reason);

    internal static Observation Convert(LineRecord r)
    {
        var d = r.Draft;
        if (d.Device is null && r.Header.Get("@dev") is { } dev && Values.IsPciDevice(dev) && d.Kind is not ObservationKind.SmmuV3Event)
            d.Device = Values.NormaliseDevice(dev);
        return ObservationFactory.Create(r, Format);
    }

    /// <summary>Two printk lines of one record: the typed values come from the line that has them (the AMD-Vi
    /// event line, the DMAR fault line); fields from both, the head's first.</summary>
    private static Observation Merge(LineRecord head, LineRecord tail)
    {
        var source = new SourceRef(head.Source.File, head.Source.Line, tail.Source.EndLine);
        var header = head.Header.Timestamp is not null || head.Header.Fields.Count > 0 ? head.Header : tail.Header;
        var main = tail.Spec.Tag == "dmar-reason" ? head.Draft : tail.Draft;
        var other = ReferenceEquals(main, head.Draft) ? tail.Draft : head.Draft;
        foreach (var kv in other.Fields)
            if (main.Field(kv.Key) is null)
                main.Fields.Add(kv);
        if (main.Device is null && header.Get("@dev") is { } dev && Values.IsPciDevice(dev))
            main.Device = Values.NormaliseDevice(dev);
        return ObservationFactory.Create(main, header, source, Format, head.RawText + "\n" + tail.RawText);
    }
}
