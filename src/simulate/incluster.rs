//! `simulate --in-cluster`, the API half: pick the node(s), follow the node sensors' logs,
//! make namespace `secmon-sim` and one Job per scenario (or per node with `--all-nodes`)
//! from [`super::cluster`]'s plan, wait for each Job's pod (each has its own deadline: a
//! pod that never starts is an ERROR for its scenarios, never a hang), read its log, wait
//! for the expected alerts, and remove everything this run made, whatever happened.
//!
//! Results come back as scenario runs plus the alerts received; `verify::evaluate` turns
//! them into verdicts as in local mode. Every failure is one line.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};

use super::catalogue::{RulesetKind, Scenario};
use super::cluster::{
    self, CONTAINER, JobSettings, NAMESPACE, PodPlan, RUN_LABEL, gather, job_manifest,
    namespace_manifest,
};
use super::verify::{Received, SIM_ID_PREFIX, ScenarioRun, carries, settled};
use crate::deploy::logs::{Flow, Order, PodLog, merge};
use crate::deploy::{FIELD_MANAGER, SensorKind};
use crate::kube::errors::{ApiError, Op, retry};
use crate::kube::pods::{container_statuses, pending_reason, phase};
use crate::kube::sensor;
use crate::sensor::alert::Decoded;
use crate::sensor::clock::now_ns;

/// What `--in-cluster` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Job pods' image; default: the installed sensor's.
    pub image: Option<String>,
    /// The node to run on; default: the first with a running sensor.
    pub node: Option<String>,
    pub all_nodes: bool,
    pub allow_privileged: bool,
    /// How long a Job's pod may take to start, on top of its scenarios' time.
    pub pod_timeout: Duration,
    pub scenario_timeout: Duration,
    /// How long to wait for a scenario's alerts after it ran.
    pub alert_timeout: Duration,
    pub ruleset: RulesetKind,
    /// Whose alerts verification reads.
    pub sensor: SensorKind,
    /// Read the sensors' alerts (`verify`), or only run (`run`).
    pub verify: bool,
    /// At most this many of the run's Jobs at once on a node.
    pub parallel: usize,
}

/// What an in-cluster run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub runs: Vec<ScenarioRun>,
    pub received: Vec<Received>,
    /// Where the alerts were read.
    pub source: String,
    /// Things the user should know that did not stop the run (a log that broke off,
    /// something that could not be removed).
    pub warnings: Vec<String>,
    pub interrupted: bool,
}

/// At most this many alerts are kept from the sensors' logs (a busy cluster's others).
const MAX_ALERTS: usize = 100_000;
/// How often Jobs are looked at.
const POLL: Duration = Duration::from_secs(1);

