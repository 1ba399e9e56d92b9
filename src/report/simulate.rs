//! Reports of `kubectl secmon simulate`:
//!
//! - [`ScenarioListReport`] (`simulate list`): scenario, rules, MITRE technique, context.
//! - [`SimulationReport`] (`simulate run` and `verify`): one row per scenario with its
//!   result (DETECTED with latency, MISSED, SKIPPED with why, ERROR; RAN without
//!   verification) and any UNEXPECTED alerts; with `--coverage`, the coverage summary and the
//!   MITRE ATT&CK for Containers matrix as text. JUnit has one testcase per scenario
//!   (MISSED fails, SKIPPED skips, ERROR errors), so a pipeline can gate on coverage. A
//!   MISSED scenario is a finding (severity high): exit code 1.
//! - [`coverage_html`]: the same run as one self-contained HTML page (no scripts, no
//!   external resources).
//! - [`LoadReport`] (`simulate run --loop`): the sensor's CPU, memory, events and drops at
//!   each rate.

use serde::Serialize;

use super::{Case, Cell, Finding, Findings, Outcome, Report, Severity, Style, Table};
use crate::simulate::catalogue::{RulesetKind, Scenario};
use crate::simulate::coverage::{CellStatus, Coverage};
use crate::simulate::load::LoadStep;
use crate::simulate::verify::{ScenarioResult, Status};

const API_VERSION: &str = "secmon.dev/v1alpha1";

/// One catalogue entry, as `simulate list` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// The rules of the listed ruleset.
    pub rules: Vec<&'static str>,
    pub default_rules: Vec<&'static str>,
    pub falco_rules: Vec<&'static str>,
    pub tactic: &'static str,
    pub technique: &'static str,
    pub context: String,
}

impl ScenarioInfo {
    pub fn new(s: &'static Scenario, ruleset: RulesetKind) -> ScenarioInfo {
        ScenarioInfo {
            name: s.name,
            description: s.description,
            rules: s.rules(ruleset).to_vec(),
            default_rules: s.default_rules.to_vec(),
            falco_rules: s.falco_rules.to_vec(),
            tactic: s.tactic_name(),
            technique: s.technique,
            context: s.context(),
        }
    }
}

/// `simulate list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioListReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub ruleset: RulesetKind,
    pub scenarios: Vec<ScenarioInfo>,
}

impl ScenarioListReport {
    pub fn new(scenarios: &[&'static Scenario], ruleset: RulesetKind) -> ScenarioListReport {
        ScenarioListReport {
            api_version: API_VERSION,
            kind: "ScenarioList",
            ruleset,
            scenarios: scenarios
                .iter()
                .map(|s| ScenarioInfo::new(s, ruleset))
                .collect(),
        }
    }
}

impl Report for ScenarioListReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: if wide {
                vec!["SCENARIO", "RULES", "MITRE", "CONTEXT", "DESCRIPTION"]
            } else {
                vec!["SCENARIO", "RULES", "MITRE", "CONTEXT"]
            },
            keep_width: vec![0, 2],
            ..Default::default()
        };
        let mut rules = std::collections::BTreeSet::new();
        for s in &self.scenarios {
            rules.extend(s.rules.iter().copied());
            let mut row = vec![
                Cell::new(s.name),
                if s.rules.is_empty() {
                    Cell::styled("-", Style::Dim)
                } else {
                    Cell::new(s.rules.join("\n"))
                },
                Cell::new(format!("{} {}", s.tactic, s.technique)),
                Cell::new(s.context.clone()),
            ];
            if wide {
                row.push(Cell::new(s.description));
            }
            t.rows.push(row);
        }
        t.footer.push(String::new());
        t.footer.push(format!(
            "{} scenarios covering {} rules of the {} ruleset",
            self.scenarios.len(),
            rules.len(),
            self.ruleset.as_str()
        ));
        vec![t]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}

/// Counts over a run's results.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub scenarios: usize,
    pub detected: usize,
    pub missed: usize,
    pub skipped: usize,
    pub errors: usize,
    pub ran: usize,
    /// Alerts attributed to a scenario for rules it should not trigger.
    pub unexpected_alerts: usize,
}

impl Summary {
    pub fn of(results: &[ScenarioResult]) -> Summary {
        let n = |s: Status| results.iter().filter(|r| r.status == s).count();
        Summary {
            scenarios: results.len(),
            detected: n(Status::Detected),
            missed: n(Status::Missed),
            skipped: n(Status::Skipped),
            errors: n(Status::Error),
            ran: n(Status::Ran),
            unexpected_alerts: results
                .iter()
                .flat_map(|r| &r.unexpected)
                .map(|u| u.count)
                .sum(),
        }
    }
}

