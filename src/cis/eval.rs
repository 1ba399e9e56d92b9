//! Pure evaluation: a benchmark and a node's facts in, one result per check out. No
//! files, no processes, no clock. The comparison operators are kube-bench's, shared
//! with the compatibility mode ([`compare`]).

use serde::Serialize;
use serde_json::Value;

use super::facts::{ComponentFacts, ConfigFacts, FileSet, NodeFacts};
use super::profile::{
    Benchmark, BinOp, Check, CheckSeverity, Component, FileProperty, Item, Missing, Op, Target,
};

/// The state of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Pass,
    Fail,
    /// A person has to look (manual check, or an unscored check that did not pass).
    Warn,
    /// Skipped on request.
    Info,
    /// Could not be evaluated; `reason` says why.
    Error,
    /// The component or file the check is about is not on this node.
    NotApplicable,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pass => "PASS",
            State::Fail => "FAIL",
            State::Warn => "WARN",
            State::Info => "INFO",
            State::Error => "ERROR",
            State::NotApplicable => "NOT_APPLICABLE",
        }
    }
}

/// What one item looked at and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The flag, key, variable or file.
    pub what: String,
    pub observed: String,
    pub expected: String,
    /// Which source decided: `flag --x`, `config file /p (key a.b)`, `default`, a path.
    pub source: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Error,
    NotApplicable,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub group: String,
    pub group_title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
    pub automated: bool,
    pub state: State,
    pub severity: CheckSeverity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    pub expected: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    pub remediation: String,
}

/// The results of one section (target).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionResult {
    pub id: String,
    pub title: String,
    pub target: Target,
    pub results: Vec<CheckResult>,
}

/// Which checks to run: `--targets`, `--check`, `--skip`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Empty: every target.
    pub targets: Vec<Target>,
    /// Empty: every check. Patterns: `1.2.1`, `4.2.*`, or a group id `1.2`.
    pub checks: Vec<String>,
    pub skip: Vec<String>,
}

fn matches(pattern: &str, id: &str, group: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => id.starts_with(&format!("{prefix}.")) || id == prefix,
        None => pattern == id || pattern == group,
    }
}

impl Selection {
    pub fn wants_target(&self, t: Target) -> bool {
        self.targets.is_empty() || self.targets.contains(&t)
    }
    pub fn wants(&self, id: &str, group: &str) -> bool {
        self.checks.is_empty() || self.checks.iter().any(|p| matches(p, id, group))
    }
    pub fn skips(&self, id: &str, group: &str) -> bool {
        self.skip.iter().any(|p| matches(p, id, group))
    }
}

/// Evaluate every selected check of `benchmark` on `facts`.
pub fn evaluate(benchmark: &Benchmark, facts: &NodeFacts, sel: &Selection) -> Vec<SectionResult> {
    let mut out = Vec::new();
    for s in &benchmark.sections {
        if !sel.wants_target(s.target) {
            continue;
        }
        let mut results = Vec::new();
        for g in &s.groups {
            for c in &g.checks {
                if !sel.wants(&c.id, &g.id) {
                    continue;
                }
                let mut r = evaluate_check(c, facts, sel.skips(&c.id, &g.id));
                r.group = g.id.clone();
                r.group_title = g.title.clone();
                results.push(r);
            }
        }
        if results.is_empty() && !sel.checks.is_empty() {
            continue;
        }
        out.push(SectionResult {
            id: s.id.clone(),
            title: s.title.clone(),
            target: s.target,
            results,
        });
    }
    out
}

/// How items combine into a check.
#[derive(Debug, Clone)]
struct Outcome {
    verdict: Verdict,
    evidence: Vec<Evidence>,
}

