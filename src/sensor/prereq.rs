//! What the sensor needs from the host before it loads its probes, checked up front so that
//! a missing piece is one line naming it and the fix, not an eBPF verifier dump.
//!
//! Checked: Linux, kernel 5.15 or newer (ring buffers, `bpf_task_pt_regs`), kernel BTF at
//! /sys/kernel/btf/vmlinux (CO-RE), the capabilities to load tracing programs (CAP_BPF and
//! CAP_PERFMON, or CAP_SYS_ADMIN), and tracefs (tracepoint ids live there; mounted by the
//! sensor itself when it has the right to). bpffs is not needed: nothing is pinned.

use std::path::{Path, PathBuf};

/// Capability bit numbers (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Where tracefs usually lives, in the order tried.
pub const TRACEFS_CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A kernel release's `(major, minor)`, from `uname -r` text such as `6.18.44-fc-v669`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Effective capabilities from /proc/self/status text (`CapEff:` hex mask).
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Whether a capability mask can load and attach tracing programs.
pub fn caps_sufficient(cap_eff: u64) -> bool {
    let has = |c: u32| cap_eff & (1u64 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

/// A tracefs mount under one of `candidates` (it has an `events` directory).
pub fn find_tracefs(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

/// Check everything, mounting tracefs if it is missing and we may. Returns the tracefs
/// path. `Err` is one line: what is missing and how to provide it.
#[cfg(target_os = "linux")]
pub fn check() -> Result<PathBuf, String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    match parse_release(release) {
        Some(v) if v >= (5, 15) => {}
        Some(_) => {
            return Err(format!(
                "kernel {release} is too old: the sensor needs Linux 5.15 or newer (BPF ring buffer, bpf_task_pt_regs)"
            ));
        }
        None => return Err(format!("cannot read the kernel version ({release:?})")),
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(
            "kernel BTF is missing (/sys/kernel/btf/vmlinux): use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels are); in the DaemonSet mount the host's /sys read-only"
                .to_string(),
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = parse_cap_eff(&status).unwrap_or(0);
    if !caps_sufficient(caps) {
        return Err(
            "missing capabilities: the sensor needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load its probes: run it as root, or grant them (the DaemonSet from `kubectl secmon install` does)"
                .to_string(),
        );
    }
    raise_memlock();
    if let Some(p) = find_tracefs(&TRACEFS_CANDIDATES) {
        return Ok(p);
    }
    let target = TRACEFS_CANDIDATES[0];
    mount_tracefs(target).map_err(|e| {
        format!(
            "tracefs is not mounted and mounting it at {target} failed ({e}): run `mount -t tracefs nodev {target}` (in a pod, mount the host's {target})"
        )
    })?;
    find_tracefs(&[target])
        .ok_or_else(|| format!("mounted tracefs at {target} but it has no events directory"))
}

#[cfg(target_os = "linux")]
fn mount_tracefs(target: &str) -> std::io::Result<()> {
    use std::ffi::CString;
    let c = |s: &str| {
        CString::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (src, tgt, fs) = (c("nodev")?, c(target)?, c("tracefs")?);
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it where we may.
#[cfg(target_os = "linux")]
fn raise_memlock() {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit; failure only means the old limit stays.
    unsafe {
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
    }
}

/// Off Linux there is nothing to check: the sensor cannot run.
#[cfg(not(target_os = "linux"))]
pub fn check() -> Result<PathBuf, String> {
    Err("the sensor runs on Linux only (eBPF)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(parse_release("4.19"), Some((4, 19)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(parse_release(""), None);
        assert!(parse_release("5.4.0").expect("parses") < (5, 15));
    }

    #[test]
    fn capabilities() {
        let status = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert!(caps_sufficient(0x1ff_ffff_ffff));
        assert!(caps_sufficient(1 << CAP_SYS_ADMIN));
        assert!(caps_sufficient((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!caps_sufficient(1 << CAP_BPF));
        assert!(!caps_sufficient(0));
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
    }

    #[test]
    fn tracefs_lookup() {
        let d = tempfile::tempdir().expect("tempdir");
        let with = d.path().join("with");
        std::fs::create_dir_all(with.join("events")).expect("mkdir");
        let without = d.path().join("without");
        std::fs::create_dir_all(&without).expect("mkdir");
        let (a, b) = (without.to_string_lossy(), with.to_string_lossy());
        assert_eq!(find_tracefs(&[&a, &b]), Some(with.clone()));
        assert_eq!(find_tracefs(&[&a]), None);
    }
}
