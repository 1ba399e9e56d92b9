//! `psa check` without `-f` and `psa plan`: Pod Security on a live cluster. One paginated
//! LIST per workload kind (cluster-wide with `-A`, else in the namespace), each workload
//! judged at its namespace's enforce, warn and audit levels (or at `--level`), with the
//! same engine and report as manifests.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;

use anyhow::Context;
use serde_json::Value;

use super::{CheckArgs, LevelArg, PlanArgs, selector};
use crate::cli::GlobalArgs;
use crate::commands::{emit, exit};
use crate::kube::list::{self, NAMESPACES, WORKLOAD_KINDS};
use crate::psa::namespace::{self, Defaults, Mode, NamespacePolicy};
use crate::psa::workload::{self, WorkloadKind};
use crate::psa::{self, Level, Policy, Version};
use crate::report::psa::{InputProblem, PsaReport, PsaResult, Skipped, Subject};
use crate::report::psa_plan::{Blocker, NamespacePlan, PlanReport};
use crate::selector::Selector;

/// What was read from the cluster.
struct Snapshot {
    /// Namespace name → its labels.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    workloads: Vec<Value>,
    /// A failure after some reads succeeded: the results are partial.
    partial: Option<String>,
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Read namespaces and workloads in scope: `-A` everything, else the namespace from `-n`
/// or the kubeconfig context.
fn read(g: &GlobalArgs) -> anyhow::Result<Snapshot> {
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    rt.block_on(async {
        let client = crate::kube::client(g).await?;
        let scope = if g.all_namespaces {
            None
        } else {
            Some(
                g.namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
            )
        };
        let namespaces: Vec<Value> = match &scope {
            None => list::list_all(&client, &NAMESPACES, None, |_| {}).await?,
            Some(ns) => vec![list::get(&client, &NAMESPACES, None, ns).await?],
        };
        let namespaces = namespaces
            .iter()
            .map(|n| (str_at(n, "/metadata/name").to_string(), labels_of(n)))
            .collect();
        let bar = progress();
        let mut workloads = Vec::new();
        let mut partial = None;
        for kind in &WORKLOAD_KINDS {
            let on_page = |n: usize| {
                if let Some(b) = &bar {
                    b.inc(n as u64);
                    b.set_message(kind.kind);
                }
            };
            match list::list_all(&client, kind, scope.as_deref(), on_page).await {
                Ok(items) => workloads.extend(items),
                // Nothing read yet: a plain error. Otherwise keep what we have.
                Err(e) if workloads.is_empty() && kind.kind == "Pod" => return Err(e.into()),
                Err(e) => {
                    partial = Some(e.0);
                    break;
                }
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        anyhow::Ok(Snapshot {
            namespaces,
            workloads,
            partial,
        })
    })
}

/// A spinner counting objects, on a terminal only.
fn progress() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} listing {msg}: {pos} objects")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn subject(v: &Value) -> Subject {
    Subject {
        path: None,
        line: None,
        api_version: str_at(v, "/apiVersion").to_string(),
        kind: str_at(v, "/kind").to_string(),
        namespace: v
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string),
        name: str_at(v, "/metadata/name").to_string(),
    }
}

/// A workload's pod template, or why it has none.
enum Template {
    Some(Box<workload::PodTemplate>),
    Skip(Skipped),
    Problem(InputProblem),
}

fn template(v: &Value, selector: &Selector) -> Template {
    if !selector.is_empty() && !selector.matches(Some(&labels_of(v))) {
        return Template::Skip(Skipped {
            subject: subject(v),
            reason: format!("labels do not match -l {selector}"),
        });
    }
    let Some(kind) = WorkloadKind::from_type(str_at(v, "/apiVersion"), str_at(v, "/kind")) else {
        return Template::Skip(Skipped {
            subject: subject(v),
            reason: "not a kind Pod Security evaluates".into(),
        });
    };
    match workload::extract(kind, v) {
        Ok(Some(t)) => Template::Some(Box::new(t)),
        Ok(None) => Template::Skip(Skipped {
            subject: subject(v),
            reason: "no pod template (allowed by Pod Security)".into(),
        }),
        Err(e) => Template::Problem(InputProblem {
            location: subject(v).id(),
            message: e.message,
        }),
    }
}

fn defaults(args: &super::PolicyArgs) -> Defaults {
    let d = (args.default_level.into(), args.default_version);
    Defaults {
        enforce: d,
        audit: (Level::Privileged, Version::Latest),
        warn: (Level::Privileged, Version::Latest),
    }
}

/// The policies to judge a workload in `ns` by, with their source: the flag's, or the
/// namespace's enforce level and any warn/audit level that adds something.
fn policies_for(
    fixed: Option<&Policy>,
    ns: &str,
    ns_policy: Option<&NamespacePolicy>,
) -> Vec<(Policy, String)> {
    if let Some(p) = fixed {
        return vec![(p.clone(), "flag".into())];
    }
    let Some(np) = ns_policy else {
        return vec![(
            Policy::new(Level::Privileged, Version::Latest),
            "default".into(),
        )];
    };
    let mut out = vec![(np.enforce.policy.clone(), format!("namespace/{ns} enforce"))];
    for mode in [Mode::Warn, Mode::Audit] {
        let p = &np.get(mode).policy;
        if p.level() != Level::Privileged && !out.iter().any(|(q, _)| q == p) {
            out.push((p.clone(), format!("namespace/{ns} {}", mode.as_str())));
        }
    }
    out
}

