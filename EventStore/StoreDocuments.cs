namespace Sva.EventStore;

/// <summary>Who a session is (kernel, source). Written in the transaction of its first events; the version is the stream's.</summary>
public sealed class SessionDoc
{
    public string Id { get; set; } = "";
    /// <summary>The rule set the session is decided under (a name or alias of KernelVersions, or a kernel file's name).</summary>
    public string Kernel { get; set; } = "";
    /// <summary>Added by issue 16/17: the kernel as the user named it, when not <see cref="Kernel"/>. Absent (null) in older documents.</summary>
    public string? KernelGiven { get; set; }
    public string? Source { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A snapshot document: a cache of a session's state at <see cref="Seq"/>. Id = session + "@" + seq (19 digits).</summary>
public sealed class SnapshotDoc
{
    public string Id { get; set; } = "";
    public string Session { get; set; } = "";
    public long Seq { get; set; }
    public string Json { get; set; } = "";
    public static string IdOf(string session, long seq) => $"{session}@{seq:D19}";
}

/// <summary>Progress of a recording source (import, script run), written with each batch it appends.</summary>
public sealed class SourceDoc
{
    public string Id { get; set; } = "";
    public string Session { get; set; } = "";
    public string Kind { get; set; } = "";
    public bool Complete { get; set; }
    public string Json { get; set; } = "{}";
}
