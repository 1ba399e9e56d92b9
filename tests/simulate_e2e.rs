//! `kubectl secmon simulate` end to end, as root against a real sensor:
//!
//! - every scenario, each in its own container, against the default rules: each DETECTED,
//!   or SKIPPED for a reason this test checks really holds on this machine; none MISSED,
//!   no ERROR, no UNEXPECTED alert at Warning or above (checked in the report and again in
//!   everything the sensor printed);
//! - safety of that same run: no file left in /tmp or /dev/shm, no file under /etc changed,
//!   no process left carrying the run's correlation id or in its containers, no cgroup left;
//! - the same against Falco's stable rules, run by the sensor;
//! - tampering: with one rule disabled its scenario is MISSED and the exit code is 1.
//!
//! Under CI (`CI=true`) missing prerequisites (root, the kernel probes) fail the tests;
//! elsewhere they skip loudly.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

mod common;

use common::sensor::{Sensor, rules_file};
use secmon::rules::Priority;
use secmon::sensor::alert::Alert;
use secmon::simulate::catalogue::{self, RulesetKind};
use secmon::simulate::verify::{RunOutcome, ScenarioRun, attribute, container_identity};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

/// One sensor at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Off-cluster, the API server the scenario contacts is loopback: the rules are told so.
const API_OVERRIDE: &str = "- list: secmon_k8s_api_server_addresses\n  items: [127.0.0.1]\n  override:\n    items: replace\n";

fn root() -> bool {
    if unsafe { libc::geteuid() } != 0 {
        common::require_or_skip("simulate end to end needs root");
        return false;
    }
    true
}

/// Scenarios that may be SKIPPED, each with the condition (checked here, on this machine)
/// that makes it skip and what its reason must say. Anything else skipped is a failure.
fn allowed_skips() -> Vec<(&'static str, bool, &'static str)> {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let has_fs = |name: &str| {
        fs.lines()
            .any(|l| l.split_whitespace().last() == Some(name))
    };
    vec![
        (
            // A privileged container holds every capability; a root that lacks one (this
            // VM's sandbox drops CAP_SYS_RESOURCE) cannot make one.
            "debugfs-in-privileged-container",
            secmon::simulate::runner::missing_capabilities().is_some(),
            "lacks CAP_",
        ),
        ("drop-and-execute-new-binary", !has_fs("overlay"), "overlay"),
        ("host-filesystem-mount", !has_fs("ramfs"), "ramfs"),
    ]
}

/// A directory for test outputs outside /tmp (the run below gets a /tmp of its own).
fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("simulate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("out dir");
    d
}

/// Every entry under `root`: path → what it is (file content hash, symlink target, or
/// kind). Symbolic links are never followed: /etc/mtab's target is /proc/self/mounts,
/// whose content changes with every mount, but the link itself does not.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let what = if m.is_symlink() {
                format!("link {:?}", std::fs::read_link(&p).ok())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.is_file() {
                let mut h = Sha256::new();
                let mut buf = Vec::new();
                if std::fs::File::open(&p)
                    .and_then(|mut f| f.read_to_end(&mut buf))
                    .is_ok()
                {
                    h.update(&buf);
                }
                format!("file {:x}", h.finalize())
            } else {
                format!("special {:?}", m.file_type())
            };
            out.insert(p, what);
        }
    }
    out
}

