//! The Pod Security plan of a live cluster: per namespace, its current labels, the
//! strictest level every workload in it satisfies today, what breaks at the next level and
//! how to fix it, and the `kubectl label` command that tightens it.

use serde::Serialize;

use super::psa::Subject;
use super::{Cell, Finding, Findings, Report, RuleInfo, Severity, Style, Table};
use crate::psa::Level;

/// A workload that would break at the next level, with its violations.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blocker {
    #[serde(flatten)]
    pub subject: Subject,
    /// `reason (detail)` per failed check, in upstream order.
    pub violations: Vec<String>,
    /// How to fix each, in the same order.
    pub fixes: Vec<String>,
}

/// One namespace's plan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespacePlan {
    pub namespace: String,
    /// `level:version` per mode as the labels set them today (defaults when unlabelled).
    pub enforce: String,
    pub warn: String,
    pub audit: String,
    /// Label problems (invalid values), as the admission plugin reports them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_errors: Vec<String>,
    /// Workloads evaluated (pods and pod-template kinds).
    pub workloads: usize,
    /// The strictest level all of them satisfy.
    pub satisfies: Level,
    /// Whether the enforced level is already stricter than what the workloads satisfy
    /// (running pods that new pods like them would be refused).
    pub enforce_too_strict: bool,
    /// The level after `satisfies`, if any, and what stops the namespace from reaching it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_level: Option<Level>,
    pub blockers: Vec<Blocker>,
    /// The command that tightens the namespace (empty when nothing can be tightened).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub version: String,
    pub namespaces: Vec<NamespacePlan>,
}

impl PlanReport {
    pub fn new(version: String, mut namespaces: Vec<NamespacePlan>) -> PlanReport {
        namespaces.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        PlanReport {
            api_version: super::psa::API_VERSION,
            kind: "PodSecurityPlan",
            version,
            namespaces,
        }
    }
}

fn level_style(l: Level) -> Style {
    match l {
        Level::Restricted => Style::Good,
        Level::Baseline => Style::Warn,
        Level::Privileged => Style::Bad,
    }
}

impl Report for PlanReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut headers = vec![
            "NAMESPACE",
            "ENFORCE",
            "WORKLOADS",
            "SATISFIES",
            "NEXT",
            "BLOCKERS",
        ];
        if wide {
            headers.splice(2..2, ["WARN", "AUDIT"]);
        }
        headers.push("TIGHTEN WITH");
        let rows = self
            .namespaces
            .iter()
            .map(|n| {
                let mut row = vec![Cell::new(n.namespace.clone()), {
                    let style = if n.enforce_too_strict {
                        Style::Bad
                    } else {
                        Style::Plain
                    };
                    Cell::styled(n.enforce.clone(), style)
                }];
                if wide {
                    row.push(Cell::new(n.warn.clone()));
                    row.push(Cell::new(n.audit.clone()));
                }
                row.push(Cell::new(n.workloads.to_string()));
                row.push(Cell::styled(
                    n.satisfies.to_string(),
                    level_style(n.satisfies),
                ));
                row.push(Cell::new(
                    n.next_level
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into()),
                ));
                row.push(Cell::new(if n.next_level.is_some() {
                    n.blockers.len().to_string()
                } else {
                    "-".into()
                }));
                row.push(Cell::styled(
                    if n.command.is_empty() {
                        "-".to_string()
                    } else {
                        n.command.clone()
                    },
                    Style::Dim,
                ));
                row
            })
            .collect();
        let mut tables = vec![Table {
            title: None,
            headers,
            rows,
            footer: vec![format!(
                "{} namespaces; {} already at restricted",
                self.namespaces.len(),
                self.namespaces
                    .iter()
                    .filter(|n| n.satisfies == Level::Restricted)
                    .count()
            )],
            keep_width: vec![0],
        }];
        let blockers: Vec<Vec<Cell>> = self
            .namespaces
            .iter()
            .flat_map(|n| {
                n.blockers.iter().map(move |b| {
                    vec![
                        Cell::new(n.namespace.clone()),
                        Cell::new(n.next_level.map(|l| l.to_string()).unwrap_or_default()),
                        Cell::new(format!("{}/{}", b.subject.kind, b.subject.name)),
                        // the table names the checks; wide and JSON carry the details
                        Cell::styled(
                            if wide {
                                b.violations.join("; ")
                            } else {
                                b.violations
                                    .iter()
                                    .map(|v| v.split(" (").next().unwrap_or(v))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            },
                            Style::Bad,
                        ),
                        Cell::new(b.fixes.join("; ")),
                    ]
                })
            })
            .collect();
        if !blockers.is_empty() {
            tables.push(Table {
                title: Some("What breaks at the next level".into()),
                headers: vec!["NAMESPACE", "LEVEL", "WORKLOAD", "VIOLATIONS", "FIX"],
                rows: blockers,
                footer: Vec::new(),
                keep_width: vec![0],
            });
        }
        tables
    }

    /// A plan reports opportunities, not failures: a namespace enforcing less than its
    /// workloads already satisfy is a low finding; one enforcing more than they satisfy is
    /// high (its existing pods could not be recreated).
    fn findings(&self) -> Findings {
        let mut results = Vec::new();
        for n in &self.namespaces {
            if n.enforce_too_strict {
                results.push(Finding {
                    rule_id: "psa-enforce-too-strict".into(),
                    severity: Severity::High,
                    message: format!(
                        "namespace {} enforces {} but its workloads only satisfy {}",
                        n.namespace, n.enforce, n.satisfies
                    ),
                    location: None,
                    subject: format!("Namespace/{}", n.namespace),
                });
            } else if !n.command.is_empty() {
                results.push(Finding {
                    rule_id: "psa-can-tighten".into(),
                    severity: Severity::Low,
                    message: format!(
                        "namespace {} can enforce {} today: {}",
                        n.namespace, n.satisfies, n.command
                    ),
                    location: None,
                    subject: format!("Namespace/{}", n.namespace),
                });
            }
        }
        Findings {
            rules: vec![
                RuleInfo {
                    id: "psa-enforce-too-strict".into(),
                    name: "psa-enforce-too-strict".into(),
                    short: "Namespace enforces more than its workloads satisfy".into(),
                    full: "The namespace's enforce label is stricter than what its existing workloads satisfy: their pods would be refused if recreated.".into(),
                    help: "Fix the workloads listed by `psa plan`, or lower the enforce label.".into(),
                    severity: Severity::High,
                    tags: vec!["pod-security".into()],
                },
                RuleInfo {
                    id: "psa-can-tighten".into(),
                    name: "psa-can-tighten".into(),
                    short: "Namespace can enforce a stricter Pod Security level".into(),
                    full: "Every workload in the namespace already satisfies a stricter level than the one enforced.".into(),
                    help: "Run the kubectl label command `psa plan` prints.".into(),
                    severity: Severity::Low,
                    tags: vec!["pod-security".into()],
                },
            ],
            results,
        }
    }
}
