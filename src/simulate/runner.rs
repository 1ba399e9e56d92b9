//! Running scenarios (Linux): the I/O half of `simulate`. For each scenario it checks the
//! context (missing: SKIPPED with the reason), makes a fresh temporary directory named
//! after the correlation id, puts the stand-ins in it, in container mode makes a
//! kubelet-shaped cgroup (`kubepods.slice/…/cri-containerd-<id>.scope`, as the sensor's
//! tests do), starts `__sim-init` (through a link named `runc` in container mode and in a
//! Job pod) with a
//! clean environment carrying the correlation id, waits for it with a timeout, and removes
//! everything it made on every way out (guards with `Drop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::actions::SKIP_EXIT;
use super::catalogue::{Need, RulesetKind, Scenario, StandInDir, StandInKind};
use super::verify::{RunOutcome, SIM_ID_ENV, ScenarioRun, container_identity};

/// The `PATH` scenarios run with, and where their programs are looked up.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a run is done.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Run each scenario in its own container.
    pub container: bool,
    /// This process already runs in a real container (a `simulate --in-cluster` Job pod):
    /// the container rules apply as they are, with no namespaces or cgroups of our own.
    pub in_pod: bool,
    /// The Kubernetes API server address the API-contact scenario connects to.
    pub api_server: String,
    /// Longest a scenario may take before it is killed and counted as an error.
    pub step_timeout: Duration,
    pub ruleset: RulesetKind,
    /// This program, which the scenarios run as `__action` and `__sim-init`.
    pub program: PathBuf,
    /// Where scenario directories are made.
    pub temp_root: PathBuf,
}

pub use super::new_run_id;
pub use crate::sensor::clock::now_ns;

fn is_root() -> bool {
    // SAFETY: no arguments, no failure.
    unsafe { libc::geteuid() == 0 }
}

/// `program` on [`SYSTEM_PATH`], or itself when it names a path.
pub fn lookup(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    SYSTEM_PATH
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// The first system account of /etc/passwd among daemon, nobody and bin: (uid, gid).
pub fn system_account() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    ["daemon", "nobody", "bin"].iter().find_map(|want| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == *want)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    })
}

/// The capabilities this kernel has that this process does not hold (effective set), by
/// name; `None` when it holds them all.
pub fn missing_capabilities() -> Option<Vec<String>> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let eff = crate::sensor::prereq::parse_cap_eff(&status)?;
    let missing: Vec<String> = (0..=last.min(63))
        .filter(|b| eff & (1u64 << b) == 0)
        .map(|b| {
            crate::rules::event::CAPABILITY_NAMES
                .get(b as usize)
                .map_or_else(|| format!("capability {b}"), |n| n.to_string())
        })
        .collect();
    (!missing.is_empty()).then_some(missing)
}

fn has_filesystem(fs: &str) -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
}

/// Why `sc` cannot run here, if it cannot.
pub fn missing_context(sc: &Scenario, cfg: &RunConfig) -> Option<String> {
    if sc.rules(cfg.ruleset).is_empty() {
        return Some(format!(
            "no rule of the {} ruleset covers it",
            cfg.ruleset.as_str()
        ));
    }
    for need in sc.needs {
        let why = match *need {
            Need::Container if !cfg.container && !cfg.in_pod => {
                Some("its rules only look at containers: run with --container".to_string())
            }
            Need::Root if !is_root() => Some(format!(
                "needs root{}",
                if sc.caps.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", sc.caps.join(", "))
                }
            )),
            Need::Binary(b) if lookup(b).is_none() => Some(format!("needs {b}, not found on {SYSTEM_PATH}")),
            Need::Filesystem(f) if !has_filesystem(f) => {
                Some(format!("the kernel has no {f} filesystem"))
            }
            Need::Path(p) if !Path::new(p).exists() => Some(format!("{p} does not exist here")),
            Need::SystemAccount if system_account().is_none() => {
                Some("no system account (daemon, nobody or bin) in /etc/passwd".to_string())
            }
            Need::Privileged => missing_capabilities().map(|caps| {
                format!(
                    "a privileged container holds every capability, and this machine's root lacks {}",
                    caps.join(", ")
                )
            }),
            _ => None,
        };
        if why.is_some() {
            return why;
        }
    }
    if sc.standins.iter().any(|s| s.dir == StandInDir::Shm) && noexec("/dev/shm") {
        return Some(
            "/dev/shm is mounted noexec here (container runtimes mount it so): nothing there can run"
                .to_string(),
        );
    }
    for st in sc.standins {
        let source = match st.kind {
            StandInKind::True => "/bin/true",
            StandInKind::Shell => "/bin/sh",
            StandInKind::Myself => continue,
        };
        if !Path::new(source).is_file() {
            return Some(format!(
                "its stand-in {} is a copy of {source}, which this system has not",
                st.name
            ));
        }
    }
    let program = sc.argv.first().copied().unwrap_or_default();
    if !program.contains('{') && !lookup(program).is_some_and(|p| p.is_file()) {
        return Some(format!("needs {program}, not found on {SYSTEM_PATH}"));
    }
    None
}

