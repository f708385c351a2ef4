using System.Globalization;
using System.Text.Json;
using Sva.Domain;
using Sva.Domain.Json;

namespace Sva.Formats.Import;

/// <summary>One event of a session with its seq and its <c>source</c> metadata (<c>file:line</c>, or null).</summary>
public sealed record SeqEvent(long Seq, SvaEvent Event, string? Source);

/// <summary>
/// A place where a captured session and the simulator disagree. <see cref="Seq"/>/<see cref="Line"/>: the capture's
/// observation (its <c>capture_observed</c> event and source line); <see cref="SimulatedSeq"/>/<see cref="SimulatedLine"/>:
/// the simulated event it was compared with (for a page response: the response the simulator sent for the fault's line).
/// </summary>
public sealed record ConformanceFinding(string Kind, long Seq, string? Line, string Message, long? SimulatedSeq = null, string? SimulatedLine = null);

/// <summary>
/// Conformance of an imported capture: where the capture shows an outcome, it is compared with the simulated one.
/// Pure; reads the session's events once in seq order; memory bounded by the open page-request groups
/// (one entry per (device, group) key).
/// <list type="bullet">
/// <item>a page response the capture shows (<c>dev_page_response</c>, VT-d <c>qi_submit page_grp_resp</c>, jsonl
/// <c>page_response</c>) against the response the simulator sent for the same (device, group), or withheld;</item>
/// <item>an operation the capture shows as done (<c>smmu_bind_alloc</c>, <c>smmu_unbind_free</c>, <c>smmu_mm_release</c>,
/// <c>smmu_mm_invalidate</c>, <c>io_mm_*</c>, attach/detach) against a simulated refusal of the calls it implied, and the
/// PASID a capture bind got against the simulated one;</item>
/// <item>a DMA fault the capture reports against a simulated translation that went through (<c>dma_translated</c>);</item>
/// <item>a jsonl call's <c>expect</c> (<c>ok</c>, <c>-EBUSY</c>, <c>SUCCESS</c>, ...) against its outcome.</item>
/// </list>
/// An observation's simulated events are the ones right after its <c>capture_observed</c> with the same source.
/// </summary>
public static class Conformance
{
    public const string FindingKind = "conformance";

    /// <summary>The findings of a whole session (events in seq order). Sessions without captured observations have none.</summary>
    public static IEnumerable<ConformanceFinding> Check(IEnumerable<SeqEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var checker = new ConformanceChecker();
        foreach (var e in events)
            foreach (var f in checker.Add(e))
                yield return f;
        foreach (var f in checker.Complete())
            yield return f;
    }
}

/// <summary>The incremental form of <see cref="Conformance.Check"/> (the importer feeds it as it decides).</summary>
public sealed class ConformanceChecker
{
    private static readonly IReadOnlyList<ConformanceFinding> None = Array.Empty<ConformanceFinding>();

    private readonly Dictionary<(string Device, int? Group), SimResponse> responses = new();
    private Segment? open;

    /// <summary>Outcomes compared so far.</summary>
    public long Checked { get; private set; }

    /// <summary>Comparisons that disagreed (= findings returned).</summary>
    public long Mismatches { get; private set; }

    private sealed record SimResponse(long Seq, string? Source, string Code, int? Pasid, string Reason, int? WireCode = null);

    private sealed class Segment(long seq, string? source, CaptureObserved observed)
    {
        public long Seq { get; } = seq;
        public string? Source { get; } = source;
        public CaptureObserved Observed { get; } = observed;
        public (long Seq, SvaEvent Event)? Failure;
        public (long Seq, DmaTranslated Event)? Translated;
        public (long Seq, HandleIssued Event)? Issued;
        public (long Seq, string Code, string Reason)? Response;
    }

