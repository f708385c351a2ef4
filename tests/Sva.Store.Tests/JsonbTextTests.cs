using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Sva.EventStore;
using Xunit;

namespace Sva.Store.Tests;

/// <summary>
/// The hash chain is over PostgreSQL's jsonb text; JsonbText renders it on the client. On a random
/// corpus it must render exactly what the server does, or decline (and the append asks the server).
/// </summary>
public sealed class JsonbTextTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    private static readonly string[] Palette =
        ["a", "b", "z", "_", " ", "0", "9", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\u0001", "\u001f", "\u007f", "é", "ß", "中", "😀", "<", ">", "&", "'", "+", "\u2028"];

    private static string RandomString(Random r, int max)
    {
        var sb = new StringBuilder();
        for (var i = r.Next(max + 1); i > 0; i--) sb.Append(Palette[r.Next(Palette.Length)]);
        return sb.ToString();
    }

    private static JsonNode? RandomNode(Random r, int depth)
    {
        switch (r.Next(depth > 3 ? 6 : 9))
        {
            case 0: return JsonValue.Create(RandomString(r, 12));
            case 1: return JsonValue.Create(r.NextInt64(long.MinValue, long.MaxValue));
            case 2: return JsonValue.Create(r.Next(-1000, 1000));
            case 3: return JsonValue.Create(r.Next(2) == 0);
            case 4: return null;
            case 5: return JsonValue.Create(Math.Round(r.NextDouble() * 10000, r.Next(0, 7)));
            case 6:
            {
                var a = new JsonArray();
                for (var i = r.Next(5); i > 0; i--) a.Add(RandomNode(r, depth + 1));
                return a;
            }
            default:
            {
                var o = new JsonObject();
                for (var i = r.Next(7); i > 0; i--) o[RandomString(r, 6)] = RandomNode(r, depth + 1);
                return o;
            }
        }
    }

    [Fact]
    public async Task client_rendering_equals_the_servers_jsonb_text_or_declines()
    {
        var r = new Random(20261121);
        var escaped = new JsonSerializerOptions();
        var raw = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var inputs = new List<string>();
        for (var i = 0; i < 3000; i++)
        {
            var node = RandomNode(r, 0);
            inputs.Add(node?.ToJsonString(i % 2 == 0 ? escaped : raw) ?? "null");
        }
        inputs.AddRange(["{}", "[]", "\"\"", "0", "-1", "12.50", "-0", "1e5", "{\"a\":1,\"a\":2}", "{\"bb\":1,\"a\":2,\"ab\":3}", "\"\\u0000\""]);

        var server = new string?[inputs.Count];
        await using (var conn = new NpgsqlConnection(f.ConnectionString))
        {
            await conn.OpenAsync();
            for (var i = 0; i < inputs.Count; i++)
            {
                await using var cmd = new NpgsqlCommand("SELECT $1::jsonb::text", conn);
                cmd.Parameters.Add(new NpgsqlParameter { Value = inputs[i], NpgsqlDbType = NpgsqlDbType.Text });
                try { server[i] = (string?)await cmd.ExecuteScalarAsync(); }
                catch (PostgresException) { server[i] = null; } // the server refuses it: the client must not accept it either
            }
        }
        var rendered = 0;
        for (var i = 0; i < inputs.Count; i++)
        {
            if (!JsonbText.TryCanonical(inputs[i], out var mine)) continue;
            rendered++;
            Assert.True(server[i] is not null, $"client rendered what the server refuses: {inputs[i]}");
            Assert.True(server[i] == mine, $"input {inputs[i]}\n server {server[i]}\n client {mine}");
        }
        Assert.True(rendered > inputs.Count * 9 / 10, $"only {rendered} of {inputs.Count} rendered on the client");
        Assert.False(JsonbText.TryCanonical("-0", out _));
        Assert.False(JsonbText.TryCanonical("1e5", out _));
        Assert.False(JsonbText.TryCanonical("{\"a\":1,\"a\":2}", out _));
    }

    /// <summary>Chain version 2 hashes the compact canonical form: what the writer derives from its own bytes must equal
    /// what verify derives from the server's jsonb text, for every input the writer accepts.</summary>
    [Fact]
    public async Task compact_canonical_form_from_the_writers_bytes_equals_the_servers_jsonb_text_without_blanks()
    {
        var r = new Random(20261202);
        var escaped = new JsonSerializerOptions();
        var raw = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var indented = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        var inputs = new List<string>();
        for (var i = 0; i < 3000; i++)
        {
            var node = RandomNode(r, 0);
            inputs.Add(node?.ToJsonString((i % 3) switch { 0 => escaped, 1 => raw, _ => indented }) ?? "null");
        }
        inputs.AddRange(["{}", "[]", "\"\"", "0", "-1", "12.50", "-0", "-0.0", "1e5", "{\"a\":1,\"a\":2}", "{\"bb\":1,\"a\":2,\"ab\":3}",
            "\"\\u0000\"", "{\"b\": [1, {\"z\": \"a, b: c\", \"y\": null}], \"a\": true}", " { \"k\" : \"v\" } ", "{\"a\":{\"c\":1,\"b\":2}}"]);

        var server = new string?[inputs.Count];
        await using (var conn = new NpgsqlConnection(f.ConnectionString))
        {
            await conn.OpenAsync();
            for (var i = 0; i < inputs.Count; i++)
            {
                await using var cmd = new NpgsqlCommand("SELECT $1::jsonb::text", conn);
                cmd.Parameters.Add(new NpgsqlParameter { Value = inputs[i], NpgsqlDbType = NpgsqlDbType.Text });
                try { server[i] = (string?)await cmd.ExecuteScalarAsync(); }
                catch (PostgresException) { server[i] = null; }
            }
        }
        var rendered = 0;
        for (var i = 0; i < inputs.Count; i++)
        {
            var w = new System.Buffers.ArrayBufferWriter<byte>();
            if (!CanonicalJson.TryWrite(inputs[i], w)) continue;
            rendered++;
            var mine = Encoding.UTF8.GetString(w.WrittenSpan);
            Assert.True(server[i] is not null, $"client rendered what the server refuses: {inputs[i]}");
            Assert.True(CanonicalJson.FromJsonbText(server[i]!) == mine, $"input {inputs[i]}\n server {server[i]}\n client {mine}");
        }
        Assert.True(rendered > inputs.Count * 9 / 10, $"only {rendered} of {inputs.Count} rendered on the client");
        var none = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.False(CanonicalJson.TryWrite("-0", none));
        Assert.False(CanonicalJson.TryWrite("{\"a\":1,\"a\":2}", none));
        Assert.False(CanonicalJson.TryWrite("not json", none));
        Assert.Equal(0, none.WrittenCount);
    }
}
