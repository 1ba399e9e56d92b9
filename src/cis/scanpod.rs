//! `cis run --nodes`: one short-lived scan pod per node that runs this binary's node scan
//! (`kubectl-secmon cis run --root /host -o json`) against read-only host mounts, its
//! result gathered from the pod's log, the pod removed afterwards.
//!
//! The pod spec ([`pod_manifest`]) and the gathering ([`gather`]) are pure and tested on
//! their own (a recorded log); [`scan_nodes`] does the API calls: create, wait up to the
//! timeout, read the log, delete. A pod that does not finish in time is a per-node ERROR,
//! never a hang.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::kube::errors::ApiError;
use crate::kube::list::{self, ApiFailure, KindRef};
use crate::kube::pods::{dns_label, pending_reason, phase};

/// Where scan pods run: the namespace `install` uses (Pod Security `privileged`, which
/// hostPID needs).
pub const NAMESPACE: &str = "secmon";
/// Label on every scan pod, with the run's id as value.
pub const RUN_LABEL: &str = "secmon.dev/cis-run";
pub const NODES: KindRef = KindRef::new("", "v1", "Node", "nodes", false);

/// Host paths the node scan reads, mounted read-only under `/host`.
pub const HOST_PATHS: [&str; 9] = [
    "/proc",
    "/etc/kubernetes",
    "/etc/systemd",
    "/lib/systemd",
    "/usr/lib/systemd",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/etc/passwd",
    "/etc/group",
];

/// A pod name for `node` in run `run`: DNS-1123, at most 63 characters.
pub fn pod_name(node: &str, run: &str) -> String {
    let base = dns_label(&format!("secmon-cis-{node}"), 63 - run.len() - 1);
    format!("{base}-{run}")
}

/// The scan pod for `node`: pinned to it, hostPID (to find the components' processes),
/// every host path read-only, no service account token, non-privileged with all
/// capabilities dropped but the two that reading other processes' files and
/// environments needs (DAC_READ_SEARCH, SYS_PTRACE), read-only root filesystem, small
/// resources, tolerating every taint, never restarted.
pub fn pod_manifest(node: &str, image: &str, run: &str, benchmark: &str) -> Value {
    let mounts: Vec<Value> = HOST_PATHS
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"name": format!("host-{i}"), "mountPath": format!("/host{p}"), "readOnly": true}))
        .collect();
    let volumes: Vec<Value> = HOST_PATHS
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"name": format!("host-{i}"), "hostPath": {"path": p}}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(node, run),
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "secmon-cis",
                "app.kubernetes.io/managed-by": "kubectl-secmon",
                RUN_LABEL: run,
            },
        },
        "spec": {
            "nodeName": node,
            "hostPID": true,
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "cis",
                "image": image,
                "command": ["kubectl-secmon", "cis", "run", "--root", "/host", "--node-name", node, "--benchmark", benchmark, "-o", "json"],
                "securityContext": {
                    "privileged": false,
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "runAsUser": 0,
                    "capabilities": {"drop": ["ALL"], "add": ["DAC_READ_SEARCH", "SYS_PTRACE"]},
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    })
}

/// One node's outcome: its report as the scan pod printed it, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeScan {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Read a scan pod's log: the `CisReport` JSON document it printed (warnings the binary
/// wrote to stderr may precede it; the kubelet merges both streams).
pub fn gather(node: &str, log: &str) -> NodeScan {
    let fail = |e: String| NodeScan {
        node: node.to_string(),
        report: None,
        error: Some(e),
    };
    let Some(start) = log
        .find("\n{")
        .map(|i| i + 1)
        .or(log.starts_with('{').then_some(0))
    else {
        let last = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return fail(if last.is_empty() {
            "the scan pod's log is empty".into()
        } else {
            format!(
                "the scan pod printed no report; its log ends: {}",
                last.trim()
            )
        });
    };
    let mut de = serde_json::Deserializer::from_str(&log[start..]).into_iter::<Value>();
    match de.next() {
        Some(Ok(v)) if v["kind"] == "CisReport" => NodeScan {
            node: node.to_string(),
            report: Some(v),
            error: None,
        },
        Some(Ok(_)) => fail("the scan pod's log holds JSON that is not a CisReport".into()),
        Some(Err(e)) => fail(format!("the scan pod's report is not valid JSON: {e}")),
        None => fail("the scan pod printed no report".into()),
    }
}

/// What `cis run --nodes` asks for.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// `all` or a node name.
    pub nodes: String,
    pub image: String,
    pub benchmark: String,
    pub timeout: Duration,
}

fn api_err(e: kube::Error, verb: &'static str, what: &'static str) -> ApiFailure {
    let kind = KindRef::new("", "v1", "Pod", what, true);
    ApiError::from_kube(kind.op(verb, Some(NAMESPACE)), &e).into()
}

