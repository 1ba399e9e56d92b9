//! Reports of `kubectl secmon rules validate|list|test`: what a ruleset holds, what loading
//! it found, and which rules recorded events fire.

use serde::Serialize;

use super::{
    Case, Cell, Finding, Findings, Location, Outcome, Report, RuleInfo as SarifRule, Severity,
    Style, Table,
};
use crate::rules::{Diagnostic, Priority, RuleInfo, RuleStatus, Severity as DiagSeverity};

const API_VERSION: &str = "secmon.dev/v1alpha1";

/// The finding severity of a rule's priority.
pub fn severity_of(p: Priority) -> Severity {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => Severity::Critical,
        Priority::Error => Severity::High,
        Priority::Warning => Severity::Medium,
        Priority::Notice => Severity::Low,
        Priority::Informational | Priority::Debug => Severity::Info,
    }
}

fn status_str(s: &RuleStatus) -> &'static str {
    match s {
        RuleStatus::Active => "active",
        RuleStatus::Disabled => "disabled",
        RuleStatus::Unsupported => "unsupported",
        RuleStatus::OtherSource => "other-source",
        RuleStatus::BelowMinPriority => "below-priority",
    }
}

fn status_cell(s: &RuleStatus) -> Cell {
    let style = match s {
        RuleStatus::Active => Style::Good,
        RuleStatus::Unsupported => Style::Warn,
        _ => Style::Dim,
    };
    Cell::styled(status_str(s), style)
}

/// `rules list`: every rule the files define, in load order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesListReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub files: Vec<String>,
    pub rules: Vec<RuleInfo>,
}

impl RulesListReport {
    pub fn new(files: Vec<String>, rules: Vec<RuleInfo>) -> RulesListReport {
        RulesListReport {
            api_version: API_VERSION,
            kind: "RuleList",
            files,
            rules,
        }
    }
}

impl Report for RulesListReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: if wide {
                vec![
                    "RULE", "PRIORITY", "MITRE", "SOURCE", "FILE", "STATUS", "TAGS",
                ]
            } else {
                vec!["RULE", "PRIORITY", "MITRE", "FILE", "STATUS"]
            },
            keep_width: vec![1, 3],
            ..Default::default()
        };
        for r in &self.rules {
            let mitre = r
                .mitre
                .tactics
                .iter()
                .chain(r.mitre.techniques.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let file = format!("{}:{}", r.file, r.line);
            let mut row = vec![
                Cell::new(crate::rules::one_line(&r.name).into_owned()),
                Cell::new(r.priority.as_str()),
                Cell::new(mitre),
            ];
            if wide {
                row.push(Cell::new(r.source.clone()));
            }
            row.push(Cell::new(file));
            row.push(status_cell(&r.status));
            if wide {
                row.push(Cell::new(r.tags.join(" ")));
            }
            t.rows.push(row);
        }
        let active = self.rules.iter().filter(|r| r.is_active()).count();
        t.footer.push(String::new());
        t.footer
            .push(format!("{} rules, {active} active", self.rules.len()));
        vec![t]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCounts {
    pub total: usize,
    pub active: usize,
    pub disabled: usize,
    pub unsupported: usize,
    pub other_source: usize,
    pub below_priority: usize,
    pub lists: usize,
    pub macros: usize,
}

/// `rules validate`: the files loaded; rules skipped for unsupported fields and other
/// warnings are findings (low), notes are info.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub files: Vec<String>,
    pub valid: bool,
    pub counts: RuleCounts,
    pub diagnostics: Vec<Diagnostic>,
    /// Rules that cannot fire because the engine lacks fields they need.
    pub unsupported: Vec<UnsupportedRule>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsupportedRule {
    pub rule: String,
    pub file: String,
    pub line: usize,
    pub fields: Vec<String>,
}

impl ValidateReport {
    pub fn new(
        files: Vec<String>,
        rules: &[RuleInfo],
        lists: usize,
        macros: usize,
        diagnostics: Vec<Diagnostic>,
    ) -> ValidateReport {
        let count = |s: RuleStatus| rules.iter().filter(|r| r.status == s).count();
        ValidateReport {
            api_version: API_VERSION,
            kind: "RuleValidation",
            files,
            valid: true,
            counts: RuleCounts {
                total: rules.len(),
                active: count(RuleStatus::Active),
                disabled: count(RuleStatus::Disabled),
                unsupported: count(RuleStatus::Unsupported),
                other_source: count(RuleStatus::OtherSource),
                below_priority: count(RuleStatus::BelowMinPriority),
                lists,
                macros,
            },
            diagnostics,
            unsupported: rules
                .iter()
                .filter(|r| r.status == RuleStatus::Unsupported)
                .map(|r| UnsupportedRule {
                    rule: r.name.clone(),
                    file: r.file.clone(),
                    line: r.line,
                    fields: r.unsupported_fields.clone(),
                })
                .collect(),
        }
    }
}

impl Report for ValidateReport {
    fn tables(&self, _wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: vec!["LOCATION", "LEVEL", "RULE", "MESSAGE"],
            keep_width: vec![0, 1],
            ..Default::default()
        };
        for d in &self.diagnostics {
            let (level, style) = match d.severity {
                DiagSeverity::Warning => ("warning", Style::Warn),
                DiagSeverity::Info => ("info", Style::Dim),
            };
            t.rows.push(vec![
                Cell::new(format!("{}:{}", d.file, d.line)),
                Cell::styled(level, style),
                Cell::new(
                    crate::rules::one_line(d.rule.as_deref().unwrap_or_default()).into_owned(),
                ),
                Cell::new(crate::rules::one_line(&d.message).into_owned()),
            ]);
        }
        let c = &self.counts;
        if !t.rows.is_empty() {
            t.footer.push(String::new());
        }
        t.footer.push(format!(
            "valid: {} rules ({} active, {} disabled, {} unsupported, {} for other sources), {} macros, {} lists",
            c.total, c.active, c.disabled, c.unsupported, c.other_source, c.macros, c.lists
        ));
        vec![t]
    }

    fn findings(&self) -> Findings {
        let results = self
            .diagnostics
            .iter()
            .map(|d| Finding {
                rule_id: "rules-load".into(),
                severity: match d.severity {
                    DiagSeverity::Warning => Severity::Low,
                    DiagSeverity::Info => Severity::Info,
                },
                message: d.message.clone(),
                location: Some(Location {
                    path: d.file.clone(),
                    line: d.line,
                }),
                subject: d.rule.clone().unwrap_or_default(),
            })
            .collect();
        Findings {
            rules: vec![SarifRule {
                id: "rules-load".into(),
                name: "rules-load".into(),
                short: "A rules file loads with warnings".into(),
                full: "A rule needs fields the engine cannot supply, uses deprecated syntax, or names a host that does not resolve.".into(),
                help: "Read the message: rewrite the rule with supported fields or remove it.".into(),
                severity: Severity::Low,
                tags: vec!["detection-rules".into()],
            }],
            results,
        }
    }
}

