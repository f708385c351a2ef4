using System.CommandLine;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections;

namespace Sva.Replay.Verbs;

public static class StateVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var at = new Option<long?>("--at") { Description = "The seq to show the system at (default: the session's last event)" };
        var noSnap = new Option<bool>("--no-snapshots") { Description = "Fold from event 1 instead of starting at the nearest snapshot (same answer, slower)" };
        var cmd = new Command("state", "The whole simulated system of a session at one seq: devices with their PASID tables, mms, domains, handles, the PASID allocator")
        {
            session, at, noSnap, common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var seq = pr.GetValue(at) ?? info.Version;
            if (seq < 0 || seq > info.Version)
                throw new UserInputException($"--at {seq}: session '{name}' has seqs 0..{info.Version}");
            var state = await StateLoader.LoadAsync(host.Store, name, seq, !pr.GetValue(noSnap), ct);
            var view = StateView.Of(name, info.Kernel, state);
            if (pr.GetValue(common.Json)) Output.JsonDocument(view.ToJson());
            else Render(view);
            return 0;
        }));
        return cmd;
    }

    public static void Render(StateView v)
    {
        var c = Output.Console;
        c.WriteLine($"session {v.Session}  kernel {v.Kernel}  at seq {v.Seq}");
        var dev = Output.Table("device", "max_pasids", "group", "sva", "iopf", "pasid", "domain", "mm", "mode");
        foreach (var d in v.Devices)
        {
            if (d.Pasids.Count == 0) dev.Row(d.Id, d.MaxPasids, d.Group, d.Sva ? "on" : "off", d.Iopf ? "on" : "off", null, null, null, null);
            foreach (var p in d.Pasids) dev.Row(d.Id, d.MaxPasids, d.Group, d.Sva ? "on" : "off", d.Iopf ? "on" : "off", p.Pasid, p.Domain, p.Mm, p.Mode);
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
