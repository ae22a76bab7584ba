using RaftMQ.StateMachine;
using RaftMQ.StateMachine.Sessions;

namespace BankTeller.Tests;

public sealed class BankStateMachineTests
{
    private readonly BankStateMachine _bank = new();

    private BankResult Run(BankCommand c) => (BankResult)_bank.Apply(1, c.Encode())!;

    [Fact]
    public void Credits_and_debits_move_exact_decimal_amounts()
    {
        Run(BankCommand.Credit("alice", 0.10m)).ShouldBe(new BankResult(BankStatus.Ok, "alice", 0.10m));
        Run(BankCommand.Credit("alice", 0.20m)).Balance.ShouldBe(0.30m); // 0.1 + 0.2 is 0.3 in decimal
        Run(BankCommand.Debit("alice", 0.30m)).ShouldBe(new BankResult(BankStatus.Ok, "alice", 0m));
        _bank.Balance("alice").ShouldBe(0m);
        _bank.Balance("nobody").ShouldBe(0m);
    }

    [Fact]
    public void A_debit_that_would_overdraw_is_refused_and_changes_nothing()
    {
        Run(BankCommand.Credit("bob", 10m));
        Run(BankCommand.Debit("bob", 10.01m)).ShouldBe(new BankResult(BankStatus.InsufficientFunds, "bob", 10m));
        Run(BankCommand.Debit("carol", 1m)).Status.ShouldBe(BankStatus.InsufficientFunds);
        _bank.Balance("bob").ShouldBe(10m);
        _bank.Accounts().Count.ShouldBe(1);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("0.001")]
    [InlineData("1000000000000.01")]
    public void Amounts_that_are_not_positive_cents_within_the_bound_are_refused(string amount)
    {
        var value = decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture);
        Run(BankCommand.Credit("dave", value)).Status.ShouldBe(BankStatus.InvalidAmount);
        Run(BankCommand.Debit("dave", value)).Status.ShouldBe(BankStatus.InvalidAmount);
        _bank.Accounts().ShouldBeEmpty();
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("slash/")]
    [InlineData("ä")]
    public void Bad_account_names_are_refused(string account) =>
        Run(BankCommand.Credit(account, 1m)).Status.ShouldBe(BankStatus.InvalidAccount);

    [Fact]
    public void Bounds_on_accounts_and_balances_refuse_rather_than_grow()
    {
        var bank = new BankStateMachine(new BankLimits { MaxAccounts = 1, MaxBalance = 100m });
        bank.Execute(BankCommand.Credit("a", 60m)).IsOk.ShouldBeTrue();
        bank.Execute(BankCommand.Credit("a", 41m)).Status.ShouldBe(BankStatus.LimitReached);
        bank.Execute(BankCommand.Credit("b", 1m)).Status.ShouldBe(BankStatus.LimitReached);
        bank.Balance("a").ShouldBe(60m);
    }

    [Fact]
    public void Garbage_commands_are_refused_not_thrown()
    {
        _bank.Apply(1, new byte[] { 1, 2, 3 }).ShouldBeOfType<BankResult>().Status.ShouldBe(BankStatus.Malformed);
        var bytes = BankCommand.Credit("x", 1m).Encode();
        bytes[16] = 0x7F; // an impossible decimal flags word
        _bank.Apply(2, bytes).ShouldBeOfType<BankResult>().Status.ShouldBe(BankStatus.Malformed);
        _bank.Apply(3, new byte[] { 9 }).ShouldBeOfType<BankResult>().Status.ShouldBe(BankStatus.Malformed);
    }

    [Fact]
    public void Snapshot_and_result_codec_round_trip()
    {
        Run(BankCommand.Credit("alice", 12.34m));
        Run(BankCommand.Credit("bob", 0.01m));
        using var stream = new MemoryStream();
        _bank.WriteSnapshot(stream);
        stream.Position = 0;
        var copy = new BankStateMachine();
        copy.RestoreSnapshot(stream);
        copy.Accounts().ShouldBe(_bank.Accounts());

        var result = new BankResult(BankStatus.InsufficientFunds, "alice", 12.34m);
        BankResultCodec.Instance.Decode(BankResultCodec.Instance.Encode(result)).ShouldBe(result);
        IResultCodec codec = BankResultCodec.Instance;
        Should.Throw<InvalidDataException>(() => codec.Decode([1, 2]));
    }
}