/// One rule firing on one recorded event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    /// 1-based position of the event in the events file (its line number).
    pub event: usize,
    pub evt_type: String,
    pub rule: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub output: String,
    pub output_fields: serde_json::Map<String, serde_json::Value>,
}

/// `rules test`: which rules recorded events fire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesTestReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub events_file: String,
    pub events: usize,
    pub firings: Vec<Firing>,
    /// Rules and how often each fired, most first.
    pub by_rule: Vec<(String, usize)>,
}

impl RulesTestReport {
    pub fn new(events_file: String, events: usize, firings: Vec<Firing>) -> RulesTestReport {
        let mut by_rule: Vec<(String, usize)> = Vec::new();
        for f in &firings {
            match by_rule.iter_mut().find(|(r, _)| *r == f.rule) {
                Some((_, n)) => *n += 1,
                None => by_rule.push((f.rule.clone(), 1)),
            }
        }
        by_rule.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        RulesTestReport {
            api_version: API_VERSION,
            kind: "RuleTest",
            events_file,
            events,
            firings,
            by_rule,
        }
    }
}

impl Report for RulesTestReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: vec!["EVENT", "TYPE", "PRIORITY", "RULE", "OUTPUT"],
            keep_width: vec![0, 1, 2],
            ..Default::default()
        };
        for f in &self.firings {
            let style = match severity_of(f.priority) {
                Severity::Critical | Severity::High => Style::Bad,
                Severity::Medium => Style::Warn,
                _ => Style::Plain,
            };
            t.rows.push(vec![
                Cell::new(f.event.to_string()),
                Cell::new(f.evt_type.clone()),
                Cell::styled(f.priority.as_str(), style),
                Cell::new(f.rule.clone()),
                Cell::new(f.output.clone()),
            ]);
        }
        if !t.rows.is_empty() {
            t.footer.push(String::new());
        }
        t.footer.push(format!(
            "{} events replayed from {}: {} firings of {} rules",
            self.events,
            self.events_file,
            self.firings.len(),
            self.by_rule.len()
        ));
        if wide {
            for (rule, n) in &self.by_rule {
                t.footer.push(format!("  {n:>5}  {rule}"));
            }
        }
        vec![t]
    }

    fn findings(&self) -> Findings {
        let results = self
            .firings
            .iter()
            .map(|f| Finding {
                rule_id: f.rule.clone(),
                severity: severity_of(f.priority),
                message: f.output.clone(),
                location: Some(Location {
                    path: self.events_file.clone(),
                    line: f.event,
                }),
                subject: format!("event {}", f.event),
            })
            .collect();
        let mut rules: Vec<SarifRule> = Vec::new();
        for f in &self.firings {
            if rules.iter().any(|r| r.id == f.rule) {
                continue;
            }
            rules.push(SarifRule {
                id: f.rule.clone(),
                name: f.rule.clone(),
                short: f.rule.clone(),
                full: format!(
                    "Detection rule {:?} ({} priority)",
                    f.rule,
                    f.priority.as_str()
                ),
                help: "See the rule's description in its rules file.".into(),
                severity: severity_of(f.priority),
                tags: f.tags.clone(),
            });
        }
        Findings { rules, results }
    }

    fn cases(&self) -> Vec<Case> {
        self.firings
            .iter()
            .map(|f| Case {
                suite: self.events_file.clone(),
                classname: format!("event {}", f.event),
                name: f.rule.clone(),
                outcome: Outcome::Failed {
                    message: format!("{} fired", f.rule),
                    text: f.output.clone(),
                },
            })
            .collect()
    }
}
