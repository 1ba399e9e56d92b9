//! The node sensor end to end, as root against the real kernel: start `kubectl-secmon
//! sensor`, run attacks inside a "container" (new pid/mount/uts namespaces under a
//! kubelet-shaped cgroup, started by a binary named `runc`), stop the sensor with SIGTERM
//! and check its Falco-format alerts: the rule, the container id and the pod uid. A benign
//! build-and-run in another container must raise nothing at Warning or above.
//!
//! Under CI (`CI=true`) missing prerequisites fail the test; elsewhere it skips loudly.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;
use common::sensor::Sensor;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

/// A kubelet-shaped container: cgroups under kubepods, a `runc` launcher.
struct Container {
    pod_uid: String,
    id: String,
    cgroups: Vec<PathBuf>,
    runc: PathBuf,
}

const V1_MEMORY: &str = "/sys/fs/cgroup/memory";
const V2_UNIFIED: &str = "/sys/fs/cgroup/unified";

impl Container {
    fn new(dir: &Path) -> Container {
        let pod_uid = format!(
            "{}-{}-{}-{}-{}",
            random_hex(8),
            random_hex(4),
            random_hex(4),
            random_hex(4),
            random_hex(12)
        );
        let id = random_hex(64);
        let rel = format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
            pod_uid.replace('-', "_")
        );
        let mut cgroups = Vec::new();
        for root in [V1_MEMORY, V2_UNIFIED] {
            if Path::new(root).join("cgroup.procs").exists() {
                let p = Path::new(root).join(&rel);
                std::fs::create_dir_all(&p).expect("create the container's cgroup");
                cgroups.push(p);
            }
        }
        if cgroups.is_empty() {
            let p = Path::new("/sys/fs/cgroup").join(&rel);
            std::fs::create_dir_all(&p).expect("create the container's cgroup (v2)");
            cgroups.push(p);
        }
        let runc = dir.join("runc");
        std::fs::copy("/usr/bin/unshare", &runc).expect("copy unshare as runc");
        Container {
            pod_uid,
            id,
            cgroups,
            runc,
        }
    }

    /// Run `script` with /bin/sh inside the container; with a terminal when `tty`.
    fn run(&self, script: &str, tty: bool) {
        let joins: String = self
            .cgroups
            .iter()
            .map(|c| format!("echo $$ > {}/cgroup.procs; ", c.display()))
            .collect();
        let wrapper = format!(
            "{joins}exec {} --fork --pid --mount --uts --mount-proc -- /bin/sh -c \"$1\"",
            self.runc.display()
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(wrapper).arg("container").arg(script);
        let status = if tty {
            let (master, slave) = openpty();
            let (i, o, e) = (dup(&slave), dup(&slave), dup(&slave));
            cmd.stdin(i).stdout(o).stderr(e);
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    // a new session with the pty as its controlling terminal
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("spawn in container");
            drop(cmd);
            // drain the terminal so the shell never blocks on output
            let mut m = std::fs::File::from(master);
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while m.read(&mut sink).is_ok_and(|n| n > 0) {}
            });
            child.wait().expect("wait")
        } else {
            cmd.stdin(Stdio::null()).status().expect("run in container")
        };
        assert!(
            status.success(),
            "{script:?} failed in the container: {status}"
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        for c in &self.cgroups {
            // remove the scope and the pod slice (empty once the processes are gone)
            let _ = std::fs::remove_dir(c);
            if let Some(p) = c.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }
}

fn openpty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut m, mut s) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(m),
            std::os::fd::OwnedFd::from_raw_fd(s),
        )
    }
}

fn dup(fd: &std::os::fd::OwnedFd) -> Stdio {
    Stdio::from(fd.try_clone().expect("dup"))
}

/// One sensor at a time: a storm in one test must not cost another test its events.
static SERIAL: Mutex<()> = Mutex::new(());

