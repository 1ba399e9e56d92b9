//! The event the rules engine consumes: one system call (or process lifecycle event) with
//! the process, file descriptor, user, container and Kubernetes context around it.
//!
//! The node sensor fills an [`Event`] from what its eBPF probes and process table know;
//! `kubectl secmon rules test` reads them back from recorded JSON lines. The engine only
//! borrows from it: matching never copies a string out of an event.
//!
//! # JSON form (one event per line)
//!
//! Every key is optional except `type`; absent keys take the defaults shown. Unknown keys
//! are rejected so that a typo in a recorded event does not silently test nothing.
//!
//! ```json
//! {
//!   "ts": 1777629600123456789,          // event time, ns since the Unix epoch (evt.rawtime)
//!   "num": 42,                          // event number (evt.num): number events from 1;
//!                                       // Falco's never_true macro is `evt.num=0`
//!   "type": "openat",                   // syscall name as Falco spells it (evt.type)
//!   "dir": "exit",                      // "exit" (default) or "enter" (evt.dir < / >)
//!   "res": 3,                           // raw return value (evt.rawres); < 0 is -errno
//!   "args": {"flags": "O_RDONLY|O_CLOEXEC", "name": "/etc/shadow"},
//!                                       // rendered syscall arguments, in order (evt.arg.*)
//!   "hostname": "node-1",               // evt.hostname
//!   "proc": {                           // the calling thread's process (proc.*, thread.*)
//!     "pid": 4242, "tid": 4242, "ppid": 1, "vpid": 7,
//!     "name": "cat",                    // comm, as the kernel truncates it (proc.name)
//!     "exe": "cat",                     // argv[0] (proc.exe)
//!     "exepath": "/usr/bin/cat",        // resolved executable path (proc.exepath)
//!     "args": ["/etc/shadow"],          // argv[1..] (proc.args, proc.cmdline)
//!     "cwd": "/root/", "tty": 34816,    // proc.cwd, proc.tty (0 = no terminal)
//!     "start_ts": 1777629590000000000,  // process start, ns (proc.duration)
//!     "sname": "bash",                  // session leader's name (proc.sname)
//!     "exe_from_memfd": false,          // proc.is_exe_from_memfd
//!     "exe_upper_layer": false,         // proc.is_exe_upper_layer (overlayfs upper dir)
//!     "exe_ino_ctime": 0, "exe_ino_mtime": 0,   // ns, proc.exe_ino.*
//!     "env": ["HOME=/root"],            // proc.env, proc.env[NAME]
//!     "cap_effective": ["CAP_SYS_ADMIN"],       // thread.cap_effective (names or a bit mask)
//!     "cap_permitted": ["CAP_SYS_ADMIN"]        // thread.cap_permitted
//!   },
//!   "parents": [ {"pid": 1, "name": "bash", "exe": "/bin/bash", "exepath": "/usr/bin/bash", "args": []} ],
//!                                       // ancestors, parent first (proc.pname, proc.aname[N], …)
//!   "fd": {                             // the file descriptor the call used or returned (fd.*)
//!     "num": 3, "type": "file",         // file, directory, ipv4, ipv6, unix, pipe, event, signalfd,
//!                                       // eventpoll, inotify, timerfd, netlink, bpf, userfaultfd, io_uring, memfd
//!     "name": "/etc/shadow",            // resolved name; for sockets "cip:cport->sip:sport"
//!     "nameraw": "/etc/../etc/shadow",  // the path as passed to the call (defaults to name)
//!     "l4proto": "tcp",                 // tcp, udp, icmp, raw (sockets)
//!     "cip": "10.0.0.5", "cport": 43210, "sip": "10.96.0.1", "sport": 443,
//!     "role": "client",                 // "client" (connect) or "server" (accept): local side
//!     "connected": true, "name_changed": false
//!   },
//!   "user": {"uid": 0, "name": "root", "loginuid": -1, "loginname": ""},
//!   "group": {"gid": 0, "name": "root"},
//!   "container": {                      // absent for host processes (container.id = "host")
//!     "id": "3ad7b26ded6d", "name": "web", "image": "nginx:1.27",
//!     "image_repository": "nginx", "image_tag": "1.27",
//!     "privileged": false, "start_ts": 1777629000000000000
//!   },
//!   "k8s": {"ns": "default", "pod": "web-0", "pod_uid": "…", "labels": {"app": "web"}}
//! }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// A system call or lifecycle event, named as Falco names them in `evt.type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            /// Every event type, in declaration order (`ALL[t as usize] == t`).
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The name used in rules (`evt.type = openat`).
            pub fn name(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// The event type a rule name refers to, if the engine knows it.
            pub fn from_name(name: &str) -> Option<EventType> {
                match name { $($name => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    Execve => "execve",
    Execveat => "execveat",
    Open => "open",
    Openat => "openat",
    Openat2 => "openat2",
    Creat => "creat",
    Connect => "connect",
    Accept => "accept",
    Accept4 => "accept4",
    Listen => "listen",
    Bind => "bind",
    Socket => "socket",
    Sendto => "sendto",
    Sendmsg => "sendmsg",
    Recvfrom => "recvfrom",
    Recvmsg => "recvmsg",
    Close => "close",
    Read => "read",
    Write => "write",
    Unlink => "unlink",
    Unlinkat => "unlinkat",
    Rename => "rename",
    Renameat => "renameat",
    Renameat2 => "renameat2",
    Link => "link",
    Linkat => "linkat",
    Symlink => "symlink",
    Symlinkat => "symlinkat",
    Mkdir => "mkdir",
    Mkdirat => "mkdirat",
    Rmdir => "rmdir",
    Chmod => "chmod",
    Fchmod => "fchmod",
    Fchmodat => "fchmodat",
    Chown => "chown",
    Fchown => "fchown",
    Fchownat => "fchownat",
    Lchown => "lchown",
    Mount => "mount",
    Umount => "umount",
    Umount2 => "umount2",
    Chroot => "chroot",
    PivotRoot => "pivot_root",
    Ptrace => "ptrace",
    Setuid => "setuid",
    Setgid => "setgid",
    Setreuid => "setreuid",
    Setregid => "setregid",
    Setresuid => "setresuid",
    Setresgid => "setresgid",
    Capset => "capset",
    Prctl => "prctl",
    Setns => "setns",
    Unshare => "unshare",
    InitModule => "init_module",
    FinitModule => "finit_module",
    DeleteModule => "delete_module",
    MemfdCreate => "memfd_create",
    Mmap => "mmap",
    Mprotect => "mprotect",
    Dup => "dup",
    Dup2 => "dup2",
    Dup3 => "dup3",
    Bpf => "bpf",
    Userfaultfd => "userfaultfd",
    Kill => "kill",
    Clone => "clone",
    Clone3 => "clone3",
    Fork => "fork",
    Vfork => "vfork",
    Procexit => "procexit",
}

/// How many event types there are (the size of per-type tables).
pub const EVENT_TYPE_COUNT: usize = EventType::ALL.len();

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        EventType::from_name(&name)
            .ok_or_else(|| de::Error::custom(format!("unknown event type {name:?}")))
    }
}

/// Whether the event was recorded on entry to or exit from the call (`evt.dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Enter,
    #[default]
    Exit,
}

