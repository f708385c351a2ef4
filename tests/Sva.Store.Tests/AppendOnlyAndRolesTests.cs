using Npgsql;
using Sva.EventStore;

namespace Sva.Store.Tests;

public sealed class AppendOnlyAndRolesTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    /// <summary>Runs <paramref name="sql"/> (parameter $1 = session) in a transaction that is always rolled back,
    /// so a statement that wrongly succeeds cannot damage other tests; returns the error or null.</summary>
    private async Task<PostgresException?> TryInRolledBackTransactionAsync(string? user, string sql, string session)
    {
        await using var conn = await f.OpenAsync(user);
        await using var tx = await conn.BeginTransactionAsync(); // disposed without commit = rolled back
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        if (sql.Contains("$1", StringComparison.Ordinal)) cmd.Parameters.Add(new NpgsqlParameter { Value = session });
        cmd.CommandTimeout = 60;
        try
        {
            await cmd.ExecuteNonQueryAsync();
            return null;
        }
        catch (PostgresException ex)
        {
            return ex;
        }
    }

    [Theory]
    [InlineData("UPDATE events SET type = 'X' WHERE session = $1")]
    [InlineData("DELETE FROM events WHERE session = $1")]
    [InlineData("TRUNCATE events")]
    public async Task Events_refuse_update_delete_truncate_even_for_the_superuser(string sql)
    {
        var id = await f.NewSessionAsync("append-only");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(2));

        var ex = await TryInRolledBackTransactionAsync(null, sql, id);

        Assert.NotNull(ex);
        Assert.Equal("events are append-only", ex.MessageText);
        Assert.Equal(2, (await f.ReadSessionAsync(id)).Count);
    }

    [Theory]
    [InlineData("UPDATE events SET type = 'X' WHERE session = $1")]
    [InlineData("DELETE FROM events WHERE session = $1")]
    [InlineData("TRUNCATE events")]
    public async Task Writer_role_cannot_update_delete_or_truncate_events(string sql)
    {
        var id = await f.NewSessionAsync("writer-deny");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(2));

        var ex = await TryInRolledBackTransactionAsync("sva_writer", sql, id);

        Assert.NotNull(ex);
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, ex.SqlState);
        Assert.Equal(2, (await f.ReadSessionAsync(id)).Count);
    }

    [Fact]
    public async Task Writer_role_can_append_read_and_snapshot()
    {
        await using var writer = PgEventStore.Create(f.ConnectionStringAs("sva_writer"));
        var id = StoreFixture.NewSessionId("writer-ok");
        await writer.CreateSessionAsync(id, "6.8", null);
        await writer.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(3));
        await writer.AppendAsync(id, 3, Guid.NewGuid(), StoreFixture.Events(120)); // COPY path
        await writer.SaveSnapshotAsync(id, 3, """{"v": 3}""");
        await writer.SaveCheckpointAsync($"test-writer-{Guid.NewGuid():N}", 1);
        Assert.Equal(123, (await writer.GetSessionAsync(id))!.Version);
        Assert.True((await writer.VerifyAsync(id)).Ok);
    }

    [Fact]
    public async Task Reader_role_can_read_but_not_write()
    {
        var id = await f.NewSessionAsync("reader");
        await f.Store.AppendAsync(id, 0, Guid.NewGuid(), StoreFixture.Events(2));
        await using var reader = PgEventStore.Create(f.ConnectionStringAs("sva_reader"));

        var read = new List<StoredEvent>();
        await foreach (var e in reader.ReadSessionAsync(id)) read.Add(e);
        Assert.Equal(2, read.Count);
        Assert.True((await reader.VerifyAsync(id)).Ok);

        var insert = await TryInRolledBackTransactionAsync("sva_reader",
            "INSERT INTO events (position, session, seq, type, data, hash) VALUES (-1, $1, 3, 'X', '{}', '\\x00')", id);
        Assert.NotNull(insert);
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, insert.SqlState);

        var append = await Assert.ThrowsAsync<PostgresException>(() => reader.AppendAsync(id, 2, Guid.NewGuid(), StoreFixture.Events(1)));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, append.SqlState);
        await Assert.ThrowsAsync<PostgresException>(() => reader.CreateSessionAsync(StoreFixture.NewSessionId("reader-new"), "k", null));
        Assert.Equal(2, (await f.Store.GetSessionAsync(id))!.Version);
    }
}
