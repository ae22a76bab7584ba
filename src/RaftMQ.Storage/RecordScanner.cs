namespace RaftMQ.Storage;

/// <summary>Reads the records of one segment sequentially through a bounded buffer.</summary>
internal sealed class RecordScanner
{
    private readonly IStorageFile _file;
    private readonly long _end;
    private readonly int _maxBody;
    private byte[] _buffer;
    private long _bufferOffset; // file offset of _buffer[0]
    private int _filled;
    private int _cursor;

    public RecordScanner(IStorageFile file, long start, long end, int maxBody, int chunkBytes)
    {
        _file = file;
        _end = end;
        _maxBody = maxBody;
        // A chunk, or the whole (smaller) segment; a record larger than that grows it (Ensure), up to the largest
        // record, so recovering a node of small segments does not allocate a chunk plus a maximal entry per segment.
        _buffer = new byte[(int)Math.Clamp(end - start, WalFormat.FrameBytes, Math.Max(chunkBytes, WalFormat.FrameBytes))];
        _bufferOffset = start;
    }

    /// <summary>File offset of the next record.</summary>
    public long Position => _bufferOffset + _cursor;

    public bool AtEnd => Position >= _end;

    /// <summary>Checks the next record; on <see cref="WalFormat.Check.Valid"/> returns its body and moves past it.</summary>
    public WalFormat.Check Next(out ReadOnlySpan<byte> body, out string problem)
    {
        body = default;
        Ensure(WalFormat.FrameBytes);
        var check = WalFormat.CheckRecord(_buffer.AsSpan(_cursor, _filled - _cursor), _maxBody, out var length, out problem);
        if (check == WalFormat.Check.Short && length > 0)
        {
            Ensure(length);
            check = WalFormat.CheckRecord(_buffer.AsSpan(_cursor, _filled - _cursor), _maxBody, out length, out problem);
        }
        if (check != WalFormat.Check.Valid) return check;
        body = _buffer.AsSpan(_cursor + WalFormat.FrameBytes, length - WalFormat.FrameBytes);
        _cursor += length;
        return check;
    }

    // Makes at least `count` bytes available from the cursor, or as many as the file has.
    private void Ensure(int count)
    {
        if (_filled - _cursor >= count) return;
        if (_cursor > 0)
        {
            Buffer.BlockCopy(_buffer, _cursor, _buffer, 0, _filled - _cursor);
            _bufferOffset += _cursor;
            _filled -= _cursor;
            _cursor = 0;
        }
        if (count > _buffer.Length)
        {
            // A record larger than the buffer (CheckRecord bounds count by the largest record): grow by doubling, but
            // never past the largest record or the bytes the file has left.
            var size = Math.Min(Math.Max(count, 2L * _buffer.Length), WalFormat.FrameBytes + (long)_maxBody);
            size = Math.Min(size, _end - _bufferOffset);
            if (size > _buffer.Length) Array.Resize(ref _buffer, (int)size);
        }
        while (_filled < count)
        {
            var want = (int)Math.Min(_buffer.Length - _filled, _end - (_bufferOffset + _filled));
            if (want <= 0) return;
            var n = _file.Read(_bufferOffset + _filled, _buffer.AsSpan(_filled, want));
            if (n == 0) return;
            _filled += n;
        }
    }
}