fn name_of(meta: &kube::api::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn pod_node(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone()
}

/// The pod's simulation container id, as its status has it (`containerd://<id>`).
fn container_id(p: &Pod) -> Option<String> {
    container_statuses(p)
        .find(|c| c.name == CONTAINER)?
        .container_id
        .clone()
}

/// Why a finished pod failed, when it did.
fn failed_reason(p: &Pod) -> Option<String> {
    if phase(p) != "Failed" {
        return None;
    }
    let ns = NAMESPACE;
    let name = name_of(&p.metadata);
    let term = container_statuses(p)
        .find_map(|c| c.state.as_ref()?.terminated.as_ref())
        .map(|t| {
            format!(
                ": {} (exit code {})",
                t.reason.clone().unwrap_or_default(),
                t.exit_code
            )
        })
        .or_else(|| {
            p.status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .map(|r| format!(": {r}"))
        })
        .unwrap_or_default();
    Some(format!("pod {ns}/{name} failed{term}"))
}

/// The index in a correlation id (`secmon-sim-<run>-<nnn>`), for ordering.
fn index_of(sim_id: &str) -> usize {
    sim_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// The image the Job pods run: the flag, else the installed sensor's, else the default.
async fn image(client: &kube::Client, o: &Options) -> Result<String, String> {
    if let Some(i) = &o.image {
        return Ok(i.clone());
    }
    let ds = sensor::daemon_set(client, SensorKind::Secmon)
        .await
        .map_err(|e| e.to_string())?;
    let installed = ds
        .and_then(|d| d.spec.template.spec)
        .and_then(|s| {
            s.containers
                .into_iter()
                .find(|c| c.name == SensorKind::Secmon.container())
        })
        .and_then(|c| c.image);
    Ok(installed.unwrap_or_else(crate::deploy::default_image))
}

/// The nodes to run on, and the sensor pod of each when verifying.
async fn nodes(client: &kube::Client, o: &Options) -> Result<Vec<(String, Option<Pod>)>, String> {
    let kind = o.sensor;
    let mut candidates: Vec<(String, Option<Pod>, bool)> = Vec::new();
    if o.verify {
        let pods = sensor::pods(client, kind, None)
            .await
            .map_err(|e| e.to_string())?;
        for p in pods {
            let Some(node) = pod_node(&p) else { continue };
            let running = phase(&p) == "Running";
            match candidates.iter_mut().find(|(n, _, _)| *n == node) {
                Some(c) if running && !c.2 => *c = (node, Some(p), true),
                Some(_) => {}
                None => candidates.push((node, Some(p), running)),
            }
        }
        if candidates.is_empty() {
            return Err(format!(
                "no {} sensor pod on any node (namespace {}, label {}): verification reads the sensors' alerts; install it first (`kubectl secmon install`) or use `simulate run --in-cluster`",
                kind.as_str(),
                kind.namespace(),
                kind.selector()
            ));
        }
    } else {
        let all = sensor::nodes(client).await.map_err(|e| e.to_string())?;
        for n in all {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            candidates.push((name_of(&n.metadata), None, ready));
        }
        if candidates.is_empty() {
            return Err("the cluster has no nodes to run the scenarios on".to_string());
        }
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(want) = &o.node {
        return match candidates.into_iter().find(|(n, _, _)| n == want) {
            Some((n, p, _)) => Ok(vec![(n, p)]),
            None if o.verify => Err(format!(
                "no {} sensor pod on node {want}: verification needs the sensor on the node the scenarios run on",
                kind.as_str()
            )),
            None => Err(format!("no node named {want} in the cluster")),
        };
    }
    if o.all_nodes {
        return Ok(candidates.into_iter().map(|(n, p, _)| (n, p)).collect());
    }
    let best = candidates.iter().position(|c| c.2).unwrap_or(0);
    let (n, p, _) = candidates.swap_remove(best);
    Ok(vec![(n, p)])
}

fn api_error(verb: &'static str, resource: &str, name: Option<&str>, e: &kube::Error) -> String {
    let mut op = Op::new(verb, resource.to_string()).namespace(Some(NAMESPACE));
    if let Some(n) = name {
        op = op.name(n);
    }
    ApiError::from_kube(op, e).to_string()
}

/// Make sure namespace `secmon-sim` exists with the Pod Security labels the scenarios
/// need; whether this run created it.
async fn ensure_namespace(client: &kube::Client) -> Result<bool, String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let op = Op::new("get", "namespaces").name(NAMESPACE);
    // An earlier run's namespace may still be going away: nothing can be made in it.
    let mut existed = false;
    for _ in 0..120 {
        let ns = retry(op.clone(), || api.get_opt(NAMESPACE))
            .await
            .map_err(|e| e.to_string())?;
        existed = ns.is_some();
        if ns.is_none_or(|n| n.metadata.deletion_timestamp.is_none()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    api.patch(
        NAMESPACE,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&namespace_manifest()),
    )
    .await
    .map_err(|e| {
        ApiError::from_kube(Op::new("patch", "namespaces").name(NAMESPACE), &e).to_string()
    })?;
    // A new namespace's pods cannot be made until its `default` ServiceAccount exists,
    // and a job controller that finds it missing backs off for seconds to minutes: wait
    // for it (the service account controller makes it at once).
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    for _ in 0..100 {
        if matches!(accounts.get_opt("default").await, Ok(Some(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(!existed)
}

/// One Job being waited for.
struct Pending {
    plan: PodPlan,
    deadline: tokio::time::Instant,
    allowed: Duration,
}

/// What making a Job needs.
struct Launch<'a> {
    client: &'a kube::Client,
    run_id: &'a str,
    image: &'a str,
    o: &'a Options,
}

impl Launch<'_> {
    /// Create the Job of `plan`: it is then waited for, or its scenarios are errors.
    async fn create(&self, plan: PodPlan) -> Result<Pending, Vec<ScenarioRun>> {
        let o = self.o;
        let allowed = o.pod_timeout + o.scenario_timeout * plan.runs.len() as u32;
        let settings = JobSettings {
            run_id: self.run_id,
            image: self.image,
            ruleset: o.ruleset,
            deadline_seconds: allowed.as_secs() + 30,
            scenario_timeout_seconds: o.scenario_timeout.as_secs().max(1),
        };
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), NAMESPACE);
        let made = match serde_json::from_value::<Job>(job_manifest(&plan, &settings)) {
            Err(e) => Err(format!("cannot build the Job: {e}")),
            Ok(job) => jobs
                .create(&PostParams::default(), &job)
                .await
                .map(|_| ())
                .map_err(|e| api_error("create", "jobs.batch", Some(&plan.job), &e)),
        };
        match made {
            Ok(()) => Ok(Pending {
                plan,
                deadline: tokio::time::Instant::now() + allowed,
                allowed,
            }),
            Err(why) => Err(gather(&plan, "", None, Some(&why))),
        }
    }
}

/// Make the Jobs, at most `--parallel` at a time on each node, wait for each one's pod up
/// to its own deadline, and gather the results. Ctrl-C stops it: what has not finished
/// becomes an error.
async fn run_jobs(
    launch: &Launch<'_>,
    plans: Vec<PodPlan>,
    interrupted: &mut bool,
) -> Vec<ScenarioRun> {
    let client = launch.client;
    let run_id = launch.run_id;
    let parallel = launch.o.parallel.max(1);
    let mut queue: std::collections::VecDeque<PodPlan> = plans.into();
    let mut pending: Vec<Pending> = Vec::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
    let mut runs = Vec::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        // Start what fits: a plan waits while its node has `parallel` Jobs running.
        let mut waiting = std::collections::VecDeque::new();
        while let Some(plan) = queue.pop_front() {
            let busy = pending.iter().filter(|p| p.plan.node == plan.node).count();
            if *interrupted {
                runs.extend(gather(
                    &plan,
                    "",
                    None,
                    Some("interrupted before it started"),
                ));
            } else if busy >= parallel {
                waiting.push_back(plan);
            } else {
                match launch.create(plan).await {
                    Ok(p) => pending.push(p),
                    Err(failed) => runs.extend(failed),
                }
            }
        }
        queue = waiting;
        if pending.is_empty() && queue.is_empty() {
            break;
        }
        let listed = pods.list(&lp).await;
        let now = tokio::time::Instant::now();
        let pending_before = pending.len();
        let mut still = Vec::new();
        for p in pending {
            let pod = listed.as_ref().ok().and_then(|l| {
                l.items
                    .iter()
                    .filter(|pod| {
                        pod.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get("job-name"))
                            .is_some_and(|j| *j == p.plan.job)
                    })
                    .max_by_key(|pod| pod.metadata.creation_timestamp.clone())
                    .cloned()
            });
            let finished = pod
                .as_ref()
                .is_some_and(|pod| matches!(phase(pod).as_str(), "Succeeded" | "Failed"));
            let late = now >= p.deadline || *interrupted;
            if !finished && !late {
                still.push(p);
                continue;
            }
            let secs = p.allowed.as_secs();
            let mut failure = match (&pod, finished) {
                (Some(pod), true) => failed_reason(pod),
                (Some(pod), false) if *interrupted => Some(format!(
                    "interrupted before pod {NAMESPACE}/{} finished",
                    name_of(&pod.metadata)
                )),
                (Some(pod), false) => Some(format!(
                    "pod {NAMESPACE}/{} did not finish within {secs}s ({})",
                    name_of(&pod.metadata),
                    pending_reason(pod)
                )),
                (None, _) if *interrupted => Some("interrupted before its pod started".into()),
                (None, _) => Some(match &listed {
                    Err(e) => api_error("list", "pods", None, e),
                    Ok(_) => format!(
                        "Job {NAMESPACE}/{} made no pod within {secs}s (is the cluster's job controller running?)",
                        p.plan.job
                    ),
                }),
            };
            // A pod that ran (even partly) has a log worth reading.
            let log = match &pod {
                Some(pod) if phase(pod) != "Pending" => {
                    let name = name_of(&pod.metadata);
                    let params = LogParams {
                        container: Some(CONTAINER.to_string()),
                        ..LogParams::default()
                    };
                    match pods.logs(&name, &params).await {
                        Ok(log) => log,
                        Err(e) => {
                            let why = api_error("get", "pods/log", Some(&name), &e);
                            failure = Some(match failure {
                                Some(f) => format!("{f}; {why}"),
                                None => why,
                            });
                            String::new()
                        }
                    }
                }
                _ => String::new(),
            };
            let cid = pod.as_ref().and_then(container_id);
            runs.extend(gather(&p.plan, &log, cid.as_deref(), failure.as_deref()));
        }
        let progressed = still.len() < pending_before;
        pending = still;
        // A freed slot with Jobs queued starts the next one at once.
        let start_next = progressed && !queue.is_empty();
        if !pending.is_empty() && !start_next {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut ctrl_c => *interrupted = true,
            }
        }
    }
    runs
}

