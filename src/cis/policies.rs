//! Section 5 (policies) judged on what the API server holds, pure: [`ClusterFacts`] in,
//! one [`CheckResult`] per check out. RBAC checks read the effective rules per subject
//! ([`super::rbac`]); workload checks read each pod template with the Pod Security engine
//! ([`crate::psa`]) or the spec fields the recommendation names. The control plane's own
//! subjects, bootstrap roles and bindings and the system namespaces are excluded, and
//! every result says so in its source. Offenders are listed in `observed` (capped, with
//! the count) and one by one in the evidence. Checks that need judgement stay WARN with
//! the reason, or with what was found for a person to review.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::cluster::{ClusterFacts, SYSTEM_NAMESPACES};
use super::eval::{self, CheckResult, Evidence, SectionResult, Selection, State, Verdict};
use super::facts::NodeFacts;
use super::profile::{ApiCheck, Benchmark, Check, Target};
use super::rbac::{self, Grant};
use crate::psa::workload::{self, PodTemplate, WorkloadKind};
use crate::psa::{self, CheckId, Level, Policy, Version};

/// Offenders named in `observed` before "… and N more" (all go into the evidence, up to
/// [`EVIDENCE_CAP`]).
pub const OBSERVED_CAP: usize = 10;
pub const EVIDENCE_CAP: usize = 100;

const PSA_ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// What was left out of every judgement, for the report's notes.
pub fn exclusions() -> String {
    format!(
        "section 5 excludes the control plane's own: namespaces {}; system: users (not system:anonymous), the groups system:masters, system:nodes and system:serviceaccounts:<system namespace>; service accounts in the system namespaces; bootstrap roles and bindings (label kubernetes.io/bootstrapping=rbac-defaults); pods and templates owned by a controller are judged through their owner",
        SYSTEM_NAMESPACES.join(", ")
    )
}

/// One workload (a pod or pod-template object not owned by a controller) outside the
/// system namespaces.
struct Workload {
    /// `Deployment ns/name`.
    label: String,
    namespace: String,
    template: PodTemplate,
    /// Pod Security violations at baseline and restricted (latest), deduplicated by check.
    violations: Vec<psa::Violation>,
}

/// Facts prepared once for all checks.
struct Ctx<'a> {
    f: &'a ClusterFacts,
    grants: Vec<Grant>,
    workloads: Vec<Workload>,
    /// Namespaces outside the system ones.
    namespaces: Vec<String>,
    /// Objects whose pod template could not be read.
    unreadable: Vec<String>,
}

fn str_at<'v>(v: &'v serde_json::Value, p: &str) -> &'v str {
    v.pointer(p)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

fn is_system_ns(ns: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&ns)
}

impl<'a> Ctx<'a> {
    fn new(f: &'a ClusterFacts) -> Ctx<'a> {
        let baseline = Policy::new(Level::Baseline, Version::Latest);
        let restricted = Policy::new(Level::Restricted, Version::Latest);
        let mut workloads = Vec::new();
        let mut unreadable = Vec::new();
        for v in &f.workloads {
            let ns = str_at(v, "/metadata/namespace");
            if is_system_ns(ns) {
                continue;
            }
            let controlled = v
                .pointer("/metadata/ownerReferences")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|o| {
                    o.iter().any(|r| {
                        r.get("controller").and_then(serde_json::Value::as_bool) == Some(true)
                    })
                });
            if controlled {
                continue;
            }
            let Some(kind) = WorkloadKind::from_type(str_at(v, "/apiVersion"), str_at(v, "/kind"))
            else {
                continue;
            };
            let label = format!("{kind} {ns}/{}", str_at(v, "/metadata/name"));
            match workload::extract(kind, v) {
                Ok(Some(template)) => {
                    let mut violations =
                        psa::evaluate(&baseline, &template.meta, &template.spec).violations;
                    for x in psa::evaluate(&restricted, &template.meta, &template.spec).violations {
                        if !violations.iter().any(|y| y.check == x.check) {
                            violations.push(x);
                        }
                    }
                    workloads.push(Workload {
                        label,
                        namespace: ns.to_string(),
                        template,
                        violations,
                    });
                }
                Ok(None) => {}
                Err(e) => unreadable.push(format!("{label}: {e}")),
            }
        }
        let namespaces = f
            .namespaces
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| !is_system_ns(n))
            .collect();
        Ctx {
            f,
            grants: rbac::grants(f),
            workloads,
            namespaces,
            unreadable,
        }
    }

    fn labels(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.f
            .namespaces
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(ns))
            .and_then(|n| n.metadata.labels.as_ref())
    }

    /// A namespace's enforced Pod Security level (`privileged` when unlabelled, as the
    /// admission plugin's default configuration has it).
    fn enforced(&self, ns: &str) -> Level {
        self.labels(ns)
            .and_then(|l| l.get(PSA_ENFORCE))
            .and_then(|v| v.parse().ok())
            .unwrap_or(Level::Privileged)
    }
}

