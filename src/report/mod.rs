//! The one output layer. Every command builds a typed report that implements [`Report`]
//! and hands it to [`render`], which writes it as a table (comfy-table; colour only on a
//! terminal and never with `--no-color`), a wide table, JSON, YAML, SARIF 2.1.0 or JUnit
//! XML. Commands never format output themselves.

pub mod alerts;
pub mod cis;
pub mod emit;
pub mod install;
mod junit;
pub mod psa;
pub mod psa_plan;
pub mod rules;
mod sarif;
pub mod simulate;

use std::io::{self, Write};

use clap::ValueEnum;
use comfy_table::{Cell as CtCell, Color, ContentArrangement, Table as CtTable, presets};
use serde::Serialize;

/// Output formats every command accepts (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Table,
    Wide,
    Json,
    Yaml,
    Sarif,
    Junit,
    /// kube-bench's `--json` shape (only `cis run`)
    #[value(name = "kube-bench-json")]
    #[serde(rename = "kube-bench-json")]
    KubeBenchJson,
}

/// Finding severities, ordered; `--fail-on` compares against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// SARIF `level` for the severity.
    fn sarif_level(self) -> &'static str {
        match self {
            Severity::Info => "note",
            Severity::Low | Severity::Medium => "warning",
            Severity::High | Severity::Critical => "error",
        }
    }

    /// GitHub's `security-severity` score (0.1–10).
    fn security_severity(self) -> &'static str {
        match self {
            Severity::Info => "0.1",
            Severity::Low => "3.0",
            Severity::Medium => "5.5",
            Severity::High => "8.0",
            Severity::Critical => "9.5",
        }
    }
}

/// The threshold for exit code 1 (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FailOn {
    Info,
    #[default]
    Low,
    Medium,
    High,
    Critical,
    /// Never exit 1 for findings.
    Never,
}

impl FailOn {
    pub fn trips(self, s: Severity) -> bool {
        let threshold = match self {
            FailOn::Info => Severity::Info,
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
            FailOn::Never => return false,
        };
        s >= threshold
    }
}

/// How a table cell should look when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Plain,
    Good,
    Bad,
    Warn,
    Dim,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            style: Style::Plain,
        }
    }
    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::new(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::new(s)
    }
}

/// A table as a report describes it; the renderer draws it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: Option<String>,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines printed under the table (totals, hints).
    pub footer: Vec<String>,
    /// Columns that keep their content width and never wrap.
    pub keep_width: Vec<usize>,
}

/// A rule (check) that findings refer to, for SARIF's rule catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub id: String,
    pub name: String,
    pub short: String,
    pub full: String,
    pub help: String,
    pub severity: Severity,
    pub tags: Vec<String>,
}

/// Where a finding is, for SARIF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Relative to the scan root, `/`-separated.
    pub path: String,
    pub line: usize,
}

/// One finding, in the shape SARIF and the exit code need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule_id: String,
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    /// Identifies the subject (e.g. `Deployment/ns/name`) for stable fingerprints.
    pub subject: String,
}

/// One JUnit test case: a subject and a check, passed, failed or errored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub suite: String,
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed { message: String, text: String },
    Errored { message: String },
    Skipped { message: String },
}

/// The generic view of a report's findings that SARIF and the exit code use.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub rules: Vec<RuleInfo>,
    pub results: Vec<Finding>,
}

/// What every command's report provides. JSON and YAML are its serde form.
pub trait Report: Serialize {
    /// The tables to draw for `table` (`wide == false`) and `wide`.
    fn tables(&self, wide: bool) -> Vec<Table>;
    /// Findings for SARIF and the exit code.
    fn findings(&self) -> Findings;
    /// JUnit test cases: one per subject and check.
    fn cases(&self) -> Vec<Case> {
        Vec::new()
    }
    /// The severities of the findings, for the exit code (override when `findings` is
    /// costly to build).
    fn severities(&self) -> Vec<Severity> {
        self.findings().results.iter().map(|f| f.severity).collect()
    }
    /// kube-bench's JSON document, for reports that have one (`-o kube-bench-json`).
    fn kube_bench_json(&self) -> Option<serde_json::Value> {
        None
    }
}

/// Rendering settings from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub format: Format,
    pub color: bool,
}

/// Errors writing a report.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
    #[error("serializing output: {0}")]
    Serialize(String),
    #[error("{0}")]
    Unsupported(String),
}