    public IReadOnlyList<ConformanceFinding> Add(SeqEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        List<ConformanceFinding>? found = null;
        if (e.Event is CaptureObserved obs)
        {
            found = Close();
            open = new Segment(e.Seq, e.Source, obs);
            return (IReadOnlyList<ConformanceFinding>?)found ?? None;
        }
        if (open is not null && !string.Equals(open.Source, e.Source, StringComparison.Ordinal))
            found = Close();

        switch (e.Event)
        {
            case PageResponseSent r:
                responses[(r.Device, r.Group)] = new SimResponse(e.Seq, e.Source, r.Code.ToString(), r.Pasid, r.Reason, r.WireCode);
                if (open is not null) open.Response ??= (e.Seq, r.Code.ToString(), r.Reason);
                break;
            case PageResponseWithheld w:
                responses[(w.Device, w.Group)] = new SimResponse(e.Seq, e.Source, "NONE", w.Pasid, w.Reason);
                if (open is not null) open.Response ??= (e.Seq, "NONE", w.Reason);
                break;
            case AccessAborted a:
                // 6.11+ Arm after release: the SMMU aborted the access, the device gets no page response at all
                responses[(a.Device, a.Group)] = new SimResponse(e.Seq, e.Source, "ABORTED", a.Pasid, a.Reason);
                if (open is not null) open.Response ??= (e.Seq, "ABORTED", a.Reason);
                break;
            case BindFailed or UnbindRejected or CallFailed or KernelBug when open is not null:
                open.Failure ??= (e.Seq, e.Event);
                break;
            case DmaTranslated t when open is not null:
                open.Translated ??= (e.Seq, t);
                break;
            case HandleIssued h when open is not null:
                open.Issued = (e.Seq, h);
                break;
        }
        return (IReadOnlyList<ConformanceFinding>?)found ?? None;
    }

    /// <summary>End of the session: the last observation's comparison.</summary>
    public IReadOnlyList<ConformanceFinding> Complete() => (IReadOnlyList<ConformanceFinding>?)Close() ?? None;

    private List<ConformanceFinding>? Close()
    {
        var s = open;
        open = null;
        if (s is null) return null;
        var o = s.Observed;
        List<ConformanceFinding>? found = null;
        void Found(string message, long? simSeq, string? simLine)
        {
            Mismatches++;
            (found ??= new()).Add(new ConformanceFinding(Conformance.FindingKind, s.Seq, s.Source, message, simSeq, simLine));
        }

        switch (o.Kind)
        {
            case "DevPageResponse" or "QiSubmit" when o.Code is { } code && o.Device is { } dev:
                ComparePageResponse(s, dev, code, o.Kind == "QiSubmit", Found);
                break;
            case "SmmuBindAlloc" or "SmmuUnbindFree" or "SmmuMmRelease" or "SmmuMmInvalidate" or "IoMm" or "AttachDevice" or "DetachDevice":
                if (s.Failure is { } f)
                {
                    Checked++;
                    Found($"the capture shows '{Short(o.Text)}' done; the simulator refused it: {Describe(f.Event)}", f.Seq, s.Source);
                }
                else if (o.Kind == "SmmuBindAlloc" && o.Pasid is { } want && s.Issued is { } issued)
                {
                    Checked++;
                    if (issued.Event.Pasid != want)
                        Found($"the capture bound PASID {want}; the simulator's bind returned {issued.Event.Handle} with PASID {issued.Event.Pasid}", issued.Seq, s.Source);
                }
                else if (s.Failure is null && (o.Kind is "SmmuUnbindFree" or "SmmuMmRelease" or "SmmuBindAlloc"))
                    Checked++;
                break;
            case "IoPageFault" or "DmarFault" or "AmdViIoPageFault" or "QemuVtdFault" or "QemuVtdError" or "SmmuV3Event" or "DevFault":
                if (s.Translated is { } t)
                {
                    Checked++;
                    Found($"the capture reports a DMA fault at {SvaJson.Hex(t.Event.Address)} on {t.Event.Device}; the simulator translated it through {t.Event.Domain} to {SvaJson.Hex(t.Event.Paddr)}",
                        t.Seq, s.Source);
                }
                break;
            case "JsonCall":
                CompareExpectation(s, Found);
                break;
        }
        return found;
    }

