using System.Text;
using RaftMQ.StateMachine.Sessions;

namespace RaftMQ.Runtime.Tests;

public sealed class SessionStateMachineTests
{
    private readonly AppendMachine _inner = new();
    private ulong _index;

    private SessionStateMachine Create(ClientSessionOptions? options = null) => new(_inner, new IntCodec(), options);

    private object? Apply(SessionStateMachine sm, byte[] entry) => sm.Apply(++_index, entry);

    private static byte[] Cmd(long now, ulong session, ulong sequence, string text, ulong ackBelow = 0) =>
        SessionCommand.EncodeCommand(now, session, sequence, ackBelow, Encoding.UTF8.GetBytes(text));

    private ulong Register(SessionStateMachine sm, long now) =>
        Apply(sm, SessionCommand.EncodeRegister(now)).ShouldBeOfType<SessionRegistered>().SessionId;

    [Fact]
    public void A_retried_command_gets_the_recorded_result_and_is_not_applied_again()
    {
        var sm = Create();
        var s = Register(sm, 1000);
        s.ShouldBe(1UL); // the session id is the registering entry's index
        Apply(sm, Cmd(1001, s, 1, "a")).ShouldBe(1);
        Apply(sm, Cmd(1002, s, 2, "b")).ShouldBe(2);
        Apply(sm, Cmd(1003, s, 1, "a")).ShouldBe(1); // the retry: the first result, not a third item
        _inner.Applies.ShouldBe(2);
        _inner.Items.ShouldBe(["a", "b"]);
    }

    [Fact]
    public void A_command_in_an_unknown_or_closed_session_is_refused_without_applying()
    {
        var sm = Create();
        Apply(sm, Cmd(1, 99, 1, "x")).ShouldBe(new SessionRejected(SessionRejection.UnknownSession, 99, 1));
        var s = Register(sm, 1);
        Apply(sm, SessionCommand.EncodeClose(2, s)).ShouldBe(new SessionClosed(s, true));
        Apply(sm, Cmd(3, s, 1, "y")).ShouldBeOfType<SessionRejected>().Reason.ShouldBe(SessionRejection.UnknownSession);
        _inner.Applies.ShouldBe(0);
    }

    [Fact]
    public void Sessions_expire_by_the_timestamps_in_the_log_and_the_clock_never_goes_back()
    {
        var sm = Create(new ClientSessionOptions { SessionTimeout = TimeSpan.FromSeconds(10) });
        var idle = Register(sm, 1_000);
        var busy = Register(sm, 1_000);
        Apply(sm, Cmd(9_000, busy, 1, "a")).ShouldBe(1);
        // A new leader with a clock behind: the table's clock stays at 9 000, nothing expires.
        Apply(sm, Cmd(2_000, busy, 2, "b")).ShouldBe(2);
        sm.ClockMs.ShouldBe(9_000);
        sm.HasSession(idle).ShouldBeTrue();
        // 11.001 s after its last command, the idle session is gone; the busy one (active at 9 s) is not.
        Apply(sm, Cmd(12_001, busy, 3, "c")).ShouldBe(3);
        sm.HasSession(idle).ShouldBeFalse();
        sm.HasSession(busy).ShouldBeTrue();
        Apply(sm, Cmd(12_002, idle, 1, "late")).ShouldBeOfType<SessionRejected>().Reason.ShouldBe(SessionRejection.UnknownSession);
    }

    [Fact]
    public void Registering_past_the_bound_evicts_the_least_recently_active_session()
    {
        var sm = Create(new ClientSessionOptions { MaxSessions = 2 });
        var a = Register(sm, 1);
        var b = Register(sm, 2);
        Apply(sm, Cmd(3, a, 1, "a")); // a is now more recent than b
        var c = Register(sm, 4);
        sm.SessionCount.ShouldBe(2);
        sm.HasSession(a).ShouldBeTrue();
        sm.HasSession(b).ShouldBeFalse();
        sm.HasSession(c).ShouldBeTrue();
    }

