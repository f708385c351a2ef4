namespace Sva.Formats.Captures.Engine;

/// <summary>
/// Turns physical lines into logical records of a <see cref="Grammar"/>, undoing what pasting did:
/// <list type="bullet">
/// <item>a record that does not parse is joined with the following line(s) when the joined text parses (mail
/// wrapping; joined with a space first, then without one for a split inside a token);</item>
/// <item>a record that parses but could continue (free text, optional tail) is joined with the next line when that
/// line recognises as nothing on its own, the record's line was long enough to have been wrapped, and the join
/// parses further;</item>
/// <item>several records run together on one line are split where the next record's event name or prefix starts;</item>
/// <item>a record that never parses is malformed (exception, or SkippedLine when lenient), except at the end of the
/// capture where it is "truncated".</item>
/// </list>
/// At most <see cref="MaxAbsorbed"/> continuation lines are held, so memory does not grow with the input.
/// </summary>
internal sealed class RecordAssembler : ICaptureParser
{
    public const int MaxAbsorbed = 3;
    public const int MaxText = 4096;
    public const int MaxLineLength = 16384;
    /// <summary>A physical line at least this long may have been wrapped by a mail client.</summary>
    public const int WrapColumn = 60;

    private readonly Grammar _grammar;
    private readonly string _file;
    private readonly bool _lenient;
    private readonly IRecordSink _sink;
    private Pending? _pending;
    private ICollection<CaptureItem> _out = new List<CaptureItem>();

    public RecordAssembler(Grammar grammar, string file, bool lenient, IRecordSink sink)
    {
        _grammar = grammar;
        _file = file;
        _lenient = lenient;
        _sink = sink;
    }

    private readonly record struct Piece(int Offset, int Line, int RawLength);

    private enum PendingKind { Incomplete, Held, HeaderOnly }

    private sealed class Pending
    {
        public PendingKind Kind;
        public string Text = "";
        public int BodyStart;
        public Header Header = Header.None;
        public List<RecordSpec> Candidates = new();
        public List<Piece> Pieces = new();
        public int OwnPieces;
        public ParsedRecord? Held;
        public bool Closed;
        public int Absorbed => Pieces.Count - OwnPieces;
    }

    public void Feed(string line, int lineNumber, ICollection<CaptureItem> output)
    {
        ArgumentNullException.ThrowIfNull(line);
        _out = output;
        var cleaned = TextCleaner.Clean(line);
        if (cleaned.Length == 0)
        {
            OnBlank();
            return;
        }
        int rawLength = line.AsSpan().TrimEnd().Length;
        if (cleaned.Length > MaxLineLength)
        {
            FlushPending(eof: false);
            Skip(new List<Piece> { new(0, lineNumber, rawLength) }, cleaned[..256] + "...", "line too long");
            return;
        }
        var splitter = _grammar.SegmentSplitter;
        if (splitter is null)
        {
            OnSegment(cleaned, lineNumber, rawLength);
            return;
        }
        foreach (var segment in splitter.Split(cleaned))
        {
            if (segment.Length > 0)
                OnSegment(segment, lineNumber, rawLength);
        }
    }

    public void Complete(ICollection<CaptureItem> output)
    {
        _out = output;
        FlushPending(eof: true);
        _sink.Complete(output);
    }

    private void OnBlank()
    {
        if (_pending is null)
            return;
        if (_pending.Kind == PendingKind.Incomplete)
            _pending.Closed = true;
        else
            FlushPending(eof: false);
    }

    private bool IsStart(string text, out Header header, out int bodyStart)
    {
        header = _grammar.ParseHeader(text, out bodyStart);
        return header.Strong || _grammar.IsNonContinuation(text) || _grammar.Candidates(text[bodyStart..]).Count > 0;
    }

