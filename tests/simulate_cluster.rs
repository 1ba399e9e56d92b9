//! `kubectl secmon simulate --in-cluster`:
//!
//! - end to end (root): the real local control plane, a stand-in kubelet
//!   (tests/common/kubelet.rs) that runs the Jobs' pods on this host and serves pod logs
//!   through the API server, and a real sensor whose alerts are the sensor pod's log:
//!   `simulate verify --all --in-cluster`, per scenario and with `--all-nodes`;
//! - against the real local control plane (with its job controller): verification without
//!   a readable sensor stops in one line before making anything; `run --in-cluster` makes
//!   namespace `secmon-sim` and one least-privileged Job per scenario pinned to one node
//!   (or one per node with `--all-nodes`, privileged only with `--allow-privileged`), each
//!   Job's pod that never runs is an ERROR at its own deadline, and the Jobs, their pods
//!   and the namespace are removed afterwards;
//! - on this host as root: every scenario run by the Job pod's own command (`__sim-pod`)
//!   with exactly the capabilities its Job grants (setpriv: bounding set, no new
//!   privileges) runs, leaves nothing behind, and its printed result is gathered back as
//!   the command gathers it from a pod's log.
//!
//! Under CI (`CI=true`) missing prerequisites fail the tests; elsewhere they skip loudly.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{Cluster, apply_yaml};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use secmon::deploy::SensorKind;
use secmon::simulate::catalogue::{self, SCENARIOS};
use secmon::simulate::cluster;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");
const IMAGE: &str = "example.test/secmon:1";

/// The tests share one control plane and namespace `secmon-sim`: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn sim_selector() -> ListParams {
    ListParams::default().labels("app.kubernetes.io/name=secmon-sim")
}

async fn namespace_gone(client: &kube::Client) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    for _ in 0..120 {
        if matches!(api.get_opt(cluster::NAMESPACE).await, Ok(None)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Run the plugin against the cluster on a thread, so the test can look at what it makes.
fn spawn(cluster: &Cluster, args: &[&str]) -> std::thread::JoinHandle<std::process::Output> {
    let kc = cluster.kubeconfig.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        std::process::Command::new(BIN)
            .arg("--kubeconfig")
            .arg(&kc)
            .args(&args)
            .output()
            .expect("run kubectl-secmon")
    })
}

/// The sensor's namespace, as `install` makes it (Pod Security `privileged`).
fn sensor_namespace_yaml() -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n  labels:\n    pod-security.kubernetes.io/enforce: privileged\n",
        SensorKind::Secmon.namespace()
    )
}

/// A pod that the plugin takes for the sensor on `node` (its namespace, label, container).
fn sensor_pod_yaml(name: &str, node: &str) -> String {
    let kind = SensorKind::Secmon;
    let (label, value) = kind.selector().split_once('=').map_or_else(
        || panic!("selector"),
        |(k, v)| (k.to_string(), v.to_string()),
    );
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    {label}: {value}\nspec:\n  nodeName: {node}\n  containers:\n  - name: {c}\n    image: {IMAGE}\n",
        ns = kind.namespace(),
        c = kind.container()
    )
}

/// How many of the simulation's objects `api` lists (a failed LIST fails the test).
async fn count<K>(api: &Api<K>) -> usize
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&sim_selector()).await.expect("list").items.len()
}

/// The run's Jobs, once `want` exist (or the command has ended).
async fn jobs_when(
    client: &kube::Client,
    want: usize,
    child: &std::thread::JoinHandle<std::process::Output>,
) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), cluster::NAMESPACE);
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen = api
            .list(&sim_selector())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        if seen.len() >= want || child.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

fn command_of(job: &Job) -> Vec<String> {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.command.clone())
        .unwrap_or_default()
}

