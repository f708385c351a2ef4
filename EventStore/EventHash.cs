using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Sva.EventStore;

/// <summary>
/// The per-session hash chain. For the event with seq <c>s</c> of session <c>S</c>:
/// <code>
/// hash(s) = SHA-256( prev                         32 bytes: hash(s-1), or 32 zero bytes for seq 1
///                  || u32be(len) || utf8(S)
///                  || u64be(s)
///                  || u32be(len) || utf8(type)
///                  || u32be(len) || utf8(data)      mt_events.data::text as PostgreSQL renders the stored jsonb
///                  || u32be(len) || utf8(metadata)  the writer's metadata text (header "meta"), as given
///                  || u32be(len) || utf8(state))    the SHA-256 (hex) of the snapshot taken at s (header "state"), or ""
/// </code>
/// The hash is stored as the event's Marten header "hash". Data is hashed in PostgreSQL's jsonb rendering (key order,
/// whitespace, escapes), i.e. exactly the text that <c>SELECT data::text</c> returns later, so anyone can re-verify the
/// chain from mt_events alone. A snapshot is bound to the chain through "state": changing it later is detected.
/// <para>That is chain version 1 (events without a "chain" header, written before issue 15). Version 2 (header
/// <c>"chain": 2</c>, every event written since) hashes bytes the writer already has instead of a jsonb rendering built
/// for the purpose, and stores the metadata as a JSON value instead of an escaped string:</para>
/// <code>
/// hash(s) = SHA-256( 0x02                          the chain version
///                  || prev || u32be(len) || utf8(S) || u64be(s) || u32be(len) || utf8(type)
///                  || u32be(len) || data            the data's compact canonical form (CanonicalJson: jsonb's text without blanks)
///                  || kind                          'j': the metadata is stored as a JSON value (header "meta"), 't': as a string
///                  || u32be(len) || metadata        'j': its compact canonical form; 't': its UTF-8 text
///                  || u32be(len) || utf8(state))
/// </code>
/// </summary>
public static class EventHash
{
    public const int Size = 32;

    /// <summary>The "previous hash" of seq 1.</summary>
    public static byte[] Genesis() => new byte[Size];

    public static byte[] Compute(ReadOnlySpan<byte> prev, string session, long seq, string type, string dataJson, string metadataJson, string? state = null)
    {
        if (prev.Length != Size) throw new ArgumentException($"previous hash must be {Size} bytes", nameof(prev));
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var result = new byte[Size];
        Compute(h, prev, session, seq, type, dataJson, metadataJson, state, result);
        return result;
    }

    /// <summary>Computes one link with a reusable <see cref="IncrementalHash"/> (SHA-256) into <paramref name="destination"/>.</summary>
    internal static void Compute(IncrementalHash h, ReadOnlySpan<byte> prev, string session, long seq, string type,
        string dataJson, string metadataJson, string? state, Span<byte> destination)
    {
        AppendPosition(h, prev, session, seq, type);
        AppendString(h, dataJson);
        AppendString(h, metadataJson);
        Finish(h, state, destination);
    }

    /// <summary>The link's place in the chain, the same in every version: previous hash, session, seq (big-endian), type.</summary>
    private static void AppendPosition(IncrementalHash h, ReadOnlySpan<byte> prev, string session, long seq, string type)
    {
        h.AppendData(prev);
        AppendString(h, session);
        Span<byte> u64 = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(u64, seq);
        h.AppendData(u64);
        AppendString(h, type);
    }

    /// <summary>The snapshot digest bound at this seq ("" when none), then the hash.</summary>
    private static void Finish(IncrementalHash h, string? state, Span<byte> destination)
    {
        AppendString(h, state ?? "");
        if (!h.TryGetHashAndReset(destination, out var written) || written != Size)
            throw new InvalidOperationException("SHA-256 produced an unexpected length");
    }

    /// <summary>Chain version 2 (see the type's summary): data and metadata as UTF-8 bytes in compact canonical form.</summary>
    internal static void ComputeV2(IncrementalHash h, ReadOnlySpan<byte> prev, string session, long seq, string type,
        ReadOnlySpan<byte> data, bool metadataIsJson, ReadOnlySpan<byte> metadata, string? state, Span<byte> destination)
    {
        h.AppendData([2]);
        AppendPosition(h, prev, session, seq, type);
        AppendBytes(h, data);
        h.AppendData(metadataIsJson ? "j"u8 : "t"u8);
        AppendBytes(h, metadata);
        Finish(h, state, destination);
    }

    /// <summary>Chain version 2 from what the database returns: <paramref name="dataJsonb"/> as <c>data::text</c>,
    /// <paramref name="metadata"/> as <see cref="ChainHeaders"/> read it (compact canonical when it is JSON).</summary>
    internal static void ComputeV2(IncrementalHash h, ReadOnlySpan<byte> prev, string session, long seq, string type,
        string dataJsonb, bool metadataIsJson, string metadata, string? state, Span<byte> destination)
    {
        var data = Encoding.UTF8.GetBytes(CanonicalJson.FromJsonbText(dataJsonb));
        ComputeV2(h, prev, session, seq, type, data, metadataIsJson, Encoding.UTF8.GetBytes(metadata), state, destination);
    }

    private static void AppendBytes(IncrementalHash h, ReadOnlySpan<byte> bytes)
    {
        Span<byte> prefix = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, checked((uint)bytes.Length));
        h.AppendData(prefix);
        h.AppendData(bytes);
    }

    private static void AppendString(IncrementalHash h, string s)
    {
        var len = Encoding.UTF8.GetByteCount(s);
        Span<byte> prefix = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, checked((uint)len));
        h.AppendData(prefix);
        if (len <= 1024)
        {
            Span<byte> buf = stackalloc byte[len];
            Encoding.UTF8.GetBytes(s, buf);
            h.AppendData(buf);
        }
        else
        {
            var rented = ArrayPool<byte>.Shared.Rent(len);
            try
            {
                var n = Encoding.UTF8.GetBytes(s, rented);
                h.AppendData(rented, 0, n);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
