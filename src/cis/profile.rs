//! The native CIS profile format (`benchmarks/cis/<benchmark>/<target>.yaml`): what each
//! check reads (a component's flag, a key of its config file, a process environment
//! variable, or a file's mode or owner) and how the value is compared. The test
//! semantics follow kube-bench's (`set`, `compare` ops, `bin_op`, flag → config → env)
//! so its users recognise them, without any shell. Shipped profiles are embedded in the
//! binary; this module parses and validates them.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::CisError;

/// The node components a check can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Apiserver,
    ControllerManager,
    Scheduler,
    Etcd,
    Kubelet,
    Proxy,
}

impl Component {
    pub const ALL: [Component; 6] = [
        Component::Apiserver,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Etcd,
        Component::Kubelet,
        Component::Proxy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Apiserver => "apiserver",
            Component::ControllerManager => "controller-manager",
            Component::Scheduler => "scheduler",
            Component::Etcd => "etcd",
            Component::Kubelet => "kubelet",
            Component::Proxy => "proxy",
        }
    }

    /// The process name a person would recognise.
    pub fn process_name(self) -> &'static str {
        match self {
            Component::Apiserver => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
            Component::Etcd => "etcd",
            Component::Kubelet => "kubelet",
            Component::Proxy => "kube-proxy",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of a component's files a check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// The static pod manifest (control plane, etcd).
    Manifest,
    /// The component's own config file (`--config`).
    Config,
    /// The kubeconfig it uses to reach the API server.
    Kubeconfig,
    /// The systemd unit or drop-in that starts it.
    Service,
    /// The client CA bundle it trusts (`--client-ca-file`).
    ClientCa,
    /// etcd's data directory.
    DataDir,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Manifest => "manifest",
            FileKind::Config => "config",
            FileKind::Kubeconfig => "kubeconfig",
            FileKind::Service => "service",
            FileKind::ClientCa => "client-ca",
            FileKind::DataDir => "data-dir",
        }
    }
}

/// The sections of a benchmark, as kube-bench names its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Master,
    Etcd,
    Controlplane,
    Node,
    Policies,
    /// Managed-service checks of the EKS/GKE/AKS/ACK kube-bench profiles.
    Managedservices,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::Master,
        Target::Etcd,
        Target::Controlplane,
        Target::Node,
        Target::Policies,
        Target::Managedservices,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Master => "master",
            Target::Etcd => "etcd",
            Target::Controlplane => "controlplane",
            Target::Node => "node",
            Target::Policies => "policies",
            Target::Managedservices => "managedservices",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `compare.op`, with kube-bench's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Noteq,
    Gt,
    Gte,
    Lt,
    Lte,
    Has,
    Nothave,
    Regex,
    ValidElements,
    Bitmask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BinOp {
    #[default]
    And,
    Or,
}

/// What a check's verdict is when the file it reads does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    /// Nothing to protect: NOT_APPLICABLE (the default).
    #[default]
    NotApplicable,
    /// The recommendation is met by the file's absence.
    Pass,
    /// The file must exist.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileProperty {
    /// Permission bits as octal, e.g. `600`.
    Mode,
    /// `user:group` by name (numeric when the name is unknown).
    Owner,
}

/// A comparison: `op` and the expected value (YAML bools and numbers are read as text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    pub op: Op,
    #[serde(deserialize_with = "scalar_string")]
    pub value: String,
}

/// Which files an item reads: one of a component's files, fixed paths, or the files
/// under a directory (recursively, optionally filtered by a `*` pattern on the name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FileRef {
    Component(Component, FileKind),
    Paths(Vec<String>),
    Tree {
        dir: String,
        glob: Option<String>,
        /// Regular files only (`find -type f`), not the directories.
        files_only: bool,
    },
}