    /// <summary>
    /// A captured page response against the simulated one. <paramref name="wire"/>: the capture shows the VT-d descriptor's
    /// wire code (<c>qi_submit page_grp_resp</c>): against a simulated response that carries its wire code (D17) the codes
    /// are compared as numbers (a core FAILURE goes out as 2, PCIe's Response Failure 0xF is another code); against one
    /// without (stored before wire codes, or not VT-d/AMD) 2 and 0xF both read as FAILURE.
    /// </summary>
    private void ComparePageResponse(Segment s, string dev, int code, bool wire, Action<string, long?, string?> found)
    {
        var o = s.Observed;
        if (!responses.TryGetValue((dev, o.Group), out var sim)) return; // the capture's fault is not in the session
        if (o.Pasid is { } op && sim.Pasid is { } sp && op != sp) return;
        responses.Remove((dev, o.Group));
        Checked++;
        var pasid = o.Pasid is { } p ? $" PASID {p}" : "";
        if (wire && sim.WireCode is int simWire)
        {
            if (code == simWire) return;
            found($"the capture sent wire code {WireName(code)} in the page-group response for group {Group(o.Group)} of {dev}{pasid}; the simulator sent wire code {WireName(simWire)} ({sim.Code}) at seq {sim.Seq} ({sim.Source ?? "no source"}): {sim.Reason}",
                sim.Seq, sim.Source);
            return;
        }
        var observed = wire && code == 0xf ? "FAILURE" : CodeName(code);
        if (observed == sim.Code) return;
        var simulated = sim.Code switch
        {
            "NONE" => "sent no response",
            "ABORTED" => "had the SMMU abort the access (no page request, no response)",
            _ => $"answered {sim.Code}",
        };
        found($"the capture answered {observed} for page-request group {Group(o.Group)} of {dev}{pasid}; the simulator {simulated} at seq {sim.Seq} ({sim.Source ?? "no source"}): {sim.Reason}",
            sim.Seq, sim.Source);
    }

    private void CompareExpectation(Segment s, Action<string, long?, string?> found)
    {
        string? expect = null, op = null;
        try
        {
            using var doc = JsonDocument.Parse(s.Observed.Text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (doc.RootElement.TryGetProperty("expect", out var e) && e.ValueKind == JsonValueKind.String) expect = e.GetString();
                if (doc.RootElement.TryGetProperty("op", out var o) && o.ValueKind == JsonValueKind.String) op = o.GetString();
            }
        }
        catch (JsonException)
        {
            return;
        }
        if (string.IsNullOrWhiteSpace(expect)) return;
        expect = expect.Trim();
        Checked++;
        string actual;
        long? at;
        if (s.Failure is { } f)
        {
            actual = f.Event switch
            {
                BindFailed b => "-" + b.Errno,
                CallFailed c when c.Errno is { } errno => "-" + errno,
                KernelBug => "BUG",
                _ => "rejected",
            };
            at = f.Seq;
        }
        else if (op == "fault")
        {
            actual = s.Response?.Code ?? "queued";
            at = s.Response?.Seq;
        }
        else
        {
            actual = "ok";
            at = null;
        }
        var want = expect.ToUpperInvariant();
        bool same = want switch
        {
            "OK" or "0" => actual == "ok" || (op == "fault" && actual == "SUCCESS"),
            "REJECTED" or "FAIL" or "ERROR" => actual.StartsWith('-') || actual == "rejected",
            _ when want.StartsWith("-E", StringComparison.Ordinal) => string.Equals(actual, expect, StringComparison.OrdinalIgnoreCase),
            _ when want.StartsWith('E') => string.Equals(actual, "-" + expect, StringComparison.OrdinalIgnoreCase),
            _ => string.Equals(actual, expect, StringComparison.OrdinalIgnoreCase),
        };
        if (!same)
        {
            var why = s.Failure is { } ff ? $": {Describe(ff.Event)}" : s.Response is { } r ? $": {r.Reason}" : "";
            found($"expected {expect}; the simulator answered {actual}{why}", at, s.Source);
        }
    }

    private static string CodeName(int code) => code switch
    {
        0 => "SUCCESS",
        1 => "INVALID",
        2 => "FAILURE",
        _ => "code " + code.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A VT-d page-group response code: its number and what PCIe calls it.</summary>
    private static string WireName(int code) => code switch
    {
        0 => "0 (Success)",
        1 => "1 (Invalid Request)",
        0xf => "0xf (Response Failure)",
        _ => $"{code.ToString(CultureInfo.InvariantCulture)} (reserved; the core's {CodeName(code)})",
    };

    private static string Group(int? g) => g is { } v ? v.ToString(CultureInfo.InvariantCulture) : "(none)";

    private static string Describe(SvaEvent e) => e switch
    {
        BindFailed b => $"bind -{b.Errno} ({b.Reason})",
        UnbindRejected u => $"unbind {u.Handle} rejected ({u.Reason})",
        CallFailed c => $"{c.Op} {(c.Errno is { } n ? "-" + n : "rejected")} ({c.Reason})",
        KernelBug k => $"{k.Op}: kernel BUG: {k.Site} ({k.Reason})",
        _ => e.GetType().Name,
    };

    private static string Short(string text)
    {
        var t = text.ReplaceLineEndings(" ").Trim();
        return t.Length <= 120 ? t : t[..117] + "...";
    }
}
