//! Container identity from cgroup membership: which container (and which Kubernetes pod) a
//! process belongs to, read from the cgroup path the kubelet and the container runtime gave
//! it. No runtime socket is queried: the id and the pod UID are in the path, and pod names
//! come from the API server (`pods.rs`).
//!
//! Recognised layouts (cgroup v2 `0::/path`, v1 `N:controllers:/path`, and hybrid):
//!
//! ```text
//! systemd driver  /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
//!                 /kubepods.slice/kubepods-pod<uid_>.slice/crio-<id>.scope          (guaranteed: no QoS slice)
//!                 /system.slice/containerd.service/kubepods-burstable-pod<uid_>.slice:cri-containerd:<id>
//! cgroupfs driver /kubepods/besteffort/pod<uid>/<id>      /kubepods/pod<uid>/<id>
//! docker          /system.slice/docker-<id>.scope         /docker/<id>
//! ```
//!
//! `<id>` is 64 lowercase hex digits (Falco's `container.id` is its first 12); `<uid_>` is the
//! pod UID with `_` for `-`. `crio-conmon-<id>.scope` is CRI-O's monitor process, on the
//! host side of the container, so it is not a container. Anything else is the host.
//!
//! [`ContainerCache`] maps the cgroup ids the kernel records carry (the v1 memory cgroup's
//! and the v2 cgroup's kernfs ids, which are the inode numbers of the cgroup directories) to
//! identities, learning them from `/proc/PID/cgroup` while the process lives and, for a
//! process that is already gone, from a bounded walk of the cgroup filesystem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The container runtime a cgroup path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    Podman,
    /// A container id under `kubepods` without a runtime prefix (cgroupfs driver).
    Unknown,
}

impl Runtime {
    /// Lower-case name (`containerd`, `cri-o`, `docker`, `podman`, `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// A container, as its cgroup path identifies it. Host processes have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// Falco's `container.id`: the first 12 hex digits.
    pub id: String,
    /// All 64 hex digits.
    pub full_id: String,
    pub runtime: Runtime,
    /// The pod's UID with its dashes, when the path is under `kubepods`.
    pub pod_uid: Option<String>,
}

/// The container a `/proc/PID/cgroup` file names, or `None` for the host (and for layouts
/// this module does not know). Accepts any bytes: lines that are not `ID:CONTROLLERS:PATH`
/// are skipped.
///
/// The v1 `memory` line is preferred, then `cpu`, `pids`, `name=systemd`, then the v2
/// (`0::`) line, then any other line; the first of them whose path names a container wins.
pub fn parse_cgroup_file(text: impl AsRef<[u8]>) -> Option<ContainerRef> {
    let lines = CgroupLines::parse(text.as_ref());
    lines
        .by_preference()
        .find_map(|p| parse_cgroup_path(&String::from_utf8_lossy(p)))
}

/// The container one cgroup path names (`/kubepods/besteffort/pod…/<id>`), or `None`.
pub fn parse_cgroup_path(path: &str) -> Option<ContainerRef> {
    let mut found: Option<(&str, Runtime)> = None;
    let mut pod_uid: Option<String> = None;
    let mut under_kubepods = false;
    let mut under_docker = false;
    for comp in path.split('/') {
        if comp.is_empty() {
            continue;
        }
        if comp == "kubepods" || comp.starts_with("kubepods.") || comp.starts_with("kubepods-") {
            under_kubepods = true;
        }
        if comp == "docker" {
            under_docker = true;
        }
        // containerd with the systemd driver on cgroup v1: "<pod slice>:cri-containerd:<id>".
        if let Some((slice, rest)) = comp.split_once(':')
            && let Some((runtime, id)) = rest.split_once(':')
        {
            if let Some(uid) = pod_uid_from_component(slice) {
                pod_uid = Some(uid);
                under_kubepods = true;
            }
            if is_container_id(id) {
                let rt = match runtime {
                    "cri-containerd" => Runtime::Containerd,
                    "crio" => Runtime::Crio,
                    "docker" => Runtime::Docker,
                    _ => Runtime::Unknown,
                };
                found = Some((id, rt));
            }
            continue;
        }
        if let Some(uid) = pod_uid_from_component(comp) {
            pod_uid = Some(uid);
            continue;
        }
        if let Some(c) = container_from_component(comp, under_kubepods, under_docker) {
            found = c;
        }
    }
    let (id, runtime) = found?;
    Some(ContainerRef {
        id: id[..12].to_string(),
        full_id: id.to_string(),
        runtime,
        pod_uid: if under_kubepods { pod_uid } else { None },
    })
}

