using System.CommandLine;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

public static class StateVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var at = new Option<long?>("--at") { Description = "The seq to show the system at (default: the session's last event)" };
        var atTime = new Option<string?>("--at-time") { Description = "Show the system as of this time: the last event whose recorded_at (the time its append committed) is at or before it. An ISO 8601 timestamp; without an offset it is UTC" };
        var noSnap = new Option<bool>("--no-snapshots") { Description = "Fold from event 1 instead of starting at the nearest snapshot (same answer, slower)" };
        var blame = new Option<bool>("--blame") { Description = "Also show, for every row (device, PASID table entry, pending page requests, mm, domain, handle, PASID of the allocator), the event that last changed it: its seq, call, file:line and the rule that decided the call (--json: set_at {seq, line, source, op, rule} on every object)" };
        var cmd = new Command("state", "The whole simulated system of a session at one seq: devices with their PASID tables, mms, domains, handles, the PASID allocator")
        {
            session, at, atTime, noSnap, blame, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            Sva.EventStore.StartTrace.Mark("session read");
            if (pr.GetValue(at) is not null && pr.GetValue(atTime) is not null) throw new UserInputException("give either --at or --at-time, not both");
            var seq = pr.GetValue(at) ?? info.Version;
            if (pr.GetValue(atTime) is { } timeText)
            {
                var time = ParseTime(timeText, "--at-time");
                seq = await host.Store.SeqAtTimeAsync(name, time, ct);
                Output.Info($"--at-time {time:O}: seq {seq} (the last event recorded at or before it)");
            }
            if (seq < 0 || seq > info.Version)
                throw new UserInputException($"--at {seq}: session '{name}' has seqs 0..{info.Version}");
            var blamed = pr.GetValue(blame);
            var loaded = blamed
                ? await Blame.LoadAsync(host.Store, name, seq, !pr.GetValue(noSnap), ct)
                : await TimeTravel.LoadAsync(host.Store, name, seq, !pr.GetValue(noSnap), ct);
            var state = loaded.State;
            Sva.EventStore.StartTrace.Mark("state loaded (snapshot + fold)");
            if (pr.GetValue(common.Verbose))
                Output.Info(loaded.SnapshotSeq > 0 ? $"from the snapshot at seq {loaded.SnapshotSeq} + {loaded.EventsFolded} events" : $"folded {loaded.EventsFolded} events from seq 1");
            var view = StateView.Of(name, info.Kernel, state);
            Sva.EventStore.StartTrace.Mark("view built");
            IReadOnlyDictionary<long, SetAtInfo>? setAt = null;
            if (blamed) setAt = await Blame.ResolveAsync(host.Store, name, Blame.SetAtOfRows(state).Values, loaded.SetAtEvents, ct);
            if (pr.GetValue(common.Json))
            {
                var json = view.ToJson();
                if (setAt is not null) Blame.Annotate(json, state, s => setAt[s].ToJson());
                Output.JsonDocument(json);
            }
            else if (setAt is not null) RenderBlamed(view, state, setAt);
            else Render(view);
            Sva.EventStore.StartTrace.Mark("rendered");
            return 0;
        }));
        return cmd;
    }

    /// <summary>An ISO 8601 time; without an offset it is taken as UTC.</summary>
    public static DateTimeOffset ParseTime(string text, string option)
    {
        if (DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AllowWhiteSpaces, out var t))
            return t;
        throw new UserInputException($"{option} '{Sva.Formats.InputLimits.Quote(text)}': not a time; expected ISO 8601 such as 2026-11-21T15:49:34Z or 2026-11-21 15:49:34.5+01:00");
    }

    /// <summary>The tables with, per row, the event that last changed it (seq, call, file:line, rule).</summary>
    public static void RenderBlamed(StateView v, SvaState s, IReadOnlyDictionary<long, SetAtInfo> at)
    {
        string? By(RowRef r) => s.SetAt.TryGetValue(r.Key, out var seq) && at.TryGetValue(seq, out var i) ? i.Short() : null;
        var c = Output.Console;
        c.WriteLine($"session {v.Session}  kernel {v.Kernel}  at seq {v.Seq}{(v.TaintedAt is long t ? $"  TAINTED since seq {t}: kernel BUG {v.TaintSite}" : "")}");
        c.WriteLine("set at: seq call file:line rule (the event that last changed the row)");
        var dev = Output.Table("device", "driver", "group", "sva", "iopf", "device set at", "pending", "pending set at", "pasid", "domain", "mm", "mode", "entry set at");
        foreach (var d in v.Devices)
        {
            object?[] head = [d.Id, d.Driver, d.Group, d.Sva ? "on" : "off", d.Iopf ? "on" : "off", By(RowRef.Device(d.Id)), d.PendingPageRequests, By(RowRef.Pending(d.Id))];
            if (d.Pasids.Count == 0) dev.Row([.. head, null, null, null, null, null]);
            foreach (var p in d.Pasids) dev.Row([.. head, p.Pasid, p.Domain, p.Mm, p.Mode, By(RowRef.Entry(d.Id, p.Pasid))]);
        }
        c.Write(new Rule("devices and PASID tables").LeftJustified());
        c.Write(dev);
        var mms = Output.Table("mm", "pasid", "state", "mm_users", "mm_count", "set at");
        foreach (var m in v.Mms) mms.Row(m.Id + (m.Inferred ? " (inferred)" : ""), m.Pasid, m.State, m.MmUsers, m.MmCount, By(RowRef.Mm(m.Id)));
        c.Write(new Rule("mms").LeftJustified());
        c.Write(mms);
        var doms = Output.Table("domain", "type", "mm", "users", "asid", "attached", "set at");
        foreach (var d in v.Domains) doms.Row(d.Name is null ? d.Id : $"{d.Id} ({d.Name})", d.Type, d.Mm, d.Users, d.Asid, string.Join(" ", d.Attached), By(RowRef.Domain(d.Id)));
        c.Write(new Rule("domains").LeftJustified());
        c.Write(doms);
        var hs = Output.Table("handle", "device", "mm", "domain", "pasid", "users", "labels", "set at");
        foreach (var h in v.Handles) hs.Row(h.Id, h.Device, h.Mm, h.Domain, h.Pasid, h.Users, string.Join(",", h.Names), By(RowRef.Handle(h.Id)));
        c.Write(new Rule("handles").LeftJustified());
        c.Write(hs);
        var alloc = Output.Table("pasid", "mm", "set at");
        foreach (var p in v.PasidAllocator) alloc.Row(p.Pasid, p.Mm, By(RowRef.Allocation(p.Pasid)));
        c.Write(new Rule("PASID allocator").LeftJustified());
        c.Write(alloc);
    }

    public static void Render(StateView v)
    {
        var c = Output.Console;
        c.WriteLine($"session {v.Session}  kernel {v.Kernel}  at seq {v.Seq}{(v.TaintedAt is long t ? $"  TAINTED since seq {t}: kernel BUG {v.TaintSite}" : "")}");
        var dev = Output.Table("device", "driver", "max_pasids", "group", "sva", "iopf", "pasid", "domain", "mm", "mode");
        foreach (var d in v.Devices)
        {
            if (d.Pasids.Count == 0) dev.Row(d.Id, d.Driver, d.MaxPasids, d.Group, d.Sva ? "on" : "off", d.Iopf ? "on" : "off", null, null, null, null);
            foreach (var p in d.Pasids) dev.Row(d.Id, d.Driver, d.MaxPasids, d.Group, d.Sva ? "on" : "off", d.Iopf ? "on" : "off", p.Pasid, p.Domain, p.Mm, p.Mode);
        }
        c.Write(new Rule("devices and PASID tables").LeftJustified());
        c.Write(dev);
        var mms = Output.Table("mm", "pasid", "state", "mm_users", "mm_count");
        foreach (var m in v.Mms) mms.Row(m.Id + (m.Inferred ? " (inferred)" : ""), m.Pasid, m.State, m.MmUsers, m.MmCount);
        c.Write(new Rule("mms").LeftJustified());
        c.Write(mms);
        var doms = Output.Table("domain", "type", "mm", "users", "asid", "attached");
        foreach (var d in v.Domains) doms.Row(d.Name is null ? d.Id : $"{d.Id} ({d.Name})", d.Type, d.Mm, d.Users, d.Asid, string.Join(" ", d.Attached));
        c.Write(new Rule("domains").LeftJustified());
        c.Write(doms);
        var hs = Output.Table("handle", "device", "mm", "domain", "pasid", "users", "labels");
        foreach (var h in v.Handles) hs.Row(h.Id, h.Device, h.Mm, h.Domain, h.Pasid, h.Users, string.Join(",", h.Names));
        c.Write(new Rule("handles").LeftJustified());
        c.Write(hs);
    }
}
