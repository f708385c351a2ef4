using Sva.Domain.Json;

namespace Sva.Domain;

/// <summary>
/// What one call answered, read off the events it produced and the state after them. <see cref="Rule"/>: the kernel
/// rule that decided it (from the first event of the call that names one); <see cref="Bug"/>: the site of a kernel
/// BUG the call hit (it then has no errno); <see cref="TaintedAt"/>: the seq of the session's first BUG, if any.
/// </summary>
public sealed record CallOutcome(
    string Op,
    bool Ok,
    Errno? Errno,
    string? Reason,
    string? Name,
    string? Handle,
    string? Domain,
    int? Pasid,
    string? Response,
    string? Dma = null,
    KernelRule? Rule = null,
    string? Bug = null,
    long? TaintedAt = null,
    int? WireCode = null,
    string? Handled = null)
{
    public static CallOutcome Of(KernelCall call, IReadOnlyList<SvaEvent> events, SvaState after)
    {
        var o = Core(call, events, after);
        return o with { Rule = KernelRuleTable.Find(RuleIdOf(call, events)), TaintedAt = after.TaintedAt };
    }

    /// <summary>The id of the rule that decided a call, from the call and all the events it produced (no state needed).</summary>
    public static string? RuleIdOf(KernelCall call, IReadOnlyList<SvaEvent> events) =>
        RuleIdOf(call, events.Any(e => IsFailure(e.GetType())), events.OfType<IRuled>().Select(e => e.Rule).FirstOrDefault(r => r is not null));

    /// <summary>The same from the call's events as stored: their type names and the <c>rule</c> field of their data (provenance
    /// reads only those, not whole events). Only events that carry a rule (<see cref="IRuled"/>) count.</summary>
    public static string? RuleIdOf(KernelCall call, IReadOnlyList<string> types, IReadOnlyList<string?> rules)
    {
        var failed = false;
        string? first = null;
        for (var i = 0; i < types.Count; i++)
        {
            if (!EventTypes.TryGetType(types[i], out var t)) continue;
            failed |= IsFailure(t);
            if (first is null && i < rules.Count && rules[i] is { } r && typeof(IRuled).IsAssignableFrom(t)) first = r;
        }
        return RuleIdOf(call, failed, first);
    }

    private static bool IsFailure(Type t) => t == typeof(BindFailed) || t == typeof(UnbindRejected) || t == typeof(CallFailed) || t == typeof(KernelBug);

    private static string? RuleIdOf(KernelCall call, bool failed, string? firstRule) =>
        call is MmDrop && !failed ? "mm.drop"
            : firstRule
              ?? call switch
              {
                  ProbeDevice or CreateMm or MapVma => "sim.ok",
                  AllocDomain => "domain.alloc",
                  MapIova or UnmapIova => "domain.map",
                  InvalidateRange => "inv.no-notifier",
                  _ => null,
              };

    private static CallOutcome Core(KernelCall call, IReadOnlyList<SvaEvent> events, SvaState after)
    {
        string? name = (call as Bind)?.Name;
        foreach (var e in events)
        {
            switch (e)
            {
                case BindFailed f: return new(call.Op, false, f.Errno, f.Reason, name, null, null, null, null);
                case UnbindRejected u: return new(call.Op, false, null, u.Reason, null, u.Handle, null, null, null);
                case CallFailed f: return new(call.Op, false, f.Errno, f.Reason, null, null, null, null, null);
                case KernelBug k: return new(call.Op, false, null, k.Reason, name, null, null, null, null, Bug: k.Site);
            }
        }
        switch (call)
        {
            case Bind:
            {
                var id = events.OfType<HandleIssued>().Select(h => h.Handle)
                    .Concat(events.OfType<HandleShared>().Select(h => h.Handle)).First();
                var h = after.HandleById(id)!;
                return new(call.Op, true, null, null, name, h.Id, h.Domain, h.Pasid, null);
            }
            case Unbind u:
            {
                var id = after.HandleNames.TryGetValue(u.Handle, out var n) ? n : u.Handle;
                return new(call.Op, true, null, null, null, id, null, null, null);
            }
            case PageFault:
            {
                var aborted = events.OfType<AccessAborted>().LastOrDefault();
                if (aborted is not null) return new(call.Op, true, null, aborted.Reason, null, null, null, aborted.Pasid, "ABORTED");
                var sent = events.OfType<PageResponseSent>().LastOrDefault();
                if (sent is not null) return new(call.Op, true, null, sent.Reason, null, null, null, sent.Pasid, sent.Code.ToString(), WireCode: sent.WireCode);
                var handled = events.OfType<PageRequestHandled>().LastOrDefault();
                if (handled is not null) return new(call.Op, true, null, handled.Reason, null, null, null, handled.Pasid, null, Handled: handled.Result.ToString());
                var withheld = events.OfType<PageResponseWithheld>().LastOrDefault();
                if (withheld is not null) return new(call.Op, true, null, withheld.Reason, null, null, null, withheld.Pasid, "NONE");
                var dma = events.OfType<DmaFaultReported>().LastOrDefault();
                if (dma is not null) return new(call.Op, true, null, dma.Reason, null, null, dma.Domain, dma.Pasid, null, "fault");
                var translated = events.OfType<DmaTranslated>().LastOrDefault();
                if (translated is not null)
                    return new(call.Op, true, null, $"{translated.Domain} translates {SvaJson.Hex(translated.Address)} to {SvaJson.Hex(translated.Paddr)}",
                        null, null, translated.Domain, translated.Pasid, null, "translated");
                return new(call.Op, true, null, "queued until the group's last request", null, null, null, (call as PageFault)!.Pasid, null);
            }
            case AllocDomain:
                return new(call.Op, true, null, null, null, null, events.OfType<DomainAllocated>().First().Domain, null, null);
            default:
                return new(call.Op, true, null, null, null, null, null, null, null);
        }
    }

    /// <summary>One line for a terminal: <c>bind h1 -> H1 D1 pasid 1</c>, <c>bind -> -EBUSY (reason)</c>; a tainted session says so.</summary>
    public string Describe() => TaintedAt is long t ? $"{DescribeOutcome()} [tainted since seq {t}]" : DescribeOutcome();

    /// <summary>The rule on one line: <c>iommu_sva_bind_device(), 092edaddb660 — says</c>.</summary>
    public string? Explain() => Rule is null ? null : $"{Rule.Short} — {Rule.Says}";

    private string DescribeOutcome()
    {
        if (Bug is not null) return $"kernel BUG: {Bug} ({Reason})";
        if (!Ok) return $"-{Errno?.ToString() ?? "ERR"}{(Reason is null ? "" : $" ({Reason})")}".Replace("-ERR", "rejected");
        return Op switch
        {
            "bind" => $"{Handle} domain {Domain ?? "-"} pasid {Pasid}",
            "unbind" => $"{Handle} released",
            "fault" => Dma switch
            {
                "fault" => $"DMA fault: {Reason}",
                "translated" => $"DMA translated: {Reason}",
                _ => Response switch
                {
                    null when Handled is not null => $"handled in the driver: {Handled}, no response (not last in its group) ({Reason})",
                    null => "queued (not last)",
                    "ABORTED" => $"access aborted by the SMMU, no page response ({Reason})",
                    // D17: VT-d/AMD put the core's FAILURE (2) on the wire where PCIe's Response Failure is 0xF
                    "FAILURE" when WireCode == (int)PageResponseCode.FAILURE => $"{Response}, sent as wire code 2 ({Reason})",
                    _ => $"{Response} ({Reason})",
                },
            },
            "domain" => Domain ?? "ok",
            _ => "ok",
        };
    }
}
