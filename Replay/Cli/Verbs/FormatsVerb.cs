using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;
using Sva.Formats.Import;

namespace Sva.Replay.Verbs;

public static class FormatsVerb
{
    public static Command Build(CliCommon common)
    {
        var cmd = new Command("formats", "The capture formats 'sva import' reads (--format), each with the records it recognises and the kernel calls they become")
        {
            common.Json,
        };
        cmd.SetAction((pr, ct) => CliCommon.Guard(() =>
        {
            var all = FormatCatalog.All;
            if (pr.GetValue(common.Json))
            {
                foreach (var f in all)
                    Output.JsonLine(new JsonObject
                    {
                        ["name"] = f.Name,
                        ["description"] = f.Description,
                        ["records"] = new JsonArray(f.Records.Select(r => (JsonNode)new JsonObject
                        {
                            ["printed"] = r.Printed, ["kind"] = r.Kind, ["maps_to"] = r.MapsTo,
                        }).ToArray()),
                    });
                return Task.FromResult(0);
            }
            var c = Output.Console;
            var t = Output.Table("format", "description");
            t.Row("auto", "(default) detect the format from the first 1000 lines (up to 10000 when those fit nothing: a shell prompt, the command run, a label); 'sva import' names the lines that fit");
            foreach (var f in all) t.Row(f.Name, f.Description);
            c.Write(t);
            foreach (var f in all)
            {
                c.Write(new Rule(f.Name).LeftJustified());
                var r = Output.Table("record", "kind", "becomes");
                foreach (var rec in f.Records) r.Row(rec.Printed, rec.Kind, rec.MapsTo);
                c.Write(r);
            }
            return Task.FromResult(0);
        }));
        return cmd;
    }
}
