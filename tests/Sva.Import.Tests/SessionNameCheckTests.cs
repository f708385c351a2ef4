using Sva.Commands;
using Sva.EventStore;

namespace Sva.Import.Tests;

/// <summary>One session-name check (<see cref="SessionName"/>): run and import validate a session name with it and say
/// the same thing, and a name PostgreSQL text cannot store (an unpaired surrogate, a NUL) is refused before the store.</summary>
public sealed class SessionNameCheckTests
{
    public static TheoryData<string, string> BadNames => new()
    {
        { "", "is empty" },
        { "   ", "is empty" },
        { new string('s', 201), "is 201 characters long; names are at most 200 characters" },
        { "bell\u0007", "holds the control character U+0007" },
        { "nul\0x", "holds a NUL byte at character 4, which the database cannot store" },
    };

    /// <summary>Unpaired surrogates (built here: xUnit's theory data would turn them into U+FFFD on the way).</summary>
    [Fact]
    public void an_unpaired_surrogate_is_refused_by_run_and_import_alike()
    {
        foreach (var (name, problem) in new[]
                 {
                     ("half" + (char)0xD800 + "pair", "holds U+D800 at character 5, which the database cannot store"),
                     ("low" + (char)0xDC00, "holds U+DC00 at character 4, which the database cannot store"),
                     ((char)0xDC00 + "" + (char)0xD800, "holds U+DC00 at character 1, which the database cannot store"),
                 })
            run_import_and_the_check_agree_on_a_bad_name(name, problem);
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public void run_import_and_the_check_agree_on_a_bad_name(string name, string problem)
    {
        Assert.Equal(problem, SessionName.Problem(name));
        Assert.Contains($"session name {problem}", new RecordCalls(name, "6.8", null, []).Validate());
        Assert.Contains($"session name {problem}", new ImportCapture("x.txt", Session: name).Validate());
    }

    [Theory]
    [InlineData("s")]
    [InlineData("ftrace-sva-smmu-2-3f2a9c1e-6.8")]
    [InlineData("emoji-\U0001F600-pair")]
    public void a_usable_name_passes_everywhere(string name)
    {
        Assert.Null(SessionName.Problem(name));
        Assert.Empty(new RecordCalls(name, "6.8", null, []).Validate());
        Assert.Empty(new ImportCapture("x.txt", Session: name).Validate());
        Assert.Null(SessionName.Problem(new string('s', SessionName.MaxLength)));
    }
}