    private void OnSegment(string text, int line, int rawLength)
    {
        var piece = new Piece(0, line, rawLength);
        if (_pending is { } p)
        {
            bool start = IsStart(text, out var header, out var bodyStart);
            switch (p.Kind)
            {
                case PendingKind.HeaderOnly:
                    _pending = null;
                    if (!header.Strong && !_grammar.IsNonContinuation(text) && _grammar.Candidates(text[bodyStart..]).Count > 0)
                    {
                        var combined = p.Text + " " + text;
                        var pieces = new List<Piece>(p.Pieces) { piece with { Offset = p.Text.Length + 1 } };
                        ProcessFresh(combined, pieces);
                        return;
                    }
                    Skip(p.Pieces, p.Text, "trace line prefix without an event");
                    break;
                case PendingKind.Held:
                    if (!start && TryJoinHeld(p, text, piece))
                        return;
                    _pending = null;
                    EmitHeld(p);
                    break;
                default:
                    if (!start && !p.Closed && p.Absorbed < MaxAbsorbed && p.Text.Length + text.Length < MaxText)
                    {
                        JoinIncomplete(p, text, piece);
                        return;
                    }
                    _pending = null;
                    Fail(p, eof: false);
                    break;
            }
        }
        ProcessFresh(text, new List<Piece> { piece });
    }

    private void JoinIncomplete(Pending p, string text, Piece piece)
    {
        foreach (var sep in Separators)
        {
            var candidate = p.Text + sep + text;
            var r = Grammar.TryParse(candidate[p.BodyStart..], p.Candidates);
            if (r is null)
                continue;
            _pending = null;
            var pieces = new List<Piece>(p.Pieces) { piece with { Offset = p.Text.Length + sep.Length } };
            HandleParsed(candidate, p.BodyStart, p.Header, pieces, r);
            return;
        }
        // Not (yet) complete: hold the line too; a later line may complete the record.
        p.Pieces.Add(piece with { Offset = p.Text.Length + 1 });
        p.Text = p.Text + " " + text;
    }

    private bool TryJoinHeld(Pending p, string text, Piece piece)
    {
        var held = p.Held!;
        foreach (var sep in Separators)
        {
            var candidate = p.Text + sep + text;
            var r = held.Spec.TryParse(candidate[p.BodyStart..]);
            if (r is null || p.BodyStart + r.Length <= p.Text.Length)
                continue;
            _pending = null;
            var pieces = new List<Piece>(p.Pieces) { piece with { Offset = p.Text.Length + sep.Length } };
            HandleParsed(candidate, p.BodyStart, p.Header, pieces, r);
            return true;
        }
        return false;
    }

    private static readonly string[] Separators = [" ", ""];

    private void ProcessFresh(string text, List<Piece> pieces)
    {
        var header = _grammar.ParseHeader(text, out var bodyStart);
        var body = text[bodyStart..];
        if (body.Length == 0)
        {
            if (header.Strong)
                _pending = new Pending { Kind = PendingKind.HeaderOnly, Text = text, Header = header, Pieces = pieces, OwnPieces = pieces.Count };
            else
                Skip(pieces, text, _grammar.UnrecognisedReason(header, text, body));
            return;
        }
        var candidates = _grammar.Candidates(body);
        if (candidates.Count == 0)
        {
            Skip(pieces, text, _grammar.UnrecognisedReason(header, text, body));
            return;
        }
        var r = Grammar.TryParse(body, candidates);
        if (r is null)
        {
            _pending = new Pending
            {
                Kind = PendingKind.Incomplete, Text = text, BodyStart = bodyStart, Header = header,
                Candidates = candidates, Pieces = pieces, OwnPieces = pieces.Count,
            };
            return;
        }
        HandleParsed(text, bodyStart, header, pieces, r);
    }