/// One recorded event. See the module docs for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ts: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "is_exit")]
    pub dir: Direction,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub res: i64,
    #[serde(default, skip_serializing_if = "Args::is_empty")]
    pub args: Args,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default)]
    pub proc: Process,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<Fd>,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub group: Group,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s: Option<K8s>,
}

impl Event {
    /// An event of the given type with everything else at its default.
    pub fn new(kind: EventType) -> Event {
        Event {
            ts: 0,
            num: 0,
            kind,
            dir: Direction::Exit,
            res: 0,
            args: Args::default(),
            hostname: String::new(),
            proc: Process::default(),
            parents: Vec::new(),
            fd: None,
            user: User::default(),
            group: Group::default(),
            container: None,
            k8s: None,
        }
    }

    /// Parse one JSON event (one line of a recording).
    pub fn from_json(text: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON form, on one line.
    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The ancestor `n` levels up: 0 is the process itself, 1 its parent, and so on.
    pub fn ancestor(&self, n: usize) -> Option<&Process> {
        if n == 0 {
            Some(&self.proc)
        } else {
            self.parents.get(n - 1)
        }
    }
}

/// Parse a recording: one JSON event per line; blank lines and lines starting with `#` are
/// skipped. Errors name the 1-based line.
pub fn parse_json_lines(text: &str) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ev = Event::from_json(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(ev);
    }
    Ok(out)
}