/// A judgement before it becomes a [`CheckResult`].
struct Judgement {
    state: State,
    /// `what` of each offender and the detail.
    offenders: Vec<(String, String)>,
    /// Plural noun for the offenders (`subjects`, `workloads`).
    noun: &'static str,
    expected: String,
    source: String,
    reason: Option<String>,
}

impl Judgement {
    /// FAIL with the offenders, PASS with none.
    fn offenders(
        offenders: Vec<(String, String)>,
        noun: &'static str,
        expected: &str,
        source: &str,
    ) -> Judgement {
        Judgement {
            state: if offenders.is_empty() {
                State::Pass
            } else {
                State::Fail
            },
            offenders,
            noun,
            expected: expected.to_string(),
            source: source.to_string(),
            reason: None,
        }
    }

    /// Offenders found are for a person to review: WARN with the reason, PASS with none.
    fn review(mut self, reason: &str) -> Judgement {
        if self.state == State::Fail {
            self.state = State::Warn;
            self.reason = Some(reason.to_string());
        }
        self
    }
}

fn observed(offenders: &[(String, String)], noun: &str) -> String {
    if offenders.is_empty() {
        return format!("no {noun}");
    }
    let shown: Vec<String> = offenders
        .iter()
        .take(OBSERVED_CAP)
        .map(|(w, d)| {
            if d.is_empty() {
                w.clone()
            } else {
                format!("{w} ({d})")
            }
        })
        .collect();
    let more = offenders.len().saturating_sub(OBSERVED_CAP);
    let mut s = format!("{} {noun}: {}", offenders.len(), shown.join("; "));
    if more > 0 {
        s.push_str(&format!("; … and {more} more"));
    }
    s
}

const RBAC_SOURCE: &str = "API: effective RBAC per subject from clusterroles, roles, clusterrolebindings, rolebindings (system subjects and bootstrap bindings excluded)";
const WORKLOAD_SOURCE: &str = "API: pods and pod-template kinds outside the system namespaces";

fn rights(ctx: &Ctx, verbs: &[&str], group: &str, resources: &[&str], expected: &str) -> Judgement {
    let mut by: BTreeMap<rbac::SubjectKey, Vec<String>> = BTreeMap::new();
    for r in resources {
        for (s, how) in rbac::who_can(&ctx.grants, verbs, group, r) {
            by.entry(s).or_default().extend(how);
        }
    }
    let offenders = by
        .into_iter()
        .map(|(s, how)| (s.to_string(), how.join("; ")))
        .collect();
    Judgement::offenders(offenders, "subjects", expected, RBAC_SOURCE)
}

fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// Workloads with a Pod Security violation of `check` (whose detail contains `needle`,
/// when given).
fn psa_offenders(ctx: &Ctx, check: CheckId, needle: Option<&str>) -> Vec<(String, String)> {
    ctx.workloads
        .iter()
        .filter_map(|w| {
            w.violations
                .iter()
                .find(|v| v.check == check && needle.is_none_or(|n| v.detail.contains(n)))
                .map(|v| (w.label.clone(), format!("{}: {}", v.reason, v.detail)))
        })
        .collect()
}

/// Workloads where `f` finds something, with what it found.
fn spec_offenders(ctx: &Ctx, f: impl Fn(&PodSpec) -> Vec<String>) -> Vec<(String, String)> {
    ctx.workloads
        .iter()
        .filter_map(|w| {
            let found = f(&w.template.spec);
            (!found.is_empty()).then(|| (w.label.clone(), found.join(", ")))
        })
        .collect()
}