pub fn check(g: &GlobalArgs, args: CheckArgs) -> anyhow::Result<i32> {
    let selector = selector(g)?;
    let fixed = match args.policy.level {
        None | Some(LevelArg::FromNamespace) => None,
        Some(LevelArg::Privileged) => {
            Some(Policy::new(Level::Privileged, args.policy.policy_version))
        }
        Some(LevelArg::Baseline) => Some(Policy::new(Level::Baseline, args.policy.policy_version)),
        Some(LevelArg::Restricted) => {
            Some(Policy::new(Level::Restricted, args.policy.policy_version))
        }
    };
    let snap = read(g)?;
    let defaults = defaults(&args.policy);
    let ns_policies: HashMap<&str, NamespacePolicy> = snap
        .namespaces
        .iter()
        .map(|(n, l)| (n.as_str(), namespace::from_labels(Some(l), &defaults)))
        .collect();
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for v in &snap.workloads {
        match template(v, &selector) {
            Template::Skip(s) => skipped.push(s),
            Template::Problem(p) => errors.push(p),
            Template::Some(t) => {
                let ns = str_at(v, "/metadata/namespace");
                for (policy, source) in policies_for(fixed.as_ref(), ns, ns_policies.get(ns)) {
                    let eval = psa::evaluate(&policy, &t.meta, &t.spec);
                    results.push(PsaResult::new(subject(v), &policy, source, &eval));
                }
            }
        }
    }
    if let Some(p) = &snap.partial {
        errors.push(InputProblem {
            location: "cluster".into(),
            message: format!("partial results: {p}"),
        });
    }
    for e in &errors {
        eprintln!("error: {}: {}", e.location, e.message);
    }
    let had_errors = !errors.is_empty();
    let report = PsaReport::new(results, skipped, errors, g.verbose > 0);
    let code = emit(g, &report)?;
    Ok(if had_errors { exit::ERROR } else { code })
}

/// Levels from least to most strict.
const LADDER: [Level; 3] = [Level::Privileged, Level::Baseline, Level::Restricted];

fn next(level: Level) -> Option<Level> {
    match level {
        Level::Privileged => Some(Level::Baseline),
        Level::Baseline => Some(Level::Restricted),
        Level::Restricted => None,
    }
}

