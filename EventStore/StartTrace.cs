using System.Diagnostics;

namespace Sva.EventStore;

/// <summary>
/// Where a command's start goes (README, "Command start"): with <c>SVA_TRACE_START=1</c> each step a command passes prints
/// to stderr the wall milliseconds since the process started, the process's CPU milliseconds, and how many methods the JIT
/// compiled so far (what ReadyToRun did not cover) with their compile time. Off: one static bool test per step.
/// </summary>
public static class StartTrace
{
    public static readonly bool On = Environment.GetEnvironmentVariable("SVA_TRACE_START") is "1" or "2";
    private static readonly DateTime Started = On ? Process.GetCurrentProcess().StartTime.ToUniversalTime() : default;
    private static double _lastWall, _lastCpu;
    private static readonly JitListener? Jits = Environment.GetEnvironmentVariable("SVA_TRACE_START") is "2" ? new JitListener() : null;

    /// <summary>With SVA_TRACE_START=2: every method the JIT compiled, with its tier (what ReadyToRun code did not serve).</summary>
    private sealed class JitListener : System.Diagnostics.Tracing.EventListener
    {
        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x10);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName != "MethodLoadVerbose_V2" && e.EventName != "MethodLoadVerbose_V1" && e.EventName != "MethodLoadVerbose") return;
            string Get(string n) { var i = e.PayloadNames!.IndexOf(n); return i < 0 ? "" : e.Payload![i]?.ToString() ?? ""; }
            Console.Error.WriteLine($"sva-jit: {Get("MethodFlags")} {Get("MethodNamespace")}::{Get("MethodName")}");
        }
    }

    public static void Mark(string step)
    {
        if (!On) return;
        var wall = (DateTime.UtcNow - Started).TotalMilliseconds;
        using var p = Process.GetCurrentProcess();
        var cpu = p.TotalProcessorTime.TotalMilliseconds;
        Console.Error.WriteLine(
            $"sva-start: {wall,7:F1} ms (+{wall - _lastWall,6:F1})  cpu {cpu,6:F0} ms (+{cpu - _lastCpu,5:F0})  jit {System.Runtime.JitInfo.GetCompiledMethodCount(),5} methods {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds,5:F0} ms  {step}");
        _lastWall = wall;
        _lastCpu = cpu;
    }
}
