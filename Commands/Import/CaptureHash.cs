using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Sva.Commands;

/// <summary>The bytes of a capture: its content hash (an import's identity), its line count, and deterministic ids.</summary>
public static class CaptureHash
{
    /// <summary>One pass over the bytes: SHA-256 (hex) and the line count (progress).</summary>
    public static async Task<(string Hash, long Lines)> HashAndCountAsync(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            long lines = 0;
            byte last = (byte)'\n';
            int n;
            while ((n = await fs.ReadAsync(buffer.AsMemory(0, 1 << 16), ct)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                lines += buffer.AsSpan(0, n).Count((byte)'\n');
                last = buffer[n - 1];
            }
            if (last != (byte)'\n') lines++;
            return (Convert.ToHexStringLower(sha.GetHashAndReset()), lines);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The capture as text (UTF-8, a BOM honoured), read sequentially.</summary>
    public static StreamReader OpenText(string path) =>
        new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan),
            new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);

    /// <summary>SHA-256 (hex) of a text's UTF-8 bytes.</summary>
    public static string OfText(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>A version-5-style UUID from text (the batch's command id: re-running a batch is a no-op in the store).</summary>
    public static Guid DeterministicGuid(string text)
    {
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), h);
        var b = h[..16].ToArray();
        b[6] = (byte)((b[6] & 0x0f) | 0x50);
        b[8] = (byte)((b[8] & 0x3f) | 0x80);
        return new Guid(b, bigEndian: true);
    }
}
