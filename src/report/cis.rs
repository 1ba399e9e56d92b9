//! The CIS benchmark report for one node: every check's state with observed value,
//! expected value and the source that decided it, grouped by section, with totals and
//! a compliance score (pass / (pass + fail)). Also renders kube-bench's JSON shape
//! (`-o kube-bench-json`) so existing parsers keep working.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Case, Cell, Finding, Findings, Outcome, Report, RuleInfo, Severity, Style, Table};
use crate::cis::eval::{CheckResult, SectionResult, State};
use crate::cis::profile::{CheckSeverity, Target};
use crate::cis::scanpod::NodeScan;

pub const API_VERSION: &str = "secmon.dev/v1alpha1";

/// Counts of states and the compliance score.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub info: usize,
    pub error: usize,
    pub not_applicable: usize,
    /// pass / (pass + fail) in percent, one decimal; absent when nothing was judged.
    pub score: Option<f64>,
}

impl Totals {
    fn of<'a>(results: impl Iterator<Item = &'a CheckResult>) -> Totals {
        let mut t = Totals::default();
        for r in results {
            match r.state {
                State::Pass => t.pass += 1,
                State::Fail => t.fail += 1,
                State::Warn => t.warn += 1,
                State::Info => t.info += 1,
                State::Error => t.error += 1,
                State::NotApplicable => t.not_applicable += 1,
            }
        }
        if t.pass + t.fail > 0 {
            let s = t.pass as f64 * 100.0 / (t.pass + t.fail) as f64;
            t.score = Some((s * 10.0).round() / 10.0);
        }
        t
    }

    fn line(&self) -> String {
        let mut s = format!(
            "{} pass, {} fail, {} warn, {} info, {} error, {} not applicable",
            self.pass, self.fail, self.warn, self.info, self.error, self.not_applicable
        );
        match self.score {
            Some(x) => s.push_str(&format!("; compliance {x:.1}%")),
            None => s.push_str("; compliance n/a"),
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SectionReport {
    pub id: String,
    pub title: String,
    pub target: Target,
    pub totals: Totals,
    pub results: Vec<CheckResult>,
}

/// A component found running, and where its settings came from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    pub component: String,
    pub pid: u32,
    /// Config file and drop-ins, lowest precedence first (empty: flags and defaults only).
    pub config: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

/// `kubectl secmon cis run` output.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CisReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub node: String,
    pub root: String,
    pub benchmark: String,
    /// How the benchmark was chosen (`--benchmark`, or the version evidence).
    pub benchmark_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_version: Option<String>,
    /// `native`, or `kube-bench-compat` (shell audits of a kube-bench profile).
    pub mode: &'static str,
    pub components: Vec<ComponentInfo>,
    pub totals: Totals,
    pub sections: Vec<SectionReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CisReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: String,
        root: String,
        benchmark: String,
        benchmark_source: String,
        detected_version: Option<String>,
        mode: &'static str,
        components: Vec<ComponentInfo>,
        sections: Vec<SectionResult>,
        notes: Vec<String>,
    ) -> CisReport {
        let sections: Vec<SectionReport> = sections
            .into_iter()
            .map(|s| SectionReport {
                totals: Totals::of(s.results.iter()),
                id: s.id,
                title: s.title,
                target: s.target,
                results: s.results,
            })
            .collect();
        let totals = Totals::of(sections.iter().flat_map(|s| s.results.iter()));
        CisReport {
            api_version: API_VERSION,
            kind: "CisReport",
            node,
            root,
            benchmark,
            benchmark_source,
            detected_version,
            mode,
            components,
            totals,
            sections,
            notes,
        }
    }

    /// Append sections judged elsewhere (section 5 through the API) and their notes;
    /// totals are recomputed.
    pub fn add_sections(
        &mut self,
        sections: Vec<SectionResult>,
        notes: Vec<String>,
        mode: &'static str,
    ) {
        for s in sections {
            self.sections.retain(|x| x.id != s.id);
            self.sections.push(SectionReport {
                totals: Totals::of(s.results.iter()),
                id: s.id,
                title: s.title,
                target: s.target,
                results: s.results,
            });
        }
        self.totals = Totals::of(self.sections.iter().flat_map(|s| s.results.iter()));
        self.notes.extend(notes);
        self.mode = mode;
    }

    pub fn results(&self) -> impl Iterator<Item = &CheckResult> {
        self.sections.iter().flat_map(|s| s.results.iter())
    }

    /// One check's result by id.
    pub fn result(&self, id: &str) -> Option<&CheckResult> {
        self.results().find(|r| r.id == id)
    }
}

fn severity(s: CheckSeverity) -> Severity {
    match s {
        CheckSeverity::Low => Severity::Low,
        CheckSeverity::Medium => Severity::Medium,
        CheckSeverity::High => Severity::High,
        CheckSeverity::Critical => Severity::Critical,
    }
}

