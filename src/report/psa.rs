//! The Pod Security report: one result per evaluated object (from files or, later, from a
//! live cluster), with upstream's verdict and message and our fixes.

use serde::Serialize;

use super::{
    Case, Cell, Finding, Findings, Location, Outcome, Report, RuleInfo, Severity, Style, Table,
};
use crate::psa::{CheckId, Evaluation, Level, Policy};

pub const API_VERSION: &str = "secmon.dev/v1alpha1";

/// Where an object came from and what it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl Subject {
    /// `Kind/namespace/name` or `Kind/name`.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    fn location(&self) -> String {
        match (&self.path, self.line) {
            (Some(p), Some(l)) => format!("{p}:{l}"),
            (Some(p), None) => p.clone(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PsaViolation {
    pub check: CheckId,
    /// The level whose standard defines the check.
    pub level: Level,
    pub severity: Severity,
    pub reason: String,
    pub detail: String,
    pub fix: String,
}

/// One object evaluated against one policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PsaResult {
    #[serde(flatten)]
    pub subject: Subject,
    /// `level:version` as the API server echoes it.
    pub policy: String,
    /// Where the policy came from: `flag`, `namespace/<name>` or `default`.
    pub policy_source: String,
    pub allowed: bool,
    /// The full upstream text: `would violate PodSecurity "…": …` (empty when allowed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub violations: Vec<PsaViolation>,
    /// The checks the policy ran, in order (for one JUnit case per check).
    #[serde(skip)]
    pub checks: Vec<CheckId>,
}

/// The severity of a failed check: baseline breaks are high, restricted-only are medium.
pub fn severity_of(check: CheckId) -> Severity {
    match check.level() {
        Level::Restricted => Severity::Medium,
        _ => Severity::High,
    }
}

impl PsaResult {
    pub fn new(
        subject: Subject,
        policy: &Policy,
        policy_source: String,
        eval: &Evaluation,
    ) -> PsaResult {
        PsaResult {
            subject,
            policy: policy.label(),
            policy_source,
            allowed: eval.allowed(),
            message: eval.warning(policy),
            violations: eval
                .violations
                .iter()
                .map(|v| PsaViolation {
                    check: v.check,
                    level: v.check.level(),
                    severity: severity_of(v.check),
                    reason: v.reason.to_string(),
                    detail: v.detail.clone(),
                    fix: v.fix.clone(),
                })
                .collect(),
            checks: policy.check_ids(),
        }
    }
}

/// An object that was read but not evaluated, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    #[serde(flatten)]
    pub subject: Subject,
    pub reason: String,
}

/// An input or evaluation problem (the command exits 2).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InputProblem {
    pub location: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PsaSummary {
    pub objects: usize,
    pub allowed: usize,
    pub violating: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// `kubectl secmon psa check` output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PsaReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub summary: PsaSummary,
    pub results: Vec<PsaResult>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<InputProblem>,
    /// Show skipped objects in tables (`-v`).
    #[serde(skip)]
    pub verbose: bool,
}

impl PsaReport {
    pub fn new(
        results: Vec<PsaResult>,
        skipped: Vec<Skipped>,
        errors: Vec<InputProblem>,
        verbose: bool,
    ) -> PsaReport {
        let allowed = results.iter().filter(|r| r.allowed).count();
        PsaReport {
            api_version: API_VERSION,
            kind: "PodSecurityReport",
            summary: PsaSummary {
                objects: results.len(),
                allowed,
                violating: results.len() - allowed,
                skipped: skipped.len(),
                errors: errors.len(),
            },
            results,
            skipped,
            errors,
            verbose,
        }
    }
}