/// Remove every Job and pod of the run (pods at once: without a kubelet, or with one
/// that is gone, a graceful delete never completes) and the namespace when this run made
/// it. What could not be removed comes back as warnings.
async fn clean_up(client: &kube::Client, run_id: &str, namespace_created: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    let lp = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
    let jobs: Api<Job> = Api::namespaced(client.clone(), NAMESPACE);
    if let Err(e) = jobs
        .delete_collection(&DeleteParams::background(), &lp)
        .await
    {
        warnings.push(format!(
            "could not remove the run's Jobs: {}",
            api_error("deletecollection", "jobs.batch", None, &e)
        ));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    // Job pods carry a tracking finalizer that the job controller takes off once their
    // Job is gone: wait a little for them to disappear.
    let mut left = Vec::new();
    for _ in 0..20 {
        if let Err(e) = pods.delete_collection(&now, &lp).await {
            warnings.push(format!(
                "could not remove the run's pods: {}",
                api_error("deletecollection", "pods", None, &e)
            ));
            break;
        }
        left = match pods.list(&lp).await {
            Ok(l) => l.items.iter().map(|p| name_of(&p.metadata)).collect(),
            Err(_) => Vec::new(),
        };
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !left.is_empty() {
        warnings.push(format!(
            "pods still terminating in {NAMESPACE}: {} (their finalizers are the job controller's to remove)",
            left.join(", ")
        ));
    }
    if namespace_created {
        let api: Api<Namespace> = Api::all(client.clone());
        if let Err(e) = api.delete(NAMESPACE, &DeleteParams::default()).await {
            warnings.push(format!(
                "could not remove namespace {NAMESPACE}: {}",
                ApiError::from_kube(Op::new("delete", "namespaces").name(NAMESPACE), &e)
            ));
        }
    }
    warnings
}

/// Keep an alert that can belong to this run: from a container, or naming the run.
fn ours(d: Decoded, marker: &str) -> Option<Received> {
    let Decoded::Alert(a) = d else { return None };
    let keep = a.field_str("container.id").is_some_and(|c| c != "host") || carries(&a, marker);
    keep.then(|| Received {
        alert: *a,
        received_ns: now_ns(),
    })
}

/// Run (and with `o.verify`, verify) `scenarios` in the cluster. `Err` (one line) only
/// for failures before anything was created: no node, no sensor, no namespace.
pub async fn run(
    client: &kube::Client,
    scenarios: &[&'static Scenario],
    run_id: &str,
    o: &Options,
) -> Result<Outcome, String> {
    let image = image(client, o).await?;
    let targets = nodes(client, o).await?;
    let kind = o.sensor;

    // The sensors' log streams are open before the first Job exists.
    let mut logs = Vec::new();
    for (node, pod) in &targets {
        let Some(pod) = pod else { continue };
        let reader = sensor::log_stream(client, kind, pod, true, Some(Duration::from_secs(1)))
            .await
            .map_err(|e| format!("{e}; verification needs the sensor on node {node} running"))?;
        logs.push(PodLog {
            pod: format!("{}/{}", kind.namespace(), name_of(&pod.metadata)),
            reader: Box::pin(reader),
        });
    }
    let node_names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let source = format!(
        "the {} sensor pods' logs on {}",
        kind.as_str(),
        node_names.join(", ")
    );
    let (plans, skipped) = cluster::plan(
        scenarios,
        run_id,
        &node_names,
        o.all_nodes,
        o.allow_privileged,
        o.ruleset,
    );
    let namespace_created = if plans.is_empty() {
        false
    } else {
        ensure_namespace(client).await?
    };

    let received: Mutex<Vec<Received>> = Mutex::new(Vec::new());
    let stop = tokio::sync::Notify::new();
    let marker = format!("{SIM_ID_PREFIX}{run_id}-");
    let reader = async {
        if logs.is_empty() {
            return None;
        }
        let collect = |d: Decoded| {
            if let Some(r) = ours(d, &marker) {
                let mut got = received.lock().unwrap_or_else(|e| e.into_inner());
                if got.len() < MAX_ALERTS {
                    got.push(r);
                }
            }
            Flow::Continue
        };
        tokio::select! {
            s = merge(logs, Order::Arrival, collect) => Some(s),
            _ = stop.notified() => None,
        }
    };
    let main = async {
        let mut interrupted = false;
        let mut runs = skipped;
        let launch = Launch {
            client,
            run_id,
            image: &image,
            o,
        };
        runs.extend(run_jobs(&launch, plans, &mut interrupted).await);
        runs.sort_by_key(|r| index_of(&r.sim_id));
        if o.verify && !interrupted {
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            let grace = Duration::from_millis(500).min(o.alert_timeout);
            let mut settled_at: Option<tokio::time::Instant> = None;
            loop {
                let done = {
                    let got = received.lock().unwrap_or_else(|e| e.into_inner());
                    settled(&runs, &got, o.ruleset, now_ns(), o.alert_timeout)
                };
                match (done, settled_at) {
                    (true, None) => settled_at = Some(tokio::time::Instant::now()),
                    (true, Some(t)) if t.elapsed() >= grace => break,
                    (false, _) => settled_at = None,
                    _ => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = &mut ctrl_c => { interrupted = true; break; }
                }
            }
        }
        stop.notify_one();
        let warnings = clean_up(client, run_id, namespace_created).await;
        (runs, warnings, interrupted)
    };
    let (summary, (runs, mut warnings, interrupted)) = tokio::join!(reader, main);
    if let Some(s) = summary {
        for (pod, why) in s.broken {
            warnings.push(format!("the log of sensor pod {pod} broke off: {why}"));
        }
        if o.verify && s.streams > 0 {
            // Every log ended before the run did: the sensors stopped.
            warnings.push(
                "the sensor pods' logs ended during the run (did the sensors restart?)".into(),
            );
        }
    }
    let received = received.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Outcome {
        runs,
        received,
        source,
        warnings,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn pod_status_readings() {
        let p = pod(json!({
            "metadata": {"name": "secmon-sim-abc-001-x7k2p"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "simulate", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "containerID": "containerd://0123abcd",
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            }]},
        }));
        assert_eq!(container_id(&p).as_deref(), Some("containerd://0123abcd"));
        assert_eq!(
            failed_reason(&p).as_deref(),
            Some("pod secmon-sim/secmon-sim-abc-001-x7k2p failed: OOMKilled (exit code 137)")
        );
        let waiting = pod(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "simulate", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull\naccess denied"}},
            }]},
        }));
        assert_eq!(failed_reason(&waiting), None);
        assert_eq!(
            pending_reason(&waiting),
            "phase Pending: ImagePullBackOff pull access denied"
        );
        assert_eq!(
            pending_reason(&pod(json!({"metadata": {"name": "p"}}))),
            "phase Unknown"
        );
        assert_eq!(index_of("secmon-sim-abc-1002"), 1002);
        assert_eq!(index_of("x"), usize::MAX);
    }

    #[test]
    fn only_alerts_that_can_be_ours_are_kept() {
        use crate::sensor::alert::Alert;
        let a = |fields: &str, output: &str| {
            Decoded::Alert(Box::new(
                Alert::from_json(&format!(
                    r#"{{"rule":"R","priority":"Warning","time":"2026-11-27T00:00:00Z","output":"{output}","output_fields":{fields}}}"#
                ))
                .expect("alert"),
            ))
        };
        let m = "secmon-sim-0123456789ab-";
        assert!(ours(a(r#"{"container.id":"abcdef012345"}"#, "x"), m).is_some());
        assert!(ours(a(r#"{"container.id":"host"}"#, "x"), m).is_none());
        assert!(
            ours(
                a(r#"{"container.id":"host"}"#, "secmon-sim-0123456789ab-001"),
                m
            )
            .is_some()
        );
        assert!(ours(a("{}", "x"), m).is_none());
    }
}