/// 5.2.x: FAIL when workloads do it; otherwise WARN when namespaces would still admit it
/// (their enforce level is below `level`); PASS when nothing does and nothing would.
fn admission(ctx: &Ctx, offenders: Vec<(String, String)>, level: Level, what: &str) -> Judgement {
    let expected = format!(
        "no workload with {what}, and every namespace enforcing Pod Security {level} or stricter"
    );
    let mut j = Judgement::offenders(offenders, "workloads", &expected, WORKLOAD_SOURCE);
    if j.state == State::Pass {
        let open: Vec<(String, String)> = ctx
            .namespaces
            .iter()
            .filter(|ns| ctx.enforced(ns) < level)
            .map(|ns| (ns.clone(), format!("enforce={}", ctx.enforced(ns))))
            .collect();
        if !open.is_empty() {
            j = Judgement {
                state: State::Warn,
                offenders: open,
                noun: "namespaces that would admit it",
                expected,
                source: format!("{WORKLOAD_SOURCE}; namespace labels {PSA_ENFORCE}"),
                reason: Some(format!(
                    "no workload has {what} today, but these namespaces do not enforce {level}: label them, or confirm another admission policy covers them"
                )),
            };
        }
    }
    j
}

fn judge(api: ApiCheck, ctx: &Ctx) -> Judgement {
    let f = ctx.f;
    match api {
        ApiCheck::ClusterAdmin => {
            let offenders = ctx
                .grants
                .iter()
                .filter(|g| !g.bootstrap && !g.subject.is_system())
                .filter(|g| {
                    (g.role_ref.kind == "ClusterRole" && g.role_ref.name == "cluster-admin")
                        || (g.namespace.is_none() && g.rules.iter().any(rbac::is_full_wildcard))
                })
                .map(|g| (g.subject.to_string(), format!("{} → {}", g.binding, g.role)))
                .collect();
            Judgement::offenders(
                offenders,
                "subjects",
                "cluster-admin (or * on * in *) bound only to the control plane's own subjects (system:masters)",
                RBAC_SOURCE,
            )
        }
        ApiCheck::SecretsAccess => rights(
            ctx,
            &["get", "list", "watch"],
            "",
            &["secrets"],
            "no subject outside the control plane may get, list or watch secrets",
        ),
        ApiCheck::RbacWildcards => {
            let mut offenders = Vec::new();
            let mut look =
                |label: String,
                 meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                 rules: &Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>| {
                    if rbac::is_bootstrap(meta)
                        || meta
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("system:"))
                        || meta.namespace.as_deref().is_some_and(is_system_ns)
                    {
                        return;
                    }
                    let mut where_: BTreeSet<&str> = BTreeSet::new();
                    for r in rules.iter().flatten() {
                        if r.verbs.iter().any(|v| v == "*") {
                            where_.insert("verbs");
                        }
                        if r.resources
                            .iter()
                            .flatten()
                            .any(|x| x == "*" || x.starts_with("*/"))
                        {
                            where_.insert("resources");
                        }
                        if r.api_groups.iter().flatten().any(|x| x == "*") {
                            where_.insert("apiGroups");
                        }
                    }
                    if !where_.is_empty() {
                        offenders.push((
                            label,
                            format!("* in {}", where_.into_iter().collect::<Vec<_>>().join(", ")),
                        ));
                    }
                };
            for r in &f.cluster_roles {
                look(
                    format!("ClusterRole {}", r.metadata.name.as_deref().unwrap_or("")),
                    &r.metadata,
                    &r.rules,
                );
            }
            for r in &f.roles {
                look(
                    format!(
                        "Role {}/{}",
                        r.metadata.namespace.as_deref().unwrap_or(""),
                        r.metadata.name.as_deref().unwrap_or("")
                    ),
                    &r.metadata,
                    &r.rules,
                );
            }
            Judgement::offenders(
                offenders,
                "roles",
                "no * in verbs, resources or apiGroups outside the bootstrap and system: roles",
                "API: clusterroles, roles (bootstrap, system: and system-namespace roles excluded)",
            )
        }
        ApiCheck::PodCreate => rights(
            ctx,
            &["create"],
            "",
            &["pods"],
            "no subject outside the control plane may create pods",
        ),
        ApiCheck::DefaultServiceAccounts => {
            let mut offenders: Vec<(String, String)> = f
                .service_accounts
                .iter()
                .filter(|sa| sa.metadata.name.as_deref() == Some("default"))
                .filter(|sa| !sa.metadata.namespace.as_deref().is_some_and(is_system_ns))
                .filter(|sa| sa.automount_service_account_token != Some(false))
                .map(|sa| {
                    (
                        format!(
                            "ServiceAccount {}/default",
                            sa.metadata.namespace.as_deref().unwrap_or("")
                        ),
                        "automountServiceAccountToken is not false".to_string(),
                    )
                })
                .collect();
            offenders.extend(ctx.workloads.iter().filter_map(|w| {
                let sa = w
                    .template
                    .spec
                    .service_account_name
                    .as_deref()
                    .or(w.template.spec.service_account.as_deref())
                    .unwrap_or("default");
                (sa == "default" || sa.is_empty()).then(|| {
                    (
                        w.label.clone(),
                        "runs as the default service account".into(),
                    )
                })
            }));
            Judgement::offenders(
                offenders,
                "objects",
                "no workload runs as a namespace's default service account, and every default service account sets automountServiceAccountToken: false",
                "API: serviceaccounts, pods and pod-template kinds outside the system namespaces",
            )
        }
        ApiCheck::TokenAutomount => {
            let offenders = ctx
                .workloads
                .iter()
                .filter_map(|w| {
                    let spec = &w.template.spec;
                    let sa_name = spec
                        .service_account_name
                        .as_deref()
                        .or(spec.service_account.as_deref())
                        .filter(|s| !s.is_empty())
                        .unwrap_or("default");
                    let sa = f.service_accounts.iter().find(|s| {
                        s.metadata.name.as_deref() == Some(sa_name)
                            && s.metadata.namespace.as_deref() == Some(w.namespace.as_str())
                    });
                    let (mounts, why) = match (
                        spec.automount_service_account_token,
                        sa.and_then(|s| s.automount_service_account_token),
                    ) {
                        (Some(v), _) => (v, "pod spec automountServiceAccountToken: true"),
                        (None, Some(v)) => {
                            (v, "service account automountServiceAccountToken: true")
                        }
                        (None, None) => (
                            true,
                            "automountServiceAccountToken set nowhere (default true)",
                        ),
                    };
                    mounts.then(|| (w.label.clone(), format!("{why}, service account {sa_name}")))
                })
                .collect();
            Judgement::offenders(
                offenders,
                "workloads mounting a token",
                "service account tokens mounted only into workloads that call the API",
                "API: pods, pod-template kinds and serviceaccounts outside the system namespaces",
            )
            .review("whether these workloads call the API needs judgement: set automountServiceAccountToken: false on those that do not")
        }
        ApiCheck::SystemMasters => {
            let offenders: Vec<(String, String)> = ctx
                .grants
                .iter()
                .filter(|g| {
                    !g.bootstrap && g.subject.kind == "Group" && g.subject.name == "system:masters"
                })
                .map(|g| {
                    (
                        g.binding.clone(),
                        format!("binds Group system:masters to {}", g.role),
                    )
                })
                .collect();
            let mut j = Judgement::offenders(
                offenders,
                "bindings",
                "no binding names system:masters beyond the bootstrap cluster-admin binding, and no credentials issued in it",
                "API: clusterrolebindings, rolebindings",
            );
            if j.state == State::Pass {
                j.state = State::Warn;
                j.reason = Some("membership of system:masters comes from client certificates (O=system:masters), which the API does not list: check who holds such certificates".into());
            }
            j
        }
        ApiCheck::EscalationVerbs => {
            let mut a = rights(
                ctx,
                &["bind", "escalate"],
                "rbac.authorization.k8s.io",
                &["clusterroles", "roles"],
                "",
            );
            let b = rights(
                ctx,
                &["impersonate"],
                "",
                &["users", "groups", "serviceaccounts"],
                "",
            );
            let c = rights(
                ctx,
                &["impersonate"],
                "authentication.k8s.io",
                &["userextras/*", "uids"],
                "",
            );
            a.offenders.extend(b.offenders);
            a.offenders.extend(c.offenders);
            Judgement::offenders(
                a.offenders,
                "subjects",
                "no subject outside the control plane may bind, escalate or impersonate",
                RBAC_SOURCE,
            )
        }
        ApiCheck::PvCreate => rights(
            ctx,
            &["create"],
            "",
            &["persistentvolumes"],
            "no subject outside the control plane may create persistentvolumes",
        ),
        ApiCheck::NodesProxy => rights(
            ctx,
            &["get", "create"],
            "",
            &["nodes/proxy"],
            "no subject outside the control plane may reach nodes/proxy",
        ),
        ApiCheck::CsrApproval => rights(
            ctx,
            &["update", "patch"],
            "certificates.k8s.io",
            &["certificatesigningrequests/approval"],
            "no subject outside the control plane may approve certificatesigningrequests",
        ),
        ApiCheck::WebhookConfig => rights(
            ctx,
            &["create", "update", "patch", "delete"],
            "admissionregistration.k8s.io",
            &[
                "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations",
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
            ],
            "no subject outside the control plane may change admission webhooks or policies",
        ),
        ApiCheck::SaTokenCreate => rights(
            ctx,
            &["create"],
            "",
            &["serviceaccounts/token"],
            "no subject outside the control plane may create service account tokens",
        ),
        ApiCheck::PodSecurityLabels => {
            let offenders: Vec<(String, String)> = ctx
                .namespaces
                .iter()
                .filter(|ns| ctx.labels(ns).and_then(|l| l.get(PSA_ENFORCE)).is_none())
                .map(|ns| (ns.clone(), format!("no {PSA_ENFORCE} label")))
                .collect();
            let mut j = Judgement::offenders(
                offenders,
                "namespaces without a Pod Security enforce label",
                "every namespace outside the system ones labelled pod-security.kubernetes.io/enforce",
                "API: namespace labels; validatingadmissionpolicies and webhook configurations",
            );
            if j.state == State::Fail && !f.admission.is_empty() {
                j.state = State::Warn;
                j.reason = Some(format!(
                    "admission policies exist ({}): confirm they control pod security in these namespaces",
                    f.admission.join(", ")
                ));
            }
            j
        }
        ApiCheck::Privileged => admission(
            ctx,
            psa_offenders(ctx, CheckId::Privileged, None),
            Level::Baseline,
            "privileged containers",
        ),
        ApiCheck::HostPid => admission(
            ctx,
            psa_offenders(ctx, CheckId::HostNamespaces, Some("hostPID=true")),
            Level::Baseline,
            "hostPID",
        ),
        ApiCheck::HostIpc => admission(
            ctx,
            psa_offenders(ctx, CheckId::HostNamespaces, Some("hostIPC=true")),
            Level::Baseline,
            "hostIPC",
        ),
        ApiCheck::HostNetwork => admission(
            ctx,
            psa_offenders(ctx, CheckId::HostNamespaces, Some("hostNetwork=true")),
            Level::Baseline,
            "hostNetwork",
        ),
        ApiCheck::HostProcess => admission(
            ctx,
            psa_offenders(ctx, CheckId::WindowsHostProcess, None),
            Level::Baseline,
            "Windows HostProcess",
        ),
        ApiCheck::HostPath => admission(
            ctx,
            psa_offenders(ctx, CheckId::HostPathVolumes, None),
            Level::Baseline,
            "hostPath volumes",
        ),
        ApiCheck::HostPorts => admission(
            ctx,
            psa_offenders(ctx, CheckId::HostPorts, None),
            Level::Baseline,
            "hostPorts",
        ),
        ApiCheck::PrivilegeEscalation => admission(
            ctx,
            psa_offenders(ctx, CheckId::AllowPrivilegeEscalation, None),
            Level::Restricted,
            "allowPrivilegeEscalation not false",
        ),
        ApiCheck::RootContainers => {
            let mut o = psa_offenders(ctx, CheckId::RunAsNonRoot, None);
            for x in psa_offenders(ctx, CheckId::RunAsUser, None) {
                match o.iter_mut().find(|y| y.0 == x.0) {
                    Some(y) => y.1 = format!("{}; {}", y.1, x.1),
                    None => o.push(x),
                }
            }
            admission(ctx, o, Level::Restricted, "containers that may run as root")
        }
        ApiCheck::CapabilitiesAssigned => admission(
            ctx,
            psa_offenders(ctx, CheckId::CapabilitiesRestricted, None),
            Level::Restricted,
            "capabilities not dropped",
        ),
        ApiCheck::NetRaw => {
            let o = spec_offenders(ctx, |spec| {
                containers(spec)
                    .filter(|c| {
                        let caps = c
                            .security_context
                            .as_ref()
                            .and_then(|s| s.capabilities.as_ref());
                        let dropped = caps
                            .and_then(|k| k.drop.as_ref())
                            .is_some_and(|d| d.iter().any(|x| x == "ALL" || x == "NET_RAW"));
                        let added = caps
                            .and_then(|k| k.add.as_ref())
                            .is_some_and(|a| a.iter().any(|x| x == "NET_RAW" || x == "ALL"));
                        added || !dropped
                    })
                    .map(|c| format!("container {:?} keeps NET_RAW", c.name))
                    .collect()
            });
            admission(ctx, o, Level::Restricted, "NET_RAW (not dropped)")
        }
        ApiCheck::AddedCapabilities => {
            let o = spec_offenders(ctx, |spec| {
                containers(spec)
                    .filter_map(|c| {
                        let add = c
                            .security_context
                            .as_ref()?
                            .capabilities
                            .as_ref()?
                            .add
                            .as_ref()?;
                        (!add.is_empty())
                            .then(|| format!("container {:?} adds {}", c.name, add.join(",")))
                    })
                    .collect()
            });
            admission(ctx, o, Level::Baseline, "added capabilities")
        }
        ApiCheck::Seccomp => {
            let mut o = psa_offenders(ctx, CheckId::SeccompProfileRestricted, None);
            o.extend(
                psa_offenders(ctx, CheckId::SeccompProfileBaseline, None)
                    .into_iter()
                    .filter(|x| !o.iter().any(|y| y.0 == x.0))
                    .collect::<Vec<_>>(),
            );
            Judgement::offenders(
                o,
                "workloads",
                "every workload sets seccompProfile RuntimeDefault or Localhost",
                WORKLOAD_SOURCE,
            )
        }
        ApiCheck::NetworkPolicies => {
            let with: BTreeSet<&str> = f
                .network_policies
                .iter()
                .filter_map(|p| p.metadata.namespace.as_deref())
                .collect();
            let offenders = ctx
                .namespaces
                .iter()
                .filter(|ns| !with.contains(ns.as_str()))
                .map(|ns| (ns.clone(), String::new()))
                .collect();
            Judgement::offenders(
                offenders,
                "namespaces without a NetworkPolicy",
                "at least one NetworkPolicy in every namespace outside the system ones",
                "API: namespaces, networkpolicies",
            )
        }
        ApiCheck::SecretsInEnv => {
            let o = spec_offenders(ctx, |spec| {
                let mut out = Vec::new();
                for c in containers(spec) {
                    for e in c.env.iter().flatten() {
                        if let Some(r) = e
                            .value_from
                            .as_ref()
                            .and_then(|v| v.secret_key_ref.as_ref())
                        {
                            out.push(format!(
                                "container {:?} env {} from secret {}",
                                c.name, e.name, r.name
                            ));
                        }
                    }
                    for e in c.env_from.iter().flatten() {
                        if let Some(r) = &e.secret_ref {
                            out.push(format!("container {:?} envFrom secret {}", c.name, r.name));
                        }
                    }
                }
                out
            });
            Judgement::offenders(
                o,
                "workloads",
                "no secret read into environment variables (mount secrets as files)",
                WORKLOAD_SOURCE,
            )
        }
        ApiCheck::DefaultNamespace => {
            let mut o: Vec<(String, String)> = ctx
                .workloads
                .iter()
                .filter(|w| w.namespace == "default")
                .map(|w| (w.label.clone(), String::new()))
                .collect();
            o.extend(
                f.service_accounts
                    .iter()
                    .filter(|s| {
                        s.metadata.namespace.as_deref() == Some("default")
                            && s.metadata.name.as_deref() != Some("default")
                    })
                    .map(|s| {
                        (
                            format!(
                                "ServiceAccount default/{}",
                                s.metadata.name.as_deref().unwrap_or("")
                            ),
                            String::new(),
                        )
                    }),
            );
            o.extend(
                f.roles
                    .iter()
                    .filter(|r| r.metadata.namespace.as_deref() == Some("default"))
                    .map(|r| {
                        (
                            format!("Role default/{}", r.metadata.name.as_deref().unwrap_or("")),
                            String::new(),
                        )
                    }),
            );
            o.extend(
                f.role_bindings
                    .iter()
                    .filter(|r| {
                        r.metadata.namespace.as_deref() == Some("default")
                            && !rbac::is_bootstrap(&r.metadata)
                    })
                    .map(|r| {
                        (
                            format!(
                                "RoleBinding default/{}",
                                r.metadata.name.as_deref().unwrap_or("")
                            ),
                            String::new(),
                        )
                    }),
            );
            Judgement::offenders(
                o,
                "objects in the default namespace",
                "nothing in the default namespace but its default service account (and NetworkPolicies)",
                "API: pods, pod-template kinds, serviceaccounts, roles, rolebindings in namespace default",
            )
        }
    }
}