/// Plan one namespace from its labels and its workloads' templates.
pub fn plan_namespace(
    name: &str,
    labels: &BTreeMap<String, String>,
    templates: &[(Subject, &workload::PodTemplate)],
    version: Version,
) -> NamespacePlan {
    let np = namespace::from_labels(Some(labels), &Defaults::default());
    // The strictest level all workloads satisfy; the evaluation one level up.
    let allowed_at = |level: Level| {
        let policy = Policy::new(level, version);
        templates
            .iter()
            .map(|(s, t)| (s, psa::evaluate(&policy, &t.meta, &t.spec)))
            .collect::<Vec<_>>()
    };
    let mut satisfies = Level::Privileged;
    for level in LADDER.iter().skip(1) {
        if allowed_at(*level).iter().all(|(_, e)| e.allowed()) {
            satisfies = *level;
        } else {
            break;
        }
    }
    let next_level = next(satisfies);
    let blockers = next_level
        .map(|l| {
            allowed_at(l)
                .into_iter()
                .filter(|(_, e)| !e.allowed())
                .map(|(s, e)| Blocker {
                    subject: s.clone(),
                    violations: e
                        .violations
                        .iter()
                        .map(|v| format!("{} ({})", v.reason, v.detail))
                        .collect(),
                    fixes: e.violations.iter().map(|v| v.fix.clone()).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let enforced = np.enforce.policy.level();
    let enforce_too_strict = enforced > satisfies;
    let command = if satisfies > enforced {
        let mut cmd = format!(
            "kubectl label --overwrite namespace {name} pod-security.kubernetes.io/enforce={satisfies} pod-security.kubernetes.io/enforce-version={version}"
        );
        if let Some(n) = next_level {
            cmd.push_str(&format!(" pod-security.kubernetes.io/warn={n}"));
        }
        cmd
    } else {
        String::new()
    };
    NamespacePlan {
        namespace: name.to_string(),
        enforce: np.enforce.policy.label(),
        warn: np.warn.policy.label(),
        audit: np.audit.policy.label(),
        label_errors: np.errors.clone(),
        workloads: templates.len(),
        satisfies,
        enforce_too_strict,
        next_level,
        blockers,
        command,
    }
}

pub fn plan(g: &GlobalArgs, args: PlanArgs) -> anyhow::Result<i32> {
    let selector = selector(g)?;
    let snap = read(g)?;
    let mut templates: BTreeMap<String, Vec<(Subject, workload::PodTemplate)>> = snap
        .namespaces
        .keys()
        .map(|n| (n.clone(), Vec::new()))
        .collect();
    let mut problems = Vec::new();
    for v in &snap.workloads {
        match template(v, &selector) {
            Template::Some(t) => {
                let ns = str_at(v, "/metadata/namespace").to_string();
                templates.entry(ns).or_default().push((subject(v), *t));
            }
            Template::Problem(p) => problems.push(p),
            Template::Skip(_) => {}
        }
    }
    let empty = BTreeMap::new();
    let plans = templates
        .iter()
        .map(|(ns, ts)| {
            let refs: Vec<(Subject, &workload::PodTemplate)> =
                ts.iter().map(|(s, t)| (s.clone(), t)).collect();
            plan_namespace(
                ns,
                snap.namespaces.get(ns).unwrap_or(&empty),
                &refs,
                args.policy_version,
            )
        })
        .collect();
    for p in &problems {
        eprintln!("error: {}: {}", p.location, p.message);
    }
    if let Some(p) = &snap.partial {
        eprintln!("error: partial results: {p}");
    }
    let report = PlanReport::new(args.policy_version.to_string(), plans);
    let code = emit(g, &report)?;
    Ok(if snap.partial.is_some() || !problems.is_empty() {
        exit::ERROR
    } else {
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, spec: Value) -> (Subject, workload::PodTemplate) {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "spec": spec});
        let t = workload::extract(WorkloadKind::Pod, &v)
            .expect("valid")
            .expect("a pod has a template");
        (subject(&v), t)
    }

    fn restricted_ok() -> Value {
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
               "containers": [{"name": "c", "image": "x", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]})
    }

    #[test]
    fn a_hardened_namespace_can_enforce_restricted() {
        let pods = [pod("a", restricted_ok()), pod("b", restricted_ok())];
        let refs: Vec<_> = pods.iter().map(|(s, t)| (s.clone(), t)).collect();
        let p = plan_namespace("ns", &BTreeMap::new(), &refs, Version::Latest);
        assert_eq!(p.satisfies, Level::Restricted);
        assert_eq!(p.next_level, None);
        assert!(p.blockers.is_empty());
        assert_eq!(
            p.command,
            "kubectl label --overwrite namespace ns pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest"
        );
        assert!(!p.enforce_too_strict);
    }

    #[test]
    fn one_bare_pod_holds_the_namespace_at_baseline() {
        let pods = [
            pod("good", restricted_ok()),
            pod("bare", json!({"containers": [{"name": "c", "image": "x"}]})),
        ];
        let refs: Vec<_> = pods.iter().map(|(s, t)| (s.clone(), t)).collect();
        let labels: BTreeMap<String, String> = [(
            "pod-security.kubernetes.io/enforce".to_string(),
            "baseline".to_string(),
        )]
        .into();
        let p = plan_namespace("ns", &labels, &refs, Version::Latest);
        assert_eq!(p.satisfies, Level::Baseline);
        assert_eq!(p.next_level, Some(Level::Restricted));
        assert_eq!(p.blockers.len(), 1);
        assert_eq!(p.blockers[0].subject.name, "bare");
        assert!(
            p.blockers[0]
                .violations
                .iter()
                .any(|v| v.starts_with("allowPrivilegeEscalation != false"))
        );
        assert_eq!(p.blockers[0].violations.len(), p.blockers[0].fixes.len());
        assert!(p.command.is_empty(), "already enforcing what it satisfies");
    }

    #[test]
    fn enforcing_more_than_the_workloads_satisfy_is_flagged() {
        let pods = [pod(
            "priv",
            json!({"hostPID": true, "containers": [{"name": "c", "image": "x"}]}),
        )];
        let refs: Vec<_> = pods.iter().map(|(s, t)| (s.clone(), t)).collect();
        let labels: BTreeMap<String, String> = [(
            "pod-security.kubernetes.io/enforce".to_string(),
            "restricted".to_string(),
        )]
        .into();
        let p = plan_namespace("ns", &labels, &refs, Version::Latest);
        assert_eq!(p.satisfies, Level::Privileged);
        assert!(p.enforce_too_strict);
        assert_eq!(p.next_level, Some(Level::Baseline));
    }

    #[test]
    fn warn_and_audit_add_policies_only_when_they_say_something() {
        let labels: BTreeMap<String, String> = [
            (
                "pod-security.kubernetes.io/enforce".to_string(),
                "baseline".to_string(),
            ),
            (
                "pod-security.kubernetes.io/warn".to_string(),
                "restricted".to_string(),
            ),
            (
                "pod-security.kubernetes.io/audit".to_string(),
                "restricted".to_string(),
            ),
        ]
        .into();
        let np = namespace::from_labels(Some(&labels), &Defaults::default());
        let ps = policies_for(None, "team", Some(&np));
        let sources: Vec<&str> = ps.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(sources, ["namespace/team enforce", "namespace/team warn"]);
        let flag = Policy::new(Level::Restricted, Version::Latest);
        assert_eq!(policies_for(Some(&flag), "team", Some(&np)).len(), 1);
    }
}
