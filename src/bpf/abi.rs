//! The record format between the eBPF programs (`src/bpf/sensor.bpf.c`) and userspace, and
//! its decoder. Pure: bytes in, a borrowed [`RawEvent`] out; a short or inconsistent record
//! is an error, never a panic (the kernel side is trusted, but a decoder that can crash the
//! sensor on one bad record is a denial of service).
//!
//! # Record layout (little-endian, 176-byte header, then up to four byte strings)
//!
//! ```text
//! off  size  field
//!   0     2  size        whole record, header included
//!   2     2  kind        KIND_* below
//!   4     2  nr          syscall number (x86_64) for KIND_SYSCALL / KIND_SYSCALL_ENTER
//!   6     1  flags       FLAG_* below
//!   7     1  category    CAT_* (the drop-counter category the record belongs to)
//!   8     8  ts          CLOCK_BOOTTIME ns
//!  16     8  ret         syscall return value (-errno on failure); 0 for enter records
//!  24    48  args[6]     raw syscall arguments; per-kind meaning for the sched records
//!  72     8  cgroup_id   cgroup v2 id of the task (bpf_get_current_cgroup_id)
//!  80     8  memcg_id    kernfs id of the task's v1 memory cgroup (0 on pure cgroup v2)
//!  88     8  cap_eff     effective capabilities
//!  96     8  start_ns    process (thread-group leader) start, CLOCK_BOOTTIME ns
//! 104     4  tid         kernel thread id
//! 108     4  pid         thread-group id (what userspace calls pid)
//! 112     4  ppid        real parent's tgid
//! 116     4  vpid        pid inside the task's own pid namespace
//! 120     4  uid         real uid
//! 124     4  gid         real gid
//! 128     4  tty         controlling terminal as /proc/PID/stat's tty_nr (0 = none)
//! 132     4  loginuid    audit login uid (u32::MAX = unset)
//! 136     4  mntns       mount namespace inode number
//! 140     4  pidns       pid namespace inode number (the task's own)
//! 144    16  comm        NUL-padded
//! 160     8  str_len[4]  byte length of each string section (0 = absent)
//! 168     8  reserved
//! 176     …  s0 s1 s2 s3 back to back
//! ```
//!
//! String sections by kind:
//! - `KIND_SYSCALL`: per syscall, see [`syscall_layout`]; `s3` is a [`SockInfo`] for
//!   connect/accept/accept4/dup/dup2/dup3 when the descriptor is a socket.
//! - `KIND_EXEC` (sched_process_exec): `s0` filename as the kernel resolved it, `s1` the
//!   executable's dentry name (`memfd:NAME` for a memfd), `s2` argv (NUL-separated, argv[0]
//!   first), `s3` the environment (NUL-separated). `args[0]` = `EXE_*` bits, `args[1]` = exe
//!   inode ctime ns, `args[2]` = exe inode mtime ns, `args[3]` = the pid before exec.
//! - `KIND_FORK` (sched_process_fork, new processes only): header = parent; `args[0]` =
//!   child pid, `args[1]` = child start ns.
//! - `KIND_EXIT` (sched_process_exit, thread-group leaders only): `args[0]` = exit code.
//! - `KIND_SYSCALL_ENTER`: a syscall caught on entry only: `args` as passed, `s0` as for
//!   `KIND_SYSCALL`. Reserved: today's programs record every syscall at exit.
//!
//! Syscall records leave `vpid` and `pidns` at 0 (reading them costs the kernel two probe
//! reads per call); process records (exec, fork, exit) carry them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::rules::EventType;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 176;

/// A syscall, recorded at exit with its arguments and result.
pub const KIND_SYSCALL: u16 = 1;
/// A syscall recorded at entry only (no result).
pub const KIND_SYSCALL_ENTER: u16 = 2;
/// A successful exec (sched_process_exec).
pub const KIND_EXEC: u16 = 3;
/// A new process (sched_process_fork without CLONE_THREAD).
pub const KIND_FORK: u16 = 4;
/// A process exit (sched_process_exit of the thread-group leader).
pub const KIND_EXIT: u16 = 5;

/// Flag: some string section was cut at its bound.
pub const FLAG_TRUNCATED: u8 = 1;

