//! Detection coverage of a verified run, pure: scenarios detected out of those run, rules
//! covered, and a MITRE ATT&CK for Containers matrix (tactic × technique) whose cells are
//! covered (every scenario for it detected), missed (one was not) or not simulated.
//!
//! The matrix holds the techniques of ATT&CK for Containers and, marked as Enterprise
//! techniques, the other techniques the scenarios exercise (a shell's T1059, ptrace's
//! T1055, …), each under the tactic the scenario's rule is tagged with. Sub-techniques
//! (T1552.001) count for their technique's cell (T1552).

use std::collections::BTreeSet;

use serde::Serialize;

use super::catalogue::{RulesetKind, SCENARIOS, TACTICS, tactic_name};
use super::verify::{ScenarioResult, Status};

/// ATT&CK for Containers: (tactic tag, technique, name), in matrix order.
pub const CONTAINERS_MATRIX: &[(&str, &str, &str)] = &[
    (
        "mitre_initial_access",
        "T1190",
        "Exploit Public-Facing Application",
    ),
    ("mitre_initial_access", "T1133", "External Remote Services"),
    ("mitre_initial_access", "T1078", "Valid Accounts"),
    (
        "mitre_execution",
        "T1609",
        "Container Administration Command",
    ),
    ("mitre_execution", "T1610", "Deploy Container"),
    ("mitre_execution", "T1053", "Scheduled Task/Job"),
    ("mitre_execution", "T1204", "User Execution"),
    ("mitre_persistence", "T1098", "Account Manipulation"),
    ("mitre_persistence", "T1136", "Create Account"),
    (
        "mitre_persistence",
        "T1543",
        "Create or Modify System Process",
    ),
    ("mitre_persistence", "T1133", "External Remote Services"),
    ("mitre_persistence", "T1525", "Implant Internal Image"),
    ("mitre_persistence", "T1053", "Scheduled Task/Job"),
    ("mitre_persistence", "T1078", "Valid Accounts"),
    (
        "mitre_privilege_escalation",
        "T1098",
        "Account Manipulation",
    ),
    (
        "mitre_privilege_escalation",
        "T1543",
        "Create or Modify System Process",
    ),
    ("mitre_privilege_escalation", "T1611", "Escape to Host"),
    (
        "mitre_privilege_escalation",
        "T1068",
        "Exploitation for Privilege Escalation",
    ),
    ("mitre_privilege_escalation", "T1053", "Scheduled Task/Job"),
    ("mitre_privilege_escalation", "T1078", "Valid Accounts"),
    ("mitre_defense_evasion", "T1612", "Build Image on Host"),
    ("mitre_defense_evasion", "T1610", "Deploy Container"),
    ("mitre_defense_evasion", "T1562", "Impair Defenses"),
    ("mitre_defense_evasion", "T1070", "Indicator Removal"),
    ("mitre_defense_evasion", "T1036", "Masquerading"),
    (
        "mitre_defense_evasion",
        "T1550",
        "Use Alternate Authentication Material",
    ),
    ("mitre_defense_evasion", "T1078", "Valid Accounts"),
    ("mitre_credential_access", "T1110", "Brute Force"),
    (
        "mitre_credential_access",
        "T1528",
        "Steal Application Access Token",
    ),
    ("mitre_credential_access", "T1552", "Unsecured Credentials"),
    (
        "mitre_discovery",
        "T1613",
        "Container and Resource Discovery",
    ),
    ("mitre_discovery", "T1046", "Network Service Discovery"),
    ("mitre_discovery", "T1069", "Permission Groups Discovery"),
    (
        "mitre_lateral_movement",
        "T1550",
        "Use Alternate Authentication Material",
    ),
    ("mitre_impact", "T1485", "Data Destruction"),
    ("mitre_impact", "T1499", "Endpoint Denial of Service"),
    ("mitre_impact", "T1490", "Inhibit System Recovery"),
    ("mitre_impact", "T1496", "Resource Hijacking"),
];

