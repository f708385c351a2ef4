using Sva.Domain;

namespace Sva.Projections;

/// <summary>A read-model row: its table, its key within the session, and its column values in table order.</summary>
public sealed record Row(string Table, string Key, object?[] Values)
{
    public override string ToString() => $"{Table}[{Key}]({string.Join(", ", Values.Select(v => v?.ToString() ?? "null"))})";
}

/// <summary>
/// The read model as a function of the Domain state: the one definition of every projection row.
/// The daemon's projection, its rebuild and `projections verify` all go through it, so they cannot disagree.
/// </summary>
public static class SvaRows
{
    /// <summary>Every row of the state.</summary>
    public static IEnumerable<Row> All(SvaState s)
    {
        foreach (var d in s.Devices.Values)
        {
            yield return DeviceRow(d);
            foreach (var p in d.PasidTable.Values) yield return PasidRow(d.Id, p);
        }
        foreach (var d in s.Domains.Values) yield return DomainRow(d);
        foreach (var m in s.Mms.Values) yield return MmRow(m);
        foreach (var h in s.Handles.Values) yield return HandleRow(h);
    }

    /// <summary>The row at a key, or null when the object no longer exists.</summary>
    public static Row? Lookup(SvaState s, string table, string key)
    {
        switch (table)
        {
            case "proj_devices": return s.Devices.TryGetValue(key, out var d) ? DeviceRow(d) : null;
            case "proj_pasid_table":
            {
                var slash = key.LastIndexOf('/');
                var dev = key[..slash];
                var pasid = int.Parse(key[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                return s.Devices.TryGetValue(dev, out var dd) && dd.PasidTable.TryGetValue(pasid, out var e) ? PasidRow(dev, e) : null;
            }
            case "proj_domains": return s.DomainById(key) is { } dom ? DomainRow(dom) : null;
            case "proj_mms": return s.Mms.TryGetValue(key, out var m) ? MmRow(m) : null;
            case "proj_handles": return s.HandleById(key) is { } h ? HandleRow(h) : null;
            default: throw new ArgumentException($"unknown table {table}");
        }
    }

    /// <summary>
    /// The (table, key) pairs an event may change. Every event names its objects; for the few that
    /// change objects they do not name (an mm's refcount when its domain goes) the state before the
    /// event is consulted.
    /// </summary>
    public static IEnumerable<(string Table, string Key)> Touched(SvaState before, SvaEvent e)
    {
        switch (e)
        {
            case DeviceProbed d: yield return ("proj_devices", d.Device); break;
            case MmCreated m: yield return ("proj_mms", m.Mm); break;
            case PasidAllocated p: yield return ("proj_mms", p.Mm); break;
            case PasidFreed p: yield return ("proj_mms", p.Mm); break;
            case SvaDomainAllocated d: yield return ("proj_domains", d.Domain); yield return ("proj_mms", d.Mm); break;
            case DomainAllocated d: yield return ("proj_domains", d.Domain); break;
            case DomainAttached a:
                yield return ("proj_domains", a.Domain);
                if (a.Pasid is int ap) foreach (var dev in a.Devices) yield return ("proj_pasid_table", $"{dev}/{ap}");
                break;
            case DomainDetached a:
                yield return ("proj_domains", a.Domain);
                if (a.Pasid is int dp) foreach (var dev in a.Devices) yield return ("proj_pasid_table", $"{dev}/{dp}");
                break;
            case DomainUsersChanged u: yield return ("proj_domains", u.Domain); break;
            case DomainFreed f:
                yield return ("proj_domains", f.Domain);
                if (before.DomainById(f.Domain)?.Mm is { } fm) yield return ("proj_mms", fm);
                break;
            case HandleIssued h: yield return ("proj_handles", h.Handle); break;
            case HandleShared h: yield return ("proj_handles", h.Handle); break;
            case HandleReleased h: yield return ("proj_handles", h.Handle); break;
            case HandleFreed h: yield return ("proj_handles", h.Handle); break;
            case ContextDescriptorAllocated c: yield return ("proj_mms", c.Mm); break;
            case ContextDescriptorFreed c: yield return ("proj_mms", c.Mm); break;
            case PasidEntryWritten w: yield return ("proj_pasid_table", $"{w.Device}/{w.Pasid}"); break;
            case PasidEntryCleared c: yield return ("proj_pasid_table", $"{c.Device}/{c.Pasid}"); break;
            case PasidEntryQuieted q: yield return ("proj_pasid_table", $"{q.Device}/{q.Pasid}"); break;
            case MmReleased r: yield return ("proj_mms", r.Mm); break;
            case MmDropped d: yield return ("proj_mms", d.Mm); break;
            case MmFreed f: yield return ("proj_mms", f.Mm); break;
        }
    }

    private static Row DeviceRow(DeviceObj d) => new("proj_devices", d.Id, [d.Id, d.MaxPasids, d.Group, d.Sva, d.Iopf]);
    private static Row PasidRow(string dev, PasidEntry p) => new("proj_pasid_table", $"{dev}/{p.Pasid}", [dev, p.Pasid, p.Domain, p.Mm, p.Mode]);
    private static Row DomainRow(DomainObj d) => new("proj_domains", d.Id, [d.Id, d.Type, d.Name, d.Mm, d.Users, d.Asid]);
    private static Row MmRow(MmObj m) => new("proj_mms", m.Id, [m.Id, m.Pasid, StateView.MmStateName(m), m.MmUsers, m.MmCount, m.Inferred]);
    private static Row HandleRow(HandleObj h) => new("proj_handles", h.Id, [h.Id, h.Device, h.Mm, h.Domain, h.Pasid, h.Users]);
}
