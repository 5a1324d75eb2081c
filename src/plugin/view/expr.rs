//! The part of expr-lang (the language CoreDNS's `view` evaluates) that a view's expression
//! uses: literals (`'text'`, `"text"`, integers, `true`, `false`, `[lists]`), the query's
//! functions (`name()`, `type()`, `client_ip()`, …, `incidr(ip, cidr)`, `metadata(label)`),
//! `!`/`not`, `&&`/`and`, `||`/`or`, comparisons, `in`/`not in`, `matches`, `contains`,
//! `startsWith`, `endsWith`, `+ - * / %` and parentheses. No crate reads this language (the
//! Rust expression crates have other quoting and no `matches` or `in`), so it is parsed here:
//! once, when the Corefile loads, with errors at their offset; a query only evaluates the tree.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use regex::Regex;

/// A value an expression computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::List(_) => "list",
        }
    }
}

/// What a query offers an expression.
pub struct Query<'a> {
    /// Lower case, with the trailing dot.
    pub name: &'a str,
    pub qtype: &'a str,
    pub class: &'a str,
    pub client: SocketAddr,
    /// The address the query came to, where the listener is bound to one.
    pub server_ip: Option<IpAddr>,
    pub server_port: u16,
    pub proto: &'a str,
    pub bufsize: u16,
    pub dnssec_ok: bool,
    pub id: u16,
    pub opcode: u8,
    pub size: usize,
    /// What the block's plugins published about the query (`metadata`).
    pub metadata: &'a [(&'static str, String)],
}

/// An address as CoreDNS's request writes it: IPv6 in brackets.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Func {
    Bufsize,
    Class,
    ClientIp,
    Do,
    Id,
    Name,
    Opcode,
    Port,
    Proto,
    ServerIp,
    ServerPort,
    Size,
    Type,
    Incidr,
    Metadata,
}

