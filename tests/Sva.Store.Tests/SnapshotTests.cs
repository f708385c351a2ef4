namespace Sva.Store.Tests;

public sealed class SnapshotTests(StoreFixture f) : IClassFixture<StoreFixture>
{
    [Fact]
    public async Task Load_returns_the_nearest_snapshot_at_or_below()
    {
        var id = await f.NewSessionAsync("snap");
        Assert.Null(await f.Store.LoadSnapshotAsync(id, long.MaxValue));
        await f.Store.SaveSnapshotAsync(id, 5, """{"at": 5}""");
        await f.Store.SaveSnapshotAsync(id, 20, """{"at": 20}""");
        await f.Store.SaveSnapshotAsync(id, 10, """{"at":10, "b": [1]}""");

        Assert.Null(await f.Store.LoadSnapshotAsync(id, 4));
        Assert.Equal((5L, """{"at": 5}"""), await f.Store.LoadSnapshotAsync(id, 5));
        Assert.Equal((5L, """{"at": 5}"""), await f.Store.LoadSnapshotAsync(id, 9));
        Assert.Equal((10L, """{"b": [1], "at": 10}"""), await f.Store.LoadSnapshotAsync(id, 19));
        Assert.Equal((20L, """{"at": 20}"""), await f.Store.LoadSnapshotAsync(id, 20));
        Assert.Equal((20L, """{"at": 20}"""), await f.Store.LoadSnapshotAsync(id, long.MaxValue));

        // Saving the same seq again replaces it; other sessions are separate.
        await f.Store.SaveSnapshotAsync(id, 20, """{"at": "twenty"}""");
        Assert.Equal((20L, """{"at": "twenty"}"""), await f.Store.LoadSnapshotAsync(id, 25));
        Assert.Null(await f.Store.LoadSnapshotAsync(await f.NewSessionAsync("snap-other"), long.MaxValue));
    }

    [Fact]
    public async Task Checkpoints_round_trip()
    {
        var name = $"test-cp-{Guid.NewGuid():N}";
        Assert.Null(await f.Store.LoadCheckpointAsync(name));
        await f.Store.SaveCheckpointAsync(name, 42);
        Assert.Equal(42, await f.Store.LoadCheckpointAsync(name));
        await f.Store.SaveCheckpointAsync(name, 43);
        Assert.Equal(43, await f.Store.LoadCheckpointAsync(name));
    }
}