/// `args[0]` bit of a `KIND_EXEC` record: the executable is in an overlayfs upper layer.
pub const EXE_UPPER_LAYER: u64 = 1;
/// `args[0]` bit of a `KIND_EXEC` record: the executable is a memfd.
pub const EXE_MEMFD: u64 = 2;

/// Drop-counter categories (the `category` label of the event metrics).
pub const CATEGORIES: [&str; 5] = ["process", "file", "network", "security", "other"];
pub const CAT_PROCESS: u8 = 0;
pub const CAT_FILE: u8 = 1;
pub const CAT_NETWORK: u8 = 2;
pub const CAT_SECURITY: u8 = 3;
pub const CAT_OTHER: u8 = 4;

/// The fixed part of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub nr: u16,
    pub flags: u8,
    pub category: u8,
    pub ts: u64,
    pub ret: i64,
    pub args: [u64; 6],
    pub cgroup_id: u64,
    pub memcg_id: u64,
    pub cap_eff: u64,
    pub start_ns: u64,
    pub tid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub vpid: u32,
    pub uid: u32,
    pub gid: u32,
    pub tty: u32,
    pub loginuid: u32,
    pub mntns: u32,
    pub pidns: u32,
    pub comm: [u8; 16],
}

impl Header {
    /// `comm` up to its first NUL, lossily as UTF-8.
    pub fn comm(&self) -> String {
        String::from_utf8_lossy(cstr(&self.comm)).into_owned()
    }
}

/// One decoded record, borrowing its strings from the ring buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent<'a> {
    pub hdr: Header,
    /// String sections as the kernel wrote them (C strings keep their NUL; use [`cstr`]).
    pub strs: [&'a [u8]; 4],
}

impl RawEvent<'_> {
    /// String section `i` as a C string (up to its first NUL), lossily UTF-8.
    pub fn str(&self, i: usize) -> String {
        self.strs
            .get(i)
            .map(|s| String::from_utf8_lossy(cstr(s)).into_owned())
            .unwrap_or_default()
    }

    /// String section `i` split at NULs (argv, environment), empty trailing part dropped.
    pub fn list(&self, i: usize) -> Vec<String> {
        let Some(s) = self.strs.get(i) else {
            return Vec::new();
        };
        let mut out: Vec<String> = s
            .split(|&b| b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        while out.last().is_some_and(String::is_empty) {
            out.pop();
        }
        out
    }

    /// The socket description in `s3`, if the record carries one.
    pub fn sock(&self) -> Option<SockInfo> {
        SockInfo::decode(self.strs[3])
    }
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Short(usize),
    SizeMismatch { declared: usize, actual: usize },
    Strings { declared: usize, room: usize },
    UnknownKind(u16),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short(n) => write!(f, "record of {n} bytes is shorter than the header"),
            DecodeError::SizeMismatch { declared, actual } => {
                write!(f, "record declares {declared} bytes but has {actual}")
            }
            DecodeError::Strings { declared, room } => {
                write!(
                    f,
                    "string sections declare {declared} bytes but {room} follow the header"
                )
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown record kind {k}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Decode one record. The ring buffer may pad a record; bytes past `size` are ignored.
pub fn decode(b: &[u8]) -> Result<RawEvent<'_>, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Short(b.len()));
    }
    let size = u16_at(b, 0) as usize;
    if size < HEADER_LEN || size > b.len() {
        return Err(DecodeError::SizeMismatch {
            declared: size,
            actual: b.len(),
        });
    }
    let kind = u16_at(b, 2);
    if !(KIND_SYSCALL..=KIND_EXIT).contains(&kind) {
        return Err(DecodeError::UnknownKind(kind));
    }
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate() {
        *a = u64_at(b, 24 + 8 * i);
    }
    let mut comm = [0u8; 16];
    comm.copy_from_slice(&b[144..160]);
    let hdr = Header {
        kind,
        nr: u16_at(b, 4),
        flags: b[6],
        category: b[7],
        ts: u64_at(b, 8),
        ret: u64_at(b, 16) as i64,
        args,
        cgroup_id: u64_at(b, 72),
        memcg_id: u64_at(b, 80),
        cap_eff: u64_at(b, 88),
        start_ns: u64_at(b, 96),
        tid: u32_at(b, 104),
        pid: u32_at(b, 108),
        ppid: u32_at(b, 112),
        vpid: u32_at(b, 116),
        uid: u32_at(b, 120),
        gid: u32_at(b, 124),
        tty: u32_at(b, 128),
        loginuid: u32_at(b, 132),
        mntns: u32_at(b, 136),
        pidns: u32_at(b, 140),
        comm,
    };
    let lens = [
        u16_at(b, 160) as usize,
        u16_at(b, 162) as usize,
        u16_at(b, 164) as usize,
        u16_at(b, 166) as usize,
    ];
    let declared: usize = lens.iter().sum();
    let room = size - HEADER_LEN;
    if declared > room {
        return Err(DecodeError::Strings { declared, room });
    }
    let mut strs: [&[u8]; 4] = [&[]; 4];
    let mut off = HEADER_LEN;
    for (s, len) in strs.iter_mut().zip(lens) {
        *s = &b[off..off + len];
        off += len;
    }
    Ok(RawEvent { hdr, strs })
}