    private void HandleParsed(string text, int bodyStart, Header header, List<Piece> pieces, ParsedRecord r)
    {
        int end = bodyStart + r.Length;
        int rest = end;
        while (rest < text.Length && char.IsWhiteSpace(text[rest]))
            rest++;
        if (rest >= text.Length)
        {
            if (r.Spec.OptionalTail && pieces.Count <= MaxAbsorbed && pieces[^1].RawLength >= WrapColumn && text.Length < MaxText)
            {
                _pending = new Pending
                {
                    Kind = PendingKind.Held, Text = text, BodyStart = bodyStart, Header = header,
                    Pieces = pieces, OwnPieces = pieces.Count, Held = r,
                };
                return;
            }
            EmitRecord(text, header, pieces, r, end);
            return;
        }
        EmitRecord(text, header, pieces, r, end);
        var (restText, restPieces) = Slice(text, pieces, rest);
        ProcessFresh(restText, restPieces);
    }

    private void EmitHeld(Pending p) =>
        EmitRecord(p.Text, p.Header, p.Pieces, p.Held!, p.BodyStart + p.Held!.Length);

    private void EmitRecord(string text, Header header, List<Piece> pieces, ParsedRecord r, int end)
    {
        var source = new SourceRef(_file, pieces[0].Line, LineAt(pieces, Math.Max(0, end - 1)));
        _sink.Record(new LineRecord(r.Spec, r.Draft, header, source, text[..end].Trim()), _out);
    }

    private void FlushPending(bool eof)
    {
        if (_pending is not { } p)
            return;
        _pending = null;
        switch (p.Kind)
        {
            case PendingKind.Held:
                EmitHeld(p);
                break;
            case PendingKind.HeaderOnly:
                Skip(p.Pieces, p.Text, "trace line prefix without an event");
                break;
            default:
                Fail(p, eof);
                break;
        }
    }

    private void Fail(Pending p, bool eof)
    {
        var spec = p.Candidates[0];
        int ownEnd = p.OwnPieces < p.Pieces.Count ? p.Pieces[p.OwnPieces].Offset - 1 : p.Text.Length;
        var ownText = p.Text[..Math.Max(0, ownEnd)].Trim();
        var own = p.Pieces.GetRange(0, p.OwnPieces);
        if (eof && p.Absorbed == 0)
        {
            Skip(own, ownText, $"truncated: {spec.Name} record cut off at the end of the capture (expected '{spec.Expected}')");
            return;
        }
        if (!_lenient)
            throw new CaptureFormatException(new SourceRef(_file, own[0].Line, own[^1].Line), spec.Name, spec.Expected, ownText);
        Skip(own, ownText, $"malformed: {spec.Name} line: expected '{spec.Expected}'");
        for (int i = p.OwnPieces; i < p.Pieces.Count; i++)
        {
            int from = p.Pieces[i].Offset;
            int to = i + 1 < p.Pieces.Count ? p.Pieces[i + 1].Offset - 1 : p.Text.Length;
            var pieceText = p.Text[from..Math.Max(from, to)].Trim();
            // The line was held as a possible continuation; re-read it on its own.
            ProcessFresh(pieceText, new List<Piece> { p.Pieces[i] with { Offset = 0 } });
            if (_pending is { } again)
            {
                // cannot happen for a non-start line, but never lose text
                _pending = null;
                Skip(again.Pieces, again.Text, "unrecognised line");
            }
        }
    }

    private void Skip(List<Piece> pieces, string text, string reason) =>
        _sink.Skipped(new SkippedLine(new SourceRef(_file, pieces[0].Line, pieces[^1].Line), text, reason), _out);

    private static int LineAt(List<Piece> pieces, int offset)
    {
        int line = pieces[0].Line;
        foreach (var p in pieces)
        {
            if (p.Offset <= offset)
                line = p.Line;
            else
                break;
        }
        return line;
    }

    private static (string, List<Piece>) Slice(string text, List<Piece> pieces, int start)
    {
        var result = new List<Piece>();
        for (int i = 0; i < pieces.Count; i++)
        {
            int next = i + 1 < pieces.Count ? pieces[i + 1].Offset : int.MaxValue;
            if (next <= start)
                continue;
            result.Add(pieces[i] with { Offset = Math.Max(0, pieces[i].Offset - start) });
        }
        return (text[start..], result);
    }
}
