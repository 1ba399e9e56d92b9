//! The eBPF programs against the real kernel: load, attach, make a child process do the
//! system calls the rules need, and check the records the kernel wrote and the counters.
//! Root only; under CI (`CI=true`) a kernel that cannot load the probes fails the test.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use secmon::bpf::abi::{self, KIND_EXEC, KIND_EXIT, KIND_FORK, KIND_SYSCALL, nr};
use secmon::bpf::loader::{ProbeConfig, Probes};

mod common;

struct Rec {
    kind: u16,
    nr: u16,
    pid: u32,
    ret: i64,
    args: [u64; 6],
    strs: Vec<Vec<u8>>,
    comm: String,
    vpid: u32,
    start_ns: u64,
    cgroup_id: u64,
    memcg_id: u64,
}

/// The inode of this process's cgroup directory for the hierarchy whose /proc/self/cgroup
/// line matches `pick`, under `root`: what the kernel reports as that cgroup's id.
fn own_cgroup_inode(pick: impl Fn(&str) -> bool, root: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let line = text.lines().find(|l| pick(l))?;
    let path = line.splitn(3, ':').nth(2)?;
    std::fs::metadata(format!("{root}{path}"))
        .ok()
        .map(|m| m.ino())
}

fn load(drop_prefixes: Vec<String>) -> Option<Probes> {
    let tracefs = match secmon::sensor::prereq::check() {
        Ok(p) => p,
        Err(e) => {
            common::require_or_skip(&format!("sensor prerequisites: {e}"));
            return None;
        }
    };
    let cfg = ProbeConfig {
        ring_bytes: 8 << 20,
        wakeup_bytes: 0,
        drop_prefixes,
        syscalls: abi::SYSCALLS.iter().map(|s| s.0).collect::<BTreeSet<_>>(),
        self_pid: 0,
        object: std::env::var_os("SECMON_BPF_OBJECT").map(PathBuf::from),
        tracefs,
    };
    match Probes::load(&cfg) {
        Ok(p) => Some(p),
        Err(e) => {
            common::require_or_skip(&format!("loading the probes: {e}"));
            None
        }
    }
}

fn collect(p: &mut Probes, child: i32, until: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !until(&out) {
        p.poll(Duration::from_millis(50), |b| {
            let ev = abi::decode(b).expect("the kernel writes decodable records");
            if ev.hdr.pid as i32 == child
                || (ev.hdr.kind == KIND_FORK && ev.hdr.args[0] as i32 == child)
            {
                out.push(Rec {
                    kind: ev.hdr.kind,
                    nr: ev.hdr.nr,
                    pid: ev.hdr.pid,
                    ret: ev.hdr.ret,
                    args: ev.hdr.args,
                    strs: ev.strs.iter().map(|s| s.to_vec()).collect(),
                    comm: ev.hdr.comm(),
                    vpid: ev.hdr.vpid,
                    start_ns: ev.hdr.start_ns,
                    cgroup_id: ev.hdr.cgroup_id,
                    memcg_id: ev.hdr.memcg_id,
                });
            }
        })
        .expect("poll");
    }
    out
}

