//! From merged definitions to matchers: list flattening, macro expansion, field and operator
//! typing, literal conversion (numbers, addresses, networks, host names, regexes, globs),
//! constant folding, and the event types each rule can match.
//!
//! A compiled condition is a tree of [`Node`]s whose leaves are [`Check`]s: a typed field
//! accessor and an operator with its operand already converted (hash sets for `in`, a prefix
//! set for `pmatch`, compiled regexes). Evaluating one allocates nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, ToSocketAddrs};

use super::event::{EVENT_TYPE_COUNT, Event, EventType};
use super::fields::{self, F, FieldError, FieldRef, FieldType, Scratch, Val};
use super::loader::{Definitions, Origin, exceptions_condition};
use super::output::Template;
use super::parser::{self, Expr, Literal, Operand, Operator};
use super::ruleset::{CompiledRule, Ruleset};
use super::{
    Diagnostic, HostResolver, LoadError, LoadOptions, Mitre, RuleInfo, RuleStatus, Severity,
};

/// The deepest a condition may nest once its macros are expanded.
const MAX_EXPANDED_DEPTH: usize = 200;

/// A bit per event type.
pub(crate) type TypeMask = u128;
const _: () = assert!(
    EVENT_TYPE_COUNT <= 128,
    "event types must fit the type mask"
);
pub(crate) const ALL_TYPES: TypeMask = if EVENT_TYPE_COUNT >= 128 {
    u128::MAX
} else {
    (1u128 << EVENT_TYPE_COUNT) - 1
};

#[inline]
pub(crate) fn type_bit(t: EventType) -> TypeMask {
    1u128 << (t as u32)
}

/// A fast non-cryptographic hasher for the rule-defined sets (keys come from rules files).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.add(u64::from_le_bytes(a));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

/// A set of strings: a short slice scanned linearly, or a hash set.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    Small(Box<[Box<str>]>),
    Hash(FxSet<Box<str>>),
}

impl StrSet {
    fn new(items: Vec<String>) -> StrSet {
        let mut seen: Vec<Box<str>> = Vec::with_capacity(items.len());
        for i in items {
            if !seen.iter().any(|s| **s == *i) {
                seen.push(i.into());
            }
        }
        if seen.len() <= 8 {
            StrSet::Small(seen.into_boxed_slice())
        } else {
            StrSet::Hash(seen.into_iter().collect())
        }
    }

    #[inline]
    fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|x| **x == *s),
            StrSet::Hash(h) => h.contains(s),
        }
    }
}

/// Directory prefixes for `pmatch`: a path matches when it is one of them or below one.
/// A handful of directories are compared directly; more go in a hash set probed once per
/// path component.
#[derive(Debug, Clone)]
pub(crate) enum PathSet {
    Small(Box<[Box<str>]>, bool),
    Hash(FxSet<Box<str>>, bool),
}

impl PathSet {
    fn new(items: Vec<String>) -> PathSet {
        let mut dirs: Vec<Box<str>> = Vec::new();
        let mut root = false;
        for i in items {
            let t = i.trim_end_matches('/');
            if t.is_empty() {
                root |= i.starts_with('/');
            } else if !dirs.iter().any(|d| **d == *t) {
                dirs.push(t.into());
            }
        }
        if dirs.len() <= 8 {
            PathSet::Small(dirs.into_boxed_slice(), root)
        } else {
            PathSet::Hash(dirs.into_iter().collect(), root)
        }
    }

    fn matches(&self, path: &str) -> bool {
        let root = match self {
            PathSet::Small(_, r) | PathSet::Hash(_, r) => *r,
        };
        if root && path.starts_with('/') {
            return true;
        }
        let p = path.trim_end_matches('/');
        match self {
            PathSet::Small(dirs, _) => dirs.iter().any(|d| {
                p.len() >= d.len()
                    && p.as_bytes().starts_with(d.as_bytes())
                    && (p.len() == d.len() || p.as_bytes().get(d.len()) == Some(&b'/'))
            }),
            PathSet::Hash(dirs, _) => {
                dirs.contains(p)
                    || p.bytes().enumerate().any(|(i, b)| {
                        b == b'/' && i > 0 && p.get(..i).is_some_and(|pre| dirs.contains(pre))
                    })
            }
        }
    }
}

/// An IP network (`10.0.0.0/8`); a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// A shell-style pattern (`*`, `?`, `[a-z]`, `[!x]`); `*` crosses `/` as in Falco.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    toks: Box<[GlobTok]>,
    fold: bool,
    /// The longest run of literal characters: a string without it cannot match, and
    /// a prepared substring search rules most strings out far faster than the matcher.
    needle: Finder,
}

