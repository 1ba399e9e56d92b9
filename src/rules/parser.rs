//! The condition language: text to syntax tree.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | atom
//! atom    := "(" expr ")" | MACRO | FIELD [ "[" ARG "]" ] OPERATOR [ VALUE | LIST ]
//! LIST    := "(" [ VALUE ("," VALUE)* ] ")" | LIST_NAME
//! VALUE   := "quoted \"string\"" | 'single quoted' | bare-word
//! ```
//!
//! Fields have a dot in their name (`proc.name`); a bare identifier without one is a macro
//! reference. Operators: `= == != < <= > >= contains icontains bcontains startswith
//! bstartswith endswith glob iglob regex in intersects pmatch exists`. Nesting is capped at
//! [`MAX_DEPTH`] so that hostile input cannot exhaust the stack; the parser never panics.

use std::fmt;

/// The deepest nesting of parentheses and `not` a condition may have.
pub const MAX_DEPTH: usize = 100;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Operator {
    /// The operator a word or symbol names, if any.
    pub fn from_token(t: &str) -> Option<Operator> {
        Some(match t {
            "=" | "==" => Operator::Eq,
            "!=" => Operator::Ne,
            "<" => Operator::Lt,
            "<=" => Operator::Le,
            ">" => Operator::Gt,
            ">=" => Operator::Ge,
            "contains" => Operator::Contains,
            "icontains" => Operator::IContains,
            "bcontains" => Operator::BContains,
            "startswith" => Operator::StartsWith,
            "bstartswith" => Operator::BStartsWith,
            "endswith" => Operator::EndsWith,
            "glob" => Operator::Glob,
            "iglob" => Operator::IGlob,
            "regex" => Operator::Regex,
            "in" => Operator::In,
            "intersects" => Operator::Intersects,
            "pmatch" => Operator::PMatch,
            "exists" => Operator::Exists,
            _ => return None,
        })
    }

    /// Whether the operator takes a list (`in (a, b)`).
    pub fn takes_list(self) -> bool {
        matches!(self, Operator::In | Operator::Intersects | Operator::PMatch)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Contains => "contains",
            Operator::IContains => "icontains",
            Operator::BContains => "bcontains",
            Operator::StartsWith => "startswith",
            Operator::BStartsWith => "bstartswith",
            Operator::EndsWith => "endswith",
            Operator::Glob => "glob",
            Operator::IGlob => "iglob",
            Operator::Regex => "regex",
            Operator::In => "in",
            Operator::Intersects => "intersects",
            Operator::PMatch => "pmatch",
            Operator::Exists => "exists",
        }
    }
}

/// A literal value, remembering whether it was quoted (a quoted word never names a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub text: String,
    pub quoted: bool,
}

/// The right-hand side of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// `exists` takes none.
    None,
    Value(Literal),
    /// `(a, b, c)`: items may name lists, expanded when compiling.
    List(Vec<Literal>),
    /// `in list_name` without parentheses.
    ListName(String),
}

/// The syntax tree of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A macro reference; `pos` is its byte offset in the condition.
    Macro {
        name: String,
        pos: usize,
    },
    Check {
        field: String,
        arg: Option<String>,
        op: Operator,
        value: Operand,
        pos: usize,
    },
}

/// A syntax error: what is wrong and where (byte offset into the condition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at column {} of the condition)",
            self.message,
            self.pos + 1
        )
    }
}

impl std::error::Error for ParseError {}