/// What one path component says about a container: `None` when it says nothing,
/// `Some(None)` when it is a known non-container (CRI-O's conmon), `Some(Some(..))` for a
/// container.
#[allow(clippy::option_option)]
fn container_from_component(
    comp: &str,
    under_kubepods: bool,
    under_docker: bool,
) -> Option<Option<(&str, Runtime)>> {
    let base = comp.strip_suffix(".scope").unwrap_or(comp);
    if base.starts_with("crio-conmon-") {
        return Some(None);
    }
    const PREFIXED: [(&str, Runtime); 4] = [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::Crio),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, rt) in PREFIXED {
        if let Some(id) = base.strip_prefix(prefix)
            && is_container_id(id)
        {
            return Some(Some((id, rt)));
        }
    }
    if is_container_id(comp) {
        if under_docker && !under_kubepods {
            return Some(Some((comp, Runtime::Docker)));
        }
        if under_kubepods {
            return Some(Some((comp, Runtime::Containerd)));
        }
        return Some(Some((comp, Runtime::Unknown)));
    }
    None
}

/// The pod UID in a `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid_>.slice` (systemd)
/// component, with dashes.
fn pod_uid_from_component(comp: &str) -> Option<String> {
    let raw = if let Some(slice) = comp.strip_suffix(".slice") {
        let (_, uid) = slice.rsplit_once("-pod")?;
        if !slice.starts_with("kubepods") {
            return None;
        }
        uid
    } else {
        comp.strip_prefix("pod")?
    };
    // UIDs are 36 characters with dashes; static pods' config hashes are 32 hex digits.
    if !(32..=36).contains(&raw.len())
        || !raw
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some(raw.replace('_', "-"))
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The lines of a `/proc/PID/cgroup` file, by kind.
#[derive(Default)]
struct CgroupLines<'a> {
    memory: Option<&'a [u8]>,
    cpu: Option<&'a [u8]>,
    pids: Option<&'a [u8]>,
    systemd: Option<&'a [u8]>,
    unified: Option<&'a [u8]>,
    other: Vec<&'a [u8]>,
}

impl<'a> CgroupLines<'a> {
    fn parse(text: &'a [u8]) -> CgroupLines<'a> {
        let mut out = CgroupLines::default();
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut parts = line.splitn(3, |&b| b == b':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id.is_empty() || !id.iter().all(u8::is_ascii_digit) || !path.starts_with(b"/") {
                continue;
            }
            if id == b"0" && controllers.is_empty() {
                out.unified.get_or_insert(path);
                continue;
            }
            let rank = controllers
                .split(|&b| b == b',')
                .filter_map(|c| match c {
                    b"memory" => Some(0),
                    b"cpu" | b"cpuacct" => Some(1),
                    b"pids" => Some(2),
                    b"name=systemd" => Some(3),
                    _ => None,
                })
                .min();
            let slot = match rank {
                Some(0) => &mut out.memory,
                Some(1) => &mut out.cpu,
                Some(2) => &mut out.pids,
                Some(3) => &mut out.systemd,
                _ => {
                    out.other.push(path);
                    continue;
                }
            };
            slot.get_or_insert(path);
        }
        out
    }

    fn by_preference(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        [self.memory, self.cpu, self.pids, self.systemd, self.unified]
            .into_iter()
            .flatten()
            .chain(self.other.iter().copied())
    }
}

/// The cgroup v1 memory path and the v2 path in a `/proc/PID/cgroup` file.
fn memory_and_unified_paths(text: &[u8]) -> (Option<String>, Option<String>) {
    let lines = CgroupLines::parse(text);
    let s = |p: Option<&[u8]>| p.map(|p| String::from_utf8_lossy(p).into_owned());
    (s(lines.memory), s(lines.unified))
}

/// How a [`ContainerCache`] finds cgroup directories and how long it remembers failures.
#[derive(Debug, Clone)]
pub struct ContainerCacheConfig {
    /// The v1 memory controller's mount (`/sys/fs/cgroup/memory`), where `memcg_id`s live.
    pub v1_memory_root: PathBuf,
    /// The v2 mount (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid systems).
    pub v2_root: PathBuf,
    /// How long an id that could not be resolved is not looked for again.
    pub negative_ttl: Duration,
    /// At most this many directories are visited by one walk.
    pub max_walk: usize,
    /// At most this many ids are remembered (per cgroup version); then the cache restarts.
    pub max_entries: usize,
}

