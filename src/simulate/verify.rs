//! Verification, pure: which alerts belong to which scenario run, and what each scenario's
//! result is. No I/O and no clock: the caller passes the alerts it received (with the wall
//! time each arrived) and the current time.
//!
//! An alert belongs to a scenario run when, in this order:
//!
//! 1. its `container.id` is the run's container (container mode: the container's 64-hex id
//!    is derived from the correlation id, so it names exactly one run);
//! 2. an appended `proc.env[…]` output field (the sensor's `--append-output-field
//!    proc.env[SECMON_SIM_ID]`, Falco's `append_output`) holds the run's correlation id;
//! 3. the correlation id appears in the alert's output or in any string output field: every
//!    scenario puts it on its command line (`proc.cmdline`) or in the paths it touches
//!    (`fd.name`, link paths, mount sources).
//!
//! Correlation ids (`secmon-sim-<12 hex>-<nnn>`) are random per run, so alerts of other runs,
//! of other programs and of earlier sessions never match.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::catalogue::{RulesetKind, Scenario};
use crate::rules::Priority;
use crate::sensor::alert::Alert;

/// The environment variable that carries the correlation id.
pub const SIM_ID_ENV: &str = "SECMON_SIM_ID";
/// How every correlation id starts.
pub const SIM_ID_PREFIX: &str = "secmon-sim-";

/// The correlation id of the `index`th scenario of run `run_id`.
pub fn sim_id(run_id: &str, index: usize) -> String {
    format!("{SIM_ID_PREFIX}{run_id}-{index:03}")
}

/// The container a correlation id names in container mode: its 64-hex id and its pod's UID,
/// both derived (SHA-256) from the id, so `container.id` identifies the run.
pub fn container_identity(sim_id: &str) -> (String, String) {
    let hex = |parts: &[&str]| -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    };
    let id = hex(&[sim_id]);
    let u = hex(&[sim_id, "/pod"]);
    let pod_uid = format!(
        "{}-{}-{}-{}-{}",
        &u[0..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..32]
    );
    (id, pod_uid)
}

/// How a scenario run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum RunOutcome {
    Ran,
    Skipped(String),
    Error(String),
}

/// One scenario, run once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioRun {
    pub scenario: &'static Scenario,
    pub sim_id: String,
    /// The container's 64-hex id: in container mode derived from the correlation id; in
    /// a cluster the Job pod's container, which several runs share with `--all-nodes`.
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    /// The node it ran on, in a cluster.
    pub node: Option<String>,
    /// Wall clock, ns since the epoch.
    pub started_ns: u64,
    pub ended_ns: u64,
    pub outcome: RunOutcome,
}

/// An alert as the verifier received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub alert: Alert,
    /// Wall clock when it was read, ns since the epoch.
    pub received_ns: u64,
}

/// Whether `id` occurs in `text` as a whole id (not as the start of a longer one).
fn mentions(text: &str, id: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find(id) {
        let end = from + i + id.len();
        if !text[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return true;
        }
        from = end;
    }
    false
}

/// Whether `text` occurs in the alert's output or in any of its string output fields.
pub fn carries(alert: &Alert, text: &str) -> bool {
    alert.output.contains(text)
        || alert
            .output_fields
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.contains(text)))
}

/// The run (index into `runs`) an alert belongs to, if any.
pub fn attribute(alert: &Alert, runs: &[ScenarioRun]) -> Option<usize> {
    if let Some(cid) = alert.field_str("container.id").filter(|c| c.len() >= 12) {
        let owners: Vec<usize> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.container_id
                    .as_deref()
                    .is_some_and(|full| full.starts_with(cid))
            })
            .map(|(i, _)| i)
            .collect();
        match owners[..] {
            [i] => return Some(i),
            // One container ran several scenarios one after another (a Job pod with
            // `--all-nodes`): the event's time, on the same node's clock, picks the run.
            [_, _, ..] => {
                if let Some(t) = alert.time_ns()
                    && let Some(&i) = owners
                        .iter()
                        .find(|&&i| runs[i].started_ns <= t && t <= runs[i].ended_ns)
                {
                    return Some(i);
                }
            }
            [] => {}
        }
    }
    for (k, v) in &alert.output_fields {
        if k.starts_with("proc.env")
            && let Some(v) = v.as_str()
            && let Some(i) = runs.iter().position(|r| mentions(v, &r.sim_id))
        {
            return Some(i);
        }
    }
    if !carries(alert, SIM_ID_PREFIX) {
        return None;
    }
    runs.iter().position(|r| {
        mentions(&alert.output, &r.sim_id)
            || alert
                .output_fields
                .values()
                .any(|v| v.as_str().is_some_and(|s| mentions(s, &r.sim_id)))
    })
}

