//! Every Pod Security check, each variant registered at the policy version it appeared.
//!
//! Each check returns `None` when the pod passes, without allocating, and otherwise a
//! [`Violation`] with upstream's exact reason and detail and our concrete fix.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, Lifecycle, PodSpec, Probe, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::policy::Level;
use super::{Violation, go_quote, join_quote, pluralize};

pub(crate) type CheckFn = fn(&ObjectMeta, &PodSpec) -> Option<Violation>;

/// Upstream's check IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    AppArmorProfile,
    CapabilitiesBaseline,
    HostNamespaces,
    HostPathVolumes,
    HostPorts,
    HostProbesAndHostLifecycle,
    Privileged,
    ProcMount,
    SeLinuxOptions,
    SeccompProfileBaseline,
    Sysctls,
    WindowsHostProcess,
    AllowPrivilegeEscalation,
    CapabilitiesRestricted,
    ProcMountRestricted,
    RestrictedVolumes,
    RunAsNonRoot,
    RunAsUser,
    SeccompProfileRestricted,
}

impl CheckId {
    pub const ALL: [CheckId; 19] = [
        CheckId::AppArmorProfile,
        CheckId::CapabilitiesBaseline,
        CheckId::HostNamespaces,
        CheckId::HostPathVolumes,
        CheckId::HostPorts,
        CheckId::HostProbesAndHostLifecycle,
        CheckId::Privileged,
        CheckId::ProcMount,
        CheckId::SeLinuxOptions,
        CheckId::SeccompProfileBaseline,
        CheckId::Sysctls,
        CheckId::WindowsHostProcess,
        CheckId::AllowPrivilegeEscalation,
        CheckId::CapabilitiesRestricted,
        CheckId::ProcMountRestricted,
        CheckId::RestrictedVolumes,
        CheckId::RunAsNonRoot,
        CheckId::RunAsUser,
        CheckId::SeccompProfileRestricted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::AppArmorProfile => "appArmorProfile",
            CheckId::CapabilitiesBaseline => "capabilities_baseline",
            CheckId::HostNamespaces => "hostNamespaces",
            CheckId::HostPathVolumes => "hostPathVolumes",
            CheckId::HostPorts => "hostPorts",
            CheckId::HostProbesAndHostLifecycle => "hostProbesAndHostLifecycle",
            CheckId::Privileged => "privileged",
            CheckId::ProcMount => "procMount",
            CheckId::SeLinuxOptions => "seLinuxOptions",
            CheckId::SeccompProfileBaseline => "seccompProfile_baseline",
            CheckId::Sysctls => "sysctls",
            CheckId::WindowsHostProcess => "windowsHostProcess",
            CheckId::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            CheckId::CapabilitiesRestricted => "capabilities_restricted",
            CheckId::ProcMountRestricted => "procMount_restricted",
            CheckId::RestrictedVolumes => "restrictedVolumes",
            CheckId::RunAsNonRoot => "runAsNonRoot",
            CheckId::RunAsUser => "runAsUser",
            CheckId::SeccompProfileRestricted => "seccompProfile_restricted",
        }
    }

    /// The level whose standard defines the check.
    pub fn level(self) -> Level {
        REGISTRY
            .iter()
            .find(|e| e.id == self)
            .map_or(Level::Baseline, |e| e.level)
    }

    /// A one-line description of what the check forbids, for rule catalogues (SARIF).
    pub fn title(self) -> &'static str {
        match self {
            CheckId::AppArmorProfile => "AppArmor profile must not be unconfined or overridden",
            CheckId::CapabilitiesBaseline => {
                "Containers must not add capabilities beyond the default set"
            }
            CheckId::HostNamespaces => {
                "Pods must not share the host's network, PID or IPC namespaces"
            }
            CheckId::HostPathVolumes => "Pods must not mount hostPath volumes",
            CheckId::HostPorts => "Containers must not bind host ports",
            CheckId::HostProbesAndHostLifecycle => {
                "Probes and lifecycle hooks must not target another host"
            }
            CheckId::Privileged => "Containers must not run privileged",
            CheckId::ProcMount => "Containers must use the default /proc mount",
            CheckId::SeLinuxOptions => "SELinux type must be a container type; user and role unset",
            CheckId::SeccompProfileBaseline => "Seccomp profile must not be Unconfined",
            CheckId::Sysctls => "Only the safe sysctls may be set",
            CheckId::WindowsHostProcess => "Windows pods must not run as HostProcess",
            CheckId::AllowPrivilegeEscalation => {
                "Containers must set allowPrivilegeEscalation=false"
            }
            CheckId::CapabilitiesRestricted => {
                "Containers must drop ALL capabilities and add only NET_BIND_SERVICE"
            }
            CheckId::ProcMountRestricted => {
                "Containers must use the default /proc mount, even in a user namespace"
            }
            CheckId::RestrictedVolumes => {
                "Only configMap, csi, downwardAPI, emptyDir, ephemeral, image, PVC, projected and secret volumes"
            }
            CheckId::RunAsNonRoot => "Containers must run as a non-root user",
            CheckId::RunAsUser => "Containers must not set runAsUser=0",
            CheckId::SeccompProfileRestricted => {
                "Seccomp profile must be set to RuntimeDefault or Localhost"
            }
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One variant of a check: active from policy version `v1.<since>`.
pub(crate) struct Variant {
    pub since: u32,
    pub run: CheckFn,
    /// Baseline checks this (restricted) variant replaces.
    pub overrides: &'static [CheckId],
}

pub(crate) struct Entry {
    pub id: CheckId,
    pub level: Level,
    pub variants: &'static [Variant],
}

const fn v(since: u32, run: CheckFn) -> Variant {
    Variant {
        since,
        run,
        overrides: &[],
    }
}

const fn vo(since: u32, run: CheckFn, overrides: &'static [CheckId]) -> Variant {
    Variant {
        since,
        run,
        overrides,
    }
}

/// Baseline IDs in Go byte order, then restricted IDs in Go byte order: the output order.
pub(crate) static REGISTRY: &[Entry] = &[
    Entry {
        id: CheckId::AppArmorProfile,
        level: Level::Baseline,
        variants: &[v(0, app_armor_profile)],
    },
    Entry {
        id: CheckId::CapabilitiesBaseline,
        level: Level::Baseline,
        variants: &[v(0, capabilities_baseline)],
    },
    Entry {
        id: CheckId::HostNamespaces,
        level: Level::Baseline,
        variants: &[v(0, host_namespaces)],
    },
    Entry {
        id: CheckId::HostPathVolumes,
        level: Level::Baseline,
        variants: &[v(0, host_path_volumes)],
    },
    Entry {
        id: CheckId::HostPorts,
        level: Level::Baseline,
        variants: &[v(0, host_ports)],
    },
    Entry {
        id: CheckId::HostProbesAndHostLifecycle,
        level: Level::Baseline,
        variants: &[v(34, host_probes_and_host_lifecycle)],
    },
    Entry {
        id: CheckId::Privileged,
        level: Level::Baseline,
        variants: &[v(0, privileged)],
    },
    Entry {
        id: CheckId::ProcMount,
        level: Level::Baseline,
        variants: &[v(0, proc_mount_1_0), v(35, proc_mount_1_35)],
    },
    Entry {
        id: CheckId::SeLinuxOptions,
        level: Level::Baseline,
        variants: &[v(0, se_linux_options_1_0), v(31, se_linux_options_1_31)],
    },
    Entry {
        id: CheckId::SeccompProfileBaseline,
        level: Level::Baseline,
        variants: &[
            v(0, seccomp_profile_baseline_1_0),
            v(19, seccomp_profile_baseline_1_19),
        ],
    },
    Entry {
        id: CheckId::Sysctls,
        level: Level::Baseline,
        variants: &[
            v(0, sysctls_1_0),
            v(27, sysctls_1_27),
            v(29, sysctls_1_29),
            v(32, sysctls_1_32),
            v(37, sysctls_1_37),
        ],
    },
    Entry {
        id: CheckId::WindowsHostProcess,
        level: Level::Baseline,
        variants: &[v(0, windows_host_process)],
    },
    Entry {
        id: CheckId::AllowPrivilegeEscalation,
        level: Level::Restricted,
        variants: &[
            v(8, allow_privilege_escalation_1_8),
            v(25, allow_privilege_escalation_1_25),
        ],
    },
    Entry {
        id: CheckId::CapabilitiesRestricted,
        level: Level::Restricted,
        variants: &[
            vo(
                22,
                capabilities_restricted_1_22,
                &[CheckId::CapabilitiesBaseline],
            ),
            vo(
                25,
                capabilities_restricted_1_25,
                &[CheckId::CapabilitiesBaseline],
            ),
        ],
    },
    Entry {
        id: CheckId::ProcMountRestricted,
        level: Level::Restricted,
        variants: &[vo(35, proc_mount_1_0, &[CheckId::ProcMount])],
    },
    Entry {
        id: CheckId::RestrictedVolumes,
        level: Level::Restricted,
        variants: &[vo(0, restricted_volumes, &[CheckId::HostPathVolumes])],
    },
    Entry {
        id: CheckId::RunAsNonRoot,
        level: Level::Restricted,
        variants: &[v(0, run_as_non_root_1_0), v(35, run_as_non_root_1_35)],
    },
    Entry {
        id: CheckId::RunAsUser,
        level: Level::Restricted,
        variants: &[v(23, run_as_user_1_23), v(35, run_as_user_1_35)],
    },
    Entry {
        id: CheckId::SeccompProfileRestricted,
        level: Level::Restricted,
        variants: &[
            vo(
                19,
                seccomp_profile_restricted_1_19,
                &[CheckId::SeccompProfileBaseline],
            ),
            vo(
                25,
                seccomp_profile_restricted_1_25,
                &[CheckId::SeccompProfileBaseline],
            ),
        ],
    },
];

// ---------------------------------------------------------------------------------------
// Shared helpers

/// The fields of a container that the checks read, for regular, init and ephemeral ones.
struct Ctr<'a> {
    name: &'a str,
    sc: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    probes: [Option<&'a Probe>; 3],
    lifecycle: Option<&'a Lifecycle>,
}

/// The view of a container (regular, init or ephemeral: distinct types, same fields).
macro_rules! ctr {
    ($c:expr) => {
        Ctr {
            name: &$c.name,
            sc: $c.security_context.as_ref(),
            ports: $c.ports.as_deref().unwrap_or_default(),
            probes: [
                $c.liveness_probe.as_ref(),
                $c.readiness_probe.as_ref(),
                $c.startup_probe.as_ref(),
            ],
            lifecycle: $c.lifecycle.as_ref(),
        }
    };
}

/// Visit init containers, then containers, then ephemeral containers, as upstream does.
fn containers(spec: &PodSpec) -> impl Iterator<Item = Ctr<'_>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let eph = spec.ephemeral_containers.as_deref().unwrap_or_default();
    init.iter()
        .chain(spec.containers.iter())
        .map(|c| ctr!(c))
        .chain(eph.iter().map(|c| ctr!(c)))
}

fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

fn host_users_false(spec: &PodSpec) -> bool {
    spec.host_users == Some(false)
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn violation(check: CheckId, reason: &'static str, detail: String, fix: String) -> Violation {
    Violation {
        check,
        reason,
        detail,
        fix,
    }
}

fn caps(sc: Option<&SecurityContext>) -> Option<&Capabilities> {
    sc.and_then(|s| s.capabilities.as_ref())
}

// ---------------------------------------------------------------------------------------
// Baseline checks

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_apparmor_annotation(v: &str) -> bool {
    v.is_empty() || v == "runtime/default" || v.starts_with("localhost/")
}

fn allowed_apparmor_type(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

fn app_armor_profile(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_setters: Vec<String> = Vec::new();
    let mut bad_values: BTreeSet<&str> = BTreeSet::new();
    if let Some(p) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.as_ref())
        && !allowed_apparmor_type(&p.type_)
    {
        bad_setters.push("pod".to_string());
        bad_values.insert(&p.type_);
    }
    let mut bad_containers: Vec<&str> = Vec::new();
    for c in containers(spec) {
        if let Some(p) = c.sc.and_then(|s| s.app_armor_profile.as_ref())
            && !allowed_apparmor_type(&p.type_)
        {
            bad_containers.push(c.name);
            bad_values.insert(&p.type_);
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    let mut bad_annotations: Vec<String> = Vec::new();
    if let Some(annotations) = &meta.annotations {
        for (k, v) in annotations {
            if k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_apparmor_annotation(v) {
                bad_annotations.push(format!("{k}={}", go_quote(v)));
            }
        }
    }
    if bad_setters.is_empty() && bad_annotations.is_empty() {
        return None;
    }
    let mut list: Vec<String> = bad_values.iter().map(|s| s.to_string()).collect();
    if !bad_annotations.is_empty() {
        bad_annotations.sort();
        bad_setters.push(pluralize("annotation", "annotations", bad_annotations.len()).to_string());
        list.extend(bad_annotations);
    }
    Some(violation(
        CheckId::AppArmorProfile,
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            bad_setters.join(" and "),
            join_quote(&list)
        ),
        format!(
            "set securityContext.appArmorProfile.type to \"RuntimeDefault\" (or \"Localhost\") \
             or remove it, on {}; annotations {APPARMOR_ANNOTATION_PREFIX}<container> must be \
             runtime/default or localhost/<profile>",
            bad_setters.join(" and ")
        ),
    ))
}

const CAPABILITIES_ALLOWED_1_0: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_containers: Vec<&str> = Vec::new();
    let mut bad_caps: BTreeSet<&str> = BTreeSet::new();
    for c in containers(spec) {
        let Some(add) = caps(c.sc).and_then(|k| k.add.as_ref()) else {
            continue;
        };
        let mut valid = true;
        for cap in add {
            if !CAPABILITIES_ALLOWED_1_0.contains(&cap.as_str()) {
                valid = false;
                bad_caps.insert(cap);
            }
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_caps.is_empty() {
        return None;
    }
    let phrase = containers_phrase(&bad_containers);
    let list = join_quote(&bad_caps);
    Some(violation(
        CheckId::CapabilitiesBaseline,
        "non-default capabilities",
        format!("{phrase} must not include {list} in securityContext.capabilities.add"),
        format!("remove {list} from securityContext.capabilities.add of {phrase}"),
    ))
}

fn host_namespaces(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut parts: Vec<&str> = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    if spec.host_network == Some(true) {
        parts.push("hostNetwork=true");
        fields.push("spec.hostNetwork");
    }
    if spec.host_pid == Some(true) {
        parts.push("hostPID=true");
        fields.push("spec.hostPID");
    }
    if spec.host_ipc == Some(true) {
        parts.push("hostIPC=true");
        fields.push("spec.hostIPC");
    }
    if parts.is_empty() {
        return None;
    }
    Some(violation(
        CheckId::HostNamespaces,
        "host namespaces",
        parts.join(", "),
        format!("set {} to false (or remove)", fields.join(", ")),
    ))
}

fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = spec
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if bad.is_empty() {
        return None;
    }
    let phrase = format!(
        "{} {}",
        pluralize("volume", "volumes", bad.len()),
        join_quote(&bad)
    );
    Some(violation(
        CheckId::HostPathVolumes,
        "hostPath volumes",
        phrase.clone(),
        format!(
            "replace hostPath in {phrase} with a configMap, secret, emptyDir or \
             persistentVolumeClaim volume (no safe automatic fix)"
        ),
    ))
}

fn host_ports(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_containers: Vec<&str> = Vec::new();
    let mut ports: BTreeSet<String> = BTreeSet::new();
    for c in containers(spec) {
        let mut valid = true;
        for p in c.ports {
            if let Some(hp) = p.host_port
                && hp != 0
            {
                valid = false;
                ports.insert(hp.to_string());
            }
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let phrase = containers_phrase(&bad_containers);
    let port_list: Vec<&str> = ports.iter().map(String::as_str).collect();
    Some(violation(
        CheckId::HostPorts,
        "hostPort",
        format!(
            "{phrase} {} {} {}",
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            port_list.join(", ")
        ),
        format!("remove ports[].hostPort from {phrase} and expose the port with a Service"),
    ))
}

fn host_probes_and_host_lifecycle<'a>(_: &ObjectMeta, spec: &'a PodSpec) -> Option<Violation> {
    let mut bad_containers: BTreeSet<&str> = BTreeSet::new();
    let mut hosts: BTreeSet<&'a str> = BTreeSet::new();
    for c in containers(spec) {
        let mut valid = true;
        let mut note = |h: Option<&'a String>| {
            if let Some(h) = h
                && !h.is_empty()
            {
                valid = false;
                hosts.insert(h.as_str());
            }
        };
        for p in c.probes.into_iter().flatten() {
            note(p.http_get.as_ref().and_then(|g| g.host.as_ref()));
            note(p.tcp_socket.as_ref().and_then(|t| t.host.as_ref()));
        }
        if let Some(l) = c.lifecycle {
            for h in [l.post_start.as_ref(), l.pre_stop.as_ref()]
                .into_iter()
                .flatten()
            {
                note(h.http_get.as_ref().and_then(|g| g.host.as_ref()));
                note(h.tcp_socket.as_ref().and_then(|t| t.host.as_ref()));
            }
        }
        if !valid {
            bad_containers.insert(c.name);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let names: Vec<&str> = bad_containers.into_iter().collect();
    let phrase = containers_phrase(&names);
    Some(violation(
        CheckId::HostProbesAndHostLifecycle,
        "probe or lifecycle host",
        format!(
            "{phrase} {} probe or lifecycle {} {}",
            pluralize("uses", "use", names.len()),
            pluralize("host", "hosts", hosts.len()),
            join_quote(&hosts)
        ),
        format!(
            "remove httpGet.host and tcpSocket.host from the probes and lifecycle hooks of {phrase}"
        ),
    ))
}

fn privileged(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c.sc.and_then(|s| s.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    let phrase = containers_phrase(&bad);
    Some(violation(
        CheckId::Privileged,
        "privileged",
        format!("{phrase} must not set securityContext.privileged=true"),
        format!(
            "set securityContext.privileged: false on {phrase} and grant only the \
             capabilities it needs (no safe automatic fix)"
        ),
    ))
}

fn proc_mount(spec: &PodSpec, relax_for_user_ns: bool) -> Option<Violation> {
    if relax_for_user_ns && host_users_false(spec) {
        return None;
    }
    let mut bad: Vec<&str> = Vec::new();
    let mut types: BTreeSet<&str> = BTreeSet::new();
    for c in containers(spec) {
        if let Some(pm) = c.sc.and_then(|s| s.proc_mount.as_ref())
            && pm != "Default"
        {
            bad.push(c.name);
            types.insert(pm);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let phrase = containers_phrase(&bad);
    Some(violation(
        CheckId::ProcMount,
        "procMount",
        format!(
            "{phrase} must not set securityContext.procMount to {}",
            join_quote(&types)
        ),
        format!("set securityContext.procMount: Default (or remove it) on {phrase}"),
    ))
}

fn proc_mount_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    proc_mount(spec, false)
}

fn proc_mount_1_35(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    proc_mount(spec, true)
}

fn se_linux_options<'a>(spec: &'a PodSpec, allowed: &[&str]) -> Option<Violation> {
    let mut bad_types: BTreeSet<&'a str> = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |o: &'a k8s_openapi::api::core::v1::SELinuxOptions| -> bool {
        let mut ok = true;
        let t = o.type_.as_deref().unwrap_or("");
        if !allowed.contains(&t) {
            ok = false;
            bad_types.insert(t);
        }
        if o.user.as_deref().is_some_and(|u| !u.is_empty()) {
            ok = false;
            set_user = true;
        }
        if o.role.as_deref().is_some_and(|r| !r.is_empty()) {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut bad_setters: Vec<String> = Vec::new();
    if let Some(o) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.se_linux_options.as_ref())
        && !valid(o)
    {
        bad_setters.push("pod".to_string());
    }
    let mut bad_containers: Vec<&str> = Vec::new();
    for c in containers(spec) {
        if let Some(o) = c.sc.and_then(|s| s.se_linux_options.as_ref())
            && !valid(o)
        {
            bad_containers.push(c.name);
        }
    }
    if !bad_containers.is_empty() {
        bad_setters.push(containers_phrase(&bad_containers));
    }
    if bad_setters.is_empty() {
        return None;
    }
    let mut data: Vec<String> = Vec::new();
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    let setters = bad_setters.join(" and ");
    Some(violation(
        CheckId::SeLinuxOptions,
        "seLinuxOptions",
        format!(
            "{setters} set forbidden securityContext.seLinuxOptions: {}",
            data.join("; ")
        ),
        format!(
            "on {setters}: remove seLinuxOptions.user and .role, and set seLinuxOptions.type \
             to one of {} (or leave it empty)",
            join_quote(allowed.iter().filter(|t| !t.is_empty()))
        ),
    ))
}

const SELINUX_TYPES_1_0: [&str; 4] = ["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    se_linux_options(spec, &SELINUX_TYPES_1_0)
}

fn se_linux_options_1_31(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    se_linux_options(spec, &SELINUX_TYPES_1_31)
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn valid_seccomp_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

fn valid_seccomp_type(t: &str) -> bool {
    t == "Localhost" || t == "RuntimeDefault"
}

fn seccomp_profile_baseline_1_0(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let annotations = meta.annotations.as_ref()?;
    let mut forbidden: BTreeSet<String> = BTreeSet::new();
    if let Some(v) = annotations.get(SECCOMP_POD_ANNOTATION)
        && !valid_seccomp_annotation(v)
    {
        forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
    }
    for c in containers(spec) {
        let key = format!("{SECCOMP_CONTAINER_PREFIX}{}", c.name);
        if let Some(v) = annotations.get(&key)
            && !valid_seccomp_annotation(v)
        {
            forbidden.insert(format!("{key}={}", go_quote(v)));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let list: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    Some(violation(
        CheckId::SeccompProfileBaseline,
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", list.len()),
            list.join(", ")
        ),
        "set the seccomp annotations to runtime/default (or localhost/<profile>)".to_string(),
    ))
}

/// Pod and containers that explicitly set a seccomp type other than RuntimeDefault/Localhost.
struct SeccompScan<'a> {
    bad_setters: Vec<String>,
    bad_values: BTreeSet<&'a str>,
    implicitly_bad: Vec<&'a str>,
}

fn scan_seccomp(spec: &PodSpec) -> SeccompScan<'_> {
    let mut bad_setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(p) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        if valid_seccomp_type(&p.type_) {
            pod_set = true;
        } else {
            bad_setters.push("pod".to_string());
            bad_values.insert(p.type_.as_str());
        }
    }
    let mut explicitly_bad: Vec<&str> = Vec::new();
    let mut implicitly_bad: Vec<&str> = Vec::new();
    for c in containers(spec) {
        match c.sc.and_then(|s| s.seccomp_profile.as_ref()) {
            Some(p) => {
                if !valid_seccomp_type(&p.type_) {
                    explicitly_bad.push(c.name);
                    bad_values.insert(p.type_.as_str());
                }
            }
            None => {
                if !pod_set {
                    implicitly_bad.push(c.name);
                }
            }
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    SeccompScan {
        bad_setters,
        bad_values,
        implicitly_bad,
    }
}

fn seccomp_explicit(check: CheckId, scan: &SeccompScan<'_>) -> Violation {
    let setters = scan.bad_setters.join(" and ");
    violation(
        check,
        "seccompProfile",
        format!(
            "{setters} must not set securityContext.seccompProfile.type to {}",
            join_quote(&scan.bad_values)
        ),
        format!(
            "on {setters}: set securityContext.seccompProfile.type to \"RuntimeDefault\" (or \"Localhost\")"
        ),
    )
}

fn seccomp_profile_baseline_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    // Cheap pass path: nothing set explicitly means nothing to complain about.
    let pod_set = spec
        .security_context
        .as_ref()
        .is_some_and(|s| s.seccomp_profile.is_some());
    if !pod_set && !containers(spec).any(|c| c.sc.is_some_and(|s| s.seccomp_profile.is_some())) {
        return None;
    }
    let scan = scan_seccomp(spec);
    if scan.bad_setters.is_empty() {
        return None;
    }
    Some(seccomp_explicit(CheckId::SeccompProfileBaseline, &scan))
}

fn sysctls(spec: &PodSpec, allowed: &[&str]) -> Option<Violation> {
    let list = spec
        .security_context
        .as_ref()
        .and_then(|s| s.sysctls.as_deref())?;
    let bad: Vec<&str> = list
        .iter()
        .filter(|s| !allowed.contains(&s.name.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(violation(
        CheckId::Sysctls,
        "forbidden sysctls",
        bad.join(", "),
        format!(
            "remove {} from spec.securityContext.sysctls (allowed: {})",
            bad.join(", "),
            allowed.join(", ")
        ),
    ))
}

const SYSCTLS_1_0: [&str; 5] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: [&str; 6] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
];
const SYSCTLS_1_29: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: [&str; 12] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];
const SYSCTLS_1_37: [&str; 14] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

fn sysctls_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &SYSCTLS_1_0)
}
fn sysctls_1_27(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &SYSCTLS_1_27)
}
fn sysctls_1_29(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &SYSCTLS_1_29)
}
fn sysctls_1_32(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &SYSCTLS_1_32)
}
fn sysctls_1_37(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    sysctls(spec, &SYSCTLS_1_37)
}

fn windows_host_process(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let host_process = |sc: Option<&k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        sc.and_then(|w| w.host_process) == Some(true)
    };
    let bad: Vec<&str> = containers(spec)
        .filter(|c| host_process(c.sc.and_then(|s| s.windows_options.as_ref())))
        .map(|c| c.name)
        .collect();
    let pod_bad = host_process(
        spec.security_context
            .as_ref()
            .and_then(|s| s.windows_options.as_ref()),
    );
    if bad.is_empty() && !pod_bad {
        return None;
    }
    let mut setters: Vec<String> = Vec::new();
    if pod_bad {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    let setters = setters.join(" and ");
    Some(violation(
        CheckId::WindowsHostProcess,
        "hostProcess",
        format!("{setters} must not set securityContext.windowsOptions.hostProcess=true"),
        format!("remove securityContext.windowsOptions.hostProcess from {setters}"),
    ))
}

// ---------------------------------------------------------------------------------------
// Restricted checks

fn allow_privilege_escalation_1_8(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c.sc.and_then(|s| s.allow_privilege_escalation) != Some(false))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    let phrase = containers_phrase(&bad);
    Some(violation(
        CheckId::AllowPrivilegeEscalation,
        "allowPrivilegeEscalation != false",
        format!("{phrase} must set securityContext.allowPrivilegeEscalation=false"),
        format!("set securityContext.allowPrivilegeEscalation: false on {phrase}"),
    ))
}