impl Func {
    fn by_name(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "bufsize" => (Func::Bufsize, 0),
            "class" => (Func::Class, 0),
            "client_ip" => (Func::ClientIp, 0),
            "do" => (Func::Do, 0),
            "id" => (Func::Id, 0),
            "name" => (Func::Name, 0),
            "opcode" => (Func::Opcode, 0),
            "port" => (Func::Port, 0),
            "proto" => (Func::Proto, 0),
            "server_ip" => (Func::ServerIp, 0),
            "server_port" => (Func::ServerPort, 0),
            "size" => (Func::Size, 0),
            "type" => (Func::Type, 0),
            "incidr" => (Func::Incidr, 2),
            "metadata" => (Func::Metadata, 1),
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Op {
    /// How tightly it binds (expr-lang's precedence).
    fn power(self) -> u8 {
        match self {
            Op::Or => 1,
            Op::And => 2,
            Op::Eq
            | Op::Ne
            | Op::Lt
            | Op::Le
            | Op::Gt
            | Op::Ge
            | Op::In
            | Op::NotIn
            | Op::Contains
            | Op::StartsWith
            | Op::EndsWith => 3,
            Op::Add | Op::Sub => 4,
            Op::Mul | Op::Div | Op::Rem => 5,
        }
    }
}

#[derive(Debug)]
enum Node {
    Lit(Value),
    List(Vec<Node>),
    Call(Func, Vec<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    /// `x matches 'regex'`: the pattern compiled when it is a literal.
    Matches(Box<Node>, Pattern),
}

#[derive(Debug)]
enum Pattern {
    Fixed(Regex),
    Computed(Box<Node>),
}

/// An expression that does not parse: what was expected, at which byte of the text.
#[derive(Debug, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub msg: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Str(String),
    Punct(&'static str),
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let err = |offset, msg: &str| ExprError {
        offset,
        msg: msg.to_string(),
    };
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;

    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, Tok::Ident(text[start..i].to_string())));
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let n = text[start..i]
                .parse()
                .map_err(|_| err(start, "a number too large"))?;
            out.push((start, Tok::Int(n)));
        } else if c == b'\'' || c == b'"' {
            let mut s = String::new();
            i += 1;
            let mut closed = false;
            while i < text.len() {
                let ch = text[i..].chars().next().unwrap_or('\0');
                i += ch.len_utf8();
                match ch {
                    q if q as u32 == u32::from(c) => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        let esc = text[i..]
                            .chars()
                            .next()
                            .ok_or_else(|| err(i, "an escaped character after '\\'"))?;
                        i += esc.len_utf8();
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    other => s.push(other),
                }
            }
            if !closed {
                return Err(err(start, "a closing quote for this string"));
            }
            out.push((start, Tok::Str(s)));
        } else if let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) {
            i += p.len();
            out.push((start, Tok::Punct(p)));
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err(err(start, &format!("an operator or a value, not '{ch}'")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.0)
    }

    fn err(&self, msg: impl Into<String>) -> ExprError {
        ExprError {
            offset: self.offset(),
            msg: msg.into(),
        }
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.peek() == Some(&Tok::Punct(leak(p))) {
            self.at += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, p: &'static str) -> Result<(), ExprError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.err(format!("'{p}'")))
        }
    }

    /// The binary operator next, if any, and how many tokens it takes.
    fn op(&self) -> Option<(Op, usize)> {
        fn word(t: Option<&(usize, Tok)>) -> Option<&str> {
            match t {
                Some((_, Tok::Ident(w))) => Some(w.as_str()),
                _ => None,
            }
        }
        Some(match self.peek()? {
            Tok::Punct(p) => (
                match *p {
                    "||" => Op::Or,
                    "&&" => Op::And,
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    "+" => Op::Add,
                    "-" => Op::Sub,
                    "*" => Op::Mul,
                    "/" => Op::Div,
                    "%" => Op::Rem,
                    _ => return None,
                },
                1,
            ),
            Tok::Ident(w) => match w.as_str() {
                "or" => (Op::Or, 1),
                "and" => (Op::And, 1),
                "in" => (Op::In, 1),
                "contains" => (Op::Contains, 1),
                "startsWith" => (Op::StartsWith, 1),
                "endsWith" => (Op::EndsWith, 1),
                "not" if word(self.toks.get(self.at + 1)) == Some("in") => (Op::NotIn, 2),
                _ => return None,
            },
            _ => return None,
        })
    }

    fn expr(&mut self, min: u8) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            if let Some(Tok::Ident(w)) = self.peek()
                && w == "matches"
            {
                if Op::Eq.power() < min {
                    break;
                }
                self.at += 1;
                let at = self.offset();
                let right = self.expr(Op::Eq.power() + 1)?;
                let pattern = match right {
                    Node::Lit(Value::Str(p)) => {
                        Pattern::Fixed(Regex::new(&p).map_err(|e| ExprError {
                            offset: at,
                            msg: format!("a regular expression: {e}"),
                        })?)
                    }
                    other => Pattern::Computed(Box::new(other)),
                };
                left = Node::Matches(Box::new(left), pattern);
                continue;
            }
            let Some((op, len)) = self.op() else { break };
            if op.power() < min {
                break;
            }
            self.at += len;
            let right = self.expr(op.power() + 1)?;
            left = Node::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat("!") {
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        if let Some(Tok::Ident(w)) = self.peek()
            && w == "not"
        {
            self.at += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err("a value"));
        };
        let at = self.offset();
        self.at += 1;
        match tok {
            Tok::Int(n) => Ok(Node::Lit(Value::Int(n))),
            Tok::Str(s) => Ok(Node::Lit(Value::Str(s))),
            Tok::Punct("(") => {
                let inner = self.expr(0)?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.expr(0)?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Node::List(items))
            }
            Tok::Ident(w) if w == "true" || w == "false" => Ok(Node::Lit(Value::Bool(w == "true"))),
            Tok::Ident(w) => {
                let Some((func, arity)) = Func::by_name(&w) else {
                    return Err(ExprError {
                        offset: at,
                        msg: format!(
                            "a known function, not '{w}' (bufsize, class, client_ip, do, id, name, opcode, port, proto, server_ip, server_port, size, type, incidr, metadata)"
                        ),
                    });
                };
                self.expect("(")?;
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.expr(0)?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                if args.len() != arity {
                    return Err(ExprError {
                        offset: at,
                        msg: format!("{w}() takes {arity} argument(s), not {}", args.len()),
                    });
                }
                Ok(Node::Call(func, args))
            }
            Tok::Punct(p) => Err(ExprError {
                offset: at,
                msg: format!("a value, not '{p}'"),
            }),
        }
    }
}

/// The punctuation, longest first where one starts another.
const PUNCT: [&str; 19] = [
    "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", ",", "<", ">", "!", "+", "-", "*", "/",
    "%",
];

/// The punctuation table's own `&'static str` for `p`.
fn leak(p: &str) -> &'static str {
    PUNCT.iter().find(|a| **a == p).copied().unwrap_or("")
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expr(Node);

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let toks = lex(text)?;
        let mut p = Parser {
            toks,
            at: 0,
            end: text.len(),
        };
        let node = p.expr(0)?;
        if p.at < p.toks.len() {
            return Err(p.err("an operator or the end of the expression"));
        }
        Ok(Expr(node))
    }

    /// Whether the expression holds for `q`; an expression that fails (a type mismatch, say)
    /// does not.
    pub fn holds(&self, q: &Query) -> bool {
        matches!(eval(&self.0, q), Ok(Value::Bool(true)))
    }

    /// What the expression computes for `q`, or why it cannot.
    pub fn eval(&self, q: &Query) -> Result<Value, String> {
        eval(&self.0, q)
    }
}