/// `simulate run` and `simulate verify`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub run_id: String,
    pub ruleset: RulesetKind,
    /// `host` or `container`.
    pub mode: &'static str,
    /// Where the alerts were read (verification only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts_source: Option<String>,
    pub verified: bool,
    pub summary: Summary,
    pub results: Vec<ScenarioResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Draw the coverage in the table output too (`--coverage`).
    #[serde(skip)]
    pub show_coverage: bool,
}

impl SimulationReport {
    /// The report of a run (`alerts_source` `None`: `simulate run`) or of a verification
    /// against the alerts read from `alerts_source`, with its summary and, when verified,
    /// its coverage.
    pub fn new(
        run_id: String,
        ruleset: RulesetKind,
        mode: &'static str,
        results: Vec<ScenarioResult>,
        alerts_source: Option<String>,
        show_coverage: bool,
    ) -> SimulationReport {
        let verified = alerts_source.is_some();
        SimulationReport {
            api_version: "secmon.dev/v1alpha1",
            kind: if verified {
                "SimulationVerification"
            } else {
                "SimulationRun"
            },
            run_id,
            ruleset,
            mode,
            alerts_source,
            verified,
            summary: Summary::of(&results),
            coverage: verified.then(|| crate::simulate::coverage::coverage(&results, ruleset)),
            results,
            show_coverage,
        }
    }
}

fn status_style(s: Status) -> Style {
    match s {
        Status::Detected | Status::Ran => Style::Good,
        Status::Missed | Status::Error => Style::Bad,
        Status::Skipped => Style::Dim,
    }
}

