using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class HashChainTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task Chain_verifies_and_is_computed_over_the_normalized_jsonb_text()
    {
        var id = await f.NewSessionAsync("chain");
        // Unsorted keys, odd whitespace, a duplicate key, escapes: jsonb normalizes all of it.
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), [new NewEvent("A", """{ "zz":1,"a" : [1,  2.50], "a2":"\u0041\n", "k":1, "k":2 }""", """{"b":1,"a":2}""")]);
        await f.Store.AppendAsync(id, 1, Guid.NewGuid(), StoreFixture.Events(4));

        var read = await f.ReadSessionAsync(id);
        Assert.Equal("""{"a": [1, 2.50], "k": 2, "a2": "A\n", "zz": 1}""", read[0].DataJson);
        Assert.Equal("""{"a": 2, "b": 1}""", read[0].MetadataJson);

        // The documented scheme, recomputed independently from the rows.
        var prev = EventHash.Genesis();
        foreach (var e in read)
        {
            var h = EventHash.Compute(prev, e.Session, e.Seq, e.Type, e.DataJson, e.MetadataJson);
            Assert.Equal(Convert.ToHexString(h), Convert.ToHexString(e.Hash));
            prev = h;
        }

        var v = await f.Store.VerifyAsync(id);
        Assert.True(v.Ok, v.Reason);
        Assert.Equal(5, v.EventsChecked);
        Assert.Null(v.FirstBrokenSeq);
    }

    [Fact]
    public async Task Hash_depends_on_every_field()
    {
        var g = EventHash.Genesis();
        var baseHash = Convert.ToHexString(EventHash.Compute(g, "s", 1, "T", "{}", "{}"));
        var one = new byte[32];
        one[0] = 1;
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(one, "s", 1, "T", "{}", "{}")));
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(g, "t", 1, "T", "{}", "{}")));
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(g, "s", 2, "T", "{}", "{}")));
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(g, "s", 1, "U", "{}", "{}")));
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(g, "s", 1, "T", "[]", "{}")));
        Assert.NotEqual(baseHash, Convert.ToHexString(EventHash.Compute(g, "s", 1, "T", "{}", "[]")));
        // Length prefixes: moving a character between fields changes the hash.
        Assert.NotEqual(Convert.ToHexString(EventHash.Compute(g, "ab", 1, "c", "{}", "{}")),
            Convert.ToHexString(EventHash.Compute(g, "a", 1, "bc", "{}", "{}")));
        Assert.Equal(baseHash, Convert.ToHexString(EventHash.Compute(g, "s", 1, "T", "{}", "{}")));
        await Task.CompletedTask;
    }

    [Theory]
    [InlineData("data")]
    [InlineData("hash")]
    [InlineData("type")]
    public async Task Tampered_row_is_detected_at_exactly_its_seq(string column)
    {
        var id = await f.NewSessionAsync("tamper");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(6));
        Assert.True((await f.Store.VerifyAsync(id)).Ok);

        // As superuser, bypassing the append-only trigger for this session only (replica mode skips ordinary triggers).
        await using (var conn = await f.OpenAsync())
        {
            await using var tx = await conn.BeginTransactionAsync();
            await using (var off = new NpgsqlCommand("SET LOCAL session_replication_role = replica", conn, tx)) await off.ExecuteNonQueryAsync();
            var set = column switch
            {
                "data" => "data = jsonb_set(data, '{i}', '999')",
                "hash" => "hash = sha256(hash)",
                _ => "type = 'Forged'",
            };
            await using var upd = new NpgsqlCommand($"UPDATE events SET {set} WHERE session = $1 AND seq = 4", conn, tx);
            upd.Parameters.Add(new NpgsqlParameter { Value = id });
            Assert.Equal(1, await upd.ExecuteNonQueryAsync());
            await tx.CommitAsync();
        }

        var v = await f.Store.VerifyAsync(id);
        Assert.False(v.Ok);
        Assert.Equal(4, v.FirstBrokenSeq);
        Assert.Equal(3, v.EventsChecked);
        Assert.Contains("seq 4", v.Reason);
    }

    [Fact]
    public async Task Missing_tail_and_head_mismatch_are_detected()
    {
        var id = await f.NewSessionAsync("tamper-head");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(3));
        await using (var conn = await f.OpenAsync())
        {
            await using var cmd = new NpgsqlCommand("UPDATE sessions SET version = 4 WHERE id = $1", conn);
            cmd.Parameters.Add(new NpgsqlParameter { Value = id });
            await cmd.ExecuteNonQueryAsync();
        }

        var v = await f.Store.VerifyAsync(id);
        Assert.False(v.Ok);
        Assert.Equal(4, v.FirstBrokenSeq);

        await Assert.ThrowsAsync<SessionNotFoundException>(() => f.Store.VerifyAsync(StoreFixture.NewSessionId("none")));
    }
}