    [Fact]
    public void A_forgotten_result_makes_its_sequence_stale_never_applied_twice()
    {
        var sm = Create(new ClientSessionOptions { MaxResultsPerSession = 2 });
        var s = Register(sm, 1);
        Apply(sm, Cmd(2, s, 1, "a"));
        Apply(sm, Cmd(2, s, 2, "b"));
        Apply(sm, Cmd(2, s, 3, "c")); // drops the result of 1
        Apply(sm, Cmd(2, s, 1, "a")).ShouldBe(new SessionRejected(SessionRejection.StaleSequence, s, 1));
        Apply(sm, Cmd(2, s, 2, "b")).ShouldBe(2);
        // The client acknowledges everything below 3: 2's result goes too.
        Apply(sm, Cmd(2, s, 4, "d", ackBelow: 3)).ShouldBe(4);
        Apply(sm, Cmd(2, s, 2, "b")).ShouldBeOfType<SessionRejected>().Reason.ShouldBe(SessionRejection.StaleSequence);
        _inner.Items.ShouldBe(["a", "b", "c", "d"]);
    }

    [Fact]
    public void Commands_may_be_applied_out_of_order_within_the_window()
    {
        var sm = Create();
        var s = Register(sm, 1);
        Apply(sm, Cmd(2, s, 2, "second")).ShouldBe(1);
        Apply(sm, Cmd(2, s, 1, "first")).ShouldBe(2);
        Apply(sm, Cmd(2, s, 2, "second")).ShouldBe(1);
        _inner.Applies.ShouldBe(2);
    }

    [Fact]
    public void The_snapshot_holds_the_session_table_and_the_inner_state_in_one_stream()
    {
        var sm = Create(new ClientSessionOptions { SessionTimeout = TimeSpan.FromSeconds(5) });
        var s = Register(sm, 100);
        var other = Register(sm, 100);
        Apply(sm, Cmd(200, s, 1, "a"));
        using var snapshot = new MemoryStream();
        sm.WriteSnapshot(snapshot);
        snapshot.Position = 0;

        var restoredInner = new AppendMachine();
        var restored = new SessionStateMachine(restoredInner, new IntCodec(), new ClientSessionOptions { SessionTimeout = TimeSpan.FromSeconds(5) });
        restored.RestoreSnapshot(snapshot);
        restoredInner.Items.ShouldBe(["a"]);
        restored.ClockMs.ShouldBe(200);
        restored.HasSession(other).ShouldBeTrue();
        restored.Apply(10, Cmd(300, s, 1, "a")).ShouldBe(1); // answered from the restored table
        restoredInner.Applies.ShouldBe(0);
        // The activity order survived too: at 5.2 s `other` (last active at 0.1 s) expires, `s` (0.3 s) stays.
        restored.Apply(11, Cmd(5_250, s, 2, "b")).ShouldBe(2);
        restored.HasSession(other).ShouldBeFalse();
    }

    [Fact]
    public void Garbage_is_refused_not_thrown_and_plain_commands_pass_through()
    {
        var sm = Create();
        Apply(sm, []).ShouldBe(new SessionRejected(SessionRejection.Malformed, 0, 0));
        Apply(sm, [9, 1, 2]).ShouldBeOfType<SessionRejected>();
        Apply(sm, [(byte)SessionCommandKind.Command, 1, 2, 3]).ShouldBeOfType<SessionRejected>();
        Apply(sm, SessionCommand.EncodePlain("p"u8)).ShouldBe(1);
        Apply(sm, SessionCommand.EncodePlain("p"u8)).ShouldBe(2); // outside sessions: at least once
        using var bad = new MemoryStream([1, 2, 3, 4, 5]);
        Should.Throw<InvalidDataException>(() => Create().RestoreSnapshot(bad));
    }
}
