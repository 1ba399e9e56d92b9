//! A YAML document as a tree whose every node knows its line, read with `serde-saphyr`.
//!
//! The loader needs line numbers for every key and value (errors point at them) and the
//! source text of plain scalars (`items: [1.10]` is the string `1.10` to a rules file, not
//! the float 1.1), so it reads a generic spanned tree rather than typed structs.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Deepest YAML nesting accepted (a rules file needs about five levels).
const MAX_YAML_DEPTH: usize = 64;

/// One YAML node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Yaml,
    /// Byte range of a plain scalar in the source, to recover its text.
    span: Option<(usize, usize)>,
}

#[derive(Debug, Clone)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) | Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }

    /// The scalar as text, as written in the source (numbers and booleans included).
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.value {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(_) | Yaml::Float(_) | Yaml::Bool(_) => {
                if let Some((start, len)) = self.span
                    && let Some(raw) = source.get(start..start.saturating_add(len))
                    && !raw.is_empty()
                {
                    return Some(raw.to_string());
                }
                Some(match &self.value {
                    Yaml::Int(i) => i.to_string(),
                    Yaml::Float(f) => f.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => String::new(),
                })
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Yaml>::deserialize(d)?;
        let line = s.referenced.line() as usize;
        let span = s.referenced.span();
        let span = match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) => usize::try_from(o).ok().zip(usize::try_from(l).ok()),
            _ => None,
        };
        Ok(Node {
            line,
            value: s.value,
            span,
        })
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or(Yaml::Float(v as f64), Yaml::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or(Yaml::Float(v as f64), Yaml::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or(Yaml::Float(v as f64), Yaml::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Yaml, E> {
        Ok(Yaml::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = a.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Yaml::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Yaml, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = a.next_entry::<Node, Node>()? {
            out.push((k, v));
        }
        Ok(Yaml::Map(out))
    }
}

/// Parse one YAML document. `Err((line, message))` on a syntax error.
pub(crate) fn parse(text: &str) -> Result<Node, (usize, String)> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_YAML_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.strict_booleans = true;
    if text.trim().is_empty() {
        return Ok(Node {
            line: 1,
            value: Yaml::Null,
            span: None,
        });
    }
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let line = e.location().map_or(1, |l| (l.line() as usize).max(1));
        let full = e.to_string();
        let first = full.lines().next().unwrap_or("").trim();
        let first = first.trim_start_matches("error: ");
        // Drop the crate's own "line N column M: " prefix; the caller prints file:line.
        let first = match first.split_once(": ") {
            Some((pre, rest)) if pre.starts_with("line ") && pre.contains(" column ") => rest,
            _ => first,
        };
        let first = first.split_once(" at line ").map_or(first, |(m, _)| m);
        (line, format!("invalid YAML: {first}"))
    })
}
