//! Recorded fire / near-miss cases for detection rules (JSON lines under
//! tests/fixtures/rules/), and the one check both rules test suites run over them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use secmon::rules::{Event, Matches, Ruleset};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Case {
    pub rule: String,
    pub expect: String,
    pub note: String,
    pub event: Event,
}

/// Parse a cases file: one JSON case per line, `#` comments and blank lines skipped.
pub fn parse(text: &str, file: &str) -> Vec<Case> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{file} line {}: {e}", i + 1))
        })
        .collect()
}

/// Every `fire` case fires its rule and every `miss` case does not; every rule of the
/// ruleset has at least one of each. With `render`, firing cases also render an output
/// with fields.
pub fn check(rs: &Ruleset, cases: &[Case], render: bool) {
    let mut out = Matches::new();
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in cases {
        let id = rs
            .find(&c.rule)
            .unwrap_or_else(|| panic!("case names unknown rule {:?}", c.rule));
        rs.matches(&c.event, &mut out);
        let fired = out.ids().contains(&id);
        let entry = seen.entry(c.rule.clone()).or_default();
        match c.expect.as_str() {
            "fire" => {
                entry.0 += 1;
                if !fired {
                    failures.push(format!("{}: should fire ({})", c.rule, c.note));
                }
                if render {
                    let r = rs
                        .render_output(id, &c.event)
                        .unwrap_or_else(|| panic!("{}: no output", c.rule));
                    assert!(!r.text.is_empty());
                    assert!(!r.output_fields.is_empty(), "{}: no output fields", c.rule);
                }
            }
            "miss" => {
                entry.1 += 1;
                if fired {
                    failures.push(format!("{}: should not fire ({})", c.rule, c.note));
                }
            }
            other => panic!("bad expect {other:?}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    for r in rs.rules() {
        let (f, m) = seen.get(&r.name).copied().unwrap_or_default();
        assert!(
            f >= 1 && m >= 1,
            "{}: {f} firing and {m} near-miss cases; need at least one of each",
            r.name
        );
    }
}