fn call(f: Func, args: &[Node], q: &Query) -> Result<Value, String> {
    Ok(match f {
        Func::Bufsize => Value::Int(i64::from(q.bufsize)),
        Func::Class => Value::Str(q.class.to_string()),
        Func::ClientIp => Value::Str(ip_text(q.client.ip())),
        Func::Do => Value::Bool(q.dnssec_ok),
        Func::Id => Value::Int(i64::from(q.id)),
        Func::Name => Value::Str(q.name.to_string()),
        Func::Opcode => Value::Int(i64::from(q.opcode)),
        Func::Port => Value::Str(q.client.port().to_string()),
        Func::Proto => Value::Str(q.proto.to_string()),
        Func::ServerIp => Value::Str(q.server_ip.map(ip_text).unwrap_or_default()),
        Func::ServerPort => Value::Str(q.server_port.to_string()),
        Func::Size => Value::Int(q.size as i64),
        Func::Type => Value::Str(q.qtype.to_string()),
        Func::Metadata => {
            let Value::Str(label) = eval(&args[0], q)? else {
                return Err("metadata() takes a string".into());
            };
            let found = q.metadata.iter().find(|(l, _)| *l == label);
            Value::Str(found.map(|(_, v)| v.clone()).unwrap_or_default())
        }
        Func::Incidr => {
            let (Value::Str(ip), Value::Str(cidr)) = (eval(&args[0], q)?, eval(&args[1], q)?)
            else {
                return Err("incidr() takes two strings".into());
            };
            let ip: IpAddr = ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("incidr(): '{ip}' is not an address"))?;
            let net: IpNet = cidr
                .parse()
                .map_err(|_| format!("incidr(): '{cidr}' is not a CIDR"))?;
            Value::Bool(net.contains(&ip.to_canonical()))
        }
    })
}

fn eval(n: &Node, q: &Query) -> Result<Value, String> {
    match n {
        Node::Lit(v) => Ok(v.clone()),
        Node::List(items) => Ok(Value::List(
            items.iter().map(|i| eval(i, q)).collect::<Result<_, _>>()?,
        )),
        Node::Call(f, args) => call(*f, args, q),
        Node::Not(x) => match eval(x, q)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            v => Err(format!("'!' of a {}", v.kind())),
        },
        Node::Neg(x) => match eval(x, q)? {
            Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
            v => Err(format!("'-' of a {}", v.kind())),
        },
        Node::Matches(x, pattern) => {
            let Value::Str(s) = eval(x, q)? else {
                return Err("matches needs a string on its left".into());
            };
            let ok = match pattern {
                Pattern::Fixed(re) => re.is_match(&s),
                Pattern::Computed(p) => {
                    let Value::Str(p) = eval(p, q)? else {
                        return Err("matches needs a pattern string".into());
                    };
                    Regex::new(&p).map_err(|e| e.to_string())?.is_match(&s)
                }
            };
            Ok(Value::Bool(ok))
        }
        Node::Bin(Op::And, l, r) => match eval(l, q)? {
            Value::Bool(false) => Ok(Value::Bool(false)),
            Value::Bool(true) => truth(eval(r, q)?),
            v => Err(format!("'&&' of a {}", v.kind())),
        },
        Node::Bin(Op::Or, l, r) => match eval(l, q)? {
            Value::Bool(true) => Ok(Value::Bool(true)),
            Value::Bool(false) => truth(eval(r, q)?),
            v => Err(format!("'||' of a {}", v.kind())),
        },
        Node::Bin(op, l, r) => binary(*op, eval(l, q)?, eval(r, q)?),
    }
}

fn truth(v: Value) -> Result<Value, String> {
    match v {
        Value::Bool(_) => Ok(v),
        v => Err(format!("a {} where a bool was expected", v.kind())),
    }
}