impl Default for ContainerCacheConfig {
    fn default() -> Self {
        ContainerCacheConfig {
            v1_memory_root: PathBuf::from("/sys/fs/cgroup/memory"),
            v2_root: PathBuf::from("/sys/fs/cgroup"),
            negative_ttl: Duration::from_secs(2),
            max_walk: 20_000,
            max_entries: 65_536,
        }
    }
}

#[derive(Debug, Clone)]
enum Cached {
    /// Resolved: a container, or `None` for the host.
    Known(Option<ContainerRef>),
    /// Not found; look again after this instant.
    Missing(Instant),
}

/// Which cgroup hierarchy an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    V1Memory,
    V2,
}

/// Container identity by cgroup id. See the module docs.
#[derive(Debug)]
pub struct ContainerCache {
    config: ContainerCacheConfig,
    by_memcg: HashMap<u64, Cached>,
    by_cgroup: HashMap<u64, Cached>,
    walks: u64,
}

impl ContainerCache {
    pub fn new(config: ContainerCacheConfig) -> ContainerCache {
        ContainerCache {
            config,
            by_memcg: HashMap::new(),
            by_cgroup: HashMap::new(),
            walks: 0,
        }
    }

    /// How many cgroup filesystem walks have run (for tests and metrics).
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// How many ids are remembered, negative ones included.
    pub fn len(&self) -> usize {
        self.by_memcg.len() + self.by_cgroup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity already known for these ids, without any I/O: `Some(None)` is a known
    /// host cgroup, `None` an id not (or no longer) known. `memcg_id` (v1) is preferred
    /// when it is set: on hybrid systems the v2 id is systemd's, not the container's.
    #[allow(clippy::option_option)]
    pub fn cached(&self, cgroup_id: u64, memcg_id: u64) -> Option<Option<&ContainerRef>> {
        let (map, id) = self.key(cgroup_id, memcg_id)?;
        match map.get(&id)? {
            Cached::Known(c) => Some(c.as_ref()),
            Cached::Missing(_) => None,
        }
    }

    fn key(&self, cgroup_id: u64, memcg_id: u64) -> Option<(&HashMap<u64, Cached>, u64)> {
        if memcg_id != 0 {
            Some((&self.by_memcg, memcg_id))
        } else if cgroup_id != 0 {
            Some((&self.by_cgroup, cgroup_id))
        } else {
            None
        }
    }

    /// The container of a record's task. Cached by id; on a miss, read
    /// `<proc_root>/<pid>/cgroup` if the process is still there, else walk the cgroup
    /// filesystem for the directory with that inode (bounded, and a failure is remembered
    /// for `negative_ttl`). Ids of 0 (unknown) are resolved from `/proc` without caching.
    pub fn resolve(
        &mut self,
        cgroup_id: u64,
        memcg_id: u64,
        pid: u32,
        proc_root: &Path,
    ) -> Option<ContainerRef> {
        let now = Instant::now();
        let (hier, id) = if memcg_id != 0 {
            (Hierarchy::V1Memory, memcg_id)
        } else if cgroup_id != 0 {
            (Hierarchy::V2, cgroup_id)
        } else {
            let text = std::fs::read(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
            return parse_cgroup_file(&text);
        };
        match self.map(hier).get(&id) {
            Some(Cached::Known(c)) => return c.clone(),
            Some(Cached::Missing(until)) if *until > now => return None,
            _ => {}
        }
        // The process is alive: its cgroup file names the path.
        if pid != 0
            && let Ok(text) = std::fs::read(proc_root.join(pid.to_string()).join("cgroup"))
        {
            // Map the directories the file names to their inode ids; if the record's id is
            // one of them, that settles it. Otherwise (the process moved, or the cgroup
            // filesystem is not where it was configured) trust the file for this id.
            let c = parse_cgroup_file(&text);
            self.learn_ids(&text, &c);
            if let Some(Cached::Known(known)) = self.map(hier).get(&id) {
                return known.clone();
            }
            self.insert(hier, id, Cached::Known(c.clone()));
            return c;
        }
        // Gone: find the directory whose inode is the id.
        match self.walk_for(hier, id) {
            Some(path) => {
                let c = parse_cgroup_path(&path);
                self.insert(hier, id, Cached::Known(c.clone()));
                c
            }
            None => {
                let until = now + self.config.negative_ttl;
                self.insert(hier, id, Cached::Missing(until));
                None
            }
        }
    }

    /// Parse a `/proc/PID/cgroup` file, remember the identity under the ids of the cgroup
    /// directories it names (their inode numbers under the configured roots), and return
    /// `(container, cgroup_id, memcg_id)` (ids are 0 when the directory is not there).
    pub fn learn(&mut self, cgroup_text: &[u8]) -> (Option<ContainerRef>, u64, u64) {
        let c = parse_cgroup_file(cgroup_text);
        let (cg, mem) = self.learn_ids(cgroup_text, &c);
        (c, cg, mem)
    }

    fn learn_ids(&mut self, text: &[u8], c: &Option<ContainerRef>) -> (u64, u64) {
        let (mem_path, v2_path) = memory_and_unified_paths(text);
        let mut ids = (0, 0);
        if let Some(p) = v2_path
            && let Some(ino) = inode_of(&join_cgroup(&self.config.v2_root, &p))
        {
            // A v2 path only identifies the container on pure v2 systems; the hybrid
            // unified hierarchy is systemd's, so it gets its own parse.
            let own = parse_cgroup_path(&p);
            self.insert(Hierarchy::V2, ino, Cached::Known(own));
            ids.0 = ino;
        }
        if let Some(p) = mem_path
            && let Some(ino) = inode_of(&join_cgroup(&self.config.v1_memory_root, &p))
        {
            self.insert(Hierarchy::V1Memory, ino, Cached::Known(c.clone()));
            ids.1 = ino;
        }
        ids
    }

    fn map(&self, hier: Hierarchy) -> &HashMap<u64, Cached> {
        match hier {
            Hierarchy::V1Memory => &self.by_memcg,
            Hierarchy::V2 => &self.by_cgroup,
        }
    }

    fn insert(&mut self, hier: Hierarchy, id: u64, v: Cached) {
        let max = self.config.max_entries.max(1);
        let map = match hier {
            Hierarchy::V1Memory => &mut self.by_memcg,
            Hierarchy::V2 => &mut self.by_cgroup,
        };
        if map.len() >= max && !map.contains_key(&id) {
            // Drop the failures first; if that is not enough, start over (ids are cheap
            // to learn again).
            let now = Instant::now();
            map.retain(|_, c| match c {
                Cached::Known(_) => true,
                Cached::Missing(until) => *until > now,
            });
            if map.len() >= max {
                map.clear();
            }
        }
        map.insert(id, v);
    }

    /// Walk the hierarchy's root (depth-first, at most `max_walk` directories) for the
    /// directory with inode `id`; its path relative to the root. Container directories seen
    /// on the way are remembered too, so one walk serves the next lookups.
    fn walk_for(&mut self, hier: Hierarchy, id: u64) -> Option<String> {
        self.walks += 1;
        let root = match hier {
            Hierarchy::V1Memory => self.config.v1_memory_root.clone(),
            Hierarchy::V2 => self.config.v2_root.clone(),
        };
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(root, String::new(), 0)];
        let mut visited = 0usize;
        let mut seen: Vec<(u64, ContainerRef)> = Vec::new();
        let mut result = None;
        while let Some((dir, rel, depth)) = stack.pop() {
            visited += 1;
            if visited > self.config.max_walk {
                break;
            }
            if let Some(ino) = inode_of(&dir) {
                if ino == id {
                    result = Some(if rel.is_empty() { "/".to_string() } else { rel });
                    break;
                }
                if let Some(c) = parse_cgroup_path(&rel) {
                    seen.push((ino, c));
                }
            }
            if depth >= 16 {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = e.file_name();
                let name = name.to_string_lossy();
                stack.push((e.path(), format!("{rel}/{name}"), depth + 1));
            }
        }
        for (ino, c) in seen {
            self.insert(hier, ino, Cached::Known(Some(c)));
        }
        result
    }
}

fn join_cgroup(root: &Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

#[cfg(unix)]
fn inode_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[cfg(not(unix))]
fn inode_of(_path: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3ad7b26ded6d8e7e1f5a2b9c0d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";
    const UID: &str = "0b6e4c1e-1111-4a2b-9c3d-5e6f7a8b9c0d";
    const UID_: &str = "0b6e4c1e_1111_4a2b_9c3d_5e6f7a8b9c0d";

    fn assert_container(text: &str, runtime: Runtime, pod: Option<&str>) {
        let c = parse_cgroup_file(text).unwrap_or_else(|| panic!("no container in {text:?}"));
        assert_eq!(c.id, &ID[..12], "{text}");
        assert_eq!(c.full_id, ID, "{text}");
        assert_eq!(c.runtime, runtime, "{text}");
        assert_eq!(c.pod_uid.as_deref(), pod, "{text}");
    }

    #[test]
    fn v2_systemd_driver_every_qos_class() {
        assert_container(
            &format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
            ),
            Runtime::Containerd,
            Some(UID),
        );
        assert_container(
            &format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope\n"
            ),
            Runtime::Crio,
            Some(UID),
        );
        // Guaranteed pods have no QoS slice.
        assert_container(
            &format!("0::/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope"),
            Runtime::Docker,
            Some(UID),
        );
    }

