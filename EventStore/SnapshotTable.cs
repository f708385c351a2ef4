using System.Security.Cryptography;
using System.Text;
using Marten;
using Weasel.Core;
using Weasel.Core.Migrations;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace Sva.EventStore;

/// <summary>
/// Snapshots as compressed bytes in a table Marten's schema management (a Weasel feature) creates and migrates:
/// <c>sva_snapshots(session, seq, encoding, bytes)</c>, one row per snapshot. The state's text is the caller's (the JSON of
/// whatever the state holds); the row keeps it zstd-compressed. It stays bound to the chain exactly as before: the log
/// records at <c>seq</c> the SHA-256 of the uncompressed text (header "state"), so a changed row is detected and not used.
/// Snapshot documents of earlier versions (<see cref="SnapshotDoc"/>, JSON strings in jsonb) are still read and verified.
/// </summary>
internal sealed class SnapshotTableFeature(StoreOptions options) : FeatureSchemaBase("sva_snapshots", options.Advanced.Migrator)
{
    public const string TableName = "sva_snapshots";

    public override Type StorageType => typeof(SnapshotTableFeature);

    public override IEnumerable<Type> DependentTypes()
    {
        yield return typeof(Marten.Events.EventGraph);
    }

#pragma warning disable CS0618 // the two-argument PostgresqlObjectName is what Weasel 9.50 takes here
    protected override IEnumerable<ISchemaObject> schemaObjects()
    {
        var t = new Table(new PostgresqlObjectName("public", TableName));
        t.AddColumn<string>("session").AsPrimaryKey();
        t.AddColumn<long>("seq").AsPrimaryKey();
        t.AddColumn("encoding", "smallint").NotNull();
        t.AddColumn("bytes", "bytea").NotNull();
        yield return t;
    }
#pragma warning restore CS0618
}

/// <summary>
/// The encodings of a snapshot row (its <c>encoding</c> column). Versioned: a reader that does not know an encoding treats the
/// row as absent. Each is zstd (level 3) over a payload whose format the number names; the format itself is the caller's
/// (Projections' StateSnapshot decodes both). The log's digest (header "state") is the SHA-256 of the uncompressed payload,
/// whatever the encoding: for JSON that is the SHA-256 of its UTF-8 text, as it always was.
/// </summary>
public static class SnapshotCodec
{
    /// <summary>1: zstd of UTF-8 JSON text (written by ecd23d9 up to this version; snapshot documents of earlier versions hold
    /// the same JSON uncompressed and load as this encoding).</summary>
    public const short ZstdUtf8 = 1;

    /// <summary>2: zstd of a MemoryPack payload (binary; loads without parsing text).</summary>
    public const short ZstdMemoryPack = 2;

    public static bool IsKnown(short encoding) => encoding is ZstdUtf8 or ZstdMemoryPack;

    public static byte[] Compress(ReadOnlySpan<byte> payload)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(payload).ToArray();
    }

    /// <summary>zstd of the UTF-8 text (encoding <see cref="ZstdUtf8"/>).</summary>
    public static byte[] Encode(string text) => Compress(Encoding.UTF8.GetBytes(text));

    /// <summary>The uncompressed payload, or null for an encoding this version does not know or bytes that do not decompress.</summary>
    public static byte[]? Decompress(short encoding, byte[] bytes)
    {
        if (!IsKnown(encoding)) return null;
        try
        {
            using var d = new ZstdSharp.Decompressor();
            return d.Unwrap(bytes).ToArray();
        }
        catch (ZstdSharp.ZstdException) { return null; }
    }

    /// <summary>What the log records for a snapshot (header "state"): SHA-256 (hex) of its uncompressed payload.</summary>
    public static string Digest(ReadOnlySpan<byte> payload) => Convert.ToHexStringLower(SHA256.HashData(payload));

    /// <summary>The digest of a JSON snapshot: SHA-256 (hex) of its UTF-8 text.</summary>
    public static string Digest(string text) => Digest(Encoding.UTF8.GetBytes(text));
}
