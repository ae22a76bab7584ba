using System.Text;
using RaftMQ.StateMachine;

namespace BankTeller;

/// <summary>
/// The bank as a replicated state machine: named accounts with decimal balances. The runtime applies committed
/// commands one at a time, in log order, on every node, so the overdraft check and the debit happen in one step on
/// the same state everywhere — a debit that would overdraw is refused atomically, never half-applied.
/// </summary>
public sealed class BankStateMachine(BankLimits? limits = null) : IStateMachine
{
    private const uint SnapshotMagic = 0x4B4E4142; // "BANK"
    private const byte SnapshotVersion = 1;

    private readonly BankLimits _limits = limits ?? BankLimits.Default;
    private readonly Dictionary<string, decimal> _accounts = new(StringComparer.Ordinal);

    public BankLimits Limits => _limits;

    /// <summary>The balance of <paramref name="account"/>; 0 for an account never credited.</summary>
    public decimal Balance(string account) => _accounts.GetValueOrDefault(account);

    /// <summary>Every account and its balance, by name (a copy: call on the loop, e.g. through ReadAsync).</summary>
    public IReadOnlyList<KeyValuePair<string, decimal>> Accounts() => [.. _accounts.OrderBy(a => a.Key, StringComparer.Ordinal)];

    /// <summary>Money held by the bank: the sum of all balances.</summary>
    public decimal Total => _accounts.Values.Sum();

    public object? Apply(ulong index, ReadOnlyMemory<byte> command) =>
        BankCommand.TryDecode(command.Span, out var c) ? Execute(c) : new BankResult(BankStatus.Malformed, "", 0);

    /// <summary>Applies a decoded command by the bank's rules; returns the outcome and the balance after it.</summary>
    public BankResult Execute(BankCommand c)
    {
        if (ValidateAccount(c.Account, _limits) is not null) return new BankResult(BankStatus.InvalidAccount, c.Account, 0);
        var balance = Balance(c.Account);
        if (ValidateAmount(c.Amount, _limits) is not null) return new BankResult(BankStatus.InvalidAmount, c.Account, balance);
        switch (c.Op)
        {
            case BankOp.Credit:
                if (balance + c.Amount > _limits.MaxBalance) return new BankResult(BankStatus.LimitReached, c.Account, balance);
                if (!_accounts.ContainsKey(c.Account) && _accounts.Count >= _limits.MaxAccounts)
                    return new BankResult(BankStatus.LimitReached, c.Account, balance);
                _accounts[c.Account] = balance + c.Amount;
                return new BankResult(BankStatus.Ok, c.Account, balance + c.Amount);
            case BankOp.Debit:
                if (c.Amount > balance) return new BankResult(BankStatus.InsufficientFunds, c.Account, balance);
                // An account debited to zero stays: it exists once credited, like at a real bank.
                _accounts[c.Account] = balance - c.Amount;
                return new BankResult(BankStatus.Ok, c.Account, balance - c.Amount);
            default:
                return new BankResult(BankStatus.Malformed, c.Account, balance);
        }
    }

    /// <summary>Why <paramref name="account"/> is not a valid name, or null.</summary>
    public static string? ValidateAccount(string account, BankLimits limits)
    {
        if (string.IsNullOrEmpty(account) || account.Length > limits.MaxAccountNameLength)
            return $"an account name has 1 to {limits.MaxAccountNameLength} characters";
        foreach (var ch in account)
        {
            if (!char.IsAsciiLetterOrDigit(ch) && ch is not ('-' or '_' or '.'))
                return "an account name has only letters, digits, '-', '_' and '.'";
        }
        return null;
    }

    /// <summary>Why <paramref name="amount"/> is not a valid amount, or null.</summary>
    public static string? ValidateAmount(decimal amount, BankLimits limits)
    {
        if (amount <= 0) return "the amount must be positive";
        if (amount.Scale > limits.MaxDecimalPlaces && decimal.Round(amount, limits.MaxDecimalPlaces) != amount)
            return $"the amount has more than {limits.MaxDecimalPlaces} decimal places";
        if (amount > limits.MaxBalance) return $"the amount is above {limits.MaxBalance}";
        return null;
    }

    /// <summary>The accounts are few and small: serialized on the loop at capture.</summary>
    public IStateMachineSnapshot CaptureSnapshot() => StateMachineSnapshots.Serialized(WriteAccounts);

    private void WriteAccounts(Stream destination)
    {
        using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
        w.Write(SnapshotMagic);
        w.Write(SnapshotVersion);
        w.Write(_accounts.Count);
        foreach (var (name, balance) in _accounts)
        {
            w.Write(name);
            w.Write(balance);
        }
    }

    public void RestoreSnapshot(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        if (r.ReadUInt32() != SnapshotMagic) throw new InvalidDataException("not a bank snapshot");
        var version = r.ReadByte();
        if (version != SnapshotVersion) throw new InvalidDataException($"unknown bank snapshot version {version}");
        var count = r.ReadInt32();
        if (count < 0) throw new InvalidDataException("negative account count in bank snapshot");
        _accounts.Clear();
        for (int i = 0; i < count; i++)
        {
            var name = r.ReadString();
            _accounts[name] = r.ReadDecimal();
        }
    }
}