impl FileRef {
    /// A stable key the collected facts are stored under.
    pub fn key(&self) -> String {
        match self {
            FileRef::Component(c, k) => format!("{c}:{}", k.as_str()),
            FileRef::Paths(p) => format!("paths:{}", p.join(",")),
            FileRef::Tree {
                dir,
                glob,
                files_only,
            } => format!(
                "tree:{dir}:{}:{}",
                glob.as_deref().unwrap_or("*"),
                if *files_only { "f" } else { "a" }
            ),
        }
    }
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileRef::Component(c, k) => write!(f, "{} {}", c.process_name(), k.as_str()),
            FileRef::Paths(p) => f.write_str(&p.join(", ")),
            FileRef::Tree {
                dir, glob: None, ..
            } => write!(f, "everything under {dir}"),
            FileRef::Tree {
                dir, glob: Some(g), ..
            } => write!(f, "{g} under {dir}"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileRef {
    component: Option<Component>,
    kind: Option<FileKind>,
    #[serde(default)]
    paths: Vec<String>,
    dir: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    files_only: bool,
}

impl<'de> Deserialize<'de> for FileRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileRef, D::Error> {
        use serde::de::Error;
        let r = RawFileRef::deserialize(d)?;
        match (r.component, r.kind, r.paths.is_empty(), r.dir) {
            (Some(c), Some(k), true, None) if r.glob.is_none() => Ok(FileRef::Component(c, k)),
            (None, None, false, None) if r.glob.is_none() => {
                if r.paths.iter().any(|p| !p.starts_with('/')) {
                    return Err(D::Error::custom("file paths must be absolute"));
                }
                Ok(FileRef::Paths(r.paths))
            }
            (None, None, true, Some(dir)) if dir.starts_with('/') => Ok(FileRef::Tree {
                dir,
                glob: r.glob,
                files_only: r.files_only,
            }),
            _ => Err(D::Error::custom(
                "a file is either {component, kind}, {paths: [...]} or {dir, glob}",
            )),
        }
    }
}

/// One test item: a setting read from flag → config → env (→ documented default), or
/// a property of files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// A command-line flag of the check's component, e.g. `--anonymous-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// Inside a `k=v,k=v` flag (`--feature-gates`): the key whose value is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_key: Option<String>,
    /// A dotted key of the component's config file, e.g. `authentication.anonymous.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// An environment variable of the component's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The files to inspect (instead of a setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<FileProperty>,
    /// true: must be set (then compared); false: must not be set at all.
    #[serde(default = "yes")]
    pub set: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<Compare>,
    /// The documented Kubernetes default, used when the setting is set nowhere.
    #[serde(
        default,
        deserialize_with = "opt_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<String>,
    /// The default when the component runs without a config file (kubelet flags
    /// default differently from its config file).
    #[serde(
        default,
        deserialize_with = "opt_scalar_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_without_config: Option<String>,
}

fn yes() -> bool {
    true
}

/// Severity of a failed check, for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(deserialize_with = "scalar_string")]
    pub id: String,
    pub title: String,
    /// The benchmark marks it Automated (scored): a failing test is FAIL, else WARN.
    #[serde(default)]
    pub automated: bool,
    /// Always WARN: a person has to look (the items, if any, are not evaluated).
    #[serde(default)]
    pub manual: bool,
    /// The component the check is about; absent on the node → NOT_APPLICABLE.
    #[serde(default)]
    pub component: Option<Component>,
    #[serde(default)]
    pub bin_op: BinOp,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub missing: Missing,
    #[serde(default)]
    pub severity: CheckSeverity,
    pub remediation: String,
    /// Why a manual check is manual, or what the reader should know.
    #[serde(default)]
    pub note: Option<String>,
    /// A section 5 check judged through the Kubernetes API (`cis run --targets policies`)
    /// rather than on the node: which judgement (see [`super::policies`]).
    #[serde(default)]
    pub api: Option<ApiCheck>,
}

/// The section 5 judgements made through the Kubernetes API, by what they look at (the
/// check ids differ between benchmark versions; the profile names the judgement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiCheck {
    ClusterAdmin,
    SecretsAccess,
    RbacWildcards,
    PodCreate,
    DefaultServiceAccounts,
    TokenAutomount,
    SystemMasters,
    EscalationVerbs,
    PvCreate,
    NodesProxy,
    CsrApproval,
    WebhookConfig,
    SaTokenCreate,
    PodSecurityLabels,
    Privileged,
    HostPid,
    HostIpc,
    HostNetwork,
    PrivilegeEscalation,
    RootContainers,
    NetRaw,
    AddedCapabilities,
    CapabilitiesAssigned,
    HostProcess,
    HostPath,
    HostPorts,
    NetworkPolicies,
    SecretsInEnv,
    Seccomp,
    DefaultNamespace,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[serde(deserialize_with = "scalar_string")]
    pub id: String,
    pub title: String,
    pub checks: Vec<Check>,
}

/// One target file of a benchmark (one CIS section).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub benchmark: String,
    pub target: Target,
    #[serde(deserialize_with = "scalar_string")]
    pub id: String,
    pub title: String,
    pub groups: Vec<Group>,
}

