//! The API server goes away in the middle of a long live audit: the audit ends with exit
//! code 2 and one line saying what failed (results read before the failure, if any, are
//! printed and marked partial), it does not hang past its request timeout and retries, and
//! a rerun once the server is back gives the full result. Runs its own control plane (this
//! test freezes the API server, which other tests must not see).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

mod common;
use common::cluster::Cluster;

fn apiserver_pid(cluster: &Cluster) -> i32 {
    let env = std::fs::read_to_string(cluster.state.join("env")).expect("env");
    env.lines()
        .find_map(|l| l.strip_prefix("APISERVER_PID="))
        .and_then(|p| p.parse().ok())
        .expect("APISERVER_PID")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_that_stops_mid_audit() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().await;
    // Enough objects for several LIST pages.
    let nss: Api<Namespace> = Api::all(client.clone());
    for n in 0..6 {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("outage-{n}")}}))
                .expect("ns");
        nss.create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // default ServiceAccounts
    let mut handles = Vec::new();
    for n in 0..6 {
        for chunk in 0..4 {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(client, &format!("outage-{n}"));
                for i in 0..50 {
                    let p: Pod = serde_json::from_value(
                        json!({"metadata": {"name": format!("p{chunk}-{i}")},
                        "spec": {"containers": [{"name": "c", "image": "i"}]}}),
                    )
                    .expect("pod");
                    for attempt in 0..50 {
                        match api.create(&PostParams::default(), &p).await {
                            Ok(_) => break,
                            Err(_) if attempt < 49 => {
                                tokio::time::sleep(Duration::from_millis(100)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
    }
    for h in handles {
        h.await.expect("join");
    }

    let pid = apiserver_pid(cluster);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "--request-timeout",
            "2s",
            "psa",
            "check",
            "-A",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("audit");
    tokio::time::sleep(Duration::from_millis(150)).await;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("join");
    let waited = started.elapsed();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // Either the freeze caught the very first request (nothing read: a plain error) or a
    // later one (partial results, marked). Both end with exit 2 and one error line.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {stderr}\nstdout: {}",
        &stdout[..stdout.len().min(500)]
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("cannot list"), "{stderr}");
    if lines[0].contains("partial results") {
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("partial report is JSON");
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("partial results"))
        );
    }
    // 3 attempts x 2 s request timeout plus backoff: well under a minute, never a hang
    assert!(waited < Duration::from_secs(60), "took {waited:?}");

    // The server is back: the same audit completes.
    let out = cluster.secmon(&["psa", "check", "-A", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pods = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["kind"] == "Pod")
        .count();
    assert_eq!(pods, 6 * 4 * 50, "{}", String::from_utf8_lossy(&out.stderr));
}
