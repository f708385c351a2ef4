using System.Text.Json.Nodes;

namespace Sva.Domain;

/// <summary>The whole system at one point, as users read it (sva state --json). Ordered, deterministic.</summary>
public sealed record StateView(
    string Session,
    long Seq,
    string Kernel,
    IReadOnlyList<DeviceView> Devices,
    IReadOnlyList<MmView> Mms,
    IReadOnlyList<DomainView> Domains,
    IReadOnlyList<HandleView> Handles,
    IReadOnlyList<PasidView> PasidAllocator,
    long? TaintedAt = null,
    string? TaintSite = null)
{
    public static StateView Of(string session, string kernel, SvaState s) => new(
        session,
        s.Seq,
        kernel,
        s.Devices.Values.Select(d => new DeviceView(
            d.Id, d.MaxPasids, d.Group, d.Sva, d.Iopf,
            d.PasidTable.Values.Select(p => new DevicePasidView(p.Pasid, p.Domain, p.Mm, p.Mode)).ToList(),
            d.Partial.Count, d.Driver)).ToList(),
        s.Mms.Values.Select(m => new MmView(m.Id, m.Pasid, MmStateName(m), m.MmUsers, m.MmCount, m.Inferred)).ToList(),
        s.Domains.Values.Select(d => new DomainView(d.Id, d.Type, d.Name, d.Mm, d.Users, d.Asid,
            d.Attached.Select(a => a.Pasid is null ? a.Device : $"{a.Device}/{a.Pasid}").ToList())).ToList(),
        s.Handles.Values.Select(h => new HandleView(h.Id, h.Device, h.Mm, h.Domain, h.Pasid, h.Users,
            s.HandleNames.Where(kv => kv.Value == h.Id).Select(kv => kv.Key).ToList())).ToList(),
        s.Pasids.Select(kv => new PasidView(kv.Key, kv.Value)).ToList(),
        s.TaintedAt,
        s.TaintSite);

    public static string MmStateName(MmObj m) => m.State switch
    {
        MmLife.Live => "live",
        MmLife.Exited => "exited",
        _ => "dropped",
    };

    public JsonObject ToJson() => new()
    {
        ["session"] = Session,
        ["seq"] = Seq,
        ["kernel"] = Kernel,
        // a kernel BUG happened at this seq (the session is tainted from there); null: not tainted
        ["tainted_since"] = TaintedAt,
        ["taint"] = TaintSite,
        ["devices"] = new JsonArray(Devices.Select(d => (JsonNode)new JsonObject
        {
            ["id"] = d.Id,
            ["max_pasids"] = d.MaxPasids,
            ["driver"] = d.Driver,
            ["group"] = d.Group,
            ["sva"] = d.Sva,
            ["iopf"] = d.Iopf,
            ["pending_page_requests"] = d.PendingPageRequests,
            ["pasids"] = new JsonArray(d.Pasids.Select(p => (JsonNode)new JsonObject
            {
                ["pasid"] = p.Pasid, ["domain"] = p.Domain, ["mm"] = p.Mm, ["mode"] = p.Mode,
            }).ToArray()),
        }).ToArray()),
        ["mms"] = new JsonArray(Mms.Select(m => (JsonNode)new JsonObject
        {
            ["id"] = m.Id, ["pasid"] = m.Pasid, ["state"] = m.State, ["mm_users"] = m.MmUsers, ["mm_count"] = m.MmCount, ["inferred"] = m.Inferred,
        }).ToArray()),
        ["domains"] = new JsonArray(Domains.Select(d => (JsonNode)new JsonObject
        {
            ["id"] = d.Id, ["type"] = d.Type, ["name"] = d.Name, ["mm"] = d.Mm, ["users"] = d.Users, ["asid"] = d.Asid,
            ["attached"] = new JsonArray(d.Attached.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
        }).ToArray()),
        ["handles"] = new JsonArray(Handles.Select(h => (JsonNode)new JsonObject
        {
            ["id"] = h.Id, ["device"] = h.Device, ["mm"] = h.Mm, ["domain"] = h.Domain, ["pasid"] = h.Pasid, ["users"] = h.Users,
            ["names"] = new JsonArray(h.Names.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
        }).ToArray()),
        ["pasid_allocator"] = new JsonArray(PasidAllocator.Select(p => (JsonNode)new JsonObject { ["pasid"] = p.Pasid, ["mm"] = p.Mm }).ToArray()),
    };
}

public sealed record DeviceView(string Id, int MaxPasids, int Group, bool Sva, bool Iopf, IReadOnlyList<DevicePasidView> Pasids, int PendingPageRequests, string Driver = Drivers.Default);
public sealed record DevicePasidView(int Pasid, string? Domain, string? Mm, string Mode);
public sealed record MmView(string Id, int? Pasid, string State, int MmUsers, int MmCount, bool Inferred);
public sealed record DomainView(string Id, string Type, string? Name, string? Mm, int Users, int? Asid, IReadOnlyList<string> Attached);
public sealed record HandleView(string Id, string Device, string Mm, string? Domain, int Pasid, int Users, IReadOnlyList<string> Names);
public sealed record PasidView(int Pasid, string Mm);
