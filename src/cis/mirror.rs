//! Control-plane settings read through the API, pure: the static-pod mirror pods in
//! kube-system (annotation `kubernetes.io/config.mirror`, or a `component` label naming a
//! control-plane component) carry each component's command line and environment, which
//! become [`NodeFacts`] and go through the same section 1–3 evaluation as a node scan.
//! Every decided source says `mirror pod kube-system/NAME`. File permission and ownership
//! checks need the node itself and are INFO; with no mirror pods at all (a managed
//! control plane, or components run as processes) the sections are NOT_APPLICABLE with
//! that reason.

use std::collections::BTreeMap;

use serde_json::Value;

use super::argv::Args;
use super::collect::component_of;
use super::eval::{self, CheckResult, SectionResult, Selection, State};
use super::facts::{ComponentFacts, ConfigFacts, NodeFacts};
use super::profile::{Benchmark, Component, Target};

/// The control-plane sections a mirror pod can answer.
pub const TARGETS: [Target; 3] = [Target::Master, Target::Etcd, Target::Controlplane];

/// One control-plane component's static pod as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPod {
    pub name: String,
    pub node: String,
    pub component: Component,
    /// The container's `command` then `args`.
    pub argv: Vec<String>,
    /// Literal environment values (`valueFrom` entries cannot be resolved here).
    pub env: BTreeMap<String, String>,
}

fn str_at<'v>(v: &'v Value, p: &str) -> &'v str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// The control-plane mirror pods among `pods` (any namespace given; only kube-system's
/// count), sorted by node then name.
pub fn from_pods(pods: &[Value]) -> Vec<MirrorPod> {
    let mut out = Vec::new();
    for p in pods {
        if str_at(p, "/kind") != "Pod" || str_at(p, "/metadata/namespace") != "kube-system" {
            continue;
        }
        let mirror = p
            .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
            .is_some();
        let label = str_at(p, "/metadata/labels/component");
        let is_cp = matches!(
            label,
            "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "etcd"
        );
        if !mirror && !is_cp {
            continue;
        }
        for c in p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let strings = |k: &str| -> Vec<String> {
                c.get(k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            };
            let mut argv = strings("command");
            argv.extend(strings("args"));
            let Some((component, _)) = component_of(&argv) else {
                continue;
            };
            if !matches!(
                component,
                Component::Apiserver
                    | Component::ControllerManager
                    | Component::Scheduler
                    | Component::Etcd
            ) {
                continue;
            }
            let env = c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect();
            out.push(MirrorPod {
                name: str_at(p, "/metadata/name").to_string(),
                node: str_at(p, "/spec/nodeName").to_string(),
                component,
                argv,
                env,
            });
        }
    }
    out.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
    out
}

/// The facts of one control-plane node from its mirror pods.
pub fn node_facts(node: &str, pods: &[&MirrorPod]) -> NodeFacts {
    let mut f = NodeFacts {
        node: node.to_string(),
        root: "(API)".into(),
        ..Default::default()
    };
    for p in pods {
        let skip = component_of(&p.argv).map_or(1, |x| x.1);
        let args = Args::parse(&p.argv[skip.min(p.argv.len())..]);
        let config = match args.get("--config") {
            Some(path) => ConfigFacts::Error {
                message: format!(
                    "config file {path} is on node {node}, not readable through the API: run `cis run --nodes {node}`"
                ),
            },
            None => ConfigFacts::None,
        };
        f.components.entry(p.component).or_insert(ComponentFacts {
            pid: 0,
            argv: p.argv.clone(),
            args,
            env: Ok(p.env.clone()),
            paths: BTreeMap::new(),
            config,
        });
    }
    f
}

fn severity_rank(s: State) -> u8 {
    match s {
        State::Fail => 5,
        State::Error => 4,
        State::Warn => 3,
        State::Pass => 2,
        State::Info => 1,
        State::NotApplicable => 0,
    }
}

/// Sections 1–3 (as selected) judged on the mirror pods. With several control-plane
/// nodes, each check keeps the worst node's result, its observed value prefixed with the
/// node's name.
pub fn evaluate(benchmark: &Benchmark, pods: &[MirrorPod], sel: &Selection) -> Vec<SectionResult> {
    let mut cp = benchmark.clone();
    cp.sections.retain(|s| TARGETS.contains(&s.target));
    let file_only: BTreeMap<String, bool> = cp
        .checks()
        .map(|(_, _, c)| {
            (
                c.id.clone(),
                !c.items.is_empty() && c.items.iter().all(|i| i.file.is_some()),
            )
        })
        .collect();
    let mut nodes: BTreeMap<&str, Vec<&MirrorPod>> = BTreeMap::new();
    for p in pods {
        nodes.entry(p.node.as_str()).or_default().push(p);
    }
    if nodes.is_empty() {
        let mut sections = eval::evaluate(&cp, &NodeFacts::default(), sel);
        for r in sections.iter_mut().flat_map(|s| s.results.iter_mut()) {
            if r.state != State::Info {
                r.state = State::NotApplicable;
                r.observed = None;
                r.source = None;
                r.evidence.clear();
                r.reason = Some("no static-pod mirror pods in kube-system (component=kube-apiserver, kube-controller-manager, kube-scheduler, etcd): the control plane is managed or runs as processes, so its settings cannot be read through the API; run `cis run` on a control-plane host".into());
            }
        }
        return sections;
    }
    let several = nodes.len() > 1;
    let mut merged: Option<Vec<SectionResult>> = None;
    for (node, pods) in &nodes {
        let facts = node_facts(node, pods);
        let mut sections = eval::evaluate(&cp, &facts, sel);
        for r in sections.iter_mut().flat_map(|s| s.results.iter_mut()) {
            attribute(
                r,
                pods,
                node,
                several,
                file_only.get(&r.id).copied().unwrap_or(false),
            );
        }
        merged = Some(match merged {
            None => sections,
            Some(mut m) => {
                for (ms, s) in m.iter_mut().zip(sections) {
                    for (mr, r) in ms.results.iter_mut().zip(s.results) {
                        if severity_rank(r.state) > severity_rank(mr.state) {
                            *mr = r;
                        }
                    }
                }
                m
            }
        });
    }
    merged.unwrap_or_default()
}