/// Whether the filesystem at `path` is mounted noexec.
fn noexec(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed buffer of the right type.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_flag & libc::ST_NOEXEC != 0
}

/// A directory removed, with everything in it, when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A new directory: an existing one is an error, never reused.
    fn create(path: PathBuf, mode: u32) -> Result<TempDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        // the mode, whatever the umask
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }
}

/// Give every directory under `dir` (its owner's) mode 0700, so that a process without
/// CAP_DAC_OVERRIDE can empty it: overlayfs makes its `work/work` directory mode 000.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path());
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.0).is_err() {
            open_up(&self.0);
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const CGROUP_ROOTS: [&str; 2] = ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"];

/// The cgroup hierarchies a container is placed in: the v1 memory and v2 hierarchies of a
/// hybrid host, or the unified one.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = CGROUP_ROOTS
        .iter()
        .map(PathBuf::from)
        .filter(|r| r.join("cgroup.procs").exists())
        .collect();
    if roots.is_empty() && Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        roots.push(PathBuf::from("/sys/fs/cgroup"));
    }
    roots
}

/// A kubelet-shaped container's cgroups: processes left in them are killed and the
/// directories this guard made are removed when dropped.
struct Cgroups {
    scopes: Vec<PathBuf>,
    /// Every directory made, deepest last.
    made: Vec<PathBuf>,
}

impl Cgroups {
    fn create(container_id: &str, pod_uid: &str) -> Result<Cgroups, String> {
        let roots = cgroup_roots();
        if roots.is_empty() {
            return Err("no cgroup hierarchy found under /sys/fs/cgroup".into());
        }
        let parts = [
            "kubepods.slice".to_string(),
            "kubepods-besteffort.slice".to_string(),
            format!("kubepods-besteffort-pod{}.slice", pod_uid.replace('-', "_")),
            format!("cri-containerd-{container_id}.scope"),
        ];
        let mut cg = Cgroups {
            scopes: Vec::new(),
            made: Vec::new(),
        };
        for root in roots {
            let mut p = root;
            for part in &parts {
                p = p.join(part);
                if !p.exists() {
                    std::fs::create_dir(&p)
                        .map_err(|e| format!("cannot create cgroup {}: {e}", p.display()))?;
                    cg.made.push(p.clone());
                }
            }
            cg.scopes.push(p);
        }
        Ok(cg)
    }

