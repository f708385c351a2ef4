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

/// <summary>The byte encodings of a snapshot row. Versioned: a reader that does not know an encoding treats the row as absent.</summary>
public static class SnapshotCodec
{
    /// <summary>zstd (level 3) of the UTF-8 text.</summary>
    public const short ZstdUtf8 = 1;

    public static byte[] Encode(string text)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(Encoding.UTF8.GetBytes(text)).ToArray();
    }

    /// <summary>The text, or null for an encoding this version does not know or bytes that do not decode.</summary>
    public static string? Decode(short encoding, byte[] bytes)
    {
        if (encoding != ZstdUtf8) return null;
        try
        {
            using var d = new ZstdSharp.Decompressor();
            return Encoding.UTF8.GetString(d.Unwrap(bytes));
        }
        catch (ZstdSharp.ZstdException) { return null; }
    }

    /// <summary>What the log records for a snapshot (header "state"): SHA-256 (hex) of its UTF-8 text.</summary>
    public static string Digest(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
