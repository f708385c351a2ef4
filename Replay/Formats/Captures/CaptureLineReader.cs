namespace Sva.Formats.Captures;

/// <summary>The capture's lines: counts them (progress, the summary's <c>lines</c>) and can hold the first lines back for
/// format detection, then replays them.</summary>
public sealed class CaptureLineReader(TextReader inner) : TextReader
{
    private Queue<string>? head;

    /// <summary>Lines handed out so far.</summary>
    public long Lines { get; private set; }

    public async Task<IReadOnlyList<string>> BufferHeadAsync(int count, CancellationToken ct)
    {
        var list = new List<string>(Math.Min(count, 1024));
        while (list.Count < count && await inner.ReadLineAsync(ct) is { } l) list.Add(l);
        head = new Queue<string>(list);
        return list;
    }

    public override string? ReadLine()
    {
        var l = head is { Count: > 0 } ? head.Dequeue() : inner.ReadLine();
        if (l is not null) Lines++;
        return l;
    }

    public override Task<string?> ReadLineAsync() => ReadLineAsync(CancellationToken.None).AsTask();

    public override async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var l = head is { Count: > 0 } ? head.Dequeue() : await inner.ReadLineAsync(cancellationToken);
        if (l is not null) Lines++;
        return l;
    }

    public override int Peek() => throw new NotSupportedException("line reader");
    public override int Read() => throw new NotSupportedException("line reader");

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