fn allow_privilege_escalation_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    allow_privilege_escalation_1_8(meta, spec)
}

fn capabilities_restricted_1_22(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut missing_drop: Vec<&str> = Vec::new();
    let mut adding: Vec<&str> = Vec::new();
    let mut bad_caps: BTreeSet<&str> = BTreeSet::new();
    for c in containers(spec) {
        let Some(k) = caps(c.sc) else {
            missing_drop.push(c.name);
            continue;
        };
        if !k
            .drop
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|d| d == "ALL")
        {
            missing_drop.push(c.name);
        }
        let mut added_forbidden = false;
        for a in k.add.as_deref().unwrap_or_default() {
            if a != "NET_BIND_SERVICE" {
                added_forbidden = true;
                bad_caps.insert(a);
            }
        }
        if added_forbidden {
            adding.push(c.name);
        }
    }
    if missing_drop.is_empty() && adding.is_empty() {
        return None;
    }
    let mut details: Vec<String> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    if !missing_drop.is_empty() {
        let phrase = containers_phrase(&missing_drop);
        details.push(format!(
            "{phrase} must set securityContext.capabilities.drop=[\"ALL\"]"
        ));
        fixes.push(format!(
            "set securityContext.capabilities.drop: [\"ALL\"] on {phrase}"
        ));
    }
    if !adding.is_empty() {
        let phrase = containers_phrase(&adding);
        let list = join_quote(&bad_caps);
        details.push(format!(
            "{phrase} must not include {list} in securityContext.capabilities.add"
        ));
        fixes.push(format!(
            "remove {list} from securityContext.capabilities.add of {phrase} (only NET_BIND_SERVICE may be added)"
        ));
    }
    Some(violation(
        CheckId::CapabilitiesRestricted,
        "unrestricted capabilities",
        details.join("; "),
        fixes.join("; "),
    ))
}

