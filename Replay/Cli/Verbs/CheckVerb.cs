using System.CommandLine;
using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.Projections;

namespace Sva.Replay.Verbs;

/// <summary><c>sva check SESSION [--json]</c>: the invariant checks of <see cref="Checks"/> over a recorded session.</summary>
public static class CheckVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var cmd = new Command("check", """
            Invariant checks over a recorded session; exit 0 when there is no finding, 1 otherwise. Findings:
              leak                            an mm dropped by its process but still held at the end (handles never
                                              unbound, SVA domains, Arm CD): its PASID and domains are never freed
              use-after-free                  unbind of a handle an earlier unbind freed; bind of a dropped mm
              refcount-underflow              domain users, notifier refs, mm_count or mm_users below 0
              success-after-exit              a page response SUCCESS for an mm whose process exited
              dma-after-unmap                 a DMA fault on an IOVA unmapped earlier (names the unmap's seq)
              attach-past-max-pasids          a PASID attached on a device whose max_pasids does not cover it
              pasid-reused-with-queued-fault  a PASID reallocated while a request of its previous owner is queued
              conformance                     (imported captures) the capture shows an outcome the simulator, under the
                                              session's kernel version, did not give: both lines are named
            Each finding has the seq where it starts, the script line when the event came from a file, and the
            seqs of the events involved. --json: one JSON object per line.
            """)
        {
            session, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var events = new List<(long, SvaEvent)>();
            var sources = new Dictionary<long, string>();
            await foreach (var e in host.Store.ReadSessionAsync(name, 1, long.MaxValue, ct))
            {
                events.Add((e.Seq, EventCodec.Decode(e)));
                if (EventCodec.Metadata(e).Source is { } src)
                    sources[e.Seq] = src;
            }
            // Kernel invariants, then conformance of an imported capture: what the machine answered vs the simulator.
            var findings = Checks.Run(events).ToList();
            findings.AddRange(Sva.Formats.Import.Conformance.Check(events.Select(e => new Sva.Formats.Import.SeqEvent(e.Item1, e.Item2, sources.GetValueOrDefault(e.Item1))))
                .Select(c => new Finding(c.Kind, c.Seq, c.Message + (c.SimulatedSeq is { } sim ? $" (simulated at seq {sim})" : ""),
                    c.SimulatedSeq is { } ss ? [ss] : [])));
            findings = findings.OrderBy(f => f.Seq).ToList();
            string? Source(long seq) => sources.TryGetValue(seq, out var s) ? s : null;
            if (pr.GetValue(common.Json))
            {
                foreach (var f in findings)
                    Output.JsonLine(new JsonObject
                    {
                        ["session"] = name,
                        ["kind"] = f.Kind,
                        ["seq"] = f.Seq,
                        ["line"] = SourceLine.Of(Source(f.Seq)),
                        ["source"] = Source(f.Seq),
                        ["message"] = f.Message,
                        ["involved"] = new JsonArray(f.Involved.Select(s => (JsonNode)new JsonObject
                        {
                            ["seq"] = s,
                            ["line"] = SourceLine.Of(Source(s)),
                        }).ToArray()),
                    });
            }
            else
            {
                Output.Info($"session {name} (kernel {info.Kernel}): {events.Count} events, {findings.Count} finding{(findings.Count == 1 ? "" : "s")}");
                if (findings.Count > 0)
                {
                    var t = Output.Table("seq", "line", "kind", "message", "involved (seq/line)");
                    foreach (var f in findings)
                        t.Row(f.Seq, SourceLine.Of(Source(f.Seq)), f.Kind, f.Message,
                            string.Join(" ", f.Involved.Select(s => SourceLine.Of(Source(s)) is int l ? $"{s}/{l}" : $"{s}")));
                    Output.Console.Write(t);
                }
            }
            return findings.Count == 0 ? 0 : 1;
        }));
        return cmd;
    }
}