/// Names of the Enterprise techniques the scenarios use that the Containers matrix lacks.
pub const ENTERPRISE_TECHNIQUES: &[(&str, &str)] = &[
    ("T1003", "OS Credential Dumping"),
    ("T1055", "Process Injection"),
    ("T1059", "Command and Scripting Interpreter"),
    ("T1547", "Boot or Logon Autostart Execution"),
    ("T1548", "Abuse Elevation Control Mechanism"),
    ("T1555", "Credentials from Password Stores"),
    ("T1557", "Adversary-in-the-Middle"),
    ("T1571", "Non-Standard Port"),
    ("T1574", "Hijack Execution Flow"),
    ("T1620", "Reflective Code Loading"),
    ("T1622", "Debugger Evasion"),
];

/// `T1552` for `T1552.001`.
pub fn parent_technique(t: &str) -> &str {
    t.split('.').next().unwrap_or(t)
}

/// A technique's name, from either table.
pub fn technique_name(t: &str) -> Option<&'static str> {
    let p = parent_technique(t);
    CONTAINERS_MATRIX
        .iter()
        .find(|(_, id, _)| *id == p)
        .map(|(_, _, n)| *n)
        .or_else(|| {
            ENTERPRISE_TECHNIQUES
                .iter()
                .find(|(id, _)| *id == p)
                .map(|(_, n)| *n)
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    Covered,
    Missed,
    NotSimulated,
}

impl CellStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::Covered => "covered",
            CellStatus::Missed => "missed",
            CellStatus::NotSimulated => "not simulated",
        }
    }
}

/// One technique under one tactic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub technique: String,
    pub name: String,
    /// In ATT&CK for Containers (else an Enterprise technique a scenario exercises).
    pub containers_matrix: bool,
    pub status: CellStatus,
    /// The scenarios that were verified for it (detected or missed), `name (T1552.001)`.
    pub scenarios: Vec<String>,
}

/// One tactic's column of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TacticColumn {
    pub tactic: &'static str,
    pub cells: Vec<Cell>,
}

/// The coverage of one verified run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub ruleset: RulesetKind,
    /// Scenarios that ran (detected or missed; not skipped or errored).
    pub scenarios_run: usize,
    pub scenarios_detected: usize,
    pub scenarios_skipped: usize,
    /// Distinct rules the run expected, and those that reported.
    pub rules_expected: usize,
    pub rules_detected: usize,
    /// Distinct rules of the ruleset the catalogue has a scenario for.
    pub rules_in_catalogue: usize,
    pub missed_rules: Vec<String>,
    pub matrix: Vec<TacticColumn>,
}

