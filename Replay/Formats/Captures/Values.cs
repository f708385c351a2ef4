using System.Globalization;
using System.Text.RegularExpressions;

namespace Sva.Formats.Captures;

/// <summary>Conversions shared by the formats: numbers, PCI device names, PASIDs, access letters.</summary>
public static partial class Values
{
    /// <summary>The u32 value every IOMMU prints for "no PASID" (IOMMU_PASID_INVALID, VT-d ffffffff).</summary>
    public const ulong NoPasid32 = 0xffffffff;

    [GeneratedRegex(@"^\[?(?:(?:0x)?(?<seg>[0-9a-f]{1,4}):)?(?:0x)?(?<bus>[0-9a-f]{1,2}):(?:0x)?(?<dev>[0-9a-f]{1,2})\.(?:0x)?(?<fn>[0-9a-f]{1,2})\]?$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture)]
    private static partial Regex BdfRegex();

    /// <summary>Normalises a PCI BDF to "ssss:bb:dd.f" ("00:02.0", "0b:00.00", "[0x00:0x02.0]" all work);
    /// anything else (platform devices such as "2b400000.gpu") is returned unchanged.</summary>
    public static string NormaliseDevice(string raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var m = BdfRegex().Match(raw.Trim());
        if (!m.Success)
            return raw;
        int seg = m.Groups["seg"].Success ? int.Parse(m.Groups["seg"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) : 0;
        int bus = int.Parse(m.Groups["bus"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        int dev = int.Parse(m.Groups["dev"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        int fn = int.Parse(m.Groups["fn"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        if (dev > 0x1f || fn > 7)
            return raw;
        return string.Create(CultureInfo.InvariantCulture, $"{seg:x4}:{bus:x2}:{dev:x2}.{fn:x1}");
    }

    /// <summary>True when the text is a PCI BDF in one of the accepted spellings.</summary>
    public static bool IsPciDevice(string raw) => BdfRegex().IsMatch(raw.Trim());

    /// <summary>A PCI requester/stream id (bus &lt;&lt; 8 | devfn) as a device name in segment 0.</summary>
    public static string DeviceFromRid(ulong rid)
    {
        var bus = (rid >> 8) & 0xff;
        var devfn = rid & 0xff;
        return string.Create(CultureInfo.InvariantCulture, $"0000:{bus:x2}:{devfn >> 3:x2}.{devfn & 7:x1}");
    }

    /// <summary>Parses "0x1f", "1f" (when <paramref name="hexDefault"/>), "31", "-1". False on garbage or overflow.</summary>
    public static bool TryParseNumber(ReadOnlySpan<char> text, bool hexDefault, out ulong value, out bool negative)
    {
        value = 0;
        negative = false;
        text = text.Trim();
        if (text.Length > 0 && (text[0] == '-' || text[0] == '+'))
        {
            negative = text[0] == '-';
            text = text[1..];
        }
        bool hex = hexDefault;
        if (text.Length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        {
            hex = true;
            text = text[2..];
        }
        if (text.Length == 0)
            return false;
        return hex
            ? ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>PASID from a printed value: ffffffff / -1 / values that do not fit a PASID mean "no PASID" only when
    /// they are the no-PASID marker; anything else out of range is an error (returns false).</summary>
    public static bool TryPasid(ulong value, bool negative, out int? pasid)
    {
        pasid = null;
        if (negative)
            return value == 1; // -1 = (u32)-1
        if (value == NoPasid32)
            return true;
        if (value > int.MaxValue)
            return false;
        pasid = (int)value;
        return true;
    }

    /// <summary>Access letters in "rwx" order; null when none is requested.</summary>
    public static string? Access(bool read, bool write, bool exec)
    {
        var s = (read ? "r" : "") + (write ? "w" : "") + (exec ? "x" : "");
        return s.Length == 0 ? null : s;
    }

    /// <summary>Hex with "0x", as the kernel's %#x prints it (0 is "0x0").</summary>
    public static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>end exclusive from an inclusive end, saturating at ulong.MaxValue.</summary>
    public static ulong ExclusiveEnd(ulong inclusiveEnd) => inclusiveEnd == ulong.MaxValue ? ulong.MaxValue : inclusiveEnd + 1;

    /// <summary>start + size, saturating.</summary>
    public static ulong AddSaturating(ulong a, ulong b) => ulong.MaxValue - a < b ? ulong.MaxValue : a + b;
}
