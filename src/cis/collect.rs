//! The node-facts collector: the only part of the CIS engine that does I/O. It reads
//! `<root>/proc/*/cmdline` once, finds the Kubernetes components among the processes,
//! locates their files (from the process's own flags first, then the usual paths),
//! parses their config files and drop-ins, and stats every file the benchmark reads,
//! with user and group names from `<root>/etc/passwd` and `<root>/etc/group`. It spawns
//! no processes. Paths are resolved inside `root`, absolute symlinks included, so a
//! fixture tree or a host filesystem mounted in a pod reads like the host itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::CisError;
use super::argv::Args;
use super::eval::config_value;
use super::facts::{
    ComponentFacts, ConfigFacts, ConfigLayer, FileFact, FileSet, Located, NodeFacts, Stat,
};
use super::profile::{Component, FileKind, FileRef, first_line};

/// Collector settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Refuse to read config files larger than this.
    pub max_file_bytes: u64,
    /// The node's name, when the caller knows it better than the host does.
    pub node_name: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_file_bytes: 4 * 1024 * 1024,
            node_name: None,
        }
    }
}

/// Most symlinks followed while resolving one path (Linux's own limit).
const MAX_SYMLINKS: usize = 40;
/// Most entries visited under one directory tree.
const MAX_TREE_ENTRIES: usize = 20_000;
const MAX_TREE_DEPTH: usize = 16;
/// Longest command line read from /proc.
const MAX_CMDLINE: u64 = 1024 * 1024;

fn manifest_candidates(c: Component) -> &'static [&'static str] {
    match c {
        Component::Apiserver => &[
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            "/etc/kubernetes/manifests/kube-apiserver.yml",
            "/etc/kubernetes/manifests/kube-apiserver.manifest",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml",
        ],
        Component::ControllerManager => &[
            "/etc/kubernetes/manifests/kube-controller-manager.yaml",
            "/etc/kubernetes/manifests/kube-controller-manager.yml",
            "/etc/kubernetes/manifests/kube-controller-manager.manifest",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-controller-manager.yaml",
        ],
        Component::Scheduler => &[
            "/etc/kubernetes/manifests/kube-scheduler.yaml",
            "/etc/kubernetes/manifests/kube-scheduler.yml",
            "/etc/kubernetes/manifests/kube-scheduler.manifest",
            "/var/lib/rancher/rke2/agent/pod-manifests/kube-scheduler.yaml",
        ],
        Component::Etcd => &[
            "/etc/kubernetes/manifests/etcd.yaml",
            "/etc/kubernetes/manifests/etcd.yml",
            "/etc/kubernetes/manifests/etcd.manifest",
            "/var/lib/rancher/rke2/agent/pod-manifests/etcd.yaml",
        ],
        Component::Kubelet | Component::Proxy => &[],
    }
}

fn config_candidates(c: Component) -> &'static [&'static str] {
    match c {
        Component::Kubelet => &[
            "/var/lib/kubelet/config.yaml",
            "/etc/kubernetes/kubelet-config.yaml",
            "/etc/kubernetes/kubelet/kubelet-config.json",
            "/etc/kubernetes/kubelet/config.json",
            "/home/kubernetes/kubelet-config.yaml",
        ],
        Component::Proxy => &[
            "/var/lib/kube-proxy/config.conf",
            "/etc/kubernetes/kube-proxy-config.yaml",
        ],
        _ => &[],
    }
}

fn kubeconfig_candidates(c: Component) -> &'static [&'static str] {
    match c {
        Component::Kubelet => &[
            "/etc/kubernetes/kubelet.conf",
            "/var/lib/kubelet/kubeconfig",
            "/etc/kubernetes/kubelet-kubeconfig",
            "/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
        ],
        Component::Proxy => &[
            "/var/lib/kube-proxy/kubeconfig.conf",
            "/etc/kubernetes/proxy.conf",
            "/var/lib/kube-proxy/kubeconfig",
            "/var/lib/rancher/rke2/agent/kubeproxy.kubeconfig",
        ],
        Component::Scheduler => &[
            "/etc/kubernetes/scheduler.conf",
            "/var/lib/kube-scheduler/kubeconfig",
        ],
        Component::ControllerManager => &[
            "/etc/kubernetes/controller-manager.conf",
            "/var/lib/kube-controller-manager/kubeconfig",
        ],
        _ => &[],
    }
}

