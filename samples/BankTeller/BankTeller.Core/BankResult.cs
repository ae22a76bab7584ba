using System.Buffers.Binary;
using System.Text;
using RaftMQ.StateMachine.Sessions;

namespace BankTeller;

public enum BankStatus : byte
{
    /// <summary>Applied; <see cref="BankResult.Balance"/> is the new balance.</summary>
    Ok = 0,

    /// <summary>A debit larger than the balance: refused, nothing changed.</summary>
    InsufficientFunds = 1,

    /// <summary>The amount is not positive, has more than two decimal places, or is above the largest allowed.</summary>
    InvalidAmount = 2,

    /// <summary>The account name breaks the naming rule.</summary>
    InvalidAccount = 3,

    /// <summary>A bound was reached (number of accounts, largest balance): refused, nothing changed.</summary>
    LimitReached = 4,

    /// <summary>The entry was not a bank command.</summary>
    Malformed = 5,
}

/// <summary>The outcome of one command: its status and the account's balance after it (unchanged when refused).</summary>
public sealed record BankResult(BankStatus Status, string Account, decimal Balance)
{
    public bool IsOk => Status == BankStatus.Ok;
}

/// <summary>Bytes of a <see cref="BankResult"/>, so the session table can answer a retried command with it.</summary>
public sealed class BankResultCodec : IResultCodec
{
    public static BankResultCodec Instance { get; } = new();

    public byte[] Encode(object? result)
    {
        var r = result as BankResult ?? throw new ArgumentException($"not a bank result: {result}", nameof(result));
        var name = Encoding.UTF8.GetBytes(r.Account);
        var buffer = new byte[1 + DecimalCodec.Bytes + name.Length];
        buffer[0] = (byte)r.Status;
        DecimalCodec.Write(buffer.AsSpan(1), r.Balance);
        name.CopyTo(buffer.AsSpan(1 + DecimalCodec.Bytes));
        return buffer;
    }

    public object? Decode(ReadOnlySpan<byte> bytes)
    {
        // The table only holds what Encode wrote on some node; a mismatch is a corrupted snapshot.
        if (bytes.Length < 1 + DecimalCodec.Bytes || !DecimalCodec.TryRead(bytes[1..], out var balance))
            throw new InvalidDataException("not an encoded bank result");
        return new BankResult((BankStatus)bytes[0], Encoding.UTF8.GetString(bytes[(1 + DecimalCodec.Bytes)..]), balance);
    }
}

/// <summary>The bank's bounds. Each keeps a replicated structure or a number from growing without limit.</summary>
public sealed record BankLimits
{
    public static BankLimits Default { get; } = new();

    /// <summary>Most accounts; a credit that would open one more is refused.</summary>
    public int MaxAccounts { get; init; } = 100_000;

    /// <summary>Longest account name, in characters (letters, digits, '-', '_', '.').</summary>
    public int MaxAccountNameLength { get; init; } = 64;

    /// <summary>Largest balance of one account (and so the largest amount); far from decimal's range, so sums never overflow.</summary>
    public decimal MaxBalance { get; init; } = 1_000_000_000_000m;

    /// <summary>Most decimal places of an amount (cents).</summary>
    public int MaxDecimalPlaces { get; init; } = 2;
}