/// The coverage of `results` (a verified run against `ruleset`).
pub fn coverage(results: &[ScenarioResult], ruleset: RulesetKind) -> Coverage {
    let verified: Vec<&ScenarioResult> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Detected | Status::Missed))
        .collect();
    let mut expected = BTreeSet::new();
    let mut detected = BTreeSet::new();
    for r in &verified {
        for c in &r.expected {
            expected.insert(c.rule.clone());
            if c.detected {
                detected.insert(c.rule.clone());
            }
        }
    }
    let in_catalogue: BTreeSet<&str> = SCENARIOS
        .iter()
        .flat_map(|s| s.rules(ruleset).iter().copied())
        .collect();

    let mut matrix = Vec::new();
    for (tactic, _) in TACTICS {
        let mut cells: Vec<Cell> = Vec::new();
        let push = |id: &str, name: &str, containers: bool, cells: &mut Vec<Cell>| {
            if !cells.iter().any(|c| c.technique == id) {
                cells.push(Cell {
                    technique: id.to_string(),
                    name: name.to_string(),
                    containers_matrix: containers,
                    status: CellStatus::NotSimulated,
                    scenarios: Vec::new(),
                });
            }
        };
        for (t, id, name) in CONTAINERS_MATRIX {
            if t == tactic {
                push(id, name, true, &mut cells);
            }
        }
        for r in &verified {
            if r.tactic != *tactic {
                continue;
            }
            let id = parent_technique(r.technique);
            push(id, technique_name(id).unwrap_or(id), false, &mut cells);
            if let Some(cell) = cells.iter_mut().find(|c| c.technique == id) {
                let entry = format!("{} ({})", r.scenario, r.technique);
                // With --all-nodes a scenario runs once per node: listed once.
                if !cell.scenarios.contains(&entry) {
                    cell.scenarios.push(entry);
                }
                cell.status = match (cell.status, r.status) {
                    (CellStatus::Missed, _) | (_, Status::Missed) => CellStatus::Missed,
                    _ => CellStatus::Covered,
                };
            }
        }
        if !cells.is_empty() {
            matrix.push(TacticColumn {
                tactic: tactic_name(tactic),
                cells,
            });
        }
    }
    Coverage {
        ruleset,
        scenarios_run: verified.len(),
        scenarios_detected: verified
            .iter()
            .filter(|r| r.status == Status::Detected)
            .count(),
        scenarios_skipped: results
            .iter()
            .filter(|r| r.status == Status::Skipped)
            .count(),
        rules_expected: expected.len(),
        rules_detected: detected.len(),
        rules_in_catalogue: in_catalogue.len(),
        missed_rules: expected.difference(&detected).cloned().collect(),
        matrix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::verify::RuleCheck;

    fn result(name: &str, status: Status) -> ScenarioResult {
        let s = crate::simulate::catalogue::find(name).unwrap();
        ScenarioResult {
            scenario: s.name,
            status,
            reason: None,
            tactic: s.tactic,
            technique: s.technique,
            sim_id: "x".into(),
            node: None,
            container_id: None,
            duration_ms: 1.0,
            expected: s
                .default_rules
                .iter()
                .map(|r| RuleCheck {
                    rule: r.to_string(),
                    detected: status == Status::Detected,
                    latency_ms: None,
                    priority: None,
                })
                .collect(),
            unexpected: vec![],
        }
    }

    fn cell<'a>(c: &'a Coverage, tactic: &str, id: &str) -> &'a Cell {
        c.matrix
            .iter()
            .find(|t| t.tactic == tactic)
            .and_then(|t| t.cells.iter().find(|c| c.technique == id))
            .unwrap_or_else(|| panic!("{tactic} {id}"))
    }

    #[test]
    fn cells_follow_the_scenarios() {
        let results = vec![
            result("path-traversal-read", Status::Detected),
            result("search-cloud-credentials", Status::Detected),
            result("search-private-keys", Status::Missed),
            result("release-agent-escape", Status::Detected),
            result("ptrace-attach", Status::Skipped),
        ];
        let c = coverage(&results, RulesetKind::Default);
        assert_eq!(
            (c.scenarios_run, c.scenarios_detected, c.scenarios_skipped),
            (4, 3, 1)
        );
        assert_eq!((c.rules_expected, c.rules_detected), (4, 3));
        assert_eq!(c.missed_rules, ["Search for private keys"]);
        assert_eq!(c.rules_in_catalogue, 33);
        // T1552.001 twice and T1552.004 once, one missed: the cell is missed
        let unsecured = cell(&c, "Credential Access", "T1552");
        assert_eq!(unsecured.status, CellStatus::Missed);
        assert_eq!(unsecured.scenarios.len(), 3);
        assert!(unsecured.containers_matrix);
        assert_eq!(
            cell(&c, "Privilege Escalation", "T1611").status,
            CellStatus::Covered
        );
        assert_eq!(cell(&c, "Impact", "T1496").status, CellStatus::NotSimulated);
        // skipped scenarios are not simulated; Enterprise techniques appear only when run
        assert!(
            c.matrix
                .iter()
                .flat_map(|t| &t.cells)
                .all(|c| c.technique != "T1055")
        );
        assert_eq!(technique_name("T1055.008"), Some("Process Injection"));
        assert_eq!(parent_technique("T1055.008"), "T1055");
    }

    #[test]
    fn every_scenario_technique_has_a_name() {
        for s in SCENARIOS {
            assert!(
                technique_name(s.technique).is_some(),
                "{}: {}",
                s.name,
                s.technique
            );
        }
    }
}