/// Evaluate one check (group fields are left for the caller to fill).
pub fn evaluate_check(c: &Check, facts: &NodeFacts, skipped: bool) -> CheckResult {
    let mut r = CheckResult {
        id: c.id.clone(),
        title: c.title.clone(),
        group: String::new(),
        group_title: String::new(),
        component: c.component,
        automated: c.automated,
        state: State::Info,
        severity: c.severity,
        observed: None,
        expected: String::new(),
        source: None,
        reason: None,
        evidence: Vec::new(),
        remediation: c.remediation.trim().to_string(),
    };
    if skipped {
        r.reason = Some("skipped with --skip".into());
        return r;
    }
    let component = match c.component {
        Some(comp) => match facts.components.get(&comp) {
            Some(cf) => Some(cf),
            None => {
                r.state = State::NotApplicable;
                r.reason = Some(format!(
                    "{} is not running on this node",
                    comp.process_name()
                ));
                return r;
            }
        },
        None => None,
    };
    if c.api.is_some() {
        r.state = State::Warn;
        r.reason = Some(
            "judged through the Kubernetes API, which a node scan does not read: run `kubectl secmon cis run --targets policies`".into(),
        );
        return r;
    }
    if c.manual {
        r.state = State::Warn;
        r.reason = Some(
            c.note
                .clone()
                .unwrap_or_else(|| "manual check: review it by hand".into()),
        );
        return r;
    }
    let items: Vec<Outcome> = c
        .items
        .iter()
        .map(|i| evaluate_item(i, c, component, facts))
        .collect();
    let verdict = combine(c.bin_op, items.iter().map(|o| o.verdict));
    r.expected = items
        .iter()
        .flat_map(|o| o.evidence.first().map(|e| e.expected.clone()))
        .collect::<Vec<_>>()
        .join(match c.bin_op {
            BinOp::And => " AND ",
            BinOp::Or => " OR ",
        });
    // The item that decided: for `or` the first that passed, else the first that did not.
    let decisive = items
        .iter()
        .find(|o| match (c.bin_op, verdict) {
            (BinOp::Or, Verdict::Pass) => o.verdict == Verdict::Pass,
            (_, Verdict::Pass) => true,
            (_, v) => o.verdict == v,
        })
        .or(items.first());
    if let Some(d) = decisive {
        let bad = d
            .evidence
            .iter()
            .find(|e| e.verdict == verdict)
            .or(d.evidence.first());
        if let Some(e) = bad {
            r.observed = Some(e.observed.clone());
            r.source = Some(e.source.clone());
        }
        if d.evidence.len() > 1 {
            // A file set: list each file that did not pass.
            let off: Vec<String> = d
                .evidence
                .iter()
                .filter(|e| e.verdict != Verdict::Pass)
                .map(|e| format!("{}: {}", e.what, e.observed))
                .collect();
            if !off.is_empty() {
                r.observed = Some(off.join("; "));
            }
        }
    }
    r.evidence = items.into_iter().flat_map(|o| o.evidence).collect();
    r.state = match verdict {
        Verdict::Pass => State::Pass,
        Verdict::Fail if c.automated => State::Fail,
        Verdict::Fail => State::Warn,
        Verdict::Error => State::Error,
        Verdict::NotApplicable => State::NotApplicable,
    };
    match r.state {
        State::Error => {
            r.reason = r
                .evidence
                .iter()
                .find(|e| e.verdict == Verdict::Error)
                .map(|e| e.observed.clone());
        }
        State::NotApplicable => {
            r.reason = r
                .evidence
                .iter()
                .find(|e| e.verdict == Verdict::NotApplicable)
                .map(|e| e.observed.clone());
        }
        State::Warn => {
            r.reason = Some("not met; the benchmark leaves this check to judgement (Manual)".into())
        }
        _ => {}
    }
    r
}

fn combine(op: BinOp, verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let v: Vec<Verdict> = verdicts.collect();
    let any = |x: Verdict| v.contains(&x);
    if v.is_empty() {
        return Verdict::Error;
    }
    if v.iter().all(|x| *x == Verdict::NotApplicable) {
        return Verdict::NotApplicable;
    }
    match op {
        BinOp::And if any(Verdict::Fail) => Verdict::Fail,
        BinOp::And if any(Verdict::Error) => Verdict::Error,
        BinOp::And => Verdict::Pass,
        BinOp::Or if any(Verdict::Pass) => Verdict::Pass,
        BinOp::Or if any(Verdict::Error) => Verdict::Error,
        BinOp::Or => Verdict::Fail,
    }
}

