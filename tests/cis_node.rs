//! The CIS engine on node trees the tests build (real modes and owners; run as root):
//! a hardened kubeadm control plane, a misconfigured one, a worker, a kubelet configured
//! by defaults and drop-ins, and broken nodes (malformed, unreadable, looping, huge).

mod common;

use std::path::Path;

use common::cis_node::*;
use secmon::cis::eval::State;
use secmon::commands::cis::{RunArgs, scan};
use secmon::report::cis::CisReport;

fn args(root: &Path, benchmark: &str) -> RunArgs {
    run_args(root, benchmark, None)
}

fn run(n: &Node) -> CisReport {
    scan(&args(n.root(), "cis-1.12")).unwrap()
}

fn state(r: &CisReport, id: &str) -> State {
    r.result(id)
        .unwrap_or_else(|| panic!("no result {id}"))
        .state
}

fn show(r: &CisReport, id: &str) -> String {
    format!("{:#?}", r.result(id))
}

#[test]
fn hardened_control_plane_passes_every_automatable_check() {
    let n = hardened_control_plane();
    let r = scan(&args(n.root(), "auto")).unwrap();
    assert_eq!(r.benchmark, "cis-1.12");
    assert!(
        r.benchmark_source.contains("Kubernetes 1.33"),
        "{}",
        r.benchmark_source
    );
    assert_eq!(r.node, "cp-1");
    assert_eq!(r.results().count(), 131);
    for c in r.results() {
        let expected = if c.evidence.is_empty() && c.state == State::Warn {
            State::Warn
        } else {
            State::Pass
        };
        assert_eq!(c.state, expected, "{c:#?}");
    }
    assert_eq!(r.totals.fail, 0);
    assert_eq!(r.totals.score, Some(100.0));
    // Every result says where its value came from.
    let c = r.result("4.2.1").unwrap();
    assert_eq!(
        c.source.as_deref(),
        Some("config file /var/lib/kubelet/config.yaml (key authentication.anonymous.enabled)")
    );
    let c = r.result("1.2.1").unwrap();
    assert_eq!(c.source.as_deref(), Some("flag --anonymous-auth"));
    assert_eq!(c.observed.as_deref(), Some("false"));
    let c = r.result("1.1.12").unwrap();
    assert_eq!(c.observed.as_deref(), Some("etcd:etcd"));
    assert_eq!(c.source.as_deref(), Some("named by --data-dir"));
}

#[test]
fn misconfigured_control_plane_fails_the_named_checks_with_evidence() {
    let n = hardened_control_plane();
    n.chmod("/etc/kubernetes/manifests/kube-apiserver.yaml", 0o644);
    n.chown("/var/lib/etcd", 0, 0);
    n.chmod("/etc/kubernetes/pki/ca.key", 0o644);
    let api = with_flag(APISERVER, "--authorization-mode", Some("AlwaysAllow"));
    let api = with_flag(
        &api.iter().map(String::as_str).collect::<Vec<_>>(),
        "--profiling",
        None,
    );
    let mut api = api;
    api.push("--token-auth-file=/etc/kubernetes/tokens.csv".into());
    process_owned(&n, 1100, &api, &[]);
    let etcd = with_flag(ETCD, "--client-cert-auth", None);
    process_owned(&n, 1400, &etcd, &[("ETCD_CLIENT_CERT_AUTH", "false")]);
    let mut kubelet: Vec<String> = KUBELET.iter().map(|s| s.to_string()).collect();
    kubelet.push("--rotate-certificates=false".into());
    process_owned(&n, 2000, &kubelet, &[]);
    n.file(
        "/var/lib/kubelet/config.yaml",
        &KUBELET_CONFIG.replace("    enabled: false", "    enabled: true"),
        0o600,
    );

    let r = run(&n);
    let fail = |id: &str, observed: &str, source: &str| {
        let c = r.result(id).unwrap();
        assert_eq!(c.state, State::Fail, "{}", show(&r, id));
        assert_eq!(c.observed.as_deref(), Some(observed), "{}", show(&r, id));
        assert_eq!(c.source.as_deref(), Some(source), "{}", show(&r, id));
        assert!(!c.remediation.is_empty());
    };
    fail("1.1.1", "644", "static pod manifest path");
    fail("1.1.12", "root:root", "named by --data-dir");
    let c = r.result("1.1.21").unwrap();
    assert_eq!(
        c.observed.as_deref(),
        Some("/etc/kubernetes/pki/ca.key: 644")
    );
    fail(
        "1.2.2",
        "/etc/kubernetes/tokens.csv",
        "flag --token-auth-file",
    );
    fail("1.2.6", "AlwaysAllow", "flag --authorization-mode");
    fail("1.2.7", "AlwaysAllow", "flag --authorization-mode");
    fail("1.2.15", "true", "Kubernetes default (set nowhere)");
    fail("2.2", "false", "environment ETCD_CLIENT_CERT_AUTH");
    fail(
        "4.2.1",
        "true",
        "config file /var/lib/kubelet/config.yaml (key authentication.anonymous.enabled)",
    );
    fail("4.2.10", "false", "flag --rotate-certificates");
    assert_eq!(
        r.result("1.2.6").unwrap().expected,
        "'--authorization-mode' does not have 'AlwaysAllow'"
    );
    let failed: Vec<&str> = r
        .results()
        .filter(|c| c.state == State::Fail)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "1.1.1", "1.1.12", "1.2.2", "1.2.6", "1.2.7", "1.2.8", "1.2.15", "2.2", "4.2.1",
            "4.2.10"
        ],
        "1.1.21 is unscored: WARN"
    );
    assert_eq!(state(&r, "1.1.21"), State::Warn);
    assert!(r.totals.score.is_some_and(|s| s < 100.0));
}