fn service_candidates(c: Component) -> &'static [&'static str] {
    match c {
        Component::Kubelet => &[
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "/etc/systemd/system/kubelet.service",
            "/lib/systemd/system/kubelet.service",
            "/usr/lib/systemd/system/kubelet.service",
        ],
        Component::Proxy => &["/lib/systemd/system/kube-proxy.service"],
        Component::Etcd => &["/etc/systemd/system/etcd.service"],
        _ => &[],
    }
}

/// The component a process is, from its argv.
pub fn component_of(argv: &[String]) -> Option<(Component, usize)> {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let first = base(argv.first()?);
    let (name, skip) = if first == "hyperkube" {
        (base(argv.get(1)?), 2)
    } else {
        (first, 1)
    };
    let c = match name.as_str() {
        "kube-apiserver" | "apiserver" => Component::Apiserver,
        "kube-controller-manager" | "controller-manager" | "kube-controller" => {
            Component::ControllerManager
        }
        "kube-scheduler" | "scheduler" => Component::Scheduler,
        "etcd" => Component::Etcd,
        "kubelet" => Component::Kubelet,
        "kube-proxy" | "proxy" => Component::Proxy,
        _ => return None,
    };
    Some((c, skip))
}

/// Gather the facts of the node under `root` for the given file references.
pub fn collect(
    root: &Path,
    file_refs: &BTreeSet<FileRef>,
    opts: &Options,
) -> Result<NodeFacts, CisError> {
    let node_err = |path: &Path, message: String| CisError::Node {
        path: path.display().to_string(),
        message,
    };
    if !root.is_dir() {
        return Err(node_err(root, "--root is not a directory".into()));
    }
    let proc_dir = root.join("proc");
    let entries = fs::read_dir(&proc_dir).map_err(|e| {
        node_err(
            &proc_dir,
            format!(
                "cannot read the process table ({}); run on the node as root with the host's /proc (hostPID), or point --root at a node tree",
                io_text(&e)
            ),
        )
    })?;
    let c = Collector {
        root: root.to_path_buf(),
        opts: opts.clone(),
        users: names(&root.join("etc/passwd")),
        groups: names(&root.join("etc/group")),
    };
    let mut facts = NodeFacts {
        root: root.display().to_string(),
        ..Default::default()
    };

    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    for pid in pids {
        // Processes come and go: a missing or unreadable entry is skipped.
        let Ok(raw) = read_limited(&proc_dir.join(pid.to_string()).join("cmdline"), MAX_CMDLINE)
        else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let Some((component, skip)) = component_of(&argv) else {
            continue;
        };
        if let Some(first) = facts.components.get(&component) {
            facts.notes.push(format!(
                "more than one {} process (pids {} and {pid}); the checks read pid {}",
                component.process_name(),
                first.pid,
                first.pid
            ));
            continue;
        }
        let args = Args::parse(&argv[skip.min(argv.len())..]);
        let env = c.environ(pid);
        facts.components.insert(
            component,
            ComponentFacts {
                pid,
                argv,
                args,
                env,
                paths: BTreeMap::new(),
                config: ConfigFacts::None,
            },
        );
    }

    for (component, cf) in facts.components.iter_mut() {
        c.locate(*component, cf);
    }

    for r in file_refs {
        let set = c.file_set(r, &facts.components);
        facts.files.insert(r.key(), set);
    }

    // Versions from the control plane's static pod images (`…:v1.33.2`).
    let tag = regex::Regex::new(r"image:\s*\S*:v(\d+\.\d+)\.\d+").ok();
    for comp in [
        Component::Apiserver,
        Component::ControllerManager,
        Component::Scheduler,
    ] {
        for cand in manifest_candidates(comp) {
            let Ok(path) = c.resolve(cand) else { continue };
            let Ok(bytes) = read_limited(&path, c.opts.max_file_bytes) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            if let Some(m) = tag.as_ref().and_then(|t| t.captures(&text)) {
                facts
                    .versions
                    .push((m[1].to_string(), format!("image tag in {cand}")));
            }
        }
    }

    facts.node = opts
        .node_name
        .clone()
        .or_else(|| {
            facts
                .components
                .get(&Component::Kubelet)
                .and_then(|k| k.args.get("--hostname-override"))
        })
        .or_else(|| c.first_line_of("/etc/hostname"))
        .or_else(|| c.first_line_of("/proc/sys/kernel/hostname"))
        .unwrap_or_else(|| "unknown".into());
    Ok(facts)
}

