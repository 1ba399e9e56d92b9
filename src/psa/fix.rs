//! Safe automatic fixes: patch a manifest so it satisfies the restricted level where a
//! change cannot alter what the workload is allowed to do beyond hardening it.
//!
//! Patched: `allowPrivilegeEscalation: false` where unset, `capabilities.drop` gains
//! `ALL`, pod-level `runAsNonRoot: true` where unset, pod-level `seccompProfile`
//! `RuntimeDefault` where unset. Never patched (left as findings): anything set explicitly
//! to a forbidden value, host namespaces, hostPath, privileged, added capabilities.

use serde_json::{Map, Value, json};

use super::CheckId;
use super::workload::WorkloadKind;

/// One change made to an object, as a field path and the value written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub path: String,
    pub value: String,
}

/// Apply the safe patches for the checks that failed on `object` (of `kind`). Returns the
/// changes made; an empty list means nothing could be fixed safely.
pub fn patch(kind: WorkloadKind, object: &mut Value, failed_checks: &[CheckId]) -> Vec<Change> {
    let mut changes = Vec::new();
    let pointer = kind.template_pointer();
    let prefix = if pointer.is_empty() {
        String::new()
    } else {
        format!("{}.", pointer.trim_start_matches('/').replace('/', "."))
    };
    let Some(spec) = object
        .pointer_mut(pointer)
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    else {
        return changes;
    };
    let failed = |id: CheckId| failed_checks.contains(&id);
    let windows = spec
        .get("os")
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
        == Some("windows");

    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (i, c) in containers.iter_mut().enumerate() {
            let Some(c) = c.as_object_mut() else { continue };
            let at = format!("{prefix}spec.{list}[{i}].securityContext");
            if !windows && failed(CheckId::AllowPrivilegeEscalation) {
                let sc = object_entry(c, "securityContext");
                if let Some(sc) = sc
                    && sc
                        .get("allowPrivilegeEscalation")
                        .is_none_or(Value::is_null)
                {
                    sc.insert("allowPrivilegeEscalation".into(), Value::Bool(false));
                    changes.push(Change {
                        path: format!("{at}.allowPrivilegeEscalation"),
                        value: "false".into(),
                    });
                }
            }
            if !windows && failed(CheckId::CapabilitiesRestricted) {
                let caps = object_entry(c, "securityContext")
                    .and_then(|sc| object_entry(sc, "capabilities"));
                if let Some(caps) = caps {
                    let drop = caps
                        .entry("drop")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if drop.is_null() {
                        *drop = Value::Array(Vec::new());
                    }
                    if let Some(d) = drop.as_array_mut()
                        && !d.iter().any(|x| x == "ALL")
                    {
                        d.push(Value::String("ALL".into()));
                        changes.push(Change {
                            path: format!("{at}.capabilities.drop"),
                            value: "[\"ALL\"]".into(),
                        });
                    }
                }
            }
        }
    }

    let needs_non_root = failed(CheckId::RunAsNonRoot);
    let needs_seccomp = !windows && failed(CheckId::SeccompProfileRestricted);
    if (needs_non_root || needs_seccomp)
        && let Some(psc) = object_entry(spec, "securityContext")
    {
        if needs_non_root && psc.get("runAsNonRoot").is_none_or(Value::is_null) {
            psc.insert("runAsNonRoot".into(), Value::Bool(true));
            changes.push(Change {
                path: format!("{prefix}spec.securityContext.runAsNonRoot"),
                value: "true".into(),
            });
        }
        if needs_seccomp && psc.get("seccompProfile").is_none_or(Value::is_null) {
            psc.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
            changes.push(Change {
                path: format!("{prefix}spec.securityContext.seccompProfile.type"),
                value: "RuntimeDefault".into(),
            });
        }
    }
    changes
}

/// The object at `key`, created if absent or null; `None` if something else is there.
fn object_entry<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = m.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psa::{Policy, evaluate, workload};

    fn violations(kind: WorkloadKind, v: &Value) -> Vec<CheckId> {
        let t = workload::extract(kind, v).unwrap().unwrap();
        evaluate(
            &Policy::parse("restricted", "latest").unwrap(),
            &t.meta,
            &t.spec,
        )
        .violations
        .iter()
        .map(|v| v.check)
        .collect()
    }

    #[test]
    fn bare_deployment_is_fixed_completely() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}],
              "initContainers": [{"name": "init", "image": "busybox", "securityContext": null}]}}}});
        let before = violations(WorkloadKind::Deployment, &d);
        assert_eq!(before.len(), 4);
        let changes = patch(WorkloadKind::Deployment, &mut d, &before);
        assert_eq!(changes.len(), 6, "{changes:?}");
        assert_eq!(
            changes[0].path,
            "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation"
        );
        assert!(violations(WorkloadKind::Deployment, &d).is_empty());
    }

    #[test]
    fn explicit_bad_values_are_left_as_findings() {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"securityContext": {"runAsNonRoot": false, "seccompProfile": {"type": "Unconfined"}},
              "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": true,
                 "capabilities": {"add": ["SYS_ADMIN"]}}}]}});
        let before = violations(WorkloadKind::Pod, &p);
        let changes = patch(WorkloadKind::Pod, &mut p, &before);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let after = violations(WorkloadKind::Pod, &p);
        assert_eq!(
            after,
            vec![
                CheckId::AllowPrivilegeEscalation,
                CheckId::CapabilitiesRestricted,
                CheckId::RunAsNonRoot,
                CheckId::SeccompProfileRestricted
            ]
        );
    }

    #[test]
    fn windows_pods_get_only_run_as_non_root() {
        let mut p = json!({"kind": "Pod", "spec": {"os": {"name": "windows"}, "containers": [{"name": "c"}]}});
        let before = violations(WorkloadKind::Pod, &p);
        let changes = patch(WorkloadKind::Pod, &mut p, &before);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "spec.securityContext.runAsNonRoot");
    }
}