/// Encode a record (the inverse of [`decode`]): for tests, fuzzing and replay tools.
pub fn encode(hdr: &Header, strs: [&[u8]; 4]) -> Vec<u8> {
    let size = HEADER_LEN + strs.iter().map(|s| s.len()).sum::<usize>();
    let mut b = vec![0u8; HEADER_LEN];
    b[0..2].copy_from_slice(&(size.min(u16::MAX as usize) as u16).to_le_bytes());
    b[2..4].copy_from_slice(&hdr.kind.to_le_bytes());
    b[4..6].copy_from_slice(&hdr.nr.to_le_bytes());
    b[6] = hdr.flags;
    b[7] = hdr.category;
    b[8..16].copy_from_slice(&hdr.ts.to_le_bytes());
    b[16..24].copy_from_slice(&hdr.ret.to_le_bytes());
    for (i, a) in hdr.args.iter().enumerate() {
        b[24 + 8 * i..32 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let put64 =
        |b: &mut Vec<u8>, off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put64(&mut b, 72, hdr.cgroup_id);
    put64(&mut b, 80, hdr.memcg_id);
    put64(&mut b, 88, hdr.cap_eff);
    put64(&mut b, 96, hdr.start_ns);
    let fields32 = [
        hdr.tid,
        hdr.pid,
        hdr.ppid,
        hdr.vpid,
        hdr.uid,
        hdr.gid,
        hdr.tty,
        hdr.loginuid,
        hdr.mntns,
        hdr.pidns,
    ];
    for (i, v) in fields32.iter().enumerate() {
        b[104 + 4 * i..108 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    b[144..160].copy_from_slice(&hdr.comm);
    for (i, s) in strs.iter().enumerate() {
        b[160 + 2 * i..162 + 2 * i].copy_from_slice(&(s.len() as u16).to_le_bytes());
    }
    for s in strs {
        b.extend_from_slice(s);
    }
    b
}

/// The bytes of a C string up to (not including) its first NUL.
pub fn cstr(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(n) => &b[..n],
        None => b,
    }
}

/// A socket as the kernel saw it after the call (string section `s3`, 44 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockInfo {
    /// AF_* value.
    pub family: u16,
    /// SOCK_* value.
    pub sock_type: u16,
    /// IPPROTO_* value.
    pub proto: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: Option<IpAddr>,
    pub raddr: Option<IpAddr>,
}

/// Length of an encoded [`SockInfo`].
pub const SOCK_INFO_LEN: usize = 44;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_NETLINK: u16 = 16;
pub const AF_PACKET: u16 = 17;

impl SockInfo {
    /// Decode `family u16, type u16, proto u16, lport u16, rport u16, pad u16, laddr[16],
    /// raddr[16]` (ports in host order; IPv4 addresses in the first 4 bytes).
    pub fn decode(b: &[u8]) -> Option<SockInfo> {
        if b.len() < SOCK_INFO_LEN {
            return None;
        }
        let family = u16_at(b, 0);
        let addr = |off: usize| -> Option<IpAddr> {
            match family {
                AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                    b[off],
                    b[off + 1],
                    b[off + 2],
                    b[off + 3],
                ))),
                AF_INET6 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&b[off..off + 16]);
                    Some(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => None,
            }
        };
        Some(SockInfo {
            family,
            sock_type: u16_at(b, 2),
            proto: u16_at(b, 4),
            lport: u16_at(b, 6),
            rport: u16_at(b, 8),
            laddr: addr(12),
            raddr: addr(28),
        })
    }

    /// Encode (for tests and replay).
    pub fn encode(&self) -> [u8; SOCK_INFO_LEN] {
        let mut b = [0u8; SOCK_INFO_LEN];
        b[0..2].copy_from_slice(&self.family.to_le_bytes());
        b[2..4].copy_from_slice(&self.sock_type.to_le_bytes());
        b[4..6].copy_from_slice(&self.proto.to_le_bytes());
        b[6..8].copy_from_slice(&self.lport.to_le_bytes());
        b[8..10].copy_from_slice(&self.rport.to_le_bytes());
        let put = |b: &mut [u8; SOCK_INFO_LEN], off: usize, a: Option<IpAddr>| match a {
            Some(IpAddr::V4(v)) => b[off..off + 4].copy_from_slice(&v.octets()),
            Some(IpAddr::V6(v)) => b[off..off + 16].copy_from_slice(&v.octets()),
            None => {}
        };
        put(&mut b, 12, self.laddr);
        put(&mut b, 28, self.raddr);
        b
    }
}