/// Parse a condition.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.err("the condition is empty"));
    }
    let e = p.or()?;
    p.skip_ws();
    if !p.at_end() {
        if p.peek() == Some(')') {
            return Err(p.err("unbalanced parenthesis: ')' without a matching '('"));
        }
        return Err(p.err(format!(
            "unexpected '{}' after a complete expression (missing 'and'/'or'?)",
            p.word_preview()
        )));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_bare_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '(' | ')' | ',' | '"' | '\''))
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            pos: self.pos,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump(c);
            } else {
                break;
            }
        }
    }

    fn word_preview(&self) -> String {
        let w: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(40)
            .collect();
        if w.is_empty() {
            "end of condition".into()
        } else {
            w
        }
    }

    /// The keyword `kw` at the cursor, as a whole word.
    fn at_keyword(&self, kw: &str) -> bool {
        let r = self.rest();
        r.starts_with(kw)
            && r[kw.len()..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '(')
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!(
                "the condition nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let first = self.and()?;
        let mut items = vec![first];
        loop {
            self.skip_ws();
            if self.at_keyword("or") {
                self.pos += 2;
                items.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::Or(Vec::new()))
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let first = self.not()?;
        let mut items = vec![first];
        loop {
            self.skip_ws();
            if self.at_keyword("and") {
                self.pos += 3;
                items.push(self.not()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::And(Vec::new()))
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        if self.at_keyword("not") {
            self.pos += 3;
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(self.err("the condition ends where an expression was expected")),
            Some('(') => {
                self.bump('(');
                self.enter()?;
                let e = self.or()?;
                self.depth -= 1;
                self.skip_ws();
                if self.peek() == Some(')') {
                    self.bump(')');
                    Ok(e)
                } else if self.at_end() {
                    Err(ParseError {
                        pos: start,
                        message: "unbalanced parenthesis: '(' is never closed".into(),
                    })
                } else {
                    Err(self.err(format!(
                        "expected ')' or 'and'/'or', found '{}'",
                        self.word_preview()
                    )))
                }
            }
            Some(')') => {
                Err(self.err("unbalanced parenthesis: ')' where an expression was expected"))
            }
            Some(c) if is_ident_start(c) => {
                let name = self.ident();
                if matches!(name, "and" | "or") {
                    return Err(ParseError {
                        pos: start,
                        message: format!("'{name}' where an expression was expected"),
                    });
                }
                if name.contains('.') {
                    self.check(name.to_string(), start)
                } else {
                    if self.peek() == Some('(') {
                        return Err(ParseError {
                            pos: start,
                            message: format!(
                                "'{name}(' : field transformers and functions are not supported"
                            ),
                        });
                    }
                    Ok(Expr::Macro {
                        name: name.to_string(),
                        pos: start,
                    })
                }
            }
            Some(_) => Err(self.err(format!(
                "expected a field, a macro or '(', found '{}'",
                self.word_preview()
            ))),
        }
    }

    fn ident(&mut self) -> &'a str {
        let r = self.rest();
        let len = r.find(|c: char| !is_ident_char(c)).unwrap_or(r.len());
        self.pos += len;
        &r[..len]
    }

    fn check(&mut self, field: String, start: usize) -> Result<Expr, ParseError> {
        let mut arg = None;
        if self.peek() == Some('[') {
            self.bump('[');
            let r = self.rest();
            let Some(end) = r.find(']') else {
                return Err(self.err(format!("'{field}[' has no closing ']'")));
            };
            let a = &r[..end];
            let a = a
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| a.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(a);
            arg = Some(a.to_string());
            self.pos += end + 1;
        }
        self.skip_ws();
        let op_start = self.pos;
        let op = self.operator().ok_or_else(|| ParseError {
            pos: op_start,
            message: format!(
                "unknown operator '{}' after field '{field}'",
                self.word_preview()
            ),
        })?;
        let value = if op == Operator::Exists {
            Operand::None
        } else if op.takes_list() {
            self.skip_ws();
            if self.peek() == Some('(') {
                Operand::List(self.list()?)
            } else if self.peek().is_some_and(is_ident_start) {
                Operand::ListName(self.ident().to_string())
            } else {
                return Err(self.err(format!(
                    "'{}' needs a list: '(a, b)' or a list name",
                    op.as_str()
                )));
            }
        } else {
            self.skip_ws();
            match self.value()? {
                Some(v) => Operand::Value(v),
                None => {
                    return Err(self.err(format!(
                        "'{field} {}' needs a value, found '{}'",
                        op.as_str(),
                        self.word_preview()
                    )));
                }
            }
        };
        Ok(Expr::Check {
            field,
            arg,
            op,
            value,
            pos: start,
        })
    }

    fn operator(&mut self) -> Option<Operator> {
        let r = self.rest();
        for sym in ["==", "!=", "<=", ">=", "=", "<", ">"] {
            if r.starts_with(sym) {
                self.pos += sym.len();
                return Operator::from_token(sym);
            }
        }
        let len = r
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(r.len());
        let op = Operator::from_token(&r[..len])?;
        self.pos += len;
        Some(op)
    }

    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        let open = self.pos;
        self.bump('(');
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.bump(')');
            return Ok(items);
        }
        loop {
            self.skip_ws();
            match self.value()? {
                Some(v) => items.push(v),
                None if self.at_end() => {
                    return Err(ParseError {
                        pos: open,
                        message: "unbalanced parenthesis: the list's '(' is never closed".into(),
                    });
                }
                None => {
                    return Err(self.err(format!(
                        "expected a list item, found '{}'",
                        self.word_preview()
                    )));
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(',') => self.bump(','),
                Some(')') => {
                    self.bump(')');
                    return Ok(items);
                }
                None => {
                    return Err(ParseError {
                        pos: open,
                        message: "unbalanced parenthesis: the list's '(' is never closed".into(),
                    });
                }
                Some(_) => {
                    return Err(self.err(format!(
                        "expected ',' or ')' in a list, found '{}'",
                        self.word_preview()
                    )));
                }
            }
        }
    }

    /// A quoted or bare value; `None` when there is none at the cursor.
    fn value(&mut self) -> Result<Option<Literal>, ParseError> {
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let start = self.pos;
                self.bump(q);
                let mut out = String::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err(ParseError {
                            pos: start,
                            message: "unterminated quoted string".into(),
                        });
                    };
                    self.bump(c);
                    if c == q {
                        break;
                    }
                    if c == '\\' {
                        let Some(e) = self.peek() else {
                            return Err(ParseError {
                                pos: start,
                                message: "unterminated quoted string".into(),
                            });
                        };
                        self.bump(e);
                        match e {
                            'n' => out.push('\n'),
                            't' => out.push('\t'),
                            'r' => out.push('\r'),
                            'b' => out.push('\u{8}'),
                            'f' => out.push('\u{c}'),
                            '"' | '\'' | '\\' => out.push(e),
                            other => {
                                out.push('\\');
                                out.push(other);
                            }
                        }
                    } else {
                        out.push(c);
                    }
                }
                Ok(Some(Literal {
                    text: out,
                    quoted: true,
                }))
            }
            Some(c) if is_bare_char(c) => {
                let r = self.rest();
                let len = r.find(|c: char| !is_bare_char(c)).unwrap_or(r.len());
                self.pos += len;
                Ok(Some(Literal {
                    text: r[..len].to_string(),
                    quoted: false,
                }))
            }
            _ => Ok(None),
        }
    }
}