#[test]
fn worker_node_control_plane_sections_are_not_applicable() {
    let n = worker();
    let r = run(&n);
    assert_eq!(r.node, "worker-1");
    for s in &r.sections {
        for c in &s.results {
            match s.id.as_str() {
                "1" | "2" | "3" => {
                    assert_eq!(c.state, State::NotApplicable, "{c:#?}");
                    assert!(
                        c.reason
                            .as_deref()
                            .unwrap_or("")
                            .contains("is not running on this node")
                    );
                }
                "4" => assert_eq!(c.state, State::Pass, "{c:#?}"),
                _ => assert_eq!(c.state, State::Warn, "{c:#?}"),
            }
        }
    }
    assert_eq!(r.sections[0].totals.score, None);
    // Without a control plane there is no version evidence: auto refuses to guess.
    let e = scan(&args(n.root(), "auto")).unwrap_err().to_string();
    assert!(e.contains("pass --benchmark"), "{e}");
}

#[test]
fn kubelet_settings_from_defaults_and_drop_ins() {
    let n = worker();
    let mut kubelet: Vec<String> = KUBELET.iter().map(|s| s.to_string()).collect();
    kubelet.push("--config-dir=/etc/kubernetes/kubelet.conf.d".into());
    process_owned(&n, 2000, &kubelet, &[]);
    n.file(
        "/var/lib/kubelet/config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nreadOnlyPort: 10255\n",
        0o600,
    );
    n.file(
        "/etc/kubernetes/kubelet.conf.d/10-ports.conf",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 10255\nseccompDefault: false\n",
        0o600,
    );
    n.file(
        "/etc/kubernetes/kubelet.conf.d/20-harden.conf",
        "{\"apiVersion\": \"kubelet.config.k8s.io/v1beta1\", \"kind\": \"KubeletConfiguration\", \"readOnlyPort\": 0, \"seccompDefault\": true}\n",
        0o600,
    );
    n.file(
        "/etc/kubernetes/kubelet.conf.d/README",
        "not a drop-in",
        0o600,
    );
    let r = run(&n);
    let c = r.result("4.2.1").unwrap();
    assert_eq!(
        (c.state, c.observed.as_deref()),
        (State::Pass, Some("false"))
    );
    assert_eq!(
        c.source.as_deref(),
        Some("Kubernetes default (set nowhere)")
    );
    let c = r.result("4.2.2").unwrap();
    assert_eq!(
        (c.state, c.observed.as_deref()),
        (State::Pass, Some("Webhook"))
    );
    let c = r.result("4.2.4").unwrap();
    assert_eq!(c.state, State::Pass, "{c:#?}");
    assert_eq!(
        c.source.as_deref(),
        Some("drop-in /etc/kubernetes/kubelet.conf.d/20-harden.conf (key readOnlyPort)")
    );
    let c = r.result("4.2.14").unwrap();
    assert_eq!(c.state, State::Pass, "{c:#?}");
    let c = r.result("4.2.5").unwrap();
    assert_eq!(
        (c.state, c.observed.as_deref()),
        (State::Pass, Some("4h0m0s"))
    );
    // A drop-in that sets the read-only port last wins over the hardened one.
    n.file(
        "/etc/kubernetes/kubelet.conf.d/30-open.conf",
        "readOnlyPort: 10255\n",
        0o600,
    );
    let r = run(&n);
    let c = r.result("4.2.4").unwrap();
    assert_eq!(
        (c.state, c.observed.as_deref()),
        (State::Warn, Some("10255"))
    );

    // A kubelet with no config file at all: the flag defaults apply, not the file's.
    let n = worker();
    n.remove("/var/lib/kubelet/config.yaml");
    let kubelet = with_flag(KUBELET, "--config", None);
    process_owned(&n, 2000, &kubelet, &[]);
    let r = run(&n);
    let c = r.result("4.2.1").unwrap();
    assert_eq!(
        (c.state, c.observed.as_deref()),
        (State::Fail, Some("true"))
    );
    assert_eq!(
        c.source.as_deref(),
        Some("Kubernetes default (no config file in use)")
    );
    assert_eq!(state(&r, "4.1.9"), State::NotApplicable);
}

