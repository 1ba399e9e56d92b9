//! Attack actions done with system calls directly (no shell tools), each safe by
//! construction: nothing leaves loopback (network actions run in a private network
//! namespace), nothing outside the working directory (the scenario's fresh temporary
//! directory) is written (writes below /etc or /usr/bin go to a scratch tmpfs mounted over
//! them in a private mount namespace that dies with the process), sensitive files are read
//! at most one byte and nothing is printed, every child is reaped, and a refused call is
//! still the event a rule looks for.
//!
//! Run as `kubectl-secmon __action NAME [ARG]...` by the scenarios (see `catalogue`) and by
//! the sensor's end-to-end tests. The last argument of a scenario's action is its
//! correlation id, so that it shows in the process's command line; actions that name files
//! take it from `SECMON_SIM_ID`. An action that cannot run here (a capability or kernel
//! feature is missing) ends with [`ActionError::Skip`], exit code [`SKIP_EXIT`].

#[cfg(target_os = "linux")]
use std::time::Duration;

/// The exit code of an action that could not run here (automake's "skipped").
pub const SKIP_EXIT: i32 = 77;

/// Why an action did not do its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// The context is missing (a capability, a kernel feature): not a failure.
    Skip(String),
    /// It should have worked and did not.
    Failed(String),
}

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionError::Skip(s) | ActionError::Failed(s) => f.write_str(s),
        }
    }
}

/// Every action by name, with what it does in one line.
pub const ACTIONS: &[(&str, &str)] = &[
    (
        "af-packet-socket",
        "open and close an AF_PACKET raw socket (packet sniffing)",
    ),
    (
        "ptrace-attach",
        "attach to a child of our own with PTRACE_ATTACH, then detach and reap it",
    ),
    (
        "ptrace-traceme",
        "a child asks to be traced by us with PTRACE_TRACEME, then exits",
    ),
    (
        "memfd-exec",
        "copy /bin/true into a memfd and execute it from memory",
    ),
    (
        "module-load",
        "ask the kernel to load a module with finit_module on an invalid fd (refused)",
    ),
    (
        "stdout-to-socket",
        "connect to a loopback listener and dup2 the socket onto stdout",
    ),
    ("spawn-shell", "run `sh -c : ID` as a child"),
    ("read-shadow", "read one byte of /etc/shadow"),
    (
        "read-shadow-after-startup",
        "wait until six seconds old, then read one byte of /etc/shadow",
    ),
    (
        "traversal-open",
        "open /etc/../etc/../etc/ID (which does not exist)",
    ),
    (
        "symlink-shadow",
        "symlink /etc/shadow into the working directory",
    ),
    (
        "hardlink-shadow",
        "try to hard-link /etc/shadow into a missing directory (refused)",
    ),
    (
        "write-etc",
        "create /etc/ID on a scratch tmpfs over /etc, privately",
    ),
    (
        "write-bin-dir",
        "create /usr/bin/ID on a scratch tmpfs over /usr/bin, privately",
    ),
    (
        "write-ld-preload",
        "open /etc/ld.so.preload for writing on a scratch tmpfs over /etc, privately",
    ),
    (
        "write-cron",
        "create /etc/cron.d/ID on a scratch tmpfs over /etc, privately",
    ),
    (
        "write-sudoers",
        "create /etc/sudoers.d/ID on a scratch tmpfs over /etc, privately",
    ),
    (
        "release-agent",
        "open ./release_agent for writing (not a cgroup file)",
    ),
    (
        "overlay-exec",
        "mount an overlay privately, copy /bin/true into its upper layer and run it",
    ),
    (
        "mount-ramfs",
        "mount and unmount a ramfs in a private mount namespace",
    ),
    ("setns-self", "setns into our own UTS namespace"),
    ("truncate-log", "open ./auth.log with O_TRUNC"),
    (
        "connect-api-server",
        "connect to ADDR, a loopback alias with a listener in a private network namespace",
    ),
    (
        "ssh-connect",
        "connect to 192.0.2.10:443, a loopback alias in a private network namespace",
    ),
];

