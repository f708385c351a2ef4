using System.Globalization;
using System.Text;

namespace Sva.Tests.Support;

/// <summary>
/// What the fuzz tests share: the seed (SVA_FUZZ_SEED, else a new one per run, printed on failure so that a CI
/// failure can be replayed) and the mutations that break bytes rather than lines: bit flips, NUL bytes, invalid
/// UTF-8, huge numbers, control characters, JSON escapes no text column can hold, and 1 MB lines. Text is turned
/// back into a string the way the CLI reads a file (UTF-8, invalid bytes become U+FFFD).
/// </summary>
public static class Fuzz
{
    /// <summary>SVA_FUZZ_SEED, else time-based: a different seed on every run.</summary>
    public static int Seed { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("SVA_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s)
            ? s
            : (int)(DateTime.UtcNow.Ticks % int.MaxValue);

    /// <summary>Runs a fuzz body with the seed; any failure is rethrown with the seed that reproduces it.</summary>
    public static async Task WithSeedAsync(string what, Func<int, Task> body)
    {
        try { await body(Seed); }
        catch (Exception e)
        {
            throw new FuzzFailure($"{what} failed with SVA_FUZZ_SEED={Seed} (rerun with SVA_FUZZ_SEED={Seed} to reproduce): {e.Message}", e);
        }
    }

    private static readonly string[] HugeNumbers =
        ["99999999999999999999", "-5", "0xffffffffffffffffffff", "18446744073709551616", "-9223372036854775809", "1e309", "0x", "4294967296", "2147483648"];

    /// <summary>A line 1 MB long (a word repeated, or one token).</summary>
    public static string MegabyteLine(Random rng) => rng.Next(2) == 0
        ? new string('a', 1 << 20)
        : string.Concat(Enumerable.Repeat("mm ", (1 << 20) / 3));

    /// <summary>Applies 1..3 byte-level mutations and decodes the result as UTF-8, as a file read would.</summary>
    public static string MutateBytes(string text, Random rng, bool allowHugeLines)
    {
        var n = 1 + rng.Next(3);
        for (var k = 0; k < n; k++)
        {
            switch (rng.Next(allowHugeLines ? 8 : 7))
            {
                case 0: // flip bits in a few bytes
                {
                    var bytes = Encoding.UTF8.GetBytes(text);
                    if (bytes.Length == 0) break;
                    for (var f = 0; f < 1 + rng.Next(4); f++) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                    text = Decode(bytes);
                    break;
                }
                case 1: // a NUL byte somewhere
                    text = Insert(text, rng, "\0");
                    break;
                case 2: // invalid UTF-8: a lone continuation byte, an overlong form, a cut sequence
                {
                    var bytes = Encoding.UTF8.GetBytes(text).ToList();
                    byte[][] bad = [[0x80], [0xC0, 0xAF], [0xE2, 0x82], [0xFF], [0xED, 0xA0, 0x80]];
                    bytes.InsertRange(rng.Next(bytes.Count + 1), bad[rng.Next(bad.Length)]);
                    text = Decode(bytes.ToArray());
                    break;
                }
                case 3: // a number replaced by a huge or negative one
                {
                    var digits = Enumerable.Range(0, text.Length).Where(i => char.IsAsciiDigit(text[i]) && (i == 0 || !char.IsAsciiDigit(text[i - 1]))).ToList();
                    if (digits.Count == 0) break;
                    var at = digits[rng.Next(digits.Count)];
                    var end = at;
                    while (end < text.Length && char.IsAsciiHexDigit(text[end]) || end < text.Length && text[end] == 'x') end++;
                    text = text[..at] + HugeNumbers[rng.Next(HugeNumbers.Length)] + text[end..];
                    break;
                }
                case 4: // control characters: ESC sequences, BEL, DEL, a bare CR
                    text = Insert(text, rng, new[] { "\u001b[31m", "\u0007", "\u007f", "\r", "\u0085", "\u202e" }[rng.Next(6)]);
                    break;
                case 5: // JSON escapes of what no text column holds (for jsonl), and a long name
                    text = Insert(text, rng, new[] { "\\u0000", "\\ud800", "\\udc00x", new string('n', 300) }[rng.Next(4)]);
                    break;
                case 6: // a cut in the middle of a multi-byte character
                {
                    var bytes = Encoding.UTF8.GetBytes(text + "é€😀");
                    text = Decode(bytes[..^rng.Next(1, 4)]);
                    break;
                }
                default: // a 1 MB line
                {
                    var lines = text.Split('\n').ToList();
                    lines.Insert(rng.Next(lines.Count + 1), MegabyteLine(rng));
                    text = string.Join('\n', lines);
                    break;
                }
            }
        }
        return text;
    }

    /// <summary>The text as UTF-8 with invalid bytes put in at 1..3 places (for a file the CLI itself decodes).</summary>
    public static byte[] WithInvalidUtf8(string text, Random rng)
    {
        var bytes = Encoding.UTF8.GetBytes(text).ToList();
        byte[][] bad = [[0x80], [0xC0, 0xAF], [0xE2, 0x82], [0xFF, 0xFE], [0xED, 0xA0, 0x80], [0x00]];
        for (var k = 0; k < 1 + rng.Next(3); k++) bytes.InsertRange(rng.Next(bytes.Count + 1), bad[rng.Next(bad.Length)]);
        return bytes.ToArray();
    }

    /// <summary>The UTF-8 bytes a mutated text is written as (a file with invalid UTF-8 keeps its bytes).</summary>
    public static string Decode(byte[] bytes) => new UTF8Encoding(false, false).GetString(bytes);

    private static string Insert(string text, Random rng, string what)
    {
        var at = rng.Next(text.Length + 1);
        if (at > 0 && at < text.Length && char.IsLowSurrogate(text[at])) at--;
        return text[..at] + what + text[at..];
    }

    /// <summary>True when <paramref name="text"/> holds nothing a message should print raw (NUL, ESC, other C0 controls
    /// apart from line breaks and tabs).</summary>
    public static bool Printable(string text) =>
        !text.Any(c => c == '\0' || c == '\u001b' || (char.IsControl(c) && c is not ('\n' or '\r' or '\t')));
}

public sealed class FuzzFailure(string message, Exception inner) : Exception(message, inner);
