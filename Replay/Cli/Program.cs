using System.CommandLine;
using Sva.Commands;
using Sva.Domain;
using Sva.Domain.Json;
using Sva.EventStore;
using Sva.Formats.Script;
using Sva.Projections;
using Sva.Replay;
using Sva.Replay.Verbs;

StartTrace.Mark("Main");
var common = new CliCommon();
var root = new RootCommand("""
    sva: an event-sourced simulator of the Linux IOMMU Shared Virtual Addressing (SVA) subsystem.
    Every bind, unbind, attach, page fault, page response, invalidation, mm release and mm drop is an event
    in PostgreSQL (SVA_DB, an Npgsql connection string; without it a throwaway local PostgreSQL 15 cluster is
    started by postgres-init/pg-up.sh). Positions are per-session seqs 1, 2, 3, ...

    Exit codes: 0 ok; 1 findings or differences (check, compare, history, verify, bisect, projections verify);
    2 bad input, nothing recorded (a script or capture line: file:line named; an option value, unknown verb or
    option, missing argument; an input missing, a directory or unreadable; an output not writable; a malformed
    SVA_DB); 3 database unavailable; 4 internal error.
    Limits: session names and mm/device/domain/handle/iommu names at most 200 characters; script lines at most
    4096 characters; pasids=N 0..2^20, PASIDs 0..2^20-1; seqs 0..2^63-1; no NUL byte in scripts or captures.
    """)
{
    common.Verbose,
};
root.Subcommands.Add(RunVerb.Build(common));
root.Subcommands.Add(ImportVerb.Build(common));
root.Subcommands.Add(FormatsVerb.Build(common));
root.Subcommands.Add(StateVerb.Build(common));
root.Subcommands.Add(WhyVerb.Build(common));
root.Subcommands.Add(GenerateVerb.Build(common));
root.Subcommands.Add(DiffVerb.Build(common));
root.Subcommands.Add(BisectVerb.Build(common));
root.Subcommands.Add(HistoryVerb.Build(common));
root.Subcommands.Add(VerifyVerb.Build(common));
root.Subcommands.Add(BenchVerb.Build(common));
root.Subcommands.Add(LogVerb.Build(common));
root.Subcommands.Add(SessionsVerb.Build(common));
root.Subcommands.Add(SessionsVerb.Kernels(common));
root.Subcommands.Add(SessionsVerb.Projections(common));
root.Subcommands.Add(TimelineVerb.Build(common));
root.Subcommands.Add(ExportVerb.Build(common));
root.Subcommands.Add(StepVerb.Build(common));
root.Subcommands.Add(CheckVerb.Build(common));
root.Subcommands.Add(CompareVerb.Build(common));
CliParsing.Install(root);
StartTrace.Mark("verbs built");
var parsed = root.Parse(args);
if (CliParsing.Reject(parsed) is { } usage) return usage;
StartTrace.Mark("parsed");
var exit = await parsed.InvokeAsync();
StartTrace.Mark("verb done");
return exit;

namespace Sva.Replay
{
    /// <summary>Options every verb shares and the one place errors become exit codes.</summary>
    public sealed class CliCommon
    {
        public Option<bool> Json { get; } = new("--json") { Description = "Machine-readable output (JSON Lines, or one JSON document for state)" };
        public Option<bool> Verbose { get; } = new("--verbose", "-v") { Description = "Log each command's timing to stderr", Recursive = true };

        /// <summary>For verbs that record: the writer's connection (SVA_DB or the local cluster).</summary>
        public Task<SvaHost> OpenAsync(ParseResult pr, CancellationToken ct) =>
            SvaHost.OpenAsync(pr.GetValue(Verbose) ? Console.Error : null, ct);

        /// <summary>For query verbs: the read-only role (append-only by privilege: a query cannot write).</summary>
        public Task<SvaHost> OpenReadOnlyAsync(ParseResult pr, CancellationToken ct) =>
            SvaHost.OpenAsync(pr.GetValue(Verbose) ? Console.Error : null, ct, readOnly: true);

        public static async Task<int> Guard(Func<Task<int>> body)
        {
            try { return await body(); }
            catch (OperationCanceledException) { Output.Error("cancelled"); return 130; }
            catch (Exception ex) when (Classify(ex) is { } code)
            {
                Output.Error(ex.Message);
                return code;
            }
        }

        private static int? Classify(Exception ex) => ex switch
        {
            UserInputException or ScriptFormatException or UnsupportedKernelException or CommandValidationException
                or SessionKernelMismatchException or StoredEventException or EventFormatException => 2,
            EventStoreUnavailableException or LocalClusterException or Npgsql.NpgsqlException => 3,
            _ => Internal(ex),
        };

        private static int Internal(Exception ex)
        {
            Console.Error.WriteLine(ex.ToString());
            return 4;
        }
    }
}
