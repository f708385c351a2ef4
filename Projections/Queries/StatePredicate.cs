using System.Globalization;
using Sva.Domain;

namespace Sva.Projections.Queries;

/// <summary>A predicate the user wrote that does not parse: names the column and what was expected.</summary>
public sealed class PredicateException(string message) : Exception(message);

/// <summary>
/// A small predicate language over the state of a session at one seq (for <c>sva bisect --until</c>).
/// </summary>
/// <remarks>
/// <code>
/// predicate  := or
/// or         := and { ("||" | "or") and }
/// and        := unary { ("&amp;&amp;" | "and") unary }
/// unary      := ("!" | "not") unary | "(" or ")" | comparison
/// comparison := value [ ("==" | "!=" | "&lt;" | "&lt;=" | "&gt;" | "&gt;=") value ]   a lone value holds when it is
///                                                                        neither none, 0, false nor empty
/// value      := NUMBER | "none" | 'text' | "text" | WORD | accessor | counter
/// accessor   := pasid(BDF, N)[.mm|.domain|.mode]       the PASID table entry of a device (bare: it exists)
///             | slot(BDF, N)[.domain|.handle]         the group pasid_array slot seen from a device
///             | owner(N)                              the mm the PASID allocator gives PASID N to
///             | handle(Hn|LABEL)[.users|.pasid|.device|.mm|.domain]   (bare: the handle is live)
///             | domain(Dn|NAME)[.users|.mm|.type|.asid|.attached]
///             | mm(NAME)[.pasid|.state|.mm_users|.mm_count|.handles|.domains]   state: live, exited, dropped
///             | device(BDF)[.pasids|.pending|.max_pasids]
///             | notifier(Nn)[.refs|.mm|.cleared]
/// counter    := seq | devices | mms | live-mms | exited-mms | dropped-mms | domains | sva-domains | handles
///             | notifiers | pasids | pasid-entries | pending-requests | freed-handles
///             | leaked-pasids     PASIDs still allocated to an mm that was dropped
///             | orphan-entries    PASID table entries whose mm was dropped
/// </code>
/// Examples: <c>pasid(0000:00:03.0, 1).mm == m2</c>, <c>leaked-pasids &gt; 0</c>, <c>handle(H3).users &gt;= 2</c>,
/// <c>domains &gt; 4 &amp;&amp; mm(m1).state == exited</c>, <c>!pasid(0000:6a:01.0, 5)</c>.
/// Values compare as numbers when both sides are numbers, otherwise as text (== and != only); none is a missing value.
/// </remarks>
public sealed class StatePredicate
{
    public const string Help = """
        Predicates (sva bisect --until):
          comparison:  VALUE [== != < <= > >= VALUE]     a lone VALUE holds when not none/0/false
          combine:     A && B, A || B, !A, (A)            (also: and, or, not)
          accessors:   pasid(BDF, N)[.mm|.domain|.mode]   slot(BDF, N)[.domain|.handle]   owner(N)
                       handle(Hn|LABEL)[.users|.pasid|.device|.mm|.domain]
                       domain(Dn|NAME)[.users|.mm|.type|.asid|.attached]
                       mm(NAME)[.pasid|.state|.mm_users|.mm_count|.handles|.domains]
                       device(BDF)[.pasids|.pending|.max_pasids]   notifier(Nn)[.refs|.mm|.cleared]
          counters:    seq devices mms live-mms exited-mms dropped-mms domains sva-domains handles notifiers
                       pasids pasid-entries pending-requests freed-handles leaked-pasids orphan-entries
          literals:    numbers, none, words (m2, H3, exited), 'quoted text'
          examples:    "pasid(0000:00:03.0, 1).mm == m2"   "leaked-pasids > 0"   "handle(H3).users >= 2"   "domains > 4"
        """;

    private readonly Node root;

    public string Text { get; }

    private StatePredicate(string text, Node root)
    {
        Text = text;
        this.root = root;
    }

