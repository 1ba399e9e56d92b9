//! Per-node health of the installed sensor, from what the API server says (Nodes, the
//! sensor's Pods) and what each pod's `/metrics` says. Pure: the command fetches, this
//! decides.
//!
//! A node is `ready` when its sensor pod is Ready and not being deleted, `not-ready` when
//! it has a sensor pod that is not, `missing` when it has none, and `not-applicable` when
//! the DaemonSet's node selector excludes it (not Linux, or not amd64 for our sensor).

use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Serialize;

use super::{SensorKind, image_tag};
use crate::sensor::metrics as m;

/// The sensor's state on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensorState {
    Ready,
    NotReady,
    Missing,
    NotApplicable,
}

impl SensorState {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorState::Ready => "ready",
            SensorState::NotReady => "not-ready",
            SensorState::Missing => "missing",
            SensorState::NotApplicable => "not-applicable",
        }
    }

    /// Whether this node lacks a working sensor (exit code 1).
    pub fn is_problem(self) -> bool {
        matches!(self, SensorState::NotReady | SensorState::Missing)
    }
}

/// Counters read from a sensor's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SensorMetrics {
    /// Kernel events seen.
    pub events: u64,
    /// Events lost before rule evaluation.
    pub drops: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// The version the sensor reports, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One node's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub node: String,
    pub state: SensorState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
    /// `None`: not read (no pod) or unavailable (see `message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SensorMetrics>,
    /// Why the state is what it is, or why metrics are unavailable; empty when all is well.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// Why the DaemonSet does not run on `node`, if it does not.
fn excluded(kind: SensorKind, node: &Node) -> Option<String> {
    if let Some(os) = label(node, "kubernetes.io/os").filter(|os| *os != "linux") {
        return Some(format!("{os} node: the sensor runs on Linux nodes"));
    }
    if kind == SensorKind::Secmon
        && let Some(arch) = label(node, "kubernetes.io/arch").filter(|a| *a != "amd64")
    {
        return Some(format!(
            "{arch} node: the sensor decodes amd64 system calls only"
        ));
    }
    None
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

/// The version a pod runs: the sensor container's image tag, else the pod's version label.
fn pod_version(kind: SensorKind, pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == kind.container()))
        .and_then(|c| c.image.as_deref())
        .and_then(image_tag)
        .map(str::to_string)
        .or_else(|| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(super::VERSION_LABEL))
                .cloned()
        })
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

/// Why a pod is not ready, in a few words.
fn not_ready_reason(pod: &Pod) -> String {
    if pod.metadata.deletion_timestamp.is_some() {
        return "pod is being deleted".to_string();
    }
    let status = pod.status.as_ref();
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
    let phase = status
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_string());
    match waiting {
        Some(w) => format!("pod {phase}: {w}"),
        None => format!("pod {phase}, not ready"),
    }
}

/// One row per node (sorted by name), plus rows for sensor pods on nodes that no longer
/// exist. Each node's pod is its ready one if any, else the newest.
pub fn node_statuses(kind: SensorKind, nodes: &[Node], pods: &[Pod]) -> Vec<NodeStatus> {
    let mut names: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    names.sort_unstable();
    let mut out = Vec::new();
    for name in names {
        let Some(node) = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
        else {
            continue;
        };
        let mut on_node: Vec<&Pod> = pods.iter().filter(|p| pod_node(p) == Some(name)).collect();
        on_node.sort_by(|a, b| {
            pod_ready(b).cmp(&pod_ready(a)).then_with(|| {
                b.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&a.metadata.creation_timestamp.as_ref().map(|t| t.0))
            })
        });
        match on_node.first() {
            Some(pod) => out.push(pod_row(kind, name, pod)),
            None => {
                let (state, message) = match excluded(kind, node) {
                    Some(why) => (SensorState::NotApplicable, why),
                    None => (
                        SensorState::Missing,
                        "no sensor pod on this node".to_string(),
                    ),
                };
                out.push(NodeStatus {
                    node: name.to_string(),
                    state,
                    pod: None,
                    version: None,
                    restarts: None,
                    metrics: None,
                    message,
                });
            }
        }
    }
    for pod in pods {
        let node = pod_node(pod).unwrap_or_default();
        if !nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(node))
        {
            let mut row = pod_row(kind, node, pod);
            row.state = SensorState::NotReady;
            row.message = if node.is_empty() {
                "pod not scheduled to a node".to_string()
            } else {
                "pod on a node that does not exist".to_string()
            };
            out.push(row);
        }
    }
    out
}

