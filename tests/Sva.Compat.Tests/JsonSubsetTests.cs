using System.Text.Json.Nodes;

namespace Sva.Compat.Tests;

/// <summary>The comparison the compatibility tests rest on catches what it must (in-process, no database).</summary>
public sealed class JsonSubsetTests
{
    private static string? Diff(string e, string a) => JsonSubset.FirstDifference(JsonNode.Parse(e), JsonNode.Parse(a));

    [Fact]
    public void Added_members_are_allowed() =>
        Assert.Null(Diff("""{"a":1,"b":[{"c":"x"}]}""", """{"a":1,"z":true,"b":[{"c":"x","set_at":{"seq":3}}]}"""));

    [Theory]
    [InlineData("""{"a":1}""", """{"a":2}""", "$.a: expected 1, got 2")]
    [InlineData("""{"a":1,"b":2}""", """{"a":1}""", "$.b: missing (expected 2)")]
    [InlineData("""{"b":[1,2]}""", """{"b":[1]}""", "$.b: expected 2 elements, got 1")]
    [InlineData("""{"b":[{"c":"x"}]}""", """{"b":[{"c":"y"}]}""", "$.b[0].c: expected \"x\", got \"y\"")]
    [InlineData("""{"a":null}""", """{"a":0}""", "$.a: expected null, got 0")]
    [InlineData("""{"a":{"b":1}}""", """{"a":[1]}""", "$.a: expected an object, got [1]")]
    public void Lost_or_changed_values_are_named(string expected, string actual, string difference) =>
        Assert.Equal(difference, Diff(expected, actual));

    [Fact]
    public void Lines_are_compared_in_order_and_counted()
    {
        Assert.Null(JsonSubset.FirstDifferenceInLines("{\"s\":1}\n{\"s\":2}\n", "{\"s\":1,\"t\":0}\n{\"s\":2}\n"));
        Assert.Equal("line 2: $.s: expected 2, got 3", JsonSubset.FirstDifferenceInLines("{\"s\":1}\n{\"s\":2}\n", "{\"s\":1}\n{\"s\":3}\n"));
        Assert.Equal("expected 2 lines, got 1", JsonSubset.FirstDifferenceInLines("{\"s\":1}\n{\"s\":2}\n", "{\"s\":1}\n"));
    }
}