/// Render `report` to `out` in the requested format.
pub fn render<R: Report>(
    report: &R,
    opts: RenderOptions,
    out: &mut dyn Write,
) -> Result<(), RenderError> {
    match opts.format {
        Format::Table | Format::Wide => {
            let tables = report.tables(opts.format == Format::Wide);
            for (i, t) in tables.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                draw_table(t, opts.color, out)?;
            }
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)
                .map_err(|e| RenderError::Serialize(e.to_string()))?;
            writeln!(out)?;
        }
        Format::Yaml => {
            let text = to_yaml(report)?;
            out.write_all(text.as_bytes())?;
        }
        Format::Sarif => {
            let findings = report.findings();
            let doc = sarif::build(&findings);
            serde_json::to_writer_pretty(&mut *out, &doc)
                .map_err(|e| RenderError::Serialize(e.to_string()))?;
            writeln!(out)?;
        }
        Format::Junit => junit::write(&report.cases(), out)?,
        Format::KubeBenchJson => {
            let doc = report.kube_bench_json().ok_or_else(|| {
                RenderError::Unsupported(
                    "-o kube-bench-json is only available for `cis run`; use -o json".into(),
                )
            })?;
            serde_json::to_writer_pretty(&mut *out, &doc)
                .map_err(|e| RenderError::Serialize(e.to_string()))?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// YAML through JSON, so JSON and YAML share one schema (field names and order).
pub fn to_yaml<T: Serialize + ?Sized>(v: &T) -> Result<String, RenderError> {
    let value = serde_json::to_value(v).map_err(|e| RenderError::Serialize(e.to_string()))?;
    serde_saphyr::to_string(&value).map_err(|e| RenderError::Serialize(e.to_string()))
}

fn draw_table(t: &Table, color: bool, out: &mut dyn Write) -> io::Result<()> {
    if let Some(title) = &t.title {
        writeln!(out, "{title}")?;
    }
    if !t.rows.is_empty() {
        let mut table = CtTable::new();
        table.load_style(presets::NOTHING);
        if color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        match terminal_width() {
            Some(w) => {
                table.set_content_arrangement(ContentArrangement::Dynamic);
                table.set_width(w);
            }
            None => {
                table.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        table.set_header(t.headers.iter().map(CtCell::new));
        for &i in &t.keep_width {
            if let Some(col) = table.column_mut(i) {
                col.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            }
        }
        for row in &t.rows {
            table.add_row(row.iter().map(|c| {
                let cell = CtCell::new(&c.text);
                if !color {
                    return cell;
                }
                match c.style {
                    Style::Plain => cell,
                    Style::Good => cell.fg(Color::Green),
                    Style::Bad => cell.fg(Color::Red),
                    Style::Warn => cell.fg(Color::Yellow),
                    Style::Dim => cell.fg(Color::DarkGrey),
                }
            }));
        }
        writeln!(out, "{}", table.trim_fmt())?;
    }
    for line in &t.footer {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The terminal width when stdout is a terminal (COLUMNS wins, as in kubectl).
fn terminal_width() -> Option<u16> {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(c);
    }
    use std::io::IsTerminal;
    if io::stdout().is_terminal() {
        return CtTable::new().width();
    }
    None
}

/// Exit code for a report's findings: 1 when any finding trips `--fail-on`.
pub fn exit_code<R: Report + ?Sized>(report: &R, fail_on: FailOn) -> i32 {
    if report.severities().into_iter().any(|s| fail_on.trips(s)) {
        1
    } else {
        0
    }
}

/// A short stable hex digest for fingerprints.
pub(crate) fn digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let out = h.finalize();
    out.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_thresholds() {
        assert!(FailOn::Low.trips(Severity::Medium));
        assert!(!FailOn::High.trips(Severity::Medium));
        assert!(FailOn::High.trips(Severity::Critical));
        assert!(!FailOn::Never.trips(Severity::Critical));
        assert!(!FailOn::Low.trips(Severity::Info));
    }

    #[test]
    fn digest_is_stable_and_separates_parts() {
        assert_eq!(digest(&["a", "b"]), digest(&["a", "b"]));
        assert_ne!(digest(&["ab", ""]), digest(&["a", "b"]));
        assert_eq!(digest(&["x"]).len(), 32);
    }
}