fn pod_row(kind: SensorKind, node: &str, pod: &Pod) -> NodeStatus {
    let ready = pod_ready(pod);
    NodeStatus {
        node: node.to_string(),
        state: if ready {
            SensorState::Ready
        } else {
            SensorState::NotReady
        },
        pod: pod.metadata.name.clone(),
        version: pod_version(kind, pod),
        restarts: Some(restarts(pod)),
        metrics: None,
        message: if ready {
            String::new()
        } else {
            not_ready_reason(pod)
        },
    }
}

/// Add what a pod's `/metrics` answered (or why it did not) to its row.
pub fn with_metrics(kind: SensorKind, row: &mut NodeStatus, scraped: Result<&str, &str>) {
    match scraped {
        Ok(text) => {
            let metrics = parse_metrics(kind, text);
            if let Some(v) = &metrics.version {
                row.version = Some(v.clone());
            }
            row.metrics = Some(metrics);
        }
        Err(why) => {
            let note = format!("metrics unavailable: {why}");
            row.message = if row.message.is_empty() {
                note
            } else {
                format!("{}; {note}", row.message)
            };
        }
    }
}

/// Sum the counters `status` shows from a Prometheus text exposition: ours
/// (`secmon_events_total`, `secmon_events_dropped_total`, `secmon_alerts_total`,
/// `secmon_sensor_info{version}`) or Falco's (`falcosecurity_scap_n_evts_total`,
/// `falcosecurity_scap_n_drops_total`, `falcosecurity_falco_rules_matches_total`,
/// `falcosecurity_falco_version_info{version}`).
pub fn parse_metrics(kind: SensorKind, text: &str) -> SensorMetrics {
    let (events, drops, alerts, info) = match kind {
        SensorKind::Secmon => (
            m::EVENTS_TOTAL,
            m::EVENTS_DROPPED_TOTAL,
            m::ALERTS_TOTAL,
            m::SENSOR_INFO,
        ),
        SensorKind::Falco => (
            "falcosecurity_scap_n_evts_total",
            "falcosecurity_scap_n_drops_total",
            "falcosecurity_falco_rules_matches_total",
            "falcosecurity_falco_version_info",
        ),
    };
    let mut out = SensorMetrics::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(after) => match after.rfind('}') {
                Some(close) => (&after[..close], &after[close + 1..]),
                None => continue,
            },
            None => ("", &line[name_end..]),
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
        else {
            continue;
        };
        let value = value as u64;
        if name == events {
            out.events += value;
        } else if name == drops {
            out.drops += value;
        } else if name == alerts {
            out.alerts += value;
        } else if name == info {
            out.version = label_value(labels, m::LABEL_VERSION).map(|v| {
                if kind == SensorKind::Secmon && !v.starts_with('v') {
                    format!("v{v}")
                } else {
                    v
                }
            });
        }
    }
    out
}

