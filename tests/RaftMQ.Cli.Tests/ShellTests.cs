namespace RaftMQ.Cli.Tests;

/// <summary>How the shell splits a line into words, and when it finds a quote left open (one piece of logic for both).</summary>
public sealed class ShellTests
{
    [Theory]
    [InlineData("publish t hi", new[] { "publish", "t", "hi" })]
    [InlineData("  publish   t\thi  ", new[] { "publish", "t", "hi" })]
    [InlineData("publish t \"two words\"", new[] { "publish", "t", "two words" })]
    [InlineData("publish t \"a \\\" b\"", new[] { "publish", "t", "a \" b" })]
    [InlineData("publish t say\\\"hi\\\"", new[] { "publish", "t", "say\"hi\"" })]
    [InlineData("publish t \"back\\\\slash\"", new[] { "publish", "t", "back\\slash" })]
    [InlineData("publish t \"ends in a backslash\\\\\"", new[] { "publish", "t", "ends in a backslash\\" })]
    [InlineData("publish t C:\\dir\\n", new[] { "publish", "t", "C:\\dir\\n" })]
    [InlineData("publish t a\"b c\"d", new[] { "publish", "t", "ab cd" })]
    [InlineData("publish t \"\"", new[] { "publish", "t", "" })]
    [InlineData("publish t don't", new[] { "publish", "t", "don't" })]
    [InlineData("publish t trailing\\", new[] { "publish", "t", "trailing\\" })]
    public void A_line_splits_into_its_words(string line, string[] expected)
    {
        Shell.TrySplit(line, out var words).ShouldBeTrue();
        words.ShouldBe(expected);
    }

    [Theory]
    [InlineData("publish t \"no end")]
    [InlineData("publish t \"an escaped quote does not close it \\\"")]
    [InlineData("publish t \"a\" \"b")]
    [InlineData("publish t \\\\\"")]
    public void An_unterminated_quote_is_found_whatever_the_escapes(string line)
    {
        Shell.TrySplit(line, out var words).ShouldBeFalse();
        words.ShouldBeEmpty();
    }
}