#[test]
fn unreadable_or_malformed_files_are_errors_not_failures() {
    let n = hardened_control_plane();
    n.file(
        "/var/lib/kubelet/config.yaml",
        "authentication: [unclosed\n",
        0o600,
    );
    n.remove("/var/lib/kube-proxy/config.conf");
    n.dir("/var/lib/kube-proxy/config.conf", 0o700);
    n.symlink("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/loop-a");
    n.symlink("/etc/kubernetes/loop-a", "/etc/kubernetes/kubelet.conf");
    let r = run(&n);
    let c = r.result("4.2.1").unwrap();
    assert_eq!(c.state, State::Error, "{c:#?}");
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .contains("/var/lib/kubelet/config.yaml: invalid YAML"),
        "{c:#?}"
    );
    let c = r.result("4.3.1").unwrap();
    assert_eq!(c.state, State::Error, "{c:#?}");
    assert!(
        c.reason.as_deref().unwrap().contains("is a directory"),
        "{c:#?}"
    );
    let c = r.result("4.1.5").unwrap();
    assert_eq!(c.state, State::Error, "{c:#?}");
    assert!(
        c.reason.as_deref().unwrap().contains("symbolic links"),
        "{c:#?}"
    );
    // Settings given as flags are still judged; nothing turned into a FAIL.
    assert_eq!(state(&r, "4.2.7"), State::Pass);
    assert_eq!(r.totals.fail, 0);
    assert!(r.totals.error >= 3);
    let c = r
        .components
        .iter()
        .find(|c| c.component == "kubelet")
        .unwrap();
    assert!(c.config_error.is_some());
}

#[test]
fn bad_node_input_is_a_clear_error_or_skipped() {
    // Huge config file.
    let n = hardened_control_plane();
    n.file(
        "/var/lib/kubelet/config.yaml",
        &"# padding\n".repeat(600_000),
        0o600,
    );
    let r = run(&n);
    let c = r.result("4.2.1").unwrap();
    assert_eq!(c.state, State::Error);
    assert!(c.reason.as_deref().unwrap().contains("limit"), "{c:#?}");

    // Missing and odd /proc entries are skipped; the rest of the table still reads.
    let n = hardened_control_plane();
    std::fs::create_dir_all(n.path("/proc/5000")).unwrap();
    std::fs::create_dir_all(n.path("/proc/5001/cmdline")).unwrap();
    n.file("/proc/5002/cmdline", "", 0o444);
    std::fs::create_dir_all(n.path("/proc/self")).unwrap();
    n.kill(3000);
    let r = run(&n);
    assert_eq!(state(&r, "4.3.1"), State::NotApplicable);
    assert_eq!(state(&r, "1.2.1"), State::Pass);

    // Two etcd processes: the first is read, and the report says so.
    let n = hardened_control_plane();
    n.process(1401, ETCD, &[]);
    let r = run(&n);
    assert!(
        r.notes.iter().any(|x| x.contains("more than one etcd")),
        "{:?}",
        r.notes
    );

    // No process table, or no root at all.
    let n = Node::new();
    let e = scan(&args(n.root(), "cis-0.1")).unwrap_err().to_string();
    assert!(e.contains("unknown benchmark"), "{e}");
    n.remove("/proc");
    let e = scan(&args(n.root(), "cis-1.12")).unwrap_err().to_string();
    assert!(e.contains("cannot read the process table"), "{e}");
    let e = scan(&args(&n.path("/nope"), "cis-1.12"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--root is not a directory"), "{e}");
}

#[test]
fn selection_of_targets_checks_and_skips() {
    let n = hardened_control_plane();
    let mut a = args(n.root(), "cis-1.12");
    a.targets = vec!["node".into(), "etcd".into()];
    a.check = vec!["4.2.*".into(), "2.1".into()];
    a.skip = vec!["4.2.1".into()];
    let r = scan(&a).unwrap();
    let ids: Vec<&str> = r.results().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 15, "{ids:?}");
    assert!(ids.contains(&"2.1") && ids.contains(&"4.2.14") && !ids.contains(&"4.1.1"));
    assert_eq!(state(&r, "4.2.1"), State::Info);
    a.targets = vec!["workers".into()];
    let e = scan(&a).unwrap_err().to_string();
    assert!(e.contains("unknown target"), "{e}");
}

#[test]
fn auto_picks_the_benchmark_from_the_control_plane_version() {
    let n = hardened_control_plane();
    for m in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let p = format!("/etc/kubernetes/manifests/{m}.yaml");
        let text = std::fs::read_to_string(n.path(&p)).unwrap();
        n.file(&p, &text.replace("v1.33.2", "v1.30.4"), 0o600);
    }
    let r = scan(&args(n.root(), "auto")).unwrap();
    assert_eq!(r.benchmark, "cis-1.11");
    assert_eq!(r.detected_version.as_deref(), Some("1.30"));
    assert_eq!(r.results().count(), 133);
    assert_eq!(r.totals.fail, 0);
    let p = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    let text = std::fs::read_to_string(n.path(p)).unwrap();
    for m in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let p = format!("/etc/kubernetes/manifests/{m}.yaml");
        n.file(&p, &text.replace("v1.30.4", "v1.27.1"), 0o600);
    }
    let e = scan(&args(n.root(), "auto")).unwrap_err().to_string();
    assert!(
        e.contains("Kubernetes 1.27") && e.contains("pass --benchmark"),
        "{e}"
    );
}