/// Create a scan pod per node, wait for them (up to the timeout), gather each log, and
/// delete the pods, whatever happened. Per-node failures are in the results; only
/// failures before any pod exists (listing nodes, the namespace) are errors.
pub async fn scan_nodes(
    client: &kube::Client,
    opts: &ScanOptions,
    run: &str,
) -> Result<Vec<NodeScan>, ApiFailure> {
    let nodes: Vec<String> = if opts.nodes == "all" {
        list::list_all(client, &NODES, None, |_| {})
            .await?
            .iter()
            .filter_map(|n| n.pointer("/metadata/name")?.as_str().map(str::to_string))
            .collect()
    } else {
        let n = list::get(client, &NODES, None, &opts.nodes).await?;
        vec![
            n.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or(&opts.nodes)
                .to_string(),
        ]
    };
    if nodes.is_empty() {
        return Err(ApiFailure("the cluster has no nodes to scan".into()));
    }
    let ns: Api<Namespace> = Api::all(client.clone());
    let ns_obj = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
    });
    ns.patch(
        NAMESPACE,
        &PatchParams::apply("kubectl-secmon"),
        &Patch::Apply(&ns_obj),
    )
    .await
    .map_err(|e| ApiFailure::from(ApiError::from_kube(list::NAMESPACES.op("patch", None), &e)))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut results = Vec::new();
    let mut created = Vec::new();
    for node in &nodes {
        let manifest = pod_manifest(node, &opts.image, run, &opts.benchmark);
        let pod: Pod = match serde_json::from_value(manifest) {
            Ok(p) => p,
            Err(e) => {
                results.push(NodeScan {
                    node: node.clone(),
                    report: None,
                    error: Some(format!("cannot build the scan pod: {e}")),
                });
                continue;
            }
        };
        match pods.create(&PostParams::default(), &pod).await {
            Ok(_) => created.push((node.clone(), pod_name(node, run))),
            Err(e) => results.push(NodeScan {
                node: node.clone(),
                report: None,
                error: Some(api_err(e, "create", "pods").0),
            }),
        }
    }
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut waiting = created.clone();
    let mut finished: Vec<(String, String, Option<String>)> = Vec::new();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for (node, name) in waiting {
            match pods.get_opt(&name).await {
                Ok(Some(p)) => {
                    let phase = phase(&p);
                    if phase == "Succeeded" || phase == "Failed" {
                        finished.push((node, name, None));
                    } else if tokio::time::Instant::now() >= deadline {
                        let why = format!(
                            "scan pod {NAMESPACE}/{name} did not finish within {}s ({})",
                            opts.timeout.as_secs(),
                            pending_reason(&p)
                        );
                        finished.push((node, name, Some(why)));
                    } else {
                        still.push((node, name));
                    }
                }
                Ok(None) => finished.push((
                    node,
                    name.clone(),
                    Some(format!(
                        "scan pod {NAMESPACE}/{name} disappeared before it finished"
                    )),
                )),
                Err(e) => finished.push((node, name, Some(api_err(e, "get", "pods").0))),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for (node, name, err) in finished {
        let scan = match err {
            Some(e) => NodeScan {
                node,
                report: None,
                error: Some(e),
            },
            None => match pods.logs(&name, &LogParams::default()).await {
                Ok(log) => gather(&node, &log),
                Err(e) => NodeScan {
                    node,
                    report: None,
                    error: Some(api_err(e, "get", "pods/log").0),
                },
            },
        };
        results.push(scan);
    }
    // Remove every pod this run created, at once: a scan pod has nothing to stop
    // gracefully, and without a kubelet a graceful delete would never complete.
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for (_, name) in &created {
        if let Err(e) = pods.delete(name, &dp).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            results.push(NodeScan {
                node: String::new(),
                report: None,
                error: Some(format!(
                    "could not remove scan pod {NAMESPACE}/{name}: {}",
                    api_err(e, "delete", "pods").0
                )),
            });
        }
    }
    results.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_is_pinned_read_only_and_least_privileged() {
        let p = pod_manifest("Node_1.example", "img:1", "abc123", "cis-1.12");
        assert_eq!(p["metadata"]["name"], "secmon-cis-node-1-example-abc123");
        assert_eq!(p["metadata"]["namespace"], "secmon");
        assert_eq!(p["spec"]["nodeName"], "Node_1.example");
        assert_eq!(p["spec"]["hostPID"], true);
        assert_eq!(p["spec"]["automountServiceAccountToken"], false);
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["securityContext"]["privileged"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert!(
            c["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().all(|m| m["readOnly"] == true))
        );
        let _: Pod = serde_json::from_value(p).expect("a valid Pod");
        assert!(pod_name(&"x".repeat(100), "abc123").len() <= 63);
    }

    #[test]
    fn gathering_reads_the_report_after_warnings() {
        let log = "warning: 2 checks could not be evaluated (ERROR); their reasons say why\n{\"apiVersion\":\"secmon.dev/v1alpha1\",\"kind\":\"CisReport\",\"node\":\"n1\",\"totals\":{\"pass\":3,\"fail\":1}}\n";
        let s = gather("n1", log);
        assert!(s.error.is_none(), "{s:?}");
        assert_eq!(
            s.report.as_ref().map(|r| r["totals"]["fail"].clone()),
            Some(json!(1))
        );
        let s = gather("n1", "exec /kubectl-secmon: no such file\n");
        assert!(
            s.error
                .as_deref()
                .is_some_and(|e| e.contains("no such file")),
            "{s:?}"
        );
        assert!(gather("n1", "").error.is_some());
        assert!(gather("n1", "{\"kind\":\"Other\"}").error.is_some());
        assert!(gather("n1", "{\"kind\": \"CisReport\", ").error.is_some());
    }
}
