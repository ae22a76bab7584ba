using System.Buffers.Binary;
using System.Text;

namespace BankTeller;

public enum BankOp : byte
{
    Credit = 1,
    Debit = 2,
}

/// <summary>
/// A write to one account, as it travels in the Raft log. The amount is a <see cref="decimal"/> end to end (its four
/// 32-bit words on the wire): money is never a binary float.
/// </summary>
public sealed record BankCommand(BankOp Op, string Account, decimal Amount)
{
    private const int HeaderBytes = 1 + 16 + 2;

    public static BankCommand Credit(string account, decimal amount) => new(BankOp.Credit, account, amount);

    public static BankCommand Debit(string account, decimal amount) => new(BankOp.Debit, account, amount);

    /// <summary>[op][amount: 4 × int32][account length: u16][account: UTF-8].</summary>
    public byte[] Encode()
    {
        var name = Encoding.UTF8.GetBytes(Account);
        if (name.Length > ushort.MaxValue) throw new ArgumentException("account name is too long");
        var buffer = new byte[HeaderBytes + name.Length];
        buffer[0] = (byte)Op;
        DecimalCodec.Write(buffer.AsSpan(1), Amount);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(17), (ushort)name.Length);
        name.CopyTo(buffer.AsSpan(HeaderBytes));
        return buffer;
    }

    /// <summary>Decodes a command; false (never an exception) for bytes that are not one.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out BankCommand command)
    {
        command = null!;
        if (data.Length < HeaderBytes || data[0] is not ((byte)BankOp.Credit or (byte)BankOp.Debit)) return false;
        if (!DecimalCodec.TryRead(data[1..17], out var amount)) return false;
        var length = BinaryPrimitives.ReadUInt16LittleEndian(data[17..]);
        if (data.Length != HeaderBytes + length) return false;
        string account;
        try
        {
            account = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(data[HeaderBytes..]);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        command = new BankCommand((BankOp)data[0], account, amount);
        return true;
    }
}

/// <summary>A decimal as its four 32-bit words, little-endian, checked on the way in.</summary>
public static class DecimalCodec
{
    public const int Bytes = 16;

    public static void Write(Span<byte> destination, decimal value)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteInt32LittleEndian(destination[(4 * i)..], bits[i]);
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out decimal value)
    {
        value = 0;
        if (source.Length < Bytes) return false;
        Span<int> bits = stackalloc int[4];
        for (int i = 0; i < 4; i++) bits[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(4 * i)..]);
        // The flags word holds only a sign bit and a scale of 0..28; anything else is not a decimal.
        var flags = bits[3];
        if ((flags & 0x7F00FFFF) != 0 || ((flags >> 16) & 0xFF) > 28) return false;
        value = new decimal(bits);
        return true;
    }
}