fn start_sensor(rules: &Path, extra: &[&str]) -> Option<Sensor> {
    let rules = rules.to_str().expect("utf-8 path");
    let args: Vec<&str> = ["--rules", rules]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    Sensor::start(BIN, &args)
}

fn field<'a>(a: &'a serde_json::Value, name: &str) -> &'a str {
    a["output_fields"][name].as_str().unwrap_or("")
}

#[test]
fn attacks_in_a_container_raise_their_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path().display().to_string();
    let rules = dir.path().join("local_rules.yaml");
    std::fs::write(&rules, "- list: secmon_k8s_api_server_addresses\n  items: [127.0.0.1]\n  override:\n    items: replace\n").expect("rules");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sensor) = start_sensor(&rules, &[]) else {
        return;
    };

    // A benign build and run first, in its own container.
    let benign = Container::new(dir.path());
    std::fs::write(
        dir.path().join("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n",
    )
    .expect("write hello.c");
    benign.run(
        &format!("cd {t} && cc -O1 -o hello hello.c && ./hello > /dev/null && rm -f hello"),
        false,
    );

    let c = Container::new(dir.path());
    let mark = random_hex(8);
    let attacks: Vec<(&str, String, bool)> = vec![
        ("Interactive shell in container", "true".into(), true),
        (
            "Credential file read by untrusted process",
            "cat /etc/shadow > /dev/null".into(),
            false,
        ),
        (
            "Write below /etc",
            format!("touch /etc/secmon-e2e-{mark} && rm -f /etc/secmon-e2e-{mark}"),
            false,
        ),
        (
            "Symlink to sensitive file",
            format!("ln -s /etc/shadow {t}/shadow-{mark}"),
            false,
        ),
        ("Log file truncated", format!(": > {t}/auth.log"), false),
        (
            "Packet socket created in container",
            format!("{BIN} __action af-packet-socket"),
            false,
        ),
        (
            "Standard stream redirected to socket in container",
            format!("{BIN} __action stdout-to-socket"),
            false,
        ),
        (
            "Process attached with ptrace",
            format!("{BIN} __action ptrace-attach"),
            false,
        ),
        (
            "Execution from shared memory",
            format!(
                "cp /bin/true /dev/shm/secmon-{mark} && /dev/shm/secmon-{mark}; rm -f /dev/shm/secmon-{mark}"
            ),
            false,
        ),
        (
            "Fileless execution via memfd",
            format!("{BIN} __action memfd-exec"),
            false,
        ),
        (
            "New executable run in container",
            format!(
                "mkdir -p {t}/lower {t}/upper {t}/work {t}/merged && mount -t overlay overlay -o lowerdir={t}/lower,upperdir={t}/upper,workdir={t}/work {t}/merged && cp /bin/true {t}/merged/dropped-{mark} && {t}/merged/dropped-{mark}"
            ),
            false,
        ),
        (
            "Kernel module loaded from container",
            format!("{BIN} __action module-load"),
            false,
        ),
    ];
    for (_, script, tty) in &attacks {
        c.run(script, *tty);
    }
    let expected: Vec<&str> = attacks.iter().map(|a| a.0).collect();
    let short = c.id[..12].to_string();
    let all_seen = sensor.wait_for(|alerts| {
        expected.iter().all(|rule| {
            alerts
                .iter()
                .any(|a| a["rule"] == *rule && field(a, "container.id") == short)
        })
    });

    let metrics = sensor.get("/metrics");
    let health = sensor.get("/healthz");
    let (alerts, log) = sensor.stop();
    let ours: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| field(a, "container.id") == short)
        .collect();
    let summary: Vec<String> = ours
        .iter()
        .map(|a| format!("{} [{}]", a["rule"], a["priority"]))
        .collect();
    assert!(
        all_seen,
        "missing alerts; got for this container: {summary:#?}\nsensor stderr:\n{}",
        log.join("\n")
    );
    for rule in &expected {
        let a = ours
            .iter()
            .find(|a| a["rule"] == *rule)
            .unwrap_or_else(|| panic!("{rule}"));
        assert_eq!(field(a, "k8s.pod.uid"), c.pod_uid, "{rule}: pod uid");
        assert_eq!(a["source"], "syscall");
        let time = a["time"].as_str().expect("time");
        assert!(
            time.ends_with('Z') && time.len() == 30,
            "ISO-8601 with ns: {time}"
        );
        assert!(
            a["output"].as_str().is_some_and(|o| o.contains(&short)),
            "{rule}: output names the container"
        );
        assert!(a["tags"].as_array().is_some_and(|t| !t.is_empty()));
    }

    let benign_short = &benign.id[..12];
    let noisy: Vec<String> = alerts
        .iter()
        .filter(|a| field(a, "container.id") == benign_short)
        .filter(|a| {
            matches!(
                a["priority"].as_str(),
                Some("Emergency" | "Alert" | "Critical" | "Error" | "Warning")
            )
        })
        .map(|a| a["output"].to_string())
        .collect();
    assert!(noisy.is_empty(), "the benign build raised: {noisy:#?}");

    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(metrics.contains("secmon_events_total{"), "{metrics}");
    assert!(metrics.contains("secmon_rules_loaded"), "{metrics}");
    assert!(metrics.contains("secmon_alerts_total{"), "{metrics}");
}

fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn an_event_storm_is_counted_survived_and_followed_by_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("none.yaml");
    std::fs::write(&rules, "[]\n").expect("rules");
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sensor) = start_sensor(&rules, &["--buffer-size-mib", "1"]) else {
        return;
    };
    // Freeze the reader so the 1 MiB ring fills for certain, then storm it.
    let pid = sensor.child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let null = std::ffi::CString::new("/dev/null").expect("path");
    for _ in 0..300_000 {
        unsafe { libc::close(libc::open(null.as_ptr(), libc::O_RDONLY)) };
    }
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut metrics = sensor.get("/metrics");
    while metric_sum(&metrics, "secmon_events_dropped_total") == 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        metrics = sensor.get("/metrics");
    }
    let dropped = metric_sum(&metrics, "secmon_events_dropped_total");
    assert!(
        dropped > 0.0,
        "the storm overflowed a frozen 1 MiB ring: drops must be counted\n{metrics}"
    );
    assert!(metric_sum(&metrics, "secmon_events_total") > 0.0);
    let rss = metric_sum(&metrics, "process_resident_memory_bytes");
    assert!(
        rss > 0.0 && rss < 512e6,
        "memory stays bounded through a storm: {rss}"
    );

    // After the storm the sensor still detects.
    let mark = random_hex(8);
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("cat /etc/shadow > /dev/null # {mark}"))
        .status()
        .expect("cat");
    assert!(status.success());
    let detected = sensor.wait_for(|alerts| {
        alerts.iter().any(|a| {
            a["rule"] == "Credential file read by untrusted process"
                && a["output"]
                    .as_str()
                    .is_some_and(|o| o.contains("cat /etc/shadow"))
        })
    });
    let drop_alert = sensor.wait_for(|alerts| {
        alerts
            .iter()
            .any(|a| a["rule"] == "Falco internal: syscall event drop")
    });
    let health = sensor.get("/healthz");
    let (alerts, log) = sensor.stop();
    assert!(
        detected,
        "no alert after the storm: {alerts:#?}\n{}",
        log.join("\n")
    );
    assert!(
        drop_alert,
        "the drops were not reported as Falco's drop alert: {alerts:#?}"
    );
    let drop = alerts
        .iter()
        .find(|a| a["rule"] == "Falco internal: syscall event drop")
        .expect("drop alert");
    assert_eq!(drop["source"], "internal");
    assert_eq!(drop["priority"], "Debug");
    assert!(
        drop["output_fields"]["n_drops"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