    fn kill_all(&self) {
        for s in &self.scopes {
            if let Ok(procs) = std::fs::read_to_string(s.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: a signal to a process of this scenario's container.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.kill_all();
        for dir in self.made.iter().rev() {
            // A cgroup whose last process just died can be busy for a moment.
            for _ in 0..100 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        self.kill_all();
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

fn copy_executable(from: &str, to: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).map_err(|e| format!("cannot copy {from} to {}: {e}", to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot make {} executable: {e}", to.display()))
}

/// A finished scenario's container cgroups, kept until dropped: the sensor learns a
/// container from its cgroup, and for a process that has already exited it can only find
/// it while the cgroup directory exists. Verification keeps them until its alerts are in,
/// as a real container outlives its processes' alerts.
pub struct ContainerHold(#[allow(dead_code)] Cgroups);

/// Run one scenario: never panics, leaves nothing behind but the container's (empty)
/// cgroups, which go when the returned hold is dropped.
pub fn run_scenario(
    sc: &'static Scenario,
    sim_id: &str,
    cfg: &RunConfig,
) -> (ScenarioRun, Option<ContainerHold>) {
    let (cid, uid) = container_identity(sim_id);
    let mut run = ScenarioRun {
        scenario: sc,
        sim_id: sim_id.to_string(),
        container_id: cfg.container.then(|| cid.clone()),
        pod_uid: cfg.container.then(|| uid.clone()),
        node: None,
        started_ns: now_ns(),
        ended_ns: 0,
        outcome: RunOutcome::Ran,
    };
    let mut hold = None;
    run.outcome = match missing_context(sc, cfg) {
        Some(why) => RunOutcome::Skipped(why),
        None => match execute(sc, sim_id, cfg, &cid, &uid) {
            Ok((outcome, cgroups)) => {
                hold = cgroups.map(ContainerHold);
                outcome
            }
            Err(e) => RunOutcome::Error(e),
        },
    };
    run.ended_ns = now_ns();
    (run, hold)
}

fn execute(
    sc: &Scenario,
    sim_id: &str,
    cfg: &RunConfig,
    container_id: &str,
    pod_uid: &str,
) -> Result<(RunOutcome, Option<Cgroups>), String> {
    // Dropped in reverse order: the container (its processes killed, cgroups removed),
    // then the /dev/shm directory, then the temporary directory.
    let tmp = TempDir::create(cfg.temp_root.join(sim_id), 0o711)?;
    let bin = TempDir::create(tmp.0.join("bin"), 0o755)?;
    let needs_shm = sc.standins.iter().any(|s| s.dir == StandInDir::Shm);
    let shm = if needs_shm {
        Some(TempDir::create(Path::new("/dev/shm").join(sim_id), 0o755)?)
    } else {
        None
    };
    for st in sc.standins {
        let dir = match (st.dir, &shm) {
            (StandInDir::Shm, Some(d)) => &d.0,
            _ => &bin.0,
        };
        let path = dir.join(st.name);
        match st.kind {
            StandInKind::True => copy_executable("/bin/true", &path)?,
            StandInKind::Shell => copy_executable("/bin/sh", &path)?,
            StandInKind::Myself => std::os::unix::fs::symlink(&cfg.program, &path)
                .map_err(|e| format!("cannot link {}: {e}", path.display()))?,
        }
    }
    let program = cfg.program.display().to_string();
    let shm_dir = shm
        .as_ref()
        .map(|d| d.0.display().to_string())
        .unwrap_or_default();
    let expand = |a: &str| -> String {
        a.replace("{id}", sim_id)
            .replace("{tmp}", &tmp.0.display().to_string())
            .replace("{bin}", &bin.0.display().to_string())
            .replace("{shm}", &shm_dir)
            .replace("{self}", &program)
            .replace("{api}", &cfg.api_server)
    };
    let mut argv: Vec<String> = sc.argv.iter().map(|a| expand(a)).collect();
    argv[0] = lookup(&argv[0])
        .ok_or_else(|| format!("{} not found on {SYSTEM_PATH}", argv[0]))?
        .display()
        .to_string();

    let cgroups = if cfg.container {
        Some(Cgroups::create(container_id, pod_uid)?)
    } else {
        None
    };
    // In a container (ours or a Job pod's) the scenario starts under a process named like
    // the runtime, as `kubectl exec` would start it: rules about shells look at that.
    let init = if cfg.container || cfg.in_pod {
        let runc = bin.0.join("runc");
        std::os::unix::fs::symlink(&cfg.program, &runc)
            .map_err(|e| format!("cannot link {}: {e}", runc.display()))?;
        runc
    } else {
        cfg.program.clone()
    };
    let mut cmd = Command::new(&init);
    cmd.arg("__sim-init");
    if let Some(cg) = &cgroups {
        for s in &cg.scopes {
            cmd.arg("--cgroup").arg(s);
        }
        cmd.arg("--container");
    }
    if sc.tty {
        cmd.arg("--tty");
    }
    if sc.as_system_account {
        let (u, g) = system_account().ok_or("no system account in /etc/passwd")?;
        cmd.arg("--user").arg(format!("{u}:{g}"));
    }
    let command_file = tmp.0.join("command");
    let mut nul_separated = Vec::new();
    for a in &argv {
        nul_separated.extend_from_slice(a.as_bytes());
        nul_separated.push(0);
    }
    std::fs::write(&command_file, nul_separated)
        .map_err(|e| format!("cannot write {}: {e}", command_file.display()))?;
    cmd.arg("--command-file").arg(&command_file);
    cmd.env_clear()
        .env(SIM_ID_ENV, sim_id)
        .env("PATH", SYSTEM_PATH)
        .env("HOME", &tmp.0)
        .env("LANG", "C")
        .current_dir(&tmp.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let outcome = wait_for(cmd, cfg.step_timeout, cgroups.as_ref());
    if let Some(cg) = &cgroups {
        cg.kill_all();
    }
    drop(shm);
    drop(bin);
    drop(tmp);
    Ok((outcome?, cgroups))
}

/// Start the init, wait at most `timeout`, and read its verdict.
fn wait_for(
    mut cmd: Command,
    timeout: Duration,
    cgroups: Option<&Cgroups>,
) -> Result<RunOutcome, String> {
    use std::io::Read;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the scenario: {e}"))?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            text = String::from_utf8_lossy(&buf).into_owned();
        }
        text
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                // The init leads its own session and process group; its command dies with it.
                // SAFETY: signals to the scenario's own processes.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                if let Some(cg) = cgroups {
                    cg.kill_all();
                }
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let text = reader.join().unwrap_or_default();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim_start_matches("error: ")
        .trim_start_matches("skipped: ")
        .to_string();
    if timed_out {
        return Ok(RunOutcome::Error(format!(
            "timed out after {} s and was killed",
            timeout.as_secs()
        )));
    }
    Ok(match status.and_then(|s| s.code()) {
        Some(0) => RunOutcome::Ran,
        Some(SKIP_EXIT) => RunOutcome::Skipped(if first.is_empty() {
            "the scenario cannot run here".into()
        } else {
            first
        }),
        Some(code) => RunOutcome::Error(if first.is_empty() {
            format!("exit code {code}")
        } else {
            first
        }),
        None => RunOutcome::Error("killed by a signal".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup("/x/y"), Some(PathBuf::from("/x/y")));
        assert!(lookup("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(lookup("no-such-program-anywhere"), None);
        assert_eq!(new_run_id().len(), 12);
        assert_ne!(new_run_id(), new_run_id());
    }

    #[test]
    fn context_checks_name_what_is_missing() {
        let cfg = RunConfig {
            container: false,
            in_pod: false,
            api_server: "10.96.0.1:443".into(),
            step_timeout: Duration::from_secs(5),
            ruleset: RulesetKind::Default,
            program: PathBuf::from("/bin/true"),
            temp_root: std::env::temp_dir(),
        };
        let s = crate::simulate::catalogue::find("packet-socket").unwrap();
        assert!(missing_context(s, &cfg).unwrap().contains("--container"));
        let w = crate::simulate::catalogue::find("write-below-etc").unwrap();
        let falco = RunConfig {
            ruleset: RulesetKind::FalcoStable,
            ..cfg.clone()
        };
        assert!(missing_context(w, &falco).unwrap().contains("falco-stable"));
        let any = crate::simulate::catalogue::find("ptrace-attach").unwrap();
        assert_eq!(missing_context(any, &cfg), None);
    }
}
