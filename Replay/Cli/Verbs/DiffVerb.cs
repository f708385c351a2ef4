using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Domain;
using Sva.Projections;
using Sva.Projections.Queries;

namespace Sva.Replay.Verbs;

public static class DiffVerb
{
    public static Command Build(CliCommon common)
    {
        var session = new Argument<string>("session") { Description = "Session name (see 'sva sessions')" };
        var from = new Option<long>("--from") { Description = "The earlier seq (the state after its event; 0: the empty state)", DefaultValueFactory = _ => 0 };
        var to = new Option<long?>("--to") { Description = "The later seq (default: the session's last event)" };
        var cmd = new Command("diff", """
            What changed between two seqs of a session: objects created, freed, changed (refcounts such as domain users,
            handle users, mm_users/mm_count, notifier refs; PASID table entries and group pasid_array slots; mm states)
            and created-then-freed in between, each with the seqs of the events responsible. Object kinds: device,
            pasid-entry (device/PASID), slot (group/PASID), pasid (the allocator), mm, domain, handle, notifier, cd.
            """)
        {
            session, from, to, common.Json,
        };
        CliParsing.FromNotAfterTo(cmd, from, to);
        cmd.SetAction((pr, ct) => CliCommon.Guard(async () =>
        {
            await using var host = await common.OpenReadOnlyAsync(pr, ct);
            var name = pr.GetValue(session)!;
            var info = await host.SessionAsync(name, ct);
            var a = pr.GetValue(from);
            var b = pr.GetValue(to) ?? info.Version;
            if (a < 0 || a > info.Version) throw new UserInputException($"--from {a}: session '{name}' has seqs 0..{info.Version}");
            if (b < 0 || b > info.Version) throw new UserInputException($"--to {b}: session '{name}' has seqs 0..{info.Version}");
            if (a > b) throw new UserInputException($"--from {a} is after --to {b}");
            var start = await TimeTravel.LoadAsync(host.Store, name, a, true, ct);
            var events = new List<(long, SvaEvent)>();
            await foreach (var e in host.Store.ReadSessionAsync(name, a + 1, b, ct)) events.Add((e.Seq, EventCodec.Decode(e)));
            var d = StateDiff.Compute(start.State, events);
            if (pr.GetValue(common.Json)) Output.JsonDocument(ToJson(name, d));
            else Render(name, d);
            return 0;
        }));
        return cmd;
    }

    public static JsonObject ToJson(string session, DiffResult d)
    {
        static JsonNode? Fields(IReadOnlyDictionary<string, string?>? f) =>
            f is null ? null : new JsonObject(f.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)(kv.Value is null ? null : JsonValue.Create(kv.Value)))));
        static JsonArray Seqs(IReadOnlyList<long> s) => new(s.Select(x => (JsonNode)JsonValue.Create(x)).ToArray());
        static JsonArray List(IEnumerable<ObjectChange> l, bool before, bool after) => new(l.Select(c =>
        {
            var o = new JsonObject { ["kind"] = c.Kind, ["id"] = c.Id };
            if (before) o["before"] = Fields(c.Before);
            if (after) o["after"] = Fields(c.After);
            if (c.Changes.Count > 0)
                o["changes"] = new JsonArray(c.Changes.Select(x => (JsonNode)new JsonObject { ["field"] = x.Field, ["from"] = x.From, ["to"] = x.To }).ToArray());
            o["seqs"] = Seqs(c.Seqs);
            return (JsonNode)o;
        }).ToArray());
        return new JsonObject
        {
            ["session"] = session,
            ["from"] = d.From,
            ["to"] = d.To,
            ["events"] = d.EventsFolded,
            ["created"] = List(d.Created, false, true),
            ["freed"] = List(d.Freed, true, false),
            ["changed"] = List(d.Changed, false, false),
            ["created_and_freed"] = List(d.Transient, false, false),
        };
    }

    private static string SeqList(IReadOnlyList<long> s, int max = 8) =>
        s.Count <= max ? string.Join(" ", s) : $"{string.Join(" ", s.Take(max / 2))} … {string.Join(" ", s.TakeLast(max / 2))} ({s.Count} events)";

    private static string FieldsText(IReadOnlyDictionary<string, string?>? f) =>
        f is null ? "" : string.Join(" ", f.Where(kv => !string.IsNullOrEmpty(kv.Value)).Select(kv => $"{kv.Key}={kv.Value}"));

    public static void Render(string session, DiffResult d)
    {
        var c = Output.Console;
        c.WriteLine($"session {session}: seq {d.From} → {d.To} ({d.EventsFolded} events): {d.Created.Count} created, {d.Freed.Count} freed, {d.Changed.Count} changed, {d.Transient.Count} created and freed");
        void Section(string title, IReadOnlyList<ObjectChange> list, Func<ObjectChange, string> what)
        {
            if (list.Count == 0) return;
            var t = Output.Table("kind", "id", "what", "events (seqs)");
            foreach (var x in list) t.Row(x.Kind, x.Id, what(x), SeqList(x.Seqs));
            c.Write(new Rule(title).LeftJustified());
            c.Write(t);
        }
        Section("created", d.Created, x => FieldsText(x.After));
        Section("freed", d.Freed, x => FieldsText(x.Before));
        Section("changed", d.Changed, x => string.Join(", ", x.Changes.Select(ch => $"{ch.Field} {ch.From ?? "-"} → {ch.To ?? "-"}")));
        Section("created and freed in between", d.Transient, _ => "");
    }
}