    public static StatePredicate Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = new Parser(text);
        var node = p.ParseAll();
        return new StatePredicate(text, node);
    }

    public bool Holds(SvaState s) => Truthy(root.Eval(s));

    /// <summary>The value of the whole predicate's first operand (for reports), as text.</summary>
    public string Describe(SvaState s) => root.Show(s);

    // ---- values ------------------------------------------------------------------------------------
    private static bool Truthy(object? v) => v switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        string str => str.Length > 0,
        _ => true,
    };

    private static string Render(object? v) => v switch
    {
        null => "none",
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "none",
    };

    private abstract class Node
    {
        public abstract object? Eval(SvaState s);
        public virtual string Show(SvaState s) => Render(Eval(s));
    }

    private sealed class Const(object? v) : Node
    {
        public override object? Eval(SvaState s) => v;
    }

    private sealed class Not(Node inner) : Node
    {
        public override object? Eval(SvaState s) => !Truthy(inner.Eval(s));
    }

    private sealed class Logic(Node a, Node b, bool and) : Node
    {
        public override object? Eval(SvaState s) => and ? Truthy(a.Eval(s)) && Truthy(b.Eval(s)) : Truthy(a.Eval(s)) || Truthy(b.Eval(s));
    }

    private sealed class Compare(Node a, Node b, string op, int column) : Node
    {
        public override object? Eval(SvaState s)
        {
            var x = a.Eval(s);
            var y = b.Eval(s);
            if (x is long lx && y is long ly)
                return op switch { "==" => lx == ly, "!=" => lx != ly, "<" => lx < ly, "<=" => lx <= ly, ">" => lx > ly, _ => lx >= ly };
            if (op is "==" or "!=")
            {
                var eq = string.Equals(x is null ? null : Render(x), y is null ? null : Render(y), StringComparison.Ordinal);
                return op == "==" ? eq : !eq;
            }
            if (x is null || y is null) return false; // ordering against a missing value never holds
            throw new PredicateException($"column {column}: '{op}' compares numbers, not '{Render(x)}' and '{Render(y)}'");
        }

        public override string Show(SvaState s) => $"{Render(a.Eval(s))} {op} {Render(b.Eval(s))}";
    }

    private sealed class Fn(Func<SvaState, object?> f) : Node
    {
        public override object? Eval(SvaState s) => f(s);
    }

    // ---- parser ------------------------------------------------------------------------------------
    private sealed class Parser(string text)
    {
        private int pos;

        public Node ParseAll()
        {
            var n = Or();
            Skip();
            if (pos < text.Length) throw Error($"unexpected '{text[pos..]}'");
            return n;
        }

        private PredicateException Error(string message) =>
            new($"predicate '{text}', column {pos + 1}: {message}. Expected a comparison such as 'pasid(0000:00:03.0, 1).mm == m2', 'leaked-pasids > 0' or 'handle(H3).users >= 2'");

        private void Skip() { while (pos < text.Length && char.IsWhiteSpace(text[pos])) pos++; }

        private bool Eat(string token, bool word = false)
        {
            Skip();
            if (string.CompareOrdinal(text, pos, token, 0, token.Length) != 0) return false;
            if (word && pos + token.Length < text.Length && IsWordChar(text[pos + token.Length])) return false;
            pos += token.Length;
            return true;
        }

        private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c is '_' or '-' or ':' or '.';

        private Node Or()
        {
            var n = And();
            while (Eat("||") || Eat("or", word: true)) n = new Logic(n, And(), and: false);
            return n;
        }

        private Node And()
        {
            var n = Unary();
            while (Eat("&&") || Eat("and", word: true)) n = new Logic(n, Unary(), and: true);
            return n;
        }

        private Node Unary()
        {
            Skip();
            if (pos < text.Length && text[pos] == '!' && (pos + 1 >= text.Length || text[pos + 1] != '=')) { pos++; return new Not(Unary()); }
            if (Eat("not", word: true)) return new Not(Unary());
            return Comparison();
        }

        private Node Comparison()
        {
            var a = Value();
            Skip();
            var column = pos + 1;
            foreach (var op in new[] { "==", "!=", "<=", ">=", "<", ">" })
                if (Eat(op)) return new Compare(a, Value(), op, column);
            return a;
        }

        private Node Value()
        {
            Skip();
            if (pos >= text.Length) throw Error("the predicate ends where a value was expected");
            var c = text[pos];
            if (c == '(')
            {
                pos++;
                var n = Or();
                if (!Eat(")")) throw Error("missing ')'");
                return n;
            }
            if (c is '\'' or '"')
            {
                var end = text.IndexOf(c, pos + 1);
                if (end < 0) throw Error("unterminated quoted text");
                var s = text[(pos + 1)..end];
                pos = end + 1;
                return new Const(s);
            }
            var start = pos;
            while (pos < text.Length && IsWordChar(text[pos])) pos++;
            if (pos == start) throw Error($"unexpected '{c}'");
            var word = text[start..pos];
            if (long.TryParse(word, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var num)) return new Const(num);
            if (word.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                && long.TryParse(word.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex)) return new Const(hex);
            Skip();
            if (pos < text.Length && text[pos] == '(') return Accessor(word);
            if (word == "none") return new Const(null);
            if (word == "true") return new Const(true);
            if (word == "false") return new Const(false);
            if (Counter(word) is { } counter) return new Fn(counter);
            return new Const(word);
        }

        private List<string> Args()
        {
            Eat("(");
            var args = new List<string>();
            while (true)
            {
                Skip();
                var start = pos;
                while (pos < text.Length && text[pos] != ',' && text[pos] != ')') pos++;
                if (pos >= text.Length) throw Error("missing ')'");
                args.Add(text[start..pos].Trim());
                if (text[pos] == ')') { pos++; return args; }
                pos++; // ','
            }
        }

        private string? Field()
        {
            if (pos < text.Length && text[pos] == '.')
            {
                pos++;
                var start = pos;
                while (pos < text.Length && (char.IsLetterOrDigit(text[pos]) || text[pos] == '_')) pos++;
                if (pos == start) throw Error("a field name is expected after '.'");
                return text[start..pos];
            }
            return null;
        }

        private Node Accessor(string name)
        {
            var at = pos;
            var args = Args();
            var field = Field();
            void Arity(int n)
            {
                if (args.Count != n) { pos = at; throw Error($"{name}() takes {n} argument{(n == 1 ? "" : "s")}"); }
            }
            Func<SvaState, object?> UnknownField(params string[] allowed)
            {
                throw Error($"{name}() has no field '{field}'; fields: {string.Join(", ", allowed.Select(a => "." + a))}");
            }
            switch (name)
            {
                case "pasid":
                {
                    Arity(2);
                    var dev = Bdf(args[0]);
                    var p = Int(args[1]);
                    PasidEntry? E(SvaState s) => s.Devices.TryGetValue(dev, out var d) && d.PasidTable.TryGetValue(p, out var e) ? e : null;
                    return new Fn(field switch
                    {
                        null or "exists" => s => E(s) is not null,
                        "mm" => s => E(s)?.Mm,
                        "domain" => s => E(s)?.Domain,
                        "mode" => s => E(s)?.Mode,
                        _ => UnknownField("mm", "domain", "mode"),
                    });
                }
                case "slot":
                {
                    Arity(2);
                    var dev = Bdf(args[0]);
                    var p = Int(args[1]);
                    PasidSlot? Sl(SvaState s) => s.Devices.TryGetValue(dev, out var d) && s.Groups.TryGetValue(d.Group, out var g) && g.PasidArray.TryGetValue(p, out var x) ? x : null;
                    return new Fn(field switch
                    {
                        null or "exists" => s => Sl(s) is not null,
                        "domain" => s => Sl(s)?.Domain,
                        "handle" => s => Sl(s)?.Handle,
                        _ => UnknownField("domain", "handle"),
                    });
                }
                case "owner":
                {
                    Arity(1);
                    var p = Int(args[0]);
                    if (field is not null) UnknownField();
                    return new Fn(s => s.Pasids.TryGetValue(p, out var mm) ? mm : null);
                }
                case "handle":
                {
                    Arity(1);
                    var id = args[0];
                    HandleObj? H(SvaState s) => s.HandleById(s.HandleNames.TryGetValue(id, out var named) ? named : id);
                    return new Fn(field switch
                    {
                        null or "exists" => s => H(s) is not null,
                        "users" => s => (long?)H(s)?.Users,
                        "pasid" => s => (long?)H(s)?.Pasid,
                        "device" => s => H(s)?.Device,
                        "mm" => s => H(s)?.Mm,
                        "domain" => s => H(s)?.Domain,
                        _ => UnknownField("users", "pasid", "device", "mm", "domain"),
                    });
                }
                case "domain":
                {
                    Arity(1);
                    var id = args[0];
                    DomainObj? D(SvaState s) => s.DomainById(s.DomainNames.TryGetValue(id, out var named) ? named : id);
                    return new Fn(field switch
                    {
                        null or "exists" => s => D(s) is not null,
                        "users" => s => (long?)D(s)?.Users,
                        "mm" => s => D(s)?.Mm,
                        "type" => s => D(s)?.Type,
                        "asid" => s => (long?)D(s)?.Asid,
                        "attached" => s => (long?)D(s)?.Attached.Count,
                        _ => UnknownField("users", "mm", "type", "asid", "attached"),
                    });
                }
                case "mm":
                {
                    Arity(1);
                    var id = args[0];
                    MmObj? M(SvaState s) => s.Mms.TryGetValue(id, out var m) ? m : null;
                    return new Fn(field switch
                    {
                        null or "exists" => s => M(s) is not null,
                        "pasid" => s => (long?)M(s)?.Pasid,
                        "state" => s => M(s) is { } m ? StateView.MmStateName(m) : null,
                        "mm_users" => s => (long?)M(s)?.MmUsers,
                        "mm_count" => s => (long?)M(s)?.MmCount,
                        "handles" => s => (long?)M(s)?.Handles.Count,
                        "domains" => s => (long?)M(s)?.SvaDomains.Count,
                        _ => UnknownField("pasid", "state", "mm_users", "mm_count", "handles", "domains"),
                    });
                }
                case "device":
                {
                    Arity(1);
                    var dev = Bdf(args[0]);
                    DeviceObj? Dv(SvaState s) => s.Devices.TryGetValue(dev, out var d) ? d : null;
                    return new Fn(field switch
                    {
                        null or "exists" => s => Dv(s) is not null,
                        "pasids" => s => (long?)Dv(s)?.PasidTable.Count,
                        "pending" => s => (long?)Dv(s)?.Partial.Count,
                        "max_pasids" => s => (long?)Dv(s)?.MaxPasids,
                        _ => UnknownField("pasids", "pending", "max_pasids"),
                    });
                }
                case "notifier":
                {
                    Arity(1);
                    var id = args[0];
                    NotifierObj? N(SvaState s) => id.Length > 1 && id[0] == 'N' && int.TryParse(id.AsSpan(1), out var n) && s.Notifiers.TryGetValue(n, out var x) ? x : null;
                    return new Fn(field switch
                    {
                        null or "exists" => s => N(s) is not null,
                        "refs" => s => (long?)N(s)?.Refs,
                        "mm" => s => N(s)?.Mm,
                        "cleared" => s => N(s)?.Cleared,
                        _ => UnknownField("refs", "mm", "cleared"),
                    });
                }
                default:
                    pos = at;
                    throw Error($"unknown accessor '{name}()'; accessors: pasid, slot, owner, handle, domain, mm, device, notifier");
            }
        }

        private string Bdf(string text)
        {
            var t = text.Trim().ToLowerInvariant();
            if (t.Length == 7 && t[2] == ':') t = "0000:" + t; // 00:03.0
            return t;
        }

        private int Int(string text)
        {
            var t = text.Trim();
            if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v)) return v;
            if (t.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && int.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out v)) return v;
            throw Error($"'{text}' is not a number");
        }

        private static Func<SvaState, object?>? Counter(string word) => word switch
        {
            "seq" => s => s.Seq,
            "devices" => s => (long)s.Devices.Count,
            "mms" => s => (long)s.Mms.Count,
            "live-mms" => s => (long)s.Mms.Values.Count(m => m.State == MmLife.Live),
            "exited-mms" => s => (long)s.Mms.Values.Count(m => m.State == MmLife.Exited),
            "dropped-mms" => s => (long)s.Mms.Values.Count(m => m.State == MmLife.Dropped),
            "domains" => s => (long)s.Domains.Count,
            "sva-domains" => s => (long)s.Domains.Values.Count(d => d.Type == "sva"),
            "handles" => s => (long)s.Handles.Count,
            "notifiers" => s => (long)s.Notifiers.Count,
            "pasids" => s => (long)s.Pasids.Count,
            "pasid-entries" => s => (long)s.Devices.Values.Sum(d => d.PasidTable.Count),
            "pending-requests" => s => (long)s.Devices.Values.Sum(d => d.Partial.Count),
            "freed-handles" => s => (long)s.FreedHandles.Count,
            "leaked-pasids" => s => (long)s.Pasids.Count(kv => s.Mms.TryGetValue(kv.Value, out var m) && m.State == MmLife.Dropped),
            "orphan-entries" => s => (long)s.Devices.Values.Sum(d => d.PasidTable.Values.Count(e => e.Mm is not null && s.Mms.TryGetValue(e.Mm, out var m) && m.State == MmLife.Dropped)),
            _ => null,
        };
    }
}
