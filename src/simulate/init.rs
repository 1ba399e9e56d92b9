//! A scenario's first process: `kubectl-secmon __sim-init [OPTIONS] --command-file FILE`,
//! where FILE holds the command's arguments, NUL-separated (not on the init's own command
//! line, where rules that look at arguments would see them too).
//!
//! The runner starts it with a clean environment (the correlation id first) in the
//! scenario's temporary directory. It puts itself in a new session, so that no terminal of
//! the user's is the scenario's; in container mode it is started through a link named
//! `runc`, joins the kubelet-shaped cgroups the runner made, and unshares mount, UTS, IPC
//! and PID namespaces as a runtime does. Then it forks the scenario's command, which in
//! container mode is PID 1 of its own PID namespace: when it exits, the kernel kills
//! anything it left behind. The command runs with a pseudo-terminal as its controlling
//! terminal when asked (the pty's output is read and dropped), as another user when asked,
//! and dies with this process (`PR_SET_PDEATHSIG`). The exit code is the command's (128 +
//! signal when killed).

use std::path::PathBuf;

/// What `__sim-init` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    /// cgroup directories to join (their `cgroup.procs`).
    pub cgroups: Vec<PathBuf>,
    /// Unshare mount, UTS, IPC and PID namespaces.
    pub container: bool,
    /// Give the command a pseudo-terminal as its controlling terminal.
    pub tty: bool,
    /// Run the command as this user and group.
    pub user: Option<(u32, u32)>,
    /// The command: an absolute program path, then its arguments.
    pub argv: Vec<String>,
}

/// Start the command as asked and wait for it; its exit code. `Err` is one line.
pub fn run(opts: &InitOptions) -> Result<i32, String> {
    if opts.argv.is_empty() {
        return Err("__sim-init needs a command (--command-file)".into());
    }
    #[cfg(target_os = "linux")]
    {
        linux::run(opts)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err("attack simulation runs on Linux only".into())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::time::Duration;

    use super::InitOptions;

    fn os_err(what: &str) -> String {
        format!("{what}: {}", std::io::Error::last_os_error())
    }

    pub fn run(opts: &InitOptions) -> Result<i32, String> {
        // SAFETY: plain syscalls on this, single-threaded, process.
        unsafe { libc::setsid() };
        let pid = std::process::id().to_string();
        for cg in &opts.cgroups {
            let procs = cg.join("cgroup.procs");
            std::fs::write(&procs, &pid)
                .map_err(|e| format!("cannot join cgroup {}: {e}", cg.display()))?;
        }
        if opts.container {
            let flags =
                libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
            if unsafe { libc::unshare(flags) } < 0 {
                return Err(os_err("cannot create the container's namespaces (unshare)"));
            }
            let root = c"/";
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
                return Err(os_err("cannot make the container's mounts private"));
            }
            let host = b"secmon-sim";
            unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) };
        }
        // Everything the child needs exists before fork: it only makes syscalls and execs.
        let argv: Vec<CString> = opts
            .argv
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| format!("{a:?} holds a NUL byte")))
            .collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let (mut master, mut slave) = (-1, -1);
        if opts.tty {
            let rc = unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            };
            if rc < 0 {
                return Err(os_err("cannot allocate a pseudo-terminal (openpty)"));
            }
        }
        let failed = b"secmon: cannot start the scenario's command\n";
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(os_err("fork"));
        }
        if child == 0 {
            // SAFETY: only async-signal-safe calls from here to exec.
            unsafe {
                if opts.tty {
                    libc::setsid();
                    libc::ioctl(slave, libc::TIOCSCTTY as _, 0);
                    for fd in 0..3 {
                        libc::dup2(slave, fd);
                    }
                    libc::close(master);
                    if slave > 2 {
                        libc::close(slave);
                    }
                }
                if let Some((uid, gid)) = opts.user
                    && (libc::setgroups(0, std::ptr::null()) < 0
                        || libc::setgid(gid) < 0
                        || libc::setuid(uid) < 0)
                {
                    libc::write(2, failed.as_ptr().cast(), failed.len());
                    libc::_exit(126);
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::execv(argv_ptrs[0], argv_ptrs.as_ptr());
                libc::write(2, failed.as_ptr().cast(), failed.len());
                libc::_exit(127);
            }
        }
        let status = if opts.tty {
            unsafe { libc::close(slave) };
            drain_until_exit(master, child)
        } else {
            wait(child, 0).unwrap_or(0)
        };
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            1
        })
    }

    /// `waitpid`, retried on EINTR; `None` while the child runs (with `WNOHANG`).
    fn wait(child: libc::pid_t, flags: i32) -> Option<i32> {
        let mut status = 0;
        loop {
            let rc = unsafe { libc::waitpid(child, &mut status, flags) };
            if rc == child {
                return Some(status);
            }
            if rc == 0 {
                return None;
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return Some(status);
            }
        }
    }

    /// Read and drop the terminal's output so that the command never blocks on it, until
    /// the command exits.
    fn drain_until_exit(master: i32, child: libc::pid_t) -> i32 {
        let mut sink = [0u8; 4096];
        let tick = Duration::from_millis(50).as_millis() as i32;
        loop {
            let mut pfd = libc::pollfd {
                fd: master,
                events: libc::POLLIN,
                revents: 0,
            };
            if unsafe { libc::poll(&mut pfd, 1, tick) } > 0 {
                let n = if pfd.revents & libc::POLLIN != 0 {
                    unsafe { libc::read(master, sink.as_mut_ptr().cast(), sink.len()) }
                } else {
                    0
                };
                if n <= 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    // The terminal is closed: nothing more to read, only the exit to wait for.
                    let status = wait(child, 0).unwrap_or(0);
                    unsafe { libc::close(master) };
                    return status;
                }
            }
            if let Some(status) = wait(child, libc::WNOHANG) {
                unsafe { libc::close(master) };
                return status;
            }
        }
    }
}
