//! Detection rules: a Falco-compatible rules loader, a condition compiler and a matcher.
//! Pure: text in, a compiled [`Ruleset`] out; events in, matched rules out. The only I/O is
//! [`read_rule_files`] (reading files named on a command line) and, when asked for, name
//! resolution of `fd.sip.name` values at load time (see [`HostResolver`]).
//!
//! ```text
//! rules files ──yaml──▶ loader (lists, macros, rules, overrides, exceptions)
//!             ──parser──▶ condition trees ──compile──▶ typed checks, per-event-type index
//! Event ──Ruleset::matches──▶ rule ids ──Ruleset::render_output──▶ text + output_fields
//! ```
//!
//! - [`event`]: the event model the sensor fills and recordings replay (JSON lines).
//! - `yaml`: a line-aware YAML tree; `loader`: Falco's item semantics over it.
//! - [`parser`]: the condition language; `compile`: fields, operators, macro and list
//!   expansion, event-type derivation; `ruleset`: matching; `output`: templates.
//!
//! The default ruleset (`rules/secmon_rules.yaml`) is embedded: [`default_ruleset_sources`].

mod compile;
pub mod event;
mod fields;
mod loader;
mod output;
pub mod parser;
mod ruleset;
mod yaml;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

pub use event::{Event, EventType};
pub use fields::supported_fields;
pub use output::ExtraFields;
pub use ruleset::{Matches, Rendered, RuleId, Ruleset};

/// The Falco engine version whose rules-file features this loader implements; files that
/// require a newer one are refused.
pub const ENGINE_VERSION: &str = "0.63.0";

/// The default ruleset, embedded in the binary.
pub const DEFAULT_RULES_FILE: &str = "secmon_rules.yaml";
const DEFAULT_RULES: &str = include_str!("../../rules/secmon_rules.yaml");

/// The embedded default rules files as `(name, text)`, in load order.
pub fn default_ruleset_sources() -> Vec<(String, String)> {
    vec![(DEFAULT_RULES_FILE.to_string(), DEFAULT_RULES.to_string())]
}

/// Load and compile rules files, in order (later files extend or override earlier ones).
///
/// `Err` is a file error: bad YAML, an unknown key, a wrong type, an unknown macro, a syntax
/// error in a condition. Rules that need a field the engine does not support are not errors:
/// they are skipped, listed in the returned diagnostics and marked in [`Ruleset::rules`].
pub fn load_files<N: AsRef<str>, T: AsRef<str>>(
    files: &[(N, T)],
    options: &LoadOptions,
) -> Result<(Ruleset, Vec<Diagnostic>), LoadError> {
    let mut defs = loader::Definitions::default();
    for (name, text) in files {
        defs.load_file(name.as_ref(), text.as_ref())?;
    }
    compile::compile(defs, options)
}

/// Read rules files from disk (the one I/O helper, for the command line): a file, or every
/// `*.yaml`/`*.yml` in a directory, sorted by name. Errors are one line naming the path.
pub fn read_rule_files(paths: &[std::path::PathBuf]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for path in paths {
        let display = path.display().to_string();
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| format!("{display}: cannot read directory: {e}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            entries.sort();
            for p in entries {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
                out.push((p.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{display}: cannot read: {e}"))?;
            out.push((display, text));
        }
    }
    Ok(out)
}

/// How to load rules.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Stop at the first matching rule (Falco's default) or report every match.
    pub rule_matching: RuleMatching,
    /// Rules less severe than this are not loaded (Falco's `priority:` setting).
    pub min_priority: Priority,
    /// How `fd.*ip.name` values in conditions become addresses.
    pub resolver: HostResolver,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            rule_matching: RuleMatching::First,
            min_priority: Priority::Debug,
            resolver: HostResolver::System,
        }
    }
}

/// Falco's `rule_matching`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMatching {
    /// Report only the first matching rule (in load order) for each event.
    #[default]
    First,
    /// Report every matching rule.
    All,
}

/// Resolution of host names used with `fd.sip.name` and friends, done once at load time.
#[derive(Debug, Clone)]
pub enum HostResolver {
    /// The system resolver (`std::net::ToSocketAddrs`); failures are warnings.
    System,
    /// No resolution: only literal addresses match; names give a warning.
    Disabled,
    /// A fixed table (tests, air-gapped nodes); names not in it give a warning.
    Static(Vec<(String, Vec<IpAddr>)>),
}