#[derive(Debug, Clone)]
enum GlobTok {
    Char(char),
    Any,
    One,
    Class(bool, Box<[(char, char)]>),
}

impl Glob {
    fn new(p: &str, fold: bool) -> Glob {
        let fold_c = |c: char| if fold { c.to_ascii_lowercase() } else { c };
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => {
                    if !matches!(toks.last(), Some(GlobTok::Any)) {
                        toks.push(GlobTok::Any);
                    }
                }
                '?' => toks.push(GlobTok::One),
                '\\' if i < chars.len() => {
                    toks.push(GlobTok::Char(fold_c(chars[i])));
                    i += 1;
                }
                '[' => {
                    // Find the closing bracket; a ']' right after '[' or '[!' is literal.
                    let mut j = i;
                    let neg = j < chars.len() && (chars[j] == '!' || chars[j] == '^');
                    if neg {
                        j += 1;
                    }
                    let body_start = j;
                    if j < chars.len() && chars[j] == ']' {
                        j += 1;
                    }
                    while j < chars.len() && chars[j] != ']' {
                        j += 1;
                    }
                    if j >= chars.len() {
                        toks.push(GlobTok::Char('['));
                        continue;
                    }
                    let body = &chars[body_start..j];
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            ranges.push((fold_c(body[k]), fold_c(body[k + 2])));
                            k += 3;
                        } else {
                            ranges.push((fold_c(body[k]), fold_c(body[k])));
                            k += 1;
                        }
                    }
                    toks.push(GlobTok::Class(neg, ranges.into_boxed_slice()));
                    i = j + 1;
                }
                c => toks.push(GlobTok::Char(fold_c(c))),
            }
        }
        let mut needle = String::new();
        let mut run = String::new();
        for t in toks.iter().chain(std::iter::once(&GlobTok::Any)) {
            match t {
                GlobTok::Char(c) => run.push(*c),
                _ => {
                    if run.len() > needle.len() {
                        needle = std::mem::take(&mut run);
                    }
                    run.clear();
                }
            }
        }
        Glob {
            toks: toks.into_boxed_slice(),
            fold,
            needle: Finder::new(if fold { "" } else { &needle }),
        }
    }

    fn tok_matches(&self, t: &GlobTok, c: char) -> bool {
        let c = if self.fold { c.to_ascii_lowercase() } else { c };
        match t {
            GlobTok::Char(x) => *x == c,
            GlobTok::One => true,
            GlobTok::Class(neg, ranges) => ranges.iter().any(|(a, b)| *a <= c && c <= *b) != *neg,
            GlobTok::Any => false,
        }
    }

    fn matches(&self, s: &str) -> bool {
        if self.needle.0.find(s.as_bytes()).is_none() {
            return false;
        }
        // Iterative matching with one backtrack point for the last '*'.
        let (mut ti, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            let c = s.get(si..).and_then(|r| r.chars().next());
            match (self.toks.get(ti), c) {
                (Some(GlobTok::Any), _) => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                (Some(t), Some(c)) if self.tok_matches(t, c) => {
                    ti += 1;
                    si += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            match star {
                Some((st, ss)) => match s.get(ss..).and_then(|r| r.chars().next()) {
                    Some(c) => {
                        let ns = ss + c.len_utf8();
                        star = Some((st, ns));
                        ti = st + 1;
                        si = ns;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

/// A prepared substring searcher.
#[derive(Clone)]
pub(crate) struct Finder(memchr::memmem::Finder<'static>);

impl Finder {
    fn new(needle: &str) -> Finder {
        Finder(memchr::memmem::Finder::new(needle.as_bytes()).into_owned())
    }
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Finder({:?})", String::from_utf8_lossy(self.0.needle()))
    }
}

/// Comparison of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// An operator with its operand converted for the field's type.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Exists,
    /// `evt.type` in a set, tested on the event's type directly.
    TypeIn(TypeMask),
    StrEq(Box<str>),
    /// A substring search prepared once (`contains`).
    Contains(Finder),
    /// Needle already lower-cased (ASCII).
    IContains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    BContains(Box<[u8]>),
    BStartsWith(Box<[u8]>),
    Glob(Glob),
    Regex(regex::Regex),
    StrIn(StrSet),
    PMatch(PathSet),
    Int(Cmp, i64),
    IntIn(Box<[i64]>),
    Bool(bool),
    IpIn(Box<[IpAddr]>),
    NetIn(Box<[Cidr]>),
}

/// One leaf: a field, an operator, and whether it is the negated form (`!=`), which holds
/// when the field has a value and none of its values equals the operand.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub field: FieldRef,
    pub op: Op,
    pub negated: bool,
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Const(bool),
    Check(Box<Check>),
    /// An expanded macro, evaluated at most once per event: its result is remembered in
    /// the scratch under this id, so the many rules that share `open_write` and the like
    /// pay for it once.
    Memo(u32, Box<Node>),
}

#[inline]
fn icontains(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

impl Op {
    #[inline]
    fn test(&self, v: Val<'_>) -> bool {
        match (self, v) {
            (Op::Exists, _) => true,
            (Op::StrEq(x), Val::Str(s)) => **x == *s,
            (Op::Contains(f), Val::Str(s)) => f.0.find(s.as_bytes()).is_some(),
            (Op::IContains(x), Val::Str(s)) => icontains(s, x),
            (Op::StartsWith(x), Val::Str(s)) => s.starts_with(&**x),
            (Op::EndsWith(x), Val::Str(s)) => s.ends_with(&**x),
            (Op::BContains(x), Val::Str(s)) => {
                x.is_empty() || s.as_bytes().windows(x.len()).any(|w| w == &**x)
            }
            (Op::BStartsWith(x), Val::Str(s)) => s.as_bytes().starts_with(x),
            (Op::Glob(g), Val::Str(s)) => g.matches(s),
            (Op::Regex(r), Val::Str(s)) => r.is_match(s),
            (Op::StrIn(set), Val::Str(s)) => set.contains(s),
            (Op::PMatch(p), Val::Str(s)) => p.matches(s),
            (Op::Int(c, x), Val::Int(i)) => match c {
                Cmp::Eq => i == *x,
                Cmp::Lt => i < *x,
                Cmp::Le => i <= *x,
                Cmp::Gt => i > *x,
                Cmp::Ge => i >= *x,
            },
            (Op::IntIn(set), Val::Int(i)) => set.binary_search(&i).is_ok(),
            (Op::Bool(b), Val::Bool(v)) => *b == v,
            (Op::IpIn(set), Val::Ip(ip)) => set.contains(&ip),
            (Op::NetIn(nets), Val::Ip(ip)) => nets.iter().any(|n| n.contains(ip)),
            _ => false,
        }
    }
}

impl Op {
    /// A rough relative cost of testing one value.
    fn cost(&self) -> u32 {
        match self {
            Op::TypeIn(_) => 1,
            Op::Exists | Op::Int(..) | Op::Bool(_) => 3,
            Op::IntIn(_) | Op::IpIn(_) | Op::NetIn(_) | Op::StrEq(_) => 4,
            Op::StartsWith(_) | Op::EndsWith(_) | Op::BStartsWith(_) => 5,
            Op::StrIn(StrSet::Small(_)) => 6,
            Op::StrIn(StrSet::Hash(_)) | Op::PMatch(_) => 8,
            Op::Contains(_) | Op::IContains(_) | Op::BContains(_) => 10,
            Op::Glob(_) => 12,
            Op::Regex(_) => 20,
        }
    }
}

impl Node {
    /// A rough relative cost of evaluating this node, to test cheap operands first.
    fn cost(&self) -> u32 {
        match self {
            Node::Const(_) => 0,
            // Usually already computed for this event by an earlier rule.
            Node::Memo(..) => 2,
            Node::Check(c) => {
                let assembled = matches!(
                    c.field.id,
                    F::ProcCmdline
                        | F::ProcArgs
                        | F::ProcPcmdline
                        | F::EvtArgs
                        | F::ProcEnv
                        | F::ThreadCapEffective
                        | F::ThreadCapPermitted
                        | F::EvtTime
                );
                c.op.cost() + if c.field.multi { 6 } else { 0 } + if assembled { 6 } else { 0 }
            }
            Node::Not(n) => n.cost(),
            Node::And(items) | Node::Or(items) => {
                items.iter().map(Node::cost).fold(0u32, u32::saturating_add)
            }
        }
    }

    /// Evaluate against an event. `scratch` must have been reset for this event.
    pub(crate) fn eval(&self, ev: &Event, scratch: &mut Scratch) -> bool {
        match self {
            Node::And(items) => items.iter().all(|n| n.eval(ev, scratch)),
            Node::Or(items) => items.iter().any(|n| n.eval(ev, scratch)),
            Node::Not(n) => !n.eval(ev, scratch),
            Node::Const(b) => *b,
            Node::Memo(id, n) => {
                if let Some(r) = scratch.memo_get(*id) {
                    return r;
                }
                let r = n.eval(ev, scratch);
                scratch.memo_set(*id, r);
                r
            }
            Node::Check(c) => {
                if let Op::TypeIn(mask) = c.op {
                    return (mask & type_bit(ev.kind) != 0) != c.negated;
                }
                scratch.prepare(&c.field, ev);
                let s: &Scratch = scratch;
                if c.negated {
                    let mut seen = false;
                    let hit = fields::any(&c.field, ev, s, |v| {
                        seen = true;
                        c.op.test(v)
                    });
                    seen && !hit
                } else {
                    fields::any(&c.field, ev, s, |v| c.op.test(v))
                }
            }
        }
    }

    /// The event types this condition can be true for (Falco's evt.type derivation:
    /// intersect under `and`, unite under `or`, complement through `not` of evt.type checks).
    pub(crate) fn event_types(&self, negated: bool) -> TypeMask {
        match self {
            Node::And(items) | Node::Or(items) => {
                let conj = matches!(self, Node::And(_)) != negated;
                let mut acc = if conj { ALL_TYPES } else { 0 };
                for n in items.iter() {
                    let m = n.event_types(negated);
                    acc = if conj { acc & m } else { acc | m };
                }
                acc
            }
            Node::Not(n) => n.event_types(!negated),
            Node::Memo(_, n) => n.event_types(negated),
            Node::Const(b) => {
                if *b != negated {
                    ALL_TYPES
                } else {
                    0
                }
            }
            Node::Check(c) => match c.op {
                Op::TypeIn(mask) => {
                    if c.negated != negated {
                        ALL_TYPES & !mask
                    } else {
                        mask
                    }
                }
                _ => ALL_TYPES,
            },
        }
    }
}

/// Everything a rule's compilation needs, plus what it finds out.
struct Compiler<'a> {
    lists: HashMap<&'a str, Vec<String>>,
    macros: HashMap<&'a str, (&'a str, &'a Origin)>,
    macro_cache: HashMap<String, (Node, BTreeSet<String>)>,
    /// How many memoised macro nodes have been made (their ids are 0..memo_count).
    memo_count: u32,
    resolver: &'a HostResolver,
    resolved: HashMap<String, Vec<IpAddr>>,
    /// Fields the current rule needs but the engine lacks.
    missing: BTreeSet<String>,
    /// Non-fatal remarks for the current rule (unknown event types, unresolvable names).
    notes: Vec<String>,
    /// Host names of the current rule that resolved to nothing.
    unresolved: Vec<String>,
    stack: Vec<String>,
}

/// Where a compile error is reported: the rule's condition or the macro being expanded.
struct Site<'o> {
    origin: &'o Origin,
    what: String,
}

fn unquote(s: &str) -> &str {
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

impl<'a> Compiler<'a> {
    fn new(defs: &'a Definitions, resolver: &'a HostResolver) -> Compiler<'a> {
        // Flatten lists: an item naming another list is replaced by its items.
        let raw: HashMap<&str, &Vec<String>> = defs
            .lists
            .iter()
            .map(|l| (l.name.as_str(), &l.items))
            .collect();
        let mut lists = HashMap::new();
        for l in &defs.lists {
            let mut out = Vec::new();
            flatten(&raw, &l.items, &mut out, 0);
            lists.insert(l.name.as_str(), out);
        }
        let macros = defs
            .macros
            .iter()
            .map(|m| (m.name.as_str(), (m.condition.as_str(), &m.cond_origin)))
            .collect();
        Compiler {
            lists,
            macros,
            macro_cache: HashMap::new(),
            memo_count: 0,
            resolver,
            resolved: HashMap::new(),
            missing: BTreeSet::new(),
            notes: Vec::new(),
            unresolved: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn error(&self, site: &Site, message: String) -> LoadError {
        LoadError {
            file: site.origin.file.clone(),
            line: site.origin.line,
            message: format!("{}: {message}", site.what),
        }
    }

    fn compile(&mut self, e: &Expr, site: &Site, depth: usize) -> Result<Node, LoadError> {
        if depth > MAX_EXPANDED_DEPTH {
            return Err(self.error(
                site,
                format!("the condition nests deeper than {MAX_EXPANDED_DEPTH} levels once macros are expanded"),
            ));
        }
        Ok(match e {
            Expr::And(items) | Expr::Or(items) => {
                let and = matches!(e, Expr::And(_));
                let mut out = Vec::with_capacity(items.len());
                // Compile every operand (to find every missing field and error), then fold.
                let mut decided = false;
                for i in items {
                    let n = self.compile(i, site, depth + 1)?;
                    match n {
                        Node::Const(b) if b == and => {} // neutral element
                        Node::Const(_) => decided = true,
                        Node::And(inner) if and => out.extend(inner.into_vec()),
                        Node::Or(inner) if !and => out.extend(inner.into_vec()),
                        n => out.push(n),
                    }
                }
                if decided {
                    return Ok(Node::Const(!and));
                }
                // Conditions have no side effects, so operands can be tested cheapest first
                // (a stable sort keeps the author's order among equals).
                out.sort_by_key(Node::cost);
                match out.len() {
                    0 => Node::Const(and),
                    1 => out.pop().unwrap_or(Node::Const(and)),
                    _ if and => Node::And(out.into_boxed_slice()),
                    _ => Node::Or(out.into_boxed_slice()),
                }
            }
            Expr::Not(inner) => match self.compile(inner, site, depth + 1)? {
                Node::Const(b) => Node::Const(!b),
                Node::Not(n) => *n,
                n => Node::Not(Box::new(n)),
            },
            Expr::Macro { name, .. } => self.expand_macro(name, site, depth)?,
            Expr::Check {
                field,
                arg,
                op,
                value,
                ..
            } => self.check(field, arg.as_deref(), *op, value, site)?,
        })
    }

    fn expand_macro(&mut self, name: &str, site: &Site, depth: usize) -> Result<Node, LoadError> {
        if let Some((node, missing)) = self.macro_cache.get(name) {
            self.missing.extend(missing.iter().cloned());
            return Ok(node.clone());
        }
        let Some(&(cond, origin)) = self.macros.get(name) else {
            return Err(self.error(site, format!("undefined macro '{name}'")));
        };
        if self.stack.iter().any(|s| s == name) {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(self.error(
                site,
                format!("macro '{name}' refers to itself ({})", chain.join(" -> ")),
            ));
        }
        let msite = Site {
            origin,
            what: format!("macro '{name}'"),
        };
        let ast = parser::parse(cond).map_err(|e| self.error(&msite, e.to_string()))?;
        let saved = std::mem::take(&mut self.missing);
        self.stack.push(name.to_string());
        let node = self.compile(&ast, &msite, depth + 1);
        self.stack.pop();
        let mine = std::mem::replace(&mut self.missing, saved);
        let node = match node? {
            // Constants and single event-type tests cost less than a memo lookup.
            n @ Node::Const(_) => n,
            n @ Node::Memo(..) => n,
            Node::Check(c) if matches!(c.op, Op::TypeIn(_)) => Node::Check(c),
            n => {
                self.memo_count += 1;
                Node::Memo(self.memo_count - 1, Box::new(n))
            }
        };
        self.missing.extend(mine.iter().cloned());
        self.macro_cache
            .insert(name.to_string(), (node.clone(), mine));
        Ok(node)
    }

    /// The values of a list operand, with list names expanded.
    fn list_values(&self, value: &Operand, site: &Site) -> Result<Vec<String>, LoadError> {
        match value {
            Operand::List(items) => {
                let mut out = Vec::new();
                for Literal { text, quoted } in items {
                    match self.lists.get(text.as_str()) {
                        Some(l) if !quoted => out.extend(l.iter().cloned()),
                        _ => out.push(text.clone()),
                    }
                }
                Ok(out)
            }
            Operand::ListName(n) => self
                .lists
                .get(n.as_str())
                .cloned()
                .ok_or_else(|| self.error(site, format!("undefined list '{n}'"))),
            Operand::Value(v) => Ok(vec![v.text.clone()]),
            Operand::None => Ok(Vec::new()),
        }
    }

    fn check(
        &mut self,
        field: &str,
        arg: Option<&str>,
        op: Operator,
        value: &Operand,
        site: &Site,
    ) -> Result<Node, LoadError> {
        let display = match arg {
            Some(a) => format!("{field}[{a}]"),
            None => field.to_string(),
        };
        let fref = match fields::resolve(field, arg) {
            Ok(f) => f,
            Err(FieldError::Unknown) => {
                self.missing.insert(field.to_string());
                return Ok(Node::Const(false));
            }
            Err(FieldError::BadArg(m)) => return Err(self.error(site, m)),
        };
        let bad_op = |c: &Compiler| {
            c.error(
                site,
                format!(
                    "operator '{}' does not apply to {} field '{display}'",
                    op.as_str(),
                    match fref.ty {
                        FieldType::Str => "string",
                        FieldType::Int => "numeric",
                        FieldType::Bool => "boolean",
                        FieldType::Ip | FieldType::Net | FieldType::HostName => "address",
                    }
                ),
            )
        };
        if op == Operator::Exists {
            return Ok(check_node(fref, Op::Exists, false));
        }
        let values = self.list_values(value, site)?;
        let single = || values.first().cloned().unwrap_or_default();
        let negated = op == Operator::Ne;
        let list_op = op.takes_list();

        // evt.type equality and membership use the event-type bit set.
        if fref.id == F::EvtType
            && matches!(
                op,
                Operator::Eq | Operator::Ne | Operator::In | Operator::Intersects
            )
        {
            let mut mask = 0;
            for v in &values {
                match EventType::from_name(unquote(v)) {
                    Some(t) => mask |= type_bit(t),
                    None => self
                        .notes
                        .push(format!("unknown event type '{v}' (matches nothing)")),
                }
            }
            return Ok(check_node(fref, Op::TypeIn(mask), negated));
        }

        let compiled = match fref.ty {
            FieldType::Str => {
                let s = single();
                match op {
                    Operator::Eq | Operator::Ne => Op::StrEq(s.into()),
                    Operator::Contains => Op::Contains(Finder::new(&s)),
                    Operator::IContains => Op::IContains(s.to_ascii_lowercase().into()),
                    Operator::StartsWith => Op::StartsWith(s.into()),
                    Operator::EndsWith => Op::EndsWith(s.into()),
                    Operator::Glob => Op::Glob(Glob::new(&s, false)),
                    Operator::IGlob => Op::Glob(Glob::new(&s, true)),
                    Operator::BContains | Operator::BStartsWith => {
                        let bytes = hex_bytes(&s).ok_or_else(|| {
                            self.error(
                                site,
                                format!("'{s}' is not a hex byte string for '{}'", op.as_str()),
                            )
                        })?;
                        if op == Operator::BContains {
                            Op::BContains(bytes.into())
                        } else {
                            Op::BStartsWith(bytes.into())
                        }
                    }
                    Operator::Regex => {
                        let re = regex::RegexBuilder::new(&format!("^(?:{s})$"))
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| {
                                let first = e.to_string();
                                let first = first.lines().last().unwrap_or("").trim().to_string();
                                self.error(site, format!("invalid regex '{s}': {first}"))
                            })?;
                        Op::Regex(re)
                    }
                    Operator::In | Operator::Intersects => Op::StrIn(StrSet::new(
                        values.iter().map(|v| unquote(v).to_string()).collect(),
                    )),
                    Operator::PMatch => Op::PMatch(PathSet::new(
                        values.iter().map(|v| unquote(v).to_string()).collect(),
                    )),
                    _ => return Err(bad_op(self)),
                }
            }
            FieldType::Int => {
                let mut nums = Vec::with_capacity(values.len());
                for v in &values {
                    nums.push(parse_int(unquote(v)).ok_or_else(|| {
                        self.error(site, format!("'{v}' is not a number (field '{display}')"))
                    })?);
                }
                let first = nums.first().copied().unwrap_or(0);
                match op {
                    Operator::Eq | Operator::Ne => Op::Int(Cmp::Eq, first),
                    Operator::Lt => Op::Int(Cmp::Lt, first),
                    Operator::Le => Op::Int(Cmp::Le, first),
                    Operator::Gt => Op::Int(Cmp::Gt, first),
                    Operator::Ge => Op::Int(Cmp::Ge, first),
                    Operator::In | Operator::Intersects => {
                        nums.sort_unstable();
                        nums.dedup();
                        Op::IntIn(nums.into_boxed_slice())
                    }
                    _ => return Err(bad_op(self)),
                }
            }
            FieldType::Bool => {
                let s = single();
                let b = match unquote(&s).to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(self.error(
                            site,
                            format!("'{s}' is not true or false (field '{display}')"),
                        ));
                    }
                };
                match op {
                    Operator::Eq | Operator::Ne => Op::Bool(b),
                    _ => return Err(bad_op(self)),
                }
            }
            FieldType::Ip | FieldType::Net | FieldType::HostName => {
                if !(matches!(op, Operator::Eq | Operator::Ne)
                    || (list_op && op != Operator::PMatch))
                {
                    return Err(bad_op(self));
                }
                match fref.ty {
                    FieldType::Ip => {
                        let mut ips = Vec::new();
                        for v in &values {
                            ips.push(unquote(v).parse::<IpAddr>().map_err(|_| {
                                self.error(
                                    site,
                                    format!("'{v}' is not an IP address (field '{display}')"),
                                )
                            })?);
                        }
                        Op::IpIn(ips.into_boxed_slice())
                    }
                    FieldType::Net => {
                        let mut nets = Vec::new();
                        for v in &values {
                            nets.push(Cidr::parse(unquote(v)).ok_or_else(|| {
                                self.error(
                                    site,
                                    format!(
                                        "'{v}' is not a network like 10.0.0.0/8 (field '{display}')"
                                    ),
                                )
                            })?);
                        }
                        Op::NetIn(nets.into_boxed_slice())
                    }
                    _ => {
                        let mut ips = Vec::new();
                        for v in &values {
                            ips.extend(self.resolve_host(unquote(v)));
                        }
                        ips.sort();
                        ips.dedup();
                        Op::IpIn(ips.into_boxed_slice())
                    }
                }
            }
        };
        Ok(check_node(fref, compiled, negated))
    }

    /// Addresses for a host name used with `fd.*ip.name`, resolved once per load.
    fn resolve_host(&mut self, name: &str) -> Vec<IpAddr> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return vec![ip];
        }
        if let Some(ips) = self.resolved.get(name) {
            if ips.is_empty() {
                self.unresolved.push(name.to_string());
            }
            return ips.clone();
        }
        let ips: Vec<IpAddr> = match self.resolver {
            HostResolver::System => match (name, 0u16).to_socket_addrs() {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            },
            HostResolver::Disabled => Vec::new(),
            HostResolver::Static(table) => table
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .flat_map(|(_, ips)| ips.iter().copied())
                .collect(),
        };
        if ips.is_empty() {
            self.unresolved.push(name.to_string());
        }
        self.resolved.insert(name.to_string(), ips.clone());
        ips
    }
}

fn check_node(field: FieldRef, op: Op, negated: bool) -> Node {
    Node::Check(Box::new(Check { field, op, negated }))
}

fn flatten(
    raw: &HashMap<&str, &Vec<String>>,
    items: &[String],
    out: &mut Vec<String>,
    depth: usize,
) {
    for i in items {
        match raw.get(i.as_str()) {
            Some(sub) if depth < 32 => flatten(raw, sub, out, depth + 1),
            _ => out.push(unquote(i).to_string()),
        }
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    s.parse().ok()
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Compile the merged definitions into a ruleset.
pub(crate) fn compile(
    defs: Definitions,
    options: &LoadOptions,
) -> Result<(Ruleset, Vec<Diagnostic>), LoadError> {
    let mut diags = defs.diagnostics.clone();
    let mut c = Compiler::new(&defs, &options.resolver);

    // Every macro must parse, used or not, as in Falco.
    for m in &defs.macros {
        parser::parse(&m.condition).map_err(|e| LoadError {
            file: m.cond_origin.file.clone(),
            line: m.cond_origin.line,
            message: format!("macro '{}': {e}", m.name),
        })?;
    }

    let mut infos = Vec::with_capacity(defs.rules.len());
    let mut compiled = Vec::with_capacity(defs.rules.len());
    for r in &defs.rules {
        let exc = exceptions_condition(&r.exceptions);
        let condition = if exc.is_empty() {
            r.condition.clone()
        } else {
            format!("({}) and not ({exc})", r.condition)
        };
        let mut info = RuleInfo {
            name: r.name.clone(),
            desc: r.desc.trim().to_string(),
            priority: r.priority,
            tags: r.tags.clone(),
            mitre: Mitre::from_tags(&r.tags),
            source: r.source.clone(),
            file: r.origin.file.clone(),
            line: r.origin.line,
            enabled: r.enabled,
            status: RuleStatus::Active,
            unsupported_fields: Vec::new(),
            condition: condition.trim().to_string(),
            output: r.output.trim().to_string(),
            event_types: Vec::new(),
        };
        let site = Site {
            origin: &r.cond_origin,
            what: format!("rule '{}'", r.name),
        };
        let diag = |sev: Severity, line: usize, message: String| Diagnostic {
            severity: sev,
            file: r.origin.file.clone(),
            line,
            rule: Some(r.name.clone()),
            message,
        };
        if r.priority > options.min_priority {
            info.status = RuleStatus::BelowMinPriority;
            infos.push(info);
            continue;
        }
        if r.source != "syscall" {
            info.status = RuleStatus::OtherSource;
            diags.push(diag(
                Severity::Info,
                r.origin.line,
                format!(
                    "rule '{}': source '{}' is not handled by this engine; rule not loaded",
                    r.name, r.source
                ),
            ));
            infos.push(info);
            continue;
        }
        let ast = parser::parse(&condition).map_err(|e| c.error(&site, e.to_string()))?;
        c.missing.clear();
        c.notes.clear();
        c.unresolved.clear();
        let node = c.compile(&ast, &site, 0)?;
        if !c.unresolved.is_empty() {
            let shown: Vec<&str> = c.unresolved.iter().take(3).map(String::as_str).collect();
            let more = c.unresolved.len().saturating_sub(shown.len());
            let why = match options.resolver {
                HostResolver::Disabled => "were not resolved (host name resolution is off)",
                _ => "did not resolve",
            };
            c.notes.push(format!(
                "{} host name(s) {why} ({}{}); checks against them match nothing",
                c.unresolved.len(),
                shown.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        for n in c.notes.drain(..) {
            diags.push(diag(
                Severity::Warning,
                r.cond_origin.line,
                format!("rule '{}': {n}", r.name),
            ));
        }
        let template = Template::compile(&r.output);
        for unknown in template.unknown_fields() {
            diags.push(diag(
                Severity::Warning,
                r.origin.line,
                format!(
                    "rule '{}': output field '%{unknown}' is not supported; it renders as <NA>",
                    r.name
                ),
            ));
        }
        if !c.missing.is_empty() {
            info.status = RuleStatus::Unsupported;
            info.unsupported_fields = c.missing.iter().cloned().collect();
            diags.push(diag(
                Severity::Warning,
                r.origin.line,
                format!(
                    "rule '{}' needs fields this engine does not support ({}); rule skipped",
                    r.name,
                    info.unsupported_fields.join(", ")
                ),
            ));
            infos.push(info);
            continue;
        }
        let mask = node.event_types(false);
        if mask != ALL_TYPES {
            info.event_types = EventType::ALL
                .iter()
                .copied()
                .filter(|t| mask & type_bit(*t) != 0)
                .collect();
        } else {
            diags.push(diag(
                Severity::Info,
                r.cond_origin.line,
                format!(
                    "rule '{}' does not restrict evt.type; it is tested on every event",
                    r.name
                ),
            ));
        }
        if !r.enabled {
            info.status = RuleStatus::Disabled;
        }
        compiled.push(CompiledRule {
            index: infos.len(),
            node,
            mask,
            template,
        });
        infos.push(info);
    }
    let lists = defs.lists.iter().map(|l| l.name.clone()).collect();
    let macros = defs.macros.iter().map(|m| m.name.clone()).collect();
    let ruleset = Ruleset::new(
        infos,
        compiled,
        options.rule_matching,
        lists,
        macros,
        c.memo_count as usize,
    );
    Ok((ruleset, diags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        let g = Glob::new("/home/*/.ssh/*", false);
        assert!(g.matches("/home/alice/.ssh/id_rsa"));
        assert!(g.matches("/home/a/b/.ssh/x"));
        assert!(!g.matches("/root/.ssh/id_rsa"));
        let g = Glob::new("*../*../*", false);
        assert!(g.matches("/etc/../etc/../etc/shadow"));
        assert!(!g.matches("/etc/../etc/shadow"));
        assert!(Glob::new("a?c[0-9]", false).matches("abc7"));
        assert!(!Glob::new("a?c[!0-9]", false).matches("abc7"));
        assert!(Glob::new("*.SH", true).matches("x.sh"));
        assert!(Glob::new("", false).matches(""));
        assert!(Glob::new("[", false).matches("["));
    }

    #[test]
    fn cidr_and_paths() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        let p = PathSet::new(vec!["/etc/".into(), "/usr/bin".into()]);
        assert!(p.matches("/etc/passwd"));
        assert!(p.matches("/etc"));
        assert!(p.matches("/usr/bin/ls"));
        assert!(!p.matches("/usr/binx"));
        assert!(!p.matches("/var/etc/x"));
    }
}