/// x86_64 syscall numbers of every syscall the probes can record.
pub mod nr {
    pub const OPEN: u16 = 2;
    pub const DUP: u16 = 32;
    pub const DUP2: u16 = 33;
    pub const SOCKET: u16 = 41;
    pub const CONNECT: u16 = 42;
    pub const ACCEPT: u16 = 43;
    pub const EXECVE: u16 = 59;
    pub const RENAME: u16 = 82;
    pub const CREAT: u16 = 85;
    pub const LINK: u16 = 86;
    pub const UNLINK: u16 = 87;
    pub const SYMLINK: u16 = 88;
    pub const CHMOD: u16 = 90;
    pub const FCHMOD: u16 = 91;
    pub const PTRACE: u16 = 101;
    pub const SETUID: u16 = 105;
    pub const SETGID: u16 = 106;
    pub const SETREUID: u16 = 113;
    pub const SETREGID: u16 = 114;
    pub const SETRESUID: u16 = 117;
    pub const SETRESGID: u16 = 119;
    pub const MOUNT: u16 = 165;
    pub const UMOUNT2: u16 = 166;
    pub const INIT_MODULE: u16 = 175;
    pub const OPENAT: u16 = 257;
    pub const UNLINKAT: u16 = 263;
    pub const RENAMEAT: u16 = 264;
    pub const LINKAT: u16 = 265;
    pub const SYMLINKAT: u16 = 266;
    pub const FCHMODAT: u16 = 268;
    pub const UNSHARE: u16 = 272;
    pub const ACCEPT4: u16 = 288;
    pub const DUP3: u16 = 292;
    pub const SETNS: u16 = 308;
    pub const FINIT_MODULE: u16 = 313;
    pub const RENAMEAT2: u16 = 316;
    pub const MEMFD_CREATE: u16 = 319;
    pub const BPF: u16 = 321;
    pub const EXECVEAT: u16 = 322;
    pub const OPENAT2: u16 = 437;
}