/// A rule's priority, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    /// All priorities, most severe first.
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// Parse a priority name, case-insensitively (`INFO` is `Informational`).
    pub fn parse(s: &str) -> Option<Priority> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("info") {
            return Some(Priority::Informational);
        }
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// Falco's spelling in alerts: `Warning`, `Informational`…
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// Numeric severity as metrics use it: Emergency 0 … Debug 7.
    pub fn level(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Priority {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A rule's MITRE ATT&CK mapping, read from its tags (`mitre_execution`, `T1059.004`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Mitre {
    /// Tactics without the `mitre_` prefix: `execution`, `credential_access`…
    pub tactics: Vec<String>,
    /// Technique and tactic ids: `T1059.004`, `TA0003`.
    pub techniques: Vec<String>,
}

impl Mitre {
    pub(crate) fn from_tags(tags: &[String]) -> Mitre {
        let mut m = Mitre::default();
        for t in tags {
            if let Some(tactic) = t.strip_prefix("mitre_") {
                m.tactics.push(tactic.to_string());
            } else if is_attack_id(t) {
                m.techniques.push(t.clone());
            }
        }
        m
    }
}

fn is_attack_id(t: &str) -> bool {
    let digits = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = t.strip_prefix("TA") {
        return digits(rest);
    }
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    match rest.split_once('.') {
        Some((a, b)) => digits(a) && b.len() == 3 && b.bytes().all(|c| c.is_ascii_digit()),
        None => digits(rest),
    }
}

/// Whether a rule can fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Compiled and enabled.
    Active,
    /// Compiled, but `enabled: false`.
    Disabled,
    /// Not compiled: it needs fields the engine does not supply (listed in the rule info).
    Unsupported,
    /// Not compiled: its source (e.g. `k8s_audit`) is not one this engine handles.
    OtherSource,
    /// Not loaded: below the minimum priority.
    BelowMinPriority,
}

/// What the command line shows about a rule.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInfo {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub mitre: Mitre,
    pub source: String,
    /// The file and line where the rule was (first) defined.
    pub file: String,
    pub line: usize,
    /// `enabled:` as the files leave it.
    pub enabled: bool,
    pub status: RuleStatus,
    /// Fields the rule needs that the engine does not support (why it is `Unsupported`).
    pub unsupported_fields: Vec<String>,
    /// The final condition text, exceptions included, before macro expansion.
    pub condition: String,
    pub output: String,
    /// The event types the rule can match; empty when it is tested on every event.
    pub event_types: Vec<EventType>,
}

impl RuleInfo {
    /// Whether the rule is compiled and enabled.
    pub fn is_active(&self) -> bool {
        self.status == RuleStatus::Active
    }
}

/// A file error: where and what. Displays as one line, `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.file,
            self.line,
            one_line(&self.message)
        )
    }
}

/// Messages quote names and values from the files, which may hold line breaks and other
/// control characters: escape them so a message stays one line and never reaches a
/// terminal as a control sequence.
pub fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

impl std::error::Error for LoadError {}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Info,
}

/// A load-time remark that is not an error: an unsupported field (the rule is skipped), a
/// deprecated key, an unresolvable host name, an unknown field in an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    /// The rule concerned, if any.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        write!(
            f,
            "{}:{}: {sev}: {}",
            self.file,
            self.line,
            one_line(&self.message)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_case_insensitively() {
        assert_eq!(Priority::parse("warning"), Some(Priority::Warning));
        assert_eq!(Priority::parse("INFO"), Some(Priority::Informational));
        assert_eq!(
            Priority::parse("Informational"),
            Some(Priority::Informational)
        );
        assert_eq!(Priority::parse("EMERGENCY"), Some(Priority::Emergency));
        assert_eq!(Priority::parse("loud"), None);
        assert_eq!(Priority::Debug.level(), 7);
    }

    #[test]
    fn mitre_from_tags() {
        let tags: Vec<String> = [
            "maturity_stable",
            "mitre_execution",
            "T1059.004",
            "TA0003",
            "T12",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m = Mitre::from_tags(&tags);
        assert_eq!(m.tactics, ["execution"]);
        assert_eq!(m.techniques, ["T1059.004", "TA0003"]);
    }

    #[test]
    fn errno_names() {
        assert_eq!(fields::errno_name(2), "ENOENT");
        assert_eq!(fields::errno_name(13), "EACCES");
        assert_eq!(fields::errno_name(115), "EINPROGRESS");
        assert_eq!(fields::errno_name(111), "ECONNREFUSED");
        assert_eq!(fields::errno_name(9999), "EUNKNOWN");
    }
}