struct Collector {
    root: PathBuf,
    opts: Options,
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Collector {
    /// Resolve an absolute host path inside the root, following symlinks (absolute
    /// targets restart at the root). A loop is an error, not a hang.
    fn resolve(&self, path: &str) -> Result<PathBuf, String> {
        let mut pending: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let mut cand = self.root.clone();
            cand.extend(&done);
            cand.push(&part);
            match fs::symlink_metadata(&cand) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(format!(
                            "{path}: too many levels of symbolic links (a symlink loop?)"
                        ));
                    }
                    let target = fs::read_link(&cand)
                        .map_err(|e| format!("{path}: cannot read symlink: {}", io_text(&e)))?;
                    let t = target.to_string_lossy().into_owned();
                    if t.starts_with('/') {
                        done.clear();
                    }
                    pending.extend(
                        t.split('/')
                            .filter(|s| !s.is_empty())
                            .rev()
                            .map(str::to_string),
                    );
                }
                _ => done.push(part),
            }
        }
        let mut out = self.root.clone();
        out.extend(&done);
        Ok(out)
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok_and(|p| p.exists())
    }

    fn first_line_of(&self, path: &str) -> Option<String> {
        let p = self.resolve(path).ok()?;
        let b = read_limited(&p, 4096).ok()?;
        let s = String::from_utf8_lossy(&b)
            .lines()
            .next()?
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    }

    fn environ(&self, pid: u32) -> Result<BTreeMap<String, String>, String> {
        let p = self.root.join("proc").join(pid.to_string()).join("environ");
        let raw = read_limited(&p, MAX_CMDLINE).map_err(|e| e.to_string())?;
        Ok(raw
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect())
    }

    fn first_existing(&self, cands: &[&str], how: &str) -> Option<Located> {
        cands.iter().find(|p| self.exists(p)).map(|p| Located {
            path: p.to_string(),
            how: how.to_string(),
        })
    }

    /// Find the component's files and read its config.
    fn locate(&self, comp: Component, cf: &mut ComponentFacts) {
        let flag = |name: &str| {
            cf.args
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| Located {
                    path: v,
                    how: format!("named by {name}"),
                })
        };
        let mut paths = BTreeMap::new();
        if let Some(l) = self.first_existing(manifest_candidates(comp), "static pod manifest path")
        {
            paths.insert(FileKind::Manifest, l);
        }
        if let Some(l) = flag("--config").or_else(|| {
            self.first_existing(
                config_candidates(comp),
                "usual path (the process names no --config)",
            )
        }) {
            paths.insert(FileKind::Config, l);
        }
        if let Some(l) = self.first_existing(service_candidates(comp), "systemd unit path") {
            paths.insert(FileKind::Service, l);
        }
        if let Some(l) = flag("--data-dir")
            .or_else(|| {
                cf.env
                    .as_ref()
                    .ok()
                    .and_then(|e| e.get("ETCD_DATA_DIR"))
                    .map(|p| Located {
                        path: p.clone(),
                        how: "environment ETCD_DATA_DIR".into(),
                    })
            })
            .filter(|_| comp == Component::Etcd)
            .or_else(|| {
                (comp == Component::Etcd)
                    .then(|| {
                        self.first_existing(
                            &["/var/lib/etcd/default.etcd", "/var/lib/etcd"],
                            "usual path",
                        )
                    })
                    .flatten()
            })
        {
            paths.insert(FileKind::DataDir, l);
        }
        // The config file, with kubelet drop-ins, lowest precedence first.
        let mut layers = Vec::new();
        let mut error = None;
        if matches!(comp, Component::Kubelet | Component::Proxy)
            && let Some(l) = paths.get(&FileKind::Config)
        {
            match self.parse_config(&l.path) {
                Ok(v) => layers.push(ConfigLayer {
                    source: format!("config file {}", l.path),
                    value: v,
                }),
                Err(e) => error = Some(e),
            }
        }
        if comp == Component::Kubelet
            && let Some(dir) = cf.args.get("--config-dir").filter(|d| !d.is_empty())
        {
            match self.drop_ins(&dir) {
                Ok(files) => {
                    for f in files {
                        match self.parse_config(&f) {
                            Ok(v) => layers.push(ConfigLayer {
                                source: format!("drop-in {f}"),
                                value: v,
                            }),
                            Err(e) => error = error.or(Some(e)),
                        }
                    }
                }
                Err(e) => error = error.or(Some(e)),
            }
        }
        cf.config = match (error, layers.is_empty()) {
            (Some(message), _) => ConfigFacts::Error { message },
            (None, true) => ConfigFacts::None,
            (None, false) => ConfigFacts::Layers { layers },
        };
        // Files named by flags or config keys.
        let from_config = |key: &str| match &cf.config {
            ConfigFacts::Layers { layers } => layers.iter().rev().find_map(|l| {
                config_value(&l.value, key).map(|p| Located {
                    path: p,
                    how: format!("{} (key {key})", l.source),
                })
            }),
            _ => None,
        };
        let kubeconfig = flag("--kubeconfig")
            .or_else(|| from_config("clientConnection.kubeconfig"))
            .or_else(|| self.first_existing(kubeconfig_candidates(comp), "usual path"));
        if let Some(l) = kubeconfig {
            paths.insert(FileKind::Kubeconfig, l);
        }
        let ca = flag("--client-ca-file")
            .or_else(|| from_config("authentication.x509.clientCAFile"))
            .or_else(|| {
                (comp == Component::Kubelet)
                    .then(|| self.first_existing(&["/etc/kubernetes/pki/ca.crt"], "usual path"))
                    .flatten()
            });
        if let Some(l) = ca {
            paths.insert(FileKind::ClientCa, l);
        }
        cf.paths = paths;
    }

    /// The `*.conf` files of a kubelet drop-in directory, in the order the kubelet
    /// applies them (by name).
    fn drop_ins(&self, dir: &str) -> Result<Vec<String>, String> {
        let p = self.resolve(dir)?;
        let rd = fs::read_dir(&p)
            .map_err(|e| format!("{dir}: cannot read the --config-dir: {}", io_text(&e)))?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".conf"))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
            .collect())
    }

    /// Read and parse a YAML or JSON config file into a mapping.
    fn parse_config(&self, path: &str) -> Result<Value, String> {
        let p = self.resolve(path)?;
        let bytes =
            read_limited(&p, self.opts.max_file_bytes).map_err(|e| format!("{path}: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 text"))?;
        let v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text)
                .map_err(|e| format!("{path}: invalid JSON: {}", first_line(&e.to_string())))?
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| format!("{path}: invalid YAML: {}", first_line(&e.to_string())))?
        };
        match v {
            Value::Object(_) => Ok(v),
            Value::Null => Ok(Value::Object(Default::default())),
            _ => Err(format!("{path}: not a mapping of settings")),
        }
    }

    fn stat(&self, path: &str, how: &str, follow: bool) -> Option<FileFact> {
        let resolved = if follow {
            self.resolve(path)
        } else {
            let mut p = self.root.clone();
            p.extend(path.split('/').filter(|s| !s.is_empty()));
            Ok(p)
        };
        let stat = match resolved {
            Err(e) => Err(e),
            Ok(p) => match fs::symlink_metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
                Err(e) => Err(format!("{path}: {}", io_text(&e))),
                Ok(m) => Ok(Stat {
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    user: self.users.get(&m.uid()).cloned(),
                    group: self.groups.get(&m.gid()).cloned(),
                    is_dir: m.is_dir(),
                }),
            },
        };
        Some(FileFact {
            path: path.to_string(),
            how: how.to_string(),
            stat,
        })
    }

    fn file_set(&self, r: &FileRef, comps: &BTreeMap<Component, ComponentFacts>) -> FileSet {
        match r {
            FileRef::Component(comp, kind) => {
                let Some(cf) = comps.get(comp) else {
                    return FileSet::NoComponent;
                };
                match cf.paths.get(kind) {
                    None => FileSet::Missing {
                        looked_at: match kind {
                            FileKind::Manifest => manifest_candidates(*comp),
                            FileKind::Config => config_candidates(*comp),
                            FileKind::Kubeconfig => kubeconfig_candidates(*comp),
                            FileKind::Service => service_candidates(*comp),
                            FileKind::ClientCa | FileKind::DataDir => &[],
                        }
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    },
                    Some(l) => match self.stat(&l.path, &l.how, true) {
                        None => FileSet::Missing {
                            looked_at: vec![l.path.clone()],
                        },
                        Some(f) => FileSet::Found { files: vec![f] },
                    },
                }
            }
            FileRef::Paths(paths) => {
                let files: Vec<FileFact> = paths
                    .iter()
                    .filter_map(|p| self.stat(p, "fixed path", true))
                    .collect();
                if files.is_empty() {
                    FileSet::Missing {
                        looked_at: paths.clone(),
                    }
                } else {
                    FileSet::Found { files }
                }
            }
            FileRef::Tree {
                dir,
                glob,
                files_only,
            } => self.tree(dir, glob.as_deref(), *files_only),
        }
    }

    /// Every entry under `dir` (the directory itself too when there is no pattern), not
    /// following symlinks, as `find DIR [-name GLOB]` lists them.
    fn tree(&self, dir: &str, glob: Option<&str>, files_only: bool) -> FileSet {
        let base = match self.resolve(dir) {
            Ok(p) => p,
            Err(message) => return FileSet::Error { message },
        };
        if !base.is_dir() {
            return FileSet::Missing {
                looked_at: vec![dir.to_string()],
            };
        }
        let mut files = Vec::new();
        let how = match glob {
            Some(g) => format!("{g} under {dir}"),
            None => format!("under {dir}"),
        };
        let host_dir = dir.trim_end_matches('/').to_string();
        if glob.is_none()
            && !files_only
            && let Some(f) = self.stat_host(&base, &host_dir, &how)
        {
            files.push(f);
        }
        let mut stack = vec![(base, host_dir, 0usize)];
        let mut seen = 0usize;
        while let Some((real, host, depth)) = stack.pop() {
            let rd = match fs::read_dir(&real) {
                Ok(rd) => rd,
                Err(e) => {
                    return FileSet::Error {
                        message: format!("{host}: {}", io_text(&e)),
                    };
                }
            };
            let mut names: Vec<(String, PathBuf)> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
                .collect();
            names.sort();
            for (name, path) in names {
                seen += 1;
                if seen > MAX_TREE_ENTRIES {
                    return FileSet::Error {
                        message: format!(
                            "{dir}: more than {MAX_TREE_ENTRIES} entries; refusing to walk it"
                        ),
                    };
                }
                let host_path = format!("{host}/{name}");
                let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                if glob.is_none_or(|g| glob_match(g, &name))
                    && !(files_only && is_dir)
                    && let Some(f) = self.stat_host(&path, &host_path, &how)
                {
                    files.push(f);
                }
                if is_dir && depth < MAX_TREE_DEPTH {
                    stack.push((path, host_path, depth + 1));
                }
            }
        }
        if files.is_empty() {
            return FileSet::Missing {
                looked_at: vec![how],
            };
        }
        FileSet::Found { files }
    }

    fn stat_host(&self, real: &Path, host: &str, how: &str) -> Option<FileFact> {
        let stat = match fs::symlink_metadata(real) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => Err(format!("{host}: {}", io_text(&e))),
            Ok(m) => Ok(Stat {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                user: self.users.get(&m.uid()).cloned(),
                group: self.groups.get(&m.gid()).cloned(),
                is_dir: m.is_dir(),
            }),
        };
        Some(FileFact {
            path: host.to_string(),
            how: how.to_string(),
            stat,
        })
    }
}