/// Run `simulate ARGS` in a mount namespace of its own whose /tmp and /dev/shm are fresh
/// tmpfs: the VM's real /tmp is shared with other builds, so only this makes "nothing new in
/// /tmp or /dev/shm" exact. Lists both before and after from inside; returns the exit code,
/// stdout and stderr, and the two listings.
fn simulate_isolated(out: &Path, args: &[&str]) -> (i32, String, String, String, String) {
    let script = r#"find /tmp /dev/shm -mindepth 1 > "$OUT/before"
"$BIN" simulate "$@" > "$OUT/stdout" 2> "$OUT/stderr"
echo $? > "$OUT/code"
find /tmp /dev/shm -mindepth 1 > "$OUT/after""#;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    cmd.env("OUT", out).env("BIN", BIN);
    unsafe {
        cmd.pre_exec(|| {
            let none = std::ptr::null();
            if libc::unshare(libc::CLONE_NEWNS) < 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    none.cast(),
                ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for dir in [c"/tmp", c"/dev/shm"] {
                if libc::mount(
                    c"simtest".as_ptr(),
                    dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    c"mode=1777".as_ptr().cast(),
                ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("run the isolated simulation");
    assert!(status.success(), "the wrapper failed: {status}");
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap_or_default();
    let code = read("code").trim().parse().unwrap_or(-1);
    (
        code,
        read("stdout"),
        read("stderr"),
        read("before"),
        read("after"),
    )
}

fn is_warning_or_above(p: &str) -> bool {
    matches!(p, "Emergency" | "Alert" | "Critical" | "Error" | "Warning")
}

/// Processes still alive that belong to the run: the correlation id in their environment
/// or one of its containers in their cgroups.
fn leftover_processes(run_id: &str, containers: &[String]) -> Vec<String> {
    let marker = format!("SECMON_SIM_ID=secmon-sim-{run_id}-");
    let mut left = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if String::from_utf8_lossy(&env).contains(&marker)
            || containers.iter().any(|c| cg.contains(c.as_str()))
        {
            left.push(format!("pid {name}: {cg}"));
        }
    }
    left
}

/// cgroup directories left that name the run's containers or pods.
fn leftover_cgroups(names: &[String]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for root in secmon::simulate::runner::cgroup_roots() {
        let mut stack = vec![root.join("kubepods.slice")];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let n = e.file_name().to_string_lossy().to_string();
                    if names.iter().any(|x| n.contains(x.as_str())) {
                        left.push(e.path());
                    }
                    stack.push(e.path());
                }
            }
        }
    }
    left
}

/// The full run in containers against `ruleset`, with its checks. Returns the report.
fn verify_all_in_containers(
    sensor_args: &[&str],
    kind: RulesetKind,
    expected_scenarios: usize,
) -> Option<serde_json::Value> {
    let ruleset = kind.as_str();
    let sensor = Sensor::start(BIN, sensor_args)?;
    let etc_before = snapshot(Path::new("/etc"));
    let out = out_dir(&format!("verify-{ruleset}"));
    let (code, stdout, stderr, before, after) = simulate_isolated(
        &out,
        &[
            "verify",
            "--all",
            "--container",
            "--ruleset",
            ruleset,
            "--local",
            &sensor.addr,
            "--api-server",
            "127.0.0.1:443",
            "--coverage",
            "-o",
            "json",
        ],
    );
    let etc_after = snapshot(Path::new("/etc"));
    let (alerts, log) = sensor.stop();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "simulate verify printed no JSON report ({e}), exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}\nsensor:\n{}",
            log.join("\n")
        )
    });
    let results = report["results"].as_array().expect("results").clone();
    assert_eq!(
        results.len(),
        expected_scenarios,
        "{ruleset}: scenarios run"
    );
    let run_id = report["runId"].as_str().expect("runId").to_string();

    // Every scenario DETECTED, or SKIPPED for a reason that holds here.
    let skips = allowed_skips();
    let mut problems = Vec::new();
    for r in &results {
        let name = r["scenario"].as_str().unwrap_or("?");
        let status = r["status"].as_str().unwrap_or("?");
        let reason = r["reason"].as_str().unwrap_or("");
        match status {
            "DETECTED" => {}
            "SKIPPED" => {
                let allowed = skips
                    .iter()
                    .any(|(n, holds, why)| *n == name && *holds && reason.contains(why));
                if !allowed {
                    problems.push(format!(
                        "{name}: SKIPPED ({reason}), which should not happen on this machine"
                    ));
                }
            }
            _ => problems.push(format!("{name}: {status} ({reason})")),
        }
        for u in r["unexpected"].as_array().into_iter().flatten() {
            if is_warning_or_above(u["priority"].as_str().unwrap_or("")) {
                problems.push(format!("{name}: UNEXPECTED {} {}", u["rule"], u["output"]));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{ruleset}: {problems:#?}\nsensor stderr:\n{}",
        log.join("\n")
    );
    assert_eq!(code, 0, "{ruleset}: exit code\n{stderr}");

    // Double check against everything the sensor printed: no alert at Warning or above
    // from the run's containers or carrying its id, for a rule its scenario should not raise.
    let by_container: BTreeMap<String, &serde_json::Value> = results
        .iter()
        .filter_map(|r| Some((r["containerId"].as_str()?.to_string(), r)))
        .collect();
    let runs: Vec<ScenarioRun> = results
        .iter()
        .map(|r| {
            let sim_id = r["simId"].as_str().expect("simId").to_string();
            let (cid, uid) = container_identity(&sim_id);
            ScenarioRun {
                scenario: catalogue::find(r["scenario"].as_str().expect("scenario"))
                    .expect("a catalogue scenario"),
                sim_id,
                container_id: Some(cid),
                pod_uid: Some(uid),
                node: None,
                started_ns: 0,
                ended_ns: 0,
                outcome: RunOutcome::Ran,
            }
        })
        .collect();
    let mut unexpected = Vec::new();
    for a in &alerts {
        let Ok(alert) = Alert::from_json(&a.to_string()) else {
            continue;
        };
        let Some(i) = attribute(&alert, &runs) else {
            continue;
        };
        let expected = runs[i].scenario.rules(kind).contains(&alert.rule.as_str());
        if !expected && alert.priority <= Priority::Warning {
            unexpected.push(format!(
                "{}: {} {}",
                runs[i].scenario.name, alert.rule, alert.output
            ));
        }
    }
    assert!(
        unexpected.is_empty(),
        "{ruleset}: unexpected alerts: {unexpected:#?}"
    );

    // Safety: nothing left in /tmp or /dev/shm, nothing changed under /etc.
    assert_eq!(before.trim(), "", "the fresh /tmp and /dev/shm start empty");
    assert_eq!(after.trim(), "", "{ruleset}: files left behind:\n{after}");
    let changed: Vec<String> = etc_before
        .iter()
        .filter(|(p, w)| etc_after.get(*p) != Some(*w))
        .map(|(p, _)| format!("changed or removed: {}", p.display()))
        .chain(
            etc_after
                .keys()
                .filter(|p| !etc_before.contains_key(*p))
                .map(|p| format!("new: {}", p.display())),
        )
        .collect();
    assert!(changed.is_empty(), "{ruleset}: /etc changed: {changed:#?}");
    // ... no process left, no cgroup left
    let containers: Vec<String> = by_container.keys().cloned().collect();
    let left = leftover_processes(&run_id, &containers);
    assert!(left.is_empty(), "{ruleset}: processes left: {left:#?}");
    let cg_names: Vec<String> = results
        .iter()
        .filter_map(|r| r["simId"].as_str())
        .flat_map(|id| {
            let (cid, uid) = secmon::simulate::verify::container_identity(id);
            [cid, uid.replace('-', "_")]
        })
        .collect();
    let cgroups = leftover_cgroups(&cg_names);
    assert!(cgroups.is_empty(), "{ruleset}: cgroups left: {cgroups:#?}");
    let _ = std::fs::remove_dir_all(&out);
    Some(report)
}

#[test]
fn every_scenario_is_detected_in_containers_with_the_default_rules_and_leaves_nothing() {
    if !root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("default-rules");
    let rules = rules_file(&dir, "local_rules.yaml", API_OVERRIDE);
    let Some(report) = verify_all_in_containers(
        &[
            "--rules",
            &rules,
            "--append-output-field",
            "proc.env[SECMON_SIM_ID]",
        ],
        RulesetKind::Default,
        catalogue::SCENARIOS.len(),
    ) else {
        return;
    };
    let cov = &report["coverage"];
    assert_eq!(cov["rulesInCatalogue"], 33);
    assert_eq!(cov["rulesExpected"], cov["rulesDetected"], "{cov:#}");
    // The correlation id reached the alerts through the sensor's appended field too.
    let detected = report["summary"]["detected"].as_u64().unwrap_or(0);
    assert!(detected >= 30, "{detected} detected");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_falco_stable_scenario_is_detected_by_the_sensor_running_falcos_rules() {
    if !root() {
        return;
    }
    let stable = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/falco-rules/falco_rules.yaml"
    );
    if !Path::new(stable).exists() {
        common::require_or_skip(&format!("Falco's stable rules at {stable}"));
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("falco-rules");
    // Off-cluster the API server is loopback, not kubernetes.default.svc.cluster.local.
    let local = rules_file(
        &dir,
        "falco_local.yaml",
        "- macro: k8s_api_server\n  condition: (fd.sip in (127.0.0.1) and fd.sport = 443)\n  override:\n    condition: replace\n",
    );
    let falco_scenarios = catalogue::SCENARIOS
        .iter()
        .filter(|s| !s.falco_rules.is_empty())
        .count();
    let Some(report) = verify_all_in_containers(
        &[
            "--no-default-rules",
            "--rules",
            stable,
            "--rules",
            &local,
            "--no-resolve-hosts",
        ],
        RulesetKind::FalcoStable,
        falco_scenarios,
    ) else {
        return;
    };
    assert_eq!(report["coverage"]["rulesInCatalogue"], 25);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_disabled_rule_is_missed_and_fails_the_run() {
    if !root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("tampered");
    let tampered = rules_file(
        &dir,
        "tampered.yaml",
        "- rule: Bulk data destruction\n  enabled: false\n  override:\n    enabled: replace\n",
    );
    let Some(sensor) = Sensor::start(BIN, &["--rules", &tampered]) else {
        return;
    };
    // Host mode: attribution by the correlation id on the command line and in paths.
    let out = Command::new(BIN)
        .args([
            "simulate",
            "verify",
            "bulk-data-destruction",
            "credential-file-read",
            "--local",
            &sensor.addr,
            "--timeout",
            "3s",
            "-o",
            "json",
        ])
        .output()
        .expect("simulate verify");
    let junit = Command::new(BIN)
        .args([
            "simulate",
            "verify",
            "bulk-data-destruction",
            "--local",
            &sensor.addr,
            "--timeout",
            "3s",
            "-o",
            "junit",
        ])
        .output()
        .expect("simulate verify -o junit");
    let (_alerts, log) = sensor.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            log.join("\n")
        )
    });
    let status = |name: &str| {
        report["results"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["scenario"] == name))
            .map(|x| x["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("bulk-data-destruction"), "MISSED", "{report:#}");
    assert_eq!(status("credential-file-read"), "DETECTED", "{report:#}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a MISSED scenario is exit code 1"
    );
    let junit_xml = String::from_utf8_lossy(&junit.stdout);
    assert_eq!(junit.status.code(), Some(1));
    assert!(
        junit_xml.contains(r#"failures="1""#)
            && junit_xml.contains("no alert from: Bulk data destruction"),
        "{junit_xml}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn one_line_error(args: &[&str], needle: &str) {
    let out = Command::new(BIN).args(args).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
}

#[test]
fn simulate_refuses_bad_requests_with_one_line() {
    one_line_error(&["simulate", "run"], "no scenario named");
    one_line_error(
        &["simulate", "run", "nope-*"],
        "no scenario matches \"nope-*\"",
    );
    // In-cluster mode needs a cluster; the cluster side is tests/simulate_cluster.rs.
    one_line_error(
        &[
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "simulate",
            "verify",
            "--all",
            "--in-cluster",
        ],
        "cannot read kubeconfig /nonexistent/kubeconfig",
    );
    one_line_error(
        &["simulate", "run", "--all", "--in-cluster", "--loop"],
        "cannot be combined with --in-cluster",
    );
    one_line_error(
        &[
            "simulate",
            "verify",
            "ptrace-attach",
            "--api-server",
            "kubernetes:443",
        ],
        "--api-server",
    );
    // nothing listens on port 1
    one_line_error(
        &[
            "simulate",
            "verify",
            "ptrace-attach",
            "--local",
            "127.0.0.1:1",
        ],
        "cannot reach the sensor",
    );
    one_line_error(
        &[
            "simulate",
            "verify",
            "ptrace-attach",
            "--alerts-file",
            "/nonexistent/alerts.jsonl",
        ],
        "cannot read alerts file",
    );
}

#[test]
fn run_without_a_sensor_runs_and_reports() {
    let out = Command::new(BIN)
        .args([
            "simulate",
            "run",
            "ptrace-*",
            "fileless-execution-memfd",
            "packet-socket",
            "-o",
            "json",
        ])
        .output()
        .expect("simulate run");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["kind"], "SimulationRun");
    let statuses: Vec<(&str, &str)> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["scenario"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("packet-socket", "SKIPPED"),
            ("ptrace-attach", "RAN"),
            ("fileless-execution-memfd", "RAN"),
            ("ptrace-anti-debug", "RAN"),
        ]
    );
    let list = Command::new(BIN)
        .args(["simulate", "list", "-o", "json"])
        .output()
        .expect("simulate list");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(
        list["scenarios"].as_array().map(|s| s.len()),
        Some(catalogue::SCENARIOS.len())
    );
}

/// `--in-cluster --all-nodes` as far as one host goes: the Job pod's own command
/// (`__sim-pod`, as the Job runs it) runs every scenario one after another in one
/// container, its printed results are gathered back as from the pod's log, and the real
/// sensor's alerts are attributed to each scenario by the container's id and the event's
/// time, as the in-cluster verifier does: every scenario DETECTED (or skipped for a
/// reason that holds here), nothing unexpected at Warning or above.
#[test]
fn a_job_pods_scenarios_are_verified_by_its_container_and_their_times() {
    use secmon::simulate::cluster;
    use secmon::simulate::verify::{Received, Status, evaluate};
    if !root() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("job-pod");
    let rules = rules_file(&dir, "local_rules.yaml", API_OVERRIDE);
    let Some(sensor) = Sensor::start(BIN, &["--rules", &rules]) else {
        return;
    };
    let run_id = secmon::simulate::new_run_id();
    let all: Vec<_> = catalogue::SCENARIOS.iter().collect();
    let (plans, skipped) = cluster::plan(
        &all,
        &run_id,
        &["this-node".to_string()],
        true,
        false,
        RulesetKind::Default,
    );
    assert_eq!(plans.len(), 1, "one pod for the node");
    let job = cluster::job_manifest(
        &plans[0],
        &cluster::JobSettings {
            run_id: &run_id,
            image: "example.test/secmon:1",
            ruleset: RulesetKind::Default,
            deadline_seconds: 600,
            scenario_timeout_seconds: 30,
        },
    );
    let command: Vec<String> = job["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let (cid, pod_uid) = container_identity(&format!("job-pod-{run_id}"));
    let scopes = common::kubelet::container_scopes(&cid, &pod_uid);
    let procs: Vec<PathBuf> = scopes.iter().map(|s| s.join("cgroup.procs")).collect();
    let mut cmd = Command::new(BIN);
    cmd.args(&command[1..])
        .args(["--api-server", "127.0.0.1:443"]);
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                std::fs::write(p, "0")?;
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run __sim-pod");
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    let mut runs = skipped;
    runs.extend(cluster::gather(
        &plans[0],
        &log,
        Some(&format!("containerd://{cid}")),
        None,
    ));
    let received = |alerts: &[serde_json::Value]| -> Vec<Received> {
        alerts
            .iter()
            .filter_map(|a| Alert::from_json(&a.to_string()).ok())
            .map(|alert| Received {
                received_ns: alert.time_ns().unwrap_or(0),
                alert,
            })
            .collect()
    };
    // Every scenario that ran has all its alerts, or 20 s have passed.
    sensor.wait_for(|a| {
        evaluate(&runs, &received(a), RulesetKind::Default, true)
            .iter()
            .all(|r| r.status != Status::Missed)
    });
    let (alerts, sensor_log) = sensor.stop();
    for s in scopes.iter().rev() {
        let _ = std::fs::remove_dir(s);
    }
    let results = evaluate(&runs, &received(&alerts), RulesetKind::Default, true);
    let skips = allowed_skips();
    let mut problems = Vec::new();
    for r in &results {
        let reason = r.reason.as_deref().unwrap_or("");
        match r.status {
            Status::Detected => {}
            Status::Skipped if r.scenario == "debugfs-in-privileged-container" => {
                assert!(reason.contains("--allow-privileged"), "{reason}");
            }
            Status::Skipped
                if skips
                    .iter()
                    .any(|(n, holds, why)| *n == r.scenario && *holds && reason.contains(why)) => {}
            s => problems.push(format!("{}: {s:?} ({reason})", r.scenario)),
        }
        for u in &r.unexpected {
            if u.priority <= Priority::Warning {
                problems.push(format!(
                    "{}: UNEXPECTED {} {}",
                    r.scenario, u.rule, u.output
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\n__sim-pod stderr:\n{}\nsensor:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sensor_log.join("\n")
    );
    // The container's id is what tied the alerts to the scenarios.
    let short = &cid[..12];
    assert!(
        alerts
            .iter()
            .filter(|a| a["output_fields"]["container.id"] == short)
            .count()
            >= results
                .iter()
                .filter(|r| r.status == Status::Detected)
                .count()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
