//! `simulate --in-cluster`, the pure half: which Job pods run which scenarios on which
//! node with which privileges ([`plan`]), the Job each becomes ([`job_manifest`]), what a
//! Job pod prints (`kubectl-secmon __sim-pod`: one [`StepRecord`] JSON line per scenario,
//! then a [`DONE_KIND`] line), and reading that back into scenario runs ([`gather`]).
//! The API calls are `simulate::incluster`'s.
//!
//! Least privilege: a pod runs as root in its own container (the scenarios act as an
//! intruder with root in a container would) with every capability dropped but the ones
//! its scenarios list ([`Scenario::caps`]), no privilege escalation, the runtime's default
//! seccomp profile, a read-only root filesystem (scratch space is a memory-backed
//! `emptyDir` at /tmp), no service account token, no host namespaces. A scenario that
//! needs a privileged container gets one only with `--allow-privileged`; otherwise it is
//! SKIPPED and no pod is made for it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalogue::{Need, RulesetKind, Scenario};
use super::verify::{RunOutcome, ScenarioRun, sim_id};
use crate::kube::pods::dns_label;

/// Where the Jobs run. Pod Security `privileged`: the scenarios do on purpose what the
/// baseline level forbids (capabilities such as SYS_ADMIN).
pub const NAMESPACE: &str = "secmon-sim";
/// `app.kubernetes.io/name` of every Job and pod.
pub const APP: &str = "secmon-sim";
/// Label on every Job and pod, with the run's id as value.
pub const RUN_LABEL: &str = "secmon.dev/sim-run";
/// The Job pod's container.
pub const CONTAINER: &str = "simulate";
/// `kind` of the line a Job pod prints per scenario.
pub const STEP_KIND: &str = "SimulationStep";
/// `kind` of the line a Job pod prints when it has run every scenario it was given.
pub const DONE_KIND: &str = "SimulationPodDone";
/// Where the pod's scratch space is (an `emptyDir`; the root filesystem is read-only).
pub const SCRATCH: &str = "/tmp";

/// One Job: its pod runs `runs` one after another on `node`.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPlan {
    pub job: String,
    pub node: String,
    /// (correlation id, scenario), in order.
    pub runs: Vec<(String, &'static Scenario)>,
    pub privileged: bool,
    /// Kubernetes capability names (`SYS_ADMIN`), sorted.
    pub capabilities: Vec<String>,
}

/// The capabilities a scenario's pod holds, by Kubernetes name (`SYS_ADMIN`): the ones
/// it lists.
pub fn capabilities(sc: &Scenario) -> Vec<String> {
    let mut caps: Vec<String> = sc
        .caps
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

fn needs_privileged(sc: &Scenario) -> bool {
    sc.needs.contains(&Need::Privileged)
}

/// Split the run into Jobs: one per scenario on `nodes[0]`, or with `all_nodes` one per
/// node that runs them all. Scenarios no rule of `ruleset` covers, and scenarios that need
/// a privileged pod without `allow_privileged`, are SKIPPED here (no pod is made for
/// them); they come back as runs. Correlation ids number the scenarios across nodes.
pub fn plan(
    scenarios: &[&'static Scenario],
    run_id: &str,
    nodes: &[String],
    all_nodes: bool,
    allow_privileged: bool,
    ruleset: RulesetKind,
) -> (Vec<PodPlan>, Vec<ScenarioRun>) {
    let mut pods = Vec::new();
    let mut skipped = Vec::new();
    let chosen: &[String] = if all_nodes {
        nodes
    } else {
        &nodes[..nodes.len().min(1)]
    };
    let mut index = 0usize;
    for node in chosen {
        let mut together: Vec<(String, &'static Scenario)> = Vec::new();
        for &sc in scenarios {
            index += 1;
            let id = sim_id(run_id, index);
            let why = if sc.rules(ruleset).is_empty() {
                Some(format!(
                    "no rule of the {} ruleset covers it",
                    ruleset.as_str()
                ))
            } else if needs_privileged(sc) && !allow_privileged {
                Some("needs a privileged pod: pass --allow-privileged to run it".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                skipped.push(ScenarioRun {
                    scenario: sc,
                    sim_id: id,
                    container_id: None,
                    pod_uid: None,
                    node: Some(node.clone()),
                    started_ns: 0,
                    ended_ns: 0,
                    outcome: RunOutcome::Skipped(why),
                });
            } else if all_nodes {
                together.push((id, sc));
            } else {
                pods.push(pod_plan(id.clone(), node, vec![(id, sc)]));
            }
        }
        if !together.is_empty() {
            let job = format!(
                "{}-{}",
                dns_label(&format!("secmon-sim-{run_id}"), 30),
                dns_label(node, 32)
            );
            pods.push(pod_plan(job, node, together));
        }
    }
    (pods, skipped)
}

fn pod_plan(job: String, node: &str, runs: Vec<(String, &'static Scenario)>) -> PodPlan {
    let mut caps: Vec<String> = runs.iter().flat_map(|(_, sc)| capabilities(sc)).collect();
    caps.sort();
    caps.dedup();
    PodPlan {
        job: dns_label(&job, 63),
        node: node.to_string(),
        privileged: runs.iter().any(|(_, sc)| needs_privileged(sc)),
        runs,
        capabilities: caps,
    }
}

/// What every Job of a run shares.
#[derive(Debug, Clone)]
pub struct JobSettings<'a> {
    pub run_id: &'a str,
    pub image: &'a str,
    pub ruleset: RulesetKind,
    /// The pod's whole life: starting, then every scenario; the Job's active deadline.
    pub deadline_seconds: u64,
    /// Longest one scenario may take in the pod.
    pub scenario_timeout_seconds: u64,
}

fn labels(run_id: &str) -> Value {
    json!({
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/managed-by": crate::deploy::MANAGED_BY,
        RUN_LABEL: run_id,
    })
}

/// The namespace the Jobs run in.
pub fn namespace_manifest() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "app.kubernetes.io/managed-by": crate::deploy::MANAGED_BY,
                "pod-security.kubernetes.io/enforce": "privileged",
                "pod-security.kubernetes.io/warn": "privileged",
                "pod-security.kubernetes.io/audit": "privileged",
            },
        },
    })
}

