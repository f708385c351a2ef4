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
        var r = new Replayer(version);
        var result = new List<CallSummary>(calls.Count);
        for (var i = 0; i < calls.Count; i++) result.Add(r.Next(calls[i], f => Where(calls, f)));
        return result;
    }

    /// <summary>
    /// One version's replay, call after call: what <see cref="Replay"/> does, without holding the calls (a corpus
    /// streams them). <c>where</c> names an earlier call (by index) for "as line N".
    /// </summary>
    public sealed class Replayer(KernelVersion version)
    {
        private readonly SvaState state = new();
        private readonly Dictionary<string, int> handleFrom = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> domainFrom = new(StringComparer.Ordinal);
        private int i = -1;

        public CallSummary Next(SourcedKernelCall sourced, Func<int, string> where)
        {
            i++;
            var call = sourced.Call;
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
            return new CallSummary(call.Op, o.Ok, o.Errno?.ToString(), o.Handle, hf, users, o.Domain, df, o.Pasid, response,
                rounds, quieted.Length == 0 ? null : quieted, freed, Text(o, call, hf, users, df, i, where, rounds, quieted, freed), o.Rule, o.Bug);
        }
    }

    private static string Text(CallOutcome o, KernelCall call, int? hf, int? users, int? df, int i, Func<int, string> where,
        int rounds, string quieted, int? freed)
    {
        if (o.Bug is not null) return $"kernel BUG: {o.Bug}";
        if (!o.Ok) return o.Errno is { } e ? $"-{e}" : $"rejected ({o.Reason})";
        string From(int? from) => from is not int f ? "" : f == i ? " new" : $" as {where(f)}";
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

/// <summary>One call under every version of a matrix: its outcome per version and the versions at which it changes.</summary>
public sealed record MatrixRow(int Index, SourcedKernelCall Call, IReadOnlyList<CallSummary> Outcomes, IReadOnlyList<int> ChangesAt)
{
    public bool Changes => ChangesAt.Count > 0;
}

/// <summary>
/// The version matrix ("which release changed this?"): the same calls re-decided from an empty machine under each
/// version. A version's outcome is compared with its predecessor's: the previous built-in version, or for a what-if
/// (kernel file) its parent when the parent is in the matrix.
/// </summary>
public sealed record VersionMatrix(IReadOnlyList<KernelVersion> Versions, IReadOnlyList<int?> Previous, IReadOnlyList<MatrixRow> Rows)
{
    public static VersionMatrix Build(IReadOnlyList<KernelVersion> versions, IReadOnlyList<SourcedKernelCall> calls)
    {
        var previous = versions.Select((v, i) =>
        {
            if (i == 0) return (int?)null;
            if (v.Origin is not null && v.Parent is { } p)
            {
                var at = versions.Take(i).ToList().FindLastIndex(x => x.Name == p);
                if (at >= 0) return at;
            }
            return i - 1;
        }).ToList();
        var replays = new List<CallSummary>[versions.Count];
        Parallel.For(0, versions.Count, i => replays[i] = Differential.Replay(versions[i], calls));
        var rows = new List<MatrixRow>(calls.Count);
        for (var c = 0; c < calls.Count; c++)
        {
            var outcomes = replays.Select(r => r[c]).ToList();
            var changes = new List<int>();
            for (var i = 1; i < versions.Count; i++)
                if (previous[i] is int p && !outcomes[i].SameAs(outcomes[p])) changes.Add(i);
            rows.Add(new MatrixRow(c, calls[c], outcomes, changes));
        }
        return new VersionMatrix(versions, previous, rows);
    }

    public JsonObject RowJson(MatrixRow r)
    {
        var outcomes = new JsonObject();
        for (var i = 0; i < Versions.Count; i++)
        {
            var o = r.Outcomes[i];
            outcomes[Versions[i].Name] = new JsonObject
            {
                ["ok"] = o.Ok, ["errno"] = o.Errno, ["response"] = o.Response, ["handle"] = o.Handle, ["handle_from"] = o.HandleFrom,
                ["handle_users"] = o.HandleUsers, ["pasid"] = o.Pasid, ["bug"] = o.Bug, ["text"] = o.Text, ["rule"] = o.Rule?.ToJson(),
            };
        }
        return new JsonObject
        {
            ["index"] = r.Index,
            ["line"] = r.Call.Line,
            ["seq"] = r.Call.Seq,
            ["source"] = r.Call.Source,
            ["op"] = r.Call.Call.Op,
            ["outcomes"] = outcomes,
            ["changes_at"] = new JsonArray(r.ChangesAt.Select(i => (JsonNode)JsonValue.Create(Versions[i].Name)!).ToArray()),
        };
    }
}

/// <summary>
/// Two versions replayed call after call (corpus triage): only the count of calls that differ and the first one are
/// kept, so memory does not grow with the session (16 bytes a call name earlier calls for "as line N").
/// </summary>
public sealed class Lockstep(KernelVersion a, KernelVersion b)
{
    private readonly Differential.Replayer ra = new(a), rb = new(b);
    private readonly List<(int? Line, long? Seq)> where = new();

    public int Calls { get; private set; }
    public int Differing { get; private set; }
    public SourcedKernelCall? First { get; private set; }
    public CallSummary? FirstA { get; private set; }
    public CallSummary? FirstB { get; private set; }

    /// <summary>Decides <paramref name="call"/> under both; true when the outcomes are the same.</summary>
    public bool Feed(SourcedKernelCall call)
    {
        where.Add((call.Line, call.Seq));
        var x = ra.Next(call, Where);
        var y = rb.Next(call, Where);
        Calls++;
        if (x.SameAs(y)) return true;
        Differing++;
        if (First is null) (First, FirstA, FirstB) = (call, x, y);
        return false;
    }

    private string Where(int f) => where[f].Line is int l ? $"line {l}" : where[f].Seq is long s ? $"seq {s}" : $"call {f + 1}";
}