/// `*` and `?` wildcards on a file name.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// id → name from a passwd- or group-format file (missing file: no names).
fn names(path: &Path) -> HashMap<u32, String> {
    let Ok(bytes) = read_limited(path, 16 * 1024 * 1024) else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let id = f.next()?.parse().ok()?;
            (!name.is_empty() && !name.starts_with('#')).then(|| (id, name.to_string()))
        })
        .collect()
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

/// Read at most `max` bytes of a regular file (or a /proc file, whose size reads 0).
fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let f = fs::File::open(path).map_err(|e| io_text(&e))?;
    let m = f.metadata().map_err(|e| io_text(&e))?;
    if m.is_dir() {
        return Err("is a directory".into());
    }
    if m.len() > max {
        return Err(format!(
            "is {} bytes, larger than the {} byte limit; refusing to read it",
            m.len(),
            max
        ));
    }
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_text(&e))?;
    if buf.len() as u64 > max {
        return Err(format!(
            "is larger than the {max} byte limit; refusing to read it"
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.crt", "ca.crt"));
        assert!(!glob_match("*.crt", "ca.key"));
        assert!(glob_match("*etcd*", "etcd.yaml"));
        assert!(glob_match("a?c", "abc"));
    }

    #[test]
    fn components_from_argv() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            component_of(&v(&["/usr/local/bin/kube-apiserver", "--x"])),
            Some((Component::Apiserver, 1))
        );
        assert_eq!(
            component_of(&v(&["hyperkube", "kubelet"])),
            Some((Component::Kubelet, 2))
        );
        assert_eq!(component_of(&v(&["etcdctl"])), None);
        assert_eq!(component_of(&v(&[])), None);
    }
}
