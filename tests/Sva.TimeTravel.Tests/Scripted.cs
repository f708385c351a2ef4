using Sva.Domain;
using Sva.Formats.Script;
using Sva.Projections.Queries;

namespace Sva.TimeTravel.Tests;

/// <summary>A hand-written session whose seqs are checked by hand (see the comments in <see cref="Text"/>).</summary>
public static class Scripted
{
    public const string Text = """
        kernel 6.8
        device 0000:6a:01.0 pasids=1048576
        device 0000:6a:02.0 pasids=1048576
        mm m1
        mm m2
        bind a 0000:6a:01.0 m1                                  # seqs 5-11: PASID 1, D1, H1 at 11
        fault 0000:6a:01.0 pasid=1 addr=0x1000 access=r         # 12 SUCCESS
        invalidate m1 0x1000-0x3000                             # 13, 14 (ATC 6a:01.0)
        unbind a                                                # 15-21: flush at 16, H1 freed at 21
        fault 0000:6a:01.0 pasid=1 addr=0x2000 access=w         # 22: the device still uses PASID 1 after unbind
        bind b 0000:6a:01.0 m2                                  # 23-29: PASID 2, D2, H2 at 29
        bind c 0000:6a:02.0 m2                                  # 30-33: D2 shared, H3 at 33
        fault 0000:6a:01.0 pasid=2 addr=0x1000 access=r group=5 # 34 queued
        fault 0000:6a:01.0 pasid=2 addr=0x2000 access=r group=5 last  # 35 SUCCESS (2 requests)
        bind d 0000:6a:01.0 m1                                  # 36-41: PASID 1 again, D3, H4 at 41
        exit m2                                                 # 42-46: release, quiet 43/45, flush 44 (6a:01.0) / 46 (6a:02.0)
        unbind b                                                # 47-50: H2 freed at 50
        unbind c                                                # 51-56: H3 freed at 56, D2 freed at 55
        drop m2                                                 # 57-59: PASID 2 freed at 59
        """;

    public static Script Parse() => ScriptParser.Parse(Text, "h.sva");

    /// <summary>The session as the log would have it: seq, a fixed time, source, the call on each call's first event.</summary>
    public static List<LoggedEvent> Logged(string kernel = "6.8")
    {
        var v = KernelVersions.Get(kernel);
        var s = new SvaState();
        var list = new List<LoggedEvent>();
        var t0 = new DateTimeOffset(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);
        foreach (var line in Parse().Lines)
        {
            var events = SvaKernel.Execute(v, s, line.Call);
            for (var i = 0; i < events.Count; i++)
                list.Add(new LoggedEvent(list.Count + 1, t0.AddSeconds(list.Count + 1), line.Source, i == 0 ? line.Call : null, events[i]));
        }
        return list;
    }
}
