namespace Sva.EventStore;

// Verify: the hash chain recomputed from the database alone, the stream head, the snapshots' bindings.
public sealed partial class MartenEventStore
{
    // ------------------------------------------------------------------ verify

    public async Task<VerifyResult> VerifyAsync(string session, CancellationToken ct = default)
    {
        ValidateSessionId(session);
        var version = await RunAsync(() => FetchVersionAsync(session, ct), ct) ?? 0;
        var prev = EventHash.Genesis();
        var computed = new byte[EventHash.Size];
        long expectedSeq = 1, checkedCount = 0;
        var stateAt = new Dictionary<long, string>();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await foreach (var e in ReadSessionAsync(session, 1, long.MaxValue, ct))
        {
            if (e.Seq != expectedSeq)
                return Broken(expectedSeq, $"seq {expectedSeq} is missing (the next stored seq is {e.Seq})");
            switch (e.Chain)
            {
                case 1: EventHash.Compute(sha, prev, e.Session, e.Seq, e.Type, e.DataJson, e.Metadata, e.StateDigest, computed); break;
                case 2: EventHash.ComputeV2(sha, prev, e.Session, e.Seq, e.Type, e.DataJson, e.MetadataIsJson, e.Metadata, e.StateDigest, computed); break;
                default: return Broken(e.Seq, $"seq {e.Seq} was written with hash-chain version {e.Chain}, which this sva does not know (it reads 1 and 2): verify it with a newer sva");
            }
            if (!computed.AsSpan().SequenceEqual(e.Hash))
                return Broken(e.Seq, $"the stored hash of seq {e.Seq} does not match its recomputed hash: the event or an earlier link was altered");
            if (e.StateDigest is { } d) stateAt[e.Seq] = d;
            prev = e.Hash;
            expectedSeq++;
            checkedCount++;
        }
        var lastSeq = expectedSeq - 1;
        if (lastSeq < version)
            return Broken(lastSeq + 1, $"the stream's version is {version} but the events end at seq {lastSeq}");
        if (lastSeq > version)
            return Broken(version + 1, $"events are stored beyond the stream's version {version} (up to seq {lastSeq})");

        var warnings = new List<string>();
        foreach (var snap in await RunAsync(() => AllSnapshotsAsync(session, withPayload: true, ct), ct))
        {
            if (!stateAt.TryGetValue(snap.Seq, out var recorded))
                warnings.Add($"snapshot at seq {snap.Seq}: the log recorded no snapshot there (not used)");
            else if (snap.Payload is null)
                warnings.Add($"snapshot at seq {snap.Seq}: its bytes do not decode (an unknown encoding or altered): not used");
            else if (recorded != SnapshotCodec.Digest(snap.Payload))
                warnings.Add($"snapshot at seq {snap.Seq}: its SHA-256 differs from the one the log recorded at that seq: altered (not used)");
        }
        return new VerifyResult(session, warnings.Count == 0, checkedCount, warnings.Count == 0 ? null : version,
            warnings.Count == 0 ? null : warnings[0]) { Warnings = warnings };

        VerifyResult Broken(long seq, string reason) => new(session, false, checkedCount, seq, reason);
    }
}
