using System.Text;
using RaftMQ.StateMachine;
using RaftMQ.StateMachine.Sessions;

namespace RaftMQ.Runtime.Tests;

/// <summary>An append-only log of strings; Apply returns the new length. Counts its applies.</summary>
internal sealed class AppendMachine : IStateMachine
{
    public List<string> Items { get; } = [];

    public int Applies { get; private set; }

    public object? Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        Applies++;
        Items.Add(Encoding.UTF8.GetString(command.Span));
        return Items.Count;
    }

    public IStateMachineSnapshot CaptureSnapshot() => StateMachineSnapshots.Serialized(Write);

    private void Write(Stream destination)
    {
        using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
        w.Write(Items.Count);
        foreach (var i in Items) w.Write(i);
    }

    public void RestoreSnapshot(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        Items.Clear();
        var n = r.ReadInt32();
        for (int i = 0; i < n; i++) Items.Add(r.ReadString());
    }
}

internal sealed class IntCodec : IResultCodec
{
    public byte[] Encode(object? result) => BitConverter.GetBytes((int)result!);

    public object? Decode(ReadOnlySpan<byte> bytes) => BitConverter.ToInt32(bytes);
}