/// A section that cannot be read through the API: every selected check NOT_APPLICABLE
/// (or INFO when skipped) with `reason`.
pub fn not_read(
    benchmark: &Benchmark,
    target: Target,
    sel: &Selection,
    reason: &str,
) -> Vec<SectionResult> {
    let mut b = benchmark.clone();
    b.sections.retain(|s| s.target == target);
    let mut sections = eval::evaluate(&b, &NodeFacts::default(), sel);
    for r in sections.iter_mut().flat_map(|s| s.results.iter_mut()) {
        if r.state != State::Info {
            r.state = State::NotApplicable;
            r.observed = None;
            r.source = None;
            r.evidence.clear();
            r.reason = Some(reason.to_string());
        }
    }
    sections
}

/// State where a result's value came from, or why a file check is not judged here.
fn attribute(r: &mut CheckResult, pods: &[&MirrorPod], node: &str, several: bool, file_only: bool) {
    if file_only && r.state != State::Info {
        r.state = State::Info;
        r.observed = None;
        r.source = None;
        r.evidence.clear();
        r.reason = Some(format!(
            "file permissions and ownership are read on the node, not through the API: run `cis run --nodes {node}`"
        ));
        return;
    }
    let Some(pod) = r
        .component
        .and_then(|c| pods.iter().find(|p| p.component == c))
    else {
        return;
    };
    let from = format!("mirror pod kube-system/{}", pod.name);
    match &mut r.source {
        Some(s) if !s.is_empty() => *s = format!("{s} in {from}"),
        _ => r.source = Some(from.clone()),
    }
    for e in &mut r.evidence {
        e.source = format!("{} in {from}", e.source);
    }
    if several && let Some(o) = &mut r.observed {
        *o = format!("[{node}] {o}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cis::profile::load_shipped;
    use serde_json::json;

    fn pod(node: &str, name: &str, cmd: &[&str]) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                "annotations": {"kubernetes.io/config.mirror": "abc"},
                "labels": {"component": "kube-apiserver", "tier": "control-plane"}},
            "spec": {"nodeName": node, "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.33.1",
                "command": cmd, "env": [{"name": "A", "value": "1"}]}]}})
    }

    fn by_id(s: &[SectionResult], id: &str) -> CheckResult {
        s.iter()
            .flat_map(|s| s.results.iter())
            .find(|r| r.id == id)
            .cloned()
            .expect("check")
    }

    #[test]
    fn mirror_pod_flags_are_judged_with_their_source() {
        let b = load_shipped("cis-1.12").expect("benchmark");
        let pods = from_pods(&[
            pod(
                "cp1",
                "kube-apiserver-cp1",
                &[
                    "kube-apiserver",
                    "--authorization-mode=Node,RBAC",
                    "--anonymous-auth=false",
                ],
            ),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": []}}),
        ]);
        assert_eq!(pods.len(), 1);
        let s = evaluate(&b, &pods, &Selection::default());
        let r = by_id(&s, "1.2.8");
        assert_eq!(r.state, State::Pass);
        assert_eq!(
            r.source.as_deref(),
            Some("flag --authorization-mode in mirror pod kube-system/kube-apiserver-cp1")
        );
        assert_eq!(by_id(&s, "1.2.1").state, State::Pass);
        // File checks need the node; absent components are not applicable.
        assert_eq!(by_id(&s, "1.1.1").state, State::Info);
        assert_eq!(by_id(&s, "1.3.2").state, State::NotApplicable);
    }

    #[test]
    fn worst_node_wins_and_is_named() {
        let b = load_shipped("cis-1.12").expect("benchmark");
        let pods = from_pods(&[
            pod(
                "cp1",
                "kube-apiserver-cp1",
                &["kube-apiserver", "--authorization-mode=Node,RBAC"],
            ),
            pod(
                "cp2",
                "kube-apiserver-cp2",
                &["kube-apiserver", "--authorization-mode=AlwaysAllow"],
            ),
        ]);
        let s = evaluate(&b, &pods, &Selection::default());
        let r = by_id(&s, "1.2.8");
        assert_eq!(r.state, State::Fail);
        assert!(
            r.observed
                .as_deref()
                .is_some_and(|o| o.starts_with("[cp2] ")),
            "{r:?}"
        );
        assert!(
            r.source
                .as_deref()
                .is_some_and(|o| o.ends_with("kube-apiserver-cp2")),
            "{r:?}"
        );
    }

    #[test]
    fn no_mirror_pods_is_not_applicable_with_the_reason() {
        let b = load_shipped("cis-1.12").expect("benchmark");
        let s = evaluate(&b, &[], &Selection::default());
        let r = by_id(&s, "1.2.1");
        assert_eq!(r.state, State::NotApplicable);
        assert!(
            r.reason
                .as_deref()
                .is_some_and(|x| x.contains("mirror pods"))
        );
        assert!(
            s.iter()
                .all(|x| x.target != Target::Node && x.target != Target::Policies)
        );
    }
}