fn result(c: &Check, j: Judgement) -> CheckResult {
    let obs = observed(&j.offenders, j.noun);
    let verdict = match j.state {
        State::Pass => Verdict::Pass,
        _ => Verdict::Fail,
    };
    let evidence = j
        .offenders
        .iter()
        .take(EVIDENCE_CAP)
        .map(|(w, d)| Evidence {
            what: w.clone(),
            observed: d.clone(),
            expected: j.expected.clone(),
            source: j.source.clone(),
            verdict,
        })
        .collect();
    CheckResult {
        id: c.id.clone(),
        title: c.title.clone(),
        group: String::new(),
        group_title: String::new(),
        component: None,
        automated: c.automated,
        state: j.state,
        severity: c.severity,
        observed: Some(obs),
        expected: j.expected,
        source: Some(j.source),
        reason: j.reason,
        evidence,
        remediation: c.remediation.trim().to_string(),
    }
}

/// Evaluate the selected policies (section 5) checks of `benchmark` on `facts`; also
/// the notes for the report (what was excluded, what could not be read).
pub fn evaluate(
    benchmark: &Benchmark,
    facts: &ClusterFacts,
    sel: &Selection,
) -> (Vec<SectionResult>, Vec<String>) {
    let ctx = Ctx::new(facts);
    let none = NodeFacts::default();
    let mut out = Vec::new();
    for s in benchmark
        .sections
        .iter()
        .filter(|s| s.target == Target::Policies)
    {
        let mut results = Vec::new();
        for g in &s.groups {
            for c in &g.checks {
                if !sel.wants(&c.id, &g.id) {
                    continue;
                }
                let skipped = sel.skips(&c.id, &g.id);
                let mut r = match c.api {
                    Some(api) if !skipped => result(c, judge(api, &ctx)),
                    _ => eval::evaluate_check(c, &none, skipped),
                };
                r.group = g.id.clone();
                r.group_title = g.title.clone();
                results.push(r);
            }
        }
        if results.is_empty() && !sel.checks.is_empty() {
            continue;
        }
        out.push(SectionResult {
            id: s.id.clone(),
            title: s.title.clone(),
            target: s.target,
            results,
        });
    }
    let mut notes = vec![exclusions()];
    for u in &ctx.unreadable {
        notes.push(format!("pod template not evaluated: {u}"));
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cis::profile::load_shipped;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("fixture")
    }

    fn ns(name: &str, labels: serde_json::Value) -> k8s_openapi::api::core::v1::Namespace {
        from(json!({"metadata": {"name": name, "labels": labels}}))
    }

    fn run(f: &ClusterFacts) -> BTreeMap<String, (State, String)> {
        let b = load_shipped("cis-1.12").expect("benchmark");
        let (sections, _) = evaluate(&b, f, &Selection::default());
        sections
            .into_iter()
            .flat_map(|s| s.results)
            .map(|r| (r.id, (r.state, r.observed.unwrap_or_default())))
            .collect()
    }

    fn base() -> ClusterFacts {
        ClusterFacts {
            namespaces: vec![
                ns("kube-system", json!({})),
                ns(
                    "apps",
                    json!({"pod-security.kubernetes.io/enforce": "restricted"}),
                ),
            ],
            cluster_roles: vec![
                from(
                    json!({"metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                    "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
                ),
                from(json!({"metadata": {"name": "edit"},
                    "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "create"]}]})),
            ],
            cluster_role_bindings: vec![
                from(
                    json!({"metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "Group", "name": "system:masters"}]}),
                ),
                from(json!({"metadata": {"name": "kcm"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                    "subjects": [{"kind": "User", "name": "system:kube-controller-manager"},
                                 {"kind": "ServiceAccount", "name": "x", "namespace": "kube-system"}]})),
            ],
            service_accounts: vec![from(
                json!({"metadata": {"name": "default", "namespace": "apps"}, "automountServiceAccountToken": false}),
            )],
            network_policies: vec![from(
                json!({"metadata": {"name": "deny", "namespace": "apps"}, "spec": {"podSelector": {}}}),
            )],
            ..Default::default()
        }
    }

    #[test]
    fn clean_facts_pass_and_system_subjects_are_excluded() {
        let r = run(&base());
        for id in [
            "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5", "5.2.1", "5.2.2", "5.3.2", "5.4.1",
            "5.6.4",
        ] {
            assert_eq!(r[id].0, State::Pass, "{id}: {}", r[id].1);
        }
        assert_eq!(r["5.3.1"].0, State::Warn);
    }

    #[test]
    fn findings_name_subjects_and_workloads() {
        let mut f = base();
        f.namespaces.push(ns("team", json!({})));
        f.cluster_role_bindings.push(from(json!({"metadata": {"name": "all-auth"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:authenticated"}]})));
        f.role_bindings.push(from(json!({"metadata": {"name": "devs", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "ci"}]})));
        f.workloads.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team"},
            "spec": {"template": {"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i",
                "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}},
                "envFrom": [{"secretRef": {"name": "creds"}}]}]}}}}));
        // Owned by the Deployment: judged through its owner, not twice.
        f.workloads.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "team", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}));
        // System namespace workloads are the control plane's.
        f.workloads.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "proxy", "namespace": "kube-system"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i"}]}}));
        let r = run(&f);
        let fail = |id: &str, who: &str| {
            assert_eq!(r[id].0, State::Fail, "{id}: {}", r[id].1);
            assert!(r[id].1.contains(who), "{id} should name {who}: {}", r[id].1);
        };
        fail("5.1.1", "Group system:authenticated");
        fail("5.1.2", "ServiceAccount team/ci");
        fail("5.1.4", "ServiceAccount team/ci");
        fail("5.1.5", "Deployment team/web");
        fail("5.2.2", "Deployment team/web");
        fail("5.2.5", "Deployment team/web");
        fail("5.2.9", "SYS_ADMIN");
        fail("5.3.2", "team");
        fail("5.4.1", "envFrom secret creds");
        assert!(
            r["5.1.3"].0 == State::Pass,
            "edit has no wildcard: {}",
            r["5.1.3"].1
        );
        assert!(!r["5.2.5"].1.contains("kube-system"), "{}", r["5.2.5"].1);
        assert!(!r["5.2.2"].1.contains("web-1"), "{}", r["5.2.2"].1);
        assert_eq!(r["5.1.6"].0, State::Warn, "token mounts need judgement");
    }

    #[test]
    fn long_lists_are_capped_with_a_count() {
        let offenders: Vec<(String, String)> = (0..25)
            .map(|i| (format!("ns-{i}"), String::new()))
            .collect();
        let s = observed(&offenders, "namespaces");
        assert!(s.starts_with("25 namespaces: ns-0; "), "{s}");
        assert!(s.ends_with("… and 15 more"), "{s}");
    }
}