/// A whole benchmark: its sections in order.
#[derive(Debug, Clone, Serialize)]
pub struct Benchmark {
    pub name: String,
    /// Kubernetes minor versions it is written for, e.g. `1.32`.
    pub kubernetes: Vec<String>,
    pub sections: Vec<Section>,
}

impl Benchmark {
    pub fn checks(&self) -> impl Iterator<Item = (&Section, &Group, &Check)> {
        self.sections.iter().flat_map(|s| {
            s.groups
                .iter()
                .flat_map(move |g| g.checks.iter().map(move |c| (s, g, c)))
        })
    }

    /// Every file reference the benchmark's checks read.
    pub fn file_refs(&self) -> BTreeSet<FileRef> {
        self.checks()
            .flat_map(|(_, _, c)| c.items.iter().filter_map(|i| i.file.clone()))
            .collect()
    }
}

/// Benchmarks shipped in the binary: name, Kubernetes minors, and the target files.
/// (name, Kubernetes minors, [(file, text)]).
type Shipped = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const SHIPPED: &[Shipped] = &[
    (
        "cis-1.12",
        &["1.32", "1.33", "1.34"],
        &[
            (
                "master.yaml",
                include_str!("../../benchmarks/cis/cis-1.12/master.yaml"),
            ),
            (
                "etcd.yaml",
                include_str!("../../benchmarks/cis/cis-1.12/etcd.yaml"),
            ),
            (
                "controlplane.yaml",
                include_str!("../../benchmarks/cis/cis-1.12/controlplane.yaml"),
            ),
            (
                "node.yaml",
                include_str!("../../benchmarks/cis/cis-1.12/node.yaml"),
            ),
            (
                "policies.yaml",
                include_str!("../../benchmarks/cis/cis-1.12/policies.yaml"),
            ),
        ],
    ),
    (
        "cis-1.11",
        &["1.29", "1.30", "1.31"],
        &[
            (
                "master.yaml",
                include_str!("../../benchmarks/cis/cis-1.11/master.yaml"),
            ),
            (
                "etcd.yaml",
                include_str!("../../benchmarks/cis/cis-1.11/etcd.yaml"),
            ),
            (
                "controlplane.yaml",
                include_str!("../../benchmarks/cis/cis-1.11/controlplane.yaml"),
            ),
            (
                "node.yaml",
                include_str!("../../benchmarks/cis/cis-1.11/node.yaml"),
            ),
            (
                "policies.yaml",
                include_str!("../../benchmarks/cis/cis-1.11/policies.yaml"),
            ),
        ],
    ),
];

/// Names of the shipped benchmarks.
pub fn shipped() -> Vec<&'static str> {
    SHIPPED.iter().map(|(n, _, _)| *n).collect()
}

/// The shipped benchmark for a Kubernetes minor version such as `1.33`.
pub fn for_kubernetes(minor: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(_, k, _)| k.contains(&minor))
        .map(|(n, _, _)| *n)
}

/// Load a shipped benchmark by name.
pub fn load_shipped(name: &str) -> Result<Benchmark, CisError> {
    let Some((n, k, files)) = SHIPPED.iter().find(|(n, _, _)| *n == name) else {
        return Err(CisError::Usage(format!(
            "unknown benchmark {name:?}; shipped: {} (or --profile-dir for kube-bench profiles)",
            shipped().join(", ")
        )));
    };
    let mut sections = Vec::new();
    for (file, text) in files.iter() {
        sections.push(parse_section(&format!("{n}/{file}"), text)?);
    }
    let b = Benchmark {
        name: n.to_string(),
        kubernetes: k.iter().map(|s| s.to_string()).collect(),
        sections,
    };
    validate(&b)?;
    Ok(b)
}

/// Parse one target file of the native format.
pub fn parse_section(display: &str, text: &str) -> Result<Section, CisError> {
    serde_saphyr::from_str::<Section>(text).map_err(|e| CisError::Profile {
        file: display.to_string(),
        message: first_line(&e.to_string()),
    })
}

