using System.Buffers;
using System.Text;
using System.Text.Json;
using Sva.Domain;
using Sva.Domain.Json;

namespace Sva.Projections;

/// <summary>Where a batch of an import got to: the resume checkpoint, on the batch's last event.</summary>
public sealed record ImportCheckpoint(int Batch, long Items);

/// <summary>
/// What every event carries besides its data: the command that appended it, where it came from (<c>file:line</c>), the
/// call (on a call's first event), whether the call was inferred from a capture, the capture's own timestamp, and on
/// the last event of an import batch the resume checkpoint. One record, one codec (<see cref="ToJson"/> / <see cref="Parse"/>),
/// used by every writer and reader; the store keeps the text opaque (and hashes it as it is).
/// </summary>
public sealed record EventMetadata(Guid Command, string? Source = null, KernelCall? Call = null, bool Inferred = false,
    double? CaptureTimestamp = null, ImportCheckpoint? Import = null)
{
    public static readonly EventMetadata Empty = new(Guid.Empty);

    /// <summary>
    /// On the first event of a session recorded under a kernel file: the file's resolved content (its definition),
    /// stored as <c>"kernel": {"v": 1, "def": "..."}</c> so the session replays identically after the file changed or
    /// went. Absent on every other event and in sessions recorded before (they name a rule set).
    /// </summary>
    public string? KernelDefinition { get; init; }

    /// <summary>On a call's first event, written by the recorder: the rule that decided the call (<see cref="CallOutcome.RuleIdOf(KernelCall, IReadOnlyList{SvaEvent})"/>
    /// of the call and its events; null when none applies), stored as <c>"rule"</c> only when <see cref="HasRule"/>, so that
    /// provenance reads it from this one event instead of reading the call's events. Absent in sessions recorded before, in
    /// imports, and on every other event.</summary>
    public string? Rule { get; init; }

    /// <summary>True when <see cref="Rule"/> was written (its value may be null).</summary>
    public bool HasRule { get; init; }

    /// <summary>On a call's later events, written by the recorder: how many events back its call's first event is (<c>"first"</c>,
    /// ≥ 1), so that provenance finds the call with one look-up instead of a walk. Absent where <see cref="HasRule"/> is absent.</summary>
    public int? CallOffset { get; init; }

    /// <summary>The metadata keys provenance asks the store about (<see cref="Sva.EventStore.IEventStore.ReadGroupsAsync"/>).</summary>
    public const string CallKey = "call", SourceKey = "source", RuleKey = "rule", OffsetKey = "first";

    /// <summary>Why the stored call could not be read (a shape this version does not know), when there was one: readers
    /// that need the calls (<see cref="RecordedCall"/>) fail on it naming the seq; the others still count the event.</summary>
    public string? UnreadableCall { get; init; }

    /// <summary>The call one event's metadata carries (the first event of a recorded call) with its source and seq, or null
    /// (the rest of a call, imported observations). A call that cannot be read is an error naming the seq.</summary>
    public static SourcedKernelCall? RecordedCall(long seq, string metadataJson)
    {
        EventMetadata m;
        try { m = Parse(metadataJson); }
        catch (EventFormatException ex) { throw new EventFormatException($"seq {seq}: {ex.Message}"); }
        if (m.UnreadableCall is { } why) throw new EventFormatException($"seq {seq}: {why}");
        return m.Call is null ? null : new SourcedKernelCall(m.Call, m.Source, seq);
    }

    /// <summary>The recorded calls of a session's events, in order (<see cref="RecordedCall"/>).</summary>
    public static List<SourcedKernelCall> RecordedCalls(IEnumerable<(long Seq, string MetadataJson)> events)
    {
        var calls = new List<SourcedKernelCall>();
        foreach (var (seq, metadata) in events)
            if (RecordedCall(seq, metadata) is { } c) calls.Add(c);
        return calls;
    }

    /// <summary>The shape version of <see cref="KernelDefinition"/> this build writes and reads.</summary>
    public const int KernelDefinitionShape = 1;

    [ThreadStatic] private static ArrayBufferWriter<byte>? buffer;

    /// <summary>{"ts", "cmd", "call", "rule", "first", "import": {"batch", "items"}, "kernel": {"v", "def"}, "source", "inferred"}: only what
    /// is set, keys in PostgreSQL's jsonb order (length, then bytewise), so the store hashes the text as it is
    /// (<c>CanonicalJson</c>) without reordering it.</summary>
    public string ToJson()
    {
        var b = buffer ??= new ArrayBufferWriter<byte>(256);
        b.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(b))
        {
            w.WriteStartObject();
            if (CaptureTimestamp is { } t && double.IsFinite(t)) w.WriteNumber("ts", t);
            w.WriteString("cmd", Command);
            if (Call is not null)
            {
                w.WritePropertyName("call");
                w.WriteRawValue(SvaJson.SerializeCall(Call), skipInputValidation: true);
                if (HasRule)
                {
                    if (Rule is null) w.WriteNull(RuleKey);
                    else w.WriteString(RuleKey, Rule);
                }
            }
            else if (CallOffset is > 0 and var offset) w.WriteNumber(OffsetKey, offset);
            if (Import is { } c)
            {
                w.WriteStartObject("import");
                w.WriteNumber("batch", c.Batch);
                w.WriteNumber("items", c.Items);
                w.WriteEndObject();
            }
            if (KernelDefinition is { } def)
            {
                w.WriteStartObject("kernel");
                w.WriteNumber("v", KernelDefinitionShape);
                w.WriteString("def", def);
                w.WriteEndObject();
            }
            if (Source is not null) w.WriteString("source", Source);
            if (Call is not null && Inferred) w.WriteBoolean("inferred", true);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(b.WrittenSpan);
    }

    /// <summary>What provenance reads of one event's metadata (<see cref="ReadProvenance"/>): its source, whether it carries a call
    /// and that call's <c>op</c> (the call itself is not built), the recorder's <see cref="Rule"/> and <see cref="CallOffset"/>.</summary>
    public readonly record struct ProvenanceFields(string? Source, bool HasCall, string? Op, bool HasRule, string? Rule, int? CallOffset);

    /// <summary>The fields of <see cref="Parse"/> that provenance needs, read the same way (a string source, an object call, a
    /// string or null rule, a whole-number distance) in one forward pass without building a document or the call: blame reads
    /// two per row, ~1,500 rows per state at 1M events. Text that is not a JSON object is <see cref="EventFormatException"/>.</summary>
    public static ProvenanceFields ReadProvenance(string json)
    {
        var max = Encoding.UTF8.GetMaxByteCount(json.Length);
        var rented = max <= 1024 ? null : ArrayPool<byte>.Shared.Rent(max);
        Span<byte> bytes = rented is null ? stackalloc byte[1024] : rented;
        try
        {
            var r = new Utf8JsonReader(bytes[..Encoding.UTF8.GetBytes(json, bytes)]);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) throw new EventFormatException("event metadata is not a JSON object");
            string? source = null, op = null, rule = null;
            bool hasCall = false, hasRule = false;
            int? offset = null;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                var which = Key(ref r, "source"u8, "call"u8, "rule"u8, "first"u8);
                r.Read();
                switch (which)
                {
                    case 0: source = r.TokenType == JsonTokenType.String ? r.GetString() : null; break;
                    case 1 when r.TokenType == JsonTokenType.StartObject:
                        hasCall = true;
                        op = null;
                        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                        {
                            var isOp = Key(ref r, "op"u8, default, default, default) == 0;
                            r.Read();
                            if (isOp) op = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                            r.Skip();
                        }
                        continue;
                    case 1: hasCall = false; op = null; break;
                    case 2:
                        hasRule = r.TokenType is JsonTokenType.String or JsonTokenType.Null;
                        rule = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                        break;
                    case 3: offset = r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var n) ? n : null; break;
                }
                r.Skip();
            }
            return new ProvenanceFields(source, hasCall, op, hasRule, rule, offset);
        }
        catch (JsonException ex)
        {
            throw new EventFormatException($"event metadata is not JSON: {ex.Message}");
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Which of up to four names the property name at the reader is (0..3), -1 for none; escaped names are unescaped.</summary>
    private static int Key(ref Utf8JsonReader r, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, ReadOnlySpan<byte> d)
    {
        ReadOnlySpan<byte> k = r.ValueIsEscaped ? Encoding.UTF8.GetBytes(r.GetString()!) : r.ValueSpan;
        return k.SequenceEqual(a) ? 0 : !b.IsEmpty && k.SequenceEqual(b) ? 1 : !c.IsEmpty && k.SequenceEqual(c) ? 2 : !d.IsEmpty && k.SequenceEqual(d) ? 3 : -1;
    }

    /// <summary>Reads what <see cref="ToJson"/> wrote, in any key order (chain-1 text as written, chain-2 metadata in jsonb's
    /// order). A call of a shape this version cannot read is left out with the reason (<see cref="UnreadableCall"/>);
    /// text that is not a JSON object is <see cref="EventFormatException"/>. The one reader of event metadata.</summary>
    public static EventMetadata Parse(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new EventFormatException("event metadata is not a JSON object");
            var cmd = r.TryGetProperty("cmd", out var c) && c.ValueKind == JsonValueKind.String && Guid.TryParse(c.GetString(), out var g) ? g : Guid.Empty;
            var source = r.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            double? ts = r.TryGetProperty("ts", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : null;
            KernelCall? call = null;
            string? unreadable = null;
            if (r.TryGetProperty("call", out var cl) && cl.ValueKind == JsonValueKind.Object)
            {
                try { call = SvaJson.DeserializeCall(cl.GetRawText()); }
                catch (EventFormatException ex) { unreadable = ex.Message; }
            }
            var inferred = r.TryGetProperty("inferred", out var inf) && inf.ValueKind == JsonValueKind.True;
            var hasRule = r.TryGetProperty(RuleKey, out var ru) && ru.ValueKind is JsonValueKind.String or JsonValueKind.Null;
            int? offset = r.TryGetProperty(OffsetKey, out var of) && of.ValueKind == JsonValueKind.Number && of.TryGetInt32(out var ofv) ? ofv : null;
            ImportCheckpoint? import = null;
            if (r.TryGetProperty("import", out var im) && im.ValueKind == JsonValueKind.Object
                && im.TryGetProperty("batch", out var bt) && im.TryGetProperty("items", out var it))
                import = new ImportCheckpoint(bt.GetInt32(), it.GetInt64());
            string? kernel = null;
            if (r.TryGetProperty("kernel", out var k) && k.ValueKind == JsonValueKind.Object)
            {
                var v = k.TryGetProperty("v", out var kv) && kv.ValueKind == JsonValueKind.Number ? kv.GetInt32() : 0;
                if (v != KernelDefinitionShape) throw new EventFormatException($"event metadata: kernel definition shape v{v} is not known to this sva (it reads v{KernelDefinitionShape})");
                kernel = k.TryGetProperty("def", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            }
            return new EventMetadata(cmd, source, call, inferred, ts, import)
            {
                KernelDefinition = kernel, UnreadableCall = unreadable,
                HasRule = hasRule, Rule = hasRule ? ru.GetString() : null, CallOffset = offset,
            };
        }
        catch (JsonException ex)
        {
            throw new EventFormatException($"event metadata is not JSON: {ex.Message}");
        }
    }
}
