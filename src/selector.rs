//! Kubernetes label selectors (`-l`), parsed once and matched against label maps:
//! `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-joined.
//! The same syntax the API server takes, so live listings can pass the string through
//! and offline inputs are filtered identically.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    source: String,
}

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    pub selector: String,
    pub reason: String,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        let err = |reason: &str| SelectorError {
            selector: s.to_string(),
            reason: reason.to_string(),
        };
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Selector::default());
        }
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                return Err(err("empty requirement"));
            }
            let set_op = [(" notin ", false), (" in ", true)]
                .into_iter()
                .find_map(|(op, is_in)| part.split_once(op).map(|(k, v)| (k, v, is_in)));
            let req = if let Some((k, values, is_in)) = set_op {
                let k = k.trim();
                let values = values.trim();
                let inner = values
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| err("set values must be in parentheses: key in (a,b)"))?;
                let list: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
                if list.iter().any(|v| !valid_value(v)) {
                    return Err(err("invalid value in set"));
                }
                if is_in {
                    Requirement::In(k.to_string(), list)
                } else {
                    Requirement::NotIn(k.to_string(), list)
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_string())
            } else {
                Requirement::Exists(part.to_string())
            };
            let (key, value) = match &req {
                Requirement::Eq(k, v) | Requirement::NotEq(k, v) => (k, Some(v)),
                Requirement::Exists(k)
                | Requirement::NotExists(k)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _) => (k, None),
            };
            if !valid_key(key) {
                return Err(err(&format!("invalid label key {key:?}")));
            }
            if value.is_some_and(|v| !valid_value(v)) {
                return Err(err(&format!(
                    "invalid label value {:?}",
                    value.unwrap_or(&String::new())
                )));
            }
            requirements.push(req);
        }
        Ok(Selector {
            requirements,
            source: s.to_string(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v),
            Requirement::NotEq(k, v) => get(k) != Some(v),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_like_the_api_server() {
        let l = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("app.kubernetes.io/name", "x"),
        ]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=back", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("missing notin (a)", true),
            ("app.kubernetes.io/name=x,tier in (front)", true),
        ] {
            assert_eq!(
                Selector::parse(sel).unwrap().matches(Some(&l)),
                want,
                "{sel}"
            );
        }
        assert!(!Selector::parse("app").unwrap().matches(None));
    }

    #[test]
    fn bad_selectors_are_refused() {
        for bad in ["app=", "=x", "a in b", "a,,b", "a=b c", "a in (x y)"] {
            let r = Selector::parse(bad);
            if bad == "app=" {
                // An empty value is valid: it matches an empty label.
                assert!(r.is_ok());
                continue;
            }
            assert!(r.is_err(), "{bad}");
        }
    }
}
