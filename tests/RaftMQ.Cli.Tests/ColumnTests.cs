namespace RaftMQ.Cli.Tests;

/// <summary>A value in a tab-separated column before the last (a dead letter's last error) never moves the columns after it.</summary>
public sealed class ColumnTests
{
    [Theory]
    [InlineData("timeout", "timeout")]
    [InlineData("", "")]
    [InlineData("a\tb", @"a\tb")]
    [InlineData("line 1\nline 2\r\n", @"line 1\nline 2\r\n")]
    [InlineData(@"C:\path\t", @"C:\\path\\t")]
    [InlineData("é ✓", "é ✓")]
    public void Tabs_line_breaks_and_backslashes_are_escaped(string value, string written)
    {
        var column = Cli.Column(value);
        column.ShouldBe(written);
        column.IndexOfAny(['\t', '\n', '\r']).ShouldBe(-1);
    }
}
