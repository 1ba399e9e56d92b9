//! Effective RBAC per subject, pure: every binding (ClusterRoleBinding cluster-wide,
//! RoleBinding in its namespace) resolved to its role's rules (aggregated ClusterRoles as
//! the API returns them, rules already filled in by the aggregation controller), keyed by
//! subject. `who_can` answers "which subjects may VERB RESOURCE" with the binding and role
//! that grant it, as evidence.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cluster::{ClusterFacts, SYSTEM_NAMESPACES};

/// A subject of a binding: `User alice`, `Group devs`, `ServiceAccount ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectKey {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl SubjectKey {
    fn of(s: &Subject, binding_ns: Option<&str>) -> SubjectKey {
        let namespace = if s.kind == "ServiceAccount" {
            s.namespace.clone().or(binding_ns.map(str::to_string))
        } else {
            None
        };
        SubjectKey {
            kind: s.kind.clone(),
            name: s.name.clone(),
            namespace,
        }
    }

    /// The control plane's own identities: `system:` users (except `system:anonymous`),
    /// the `system:masters` and `system:nodes` groups and the groups of the system
    /// namespaces' service accounts, and service accounts in the system namespaces. The
    /// broad groups `system:authenticated`, `system:unauthenticated` and
    /// `system:serviceaccounts` are not: granting them something is a finding.
    pub fn is_system(&self) -> bool {
        match self.kind.as_str() {
            "User" => self.name.starts_with("system:") && self.name != "system:anonymous",
            "Group" => {
                self.name == "system:masters"
                    || self.name == "system:nodes"
                    || SYSTEM_NAMESPACES
                        .iter()
                        .any(|ns| self.name == format!("system:serviceaccounts:{ns}"))
            }
            "ServiceAccount" => self
                .namespace
                .as_deref()
                .is_some_and(|ns| SYSTEM_NAMESPACES.contains(&ns)),
            _ => false,
        }
    }
}

impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Objects the control plane created for itself: the bootstrap policy
/// (`kubernetes.io/bootstrapping=rbac-defaults`).
pub fn is_bootstrap(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/bootstrapping"))
        .is_some_and(|v| v == "rbac-defaults")
}

/// One subject's grant through one binding.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: SubjectKey,
    /// `None`: cluster-wide (ClusterRoleBinding); else the RoleBinding's namespace.
    pub namespace: Option<String>,
    /// `ClusterRoleBinding name` or `RoleBinding ns/name`.
    pub binding: String,
    /// `ClusterRole name` or `Role ns/name`.
    pub role: String,
    pub role_ref: RoleRef,
    /// The binding is part of the control plane's bootstrap policy.
    pub bootstrap: bool,
    pub rules: Vec<PolicyRule>,
}

/// Every (subject, binding) pair with the rules the binding's role holds. A binding to a
/// role that does not exist grants nothing and is left out.
pub fn grants(f: &ClusterFacts) -> Vec<Grant> {
    let cluster_role = |name: &str| {
        f.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .map(|r| r.rules.clone().unwrap_or_default())
    };
    let role = |ns: &str, name: &str| {
        f.roles
            .iter()
            .find(|r| {
                r.metadata.name.as_deref() == Some(name)
                    && r.metadata.namespace.as_deref() == Some(ns)
            })
            .map(|r| r.rules.clone().unwrap_or_default())
    };
    let mut out = Vec::new();
    for b in &f.cluster_role_bindings {
        let Some(rules) = (b.role_ref.kind == "ClusterRole")
            .then(|| cluster_role(&b.role_ref.name))
            .flatten()
        else {
            continue;
        };
        let name = b.metadata.name.clone().unwrap_or_default();
        for s in b.subjects.iter().flatten() {
            out.push(Grant {
                subject: SubjectKey::of(s, None),
                namespace: None,
                binding: format!("ClusterRoleBinding {name}"),
                role: format!("ClusterRole {}", b.role_ref.name),
                role_ref: b.role_ref.clone(),
                bootstrap: is_bootstrap(&b.metadata),
                rules: rules.clone(),
            });
        }
    }
    for b in &f.role_bindings {
        let ns = b.metadata.namespace.clone().unwrap_or_default();
        let rules = match b.role_ref.kind.as_str() {
            "ClusterRole" => cluster_role(&b.role_ref.name),
            "Role" => role(&ns, &b.role_ref.name),
            _ => None,
        };
        let Some(rules) = rules else { continue };
        let name = b.metadata.name.clone().unwrap_or_default();
        let role_name = if b.role_ref.kind == "Role" {
            format!("Role {ns}/{}", b.role_ref.name)
        } else {
            format!("ClusterRole {}", b.role_ref.name)
        };
        for s in b.subjects.iter().flatten() {
            out.push(Grant {
                subject: SubjectKey::of(s, Some(&ns)),
                namespace: Some(ns.clone()),
                binding: format!("RoleBinding {ns}/{name}"),
                role: role_name.clone(),
                role_ref: b.role_ref.clone(),
                bootstrap: is_bootstrap(&b.metadata),
                rules: rules.clone(),
            });
        }
    }
    out
}

fn has(list: &Option<Vec<String>>, want: &str) -> bool {
    list.iter().flatten().any(|x| x == "*" || x == want)
}

/// Whether a rule allows `verb` on `resource` (`pods`, or `nodes/proxy` for a subresource)
/// in API group `group`, as the RBAC authorizer matches: `*` in verbs, groups and
/// resources, and `*/sub` for a subresource of every resource. `resourceNames` narrow a
/// rule but still grant access, so they count.
pub fn allows(rule: &PolicyRule, verb: &str, group: &str, resource: &str) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || v == verb) || !has(&rule.api_groups, group) {
        return false;
    }
    let sub = resource.split_once('/').map(|(_, s)| s);
    rule.resources
        .iter()
        .flatten()
        .any(|r| r == "*" || r == resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s)))
}

/// A rule that grants everything: `*` verbs on `*` resources in `*` groups.
pub fn is_full_wildcard(rule: &PolicyRule) -> bool {
    rule.verbs.iter().any(|v| v == "*")
        && has(&rule.api_groups, "*")
        && rule.resources.iter().flatten().any(|r| r == "*")
}

/// Subjects outside the control plane that may do any of `verbs` on `resource` in
/// `group`: subject → what grants it (`get,list secrets in ns x via RoleBinding x/b →
/// Role x/r`). System subjects and bootstrap bindings are excluded.
pub fn who_can(
    grants: &[Grant],
    verbs: &[&str],
    group: &str,
    resource: &str,
) -> BTreeMap<SubjectKey, Vec<String>> {
    let mut out: BTreeMap<SubjectKey, Vec<String>> = BTreeMap::new();
    for g in grants {
        if g.bootstrap || g.subject.is_system() {
            continue;
        }
        let granted: Vec<&str> = verbs
            .iter()
            .copied()
            .filter(|v| g.rules.iter().any(|r| allows(r, v, group, resource)))
            .collect();
        if granted.is_empty() {
            continue;
        }
        let scope = match &g.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        };
        out.entry(g.subject.clone()).or_default().push(format!(
            "{} {resource} {scope} via {} → {}",
            granted.join(","),
            g.binding,
            g.role
        ));
    }
    out
}