fn exec_vpid(recs: &[Rec]) -> u32 {
    recs.iter()
        .find(|r| r.kind == KIND_EXEC)
        .map(|r| r.vpid)
        .unwrap_or(0)
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Fork a child that runs `body` and exits; returns its pid after it has been reaped.
fn in_child(body: impl FnOnce()) -> i32 {
    // SAFETY: the child only makes system calls and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        body();
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    pid
}

#[test]
fn records_for_every_probed_syscall_family() {
    let Some(mut probes) = load(vec![]) else {
        return;
    };
    assert!(
        probes
            .attached
            .iter()
            .any(|a| a.starts_with("tp_btf/sys_exit") && a.contains("openat")),
        "{:?}",
        probes.attached
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("probe-target");
    let link = dir.path().join("probe-link");
    let renamed = dir.path().join("probe-renamed");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let (cf, cl, cr) = (
        c(&file.to_string_lossy()),
        c(&link.to_string_lossy()),
        c(&renamed.to_string_lossy()),
    );
    let child = in_child(|| unsafe {
        let fd = libc::openat(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o600,
        );
        libc::close(fd);
        libc::symlink(cf.as_ptr(), cl.as_ptr());
        libc::rename(cl.as_ptr(), cr.as_ptr());
        libc::unlink(cr.as_ptr());
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        libc::connect(
            s,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&addr) as u32,
        );
        libc::dup2(s, 2); // stderr onto the socket: the reverse-shell move
        libc::dup2(s, 77); // not a standard stream: filtered in the kernel
        libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
        let params = c("secmon-probe=1");
        libc::syscall(libc::SYS_finit_module, -1, params.as_ptr(), 0);
        let (a0, a1, e0) = (c("true"), c("--secmon-probe-marker"), c("SECMON_PROBE=1"));
        let argv = [a0.as_ptr(), a1.as_ptr(), std::ptr::null()];
        let envp = [e0.as_ptr(), std::ptr::null()];
        let (missing, truebin) = (c("/nonexistent/secmon"), c("/bin/true"));
        libc::execve(missing.as_ptr(), argv.as_ptr(), envp.as_ptr());
        libc::execve(truebin.as_ptr(), argv.as_ptr(), envp.as_ptr());
    });
    drop(listener);
    let recs = collect(&mut probes, child, |r| {
        r.iter().any(|x| x.kind == KIND_EXIT)
    });
    let find = |kind: u16, n: u16| {
        recs.iter()
            .find(|r| r.kind == kind && (n == 0 || r.nr == n))
    };
    let s = |r: &Rec, i: usize| String::from_utf8_lossy(abi::cstr(&r.strs[i])).into_owned();

    let fork = find(KIND_FORK, 0).expect("fork record");
    assert_eq!(fork.args[0] as i32, child);
    assert!(fork.args[1] > 0, "child start time");

    let open = recs
        .iter()
        .find(|r| r.kind == KIND_SYSCALL && r.nr == nr::OPENAT && s(r, 0) == file.to_string_lossy())
        .expect("openat record with the path");
    assert!(open.ret >= 0);
    assert_eq!(open.pid as i32, child);
    assert_eq!(
        open.args[2] as i32 & (libc::O_CREAT | libc::O_WRONLY),
        libc::O_CREAT | libc::O_WRONLY
    );
    assert_eq!(
        open.vpid, 0,
        "syscall records leave the namespace view to the process table"
    );
    assert_eq!(
        exec_vpid(&recs),
        child as u32,
        "process records carry it: host pid namespace"
    );
    assert!(open.start_ns > 0);
    // cgroup identity, the base of container identity: the v2 id and the v1 memory id are
    // the inode numbers of the cgroup directories
    if let Some(ino) = own_cgroup_inode(|l| l.starts_with("0::"), "/sys/fs/cgroup/unified")
        .or_else(|| own_cgroup_inode(|l| l.starts_with("0::"), "/sys/fs/cgroup"))
    {
        assert_eq!(open.cgroup_id, ino, "cgroup v2 id");
    }
    if let Some(ino) = own_cgroup_inode(
        |l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        },
        "/sys/fs/cgroup/memory",
    ) {
        assert_eq!(open.memcg_id, ino, "cgroup v1 memory id");
    }

    let sym = find(KIND_SYSCALL, nr::SYMLINK).expect("symlink record");
    assert_eq!(s(sym, 0), file.to_string_lossy());
    assert_eq!(s(sym, 1), link.to_string_lossy());
    let ren = find(KIND_SYSCALL, nr::RENAME).expect("rename record");
    assert_eq!(s(ren, 1), renamed.to_string_lossy());
    let unl = find(KIND_SYSCALL, nr::UNLINK).expect("unlink record");
    assert_eq!(s(unl, 0), renamed.to_string_lossy());

    let sock = find(KIND_SYSCALL, nr::SOCKET).expect("socket record");
    assert_eq!(sock.args[0], libc::AF_INET as u64);
    let conn = find(KIND_SYSCALL, nr::CONNECT).expect("connect record");
    let si = abi::SockInfo::decode(&conn.strs[3]).expect("socket info");
    assert_eq!(si.family, abi::AF_INET);
    assert_eq!(si.rport, port);
    assert_eq!(si.raddr, Some("127.0.0.1".parse().expect("ip")));
    assert!(si.lport > 0);
    assert_eq!(
        &conn.strs[0][..2],
        &(libc::AF_INET as u16).to_ne_bytes(),
        "raw sockaddr"
    );

    let dups: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == KIND_SYSCALL && r.nr == nr::DUP2)
        .collect();
    assert_eq!(
        dups.len(),
        1,
        "only the dup2 onto fd 2 crosses into userspace"
    );
    assert_eq!(dups[0].ret, 2);
    assert_eq!(
        abi::SockInfo::decode(&dups[0].strs[3]).map(|s| s.rport),
        Some(port)
    );

    let pt = find(KIND_SYSCALL, nr::PTRACE).expect("ptrace record");
    assert_eq!(pt.args[0], libc::PTRACE_TRACEME as u64);

    let module = find(KIND_SYSCALL, nr::FINIT_MODULE).expect("finit_module attempt");
    assert_eq!(s(module, 0), "secmon-probe=1");
    assert!(module.ret < 0, "refused (no modules here, or a bad fd)");

    let failed = find(KIND_SYSCALL, nr::EXECVE).expect("failed execve record");
    assert_eq!(failed.ret, -(libc::ENOENT as i64));
    assert_eq!(s(failed, 0), "/nonexistent/secmon");

    let exec = find(KIND_EXEC, 0).expect("exec record");
    assert_eq!(s(exec, 0), "/bin/true");
    let argv: Vec<&[u8]> = exec.strs[2].split(|&b| b == 0).collect();
    assert_eq!(argv.first().copied(), Some(&b"true"[..]));
    assert_eq!(argv.get(1).copied(), Some(&b"--secmon-probe-marker"[..]));
    assert!(exec.strs[3].starts_with(b"SECMON_PROBE=1"), "environment");
    assert_eq!(exec.comm, "true");
    assert!(exec.args[1] > 0, "exe inode ctime");

    let counters = probes.counters();
    assert!(counters.total_produced() >= recs.len() as u64);
    assert_eq!(counters.total_lost(), 0);
}