/// The Job for one pod plan: pinned to its node, never retried or restarted, removed by
/// the cluster 10 minutes after it finishes should this program not get to it.
pub fn job_manifest(p: &PodPlan, s: &JobSettings) -> Value {
    let mut command = vec![
        "kubectl-secmon".to_string(),
        "__sim-pod".to_string(),
        "--run-id".to_string(),
        s.run_id.to_string(),
        "--ruleset".to_string(),
        s.ruleset.as_str().to_string(),
        "--scenario-timeout".to_string(),
        format!("{}s", s.scenario_timeout_seconds),
    ];
    command.extend(
        p.runs
            .iter()
            .map(|(id, sc)| format!("{}={}", id.rsplit('-').next().unwrap_or(id), sc.name)),
    );
    let mut security = json!({
        "privileged": p.privileged,
        "allowPrivilegeEscalation": p.privileged,
        "runAsUser": 0,
        "runAsNonRoot": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"], "add": p.capabilities},
    });
    if !p.privileged {
        security["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
    let scenarios: Vec<&str> = p.runs.iter().map(|(_, sc)| sc.name).collect();
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": p.job,
            "namespace": NAMESPACE,
            "labels": labels(s.run_id),
            "annotations": {"secmon.dev/scenarios": scenarios.join(",")},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": s.deadline_seconds.max(1),
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels(s.run_id)},
                "spec": {
                    "nodeName": p.node,
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 5,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": CONTAINER,
                        "image": s.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": command,
                        "securityContext": security,
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
                    }],
                    "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
                },
            },
        },
    })
}

/// What a Job pod prints for each scenario it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub kind: String,
    pub scenario: String,
    pub sim_id: String,
    /// Wall clock, ns since the epoch (the node's clock, which its sensor shares).
    pub started_ns: u64,
    pub ended_ns: u64,
    pub outcome: RunOutcome,
}

impl StepRecord {
    pub fn of(run: &ScenarioRun) -> StepRecord {
        StepRecord {
            kind: STEP_KIND.to_string(),
            scenario: run.scenario.name.to_string(),
            sim_id: run.sim_id.clone(),
            started_ns: run.started_ns,
            ended_ns: run.ended_ns,
            outcome: run.outcome.clone(),
        }
    }
}

/// The last non-empty line of a log, for messages.
fn last_line(log: &str) -> &str {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// One pod's scenario runs from its log. `container_id` is the pod's container (from its
/// status, `containerd://<id>` or bare); `failure` says why the pod did not finish, when
/// it did not. A scenario the log has no record for is an ERROR saying why: the failure,
/// or the end of the log. Lines that are not records (warnings) are passed over.
pub fn gather(
    p: &PodPlan,
    log: &str,
    container_id: Option<&str>,
    failure: Option<&str>,
) -> Vec<ScenarioRun> {
    let records: Vec<StepRecord> = log
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str::<StepRecord>(l.trim()).ok())
        .filter(|r| r.kind == STEP_KIND)
        .collect();
    let done = log
        .lines()
        .any(|l| serde_json::from_str::<Value>(l.trim()).is_ok_and(|v| v["kind"] == DONE_KIND));
    let container = container_id.map(|c| {
        c.rsplit_once("://")
            .map_or(c, |(_, id)| id)
            .to_ascii_lowercase()
    });
    p.runs
        .iter()
        .map(|(id, sc)| {
            let rec = records
                .iter()
                .find(|r| r.sim_id == *id && r.scenario == sc.name);
            let outcome = match (rec, failure) {
                (Some(r), _) => r.outcome.clone(),
                (None, Some(f)) => RunOutcome::Error(f.to_string()),
                (None, None) if done => {
                    RunOutcome::Error("the pod finished without running it".to_string())
                }
                (None, None) => RunOutcome::Error(match last_line(log) {
                    "" => "the pod's log is empty".to_string(),
                    l => format!("the pod printed no result for it; its log ends: {l}"),
                }),
            };
            ScenarioRun {
                scenario: sc,
                sim_id: id.clone(),
                container_id: container.clone().filter(|_| rec.is_some()),
                pod_uid: None,
                node: Some(p.node.clone()),
                started_ns: rec.map_or(0, |r| r.started_ns),
                ended_ns: rec.map_or(0, |r| r.ended_ns),
                outcome,
            }
        })
        .collect()
}