/// Everything the pod spec of a Job must hold, whatever the scenarios.
fn assert_pinned_and_contained(job: &Job, node: &str, privileged: bool) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod template");
    assert_eq!(pod.node_name.as_deref(), Some(node), "{name}");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.automount_service_account_token, Some(false), "{name}");
    assert_eq!(pod.host_pid, None, "{name}");
    assert_eq!(pod.host_network, None, "{name}");
    assert_eq!(pod.host_ipc, None, "{name}");
    assert_eq!(job.spec.as_ref().and_then(|s| s.backoff_limit), Some(0));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    assert_eq!(
        command_of(job).get(1).map(String::as_str),
        Some("__sim-pod")
    );
    let sc = c.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.privileged, Some(privileged), "{name}");
    assert_eq!(sc.allow_privilege_escalation, Some(privileged), "{name}");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(
        caps.drop.as_deref(),
        Some(&["ALL".to_string()][..]),
        "{name}"
    );
    if !privileged {
        assert_eq!(
            sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "{name}"
        );
    }
    // No host paths: the only volume is the scratch emptyDir.
    assert!(
        pod.volumes
            .iter()
            .flatten()
            .all(|v| v.host_path.is_none() && v.empty_dir.is_some()),
        "{name}"
    );
}

fn report_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_least_privileged_time_out_per_scenario_and_are_removed() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = cluster.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());

    // No sensor anywhere: verification says so in one line and makes nothing.
    let out = cluster.secmon(&["simulate", "verify", "--all", "--in-cluster"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no secmon sensor pod on any node"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(matches!(
        namespaces.get_opt(cluster::NAMESPACE).await,
        Ok(None)
    ));

    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-1\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: worker-2\n",
    )
    .await;

    // A sensor pod that never ran: its log cannot be followed, so nothing can be verified
    // and nothing is made.
    let kind = SensorKind::Secmon;
    apply_yaml(
        &client,
        &format!(
            "{}---\n{}",
            sensor_namespace_yaml(),
            sensor_pod_yaml("fake-sensor", "worker-1")
        ),
    )
    .await;
    let out = cluster.secmon(&["simulate", "verify", "--all", "--in-cluster"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read the logs of pod") && err.contains("worker-1"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(matches!(
        namespaces.get_opt(cluster::NAMESPACE).await,
        Ok(None)
    ));
    let sensor_pods: Api<Pod> = Api::namespaced(client.clone(), kind.namespace());
    sensor_pods
        .delete(
            "fake-sensor",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .expect("delete the fake sensor pod");

    // One Job per scenario on one node; the privileged scenario is skipped without a pod.
    let child = spawn(
        cluster,
        &[
            "simulate",
            "run",
            "--all",
            "--in-cluster",
            "--image",
            IMAGE,
            "--pod-timeout",
            "3s",
            "--scenario-timeout",
            "1s",
            "--parallel",
            "40",
            "-o",
            "json",
        ],
    );
    let per_scenario = SCENARIOS.len() - 1;
    let jobs = jobs_when(&client, per_scenario, &child).await;
    assert_eq!(jobs.len(), per_scenario, "one Job per scenario");
    let ns = namespaces
        .get(cluster::NAMESPACE)
        .await
        .expect("namespace secmon-sim");
    assert_eq!(
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-security.kubernetes.io/enforce"))
            .map(String::as_str),
        Some("privileged")
    );
    for job in &jobs {
        assert_pinned_and_contained(job, "worker-1", false);
        let names = job
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("secmon.dev/scenarios"))
            .cloned()
            .unwrap_or_default();
        let sc = catalogue::find(&names).expect("one scenario per Job");
        let added = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers[0].security_context.as_ref())
            .and_then(|s| s.capabilities.as_ref())
            .and_then(|c| c.add.clone())
            .unwrap_or_default();
        assert_eq!(added, cluster::capabilities(sc), "{names}");
        assert!(
            command_of(job)
                .last()
                .is_some_and(|s| s.ends_with(&format!("={names}"))),
            "{names}"
        );
    }
    // The job controller makes the pods from the template; they stay Pending.
    let pods: Api<Pod> = Api::namespaced(client.clone(), cluster::NAMESPACE);
    let mut made = 0;
    for _ in 0..60 {
        made = count(&pods).await;
        if made > 0 || child.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(made > 0, "the job controller made no pod");

    let out = child.join().expect("join");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report_of(&out);
    assert_eq!(report["kind"], "SimulationRun");
    assert_eq!(report["mode"], "in-cluster");
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), SCENARIOS.len(), "{report}");
    for r in &results {
        assert_eq!(r["node"], "worker-1", "{r}");
        let reason = r["reason"].as_str().unwrap_or("");
        if r["scenario"] == "debugfs-in-privileged-container" {
            assert_eq!(r["status"], "SKIPPED", "{r}");
            assert!(reason.contains("--allow-privileged"), "{r}");
        } else {
            assert_eq!(r["status"], "ERROR", "{r}");
            assert!(
                reason.contains("did not finish within 4s") && reason.contains("Pending"),
                "{r}"
            );
        }
    }
    // Removed: Jobs, pods, and the namespace this run made.
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), cluster::NAMESPACE);
    let left = count(&jobs_api).await;
    assert_eq!(left, 0, "Jobs left behind");
    let left = count(&pods).await;
    assert_eq!(left, 0, "pods left behind");
    // The namespace this run made is being removed; the next run starts at once and
    // waits for it to go before making its own.
    let ns = namespaces.get_opt(cluster::NAMESPACE).await.expect("get");
    assert!(
        ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "namespace secmon-sim left"
    );

    // One Job per node running every scenario, privileged only because it is allowed.
    let child = spawn(
        cluster,
        &[
            "simulate",
            "run",
            "--all",
            "--in-cluster",
            "--all-nodes",
            "--allow-privileged",
            "--image",
            IMAGE,
            "--pod-timeout",
            "2s",
            "--scenario-timeout",
            "100ms",
            "-o",
            "json",
        ],
    );
    let jobs = jobs_when(&client, 2, &child).await;
    assert_eq!(jobs.len(), 2, "one Job per node");
    let mut nodes: Vec<String> = Vec::new();
    for job in &jobs {
        let node = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.node_name.clone())
            .unwrap_or_default();
        assert_pinned_and_contained(job, &node, true);
        let steps = command_of(job).iter().filter(|a| a.contains('=')).count();
        assert_eq!(steps, SCENARIOS.len(), "every scenario in the node's pod");
        nodes.push(node);
    }
    nodes.sort();
    assert_eq!(nodes, ["worker-1", "worker-2"]);
    let out = child.join().expect("join");
    let report = report_of(&out);
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2 * SCENARIOS.len(), "{report}");
    assert!(results.iter().all(|r| r["status"] == "ERROR"), "{report}");
    assert!(namespace_gone(&client).await, "namespace secmon-sim left");

    // Pods that end, one Job at a time (--parallel 1): the test plays the kubelet and
    // reports the first pod Succeeded, then the second (made only once the first ended)
    // Failed (OOMKilled). The command sees each at once, long before its deadline, and
    // says why it has no result (this API server cannot reach a kubelet for the log).
    let child = spawn(
        cluster,
        &[
            "simulate",
            "run",
            "ptrace-attach",
            "crypto-miner",
            "--in-cluster",
            "--image",
            IMAGE,
            "--pod-timeout",
            "5m",
            "--parallel",
            "1",
            "-o",
            "json",
        ],
    );
    let job_of = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("job-name"))
            .cloned()
            .unwrap_or_default()
    };
    let ended = |exit: i32, reason: &str, phase: &str| {
        serde_json::json!({"status": {
            "phase": phase,
            "containerStatuses": [{
                "name": cluster::CONTAINER, "image": IMAGE, "imageID": "", "ready": false,
                "restartCount": 0, "containerID": "containerd://0123abcd",
                "state": {"terminated": {"exitCode": exit, "reason": reason}},
            }],
        }})
    };
    let pp = kube::api::PatchParams::default();
    let mut made: Vec<Pod> = Vec::new();
    for (exit, reason, phase) in [(0, "Completed", "Succeeded"), (137, "OOMKilled", "Failed")] {
        let mut fresh = None;
        for _ in 0..300 {
            let listed = pods
                .list(&sim_selector())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let running = listed
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
                .count();
            assert!(running <= 1, "--parallel 1 ran {running} pods at once");
            fresh = listed.into_iter().find(|p| {
                !made.iter().any(|m| m.metadata.name == p.metadata.name)
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
            });
            if fresh.is_some() || child.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pod = fresh.expect("the next Job's pod");
        let name = pod.metadata.name.clone().unwrap_or_default();
        pods.patch_status(
            &name,
            &pp,
            &kube::api::Patch::Merge(ended(exit, reason, phase)),
        )
        .await
        .expect("pod status");
        made.push(pod);
    }
    let oom_pod = made[1].metadata.name.clone().unwrap_or_default();
    let out = child.join().expect("join");
    let report = report_of(&out);
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{report}");
    let reason_of = |job: &str| {
        results
            .iter()
            .find(|r| r["simId"] == job)
            .and_then(|r| r["reason"].as_str())
            .unwrap_or_else(|| panic!("no result for {job}: {report}"))
            .to_string()
    };
    let ok = reason_of(&job_of(&made[0]));
    assert!(ok.contains("pods/log") && !ok.contains("within"), "{ok}");
    let oom = reason_of(&job_of(&made[1]));
    assert!(
        oom.contains(&format!(
            "pod secmon-sim/{oom_pod} failed: OOMKilled (exit code 137)"
        )),
        "{oom}"
    );
    assert!(namespace_gone(&client).await, "namespace secmon-sim left");
}