impl Report for PsaReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: if wide {
                vec!["OBJECT", "POLICY", "CHECK", "DETAIL / FIX"]
            } else {
                vec!["OBJECT", "CHECK", "DETAIL / FIX"]
            },
            // Object, policy and check never wrap; the detail takes what is left.
            keep_width: if wide { vec![0, 1, 2] } else { vec![0, 1] },
            ..Default::default()
        };
        for r in &self.results {
            let object = format!("{}\n{}", r.subject.id(), r.subject.location());
            if r.allowed {
                if wide {
                    t.rows.push(vec![
                        Cell::new(object),
                        Cell::new(r.policy.clone()),
                        Cell::styled("(allowed)", Style::Good),
                        Cell::new(""),
                    ]);
                }
                continue;
            }
            for (i, v) in r.violations.iter().enumerate() {
                let check = Cell::styled(
                    v.check.as_str(),
                    if v.severity >= Severity::High {
                        Style::Bad
                    } else {
                        Style::Warn
                    },
                );
                let first = i == 0;
                let mut row = vec![Cell::new(if first {
                    object.clone()
                } else {
                    String::new()
                })];
                if wide {
                    row.push(Cell::new(if first {
                        r.policy.clone()
                    } else {
                        String::new()
                    }));
                }
                row.push(check);
                row.push(Cell::new(format!(
                    "{}: {}\nfix: {}",
                    v.reason, v.detail, v.fix
                )));
                t.rows.push(row);
            }
        }
        let s = &self.summary;
        let mut summary = format!(
            "{} {} checked: {} allowed, {} violating",
            s.objects,
            if s.objects == 1 { "object" } else { "objects" },
            s.allowed,
            s.violating
        );
        if s.skipped > 0 {
            summary.push_str(&format!(
                ", {} skipped{}",
                s.skipped,
                if self.verbose { "" } else { " (-v to list)" }
            ));
        }
        if s.errors > 0 {
            summary.push_str(&format!(", {} input errors", s.errors));
        }
        if !t.rows.is_empty() {
            t.footer.push(String::new());
        }
        t.footer.push(summary);
        let mut tables = vec![t];
        if self.verbose && !self.skipped.is_empty() {
            let mut sk = Table {
                title: Some("Skipped:".into()),
                headers: vec!["LOCATION", "OBJECT", "REASON"],
                ..Default::default()
            };
            for s in &self.skipped {
                sk.rows.push(vec![
                    Cell::new(s.subject.location()),
                    Cell::new(s.subject.id()),
                    Cell::styled(s.reason.clone(), Style::Dim),
                ]);
            }
            tables.push(sk);
        }
        tables
    }

    fn severities(&self) -> Vec<Severity> {
        self.results
            .iter()
            .flat_map(|r| r.violations.iter().map(|v| v.severity))
            .collect()
    }

    fn findings(&self) -> Findings {
        let mut used: Vec<CheckId> = Vec::new();
        let mut results = Vec::new();
        for r in &self.results {
            if r.violations.is_empty() {
                continue;
            }
            let subject = r.subject.id();
            for v in &r.violations {
                if !used.contains(&v.check) {
                    used.push(v.check);
                }
                results.push(Finding {
                    rule_id: v.check.as_str().to_string(),
                    severity: v.severity,
                    message: format!(
                        "{subject} would violate PodSecurity \"{}\": {} ({}). Fix: {}",
                        r.policy, v.reason, v.detail, v.fix
                    ),
                    location: r.subject.path.as_ref().map(|p| Location {
                        path: p.clone(),
                        line: r.subject.line.unwrap_or(1),
                    }),
                    subject: subject.clone(),
                });
            }
        }
        used.sort();
        let rules = used
            .into_iter()
            .map(|c| RuleInfo {
                id: c.as_str().to_string(),
                name: c.as_str().to_string(),
                short: c.title().to_string(),
                full: format!(
                    "Pod Security Standards, {} level: {}. Evaluated exactly as the Kubernetes PodSecurity admission plugin does.",
                    c.level(),
                    c.title()
                ),
                help: format!(
                    "{}. See https://kubernetes.io/docs/concepts/security/pod-security-standards/",
                    c.title()
                ),
                severity: severity_of(c),
                tags: vec![
                    "security".into(),
                    "kubernetes".into(),
                    format!("pod-security-{}", c.level()),
                ],
            })
            .collect();
        Findings { rules, results }
    }

    fn cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        for r in &self.results {
            let subject = r.subject.id();
            let suite = r.subject.path.clone().unwrap_or_else(|| {
                r.subject
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "cluster".into())
            });
            for check in &r.checks {
                let outcome = match r.violations.iter().find(|v| v.check == *check) {
                    None => Outcome::Passed,
                    Some(v) => Outcome::Failed {
                        message: format!("{} ({})", v.reason, v.detail),
                        text: format!("{}\nfix: {}", r.message, v.fix),
                    },
                };
                cases.push(Case {
                    suite: suite.clone(),
                    classname: subject.clone(),
                    name: format!("{} {}", r.policy, check),
                    outcome,
                });
            }
        }
        for e in &self.errors {
            cases.push(Case {
                suite: e.location.split(':').next().unwrap_or("input").to_string(),
                classname: "input".into(),
                name: e.location.clone(),
                outcome: Outcome::Errored {
                    message: e.message.clone(),
                },
            });
        }
        cases
    }
}