/// Parse a `__sim-pod` scenario argument, `N=NAME` (the N-th correlation id of the run).
pub fn parse_pod_step(s: &str) -> Result<(usize, &'static Scenario), String> {
    let (n, name) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: use INDEX=SCENARIO"))?;
    let index: usize = n
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not an index"))?;
    let sc = super::catalogue::find(name).ok_or_else(|| format!("no scenario named {name:?}"))?;
    Ok((index, sc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::catalogue::{SCENARIOS, find};

    fn all() -> Vec<&'static Scenario> {
        SCENARIOS.iter().collect()
    }

    fn nodes() -> Vec<String> {
        vec!["worker-1".into(), "Worker_2.example".into()]
    }

    #[test]
    fn one_job_per_scenario_on_one_node_privileged_ones_skipped() {
        let (pods, skipped) = plan(
            &all(),
            "0123456789ab",
            &nodes(),
            false,
            false,
            RulesetKind::Default,
        );
        assert!(
            pods.iter()
                .all(|p| p.node == "worker-1" && p.runs.len() == 1)
        );
        assert!(pods.iter().all(|p| !p.privileged));
        let names: Vec<&str> = skipped.iter().map(|r| r.scenario.name).collect();
        assert_eq!(names, ["debugfs-in-privileged-container"]);
        assert!(
            matches!(&skipped[0].outcome, RunOutcome::Skipped(w) if w.contains("--allow-privileged"))
        );
        assert_eq!(pods.len() + skipped.len(), SCENARIOS.len());
        // The Job is named after the scenario's correlation id, so alerts naming the pod
        // carry the id too.
        assert_eq!(pods[0].job, pods[0].runs[0].0);
        let ids: std::collections::BTreeSet<&str> = pods
            .iter()
            .flat_map(|p| p.runs.iter().map(|(id, _)| id.as_str()))
            .chain(skipped.iter().map(|r| r.sim_id.as_str()))
            .collect();
        assert_eq!(ids.len(), SCENARIOS.len(), "distinct ids");
        // Each pod holds only its scenario's capabilities.
        let pod = |name: &str| {
            pods.iter()
                .find(|p| p.runs[0].1.name == name)
                .expect("planned")
        };
        assert_eq!(pod("packet-socket").capabilities, ["NET_RAW"]);
        assert!(pod("credential-file-read").capabilities.is_empty());
        assert_eq!(
            pod("service-account-interactive").capabilities,
            ["SETGID", "SETUID"]
        );
        assert!(pod("kernel-module-load").capabilities.is_empty());
    }

    #[test]
    fn one_job_per_node_with_all_nodes_and_privileged_when_allowed() {
        let (pods, skipped) = plan(
            &all(),
            "0123456789ab",
            &nodes(),
            true,
            true,
            RulesetKind::Default,
        );
        assert!(skipped.is_empty());
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[1].job, "secmon-sim-0123456789ab-worker-2-example");
        assert!(
            pods.iter()
                .all(|p| p.privileged && p.runs.len() == SCENARIOS.len())
        );
        assert_ne!(pods[0].runs[0].0, pods[1].runs[0].0);
        // Falco's stable rules cover fewer scenarios: the rest are skipped, per node.
        let (_, skipped) = plan(
            &all(),
            "0123456789ab",
            &nodes(),
            true,
            true,
            RulesetKind::FalcoStable,
        );
        assert!(!skipped.is_empty());
        assert!(skipped.iter().all(|r| r.node.is_some()));
    }

    #[test]
    fn the_job_is_pinned_least_privileged_and_valid() {
        let sc = find("packet-socket").unwrap();
        let p = pod_plan(
            "secmon-sim-0123456789ab-014".into(),
            "worker-1",
            vec![("secmon-sim-0123456789ab-014".into(), sc)],
        );
        let s = JobSettings {
            run_id: "0123456789ab",
            image: "example.test/secmon:1",
            ruleset: RulesetKind::Default,
            deadline_seconds: 150,
            scenario_timeout_seconds: 30,
        };
        let j = job_manifest(&p, &s);
        let job: k8s_openapi::api::batch::v1::Job =
            serde_json::from_value(j.clone()).expect("a valid Job");
        let spec = job.spec.expect("spec");
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(150));
        let pod = spec.template.spec.expect("pod spec");
        assert_eq!(pod.node_name.as_deref(), Some("worker-1"));
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.host_pid, None);
        assert_eq!(pod.host_network, None);
        let c = &pod.containers[0];
        assert_eq!(
            c.command.as_ref().map(|c| c.join(" ")),
            Some("kubectl-secmon __sim-pod --run-id 0123456789ab --ruleset default --scenario-timeout 30s 014=packet-socket".to_string())
        );
        let sc = c.security_context.as_ref().expect("securityContext");
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        let caps = sc.capabilities.as_ref().expect("capabilities");
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(caps.add.as_deref(), Some(&["NET_RAW".to_string()][..]));
        assert_eq!(
            sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        assert_eq!(j["metadata"]["labels"][RUN_LABEL], "0123456789ab");
        let (idx, back) = parse_pod_step("014=packet-socket").unwrap();
        assert_eq!((idx, back.name), (14, "packet-socket"));
        assert!(parse_pod_step("packet-socket").is_err());
        assert!(parse_pod_step("x=packet-socket").is_err());
        assert!(parse_pod_step("1=nope").is_err());
    }

    fn two() -> PodPlan {
        pod_plan(
            "secmon-sim-0123456789ab-worker-1".into(),
            "worker-1",
            vec![
                (
                    "secmon-sim-0123456789ab-001".into(),
                    find("ptrace-attach").unwrap(),
                ),
                (
                    "secmon-sim-0123456789ab-002".into(),
                    find("crypto-miner").unwrap(),
                ),
            ],
        )
    }

    #[test]
    fn gathering_reads_the_records_and_names_what_is_missing() {
        let p = two();
        let log = concat!(
            "warning: something on stderr\n",
            r#"{"kind":"SimulationStep","scenario":"ptrace-attach","simId":"secmon-sim-0123456789ab-001","startedNs":10,"endedNs":20,"outcome":{"state":"ran"}}"#,
            "\n",
            r#"{"kind":"SimulationStep","scenario":"crypto-miner","simId":"secmon-sim-0123456789ab-002","startedNs":30,"endedNs":40,"outcome":{"state":"skipped","reason":"needs x"}}"#,
            "\n",
            r#"{"kind":"SimulationPodDone"}"#,
            "\n"
        );
        let runs = gather(&p, log, Some("containerd://ABCDEF0123456789"), None);
        assert_eq!(runs[0].outcome, RunOutcome::Ran);
        assert_eq!((runs[0].started_ns, runs[0].ended_ns), (10, 20));
        assert_eq!(runs[0].container_id.as_deref(), Some("abcdef0123456789"));
        assert_eq!(runs[0].node.as_deref(), Some("worker-1"));
        assert_eq!(runs[1].outcome, RunOutcome::Skipped("needs x".into()));

        // A pod that died half-way: the first ran, the second names the log's end.
        let cut = concat!(
            r#"{"kind":"SimulationStep","scenario":"ptrace-attach","simId":"secmon-sim-0123456789ab-001","startedNs":10,"endedNs":20,"outcome":{"state":"ran"}}"#,
            "\nexec format error\n"
        );
        let runs = gather(&p, cut, None, None);
        assert_eq!(runs[0].outcome, RunOutcome::Ran);
        assert!(
            matches!(&runs[1].outcome, RunOutcome::Error(e) if e.contains("its log ends: exec format error")),
            "{:?}",
            runs[1]
        );
        // A pod that never ran: every scenario carries the reason.
        let runs = gather(
            &p,
            "",
            None,
            Some("pod x did not start within 5s (phase Pending)"),
        );
        assert!(
            runs.iter()
                .all(|r| matches!(&r.outcome, RunOutcome::Error(e) if e.contains("did not start")))
        );
        assert!(
            matches!(&gather(&p, "", None, None)[0].outcome, RunOutcome::Error(e) if e.contains("empty"))
        );
        // Garbage and records of other runs are passed over.
        let other = r#"{"kind":"SimulationStep","scenario":"ptrace-attach","simId":"secmon-sim-ffffffffffff-001","startedNs":1,"endedNs":2,"outcome":{"state":"ran"}}"#;
        let runs = gather(
            &p,
            &format!("{other}\n{{not json\n\u{0}\u{1}\n"),
            None,
            None,
        );
        assert!(
            runs.iter()
                .all(|r| matches!(r.outcome, RunOutcome::Error(_)))
        );
    }
}
