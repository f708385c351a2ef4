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
        h.AppendData(prev);
        AppendString(h, session);
        Span<byte> u64 = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(u64, seq);
        h.AppendData(u64);
        AppendString(h, type);
        AppendString(h, dataJson);
        AppendString(h, metadataJson);
        AppendString(h, state ?? "");
        if (!h.TryGetHashAndReset(destination, out var written) || written != Size)
            throw new InvalidOperationException("SHA-256 produced an unexpected length");
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