pub(crate) fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Structural rules a profile must follow beyond its schema.
pub fn validate(b: &Benchmark) -> Result<(), CisError> {
    let mut seen = BTreeSet::new();
    for (s, g, c) in b.checks() {
        let bad = |m: String| CisError::Profile {
            file: format!("{}/{}.yaml", b.name, s.target.as_str()),
            message: format!("check {}: {m}", c.id),
        };
        if s.benchmark != b.name {
            return Err(bad(format!(
                "section says benchmark {:?}, expected {:?}",
                s.benchmark, b.name
            )));
        }
        if !seen.insert(c.id.clone()) {
            return Err(bad("duplicate check id".into()));
        }
        if !c.id.starts_with(&format!("{}.", g.id)) && c.id != g.id {
            return Err(bad(format!("id is not inside its group {}", g.id)));
        }
        for item in &c.items {
            let setting = item.flag.is_some() || item.config.is_some() || item.env.is_some();
            match (&item.file, setting) {
                (Some(_), true) => {
                    return Err(bad(
                        "an item reads either a file or a setting, not both".into()
                    ));
                }
                (None, false) => {
                    return Err(bad("an item must read a flag, config, env or file".into()));
                }
                (Some(_), false) if item.property.is_none() => {
                    return Err(bad("a file item needs property: mode or owner".into()));
                }
                (None, true) if c.component.is_none() => {
                    return Err(bad("a setting item needs the check's component".into()));
                }
                _ => {}
            }
            if item.flag_key.is_some() && item.flag.is_none() {
                return Err(bad("flag_key needs flag".into()));
            }
            if let Some(cmp) = &item.compare
                && cmp.op == Op::Regex
                && let Err(e) = regex::Regex::new(&cmp.value)
            {
                return Err(bad(format!(
                    "invalid regex: {}",
                    first_line(&e.to_string())
                )));
            }
            if let Some(cmp) = &item.compare
                && cmp.op == Op::Bitmask
                && u32::from_str_radix(&cmp.value, 8).is_err()
            {
                return Err(bad(format!("bitmask value {:?} is not octal", cmp.value)));
            }
        }
        if !c.manual && c.items.is_empty() && c.api.is_none() {
            return Err(bad("a check that is not manual needs items or api".into()));
        }
        if c.api.is_some() && (s.target != Target::Policies || !c.items.is_empty() || c.manual) {
            return Err(bad(
                "api: is for policies checks without items that are not manual".into(),
            ));
        }
    }
    Ok(())
}

/// Read a YAML scalar (string, bool, number) as its text.
pub(crate) fn scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        other => Err(D::Error::custom(format!(
            "expected a scalar, found {other}"
        ))),
    }
}

fn opt_scalar_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar_string(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_benchmark_loads_and_validates() {
        let b = load_shipped("cis-1.12").unwrap();
        assert_eq!(b.sections.len(), 5);
        assert_eq!(b.checks().count(), 131);
        assert_eq!(for_kubernetes("1.33"), Some("cis-1.12"));
        let b = load_shipped("cis-1.11").unwrap();
        assert_eq!(b.checks().count(), 133);
        assert_eq!(for_kubernetes("1.30"), Some("cis-1.11"));
        assert_eq!(for_kubernetes("1.20"), None);
        assert!(load_shipped("cis-9").is_err());
    }

    #[test]
    fn malformed_profiles_are_clear_errors() {
        let e = parse_section("x.yaml", "benchmark: [").unwrap_err();
        assert!(e.to_string().starts_with("x.yaml: "), "{e}");
        let e = parse_section(
            "x.yaml",
            "benchmark: b\ntarget: nope\nid: '1'\ntitle: t\ngroups: []\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.yaml"), "{e}");
        let text = "benchmark: b\ntarget: node\nid: '4'\ntitle: t\ngroups:\n- id: '4.1'\n  title: g\n  checks:\n  - id: '4.1.1'\n    title: c\n    remediation: r\n    items:\n    - file: {component: kubelet}\n      property: mode\n";
        let e = parse_section("x.yaml", text).unwrap_err();
        assert!(e.to_string().contains("component, kind"), "{e}");
        let text = "benchmark: b\ntarget: node\nid: '4'\ntitle: t\ngroups:\n- id: '4.1'\n  title: g\n  checks:\n  - id: '4.1.1'\n    title: c\n    remediation: r\n    component: kubelet\n    items:\n    - flag: --x\n      compare: {op: regex, value: '('}\n";
        let s = parse_section("x.yaml", text).unwrap();
        let b = Benchmark {
            name: "b".into(),
            kubernetes: vec![],
            sections: vec![s],
        };
        let e = validate(&b).unwrap_err();
        assert!(e.to_string().contains("invalid regex"), "{e}");
    }
}
