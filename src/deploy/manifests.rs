//! The objects `kubectl secmon install` applies, as a pure function of its options.
//!
//! For the secmon sensor ([`SensorKind::Secmon`]), in apply order:
//!
//! | Kind | Name | Why |
//! |---|---|---|
//! | Namespace | `secmon` | labelled `pod-security.kubernetes.io/enforce=privileged`: hostPID, host mounts and added capabilities are beyond `baseline`, and this is the only namespace that needs it |
//! | ServiceAccount | `secmon/secmon-sensor` | the sensor's identity |
//! | ClusterRole, ClusterRoleBinding | `secmon-sensor` | get/list/watch pods and nodes, nothing more (pod names for alerts) |
//! | ConfigMap | `secmon/secmon-rules` | the embedded default ruleset and the `--rules` files, passed to the sensor in that order |
//! | Service | `secmon/secmon-sensor` | headless, port `metrics`: Prometheus scrape annotations, and what the ServiceMonitor of `emit servicemonitor` selects |
//! | DaemonSet | `secmon/secmon-sensor` | `kubectl-secmon sensor` on every Linux amd64 node, control planes included |
//!
//! The sensor's pod runs as root with every capability dropped and only BPF, PERFMON,
//! SYS_RESOURCE, SYS_PTRACE and DAC_READ_SEARCH added (never `privileged`), with hostPID, a
//! read-only root filesystem and read-only host mounts of exactly `/sys/kernel/btf`,
//! `/sys/kernel/tracing`, `/sys/fs/cgroup` and `/etc` (as `/host/etc`, for user names).
//!
//! For upstream Falco ([`SensorKind::Falco`]): Namespace `falco`, ServiceAccount (no API
//! access: Falco does not call the API server), ConfigMap `falco-rules` (the `--rules`
//! files, mounted as `/etc/falco/rules.d`), Service and DaemonSet `falco` with the modern
//! eBPF engine, JSON output, and the capabilities Falco's Helm chart grants with
//! `driver.modernEbpf.leastPrivileged` (BPF, SYS_RESOURCE, PERFMON, SYS_PTRACE, AppArmor
//! unconfined).
//!
//! Every object carries `app.kubernetes.io/managed-by=kubectl-secmon`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource, Namespace,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, Resource};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{MANAGED_BY, MANAGED_BY_LABEL, METRICS_PORT, NAME_LABEL, SensorKind, VERSION_LABEL};
use crate::sensor::metrics::METRICS_PORT_NAME;

/// Where the rules ConfigMap is mounted in the secmon sensor's container.
pub const RULES_DIR: &str = "/etc/secmon/rules";
/// Where the host's `/etc` is mounted (the sensor's `--host-root` is its parent).
pub const HOST_ROOT: &str = "/host";
/// The Pod Security admission label set on the sensor's namespace.
pub const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// Pod template annotation holding a digest of the rules, so that new rules roll the pods.
pub const RULES_DIGEST_ANNOTATION: &str = "secmon.dev/rules-sha256";
/// Capabilities the secmon sensor gets, every other one being dropped: load and attach the
/// eBPF programs (BPF, PERFMON), raise the locked-memory limit for older kernels'
/// accounting (SYS_RESOURCE), read other processes' `/proc` entries (SYS_PTRACE for
/// `exe`, `environ`; DAC_READ_SEARCH for their `fd` directories).
pub const SENSOR_CAPABILITIES: [&str; 5] = [
    "BPF",
    "PERFMON",
    "SYS_RESOURCE",
    "SYS_PTRACE",
    "DAC_READ_SEARCH",
];
/// Capabilities Falco's Helm chart adds with `driver.modernEbpf.leastPrivileged`.
pub const FALCO_CAPABILITIES: [&str; 4] = ["BPF", "SYS_RESOURCE", "PERFMON", "SYS_PTRACE"];
/// ConfigMaps are limited to 1 MiB as a whole; keep the rules well under it.
const MAX_RULES_BYTES: usize = 1_000_000;

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub sensor: SensorKind,
    /// The image; `None` for [`SensorKind::default_image`].
    pub image: Option<String>,
    /// Extra rules files, `(file name, text)`, loaded after the default ruleset in order.
    pub extra_rules: Vec<(String, String)>,
}