/// A setting's value and where it came from.
enum Found {
    Explicit { value: String, source: String },
    Default { value: String, source: String },
    NotSet,
    Error(String),
}

fn item_name(i: &Item) -> String {
    match (&i.flag, &i.flag_key, &i.config, &i.env) {
        (Some(f), Some(k), _, _) => format!("{f} {k}"),
        (Some(f), None, _, _) => f.clone(),
        (None, _, Some(c), _) => c.clone(),
        (None, _, None, Some(e)) => e.clone(),
        _ => "?".into(),
    }
}

fn lookup(i: &Item, cf: &ComponentFacts) -> Found {
    if let Some(flag) = &i.flag {
        let v = match &i.flag_key {
            Some(k) => cf.args.get_key(flag, k),
            None => cf.args.get(flag),
        };
        if let Some(value) = v {
            return Found::Explicit {
                value,
                source: format!("flag {flag}"),
            };
        }
    }
    if let Some(key) = &i.config {
        match &cf.config {
            ConfigFacts::Layers { layers } => {
                for l in layers.iter().rev() {
                    if let Some(value) = config_value(&l.value, key) {
                        return Found::Explicit {
                            value,
                            source: format!("{} (key {key})", l.source),
                        };
                    }
                }
            }
            ConfigFacts::Error { message } => return Found::Error(message.clone()),
            ConfigFacts::None => {}
        }
    }
    if let Some(var) = &i.env {
        match &cf.env {
            Ok(env) => {
                if let Some(value) = env.get(var) {
                    return Found::Explicit {
                        value: value.clone(),
                        source: format!("environment {var}"),
                    };
                }
            }
            Err(e) => return Found::Error(format!("process environment unreadable: {e}")),
        }
    }
    let no_config = matches!(cf.config, ConfigFacts::None);
    match (&i.default_without_config, &i.default) {
        (Some(v), _) if no_config => Found::Default {
            value: v.clone(),
            source: "Kubernetes default (no config file in use)".into(),
        },
        (_, Some(v)) => Found::Default {
            value: v.clone(),
            source: "Kubernetes default (set nowhere)".into(),
        },
        _ => Found::NotSet,
    }
}

/// A dotted key's value in a config document, as text (lists joined with `,`).
pub fn config_value(doc: &Value, key: &str) -> Option<String> {
    let mut v = doc;
    for part in key.split('.') {
        v = v.as_object()?.get(part)?;
    }
    // Config APIs omit empty values: an empty string means "use the default".
    value_text(v).filter(|s| !s.is_empty())
}

pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(value_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Object(_) => Some(v.to_string()),
    }
}

fn evaluate_item(
    i: &Item,
    c: &Check,
    component: Option<&ComponentFacts>,
    facts: &NodeFacts,
) -> Outcome {
    if let Some(f) = &i.file {
        return evaluate_files(i, c, &f.key(), &f.to_string(), facts);
    }
    let name = item_name(i);
    let one = |verdict, observed: String, expected: String, source: String| Outcome {
        verdict,
        evidence: vec![Evidence {
            what: name.clone(),
            observed,
            expected,
            source,
            verdict,
        }],
    };
    let Some(cf) = component else {
        return one(
            Verdict::Error,
            "the check names no component to read settings from".into(),
            String::new(),
            String::new(),
        );
    };
    let expected = expected_text(&name, i);
    match lookup(i, cf) {
        Found::Error(m) => one(Verdict::Error, m, expected, String::new()),
        Found::NotSet if !i.set => one(Verdict::Pass, "(not set)".into(), expected, String::new()),
        Found::NotSet => one(
            Verdict::Fail,
            "(not set)".into(),
            expected,
            "set nowhere, and no documented default".into(),
        ),
        Found::Explicit { value, source } if !i.set => one(Verdict::Fail, value, expected, source),
        Found::Default { value, source } if !i.set => one(
            Verdict::Pass,
            format!("(not set; default {value})"),
            expected,
            source,
        ),
        Found::Explicit { value, source } | Found::Default { value, source } => {
            let verdict = match &i.compare {
                None => Verdict::Pass,
                Some(cmp) if compare(cmp.op, &value, &cmp.value) => Verdict::Pass,
                Some(_) => Verdict::Fail,
            };
            one(verdict, value, expected, source)
        }
    }
}

