//! Attack actions done with system calls directly (no shell tools), each safe by
//! construction: nothing leaves loopback, nothing outside a fresh temporary directory is
//! written, every child is reaped, and a refused call is still the event a rule looks for.

use std::time::Duration;

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
];

/// Run one action. `Err` is one line.
pub fn run(name: &str) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        match name {
            "af-packet-socket" => linux::af_packet_socket(),
            "ptrace-attach" => linux::ptrace_attach(),
            "memfd-exec" => linux::memfd_exec(),
            "module-load" => linux::module_load(),
            "stdout-to-socket" => linux::stdout_to_socket(),
            _ => Err(unknown(name)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if ACTIONS.iter().any(|(n, _)| *n == name) {
            Err(format!("action {name} needs Linux"))
        } else {
            Err(unknown(name))
        }
    }
}

fn unknown(name: &str) -> String {
    let names: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
    format!("unknown action {name:?}: use one of {}", names.join(", "))
}

/// How long a child we trace may live before we give up on it.
const CHILD_GRACE: Duration = Duration::from_secs(5);

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::CHILD_GRACE;

    fn os_err(what: &str) -> String {
        format!("{what}: {}", std::io::Error::last_os_error())
    }

    pub fn af_packet_socket() -> Result<(), String> {
        // SAFETY: plain syscall; the fd is owned and closed on drop.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(os_err("socket(AF_PACKET)"));
        }
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }

    pub fn ptrace_attach() -> Result<(), String> {
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
        let mut status = 0;
        // SAFETY: ptrace on our own child; always killed and reaped below.
        let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0) };
        let attach_err = (rc < 0).then(|| os_err("ptrace(PTRACE_ATTACH)"));
        unsafe {
            if rc == 0 {
                libc::waitpid(child, &mut status, 0);
                libc::ptrace(libc::PTRACE_DETACH, child, 0, 0);
            }
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, &mut status, 0);
        }
        attach_err.map_or(Ok(()), Err)
    }

    pub fn memfd_exec() -> Result<(), String> {
        let image = std::fs::read("/bin/true").map_err(|e| format!("read /bin/true: {e}"))?;
        let name = CString::new("secmon-memfd").map_err(|e| e.to_string())?;
        // SAFETY: plain syscall; the fd is owned.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        if fd < 0 {
            return Err(os_err("memfd_create"));
        }
        let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        f.write_all(&image)
            .map_err(|e| format!("write memfd: {e}"))?;
        // SAFETY: the child only execs and exits.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(os_err("fork"));
        }
        if child == 0 {
            let empty = c"";
            let argv = [c"secmon-memfd".as_ptr(), std::ptr::null()];
            let envp: [*const libc::c_char; 1] = [std::ptr::null()];
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
        let mut status = 0;
        unsafe { libc::waitpid(child, &mut status, 0) };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(format!(
                "the program run from the memfd failed (status {status})"
            ))
        }
    }

    pub fn module_load() -> Result<(), String> {
        let params = c"secmon_simulated=1";
        // SAFETY: fd -1 cannot name a module; the kernel refuses before loading anything.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, -1, params.as_ptr(), 0) };
        if rc == 0 {
            return Err("finit_module(-1) unexpectedly succeeded".to_string());
        }
        Ok(())
    }

    pub fn stdout_to_socket() -> Result<(), String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let (mut peer, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
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
        peer.read_to_string(&mut got)
            .map_err(|e| format!("read: {e}"))?;
        if got == "secmon\n" {
            Ok(())
        } else {
            Err(format!("the socket received {got:?}"))
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn actions_run_and_leave_nothing_behind() {
        for name in ["af-packet-socket", "module-load", "memfd-exec"] {
            let r = super::run(name);
            // AF_PACKET needs CAP_NET_RAW; everything else must work anywhere
            if name == "af-packet-socket" && r.is_err() && unsafe { libc::geteuid() } != 0 {
                continue;
            }
            assert_eq!(r, Ok(()), "{name}");
        }
        assert!(super::run("nope").unwrap_err().contains("af-packet-socket"));
    }
}