impl InstallOptions {
    pub fn new(sensor: SensorKind) -> InstallOptions {
        InstallOptions {
            sensor,
            image: None,
            extra_rules: Vec::new(),
        }
    }

    pub fn image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| self.sensor.default_image())
    }
}

/// One object to apply: its API resource, where it lives, and the object itself (with
/// `apiVersion` and `kind`), ready for server-side apply or printing.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
}

impl Manifest {
    fn new<K>(obj: &K) -> Result<Manifest, ManifestError>
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let meta = obj.meta();
        Ok(Manifest {
            resource: ApiResource::erase::<K>(&()),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            object: serde_json::to_value(obj)
                .map_err(|e| ManifestError::Serialize(e.to_string()))?,
        })
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }
}

/// An object `install` creates, named: what `uninstall` may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl From<&Manifest> for ObjectRef {
    fn from(m: &Manifest) -> ObjectRef {
        ObjectRef {
            resource: m.resource.clone(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
        }
    }
}

/// Why the manifests could not be built: one line for the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error(
        "rules file name {0:?} cannot be a ConfigMap key: use only letters, digits, '-', '_' and '.'"
    )]
    BadRulesName(String),
    #[error(
        "two rules files are named {0:?}: rename one (files are stored by name in the rules ConfigMap)"
    )]
    DuplicateRulesName(String),
    #[error(
        "the rules are {0} bytes, more than a ConfigMap holds (about 1 MB): split them or trim them"
    )]
    RulesTooLarge(usize),
    #[error("cannot serialize a manifest: {0}")]
    Serialize(String),
}

/// The objects to apply, in apply order (namespace first, DaemonSet last).
pub fn manifests(o: &InstallOptions) -> Result<Vec<Manifest>, ManifestError> {
    let rules = rules_files(o)?;
    match o.sensor {
        SensorKind::Secmon => secmon(o, &rules),
        SensorKind::Falco => falco(o, &rules),
    }
}

/// Every object `install` may have created, for either sensor, in deletion order
/// (DaemonSet first, namespace last).
pub fn owned_objects() -> Vec<ObjectRef> {
    let mut out = Vec::new();
    for kind in SensorKind::ALL {
        // The default options cannot fail: no extra rules files.
        if let Ok(ms) = manifests(&InstallOptions::new(kind)) {
            out.extend(ms.iter().rev().map(ObjectRef::from));
        }
    }
    out
}

/// The ConfigMap's files in load order: the default ruleset (secmon only), then the extras.
fn rules_files(o: &InstallOptions) -> Result<Vec<(String, String)>, ManifestError> {
    let mut files = match o.sensor {
        SensorKind::Secmon => crate::rules::default_ruleset_sources(),
        SensorKind::Falco => Vec::new(),
    };
    for (name, text) in &o.extra_rules {
        let valid = !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(ManifestError::BadRulesName(name.clone()));
        }
        if files.iter().any(|(n, _)| n == name) {
            return Err(ManifestError::DuplicateRulesName(name.clone()));
        }
        files.push((name.clone(), text.clone()));
    }
    let size: usize = files.iter().map(|(n, t)| n.len() + t.len()).sum();
    if size > MAX_RULES_BYTES {
        return Err(ManifestError::RulesTooLarge(size));
    }
    Ok(files)
}

fn rules_digest(files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, text) in files {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn labels(kind: SensorKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "kubectl-secmon".to_string(),
        ),
        (NAME_LABEL.to_string(), kind.app().to_string()),
    ])
}

fn meta(kind: SensorKind, name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(kind)),
        ..ObjectMeta::default()
    }
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn namespace(kind: SensorKind) -> Namespace {
    let mut m = meta(kind, kind.namespace(), None);
    if let Some(l) = m.labels.as_mut() {
        l.insert(PSA_ENFORCE_LABEL.to_string(), "privileged".to_string());
    }
    Namespace {
        metadata: m,
        ..Namespace::default()
    }
}