/// A process (or one of its ancestors). Ancestors usually fill only the identity fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Process {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub pid: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub tid: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ppid: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub vpid: i64,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub exe: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub exepath: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cwd: String,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub tty: u32,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub start_ts: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sname: String,
    #[serde(skip_serializing_if = "is_false")]
    pub exe_from_memfd: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub exe_upper_layer: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub exe_ino_ctime: u64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub exe_ino_mtime: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Capabilities::is_empty")]
    pub cap_effective: Capabilities,
    #[serde(skip_serializing_if = "Capabilities::is_empty")]
    pub cap_permitted: Capabilities,
}

impl Process {
    /// The value of one environment variable (`proc.env[NAME]`).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// The kind of object a file descriptor refers to (`fd.type`, `fd.typechar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdType {
    #[default]
    File,
    Directory,
    Ipv4,
    Ipv6,
    Unix,
    Pipe,
    Event,
    Signalfd,
    Eventpoll,
    Inotify,
    Timerfd,
    Netlink,
    Bpf,
    Userfaultfd,
    IoUring,
    Memfd,
}

impl FdType {
    /// Falco's name (`fd.type`).
    pub fn name(self) -> &'static str {
        match self {
            FdType::File => "file",
            FdType::Directory => "directory",
            FdType::Ipv4 => "ipv4",
            FdType::Ipv6 => "ipv6",
            FdType::Unix => "unix",
            FdType::Pipe => "pipe",
            FdType::Event => "event",
            FdType::Signalfd => "signalfd",
            FdType::Eventpoll => "eventpoll",
            FdType::Inotify => "inotify",
            FdType::Timerfd => "timerfd",
            FdType::Netlink => "netlink",
            FdType::Bpf => "bpf",
            FdType::Userfaultfd => "userfaultfd",
            FdType::IoUring => "io_uring",
            FdType::Memfd => "memfd",
        }
    }

    /// Falco's one-character code (`fd.typechar`).
    pub fn typechar(self) -> &'static str {
        match self {
            FdType::File | FdType::Memfd => "f",
            FdType::Directory => "d",
            FdType::Ipv4 => "4",
            FdType::Ipv6 => "6",
            FdType::Unix => "u",
            FdType::Pipe => "p",
            FdType::Event => "e",
            FdType::Signalfd => "s",
            FdType::Eventpoll => "l",
            FdType::Inotify => "i",
            FdType::Timerfd => "t",
            FdType::Netlink => "n",
            FdType::Bpf => "b",
            FdType::Userfaultfd => "u",
            FdType::IoUring => "r",
        }
    }

    /// Whether this is an IP socket.
    pub fn is_ip(self) -> bool {
        matches!(self, FdType::Ipv4 | FdType::Ipv6)
    }
}

/// Which end of a connection the event's process is (decides `fd.lip` versus `fd.rip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketRole {
    #[default]
    Client,
    Server,
}

/// A file descriptor: a file, directory or socket.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fd {
    pub num: i64,
    #[serde(rename = "type")]
    pub kind: FdType,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nameraw: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub l4proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cip: Option<IpAddr>,
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub cport: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<IpAddr>,
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub sport: u16,
    #[serde(skip_serializing_if = "is_client")]
    pub role: SocketRole,
    #[serde(skip_serializing_if = "is_false")]
    pub connected: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub name_changed: bool,
}

/// The user the thread runs as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct User {
    pub uid: u32,
    pub name: String,
    /// Audit login uid; -1 when the process was never part of a login session.
    pub loginuid: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub loginname: String,
}

impl Default for User {
    fn default() -> Self {
        User {
            uid: 0,
            name: String::new(),
            loginuid: -1,
            loginname: String::new(),
        }
    }
}