/// The value of `key` in a Prometheus label set `a="x",b="y"` (escapes undone).
fn label_value(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let k = rest[..eq].trim().trim_start_matches(',').trim();
        let after = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        if k == key {
            return Some(value);
        }
        rest = &after[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn pod(name: &str, node: &str, ready: bool, created: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"app.kubernetes.io/version": "v0.0.9"}},
            "spec": {"nodeName": node, "containers": [{"name": "sensor", "image": "r/s:v1.2.3"}]},
            "status": {"phase": if ready {"Running"} else {"Pending"},
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                       "containerStatuses": [{"name": "sensor", "image": "r/s:v1.2.3", "imageID": "",
                           "ready": ready, "restartCount": 2,
                           "state": if ready {json!({"running": {}})} else {json!({"waiting": {"reason": "ContainerCreating"}})}}]}
        }))
        .unwrap()
    }

    #[test]
    fn nodes_are_ready_not_ready_missing_or_not_applicable() {
        let nodes = [
            node("c", json!({"kubernetes.io/os": "linux"})),
            node("a", json!({})),
            node("b", json!({})),
            node("w", json!({"kubernetes.io/os": "windows"})),
            node("arm", json!({"kubernetes.io/arch": "arm64"})),
        ];
        let pods = [
            pod("s-a-old", "a", false, "2026-01-01T00:00:00Z"),
            pod("s-a", "a", true, "2026-01-01T00:00:01Z"),
            pod("s-b", "b", false, "2026-01-01T00:00:00Z"),
            pod("s-gone", "deleted-node", true, "2026-01-01T00:00:00Z"),
        ];
        let rows = node_statuses(SensorKind::Secmon, &nodes, &pods);
        let got: Vec<(&str, SensorState, Option<&str>)> = rows
            .iter()
            .map(|r| (r.node.as_str(), r.state, r.pod.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", SensorState::Ready, Some("s-a")),
                ("arm", SensorState::NotApplicable, None),
                ("b", SensorState::NotReady, Some("s-b")),
                ("c", SensorState::Missing, None),
                ("w", SensorState::NotApplicable, None),
                ("deleted-node", SensorState::NotReady, Some("s-gone")),
            ]
        );
        assert_eq!(rows[0].version.as_deref(), Some("v1.2.3"));
        assert_eq!(rows[0].restarts, Some(2));
        assert_eq!(rows[2].message, "pod Pending: ContainerCreating");
        // Falco runs on arm64.
        let falco = node_statuses(SensorKind::Falco, &nodes[4..], &[]);
        assert_eq!(falco[0].state, SensorState::Missing);
    }

    #[test]
    fn metrics_are_summed_and_failures_noted() {
        let text = "# HELP secmon_events_total x\n\
            secmon_sensor_info{node=\"n\",version=\"0.1.0\"} 1\n\
            secmon_events_total{category=\"process\"} 6\n\
            secmon_events_total{category=\"file\"} 62\n\
            secmon_events_dropped_total{category=\"file\"} 3\n\
            secmon_alerts_total{rule=\"A, \\\"quoted\\\"\",priority=\"warning\",namespace=\"\"} 2\n\
            secmon_alerts_total{rule=\"B\",priority=\"critical\",namespace=\"x\"} 1 1700000000\n\
            secmon_rules_loaded 33\n";
        let got = parse_metrics(SensorKind::Secmon, text);
        assert_eq!(
            got,
            SensorMetrics {
                events: 68,
                drops: 3,
                alerts: 3,
                version: Some("v0.1.0".into())
            }
        );
        let falco = "falcosecurity_scap_n_evts_total 100\nfalcosecurity_scap_n_drops_total 1\n\
            falcosecurity_falco_rules_matches_total{rule_name=\"x\",priority=\"4\"} 5\n\
            falcosecurity_falco_version_info{version=\"0.44.1\"} 1\n";
        let got = parse_metrics(SensorKind::Falco, falco);
        assert_eq!((got.events, got.drops, got.alerts), (100, 1, 5));
        assert_eq!(got.version.as_deref(), Some("0.44.1"));

        let mut row = node_statuses(
            SensorKind::Secmon,
            &[node("a", json!({}))],
            &[pod("p", "a", false, "2026-01-01T00:00:00Z")],
        )
        .remove(0);
        with_metrics(SensorKind::Secmon, &mut row, Err("503 no endpoints"));
        assert_eq!(
            row.message,
            "pod Pending: ContainerCreating; metrics unavailable: 503 no endpoints"
        );
        assert!(row.metrics.is_none());
        assert_eq!(
            label_value("a=\"1\",b=\"x\\\\y\"", "b").as_deref(),
            Some("x\\y")
        );
    }
}