/// Every syscall the probes know: `(number, tracepoint name, event type, category)`.
/// The tracepoints are `syscalls/sys_exit_NAME` (or `sys_enter_NAME` for entry-only ones).
pub const SYSCALLS: &[(u16, &str, EventType, u8)] = &[
    (nr::OPEN, "open", EventType::Open, CAT_FILE),
    (nr::OPENAT, "openat", EventType::Openat, CAT_FILE),
    (nr::OPENAT2, "openat2", EventType::Openat2, CAT_FILE),
    (nr::CREAT, "creat", EventType::Creat, CAT_FILE),
    (nr::UNLINK, "unlink", EventType::Unlink, CAT_FILE),
    (nr::UNLINKAT, "unlinkat", EventType::Unlinkat, CAT_FILE),
    (nr::RENAME, "rename", EventType::Rename, CAT_FILE),
    (nr::RENAMEAT, "renameat", EventType::Renameat, CAT_FILE),
    (nr::RENAMEAT2, "renameat2", EventType::Renameat2, CAT_FILE),
    (nr::LINK, "link", EventType::Link, CAT_FILE),
    (nr::LINKAT, "linkat", EventType::Linkat, CAT_FILE),
    (nr::SYMLINK, "symlink", EventType::Symlink, CAT_FILE),
    (nr::SYMLINKAT, "symlinkat", EventType::Symlinkat, CAT_FILE),
    (nr::CHMOD, "chmod", EventType::Chmod, CAT_FILE),
    (nr::FCHMOD, "fchmod", EventType::Fchmod, CAT_FILE),
    (nr::FCHMODAT, "fchmodat", EventType::Fchmodat, CAT_FILE),
    (nr::MOUNT, "mount", EventType::Mount, CAT_FILE),
    (nr::UMOUNT2, "umount", EventType::Umount2, CAT_FILE),
    (nr::CONNECT, "connect", EventType::Connect, CAT_NETWORK),
    (nr::ACCEPT, "accept", EventType::Accept, CAT_NETWORK),
    (nr::ACCEPT4, "accept4", EventType::Accept4, CAT_NETWORK),
    (nr::SOCKET, "socket", EventType::Socket, CAT_NETWORK),
    (nr::DUP, "dup", EventType::Dup, CAT_NETWORK),
    (nr::DUP2, "dup2", EventType::Dup2, CAT_NETWORK),
    (nr::DUP3, "dup3", EventType::Dup3, CAT_NETWORK),
    (nr::PTRACE, "ptrace", EventType::Ptrace, CAT_SECURITY),
    (nr::SETUID, "setuid", EventType::Setuid, CAT_SECURITY),
    (nr::SETGID, "setgid", EventType::Setgid, CAT_SECURITY),
    (nr::SETREUID, "setreuid", EventType::Setreuid, CAT_SECURITY),
    (nr::SETREGID, "setregid", EventType::Setregid, CAT_SECURITY),
    (
        nr::SETRESUID,
        "setresuid",
        EventType::Setresuid,
        CAT_SECURITY,
    ),
    (
        nr::SETRESGID,
        "setresgid",
        EventType::Setresgid,
        CAT_SECURITY,
    ),
    (nr::SETNS, "setns", EventType::Setns, CAT_SECURITY),
    (nr::UNSHARE, "unshare", EventType::Unshare, CAT_SECURITY),
    (
        nr::INIT_MODULE,
        "init_module",
        EventType::InitModule,
        CAT_SECURITY,
    ),
    (
        nr::FINIT_MODULE,
        "finit_module",
        EventType::FinitModule,
        CAT_SECURITY,
    ),
    (
        nr::MEMFD_CREATE,
        "memfd_create",
        EventType::MemfdCreate,
        CAT_SECURITY,
    ),
    (nr::BPF, "bpf", EventType::Bpf, CAT_SECURITY),
    (nr::EXECVE, "execve", EventType::Execve, CAT_PROCESS),
    (nr::EXECVEAT, "execveat", EventType::Execveat, CAT_PROCESS),
];

/// The event type of a syscall number.
pub fn event_type(nr: u16) -> Option<EventType> {
    SYSCALLS.iter().find(|s| s.0 == nr).map(|s| s.2)
}