/// The group the thread runs as.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Group {
    pub gid: u32,
    pub name: String,
}

/// The container the process runs in (absent for host processes).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_repository: String,
    pub image_tag: String,
    pub privileged: bool,
    pub start_ts: u64,
}

/// The Kubernetes pod the container belongs to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct K8s {
    pub ns: String,
    pub pod: String,
    pub pod_uid: String,
    pub labels: BTreeMap<String, String>,
}

/// Rendered syscall arguments, in call order: `evt.arg.NAME`, `evt.arg[N]`, `evt.args`.
/// JSON form: an object whose key order is kept. Names are usually static strings (the
/// sensor's, or the common names interned when reading JSON), so looking one up touches
/// no extra memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args(pub Vec<(Cow<'static, str>, String)>);

/// Argument names interned when events are read from JSON.
const ARG_NAMES: &[&str] = &[
    "fd", "dirfd", "name", "flags", "mode", "addr", "tuple", "domain", "type", "proto", "target",
    "linkpath", "oldpath", "newpath", "olddirfd", "newdirfd", "filename", "path", "request", "pid",
    "addr_len", "data", "dev", "dir", "uid", "gid", "euid", "egid", "ruid", "rgid", "suid", "sgid",
    "cmd", "oldfd", "newfd", "nstype", "uargs", "res", "size", "len", "prot", "sig", "backlog",
    "queuelen", "dest", "source",
];

fn intern(name: String) -> Cow<'static, str> {
    match ARG_NAMES.iter().find(|n| **n == name) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(name),
    }
}

impl Args {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The argument with this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The argument at this position.
    pub fn at(&self, index: usize) -> Option<&str> {
        self.0.get(index).map(|(_, v)| v.as_str())
    }

    /// Append an argument.
    pub fn push(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of argument name to value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Args, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, ArgValue>()? {
                    out.push((intern(k), v.0));
                }
                Ok(Args(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// An argument value in JSON: a string, or a number/bool written as such.
struct ArgValue(String);

impl<'de> Deserialize<'de> for ArgValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ArgValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ArgValue, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ArgValue, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ArgValue, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ArgValue, E> {
                Ok(ArgValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ArgValue, E> {
                Ok(ArgValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Linux capability names by bit number.
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A capability set as the kernel stores it: one bit per capability.
/// JSON form: a list of names (`["CAP_SYS_ADMIN"]`) or the raw mask as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The set with these names (unknown names are ignored; `CAP_` prefix optional,
    /// case-insensitive).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Capabilities {
        let mut mask = 0u64;
        for n in names {
            if let Some(bit) = capability_bit(n) {
                mask |= 1 << bit;
            }
        }
        Capabilities(mask)
    }

    /// Falco's rendering: names separated by single spaces, in bit order.
    pub fn render(&self, out: &mut String) {
        for (bit, name) in CAPABILITY_NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(name);
            }
        }
    }
}

fn capability_bit(name: &str) -> Option<usize> {
    let upper = name.trim();
    CAPABILITY_NAMES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(upper) || c[4..].eq_ignore_ascii_case(upper))
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let names: Vec<&str> = CAPABILITY_NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, n)| *n)
            .collect();
        let mut seq = s.serialize_seq(Some(names.len()))?;
        for n in names {
            seq.serialize_element(n)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Capabilities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of capability names or a bit mask")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Capabilities, E> {
                Ok(Capabilities(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Capabilities, E> {
                u64::try_from(v)
                    .map(Capabilities)
                    .map_err(|_| E::custom("capability mask must not be negative"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capabilities, A::Error> {
                let mut mask = 0u64;
                while let Some(name) = seq.next_element::<String>()? {
                    let bit = capability_bit(&name)
                        .ok_or_else(|| de::Error::custom(format!("unknown capability {name:?}")))?;
                    mask |= 1 << bit;
                }
                Ok(Capabilities(mask))
            }
        }
        d.deserialize_any(V)
    }
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_exit(d: &Direction) -> bool {
    *d == Direction::Exit
}
fn is_client(r: &SocketRole) -> bool {
    *r == SocketRole::Client
}
