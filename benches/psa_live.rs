//! Live Pod Security audit speed (`cargo bench --bench psa_live`): start the local control
//! plane (tests/cluster/up), create 100 namespaces with 100 pods each (10,000 pods, a mix
//! of hardened and bare specs), then time `psa check -A` and `psa plan -A` end to end, as
//! a user runs them (the release binary, JSON output to /dev/null). Prints figures; asserts
//! nothing about time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");
const NAMESPACES: usize = 100;
const PODS_PER_NAMESPACE: usize = 100;

fn pod(ns: &str, i: usize) -> Pod {
    let spec = if i.is_multiple_of(5) {
        json!({"containers": [{"name": "app", "image": "registry.test/app:1"}]})
    } else {
        json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "registry.test/app:1",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        })
    };
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i}"), "namespace": ns, "labels": {"app": "bench"}},
        "spec": spec}))
    .expect("pod")
}

fn time(kubeconfig: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = Command::new(BIN)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run");
    assert!(status.code().is_some_and(|c| c <= 1), "{args:?}: {status}");
    t.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let state = std::env::temp_dir().join(format!("secmon-bench-cluster-{}", std::process::id()));
    let up = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster/up"))
        .arg(&state)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .output()
        .expect("tests/cluster/up");
    if !up.status.success() {
        eprintln!(
            "SKIPPED LOUDLY: no local control plane: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        return;
    }
    let kubeconfig = String::from_utf8_lossy(&up.stdout).trim().to_string();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = Instant::now();
    rt.block_on(async {
        let cfg = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(cfg, &Default::default())
            .await
            .expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let nss: Api<Namespace> = Api::all(client.clone());
        for n in 0..NAMESPACES {
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": format!("bench-{n}")}}))
                    .expect("ns");
            nss.create(&PostParams::default(), &ns)
                .await
                .expect("namespace");
        }
        // The pods: 16 at a time. (They need each namespace's default ServiceAccount,
        // which the controller manager creates within a second.)
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut jobs = Vec::new();
        for n in 0..NAMESPACES {
            for i in 0..PODS_PER_NAMESPACE {
                jobs.push((format!("bench-{n}"), i));
            }
        }
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        let mut handles = Vec::new();
        for (ns, i) in jobs {
            let client = client.clone();
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            handles.push(tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(client, &ns);
                let p = pod(&ns, i);
                for attempt in 0..50 {
                    match api.create(&PostParams::default(), &p).await {
                        Ok(_) => break,
                        Err(_) if attempt < 49 => {
                            tokio::time::sleep(Duration::from_millis(100)).await
                        }
                        Err(e) => panic!("create {ns}/p{i}: {e}"),
                    }
                }
                drop(permit);
            }));
        }
        for h in handles {
            h.await.expect("join");
        }
    });
    eprintln!(
        "created {NAMESPACES} namespaces and {} pods in {:.1} s",
        NAMESPACES * PODS_PER_NAMESPACE,
        t.elapsed().as_secs_f64()
    );
    for (what, args) in [
        (
            "psa check -A -o json",
            vec!["psa", "check", "-A", "-o", "json"],
        ),
        ("psa check -A (table)", vec!["psa", "check", "-A"]),
        (
            "psa plan -A -o json",
            vec!["psa", "plan", "-A", "-o", "json"],
        ),
    ] {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| time(&kubeconfig, &args).as_secs_f64())
            .collect();
        runs.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{what}: 10,000 pods in 100 namespaces: median {:.0} ms (min {:.0}, max {:.0})",
            runs[2] * 1000.0,
            runs[0] * 1000.0,
            runs[4] * 1000.0
        );
    }
    let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster/down"))
        .arg(&state)
        .arg("--purge")
        .status();
}