fn evaluate_files(i: &Item, c: &Check, key: &str, what: &str, facts: &NodeFacts) -> Outcome {
    let single = |verdict, observed: String, expected: String| Outcome {
        verdict,
        evidence: vec![Evidence {
            what: what.to_string(),
            observed,
            expected,
            source: String::new(),
            verdict,
        }],
    };
    let prop = i.property.unwrap_or(FileProperty::Mode);
    let expected = match (&i.compare, prop) {
        (Some(cmp), FileProperty::Mode) if cmp.op == Op::Bitmask => {
            format!("permissions {} or more restrictive", cmp.value)
        }
        (Some(cmp), p) => format!(
            "{} {}",
            match p {
                FileProperty::Mode => "permissions",
                FileProperty::Owner => "owner",
            },
            op_phrase(cmp.op, &cmp.value)
        ),
        (None, _) => "the file exists".into(),
    };
    match facts.files.get(key) {
        None => single(
            Verdict::Error,
            format!("no facts were collected for {what}"),
            expected,
        ),
        Some(FileSet::NoComponent) => single(
            Verdict::NotApplicable,
            format!("{what}: its component is not on this node"),
            expected,
        ),
        Some(FileSet::Error { message }) => single(Verdict::Error, message.clone(), expected),
        Some(FileSet::Missing { looked_at }) => {
            let observed = if looked_at.is_empty() {
                format!("no {what} on this node")
            } else {
                format!("no file at {}", looked_at.join(", "))
            };
            let verdict = match c.missing {
                Missing::NotApplicable => Verdict::NotApplicable,
                Missing::Pass => Verdict::Pass,
                Missing::Fail => Verdict::Fail,
            };
            single(verdict, observed, expected)
        }
        Some(FileSet::Found { files }) => {
            let evidence: Vec<Evidence> = files
                .iter()
                .map(|f| {
                    let (verdict, observed) = match &f.stat {
                        Err(e) => (Verdict::Error, e.clone()),
                        Ok(st) => {
                            let v = match prop {
                                FileProperty::Mode => st.mode_octal(),
                                FileProperty::Owner => st.owner(),
                            };
                            let ok = match &i.compare {
                                None => i.set,
                                Some(cmp) => compare(cmp.op, &v, &cmp.value),
                            };
                            (if ok { Verdict::Pass } else { Verdict::Fail }, v)
                        }
                    };
                    Evidence {
                        what: f.path.clone(),
                        observed,
                        expected: expected.clone(),
                        source: f.how.clone(),
                        verdict,
                    }
                })
                .collect();
            let verdict = combine(BinOp::And, evidence.iter().map(|e| e.verdict));
            Outcome { verdict, evidence }
        }
    }
}

fn expected_text(name: &str, i: &Item) -> String {
    match (&i.compare, i.set) {
        (_, false) => format!("'{name}' is not set"),
        (None, true) => format!("'{name}' is set"),
        (Some(c), true) => format!("'{name}' {}", op_phrase(c.op, &c.value)),
    }
}

/// The phrase for an operator, e.g. `is equal to 'false'`.
pub fn op_phrase(op: Op, v: &str) -> String {
    match op {
        Op::Eq => format!("is equal to '{v}'"),
        Op::Noteq => format!("is not equal to '{v}'"),
        Op::Gt => format!("is greater than {v}"),
        Op::Gte => format!("is greater or equal to {v}"),
        Op::Lt => format!("is lower than {v}"),
        Op::Lte => format!("is lower or equal to {v}"),
        Op::Has => format!("has '{v}'"),
        Op::Nothave => format!("does not have '{v}'"),
        Op::Regex => format!("matches the regular expression '{v}'"),
        Op::ValidElements => format!("contains only elements of '{v}'"),
        Op::Bitmask => format!("is {v} or more restrictive"),
    }
}