fn style(s: State) -> Style {
    match s {
        State::Pass => Style::Good,
        State::Fail | State::Error => Style::Bad,
        State::Warn => Style::Warn,
        State::Info | State::NotApplicable => Style::Dim,
    }
}

/// The detail column: what was seen and where, or why not.
fn detail(r: &CheckResult, wide: bool) -> String {
    let mut s = match (r.state, &r.observed, &r.reason) {
        (State::Pass | State::Fail, Some(o), _) => match &r.source {
            Some(src) if !src.is_empty() => format!("{o}  ({src})"),
            _ => o.clone(),
        },
        (State::Warn, Some(o), Some(reason)) => format!("{o}: {reason}"),
        (_, _, Some(reason)) => reason.clone(),
        (_, Some(o), None) => o.clone(),
        _ => String::new(),
    };
    if r.state == State::Fail || (wide && r.state == State::Warn) {
        if !r.expected.is_empty() {
            s.push_str(&format!("\nexpected: {}", r.expected));
        }
        s.push_str(&format!("\nfix: {}", r.remediation));
    }
    s
}

impl Report for CisReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut tables = Vec::new();
        let mut head = Table {
            title: Some(if self.mode == "api" {
                format!(
                    "CIS benchmark {} on cluster {} (through the API; {})",
                    self.benchmark, self.root, self.benchmark_source
                )
            } else {
                format!(
                    "CIS benchmark {} on node {} ({}; {})",
                    self.benchmark, self.node, self.mode, self.benchmark_source
                )
            }),
            ..Default::default()
        };
        for c in &self.components {
            let from = match (&c.config_error, c.config.is_empty()) {
                (Some(e), _) => format!("config unreadable: {e}"),
                (None, true) => "no config file (flags, environment, defaults)".to_string(),
                (None, false) => c.config.join(", then "),
            };
            head.footer
                .push(format!("  {} (pid {}): {from}", c.component, c.pid));
        }
        if self.components.is_empty() && self.mode != "api" {
            head.footer
                .push("  no Kubernetes component is running on this node".into());
        }
        head.footer
            .extend(self.notes.iter().map(|n| format!("note: {n}")));
        tables.push(head);
        for s in &self.sections {
            let mut t = Table {
                title: Some(format!("[{}] {} ({})", s.id, s.title, s.target.as_str())),
                headers: vec!["ID", "STATE", "CHECK", "OBSERVED / REASON"],
                keep_width: vec![0, 1],
                ..Default::default()
            };
            for r in &s.results {
                t.rows.push(vec![
                    Cell::new(r.id.clone()),
                    Cell::styled(r.state.as_str(), style(r.state)),
                    Cell::new(if r.automated {
                        r.title.clone()
                    } else {
                        format!("{} (manual)", r.title)
                    }),
                    Cell::new(detail(r, wide)),
                ]);
            }
            t.footer
                .push(format!("section {}: {}", s.id, s.totals.line()));
            tables.push(t);
        }
        tables.push(Table {
            footer: vec![format!("total: {}", self.totals.line())],
            ..Default::default()
        });
        tables
    }

    fn severities(&self) -> Vec<Severity> {
        self.results()
            .filter(|r| r.state == State::Fail)
            .map(|r| severity(r.severity))
            .collect()
    }

    fn findings(&self) -> Findings {
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut results = Vec::new();
        for r in self.results().filter(|r| r.state == State::Fail) {
            let id = format!("CIS-{}", r.id);
            if !rules.iter().any(|x| x.id == id) {
                rules.push(RuleInfo {
                    id: id.clone(),
                    name: id.clone(),
                    short: r.title.clone(),
                    full: format!("{} {}: {}", self.benchmark, r.id, r.title),
                    help: r.remediation.clone(),
                    severity: severity(r.severity),
                    tags: vec!["security".into(), "kubernetes".into(), "cis".into()],
                });
            }
            results.push(Finding {
                rule_id: id,
                severity: severity(r.severity),
                message: format!(
                    "node {}: {} {}: observed {}{}; expected {}. Fix: {}",
                    self.node,
                    r.id,
                    r.title,
                    r.observed.as_deref().unwrap_or("(nothing)"),
                    r.source
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    r.expected,
                    r.remediation
                ),
                location: None,
                subject: format!("node/{}", self.node),
            });
        }
        Findings { rules, results }
    }

    fn cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        for s in &self.sections {
            for r in &s.results {
                let outcome = match r.state {
                    State::Pass => Outcome::Passed,
                    State::Fail => Outcome::Failed {
                        message: format!(
                            "observed {}; expected {}",
                            r.observed.as_deref().unwrap_or("(nothing)"),
                            r.expected
                        ),
                        text: format!(
                            "source: {}\nfix: {}",
                            r.source.as_deref().unwrap_or("-"),
                            r.remediation
                        ),
                    },
                    State::Error => Outcome::Errored {
                        message: r.reason.clone().unwrap_or_default(),
                    },
                    State::Warn | State::Info | State::NotApplicable => Outcome::Skipped {
                        message: format!(
                            "{}: {}",
                            r.state.as_str(),
                            r.reason.clone().unwrap_or_default()
                        ),
                    },
                };
                cases.push(Case {
                    suite: format!("{} {} {}", self.node, s.id, s.title),
                    classname: format!("{} {}", r.group, r.group_title),
                    name: format!("{} {}", r.id, r.title),
                    outcome,
                });
            }
        }
        cases
    }

    fn kube_bench_json(&self) -> Option<Value> {
        Some(kube_bench_json(self))
    }
}