fn rules_config_map(kind: SensorKind, name: &str, files: &[(String, String)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(kind, name, Some(kind.namespace())),
        data: Some(files.iter().cloned().collect()),
        ..ConfigMap::default()
    }
}

fn metrics_service(kind: SensorKind) -> Service {
    let mut m = meta(kind, kind.app(), Some(kind.namespace()));
    m.annotations = Some(BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), METRICS_PORT.to_string()),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
    ]));
    Service {
        metadata: m,
        spec: Some(ServiceSpec {
            // Headless: every sensor is its own scrape target; a virtual IP would hand
            // each scrape to a random node's sensor.
            cluster_ip: Some("None".to_string()),
            selector: Some(BTreeMap::from([(
                NAME_LABEL.to_string(),
                kind.app().to_string(),
            )])),
            ports: Some(vec![ServicePort {
                name: Some(METRICS_PORT_NAME.to_string()),
                port: i32::from(METRICS_PORT),
                target_port: Some(IntOrString::String(METRICS_PORT_NAME.to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn http_probe(period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_string()),
            port: IntOrString::String(METRICS_PORT_NAME.to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn host_path(name: &str, path: &str, type_: Option<&str>) -> Volume {
    Volume {
        name: name.to_string(),
        host_path: Some(HostPathVolumeSource {
            path: path.to_string(),
            type_: type_.map(str::to_string),
        }),
        ..Volume::default()
    }
}

/// A read-only mount; host mounts are also recursively read-only where the runtime can
/// (cgroup v1 hierarchies are mounts below `/sys/fs/cgroup`).
fn ro_mount(name: &str, path: &str, recursive: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: Some(true),
        recursive_read_only: recursive.then(|| "IfPossible".to_string()),
        ..VolumeMount::default()
    }
}

fn node_name_env(name: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.nodeName".to_string(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
    ])
}

/// The parts the two DaemonSets share: labels, selector, tolerations, probes, update
/// strategy.
fn daemon_set(
    kind: SensorKind,
    version: &str,
    annotations: BTreeMap<String, String>,
    node_selector: BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
) -> DaemonSet {
    let mut pod_labels = labels(kind);
    pod_labels.insert(VERSION_LABEL.to_string(), version.to_string());
    let mut m = meta(kind, kind.app(), Some(kind.namespace()));
    if let Some(l) = m.labels.as_mut() {
        l.insert(VERSION_LABEL.to_string(), version.to_string());
    }
    let mut annotations = annotations;
    annotations.insert(
        "kubectl.kubernetes.io/default-container".to_string(),
        kind.container().to_string(),
    );
    DaemonSet {
        metadata: m,
        spec: DaemonSetSpec {
            // Only the name: the selector is immutable, the version changes.
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAME_LABEL.to_string(),
                    kind.app().to_string(),
                )])),
                ..LabelSelector::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_string()),
                ..DaemonSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(kind.app().to_string()),
                    host_pid: Some(true),
                    node_selector: Some(node_selector),
                    // Every node, control planes and cordoned or tainted nodes included:
                    // a node without a sensor is a node nobody watches.
                    tolerations: Some(vec![Toleration {
                        operator: Some("Exists".to_string()),
                        ..Toleration::default()
                    }]),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

fn secmon(o: &InstallOptions, rules: &[(String, String)]) -> Result<Vec<Manifest>, ManifestError> {
    let kind = SensorKind::Secmon;
    let ns = kind.namespace();
    let name = kind.app();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));

    let sa = ServiceAccount {
        metadata: meta(kind, name, Some(ns)),
        ..ServiceAccount::default()
    };
    let role = ClusterRole {
        metadata: meta(kind, name, None),
        rules: Some(vec![PolicyRule {
            api_groups: Some(strings([""])),
            resources: Some(strings(["pods", "nodes"])),
            verbs: strings(["get", "list", "watch"]),
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(kind, name, None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".to_string()),
            kind: "ClusterRole".to_string(),
            name: name.to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name: name.to_string(),
            namespace: Some(ns.to_string()),
            ..Subject::default()
        }]),
    };
    let config_map = rules_config_map(kind, "secmon-rules", rules);

    let mut args = strings(["sensor", "--node-name", "$(NODE_NAME)", "--metrics-addr"]);
    args.push(format!("0.0.0.0:{METRICS_PORT}"));
    args.extend(strings(["--host-root", HOST_ROOT, "--no-default-rules"]));
    for (file, _) in rules {
        args.push("--rules".to_string());
        args.push(format!("{RULES_DIR}/{file}"));
    }
    let container = Container {
        name: kind.container().to_string(),
        image: Some(o.image()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(strings(["kubectl-secmon"])),
        args: Some(args),
        env: Some(vec![node_name_env("NODE_NAME")]),
        ports: Some(vec![ContainerPort {
            name: Some(METRICS_PORT_NAME.to_string()),
            container_port: i32::from(METRICS_PORT),
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        // The limits match `emit prometheus-rules`' defaults (--cpu-limit 0.5,
        // --memory-limit 512Mi), which its CPU and memory alerts compare against.
        resources: Some(ResourceRequirements {
            requests: Some(quantities("100m", "128Mi")),
            limits: Some(quantities("500m", "512Mi")),
            ..ResourceRequirements::default()
        }),
        startup_probe: Some(http_probe(5, 30)),
        liveness_probe: Some(http_probe(10, 3)),
        readiness_probe: Some(http_probe(10, 3)),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            // Root, with capabilities only: Kubernetes cannot give a non-root process
            // added capabilities (no ambient capabilities), and BPF needs them effective.
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(strings(["ALL"])),
                add: Some(strings(SENSOR_CAPABILITIES)),
            }),
            // Runtime default seccomp profiles refuse bpf() and perf_event_open() without
            // CAP_SYS_ADMIN on many runtimes; default AppArmor profiles refuse reading
            // other processes' /proc entries. The dropped capabilities are the boundary.
            seccomp_profile: Some(SeccompProfile {
                type_: "Unconfined".to_string(),
                ..SeccompProfile::default()
            }),
            app_armor_profile: Some(AppArmorProfile {
                type_: "Unconfined".to_string(),
                ..AppArmorProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            ro_mount("btf", "/sys/kernel/btf", true),
            ro_mount("tracefs", "/sys/kernel/tracing", true),
            ro_mount("cgroup", "/sys/fs/cgroup", true),
            ro_mount("host-etc", &format!("{HOST_ROOT}/etc"), true),
            ro_mount("rules", RULES_DIR, false),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        host_path("btf", "/sys/kernel/btf", Some("Directory")),
        // tracefs must be mounted on the host: the sensor cannot mount it without
        // CAP_SYS_ADMIN.
        host_path("tracefs", "/sys/kernel/tracing", Some("Directory")),
        host_path("cgroup", "/sys/fs/cgroup", Some("Directory")),
        host_path("host-etc", "/etc", Some("Directory")),
        Volume {
            name: "rules".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: "secmon-rules".to_string(),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let ds = daemon_set(
        kind,
        &version,
        BTreeMap::from([(RULES_DIGEST_ANNOTATION.to_string(), rules_digest(rules))]),
        BTreeMap::from([
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            // The probes decode x86_64 system call numbers only.
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
        ]),
        container,
        volumes,
    );

    Ok(vec![
        Manifest::new(&namespace(kind))?,
        Manifest::new(&sa)?,
        Manifest::new(&role)?,
        Manifest::new(&binding)?,
        Manifest::new(&config_map)?,
        Manifest::new(&metrics_service(kind))?,
        Manifest::new(&ds)?,
    ])
}

/// Falco's `-o key=value` settings: the modern eBPF engine, JSON alerts on stdout, the web
/// server with `/healthz` and Prometheus `/metrics` on the metrics port.
pub const FALCO_SETTINGS: [&str; 9] = [
    "engine.kind=modern_ebpf",
    "json_output=true",
    "json_include_output_property=true",
    "json_include_tags_property=true",
    "stdout_output.enabled=true",
    "webserver.enabled=true",
    "webserver.prometheus_metrics_enabled=true",
    "metrics.enabled=true",
    "metrics.output_rule=false",
];

fn falco(o: &InstallOptions, rules: &[(String, String)]) -> Result<Vec<Manifest>, ManifestError> {
    let kind = SensorKind::Falco;
    let ns = kind.namespace();
    let name = kind.app();

    let sa = ServiceAccount {
        metadata: meta(kind, name, Some(ns)),
        // Falco does not call the API server (pod names come from the container runtime).
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    let config_map = rules_config_map(kind, "falco-rules", rules);

    let mut args = vec!["/usr/bin/falco".to_string()];
    for s in FALCO_SETTINGS {
        args.push("-o".to_string());
        args.push(s.to_string());
    }
    args.push("-o".to_string());
    args.push(format!("webserver.listen_port={METRICS_PORT}"));
    let container = Container {
        name: kind.container().to_string(),
        image: Some(o.image()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(args),
        env: Some(vec![
            EnvVar {
                name: "HOST_ROOT".to_string(),
                value: Some(HOST_ROOT.to_string()),
                ..EnvVar::default()
            },
            node_name_env("FALCO_HOSTNAME"),
            node_name_env("FALCO_K8S_NODE_NAME"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(METRICS_PORT_NAME.to_string()),
            container_port: i32::from(METRICS_PORT),
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        // Falco's chart defaults.
        resources: Some(ResourceRequirements {
            requests: Some(quantities("100m", "512Mi")),
            limits: Some(quantities("1000m", "1024Mi")),
            ..ResourceRequirements::default()
        }),
        startup_probe: Some(http_probe(5, 30)),
        liveness_probe: Some(http_probe(15, 3)),
        readiness_probe: Some(http_probe(15, 3)),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            capabilities: Some(Capabilities {
                add: Some(strings(FALCO_CAPABILITIES)),
                ..Capabilities::default()
            }),
            app_armor_profile: Some(AppArmorProfile {
                type_: "Unconfined".to_string(),
                ..AppArmorProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "root-falco".to_string(),
                mount_path: "/root/.falco".to_string(),
                ..VolumeMount::default()
            },
            ro_mount("proc", &format!("{HOST_ROOT}/proc"), false),
            ro_mount("host-etc", &format!("{HOST_ROOT}/etc"), true),
            ro_mount(
                "containerd",
                &format!("{HOST_ROOT}/run/containerd/containerd.sock"),
                false,
            ),
            ro_mount("crio", &format!("{HOST_ROOT}/run/crio/crio.sock"), false),
            ro_mount("rules", "/etc/falco/rules.d", false),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        Volume {
            name: "root-falco".to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        host_path("proc", "/proc", Some("Directory")),
        host_path("host-etc", "/etc", Some("Directory")),
        // The container runtimes' sockets, for container and pod metadata (Falco's
        // container plugin), as the chart mounts them.
        host_path("containerd", "/run/containerd/containerd.sock", None),
        host_path("crio", "/run/crio/crio.sock", None),
        Volume {
            name: "rules".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: "falco-rules".to_string(),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let ds = daemon_set(
        kind,
        super::FALCO_VERSION,
        BTreeMap::from([(RULES_DIGEST_ANNOTATION.to_string(), rules_digest(rules))]),
        BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())]),
        container,
        volumes,
    );

    Ok(vec![
        Manifest::new(&namespace(kind))?,
        Manifest::new(&sa)?,
        Manifest::new(&config_map)?,
        Manifest::new(&metrics_service(kind))?,
        Manifest::new(&ds)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(ms: &'a [Manifest], kind: &str) -> &'a Value {
        &ms.iter().find(|m| m.kind() == kind).unwrap().object
    }

    #[test]
    fn secmon_objects_in_apply_order_all_labelled() {
        let ms = manifests(&InstallOptions::new(SensorKind::Secmon)).unwrap();
        let kinds: Vec<&str> = ms.iter().map(Manifest::kind).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "ConfigMap",
                "Service",
                "DaemonSet"
            ]
        );
        for m in &ms {
            assert_eq!(m.object["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
            assert!(m.object["apiVersion"].is_string() && m.object["kind"].is_string());
        }
        let ns = find(&ms, "Namespace");
        assert_eq!(ns["metadata"]["labels"][PSA_ENFORCE_LABEL], "privileged");
        let ds = find(&ms, "DaemonSet");
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], default_image_str());
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.ends_with(&["--rules", "/etc/secmon/rules/secmon_rules.yaml"]));
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert!(c["securityContext"].get("privileged") == Some(&Value::Bool(false)));
    }

    fn default_image_str() -> String {
        super::super::default_image()
    }

    #[test]
    fn extra_rules_are_stored_by_name_and_passed_in_order() {
        let mut o = InstallOptions::new(SensorKind::Secmon);
        o.extra_rules = vec![
            ("b.yaml".into(), "- list: x\n  items: []\n".into()),
            ("a.yaml".into(), "- list: y\n  items: []\n".into()),
        ];
        let ms = manifests(&o).unwrap();
        let cm = find(&ms, "ConfigMap");
        assert!(cm["data"]["b.yaml"].is_string() && cm["data"]["a.yaml"].is_string());
        let ds = find(&ms, "DaemonSet");
        let args = ds["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        let (d, b, a) = (
            args.find("secmon_rules.yaml").unwrap(),
            args.find("b.yaml").unwrap(),
            args.find("a.yaml").unwrap(),
        );
        assert!(d < b && b < a, "{args}");
        // New rules roll the pods.
        let base = manifests(&InstallOptions::new(SensorKind::Secmon)).unwrap();
        let digest = |ms: &[Manifest]| {
            find(ms, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
                [RULES_DIGEST_ANNOTATION]
                .clone()
        };
        assert_ne!(digest(&ms), digest(&base));

        o.extra_rules = vec![("../x.yaml".into(), String::new())];
        assert_eq!(
            manifests(&o),
            Err(ManifestError::BadRulesName("../x.yaml".into()))
        );
        o.extra_rules = vec![("secmon_rules.yaml".into(), String::new())];
        assert!(matches!(
            manifests(&o),
            Err(ManifestError::DuplicateRulesName(_))
        ));
        o.extra_rules = vec![("big.yaml".into(), "#".repeat(2_000_000))];
        assert!(matches!(
            manifests(&o),
            Err(ManifestError::RulesTooLarge(_))
        ));
    }

    #[test]
    fn falco_runs_modern_ebpf_with_json_output_and_the_charts_capabilities() {
        let ms = manifests(&InstallOptions::new(SensorKind::Falco)).unwrap();
        let kinds: Vec<&str> = ms.iter().map(Manifest::kind).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "Service",
                "DaemonSet"
            ]
        );
        let ds = find(&ms, "DaemonSet");
        assert_eq!(ds["metadata"]["name"], "falco");
        assert_eq!(ds["metadata"]["namespace"], "falco");
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["image"],
            format!("falcosecurity/falco:{}", super::super::FALCO_VERSION)
        );
        let args = c["args"].to_string();
        assert!(args.contains("engine.kind=modern_ebpf") && args.contains("json_output=true"));
        assert_eq!(
            c["securityContext"]["capabilities"]["add"],
            serde_json::json!(["BPF", "SYS_RESOURCE", "PERFMON", "SYS_PTRACE"])
        );
    }

    #[test]
    fn owned_objects_cover_both_sensors_namespace_last() {
        let owned = owned_objects();
        let names: Vec<String> = owned
            .iter()
            .map(|o| format!("{}/{}", o.resource.kind, o.name))
            .collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("DaemonSet/secmon-sensor")
        );
        assert!(names.contains(&"Namespace/secmon".to_string()));
        assert!(names.contains(&"Namespace/falco".to_string()));
        assert!(names.contains(&"ClusterRole/secmon-sensor".to_string()));
        let secmon_ns = names.iter().position(|n| n == "Namespace/secmon").unwrap();
        assert!(
            names[..secmon_ns]
                .iter()
                .all(|n| !n.starts_with("Namespace/falco"))
        );
    }
}
