using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace RaftMQ.Cli;

/// <summary>
/// The one parser of every numeric option and argument of the command tree, so that a value that is not a number, or
/// out of the option's range, is refused in words naming the option (<c>--delay-ms must be a whole number, not
/// 'abc'</c>, <c>--max must be at least 1</c>) instead of the parser's or the client's text about .NET types and
/// parameters. Its refusals are parse errors: exit 2, with the usage hint.
/// </summary>
internal static class NumericValues
{
    /// <summary>Bounds given with <see cref="Within{T}"/>, checked by the same parser.</summary>
    private static readonly ConditionalWeakTable<Symbol, Tuple<long, long>> s_bounds = [];

    /// <summary>The most milliseconds a <see cref="TimeSpan"/> holds: the upper bound of a duration option in ms.</summary>
    public const long MaxMilliseconds = long.MaxValue / TimeSpan.TicksPerMillisecond;

    /// <summary>Gives <paramref name="option"/> bounds, refused at parse time as <c>--NAME must be at least MIN</c> (or at most MAX).</summary>
    public static Option<T> Within<T>(this Option<T> option, long minimum, long maximum = long.MaxValue)
    {
        s_bounds.AddOrUpdate(option, Tuple.Create(minimum, maximum));
        return option;
    }

    /// <summary>Installs the parser on every numeric option and argument of <paramref name="command"/> and its subcommands.</summary>
    public static void Install(Command command)
    {
        foreach (var o in command.Options) Install(o);
        foreach (var a in command.Arguments) Install(a);
        foreach (var c in command.Subcommands) Install(c);
    }

    private static void Install(Symbol symbol)
    {
        switch (symbol)
        {
            case Option<int> o: o.CustomParser = r => Whole<int>(r, o); break;
            case Option<int?> o: o.CustomParser = r => Whole<int>(r, o); break;
            case Option<long> o: o.CustomParser = r => Whole<long>(r, o); break;
            case Option<long?> o: o.CustomParser = r => Whole<long>(r, o); break;
            case Option<double> o: o.CustomParser = r => Number(r, o); break;
            case Option<double?> o: o.CustomParser = r => Number(r, o); break;
            case Argument<int> a: a.CustomParser = r => Whole<int>(r, a); break;
            case Argument<int?> a: a.CustomParser = r => Whole<int>(r, a); break;
        }
    }

    private static T Whole<T>(ArgumentResult result, Symbol symbol)
        where T : struct, IBinaryInteger<T>, IMinMaxValue<T>
    {
        if (Token(result, symbol) is not { } text) return default;
        if (!BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            result.AddError($"{symbol.Name} must be a whole number, not '{text}'");
            return default;
        }
        var (minimum, maximum) = (BigInteger.CreateTruncating(T.MinValue), BigInteger.CreateTruncating(T.MaxValue));
        if (s_bounds.TryGetValue(symbol, out var bounds)) (minimum, maximum) = (BigInteger.Max(minimum, bounds.Item1), BigInteger.Min(maximum, bounds.Item2));
        if (value < minimum || value > maximum)
        {
            result.AddError(value < minimum
                ? $"{symbol.Name} must be at least {minimum.ToString(CultureInfo.InvariantCulture)}"
                : $"{symbol.Name} must be at most {maximum.ToString(CultureInfo.InvariantCulture)}");
            return default;
        }
        return T.CreateTruncating(value);
    }

    private static double Number(ArgumentResult result, Symbol symbol)
    {
        if (Token(result, symbol) is not { } text) return default;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            result.AddError($"{symbol.Name} must be a number, not '{text}'");
            return default;
        }
        if (s_bounds.TryGetValue(symbol, out var bounds) && (value < bounds.Item1 || value > bounds.Item2))
        {
            result.AddError(value < bounds.Item1
                ? $"{symbol.Name} must be at least {bounds.Item1.ToString(CultureInfo.InvariantCulture)}"
                : $"{symbol.Name} must be at most {bounds.Item2.ToString(CultureInfo.InvariantCulture)}");
            return default;
        }
        return value;
    }

    /// <summary>The one token of a single-valued option or argument; null (with the error added) when there is none.</summary>
    private static string? Token(ArgumentResult result, Symbol symbol)
    {
        if (result.Tokens.Count == 1) return result.Tokens[0].Value;
        result.AddError(result.Tokens.Count == 0 ? $"{symbol.Name} needs a value" : $"{symbol.Name} takes one value");
        return null;
    }
}