/// Which syscall argument each string section holds, for `KIND_SYSCALL` records:
/// `[s0, s1, s2]` as argument indexes. The kernel side implements the same table.
///
/// | syscall | s0 | s1 | s2 |
/// |---|---|---|---|
/// | open, creat, unlink, chmod, umount2, execve (failed) | path (0) | | |
/// | openat, unlinkat, fchmodat, execveat (failed) | path (1) | | |
/// | openat2 | path (1) | `struct open_how` (24 bytes from args[2]: flags, mode, resolve) | |
/// | rename, link | old (0) | new (1) | |
/// | renameat, renameat2, linkat | old (1) | new (3) | |
/// | symlink | target (0) | linkpath (1) | |
/// | symlinkat | target (0) | linkpath (2) | |
/// | mount | source (0) | target (1) | fstype (2) |
/// | memfd_create | name (0) | | |
/// | finit_module | parameters (1) | | |
/// | init_module | parameters (2) | | |
/// | connect | sockaddr bytes (1), length args[2] ≤ 128 | | |
pub fn syscall_layout(nr: u16) -> [Option<u8>; 3] {
    match nr {
        nr::OPEN
        | nr::CREAT
        | nr::UNLINK
        | nr::CHMOD
        | nr::UMOUNT2
        | nr::EXECVE
        | nr::MEMFD_CREATE
        | nr::CONNECT => [Some(0), None, None],
        nr::OPENAT | nr::UNLINKAT | nr::FCHMODAT | nr::EXECVEAT => [Some(1), None, None],
        // s1 carries the open_how bytes, not a string argument
        nr::OPENAT2 => [Some(1), None, None],
        nr::RENAME | nr::LINK | nr::SYMLINK => [Some(0), Some(1), None],
        nr::RENAMEAT | nr::RENAMEAT2 | nr::LINKAT => [Some(1), Some(3), None],
        nr::SYMLINKAT => [Some(0), Some(2), None],
        nr::FINIT_MODULE => [Some(1), None, None],
        nr::INIT_MODULE => [Some(2), None, None],
        nr::MOUNT => [Some(0), Some(1), Some(2)],
        _ => [None, None, None],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16) -> Header {
        Header {
            kind,
            nr: nr::OPENAT,
            flags: 0,
            category: CAT_FILE,
            ts: 123,
            ret: -13,
            args: [1, 2, 3, 4, 5, 6],
            cgroup_id: 7,
            memcg_id: 8,
            cap_eff: 9,
            start_ns: 10,
            tid: 11,
            pid: 12,
            ppid: 13,
            vpid: 14,
            uid: 15,
            gid: 16,
            tty: 17,
            loginuid: u32::MAX,
            mntns: 19,
            pidns: 20,
            comm: *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn round_trip() {
        let h = header(KIND_SYSCALL);
        let bytes = encode(&h, [b"/etc/shadow\0", b"", b"a\0b\0", b""]);
        let ev = decode(&bytes).expect("decodes");
        assert_eq!(ev.hdr, h);
        assert_eq!(ev.str(0), "/etc/shadow");
        assert_eq!(ev.list(2), vec!["a", "b"]);
        assert_eq!(ev.hdr.comm(), "cat");
        assert_eq!(ev.sock(), None);
    }

    #[test]
    fn ring_padding_is_ignored() {
        let mut bytes = encode(&header(KIND_EXEC), [b"/bin/sh\0", b"sh\0", b"", b""]);
        bytes.extend_from_slice(&[0xAA; 7]);
        let ev = decode(&bytes).expect("decodes");
        assert_eq!(ev.str(0), "/bin/sh");
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(decode(&[0u8; 10]), Err(DecodeError::Short(10)));
        let mut b = encode(&header(KIND_SYSCALL), [b"x", b"", b"", b""]);
        b[0..2].copy_from_slice(&5000u16.to_le_bytes());
        assert!(matches!(decode(&b), Err(DecodeError::SizeMismatch { .. })));
        let mut b = encode(&header(KIND_SYSCALL), [b"x", b"", b"", b""]);
        b[160..162].copy_from_slice(&900u16.to_le_bytes());
        assert!(matches!(decode(&b), Err(DecodeError::Strings { .. })));
        let b = encode(&header(99), [b"", b"", b"", b""]);
        assert_eq!(decode(&b), Err(DecodeError::UnknownKind(99)));
    }

    #[test]
    fn sock_info_round_trip() {
        let s = SockInfo {
            family: AF_INET,
            sock_type: 1,
            proto: 6,
            lport: 40000,
            rport: 443,
            laddr: Some("127.0.0.1".parse().expect("ip")),
            raddr: Some("10.96.0.1".parse().expect("ip")),
        };
        assert_eq!(SockInfo::decode(&s.encode()), Some(s));
        let s6 = SockInfo {
            family: AF_INET6,
            laddr: Some("::1".parse().expect("ip")),
            raddr: Some("fe80::1".parse().expect("ip")),
            ..s
        };
        assert_eq!(SockInfo::decode(&s6.encode()), Some(s6));
        assert_eq!(SockInfo::decode(&[0u8; 3]), None);
    }

    #[test]
    fn every_syscall_maps_to_its_event_type() {
        for (n, name, t, _) in SYSCALLS {
            assert_eq!(event_type(*n), Some(*t), "{name}");
        }
        assert_eq!(event_type(9999), None);
    }
}