/// kube-bench's comparison of an observed value with an expected one.
pub fn compare(op: Op, actual: &str, expected: &str) -> bool {
    let lower = actual.to_ascii_lowercase();
    let actual_b = if lower == "true" || lower == "false" {
        lower.as_str()
    } else {
        actual
    };
    match op {
        Op::Eq => actual_b == expected,
        Op::Noteq => actual_b != expected,
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Ok(a), Ok(e)) = (actual.trim().parse::<i64>(), expected.trim().parse::<i64>())
            else {
                return false;
            };
            match op {
                Op::Gt => a > e,
                Op::Gte => a >= e,
                Op::Lt => a < e,
                _ => a <= e,
            }
        }
        Op::Has => actual.contains(expected),
        Op::Nothave => !actual.contains(expected),
        Op::Regex => regex::Regex::new(expected).is_ok_and(|r| r.is_match(actual)),
        Op::ValidElements => {
            let split = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            };
            let (a, e) = (split(actual), split(expected));
            match (a.is_empty(), e.is_empty()) {
                (true, true) => true,
                (true, false) | (false, true) => false,
                _ => a.iter().all(|x| e.contains(x)),
            }
        }
        Op::Bitmask => {
            let (Ok(a), Ok(e)) = (
                u32::from_str_radix(actual.trim(), 8),
                u32::from_str_radix(expected.trim(), 8),
            ) else {
                return false;
            };
            a & e == a
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_follow_kube_bench() {
        assert!(compare(Op::Eq, "False", "false"));
        assert!(!compare(Op::Eq, "0", "false"));
        assert!(compare(Op::Noteq, "true", "false"));
        assert!(compare(Op::Gte, "30", "30"));
        assert!(!compare(Op::Gte, "thirty", "30"));
        assert!(compare(Op::Lt, "-1", "0"));
        assert!(compare(Op::Has, "Node,RBAC", "RBAC"));
        assert!(compare(Op::Nothave, "Node,RBAC", "AlwaysAllow"));
        assert!(compare(Op::Regex, "abc", "^a.c$"));
        assert!(!compare(Op::Regex, "abc", "("));
        assert!(compare(Op::ValidElements, "A, B", "A,B,C"));
        assert!(!compare(Op::ValidElements, "A,D", "A,B,C"));
        assert!(compare(Op::ValidElements, "", ""));
        assert!(!compare(Op::ValidElements, "", "A"));
        assert!(compare(Op::Bitmask, "600", "600"));
        assert!(compare(Op::Bitmask, "400", "600"));
        assert!(!compare(Op::Bitmask, "644", "600"));
        assert!(!compare(Op::Bitmask, "6x4", "600"));
    }

    #[test]
    fn config_values_as_text() {
        let doc: Value = serde_json::json!({"a": {"b": false, "n": 5, "l": ["x", "y"]}});
        assert_eq!(config_value(&doc, "a.b").as_deref(), Some("false"));
        assert_eq!(config_value(&doc, "a.n").as_deref(), Some("5"));
        assert_eq!(config_value(&doc, "a.l").as_deref(), Some("x,y"));
        assert_eq!(config_value(&doc, "a.z"), None);
        assert_eq!(config_value(&doc, "a.b.c"), None);
    }

    use crate::cis::argv::Args;
    use crate::cis::facts::{ComponentFacts, ConfigLayer};
    use crate::cis::profile::{Compare, Component};

    fn item(flag: &str, config: &str, env: &str, value: &str, default: Option<&str>) -> Item {
        Item {
            flag: Some(flag.into()).filter(|s: &String| !s.is_empty()),
            flag_key: None,
            config: Some(config.into()).filter(|s: &String| !s.is_empty()),
            env: Some(env.into()).filter(|s: &String| !s.is_empty()),
            file: None,
            property: None,
            set: true,
            compare: Some(Compare {
                op: Op::Eq,
                value: value.into(),
            }),
            default: default.map(str::to_string),
            default_without_config: None,
        }
    }

    fn check(i: Item) -> Check {
        Check {
            id: "9.9.9".into(),
            title: "t".into(),
            automated: true,
            manual: false,
            component: Some(Component::Kubelet),
            bin_op: BinOp::And,
            items: vec![i],
            missing: Missing::NotApplicable,
            severity: CheckSeverity::Medium,
            remediation: "r".into(),
            note: None,
            api: None,
        }
    }

    /// Facts in, results out: flag beats the last drop-in, which beats the config file,
    /// which beats the environment, which beats the documented default.
    #[test]
    fn precedence_is_flag_drop_in_config_env_default() {
        let facts = |argv: &[&str], layers: Vec<(&str, Value)>, env: &[(&str, &str)]| {
            let mut f = NodeFacts::default();
            f.components.insert(
                Component::Kubelet,
                ComponentFacts {
                    pid: 1,
                    argv: argv.iter().map(|s| s.to_string()).collect(),
                    args: Args::parse(argv),
                    env: Ok(env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()),
                    paths: Default::default(),
                    config: if layers.is_empty() {
                        ConfigFacts::None
                    } else {
                        ConfigFacts::Layers {
                            layers: layers
                                .into_iter()
                                .map(|(s, v)| ConfigLayer {
                                    source: s.into(),
                                    value: v,
                                })
                                .collect(),
                        }
                    },
                },
            );
            f
        };
        let c = check(item("--x", "x", "X", "1", Some("0")));
        let layers = || {
            vec![
                ("config file /c", serde_json::json!({"x": 3})),
                ("drop-in /d/10.conf", serde_json::json!({"x": 2})),
                ("drop-in /d/20.conf", serde_json::json!({"y": 9})),
            ]
        };
        let r = evaluate_check(&c, &facts(&["--x=1"], layers(), &[("X", "4")]), false);
        assert_eq!(
            (r.state, r.source.as_deref()),
            (State::Pass, Some("flag --x"))
        );
        let r = evaluate_check(&c, &facts(&[], layers(), &[("X", "4")]), false);
        assert_eq!(r.state, State::Fail);
        assert_eq!(r.observed.as_deref(), Some("2"));
        assert_eq!(r.source.as_deref(), Some("drop-in /d/10.conf (key x)"));
        let r = evaluate_check(&c, &facts(&[], vec![], &[("X", "4")]), false);
        assert_eq!(r.source.as_deref(), Some("environment X"));
        let r = evaluate_check(&c, &facts(&[], vec![], &[]), false);
        assert_eq!(r.observed.as_deref(), Some("0"));
        assert_eq!(
            r.source.as_deref(),
            Some("Kubernetes default (set nowhere)")
        );
        // No such component: not applicable, whatever the items say.
        let r = evaluate_check(&c, &NodeFacts::default(), false);
        assert_eq!(r.state, State::NotApplicable);
        // A config file that could not be read makes a config-backed item ERROR...
        let mut f = facts(&[], vec![], &[]);
        if let Some(k) = f.components.get_mut(&Component::Kubelet) {
            k.config = ConfigFacts::Error {
                message: "/c: invalid YAML".into(),
            };
        }
        let r = evaluate_check(&c, &f, false);
        assert_eq!(
            (r.state, r.reason.as_deref()),
            (State::Error, Some("/c: invalid YAML"))
        );
        // ...unless a flag decides first.
        if let Some(k) = f.components.get_mut(&Component::Kubelet) {
            k.args = Args::parse(&["--x=1"]);
        }
        assert_eq!(evaluate_check(&c, &f, false).state, State::Pass);
        // Skipped checks are INFO without evaluation.
        assert_eq!(evaluate_check(&c, &f, true).state, State::Info);
    }

    #[test]
    fn selection_patterns() {
        assert!(matches("4.2.*", "4.2.10", "4.2"));
        assert!(!matches("4.2.*", "4.20.1", "4.20"));
        assert!(matches("1.2", "1.2.7", "1.2"));
        assert!(matches("1.2.1", "1.2.1", "1.2"));
        assert!(!matches("1.2.1", "1.2.10", "1.2"));
    }
}