/// Quote `s` for splicing into a condition, unless it is already a quoted string or a
/// plain word.
pub(crate) fn quote_value(s: &str) -> String {
    let already = s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')));
    if already || (!s.is_empty() && s.chars().all(is_bare_char)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_lists() {
        let e = parse("a or b and not c").unwrap();
        let Expr::Or(items) = e else { panic!() };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Expr::And(x) if x.len() == 2));
        let e = parse("proc.name in (bash, \"a b\", 'c\\'d') and fd.num>=0").unwrap();
        let Expr::And(items) = e else { panic!() };
        let Expr::Check {
            value: Operand::List(l),
            ..
        } = &items[0]
        else {
            panic!()
        };
        assert_eq!(l[1].text, "a b");
        assert_eq!(l[2].text, "c'd");
        let Expr::Check {
            op,
            value: Operand::Value(v),
            ..
        } = &items[1]
        else {
            panic!()
        };
        assert_eq!(*op, Operator::Ge);
        assert_eq!(v.text, "0");
    }

    #[test]
    fn errors_say_what() {
        assert!(
            parse("(a and b")
                .unwrap_err()
                .message
                .contains("unbalanced")
        );
        assert!(
            parse("a and b)")
                .unwrap_err()
                .message
                .contains("unbalanced")
        );
        assert!(
            parse("proc.name foo bar")
                .unwrap_err()
                .message
                .contains("unknown operator")
        );
        let deep = "(".repeat(5000) + "a" + &")".repeat(5000);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let nots = "not ".repeat(5000) + "a";
        assert!(parse(&nots).is_err());
    }
}
