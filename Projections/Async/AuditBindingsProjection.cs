using System.Text.Json.Nodes;
using Sva.Domain;
using Sva.EventStore;

namespace Sva.Projections.Async;

/// <summary>One binding interval: opened by handle_issued, closed by handle_freed (Marten document, async projection).</summary>
public sealed class AuditBinding
{
    public string Id { get; set; } = "";
    public string Session { get; set; } = "";
    public string Handle { get; set; } = "";
    public long IssuedSeq { get; set; }
    public string Device { get; set; } = "";
    public int Pasid { get; set; }
    public string Mm { get; set; } = "";
    public string? Domain { get; set; }
    public DateTimeOffset BoundAt { get; set; }
    public string? BoundBy { get; set; }
    public long? UnboundSeq { get; set; }
    public DateTimeOffset? UnboundAt { get; set; }
    public string? UnboundBy { get; set; }

    /// <summary>Handles are never reused within a session (ids come from a counter), so (session, handle) is the key.</summary>
    public static string IdOf(string session, string handle) => $"{session}\u001f{handle}";
}

/// <summary>
/// Binding intervals across all sessions, for audit ("who bound which mm to which device with which PASID, when, for how
/// long"). Run by Marten's async daemon, which commits the documents with its checkpoint and never skips an event.
/// </summary>
public sealed class AuditBindingsProjection : IDocumentProjection
{
    public const string ProjectionName = "audit_bindings";
    public string Name => ProjectionName;
    public ProjectionMode Mode => ProjectionMode.Async;
    public IReadOnlyList<Type> DocumentTypes => [typeof(AuditBinding)];

    public async Task ApplyAsync(IProjectionWriter writer, IReadOnlyList<ProjectedEvent> events, CancellationToken ct)
    {
        var open = new Dictionary<string, AuditBinding>(StringComparer.Ordinal);
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case HandleIssued h:
                {
                    var b = new AuditBinding
                    {
                        Id = AuditBinding.IdOf(e.Session, h.Handle), Session = e.Session, Handle = h.Handle, IssuedSeq = e.Seq,
                        Device = h.Device, Pasid = h.Pasid, Mm = h.Mm, Domain = h.Domain, BoundAt = e.RecordedAt, BoundBy = Source(e.Metadata),
                    };
                    open[b.Id] = b;
                    writer.Store(b);
                    break;
                }
                case HandleFreed f:
                {
                    var id = AuditBinding.IdOf(e.Session, f.Handle);
                    // An interval opened in this same page is closed in memory; else it is loaded (committed by an earlier page).
                    var b = open.GetValueOrDefault(id) ?? await writer.LoadAsync<AuditBinding>(id, ct)
                        ?? throw new StoredEventException(e.Session, e.Seq, $"handle_freed of {f.Handle}, which no handle_issued opened");
                    b.UnboundSeq = e.Seq;
                    b.UnboundAt = e.RecordedAt;
                    b.UnboundBy = Source(e.Metadata);
                    open[id] = b;
                    writer.Store(b);
                    break;
                }
            }
        }
    }

    private static string? Source(string metadata) => (JsonNode.Parse(metadata) as JsonObject)?["source"]?.GetValue<string>();
}