fn capabilities_restricted_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    capabilities_restricted_1_22(meta, spec)
}

fn restricted_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad: Vec<&str> = Vec::new();
    let mut types: BTreeSet<&'static str> = BTreeSet::new();
    for vol in spec.volumes.as_deref().unwrap_or_default() {
        if vol.config_map.is_some()
            || vol.csi.is_some()
            || vol.downward_api.is_some()
            || vol.empty_dir.is_some()
            || vol.ephemeral.is_some()
            || vol.image.is_some()
            || vol.persistent_volume_claim.is_some()
            || vol.projected.is_some()
            || vol.secret.is_some()
        {
            continue;
        }
        bad.push(&vol.name);
        let t = if vol.host_path.is_some() {
            "hostPath"
        } else if vol.gce_persistent_disk.is_some() {
            "gcePersistentDisk"
        } else if vol.aws_elastic_block_store.is_some() {
            "awsElasticBlockStore"
        } else if vol.git_repo.is_some() {
            "gitRepo"
        } else if vol.nfs.is_some() {
            "nfs"
        } else if vol.iscsi.is_some() {
            "iscsi"
        } else if vol.glusterfs.is_some() {
            "glusterfs"
        } else if vol.rbd.is_some() {
            "rbd"
        } else if vol.flex_volume.is_some() {
            "flexVolume"
        } else if vol.cinder.is_some() {
            "cinder"
        } else if vol.cephfs.is_some() {
            "cephfs"
        } else if vol.flocker.is_some() {
            "flocker"
        } else if vol.fc.is_some() {
            "fc"
        } else if vol.azure_file.is_some() {
            "azureFile"
        } else if vol.vsphere_volume.is_some() {
            "vsphereVolume"
        } else if vol.quobyte.is_some() {
            "quobyte"
        } else if vol.azure_disk.is_some() {
            "azureDisk"
        } else if vol.photon_persistent_disk.is_some() {
            "photonPersistentDisk"
        } else if vol.portworx_volume.is_some() {
            "portworxVolume"
        } else if vol.scale_io.is_some() {
            "scaleIO"
        } else if vol.storageos.is_some() {
            "storageos"
        } else {
            "unknown"
        };
        types.insert(t);
    }
    if bad.is_empty() {
        return None;
    }
    let phrase = format!(
        "{} {}",
        pluralize("volume", "volumes", bad.len()),
        join_quote(&bad)
    );
    Some(violation(
        CheckId::RestrictedVolumes,
        "restricted volume types",
        format!(
            "{phrase} {} {} {}",
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
        format!(
            "replace {phrase} with configMap, csi, downwardAPI, emptyDir, ephemeral, image, \
             persistentVolumeClaim, projected or secret volumes (no safe automatic fix)"
        ),
    ))
}