fn latency(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

impl SimulationReport {
    fn results_table(&self, wide: bool) -> Table {
        let mut t = Table {
            headers: if self.verified {
                vec!["SCENARIO", "RESULT", "LATENCY", "RULES", "DETAILS"]
            } else {
                vec!["SCENARIO", "RESULT", "DURATION", "RULES", "DETAILS"]
            },
            keep_width: vec![0, 1, 2],
            ..Default::default()
        };
        // In a cluster each result names its node.
        let by_node = self.results.iter().any(|r| r.node.is_some());
        if by_node {
            t.headers.insert(1, "NODE");
            t.keep_width = vec![0, 1, 2, 3];
        }
        for r in &self.results {
            let timing = match (self.verified, r.status) {
                (true, Status::Detected) => r.latency_ms().map(latency).unwrap_or_default(),
                (false, Status::Ran) => latency(r.duration_ms),
                _ => String::new(),
            };
            let rules = r
                .expected
                .iter()
                .map(|c| {
                    if self.verified && !c.detected && r.status == Status::Missed {
                        format!("{} (missed)", c.rule)
                    } else {
                        c.rule.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut details: Vec<String> = r.reason.iter().cloned().collect();
            for u in &r.unexpected {
                details.push(format!(
                    "UNEXPECTED {} ({}{})",
                    u.rule,
                    u.priority,
                    if u.count > 1 {
                        format!(", {}×", u.count)
                    } else {
                        String::new()
                    }
                ));
            }
            if wide {
                details.push(format!("id={}", r.sim_id));
                if let Some(c) = &r.container_id {
                    details.push(format!("container={c}"));
                }
            }
            let mut result = Cell::styled(r.status.as_str(), status_style(r.status));
            if !r.unexpected.is_empty() && r.status == Status::Detected {
                result = Cell::styled("DETECTED+UNEXPECTED", Style::Warn);
            }
            let mut row = vec![
                Cell::new(r.scenario),
                result,
                Cell::new(timing),
                Cell::new(rules),
                Cell::new(details.join("\n")),
            ];
            if by_node {
                row.insert(1, Cell::new(r.node.clone().unwrap_or_default()));
            }
            t.rows.push(row);
        }
        let s = &self.summary;
        t.footer.push(String::new());
        t.footer.push(if self.verified {
            format!(
                "{} scenarios: {} detected, {} missed, {} skipped, {} errors; {} unexpected alerts ({} mode, {} rules, run {})",
                s.scenarios,
                s.detected,
                s.missed,
                s.skipped,
                s.errors,
                s.unexpected_alerts,
                self.mode,
                self.ruleset.as_str(),
                self.run_id
            )
        } else {
            format!(
                "{} scenarios: {} ran, {} skipped, {} errors ({} mode, run {})",
                s.scenarios, s.ran, s.skipped, s.errors, self.mode, self.run_id
            )
        });
        t
    }
}

/// The coverage as text tables: a summary and the matrix, tactic by tactic.
pub fn coverage_tables(c: &Coverage) -> Vec<Table> {
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    let mut summary = Table {
        title: Some("Coverage".into()),
        ..Default::default()
    };
    summary.footer.push(format!(
        "scenarios detected: {}/{} ({:.0}%), {} skipped",
        c.scenarios_detected,
        c.scenarios_run,
        pct(c.scenarios_detected, c.scenarios_run),
        c.scenarios_skipped
    ));
    summary.footer.push(format!(
        "rules covered: {}/{} expected by this run ({} of the {} ruleset have a scenario)",
        c.rules_detected,
        c.rules_expected,
        c.rules_in_catalogue,
        c.ruleset.as_str()
    ));
    if !c.missed_rules.is_empty() {
        summary
            .footer
            .push(format!("rules missed: {}", c.missed_rules.join(", ")));
    }
    let mut matrix = Table {
        title: Some(
            "MITRE ATT&CK for Containers (+ Enterprise techniques the scenarios exercise)".into(),
        ),
        headers: vec!["TACTIC", "TECHNIQUE", "COVERAGE", "SCENARIOS"],
        keep_width: vec![0, 2],
        ..Default::default()
    };
    let mut counts = [0usize; 3];
    for col in &c.matrix {
        for (i, cell) in col.cells.iter().enumerate() {
            counts[cell.status as usize] += 1;
            let style = match cell.status {
                CellStatus::Covered => Style::Good,
                CellStatus::Missed => Style::Bad,
                CellStatus::NotSimulated => Style::Dim,
            };
            matrix.rows.push(vec![
                Cell::new(if i == 0 { col.tactic } else { "" }),
                Cell::new(format!(
                    "{} {}{}",
                    cell.technique,
                    cell.name,
                    if cell.containers_matrix {
                        ""
                    } else {
                        " (Enterprise)"
                    }
                )),
                Cell::styled(cell.status.as_str(), style),
                Cell::new(cell.scenarios.join("\n")),
            ]);
        }
    }
    matrix.footer.push(String::new());
    matrix.footer.push(format!(
        "{} techniques covered, {} missed, {} not simulated",
        counts[CellStatus::Covered as usize],
        counts[CellStatus::Missed as usize],
        counts[CellStatus::NotSimulated as usize]
    ));
    vec![summary, matrix]
}

impl Report for SimulationReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut tables = vec![self.results_table(wide)];
        if self.show_coverage
            && let Some(c) = &self.coverage
        {
            tables.extend(coverage_tables(c));
        }
        tables
    }

    fn findings(&self) -> Findings {
        Findings {
            rules: Vec::new(),
            results: self
                .results
                .iter()
                .filter(|r| r.status == Status::Missed)
                .map(|r| Finding {
                    rule_id: r.scenario.to_string(),
                    severity: Severity::High,
                    message: format!(
                        "scenario {} was not detected: {}",
                        r.scenario,
                        r.reason.as_deref().unwrap_or("")
                    ),
                    location: None,
                    subject: r.sim_id.clone(),
                })
                .collect(),
        }
    }

    fn cases(&self) -> Vec<Case> {
        self.results
            .iter()
            .map(|r| {
                let rules: Vec<&str> = r.expected.iter().map(|c| c.rule.as_str()).collect();
                let outcome = match r.status {
                    Status::Detected | Status::Ran => Outcome::Passed,
                    Status::Missed => Outcome::Failed {
                        message: r.reason.clone().unwrap_or_default(),
                        text: format!(
                            "expected alerts from: {}\ncorrelation id: {}",
                            rules.join(", "),
                            r.sim_id
                        ),
                    },
                    Status::Skipped => Outcome::Skipped {
                        message: r.reason.clone().unwrap_or_default(),
                    },
                    Status::Error => Outcome::Errored {
                        message: r.reason.clone().unwrap_or_default(),
                    },
                };
                Case {
                    suite: format!(
                        "kubectl-secmon simulate ({} rules, {})",
                        self.ruleset.as_str(),
                        self.mode
                    ),
                    classname: format!(
                        "{} {}",
                        crate::simulate::catalogue::tactic_name(r.tactic),
                        r.technique
                    ),
                    name: r.scenario.to_string(),
                    outcome,
                }
            })
            .collect()
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A verified run as one self-contained HTML page: the summary, the ATT&CK matrix (one
/// column per tactic, one coloured box per technique) and the scenario results.
pub fn coverage_html(r: &SimulationReport) -> String {
    use std::fmt::Write;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kubectl-secmon detection coverage — run {run}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:28px}}
.summary span{{display:inline-block;margin-right:18px}}
.matrix{{display:flex;gap:8px;align-items:flex-start;overflow-x:auto}}
.tactic{{min-width:150px;flex:1}}
.tactic h3{{font-size:13px;margin:0 0 6px;padding:6px;background:#1d2330;color:#fff;border-radius:4px}}
.cell{{font-size:12px;padding:6px;margin-bottom:6px;border-radius:4px;border:1px solid #ccd}}
.cell small{{display:block;color:#445;margin-top:3px}}
.covered{{background:#c8ecc9;border-color:#5cb860}} .missed{{background:#f7c5c5;border-color:#d9534f}}
.not-simulated{{background:#f2f3f5;color:#889}} .enterprise{{font-style:italic}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ccd;padding:4px 8px;text-align:left;vertical-align:top}}
.DETECTED{{color:#2d7a31;font-weight:600}} .MISSED,.ERROR{{color:#b52b27;font-weight:600}} .SKIPPED{{color:#889}}
</style></head><body>
<h1>Detection coverage: kubectl secmon simulate verify</h1>
<p>Run <code>{run}</code>, {mode} mode, {ruleset} rules{source}.</p>
"#,
        run = html_escape(&r.run_id),
        mode = r.mode,
        ruleset = r.ruleset.as_str(),
        source = r
            .alerts_source
            .as_ref()
            .map(|s| format!(", alerts from <code>{}</code>", html_escape(s)))
            .unwrap_or_default()
    );
    let s = &r.summary;
    let _ = writeln!(
        h,
        r#"<p class="summary"><span><b>{}</b> scenarios</span><span class="DETECTED">{} detected</span><span class="MISSED">{} missed</span><span class="SKIPPED">{} skipped</span><span>{} errors</span><span>{} unexpected alerts</span></p>"#,
        s.scenarios, s.detected, s.missed, s.skipped, s.errors, s.unexpected_alerts
    );
    if let Some(c) = &r.coverage {
        let _ = writeln!(
            h,
            "<p>Rules covered: <b>{}/{}</b> expected by this run ({} rules of the {} ruleset have a scenario).{}</p>",
            c.rules_detected,
            c.rules_expected,
            c.rules_in_catalogue,
            c.ruleset.as_str(),
            if c.missed_rules.is_empty() {
                String::new()
            } else {
                format!(" Missed: {}.", html_escape(&c.missed_rules.join(", ")))
            }
        );
        h.push_str("<h2>MITRE ATT&amp;CK for Containers</h2>\n<p>Green: covered (every scenario for it detected). Red: missed. Grey: not simulated. <i>Italic</i>: Enterprise techniques outside the Containers matrix that the scenarios exercise.</p>\n<div class=\"matrix\">\n");
        for col in &c.matrix {
            let _ = writeln!(
                h,
                "<div class=\"tactic\"><h3>{}</h3>",
                html_escape(col.tactic)
            );
            for cell in &col.cells {
                let class = match cell.status {
                    CellStatus::Covered => "covered",
                    CellStatus::Missed => "missed",
                    CellStatus::NotSimulated => "not-simulated",
                };
                let _ = write!(
                    h,
                    "<div class=\"cell {class}{}\" title=\"{}\"><b>{}</b> {}",
                    if cell.containers_matrix {
                        ""
                    } else {
                        " enterprise"
                    },
                    cell.status.as_str(),
                    html_escape(&cell.technique),
                    html_escape(&cell.name)
                );
                for sc in &cell.scenarios {
                    let _ = write!(h, "<small>{}</small>", html_escape(sc));
                }
                h.push_str("</div>\n");
            }
            h.push_str("</div>\n");
        }
        h.push_str("</div>\n");
    }
    h.push_str("<h2>Scenarios</h2>\n<table><tr><th>Scenario</th><th>Result</th><th>Latency</th><th>Rules</th><th>Details</th></tr>\n");
    for res in &r.results {
        let rules: Vec<String> = res
            .expected
            .iter()
            .map(|c| {
                format!(
                    "{}{}",
                    html_escape(&c.rule),
                    if r.verified && !c.detected {
                        " (missed)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        let mut details: Vec<String> = res.reason.iter().map(|x| html_escape(x)).collect();
        for u in &res.unexpected {
            details.push(format!(
                "UNEXPECTED {} ({})",
                html_escape(&u.rule),
                u.priority
            ));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(res.scenario),
            res.latency_ms().map(latency).unwrap_or_default(),
            rules.join("<br>"),
            details.join("<br>"),
            st = res.status.as_str()
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// `simulate run --loop`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub run_id: String,
    pub mode: &'static str,
    pub scenarios: Vec<&'static str>,
    pub steps: Vec<LoadStep>,
}

impl Report for LoadReport {
    fn tables(&self, _wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: vec![
                "RATE/S",
                "ACHIEVED/S",
                "RUNS",
                "ERRORS",
                "SENSOR CPU",
                "SENSOR RSS",
                "EVENTS/S",
                "DROPPED",
                "DETECTED",
            ],
            ..Default::default()
        };
        for s in &self.steps {
            t.rows.push(vec![
                Cell::new(format!("{}", s.rate)),
                Cell::new(format!("{:.1}", s.achieved_rate)),
                Cell::new(s.scenarios_run.to_string()),
                Cell::styled(
                    s.errors.to_string(),
                    if s.errors > 0 {
                        Style::Bad
                    } else {
                        Style::Plain
                    },
                ),
                Cell::new(format!("{:.1}%", s.sensor_cpu_percent)),
                Cell::new(format!("{:.1} MiB", s.sensor_rss_mib)),
                Cell::new(format!("{:.0}", s.events_per_second)),
                Cell::styled(
                    s.dropped.to_string(),
                    if s.dropped > 0 {
                        Style::Bad
                    } else {
                        Style::Plain
                    },
                ),
                Cell::styled(
                    format!("{}/{}", s.detected, s.scenarios_run),
                    if s.detected < s.scenarios_run {
                        Style::Warn
                    } else {
                        Style::Good
                    },
                ),
            ]);
        }
        for s in self.steps.iter().filter(|s| !s.missed.is_empty()) {
            let list: Vec<String> = s
                .missed
                .iter()
                .map(|(name, n)| format!("{name} ×{n}"))
                .collect();
            t.footer
                .push(format!("missed at {}/s: {}", s.rate, list.join(", ")));
        }
        t.footer.push(String::new());
        t.footer.push(format!(
            "{} scenarios in rotation ({} mode, run {}); CPU is the sensor's, in % of one core; events are the whole host's; DETECTED: runs with all their expected alerts",
            self.scenarios.len(),
            self.mode,
            self.run_id
        ));
        vec![t]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Format, RenderOptions, render};
    use crate::simulate::catalogue::find;
    use crate::simulate::coverage::coverage;
    use crate::simulate::verify::{RuleCheck, Unexpected};

    fn result(name: &str, status: Status) -> ScenarioResult {
        let s = find(name).unwrap();
        ScenarioResult {
            scenario: s.name,
            status,
            reason: match status {
                Status::Missed => Some(format!("no alert from: {}", s.default_rules[0])),
                Status::Skipped => Some("needs root".into()),
                _ => None,
            },
            tactic: s.tactic,
            technique: s.technique,
            sim_id: format!("secmon-sim-0123456789ab-{}", s.name.len()),
            node: None,
            container_id: Some("3ad7b26ded6d".into()),
            duration_ms: 12.0,
            expected: vec![RuleCheck {
                rule: s.default_rules[0].into(),
                detected: status == Status::Detected,
                latency_ms: (status == Status::Detected).then_some(42.4),
                priority: None,
            }],
            unexpected: vec![],
        }
    }

    fn report() -> SimulationReport {
        let mut results = vec![
            result("credential-file-read", Status::Detected),
            result("bulk-data-destruction", Status::Missed),
            result("packet-socket", Status::Skipped),
        ];
        results[0].unexpected.push(Unexpected {
            rule: "Write below /etc".into(),
            priority: crate::rules::Priority::Error,
            count: 2,
            output: "x".into(),
        });
        let cov = coverage(&results, RulesetKind::Default);
        SimulationReport {
            api_version: API_VERSION,
            kind: "SimulationVerification",
            run_id: "0123456789ab".into(),
            ruleset: RulesetKind::Default,
            mode: "container",
            alerts_source: Some("http://127.0.0.1:8765/alerts".into()),
            verified: true,
            summary: Summary::of(&results),
            results,
            coverage: Some(cov),
            show_coverage: true,
        }
    }

    fn rendered(r: &impl Report, format: Format) -> String {
        let mut out = Vec::new();
        render(
            r,
            RenderOptions {
                format,
                color: false,
            },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_json_junit_and_exit_code() {
        let r = report();
        let table = rendered(&r, Format::Table);
        assert!(table.contains("credential-file-read"), "{table}");
        assert!(table.contains("DETECTED+UNEXPECTED"), "{table}");
        assert!(table.contains("42 ms"), "{table}");
        assert_eq!(latency(4.26), "4.3 ms");
        assert_eq!(latency(1500.0), "1.50 s");
        assert!(
            table.contains("UNEXPECTED Write below /etc (Error, 2×)"),
            "{table}"
        );
        assert!(table.contains("Bulk data destruction (missed)"), "{table}");
        assert!(
            table.contains(
                "3 scenarios: 1 detected, 1 missed, 1 skipped, 0 errors; 2 unexpected alerts"
            ),
            "{table}"
        );
        assert!(
            table.contains("scenarios detected: 1/2 (50%), 1 skipped"),
            "{table}"
        );
        assert!(
            table.contains("T1003 OS Credential Dumping (Enterprise)"),
            "{table}"
        );
        assert!(table.contains("T1485 Data Destruction"), "{table}");
        assert!(table.contains("not simulated"), "{table}");

        let json: serde_json::Value = serde_json::from_str(&rendered(&r, Format::Json)).unwrap();
        assert_eq!(json["kind"], "SimulationVerification");
        assert_eq!(json["summary"]["missed"], 1);
        assert_eq!(json["results"][0]["status"], "DETECTED");
        assert_eq!(json["results"][0]["expected"][0]["latencyMs"], 42.4);
        assert_eq!(json["results"][1]["status"], "MISSED");
        assert_eq!(json["coverage"]["rulesDetected"], 1);
        assert!(json.get("showCoverage").is_none());

        let junit = rendered(&r, Format::Junit);
        assert!(
            junit.contains(r#"tests="3" failures="1" errors="0" skipped="1""#),
            "{junit}"
        );
        assert!(
            junit
                .contains(r#"classname="Credential Access T1003.008" name="credential-file-read""#),
            "{junit}"
        );
        assert!(
            junit.contains(r#"<skipped message="needs root"/>"#),
            "{junit}"
        );

        assert_eq!(crate::report::exit_code(&r, crate::report::FailOn::Low), 1);
        let mut clean = report();
        clean.results.remove(1);
        assert_eq!(
            crate::report::exit_code(&clean, crate::report::FailOn::Low),
            0
        );
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut r = report();
        r.results[0].reason = Some("<script>".into());
        let html = coverage_html(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
        assert!(!html.contains("<script"), "nothing executable");
        assert!(html.contains("&lt;script&gt;"));
        assert!(
            !html.contains("http://") || html.contains("<code>http://127.0.0.1:8765/alerts</code>")
        );
        assert!(!html.contains("src="), "no external resources");
        assert!(html.contains(r#"class="cell covered enterprise""#));
        assert!(html.contains(r#"class="cell missed""#));
        assert!(html.contains(r#"class="cell not-simulated""#));
        assert!(html.contains("MITRE ATT&amp;CK for Containers"));
    }

    #[test]
    fn list_and_load_tables() {
        let all: Vec<&'static Scenario> = crate::simulate::catalogue::SCENARIOS.iter().collect();
        let l = ScenarioListReport::new(&all, RulesetKind::FalcoStable);
        let t = rendered(&l, Format::Table);
        assert!(t.contains("Terminal shell in container"), "{t}");
        assert!(
            t.contains("covering 25 rules of the falco-stable ruleset"),
            "{t}"
        );
        let load = LoadReport {
            api_version: API_VERSION,
            kind: "SimulationLoad",
            run_id: "x".into(),
            mode: "host",
            scenarios: vec!["ptrace-attach"],
            steps: vec![LoadStep {
                rate: 10.0,
                duration_s: 10.0,
                scenarios_run: 100,
                achieved_rate: 10.0,
                errors: 0,
                detected: 99,
                missed: [("ptrace-attach".to_string(), 1)].into(),
                sensor_cpu_percent: 3.25,
                sensor_rss_mib: 44.5,
                events: 1000,
                events_per_second: 100.0,
                dropped: 0,
                sensor_alerts: 100,
            }],
        };
        let t = rendered(&load, Format::Table);
        assert!(
            t.contains("3.2%") && t.contains("44.5 MiB") && t.contains("99/100"),
            "{t}"
        );
    }
}