/// kube-bench's status for our state: it has no ERROR or NOT_APPLICABLE, so those become
/// WARN and INFO with the reason kept in `reason`.
fn kb_status(s: State) -> &'static str {
    match s {
        State::Pass => "PASS",
        State::Fail => "FAIL",
        State::Warn | State::Error => "WARN",
        State::Info | State::NotApplicable => "INFO",
    }
}

/// The report in kube-bench's `--json` shape: same keys, same order, same odd
/// capitalisation (`AuditEnv`, `AuditConfig`, `IsMultiple`).
pub fn kube_bench_json(r: &CisReport) -> Value {
    let count =
        |rs: &[&CheckResult], st: &str| rs.iter().filter(|c| kb_status(c.state) == st).count();
    let mut controls = Vec::new();
    let (mut tp, mut tf, mut tw, mut ti) = (0, 0, 0, 0);
    for s in &r.sections {
        let mut groups: Vec<(String, String, Vec<&CheckResult>)> = Vec::new();
        for c in &s.results {
            match groups.iter_mut().find(|(id, _, _)| *id == c.group) {
                Some((_, _, list)) => list.push(c),
                None => groups.push((c.group.clone(), c.group_title.clone(), vec![c])),
            }
        }
        let all: Vec<&CheckResult> = s.results.iter().collect();
        let (p, f, w, i) = (
            count(&all, "PASS"),
            count(&all, "FAIL"),
            count(&all, "WARN"),
            count(&all, "INFO"),
        );
        tp += p;
        tf += f;
        tw += w;
        ti += i;
        let tests: Vec<Value> = groups
            .iter()
            .map(|(id, title, list)| {
                let results: Vec<Value> = list
                    .iter()
                    .map(|c| {
                        let audit = c
                            .evidence
                            .iter()
                            .map(|e| format!("{}: {}", e.what, e.source))
                            .collect::<Vec<_>>()
                            .join("; ");
                        let config = c
                            .evidence
                            .iter()
                            .filter(|e| e.source.starts_with("config file") || e.source.starts_with("drop-in"))
                            .map(|e| e.source.clone())
                            .next()
                            .unwrap_or_default();
                        let mut v = json!({
                            "test_number": c.id,
                            "test_desc": c.title,
                            "audit": audit,
                            "AuditEnv": "",
                            "AuditConfig": config,
                            "type": if c.state == State::Warn && c.evidence.is_empty() { "manual" } else if c.state == State::Info && c.reason.as_deref() == Some("skipped with --skip") { "skip" } else { "" },
                            "remediation": c.remediation,
                            "test_info": [c.remediation],
                            "status": kb_status(c.state),
                            "actual_value": c.observed.clone().unwrap_or_default(),
                            "scored": c.automated,
                            "IsMultiple": c.evidence.len() > 1,
                            "expected_result": c.expected,
                        });
                        let reason = match c.state {
                            State::Error => c.reason.clone().map(|x| format!("could not evaluate: {x}")),
                            State::NotApplicable => c.reason.clone().map(|x| format!("not applicable: {x}")),
                            _ => c.reason.clone(),
                        };
                        if let (Some(reason), Some(obj)) = (reason, v.as_object_mut()) {
                            obj.insert("reason".into(), Value::String(reason));
                        }
                        v
                    })
                    .collect();
                json!({
                    "section": id,
                    "type": "",
                    "pass": count(list, "PASS"),
                    "fail": count(list, "FAIL"),
                    "warn": count(list, "WARN"),
                    "info": count(list, "INFO"),
                    "desc": title,
                    "results": results,
                })
            })
            .collect();
        let mut ctl = json!({
            "id": s.id,
            "version": r.benchmark,
        });
        if let (Some(v), Some(obj)) = (&r.detected_version, ctl.as_object_mut()) {
            obj.insert("detected_version".into(), Value::String(v.clone()));
        }
        if let Some(obj) = ctl.as_object_mut() {
            obj.insert("text".into(), Value::String(s.title.clone()));
            obj.insert("node_type".into(), Value::String(s.target.as_str().into()));
            obj.insert(
                "tests".into(),
                if tests.is_empty() {
                    Value::Null
                } else {
                    Value::Array(tests)
                },
            );
            obj.insert("total_pass".into(), p.into());
            obj.insert("total_fail".into(), f.into());
            obj.insert("total_warn".into(), w.into());
            obj.insert("total_info".into(), i.into());
        }
        controls.push(ctl);
    }
    json!({
        "Controls": controls,
        "Totals": {"total_pass": tp, "total_fail": tf, "total_warn": tw, "total_info": ti},
    })
}