#[test]
fn path_prefix_filter_keeps_events_in_the_kernel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dropped = dir.path().join("dropped");
    std::fs::create_dir(&dropped).expect("mkdir");
    let Some(mut probes) = load(vec![format!("{}/", dropped.display())]) else {
        return;
    };
    let (quiet, loud) = (
        c(&dropped.join("x").to_string_lossy()),
        c(&dir.path().join("kept").to_string_lossy()),
    );
    let child = in_child(|| unsafe {
        for _ in 0..3 {
            libc::close(libc::open(
                quiet.as_ptr(),
                libc::O_CREAT | libc::O_RDWR,
                0o600,
            ));
        }
        libc::close(libc::open(
            loud.as_ptr(),
            libc::O_CREAT | libc::O_RDWR,
            0o600,
        ));
    });
    let recs = collect(&mut probes, child, |r| {
        r.iter().any(|x| x.kind == KIND_EXIT)
    });
    let paths: Vec<String> = recs
        .iter()
        .filter(|r| r.kind == KIND_SYSCALL && (r.nr == nr::OPEN || r.nr == nr::OPENAT))
        .map(|r| String::from_utf8_lossy(abi::cstr(&r.strs[0])).into_owned())
        .collect();
    assert_eq!(
        paths,
        vec![dir.path().join("kept").to_string_lossy().into_owned()]
    );
    assert!(probes.counters().prefix_dropped >= 3);
}
