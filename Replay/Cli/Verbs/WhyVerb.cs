using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

/// <summary>
/// <c>sva why SESSION [--at N] (--device BDF --pasid P | --device BDF | --mm M | --domain D | --handle H)</c>: the causal
/// chain behind one object's value at a seq, newest first: the event that set it, then the events that last changed
/// the objects it refers to (its domain, mm, PASID allocation, device, handles), recursively.
/// </summary>
public static class WhyVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var at = new Option<long?>("--at") { Description = "The seq to ask at (default: the session's last event)" };
        var device = new Option<string?>("--device") { Description = "A device (BDF); with --pasid, its PASID table entry" };
        var pasid = new Option<int?>("--pasid") { Description = "With --device: the PASID table entry of that device" };
        var mm = new Option<string?>("--mm") { Description = "An mm" };
        var domain = new Option<string?>("--domain") { Description = "A domain: its id (D1) or its script name" };
        var handle = new Option<string?>("--handle") { Description = "A handle: its id (H1) or its script label" };
        var cmd = new Command("why", "Why an object has its value at a seq: the event that set it (seq, call, file:line, rule), then recursively the events that last changed the objects it refers to (domain, mm, PASID allocation, device), newest first. An object that does not exist at that seq is exit 2, with the last seq at which it existed")
        {
            session, at, device, pasid, mm, domain, handle, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var seq = pr.GetValue(at) ?? info.Version;
            if (seq < 0 || seq > info.Version) throw new UserInputException($"--at {seq}: session '{name}' has seqs 0..{info.Version}");
            var (dev, p, m, d, h) = (pr.GetValue(device), pr.GetValue(pasid), pr.GetValue(mm), pr.GetValue(domain), pr.GetValue(handle));
            var chosen = new[] { dev is not null, m is not null, d is not null, h is not null }.Count(x => x);
            if (chosen != 1) throw new UserInputException("give exactly one object: --device BDF [--pasid P], --mm M, --domain D or --handle H");
            if (p is not null && dev is null) throw new UserInputException("--pasid needs --device (the device whose PASID table entry to explain)");
            if (p is < 0) throw new UserInputException($"--pasid {p}: expected 0..{(1 << 20) - 1}");

            var state = (await Blame.LoadAsync(host.Store, name, seq, true, ct)).State;
            var row = dev is not null ? (p is int pp ? RowRef.Entry(dev, pp) : RowRef.Device(dev))
                : m is not null ? RowRef.Mm(m)
                : d is not null ? RowRef.Domain(state.DomainNames.TryGetValue(d, out var did) ? did : d)
                : RowRef.Handle(state.HandleNames.TryGetValue(h!, out var hid) ? hid : h!);
            if (!Provenance.Exists(state, row))
            {
                var last = await Blame.LastExistedAsync(host.Store, name, state, row, ct);
                throw new UserInputException($"{row.Describe()} does not exist at seq {seq} of session '{name}'; "
                    + (last is long l ? $"it last existed at seq {l.ToString(CultureInfo.InvariantCulture)}" : $"it never existed up to seq {seq}"));
            }
            var steps = await Blame.WhyAsync(host.Store, name, state, row, ct);
            if (pr.GetValue(common.Json))
            {
                foreach (var s in steps) Output.JsonLine(s.ToJson());
                return 0;
            }
            var c = Output.Console;
            c.WriteLine($"why {row.Describe()} at seq {seq} of session {name}:");
            foreach (var s in steps)
            {
                var a = s.At;
                c.WriteLine($"  seq {a.Seq}  {a.Type}  {a.Op ?? "-"}  {a.Source ?? "-"}  rule {a.Rule ?? "-"}");
                c.WriteLine($"      set {string.Join(", ", s.Rows.Select(r => r.Describe()))}: {Sva.Domain.Json.SvaJson.Serialize(a.Event)}");
            }
            return 0;
        }));
        return cmd;
    }
}