fn run_as_non_root(spec: &PodSpec, relax_for_user_ns: bool) -> Option<Violation> {
    if relax_for_user_ns && host_users_false(spec) {
        return None;
    }
    let mut bad_setters: Vec<String> = Vec::new();
    let mut pod_non_root = false;
    match spec
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_non_root)
    {
        Some(false) => bad_setters.push("pod".to_string()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicitly_bad: Vec<&str> = Vec::new();
    let mut implicitly_bad: Vec<&str> = Vec::new();
    for c in containers(spec) {
        match c.sc.and_then(|s| s.run_as_non_root) {
            Some(false) => explicitly_bad.push(c.name),
            Some(true) => {}
            None => {
                if !pod_non_root {
                    implicitly_bad.push(c.name);
                }
            }
        }
    }
    if !explicitly_bad.is_empty() {
        bad_setters.push(containers_phrase(&explicitly_bad));
    }
    if !bad_setters.is_empty() {
        let setters = bad_setters.join(" and ");
        return Some(violation(
            CheckId::RunAsNonRoot,
            "runAsNonRoot != true",
            format!("{setters} must not set securityContext.runAsNonRoot=false"),
            format!(
                "set securityContext.runAsNonRoot: true on {setters} and run the image as a \
                 non-zero UID (no safe automatic fix: the explicit false was deliberate)"
            ),
        ));
    }
    if !implicitly_bad.is_empty() {
        let phrase = containers_phrase(&implicitly_bad);
        return Some(violation(
            CheckId::RunAsNonRoot,
            "runAsNonRoot != true",
            format!("pod or {phrase} must set securityContext.runAsNonRoot=true"),
            "set spec.securityContext.runAsNonRoot: true (and make sure the image runs as a \
             non-zero UID)"
                .to_string(),
        ));
    }
    None
}

fn run_as_non_root_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    run_as_non_root(spec, false)
}