    #[test]
    fn v2_cgroupfs_driver() {
        assert_container(
            &format!("0::/kubepods/besteffort/pod{UID}/{ID}\n"),
            Runtime::Containerd,
            Some(UID),
        );
        assert_container(
            &format!("0::/kubepods/pod{UID}/{ID}\n"),
            Runtime::Containerd,
            Some(UID),
        );
        assert_container(
            &format!("0::/kubepods/burstable/pod{UID}/crio-{ID}\n"),
            Runtime::Crio,
            Some(UID),
        );
    }

    #[test]
    fn crio_conmon_is_not_a_container() {
        let text = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope\n"
        );
        assert_eq!(parse_cgroup_file(&text), None);
    }

    #[test]
    fn plain_docker() {
        assert_container(
            &format!("0::/system.slice/docker-{ID}.scope\n"),
            Runtime::Docker,
            None,
        );
        assert_container(&format!("0::/docker/{ID}\n"), Runtime::Docker, None);
    }

    #[test]
    fn v1_prefers_the_memory_line() {
        // Every line but memory's says something else (or nothing).
        let text = format!(
            "12:pids:/user.slice\n\
             11:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{}\n\
             10:memory:/kubepods/besteffort/pod{UID}/{ID}\n\
             1:name=systemd:/system.slice/containerd.service\n",
            "b".repeat(64)
        );
        assert_container(&text, Runtime::Containerd, Some(UID));
    }

    #[test]
    fn v1_falls_back_to_cpu_pids_then_systemd() {
        let cpu = format!("4:cpu,cpuacct:/kubepods/pod{UID}/{ID}\n3:devices:/\n");
        assert_container(&cpu, Runtime::Containerd, Some(UID));
        let pids = format!("5:pids:/docker/{ID}\n2:freezer:/\n");
        assert_container(&pids, Runtime::Docker, None);
        let systemd = format!("1:name=systemd:/system.slice/docker-{ID}.scope\n");
        assert_container(&systemd, Runtime::Docker, None);
    }

    #[test]
    fn v1_systemd_driver_with_containerd_colon_form() {
        let text = format!(
            "7:memory:/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{ID}\n"
        );
        assert_container(&text, Runtime::Containerd, Some(UID));
    }

    #[test]
    fn hybrid_uses_the_v1_memory_line_over_unified() {
        let text = format!(
            "12:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope\n\
             1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope\n\
             0::/init.scope\n"
        );
        assert_container(&text, Runtime::Containerd, Some(UID));
    }

    #[test]
    fn static_pod_uid_without_dashes() {
        let hash = "6e4c1e11114a2b9c3d5e6f7a8b9c0d12";
        let c = parse_cgroup_file(format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/cri-containerd-{ID}.scope"
        ))
        .expect("container");
        assert_eq!(c.pod_uid.as_deref(), Some(hash));
    }

    #[test]
    fn host_processes() {
        for text in [
            "0::/init.scope\n",
            "0::/system.slice/sshd.service\n",
            "0::/user.slice/user-0.slice/session-3.scope\n",
            "0::/\n",
            "12:memory:/\n11:cpu,cpuacct:/\n1:name=systemd:/init.scope\n",
            // A pod slice without a container below it (the pod's own cgroup).
            "0::/kubepods.slice/kubepods-besteffort.slice\n",
        ] {
            assert_eq!(parse_cgroup_file(text), None, "{text}");
        }
    }

    #[test]
    fn garbage_binary_and_huge_lines_are_host_without_panic() {
        let long = format!("0::/{}\n", "a/".repeat(200_000));
        let long_hex = format!("0::/kubepods/{}\n", "f".repeat(100_000));
        let inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\n\n\n".to_vec(),
            b"::::\n0:\n:\n0::\n".to_vec(),
            b"not a cgroup file at all".to_vec(),
            vec![0xff, 0xfe, 0x00, b':', b':', b'/', 0x80, b'\n'],
            (0u8..=255).collect(),
            long.into_bytes(),
            long_hex.into_bytes(),
            format!("x::/docker/{ID}\n").into_bytes(), // hierarchy id not a number
            format!("0::docker/{ID}\n").into_bytes(),  // path not absolute
            format!("0::/docker/{}\n", &ID[..63]).into_bytes(),
            format!("0::/docker/{}\n", ID.to_uppercase()).into_bytes(),
            format!("0::/kubepods/podnot-a-uid/{}\n", "g".repeat(64)).into_bytes(),
        ];
        for t in inputs {
            assert_eq!(
                parse_cgroup_file(&t),
                None,
                "{:?}",
                String::from_utf8_lossy(&t)
            );
        }
        // Binary junk around a valid line does not hide it.
        let mut mixed = vec![0xff, 0x00, b'\n'];
        mixed.extend_from_slice(format!("0::/docker/{ID}\r\n").as_bytes());
        mixed.extend_from_slice(&[0x80, 0x81]);
        assert_eq!(
            parse_cgroup_file(&mixed).map(|c| c.full_id),
            Some(ID.to_string())
        );
    }

    #[test]
    fn pod_uid_needs_kubepods() {
        let c = parse_cgroup_file(format!("0::/custom/pod{UID}/{ID}")).expect("container");
        assert_eq!(c.pod_uid, None);
        assert_eq!(c.runtime, Runtime::Unknown);
    }

    fn fixture() -> (tempfile::TempDir, ContainerCacheConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ContainerCacheConfig {
            v1_memory_root: dir.path().join("cg/memory"),
            v2_root: dir.path().join("cg/unified"),
            negative_ttl: Duration::from_secs(60),
            max_walk: 1000,
            max_entries: 100,
        };
        std::fs::create_dir_all(&cfg.v1_memory_root).expect("mkdir");
        std::fs::create_dir_all(&cfg.v2_root).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
        (dir, cfg)
    }

    fn mkdir(p: &Path) -> u64 {
        std::fs::create_dir_all(p).expect("mkdir");
        inode_of(p).expect("inode")
    }

    #[cfg(unix)]
    #[test]
    fn cache_resolves_a_gone_process_by_walking_v2() {
        let (dir, cfg) = fixture();
        let rel = format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        let ino = mkdir(&cfg.v2_root.join(&rel));
        let host_ino = mkdir(&cfg.v2_root.join("system.slice/sshd.service"));
        let mut cache = ContainerCache::new(cfg);
        let proc_root = dir.path().join("proc");
        // pid 4242 has no /proc entry: the walk finds the directory.
        let c = cache.resolve(ino, 0, 4242, &proc_root).expect("container");
        assert_eq!(c.full_id, ID);
        assert_eq!(c.pod_uid.as_deref(), Some(UID));
        assert_eq!(cache.walks(), 1);
        // Cached: no second walk.
        assert_eq!(cache.resolve(ino, 0, 4242, &proc_root), Some(c.clone()));
        assert_eq!(cache.cached(ino, 0), Some(Some(&c)));
        assert_eq!(cache.walks(), 1);
        // A host cgroup resolves to the host.
        assert_eq!(cache.resolve(host_ino, 0, 4243, &proc_root), None);
        assert_eq!(cache.cached(host_ino, 0), Some(None));
    }

    #[cfg(unix)]
    #[test]
    fn cache_walk_remembers_containers_on_the_way_and_misses_for_a_while() {
        let (dir, cfg) = fixture();
        let other = "c".repeat(64);
        let a = mkdir(
            &cfg.v1_memory_root
                .join(format!("kubepods/besteffort/pod{UID}/{ID}")),
        );
        let b = mkdir(
            &cfg.v1_memory_root
                .join(format!("kubepods/besteffort/pod{UID}/{other}")),
        );
        let mut cache = ContainerCache::new(cfg);
        let proc_root = dir.path().join("proc");
        // An unknown id walks everything and fails; the failure is remembered.
        assert_eq!(cache.resolve(0, 987_654_321, 1, &proc_root), None);
        assert_eq!(cache.walks(), 1);
        assert_eq!(cache.resolve(0, 987_654_321, 1, &proc_root), None);
        assert_eq!(cache.walks(), 1, "negative result cached");
        // That walk saw both containers: no more walks for them.
        assert_eq!(
            cache.resolve(0, a, 1, &proc_root).map(|c| c.full_id),
            Some(ID.into())
        );
        assert_eq!(
            cache.resolve(0, b, 1, &proc_root).map(|c| c.full_id),
            Some(other)
        );
        assert_eq!(cache.walks(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn negative_results_expire() {
        let (dir, mut cfg) = fixture();
        cfg.negative_ttl = Duration::ZERO;
        let mut cache = ContainerCache::new(cfg.clone());
        let proc_root = dir.path().join("proc");
        assert_eq!(cache.resolve(55, 0, 1, &proc_root), None);
        assert_eq!(cache.resolve(55, 0, 1, &proc_root), None);
        assert_eq!(cache.walks(), 2, "expired failure walks again");
    }

    #[cfg(unix)]
    #[test]
    fn walk_is_bounded() {
        let (dir, mut cfg) = fixture();
        for i in 0..50 {
            mkdir(&cfg.v2_root.join(format!("d{i}")));
        }
        let target = mkdir(&cfg.v2_root.join(format!("zz/docker/{ID}")));
        cfg.max_walk = 5;
        let mut cache = ContainerCache::new(cfg);
        // The walk gives up before it can reach everything; no panic, no hang.
        let proc_root = dir.path().join("proc");
        let _ = cache.resolve(target, 0, 1, &proc_root);
        assert_eq!(cache.walks(), 1);
    }

    #[test]
    fn cache_reads_proc_for_a_live_process() {
        let (dir, cfg) = fixture();
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("77")).expect("mkdir");
        std::fs::write(
            proc_root.join("77/cgroup"),
            format!("0::/kubepods/besteffort/pod{UID}/{ID}\n"),
        )
        .expect("write");
        let mut cache = ContainerCache::new(cfg);
        let c = cache.resolve(4711, 0, 77, &proc_root).expect("container");
        assert_eq!(c.id, &ID[..12]);
        assert_eq!(cache.walks(), 0);
        // Remembered under the id even after the process is gone.
        std::fs::remove_dir_all(proc_root.join("77")).expect("rm");
        assert_eq!(cache.resolve(4711, 0, 77, &proc_root), Some(c));
        // Ids of 0 are not cached but still resolve from /proc.
        assert_eq!(cache.resolve(0, 0, 77, &proc_root), None);
    }

    #[cfg(unix)]
    #[test]
    fn learn_maps_directory_inodes_to_the_identity() {
        let (_dir, cfg) = fixture();
        let rel = format!("kubepods/pod{UID}/{ID}");
        let v2 = mkdir(&cfg.v2_root.join(&rel));
        let v1 = mkdir(&cfg.v1_memory_root.join(&rel));
        let mut cache = ContainerCache::new(cfg);
        let text = format!("9:memory:/{rel}\n0::/{rel}\n");
        let (c, cg, mem) = cache.learn(text.as_bytes());
        assert_eq!((cg, mem), (v2, v1));
        let c = c.expect("container");
        assert_eq!(cache.cached(0, v1), Some(Some(&c)));
        assert_eq!(cache.cached(v2, 0), Some(Some(&c)));
        // Unknown directories give 0 ids and no entries.
        let (_, cg, mem) = cache.learn(b"0::/nowhere\n");
        assert_eq!((cg, mem), (0, 0));
    }

    #[test]
    fn cache_is_bounded() {
        let (dir, mut cfg) = fixture();
        cfg.max_entries = 10;
        cfg.max_walk = 1;
        let mut cache = ContainerCache::new(cfg);
        let proc_root = dir.path().join("proc");
        for id in 1..100u64 {
            let _ = cache.resolve(id, 0, 0, &proc_root);
        }
        assert!(cache.len() <= 10, "{}", cache.len());
    }
}