/// A scenario's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Every expected rule reported it.
    Detected,
    /// At least one expected rule did not report it in time.
    Missed,
    /// Its context is missing here.
    Skipped,
    /// It could not be run.
    Error,
    /// Run without verification (`simulate run`).
    Ran,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Detected => "DETECTED",
            Status::Missed => "MISSED",
            Status::Skipped => "SKIPPED",
            Status::Error => "ERROR",
            Status::Ran => "RAN",
        }
    }
}

/// One expected rule of a scenario and whether it reported the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleCheck {
    pub rule: String,
    pub detected: bool,
    /// From the event's time to the alert in the verifier's hands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

/// Alerts of a rule the scenario should not trigger, attributed to its run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unexpected {
    pub rule: String,
    pub priority: Priority,
    pub count: usize,
    /// The first such alert's output.
    pub output: String,
}

/// A scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub scenario: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tactic: &'static str,
    pub technique: &'static str,
    pub sim_id: String,
    /// The node it ran on, in a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The container's id (12 hex, as alerts carry it), in container mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub duration_ms: f64,
    pub expected: Vec<RuleCheck>,
    pub unexpected: Vec<Unexpected>,
}

impl ScenarioResult {
    /// The slowest expected rule's latency, for a detected scenario.
    pub fn latency_ms(&self) -> Option<f64> {
        self.expected
            .iter()
            .filter_map(|c| c.latency_ms)
            .reduce(f64::max)
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Whether the run no longer needs to wait: every scenario that ran has all its expected
/// rules, or `timeout` has passed since it ended.
pub fn settled(
    runs: &[ScenarioRun],
    received: &[Received],
    ruleset: RulesetKind,
    now_ns: u64,
    timeout: Duration,
) -> bool {
    let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let mut seen: Vec<Vec<&str>> = vec![Vec::new(); runs.len()];
    for r in received {
        if let Some(i) = attribute(&r.alert, runs) {
            seen[i].push(&r.alert.rule);
        }
    }
    runs.iter().zip(seen).all(|(run, seen)| {
        run.outcome != RunOutcome::Ran
            || run
                .scenario
                .rules(ruleset)
                .iter()
                .all(|rule| seen.contains(rule))
            || now_ns >= run.ended_ns.saturating_add(timeout_ns)
    })
}

/// Each run's result. With `verify` false (`simulate run`), ran scenarios are RAN and no
/// alert is looked at.
pub fn evaluate(
    runs: &[ScenarioRun],
    received: &[Received],
    ruleset: RulesetKind,
    verify: bool,
) -> Vec<ScenarioResult> {
    let mut by_run: Vec<Vec<&Received>> = vec![Vec::new(); runs.len()];
    if verify {
        for r in received {
            if let Some(i) = attribute(&r.alert, runs) {
                by_run[i].push(r);
            }
        }
    }
    runs.iter()
        .zip(by_run)
        .map(|(run, alerts)| {
            let expected_rules = run.scenario.rules(ruleset);
            let mut expected: Vec<RuleCheck> = expected_rules
                .iter()
                .map(|rule| {
                    let first = alerts.iter().find(|a| a.alert.rule == *rule);
                    RuleCheck {
                        rule: rule.to_string(),
                        detected: first.is_some(),
                        latency_ms: first.map(|a| {
                            let at = a.alert.time_ns().unwrap_or(run.started_ns);
                            ms(a.received_ns.saturating_sub(at))
                        }),
                        priority: first.map(|a| a.alert.priority),
                    }
                })
                .collect();
            let mut unexpected: BTreeMap<&str, Unexpected> = BTreeMap::new();
            for a in &alerts {
                if expected_rules.contains(&a.alert.rule.as_str()) {
                    continue;
                }
                unexpected
                    .entry(&a.alert.rule)
                    .and_modify(|u| u.count += 1)
                    .or_insert_with(|| Unexpected {
                        rule: a.alert.rule.clone(),
                        priority: a.alert.priority,
                        count: 1,
                        output: a.alert.output.clone(),
                    });
            }
            let (status, reason) = match &run.outcome {
                RunOutcome::Skipped(why) => (Status::Skipped, Some(why.clone())),
                RunOutcome::Error(why) => (Status::Error, Some(why.clone())),
                RunOutcome::Ran if !verify => (Status::Ran, None),
                RunOutcome::Ran if expected.iter().all(|c| c.detected) => (Status::Detected, None),
                RunOutcome::Ran => {
                    let missing: Vec<&str> = expected
                        .iter()
                        .filter(|c| !c.detected)
                        .map(|c| c.rule.as_str())
                        .collect();
                    (
                        Status::Missed,
                        Some(format!("no alert from: {}", missing.join(", "))),
                    )
                }
            };
            if !verify {
                expected.iter_mut().for_each(|c| c.latency_ms = None);
            }
            ScenarioResult {
                scenario: run.scenario.name,
                status,
                reason,
                tactic: run.scenario.tactic,
                technique: run.scenario.technique,
                sim_id: run.sim_id.clone(),
                node: run.node.clone(),
                container_id: run
                    .container_id
                    .as_ref()
                    .filter(|_| !matches!(run.outcome, RunOutcome::Skipped(_)))
                    .map(|c| c[..12.min(c.len())].to_string()),
                duration_ms: ms(run.ended_ns.saturating_sub(run.started_ns)),
                expected,
                unexpected: unexpected.into_values().collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::catalogue::find;

    fn run(name: &str, index: usize, container: bool) -> ScenarioRun {
        let sim = sim_id("0123456789ab", index);
        let (cid, uid) = container_identity(&sim);
        ScenarioRun {
            scenario: find(name).unwrap(),
            sim_id: sim,
            container_id: container.then_some(cid),
            pod_uid: container.then_some(uid),
            node: None,
            started_ns: 1_000_000_000,
            ended_ns: 1_100_000_000,
            outcome: RunOutcome::Ran,
        }
    }

    fn alert(rule: &str, fields: &str, output: &str, time: &str) -> Alert {
        Alert::from_json(&format!(
            r#"{{"rule":"{rule}","priority":"Warning","time":"{time}","output":"{output}","output_fields":{fields}}}"#
        ))
        .unwrap()
    }

    const T: &str = "1970-01-01T00:00:01.050000000Z"; // 1.05 s

    #[test]
    fn ids_are_stable_and_container_shaped() {
        assert_eq!(sim_id("abc", 7), "secmon-sim-abc-007");
        let (id, uid) = container_identity("secmon-sim-abc-007");
        assert_eq!(id.len(), 64);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(uid.len(), 36);
        assert_eq!(container_identity("secmon-sim-abc-007").0, id);
        assert_ne!(container_identity("secmon-sim-abc-008").0, id);
    }

    #[test]
    fn attribution_by_container_env_and_marker() {
        let runs = vec![
            run("packet-socket", 1, true),
            run("credential-file-read", 2, false),
            run("bulk-data-destruction", 3, false),
        ];
        let short = &runs[0].container_id.as_ref().unwrap()[..12];
        let by_container = alert(
            "Packet socket created in container",
            &format!(r#"{{"container.id":"{short}"}}"#),
            "x",
            T,
        );
        assert_eq!(attribute(&by_container, &runs), Some(0));
        let by_env = alert(
            "Credential file read by untrusted process",
            r#"{"container.id":"host","proc.env[SECMON_SIM_ID]":"secmon-sim-0123456789ab-002"}"#,
            "x",
            T,
        );
        assert_eq!(attribute(&by_env, &runs), Some(1));
        let by_cmdline = alert(
            "Bulk data destruction",
            r#"{"proc.cmdline":"shred -u /tmp/secmon-sim-0123456789ab-003/data"}"#,
            "x",
            T,
        );
        assert_eq!(attribute(&by_cmdline, &runs), Some(2));
        let in_output = alert("R", "{}", "cmdline=x secmon-sim-0123456789ab-003 y", T);
        assert_eq!(attribute(&in_output, &runs), Some(2));
        // other runs, longer ids, other containers, nothing at all
        for other in [
            alert(
                "R",
                r#"{"proc.cmdline":"x secmon-sim-ffffffffffff-003"}"#,
                "x",
                T,
            ),
            alert(
                "R",
                r#"{"proc.cmdline":"x secmon-sim-0123456789ab-0031"}"#,
                "x",
                T,
            ),
            alert("R", r#"{"container.id":"3ad7b26ded6d"}"#, "x", T),
            alert(
                "R",
                r#"{"container.id":"host","proc.env[SECMON_SIM_ID]":null}"#,
                "x",
                T,
            ),
            alert("R", "{}", "x", T),
        ] {
            assert_eq!(attribute(&other, &runs), None, "{other:?}");
        }
    }

    #[test]
    fn a_shared_container_is_split_by_the_event_time() {
        // One Job pod ran two scenarios one after another (--all-nodes): its container id
        // is on both runs, and the alert's time says which one it was.
        let pod = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";
        let mut runs = vec![
            run("ptrace-attach", 1, false),
            run("crypto-miner", 2, false),
        ];
        for (i, r) in runs.iter_mut().enumerate() {
            r.container_id = Some(pod.to_string());
            r.node = Some("worker-1".into());
            r.started_ns = 1_000_000_000 + i as u64 * 1_000_000_000;
            r.ended_ns = r.started_ns + 500_000_000;
        }
        let at = |t: &str| {
            alert(
                "R",
                r#"{"container.id":"9f8e7d6c5b4a"}"#,
                "x",
                &format!("1970-01-01T00:00:0{t}Z"),
            )
        };
        assert_eq!(attribute(&at("1.2"), &runs), Some(0));
        assert_eq!(attribute(&at("2.3"), &runs), Some(1));
        // Between the two: neither, unless the id is in the alert.
        assert_eq!(attribute(&at("1.7"), &runs), None);
        let marked = alert(
            "R",
            r#"{"container.id":"9f8e7d6c5b4a","proc.cmdline":"x secmon-sim-0123456789ab-002"}"#,
            "x",
            "1970-01-01T00:00:01.7Z",
        );
        assert_eq!(attribute(&marked, &runs), Some(1));
        let res = evaluate(&runs, &[], RulesetKind::Default, true);
        assert_eq!(res[1].node.as_deref(), Some("worker-1"));
    }

    #[test]
    fn results_detected_missed_unexpected_skipped_error() {
        let mut runs = vec![
            run("credential-file-read", 1, false),
            run("bulk-data-destruction", 2, false),
            run("ptrace-attach", 3, false),
            run("crypto-miner", 4, false),
        ];
        runs[2].outcome = RunOutcome::Skipped("needs root".into());
        runs[3].outcome = RunOutcome::Error("boom".into());
        let mark = |i: usize| format!(r#"{{"proc.cmdline":"x secmon-sim-0123456789ab-00{i}"}}"#);
        let received = vec![
            Received {
                alert: alert(
                    "Credential file read by untrusted process",
                    &mark(1),
                    "x",
                    T,
                ),
                received_ns: 1_080_000_000,
            },
            Received {
                alert: alert("Write below /etc", &mark(1), "x", T),
                received_ns: 1_090_000_000,
            },
            Received {
                alert: alert("Write below /etc", &mark(1), "x", T),
                received_ns: 1_090_000_000,
            },
            Received {
                alert: alert("Unrelated", "{}", "x", T),
                received_ns: 1_090_000_000,
            },
        ];
        let d = RulesetKind::Default;
        let res = evaluate(&runs, &received, d, true);
        assert_eq!(res[0].status, Status::Detected);
        let lat = res[0].latency_ms().unwrap();
        assert!((lat - 30.0).abs() < 1e-6, "{lat}");
        assert_eq!(res[0].unexpected.len(), 1);
        assert_eq!(res[0].unexpected[0].count, 2);
        assert_eq!(res[0].unexpected[0].rule, "Write below /etc");
        assert_eq!(res[1].status, Status::Missed);
        assert_eq!(
            res[1].reason.as_deref(),
            Some("no alert from: Bulk data destruction")
        );
        assert_eq!(res[2].status, Status::Skipped);
        assert_eq!(res[2].reason.as_deref(), Some("needs root"));
        assert_eq!(res[3].status, Status::Error);
        assert!((res[0].duration_ms - 100.0).abs() < 1e-6);
        // without verification nothing is attributed
        let plain = evaluate(&runs, &received, d, false);
        assert_eq!(plain[0].status, Status::Ran);
        assert!(plain[0].unexpected.is_empty() && !plain[0].expected[0].detected);
        // Falco's names for the same scenario
        let falco = evaluate(&runs[..1], &received, RulesetKind::FalcoStable, true);
        assert_eq!(falco[0].expected[0].rule, "Read sensitive file untrusted");
        assert_eq!(falco[0].status, Status::Missed);
    }

    #[test]
    fn settles_when_all_detected_or_timed_out() {
        let runs = vec![run("credential-file-read", 1, false)];
        let d = RulesetKind::Default;
        let t = Duration::from_secs(10);
        assert!(!settled(&runs, &[], d, 2_000_000_000, t));
        assert!(settled(&runs, &[], d, 11_100_000_000, t));
        let got = Received {
            alert: alert(
                "Credential file read by untrusted process",
                r#"{"proc.cmdline":"x secmon-sim-0123456789ab-001"}"#,
                "x",
                T,
            ),
            received_ns: 1_080_000_000,
        };
        assert!(settled(&runs, &[got], d, 2_000_000_000, t));
        let mut skipped = runs.clone();
        skipped[0].outcome = RunOutcome::Skipped("x".into());
        assert!(settled(&skipped, &[], d, 0, t));
    }
}