fn run_as_non_root_1_35(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    run_as_non_root(spec, true)
}

fn run_as_user(spec: &PodSpec, relax_for_user_ns: bool) -> Option<Violation> {
    if relax_for_user_ns && host_users_false(spec) {
        return None;
    }
    let mut setters: Vec<String> = Vec::new();
    if spec.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = containers(spec)
        .filter(|c| c.sc.and_then(|s| s.run_as_user) == Some(0))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let setters = setters.join(" and ");
    Some(violation(
        CheckId::RunAsUser,
        "runAsUser=0",
        format!("{setters} must not set runAsUser=0"),
        format!("set runAsUser to a non-zero UID (or remove it) on {setters}"),
    ))
}

fn run_as_user_1_23(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    run_as_user(spec, false)
}

fn run_as_user_1_35(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    run_as_user(spec, true)
}

fn seccomp_profile_restricted_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let scan = scan_seccomp(spec);
    if !scan.bad_setters.is_empty() {
        return Some(seccomp_explicit(CheckId::SeccompProfileRestricted, &scan));
    }
    if !scan.implicitly_bad.is_empty() {
        let phrase = containers_phrase(&scan.implicitly_bad);
        return Some(violation(
            CheckId::SeccompProfileRestricted,
            "seccompProfile",
            format!(
                "pod or {phrase} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
            ),
            "set spec.securityContext.seccompProfile.type: RuntimeDefault".to_string(),
        ));
    }
    None
}

fn seccomp_profile_restricted_1_25(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    if is_windows(spec) {
        return None;
    }
    seccomp_profile_restricted_1_19(meta, spec)
}