/// `cis run --nodes`: each node's report as its scan pod printed it, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CisNodesReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub benchmark: String,
    pub nodes: Vec<NodeScan>,
}

impl CisNodesReport {
    pub fn new(benchmark: String, nodes: Vec<NodeScan>) -> CisNodesReport {
        CisNodesReport {
            api_version: API_VERSION,
            kind: "CisNodesReport",
            benchmark,
            nodes,
        }
    }

    /// Every (node, result) pair of the nodes that reported.
    fn results(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.nodes.iter().flat_map(|n| {
            n.report
                .iter()
                .flat_map(|r| r["sections"].as_array().into_iter().flatten())
                .flat_map(|s| s["results"].as_array().into_iter().flatten())
                .map(move |r| (n.node.as_str(), r))
        })
    }
}

fn severity_of(v: &Value) -> Severity {
    match v["severity"].as_str() {
        Some("low") => Severity::Low,
        Some("high") => Severity::High,
        Some("critical") => Severity::Critical,
        _ => Severity::Medium,
    }
}

impl Report for CisNodesReport {
    fn tables(&self, _wide: bool) -> Vec<Table> {
        let mut summary = Table {
            title: Some(format!(
                "CIS benchmark {} per node (scan pods)",
                self.benchmark
            )),
            headers: vec!["NODE", "RESULT", "PASS", "FAIL", "WARN", "ERROR", "DETAIL"],
            keep_width: vec![0, 1],
            ..Default::default()
        };
        let mut detail = Table {
            title: Some("Failed checks".into()),
            headers: vec!["NODE", "ID", "CHECK", "OBSERVED"],
            keep_width: vec![0, 1],
            ..Default::default()
        };
        for n in &self.nodes {
            let t = |k: &str| {
                n.report
                    .as_ref()
                    .and_then(|r| r["totals"][k].as_u64())
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let (state, style) = match &n.error {
                Some(_) => ("ERROR", Style::Bad),
                None => ("OK", Style::Good),
            };
            summary.rows.push(vec![
                Cell::new(n.node.clone()),
                Cell::styled(state, style),
                Cell::new(t("pass")),
                Cell::new(t("fail")),
                Cell::new(t("warn")),
                Cell::new(t("error")),
                Cell::new(n.error.clone().unwrap_or_default()),
            ]);
        }
        for (node, r) in self.results().filter(|(_, r)| r["state"] == "FAIL") {
            detail.rows.push(vec![
                Cell::new(node.to_string()),
                Cell::new(r["id"].as_str().unwrap_or("").to_string()),
                Cell::new(r["title"].as_str().unwrap_or("").to_string()),
                Cell::new(r["observed"].as_str().unwrap_or("").to_string()),
            ]);
        }
        let mut out = vec![summary];
        if !detail.rows.is_empty() {
            out.push(detail);
        }
        out
    }

    fn severities(&self) -> Vec<Severity> {
        self.results()
            .filter(|(_, r)| r["state"] == "FAIL")
            .map(|(_, r)| severity_of(r))
            .collect()
    }

    fn findings(&self) -> Findings {
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut results = Vec::new();
        for (node, r) in self.results().filter(|(_, r)| r["state"] == "FAIL") {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let id = format!("CIS-{}", s("id"));
            if !rules.iter().any(|x| x.id == id) {
                rules.push(RuleInfo {
                    id: id.clone(),
                    name: id.clone(),
                    short: s("title"),
                    full: format!("{} {}: {}", self.benchmark, s("id"), s("title")),
                    help: s("remediation"),
                    severity: severity_of(r),
                    tags: vec!["security".into(), "kubernetes".into(), "cis".into()],
                });
            }
            results.push(Finding {
                rule_id: id,
                severity: severity_of(r),
                message: format!(
                    "node {node}: {} {}: observed {}; expected {}. Fix: {}",
                    s("id"),
                    s("title"),
                    s("observed"),
                    s("expected"),
                    s("remediation")
                ),
                location: None,
                subject: format!("node/{node}"),
            });
        }
        Findings { rules, results }
    }
}
