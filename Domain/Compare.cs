using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>A call to re-decide, with where it came from: <c>file:line</c> and/or the seq of its first recorded event.</summary>
public sealed record SourcedKernelCall(KernelCall Call, string? Source, long? Seq)
{
    /// <summary>The line number of <see cref="Source"/> (<c>file:line</c>), if it has one.</summary>
    public int? Line => SourceLine.Of(Source);
}

public static class SourceLine
{
    /// <summary>"examples/x.sva:12" → 12; null when there is no source or no line.</summary>
    public static int? Of(string? source)
    {
        if (string.IsNullOrEmpty(source)) return null;
        var colon = source.LastIndexOf(':');
        return colon >= 0 && int.TryParse(source.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}

/// <summary>The calls of a recorded session, read back from the metadata of their events.</summary>
public static class RecordedCalls
{
    /// <summary>
    /// The first event of each recorded call carries the call (metadata <c>call</c>) and every event its
    /// <c>source</c>. Events without a <c>call</c> (the rest of a call, imported observations) are skipped.
    /// </summary>
    public static List<SourcedKernelCall> FromMetadata(IEnumerable<(long Seq, string MetadataJson)> events)
    {
        var calls = new List<SourcedKernelCall>();
        foreach (var (seq, metadata) in events)
        {
            JsonNode? node;
            try { node = JsonNode.Parse(metadata); }
            catch (JsonException ex) { throw new EventFormatException($"seq {seq}: metadata is not JSON: {ex.Message}"); }
            if (node is not JsonObject o || o["call"] is not JsonObject call) continue;
            string? source = o["source"] is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;
            KernelCall parsed;
            try { parsed = SvaJson.DeserializeCall(call.ToJsonString()); }
            catch (EventFormatException ex) { throw new EventFormatException($"seq {seq}: {ex.Message}"); }
            calls.Add(new SourcedKernelCall(parsed, source, seq));
        }
        return calls;
    }
}

/// <summary>
/// What one call answered under one kernel version, reduced to what a caller (or the device) sees:
/// ok or errno, the handle and domain by identity (the call that first produced them), the handle's users
/// (bond refs) after the call (0: freed), the PASID, the
/// page response, and the effects a reader compares between versions (invalidation rounds, how release
/// quieted the PASID entries, whether the PASID was freed).
/// </summary>
public sealed record CallSummary(
    string Op,
    bool Ok,
    string? Errno,
    string? Handle,
    int? HandleFrom,
    int? HandleUsers,
    string? Domain,
    int? DomainFrom,
    int? Pasid,
    string? Response,
    int Invalidations,
    string? Quieted,
    int? PasidFreed,
    string Text,
    KernelRule? Rule = null,
    string? Bug = null)
{
    /// <summary>
    /// Same outcome? Handles and domains compare by identity (the index of the call that produced them),
    /// not by name. A domain is compared only when both versions have one: G1 bonds have no SVA domain,
    /// so G1 against G2+ compares the handle and PASID, not the domain.
    /// </summary>
    public bool SameAs(CallSummary o) =>
        Ok == o.Ok && Errno == o.Errno && Bug == o.Bug && HandleFrom == o.HandleFrom && HandleUsers == o.HandleUsers && Pasid == o.Pasid && Response == o.Response
        && Invalidations == o.Invalidations && Quieted == o.Quieted && PasidFreed == o.PasidFreed
        && (DomainFrom is null || o.DomainFrom is null || DomainFrom == o.DomainFrom);

    public JsonObject ToJson() => new()
    {
        ["ok"] = Ok,
        ["errno"] = Errno,
        ["handle"] = Handle,
        ["handle_from"] = HandleFrom,
        ["handle_users"] = HandleUsers,
        ["domain"] = Domain,
        ["domain_from"] = DomainFrom,
        ["pasid"] = Pasid,
        ["response"] = Response,
        ["invalidations"] = Invalidations,
        ["quieted"] = Quieted,
        ["pasid_freed"] = PasidFreed,
        ["text"] = Text,
        ["bug"] = Bug,
        ["rule"] = Rule?.ToJson(),
    };

    /// <summary>"-EBUSY — iommu_sva_bind_device(), 092edaddb660": the outcome and the rule that decided it.</summary>
    public string Explained => Rule is null ? Text : $"{Text} — {Rule.Short}";
}

public sealed record ComparedCall(int Index, SourcedKernelCall Call, CallSummary A, CallSummary B)
{
    public bool Same => A.SameAs(B);
}

public sealed record Comparison(KernelVersion A, KernelVersion B, IReadOnlyList<ComparedCall> Calls)
{
    public bool Identical => Calls.All(c => c.Same);
    public ComparedCall? FirstDivergence => Calls.FirstOrDefault(c => !c.Same);
}

/// <summary>Differential replay: the same calls decided from an empty machine under two kernel versions.</summary>
public static class Differential
{
    public static Comparison Compare(KernelVersion a, KernelVersion b, IReadOnlyList<SourcedKernelCall> calls)
    {
        var ra = Replay(a, calls);
        var rb = Replay(b, calls);
        return new Comparison(a, b, calls.Select((c, i) => new ComparedCall(i, c, ra[i], rb[i])).ToList());
    }

    /// <summary>Decides every call in order under <paramref name="version"/> and summarises each outcome.</summary>
    public static List<CallSummary> Replay(KernelVersion version, IReadOnlyList<SourcedKernelCall> calls)
    {
        var state = new SvaState();
        var handleFrom = new Dictionary<string, int>(StringComparer.Ordinal);
        var domainFrom = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new List<CallSummary>(calls.Count);
        for (var i = 0; i < calls.Count; i++)
        {
            var call = calls[i].Call;
            var events = SvaKernel.Execute(version, state, call);
            var o = CallOutcome.Of(call, events, state);
            if (version.Origin is not null) o = o with { Rule = version.Explain(o.Rule) };
            foreach (var h in events.OfType<HandleIssued>()) handleFrom[h.Handle] = i;
            foreach (var d in events.OfType<SvaDomainAllocated>()) domainFrom[d.Domain] = i;
            foreach (var d in events.OfType<DomainAllocated>()) domainFrom[d.Domain] = i;
            int? hf = o.Handle is not null && handleFrom.TryGetValue(o.Handle, out var hi) ? hi : null;
            int? df = o.Domain is not null && domainFrom.TryGetValue(o.Domain, out var di) ? di : null;
            var response = o.Response ?? o.Dma switch
            {
                "fault" => "DMA_FAULT",
                "translated" => "TRANSLATED",
                _ => call is PageFault && o.Ok ? "QUEUED" : null,
            };
            int? users = !o.Ok || o.Handle is null ? null
                : events.Any(e => e is HandleFreed f && f.Handle == o.Handle) ? 0
                : state.HandleById(o.Handle)?.Users;
            var rounds = events.Count(e => e is SecondaryTlbInvalidated);
            var quieted = string.Join(",", events.OfType<PasidEntryQuieted>().Select(q => q.Mode).Distinct());
            var freed = events.OfType<PasidFreed>().Select(p => (int?)p.Pasid).FirstOrDefault();
            result.Add(new CallSummary(call.Op, o.Ok, o.Errno?.ToString(), o.Handle, hf, users, o.Domain, df, o.Pasid, response,
                rounds, quieted.Length == 0 ? null : quieted, freed, Text(o, call, hf, users, df, i, calls, rounds, quieted, freed), o.Rule, o.Bug));
        }
        return result;
    }

    private static string Text(CallOutcome o, KernelCall call, int? hf, int? users, int? df, int i, IReadOnlyList<SourcedKernelCall> calls,
        int rounds, string quieted, int? freed)
    {
        if (o.Bug is not null) return $"kernel BUG: {o.Bug}";
        if (!o.Ok) return o.Errno is { } e ? $"-{e}" : $"rejected ({o.Reason})";
        string From(int? from) => from is not int f ? "" : f == i ? " new" : $" as {Where(calls, f)}";
        var parts = new List<string>();
        switch (call)
        {
            case Bind:
                parts.Add($"OK {o.Handle}{From(hf)} users {users}");
                if (o.Domain is not null) parts.Add($"domain {o.Domain}{From(df)}");
                parts.Add($"pasid {o.Pasid}");
                break;
            case Unbind:
                parts.Add(users == 0 ? $"OK {o.Handle}{From(hf)} freed" : $"OK {o.Handle}{From(hf)} users {users}");
                break;
            case PageFault:
                parts.Add(o.Response == "ABORTED" ? "access aborted (no response)" : o.Response ?? (o.Dma is null ? "queued" : o.Dma == "fault" ? "DMA fault" : "translated"));
                break;
            default:
                parts.Add("OK");
                break;
        }
        if (rounds > 0) parts.Add($"{rounds} invalidation{(rounds == 1 ? "" : "s")}");
        if (quieted.Length > 0) parts.Add($"entries {quieted}");
        if (freed is int p) parts.Add($"PASID {p} freed");
        return string.Join(", ", parts);
    }

    /// <summary>How a call is named in outputs: its line, else its seq, else its position.</summary>
    public static string Where(IReadOnlyList<SourcedKernelCall> calls, int index) =>
        calls[index].Line is int l ? $"line {l}" : calls[index].Seq is long s ? $"seq {s}" : $"call {index + 1}";
}