fn binary(op: Op, l: Value, r: Value) -> Result<Value, String> {
    use Value::{Bool, Int, List, Str};
    let mismatch = |l: &Value, r: &Value| format!("{op:?} of a {} and a {}", l.kind(), r.kind());
    Ok(match (op, &l, &r) {
        (Op::Eq, _, _) => Bool(l == r),
        (Op::Ne, _, _) => Bool(l != r),
        (Op::Lt, Int(a), Int(b)) => Bool(a < b),
        (Op::Le, Int(a), Int(b)) => Bool(a <= b),
        (Op::Gt, Int(a), Int(b)) => Bool(a > b),
        (Op::Ge, Int(a), Int(b)) => Bool(a >= b),
        (Op::Lt, Str(a), Str(b)) => Bool(a < b),
        (Op::Le, Str(a), Str(b)) => Bool(a <= b),
        (Op::Gt, Str(a), Str(b)) => Bool(a > b),
        (Op::Ge, Str(a), Str(b)) => Bool(a >= b),
        (Op::In, x, List(items)) => Bool(items.contains(x)),
        (Op::NotIn, x, List(items)) => Bool(!items.contains(x)),
        (Op::Contains, Str(a), Str(b)) => Bool(a.contains(b.as_str())),
        (Op::StartsWith, Str(a), Str(b)) => Bool(a.starts_with(b.as_str())),
        (Op::EndsWith, Str(a), Str(b)) => Bool(a.ends_with(b.as_str())),
        (Op::Add, Int(a), Int(b)) => Int(a.wrapping_add(*b)),
        (Op::Add, Str(a), Str(b)) => Str(format!("{a}{b}")),
        (Op::Sub, Int(a), Int(b)) => Int(a.wrapping_sub(*b)),
        (Op::Mul, Int(a), Int(b)) => Int(a.wrapping_mul(*b)),
        (Op::Div | Op::Rem, Int(_), Int(0)) => return Err("division by zero".into()),
        (Op::Div, Int(a), Int(b)) => Int(a.wrapping_div(*b)),
        (Op::Rem, Int(a), Int(b)) => Int(a.wrapping_rem(*b)),
        _ => return Err(mismatch(&l, &r)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Query<'static> {
        Query {
            name: "abc.x.example.com.",
            qtype: "A",
            class: "IN",
            client: "192.168.1.7:40000".parse().unwrap(),
            server_ip: None,
            server_port: 53,
            proto: "udp",
            bufsize: 1232,
            dnssec_ok: false,
            id: 4242,
            opcode: 0,
            size: 40,
            metadata: &[],
        }
    }

    #[test]
    fn the_readmes_expressions_hold_where_they_should() {
        let q = query();
        for (text, want) in [
            ("incidr(client_ip(), '192.168.0.0/16')", true),
            ("incidr(client_ip(), '127.0.0.0/24')", false),
            ("type() in ['A', 'AAAA']", true),
            ("type() not in ['A', 'AAAA']", false),
            (r"name() matches '^abc\\..*\\.example\\.com\\.$'", true),
            (
                "(type() == 'A' && name() == 'example.com') || client_ip() == '1.2.3.4'",
                false,
            ),
            ("server_port() == '53' and proto() == 'udp'", true),
            (
                "bufsize() >= 1232 && !do() && id() == 4242 && size() < 100",
                true,
            ),
            (
                "name() endsWith 'example.com.' and not (port() startsWith '5')",
                true,
            ),
            (
                "name() contains '.x.' && 2 + 3 * 4 == 14 && 10 % 4 == 2",
                true,
            ),
            ("metadata('kubernetes/client-namespace') == ''", true),
            ("metadata('view/name') != 'x'", true),
            ("class() == \"IN\"", true),
        ] {
            let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(e.holds(&q), want, "{text}: {:?}", e.eval(&q));
        }
        let v6 = Query {
            client: "[fd00::1]:53".parse().unwrap(),
            ..query()
        };
        let e =
            Expr::parse("client_ip() == '[fd00::1]' && incidr(client_ip(), 'fd00::/8')").unwrap();
        assert!(e.holds(&v6));
        let meta = vec![("kubernetes/namespace", "shop".to_string())];
        let with_meta = Query {
            metadata: &meta,
            ..query()
        };
        let e = Expr::parse("metadata('kubernetes/namespace') == 'shop'").unwrap();
        assert!(e.holds(&with_meta));
        assert!(!e.holds(&query()));
    }

    #[test]
    fn a_type_mismatch_does_not_hold() {
        let e = Expr::parse("name() + 1 == 2").unwrap();
        assert!(!e.holds(&query()));
        assert!(e.eval(&query()).is_err());
        assert!(!Expr::parse("name()").unwrap().holds(&query()));
    }

    #[test]
    fn errors_say_what_was_expected_and_where() {
        for (text, offset, msg) in [
            ("type() == ", 10, "a value"),
            ("nme() == 'a'", 0, "a known function, not 'nme'"),
            (
                "incidr(client_ip())",
                0,
                "incidr() takes 2 argument(s), not 1",
            ),
            ("type() == 'A", 10, "a closing quote"),
            ("name() matches '(('", 15, "a regular expression"),
            ("type() == 'A' 'B'", 14, "an operator or the end"),
            ("type() # 1", 7, "an operator or a value, not '#'"),
            ("(type() == 'A'", 14, "')'"),
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text}: {e:?}");
            assert!(e.msg.starts_with(msg), "{text}: {e:?}");
        }
    }
}