/// The Job pod's own command, with exactly its Job's capabilities, on this host.
#[cfg(target_os = "linux")]
#[test]
fn each_job_pods_capabilities_suffice_for_its_scenario() {
    use secmon::simulate::catalogue::RulesetKind;
    use secmon::simulate::verify::RunOutcome;
    if unsafe { libc::geteuid() } != 0 {
        common::require_or_skip("root, to run scenarios with a reduced capability set");
        return;
    }
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        common::require_or_skip("setpriv (util-linux)");
        return;
    }
    let run_id = secmon::simulate::new_run_id();
    let all: Vec<_> = SCENARIOS.iter().collect();
    let (plans, skipped) = cluster::plan(
        &all,
        &run_id,
        &["this-host".to_string()],
        false,
        false,
        RulesetKind::Default,
    );
    assert_eq!(skipped.len(), 1, "only the privileged scenario is left out");
    let settings = cluster::JobSettings {
        run_id: &run_id,
        image: IMAGE,
        ruleset: RulesetKind::Default,
        deadline_seconds: 60,
        scenario_timeout_seconds: 30,
    };
    let mut problems = Vec::new();
    for p in &plans {
        let job = cluster::job_manifest(p, &settings);
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        let caps: Vec<String> = container["securityContext"]["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .map(|c| format!(",+{}", c.to_ascii_lowercase()))
            .collect();
        let command: Vec<String> = container["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let out = std::process::Command::new("setpriv")
            .arg("--no-new-privs")
            .arg("--bounding-set")
            .arg(format!("-all{}", caps.concat()))
            .args(["--inh-caps", "-all", "--"])
            .arg(BIN)
            .args(&command[1..])
            .output()
            .expect("setpriv");
        let log = String::from_utf8_lossy(&out.stdout);
        let runs = cluster::gather(p, &log, Some("containerd://0123abcd"), None);
        for r in runs {
            if r.outcome != RunOutcome::Ran {
                problems.push(format!(
                    "{} with [{}]: {:?} (stderr: {})",
                    r.scenario.name,
                    caps.concat(),
                    r.outcome,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            } else {
                assert_eq!(r.container_id.as_deref(), Some("0123abcd"));
                assert!(r.started_ns > 0 && r.ended_ns >= r.started_ns);
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Nothing left behind in the scratch directories.
    let marker = format!("secmon-sim-{run_id}-");
    for dir in [std::env::temp_dir(), "/dev/shm".into()] {
        let left: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&marker))
            .collect();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

/// `simulate verify --in-cluster` all the way: the real control plane, a stand-in kubelet
/// that runs the Jobs' pods on this host (with their capabilities only) and serves pod
/// logs through the API server, and a real sensor whose alerts are the sensor pod's log.
/// Every scenario must be DETECTED (the privileged one SKIPPED without
/// --allow-privileged), with nothing unexpected, and everything removed afterwards.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn verify_in_cluster_detects_every_scenario_through_a_stand_in_kubelet() {
    use common::kubelet::Kubelet;
    use common::sensor::{Sensor, rules_file};
    if unsafe { libc::geteuid() } != 0 {
        common::require_or_skip("root, to run the Job pods' scenarios on this host");
        return;
    }
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let client = cluster.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The pods' API server address (KUBERNETES_SERVICE_HOST, given by the stand-in
    // kubelet) is loopback: the rules are told so.
    let rules = rules_file(
        dir.path(),
        "local_rules.yaml",
        "- list: secmon_k8s_api_server_addresses\n  items: [127.0.0.1]\n  override:\n    items: replace\n",
    );
    let Some(sensor) = Sensor::start(BIN, &["--rules", &rules]) else {
        return;
    };
    let node = "kubelet-1";
    let kubelet = Kubelet::start(&client, node, &[cluster::NAMESPACE], BIN).await;
    let kind = SensorKind::Secmon;
    apply_yaml(&client, &sensor_namespace_yaml()).await;
    kubelet
        .live_pod(
            &sensor_pod_yaml(&format!("sensor-{node}"), node),
            sensor.alerts.clone(),
        )
        .await;

    // One Job per scenario; then one Job for the node running them all, privileged as
    // allowed, where the event's time tells the scenarios of the one container apart.
    let mut outs = Vec::new();
    for extra in [&[][..], &["--all-nodes", "--allow-privileged"][..]] {
        let kc = cluster.kubeconfig.clone();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let args = extra.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(BIN)
                .arg("--kubeconfig")
                .arg(&kc)
                .args([
                    "simulate",
                    "verify",
                    "--all",
                    "--in-cluster",
                    "--image",
                    IMAGE,
                    "--pod-timeout",
                    "60s",
                    "--coverage",
                    "-o",
                    "json",
                ])
                .args(&args)
                .output()
                .expect("run kubectl-secmon")
        })
        .await
        .expect("join");
        outs.push((extra, out));
        assert!(namespace_gone(&client).await, "namespace secmon-sim left");
    }
    drop(kubelet);
    let (_, sensor_log) = sensor.stop();
    // This node and its sensor pod go, so that other tests see the nodes they made only.
    let sensor_pods: Api<Pod> = Api::namespaced(client.clone(), kind.namespace());
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let _ = sensor_pods.delete(&format!("sensor-{node}"), &now).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let _ = nodes.delete(node, &DeleteParams::default()).await;

    let overlay = std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|f| f.lines().any(|l| l.ends_with("\toverlay")));
    let lacks_caps = secmon::simulate::runner::missing_capabilities().is_some();
    for (extra, out) in outs {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{extra:?}: no JSON report, exit {:?}\nstderr:\n{stderr}\nsensor:\n{}",
                out.status.code(),
                sensor_log.join("\n")
            )
        });
        assert_eq!(report["mode"], "in-cluster");
        assert!(
            report["alertsSource"]
                .as_str()
                .is_some_and(|s| s.contains(node)),
            "{}",
            report["alertsSource"]
        );
        let results = report["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), SCENARIOS.len(), "{extra:?}");
        let shared = !extra.is_empty();
        let containers: BTreeSet<&str> = results
            .iter()
            .filter_map(|r| r["containerId"].as_str())
            .collect();
        // One container per scenario, or one for all of them.
        assert_eq!(containers.len() == 1, shared, "{extra:?}: {containers:?}");
        let mut problems = Vec::new();
        for r in &results {
            let name = r["scenario"].as_str().unwrap_or("?");
            let reason = r["reason"].as_str().unwrap_or("");
            match r["status"].as_str().unwrap_or("?") {
                "DETECTED" => assert_eq!(r["node"], node, "{r}"),
                "SKIPPED" if name == "debugfs-in-privileged-container" => assert!(
                    (!shared && reason.contains("--allow-privileged"))
                        || (shared && lacks_caps && reason.contains("lacks CAP_")),
                    "{extra:?}: {r}"
                ),
                "SKIPPED" if name == "drop-and-execute-new-binary" && !overlay => {}
                s => problems.push(format!("{name}: {s} ({reason})")),
            }
            for u in r["unexpected"].as_array().into_iter().flatten() {
                if matches!(
                    u["priority"].as_str(),
                    Some("Emergency" | "Alert" | "Critical" | "Error" | "Warning")
                ) {
                    problems.push(format!("{name}: UNEXPECTED {} {}", u["rule"], u["output"]));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{extra:?}: {problems:#?}\nstderr:\n{stderr}\nsensor:\n{}",
            sensor_log.join("\n")
        );
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {stderr}");
        let detected = results.iter().filter(|r| r["status"] == "DETECTED").count();
        assert_eq!(report["coverage"]["scenariosDetected"], detected);
        assert!(detected >= SCENARIOS.len() - 2, "{extra:?}: {detected}");
    }
    // Removed afterwards.
    let jobs: Api<Job> = Api::namespaced(client.clone(), cluster::NAMESPACE);
    let left = count(&jobs).await;
    assert_eq!(left, 0, "Jobs left behind");
}