/// The correlation id actions put in the names of what they create.
#[cfg(target_os = "linux")]
fn sim_id() -> String {
    std::env::var("SECMON_SIM_ID")
        .ok()
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .unwrap_or_else(|| "secmon-sim".to_string())
}

/// Run one action with its arguments.
pub fn run(name: &str, args: &[String]) -> Result<(), ActionError> {
    if !ACTIONS.iter().any(|(n, _)| *n == name) {
        return Err(ActionError::Failed(unknown(name)));
    }
    #[cfg(target_os = "linux")]
    {
        linux::run(name, args)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = args;
        Err(ActionError::Skip(format!("action {name} needs Linux")))
    }
}

fn unknown(name: &str) -> String {
    let names: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
    format!("unknown action {name:?}: use one of {}", names.join(", "))
}

/// How long a child we trace may live before we give up on it.
#[cfg(target_os = "linux")]
const CHILD_GRACE: Duration = Duration::from_secs(5);
/// How old the "long-running server" must be: the rules say more than 5 s.
#[cfg(target_os = "linux")]
const SERVER_AGE: Duration = Duration::from_secs(6);
/// The address the ssh action connects to: TEST-NET-1, never routed.
#[cfg(target_os = "linux")]
const SSH_TARGET: &str = "192.0.2.10:443";

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use super::{ActionError, CHILD_GRACE, SERVER_AGE, SSH_TARGET, sim_id, unknown};

    type R = Result<(), ActionError>;

    pub fn run(name: &str, args: &[String]) -> R {
        match name {
            "af-packet-socket" => af_packet_socket(),
            "ptrace-attach" => ptrace_attach(),
            "ptrace-traceme" => ptrace_traceme(),
            "memfd-exec" => memfd_exec(),
            "module-load" => module_load(),
            "stdout-to-socket" => stdout_to_socket(),
            "spawn-shell" => spawn_shell(),
            "read-shadow" => read_one_byte("/etc/shadow"),
            "read-shadow-after-startup" => {
                std::thread::sleep(SERVER_AGE);
                read_one_byte("/etc/shadow")
            }
            "traversal-open" => traversal_open(),
            "symlink-shadow" => symlink_shadow(),
            "hardlink-shadow" => hardlink_shadow(),
            "write-etc" => write_on_scratch("/etc", &format!("/etc/{}", sim_id()), &[]),
            "write-bin-dir" => write_on_scratch("/usr/bin", &format!("/usr/bin/{}", sim_id()), &[]),
            "write-ld-preload" => write_on_scratch("/etc", "/etc/ld.so.preload", &[]),
            "write-cron" => write_on_scratch(
                "/etc",
                &format!("/etc/cron.d/{}", sim_id()),
                &["/etc/cron.d"],
            ),
            "write-sudoers" => write_on_scratch(
                "/etc",
                &format!("/etc/sudoers.d/{}", sim_id()),
                &["/etc/sudoers.d"],
            ),
            "release-agent" => create_here("release_agent", libc::O_WRONLY | libc::O_CREAT),
            "overlay-exec" => overlay_exec(),
            "mount-ramfs" => mount_ramfs(),
            "setns-self" => setns_self(),
            "truncate-log" => {
                create_here("auth.log", libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC)
            }
            "connect-api-server" => {
                let addr = args.first().ok_or_else(|| {
                    ActionError::Failed("connect-api-server needs ADDR (HOST:PORT)".into())
                })?;
                let addr: SocketAddr = addr.parse().map_err(|_| {
                    ActionError::Failed(format!("{addr:?} is not an address such as 10.96.0.1:443"))
                })?;
                connect_privately(addr)
            }
            "ssh-connect" => connect_privately(
                SSH_TARGET
                    .parse()
                    .map_err(|_| ActionError::Failed("bad built-in address".into()))?,
            ),
            _ => Err(ActionError::Failed(unknown(name))),
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn os_err(what: &str) -> ActionError {
        ActionError::Failed(format!("{what}: {}", std::io::Error::last_os_error()))
    }

    /// A refusal for want of privilege is a missing context, anything else a failure.
    fn os_err_or_skip(what: &str, needs: &str) -> ActionError {
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => {
                ActionError::Skip(format!("{what}: {e}: needs {needs}"))
            }
            _ => ActionError::Failed(format!("{what}: {e}")),
        }
    }

    fn cstr(s: &str) -> Result<CString, ActionError> {
        CString::new(s).map_err(|_| ActionError::Failed(format!("{s:?} holds a NUL byte")))
    }

    fn here(name: &str) -> Result<PathBuf, ActionError> {
        std::env::current_dir()
            .map(|d| d.join(name))
            .map_err(|e| ActionError::Failed(format!("working directory: {e}")))
    }

    /// Wait for a child; its status.
    fn reap(child: libc::pid_t) -> i32 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        while unsafe { libc::waitpid(child, &mut status, 0) } < 0 && errno() == libc::EINTR {}
        status
    }

    fn af_packet_socket() -> R {
        // SAFETY: plain syscall; the fd is owned and closed on drop.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(os_err_or_skip("socket(AF_PACKET)", "CAP_NET_RAW"));
        }
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }

    fn ptrace_attach() -> R {
        // SAFETY: the child only sleeps (a syscall) and exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(os_err("fork"));
        }
        if child == 0 {
            unsafe {
                libc::sleep(CHILD_GRACE.as_secs() as u32);
                libc::_exit(0);
            }
        }
        // SAFETY: ptrace on our own child; always killed and reaped below.
        let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0) };
        let attach_err =
            (rc < 0).then(|| os_err_or_skip("ptrace(PTRACE_ATTACH)", "CAP_SYS_PTRACE"));
        unsafe {
            if rc == 0 {
                let mut status = 0;
                libc::waitpid(child, &mut status, 0);
                libc::ptrace(libc::PTRACE_DETACH, child, 0, 0);
            }
            libc::kill(child, libc::SIGKILL);
        }
        reap(child);
        attach_err.map_or(Ok(()), Err)
    }

    fn ptrace_traceme() -> R {
        // SAFETY: the child makes one syscall and exits without running Rust code.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(os_err("fork"));
        }
        if child == 0 {
            unsafe {
                let rc = libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                libc::_exit(if rc == 0 { 0 } else { 1 });
            }
        }
        let status = reap(child);
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(ActionError::Failed(format!(
                "PTRACE_TRACEME was refused (status {status})"
            )))
        }
    }

    fn memfd_exec() -> R {
        let image = std::fs::read("/bin/true")
            .map_err(|e| ActionError::Failed(format!("read /bin/true: {e}")))?;
        let name = cstr("secmon-memfd")?;
        // SAFETY: plain syscall; the fd is owned.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_err("memfd_create"));
        }
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.write_all(&image)
            .map_err(|e| ActionError::Failed(format!("write memfd: {e}")))?;
        // Everything the child needs is built before fork: it only execs.
        let argv0 = cstr("secmon-memfd")?;
        let argv1 = cstr(&sim_id())?;
        let argv = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
        let env: Vec<CString> = std::env::vars()
            .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect();
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let empty = c"";
        // SAFETY: the child only execs and exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(os_err("fork"));
        }
        if child == 0 {
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    f.as_raw_fd(),
                    empty.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                libc::_exit(127);
            }
        }
        let status = reap(child);
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(ActionError::Failed(format!(
                "the program run from the memfd failed (status {status})"
            )))
        }
    }

    fn module_load() -> R {
        let params = c"secmon_simulated=1";
        // SAFETY: fd -1 cannot name a module; the kernel refuses before loading anything.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, -1, params.as_ptr(), 0) };
        if rc == 0 {
            return Err(ActionError::Failed(
                "finit_module(-1) unexpectedly succeeded".into(),
            ));
        }
        Ok(())
    }

    fn stdout_to_socket() -> R {
        let fail = |what: &str, e: std::io::Error| ActionError::Failed(format!("{what}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| fail("listen", e))?;
        let addr = listener.local_addr().map_err(|e| fail("listen", e))?;
        let stream = TcpStream::connect(addr).map_err(|e| fail("connect", e))?;
        let (mut peer, _) = listener.accept().map_err(|e| fail("accept", e))?;
        // SAFETY: save stdout, point it at the socket, write, put it back.
        unsafe {
            let saved = libc::dup(1);
            if saved < 0 {
                return Err(os_err("dup(1)"));
            }
            if libc::dup2(stream.as_raw_fd(), 1) < 0 {
                libc::close(saved);
                return Err(os_err("dup2(socket, 1)"));
            }
            libc::write(1, b"secmon\n".as_ptr().cast(), 7);
            libc::dup2(saved, 1);
            libc::close(saved);
        }
        drop(stream);
        let mut got = String::new();
        peer.read_to_string(&mut got).map_err(|e| fail("read", e))?;
        if got == "secmon\n" {
            Ok(())
        } else {
            Err(ActionError::Failed(format!("the socket received {got:?}")))
        }
    }

    fn spawn_shell() -> R {
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(": {}", sim_id()))
            .status()
            .map_err(|e| ActionError::Failed(format!("/bin/sh: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(ActionError::Failed(format!("/bin/sh: {status}")))
        }
    }

    fn read_one_byte(path: &str) -> R {
        let mut f = std::fs::File::open(path).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => {
                ActionError::Skip(format!("{path}: {e}: needs root"))
            }
            Some(libc::ENOENT) => ActionError::Skip(format!("{path} does not exist here")),
            _ => ActionError::Failed(format!("{path}: {e}")),
        })?;
        let mut one = [0u8; 1];
        f.read(&mut one)
            .map_err(|e| ActionError::Failed(format!("{path}: {e}")))?;
        Ok(())
    }

    fn traversal_open() -> R {
        let path = cstr(&format!("/etc/../etc/../etc/{}", sim_id()))?;
        // SAFETY: plain syscall; a descriptor, if any, is closed at once.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        Ok(())
    }

    fn symlink_shadow() -> R {
        let link = here("shadow-link")?;
        std::os::unix::fs::symlink("/etc/shadow", &link)
            .map_err(|e| ActionError::Failed(format!("symlink {}: {e}", link.display())))?;
        std::fs::remove_file(&link)
            .map_err(|e| ActionError::Failed(format!("remove {}: {e}", link.display())))
    }

    fn hardlink_shadow() -> R {
        // The directory does not exist, so the kernel refuses after reading the request.
        let missing = here("missing")?.join("shadow-link");
        match std::fs::hard_link("/etc/shadow", &missing) {
            Ok(()) => {
                let _ = std::fs::remove_file(&missing);
                Err(ActionError::Failed(format!(
                    "{} unexpectedly existed",
                    missing.display()
                )))
            }
            Err(_) => Ok(()),
        }
    }

    fn create_here(name: &str, flags: i32) -> R {
        let path = cstr(&here(name)?.to_string_lossy())?;
        // SAFETY: plain syscall on a path in our own temporary directory.
        let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
        if fd < 0 {
            return Err(os_err(&format!("open {name}")));
        }
        unsafe { libc::close(fd) };
        Ok(())
    }

    /// A mount namespace of our own whose mounts never propagate back to the host's.
    fn private_mounts() -> R {
        // SAFETY: plain syscalls on this process.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
            return Err(os_err_or_skip("unshare(CLONE_NEWNS)", "CAP_SYS_ADMIN"));
        }
        let root = cstr("/")?;
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        if rc < 0 {
            return Err(os_err("make / private"));
        }
        Ok(())
    }

    fn mount(source: &str, target: &Path, fstype: &str, flags: libc::c_ulong, data: &str) -> R {
        let (s, t, f, d) = (
            cstr(source)?,
            cstr(&target.to_string_lossy())?,
            cstr(fstype)?,
            cstr(data)?,
        );
        // SAFETY: plain syscall with valid C strings.
        let rc =
            unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENODEV) => ActionError::Skip(format!("{fstype} is not available: {e}")),
                Some(libc::EPERM) => {
                    ActionError::Skip(format!("mount {fstype}: {e}: needs CAP_SYS_ADMIN"))
                }
                Some(libc::EACCES) => ActionError::Skip(format!(
                    "mount {fstype}: {e}: needs CAP_DAC_OVERRIDE besides CAP_SYS_ADMIN"
                )),
                _ => ActionError::Failed(format!("mount {fstype} on {}: {e}", target.display())),
            });
        }
        Ok(())
    }

    fn umount(target: &Path) {
        if let Ok(t) = cstr(&target.to_string_lossy()) {
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
    }

    /// Open `file` for writing on a scratch tmpfs mounted over `dir` in a private mount
    /// namespace: the rule sees a write below `dir`, the real `dir` is never touched.
    fn write_on_scratch(dir: &str, file: &str, mkdirs: &[&str]) -> R {
        private_mounts()?;
        let scratch = sim_id();
        mount(
            &scratch,
            Path::new(dir),
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "size=64k,mode=755",
        )?;
        for d in mkdirs {
            std::fs::create_dir(d)
                .map_err(|e| ActionError::Failed(format!("mkdir {d} on the scratch tmpfs: {e}")))?;
        }
        let path = cstr(file)?;
        // SAFETY: the path is on the scratch tmpfs.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o600,
            )
        };
        let result = if fd < 0 {
            Err(os_err(&format!("open {file}")))
        } else {
            unsafe { libc::close(fd) };
            Ok(())
        };
        umount(Path::new(dir));
        result
    }

    fn overlay_exec() -> R {
        private_mounts()?;
        let base = here("overlay")?;
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(base.join(d))
                .map_err(|e| ActionError::Failed(format!("mkdir {d}: {e}")))?;
        }
        let merged = base.join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.join("lower").display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        mount("overlay", &merged, "overlay", 0, &opts)?;
        let dropped = merged.join(format!("dropped-{}", sim_id()));
        let result = std::fs::copy("/bin/true", &dropped)
            .map_err(|e| ActionError::Failed(format!("copy /bin/true into the overlay: {e}")))
            .and_then(|_| {
                let status = std::process::Command::new(&dropped)
                    .arg(sim_id())
                    .status()
                    .map_err(|e| ActionError::Failed(format!("run {}: {e}", dropped.display())))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(ActionError::Failed(format!(
                        "{}: {status}",
                        dropped.display()
                    )))
                }
            });
        umount(&merged);
        result
    }

    fn mount_ramfs() -> R {
        private_mounts()?;
        let target = here("ramfs")?;
        std::fs::create_dir_all(&target)
            .map_err(|e| ActionError::Failed(format!("mkdir {}: {e}", target.display())))?;
        mount(&sim_id(), &target, "ramfs", 0, "")?;
        umount(&target);
        Ok(())
    }

    fn setns_self() -> R {
        let f = std::fs::File::open("/proc/self/ns/uts")
            .map_err(|e| ActionError::Failed(format!("/proc/self/ns/uts: {e}")))?;
        // SAFETY: joining the namespace we are already in changes nothing.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWUTS) } < 0 {
            return Err(os_err_or_skip("setns", "CAP_SYS_ADMIN"));
        }
        Ok(())
    }

    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
            *dst = src as libc::c_char;
        }
        req
    }

    /// A network namespace of our own, with loopback up and `ip` on it: traffic to `ip`
    /// cannot leave this process's namespace.
    fn private_network(ip: Option<Ipv4Addr>) -> R {
        // SAFETY: plain syscalls on this process and on a socket we own.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
            return Err(os_err_or_skip("unshare(CLONE_NEWNET)", "CAP_SYS_ADMIN"));
        }
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(os_err("socket"));
        }
        let s = unsafe { OwnedFd::from_raw_fd(s) };
        let mut req = ifreq("lo");
        unsafe {
            if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) < 0 {
                return Err(os_err("SIOCGIFFLAGS lo"));
            }
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) < 0 {
                return Err(os_err("bring lo up"));
            }
        }
        if let Some(ip) = ip.filter(|ip| !ip.is_loopback()) {
            let mut alias = ifreq("lo:1");
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in the sockaddr the union holds (both 16 bytes).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (&sin as *const libc::sockaddr_in).cast::<u8>(),
                    (&mut alias.ifr_ifru.ifru_addr as *mut libc::sockaddr).cast::<u8>(),
                    std::mem::size_of::<libc::sockaddr_in>(),
                );
                if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFADDR as _, &alias) < 0 {
                    return Err(os_err(&format!("add {ip} to lo")));
                }
            }
        }
        Ok(())
    }

    /// Connect to `addr` where it is a local address of a private network namespace, with
    /// a listener that accepts the connection.
    fn connect_privately(addr: SocketAddr) -> R {
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) if ip.is_loopback() => Ipv4Addr::LOCALHOST,
            IpAddr::V6(_) => {
                return Err(ActionError::Skip(format!(
                    "{addr}: only IPv4 addresses can be simulated privately"
                )));
            }
        };
        private_network(Some(ip))?;
        let fail =
            |what: &str, e: std::io::Error| ActionError::Failed(format!("{what} {addr}: {e}"));
        let listener = TcpListener::bind(addr).map_err(|e| fail("listen on", e))?;
        let stream = TcpStream::connect(addr).map_err(|e| fail("connect to", e))?;
        let (peer, _) = listener.accept().map_err(|e| fail("accept on", e))?;
        drop(stream);
        drop(peer);
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn root() -> bool {
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn actions_run_and_leave_nothing_behind() {
        for name in [
            "af-packet-socket",
            "module-load",
            "memfd-exec",
            "ptrace-traceme",
        ] {
            let r = run(name, &[]);
            // AF_PACKET needs CAP_NET_RAW; everything else must work anywhere
            if name == "af-packet-socket" && !root() {
                assert!(matches!(r, Err(ActionError::Skip(_))), "{r:?}");
                continue;
            }
            assert_eq!(r, Ok(()), "{name}");
        }
        assert!(
            run("nope", &[])
                .unwrap_err()
                .to_string()
                .contains("af-packet-socket")
        );
        assert!(matches!(
            run("connect-api-server", &["x".into()]),
            Err(ActionError::Failed(m)) if m.contains("not an address")
        ));
    }

    /// Actions that change namespaces run in a child process, so the test's own stays as
    /// it is; the child reports through its exit code.
    fn in_child(name: &str, args: &[String]) -> Result<(), ActionError> {
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            let code = match run(name, args) {
                Ok(()) => 0,
                Err(ActionError::Skip(_)) => SKIP_EXIT,
                Err(ActionError::Failed(_)) => 1,
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(child, &mut status, 0) };
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            SKIP_EXIT => Err(ActionError::Skip(name.into())),
            c => Err(ActionError::Failed(format!("{name}: exit {c}"))),
        }
    }

    #[test]
    fn private_namespace_actions_work_as_root_and_touch_nothing() {
        if !root() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "namespace actions need root, which CI has"
            );
            eprintln!("SKIPPED LOUDLY: namespace actions need root");
            return;
        }
        let before = std::fs::read_dir("/etc").unwrap().count();
        let preload = std::path::Path::new("/etc/ld.so.preload").exists();
        for (name, args) in [
            ("write-etc", vec![]),
            ("write-cron", vec![]),
            ("write-sudoers", vec![]),
            ("write-ld-preload", vec![]),
            ("write-bin-dir", vec![]),
            ("setns-self", vec![]),
            ("ssh-connect", vec![]),
            ("connect-api-server", vec!["10.96.0.1:443".to_string()]),
            ("connect-api-server", vec!["127.0.0.1:443".to_string()]),
        ] {
            assert_eq!(in_child(name, &args), Ok(()), "{name} {args:?}");
        }
        assert_eq!(std::fs::read_dir("/etc").unwrap().count(), before);
        assert_eq!(std::path::Path::new("/etc/ld.so.preload").exists(), preload);
    }
}
