using System.Globalization;
using System.Text.RegularExpressions;
using Sva.Formats.Captures.Engine;

namespace Sva.Formats.Captures.Dmesg;

/// <summary>
/// Reconstructs the time of `dmesg -H` / `--human` lines. dmesg prints "[Aug 4 09:48]" when the minute changes and
/// otherwise "[  +0.000012]", the time since the previous message. Every line counts, recognised or not (an unrelated
/// line's delta moves the clock too), in file order.
/// <list type="bullet">
/// <item>Timestamp = seconds since the capture's first minute stamp: each delta is added to the running value; a minute
/// stamp sets it to (stamp − first stamp), or keeps the running value when that is already later within the same
/// stream of stamps (the stamp drops the seconds, the deltas do not). A minute stamp earlier than the previous one
/// (another boot, a paste of several logs) restarts from it, kept as printed.</item>
/// <item>Lines before the first minute stamp (a paste that starts with deltas) count from 0 at the first line.</item>
/// <item>Fields["@time"] = the reconstructed wall clock "Aug 4 09:48:00.000012" (no year: dmesg -H prints none; the
/// seconds are those since the minute stamp, so they are a lower bound); Fields["@reltime"] = the stamp as printed.</item>
/// </list>
/// </summary>
internal sealed class HumanClock
{
    private static readonly string[] Months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    private static readonly Regex Minute = new(@"^(?<mon>[a-z]{3})\s*(?<day>\d{1,2})\s+(?<h>\d{1,2}):(?<m>\d\d)$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture);

    private DateTime? _first;
    private DateTime? _stamp;
    private double _run;

    public LineRecord Apply(LineRecord r)
    {
        if (r.Header.Get("@reltime") is not { } rel)
            return r;
        Advance(rel);
        var h = new Header { Strong = r.Header.Strong, Timestamp = Math.Round(_run, 6), Task = r.Header.Task, Cpu = r.Header.Cpu };
        foreach (var kv in r.Header.Fields)
            if (kv.Key != "@time")
                h.Fields.Add(kv);
        // A wall clock only while it fits in the calendar: absurd deltas (a mangled paste) keep the relative timestamp.
        if (_first is { } first && _run * TimeSpan.TicksPerSecond < (DateTime.MaxValue - first).Ticks)
            h.Fields.Add(new("@time", first.AddTicks((long)Math.Round(_run * TimeSpan.TicksPerSecond))
                .ToString("MMM d HH:mm:ss.ffffff", CultureInfo.InvariantCulture)));
        return r with { Header = h };
    }

    /// <summary>A line that is no record (skipped) still moves the clock.</summary>
    public void Observe(string text)
    {
        if (text.Length == 0 || text[0] != '[')
            return;
        var h = DmesgGrammar.Instance.ParseHeader(text, out _);
        if (h.Get("@reltime") is { } rel)
            Advance(rel);
    }

    private void Advance(string rel)
    {
        if (rel.StartsWith('+'))
        {
            // dmesg prints a delta as seconds.micros; hundreds of digits parse as infinity and would poison the clock
            if (double.TryParse(rel.AsSpan(1), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var delta)
                && double.IsFinite(delta) && double.IsFinite(_run + delta))
                _run += delta;
            return;
        }
        var m = Minute.Match(rel.Trim());
        if (!m.Success)
            return;
        int month = Array.IndexOf(Months, m.Groups["mon"].Value.ToLowerInvariant()) + 1;
        int day = int.Parse(m.Groups["day"].Value, CultureInfo.InvariantCulture);
        int hour = int.Parse(m.Groups["h"].Value, CultureInfo.InvariantCulture);
        int minute = int.Parse(m.Groups["m"].Value, CultureInfo.InvariantCulture);
        if (month < 1 || day < 1 || day > DateTime.DaysInMonth(2000, month) || hour > 23 || minute > 59)
            return;
        var stamp = new DateTime(2000, month, day, hour, minute, 0, DateTimeKind.Unspecified); // 2000: a leap year, Feb 29 fits
        if (_first is not { } first)
        {
            _first = stamp;
            _stamp = stamp;
            _run = 0;
            return;
        }
        var at = (stamp - first).TotalSeconds;
        _run = _stamp is { } previous && stamp >= previous ? Math.Max(at, _run) : at;
        _stamp = stamp;
    }
}
