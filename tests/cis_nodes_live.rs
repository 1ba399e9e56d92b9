//! `cis run --nodes` against the real local control plane. There is no kubelet, so scan
//! pods never start: the test checks that they are created with the right spec, that a
//! pod that never starts becomes a clear per-node ERROR at `--timeout` rather than a hang,
//! and that the pods are removed afterwards. Gathering a report from a pod's log is
//! tested on a recorded log (src/cis/scanpod.rs and below).

mod common;

use common::cluster::{Cluster, apply_yaml};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn scan_pods_are_created_time_out_per_node_and_are_removed() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().await;
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-1\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: worker-2\n",
    )
    .await;
    let kc = cluster.kubeconfig.clone();
    let child = std::thread::spawn(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "cis",
                "run",
                "--nodes",
                "all",
                "--image",
                "example.test/secmon:1",
                "--timeout",
                "20s",
                "-o",
                "json",
            ])
            .output()
            .expect("run")
    });
    // While the command waits, its pods exist with the scan spec.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "secmon");
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = pods
            .list(&ListParams::default().labels("app.kubernetes.io/name=secmon-cis"))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        if seen.len() == 2 || child.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 2, "one scan pod per node");
    for p in &seen {
        let spec = p.spec.as_ref().expect("spec");
        assert!(matches!(
            spec.node_name.as_deref(),
            Some("worker-1" | "worker-2")
        ));
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.automount_service_account_token, Some(false));
        let c = &spec.containers[0];
        assert_eq!(c.image.as_deref(), Some("example.test/secmon:1"));
        assert!(
            c.command
                .as_ref()
                .is_some_and(|x| x.join(" ").contains("cis run --root /host"))
        );
        assert!(
            c.volume_mounts
                .iter()
                .flatten()
                .all(|m| m.read_only == Some(true))
        );
        let sc = c.security_context.as_ref().expect("securityContext");
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
    }

    let out = child.join().expect("join");
    let err = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(report["kind"], "CisNodesReport", "{err}");
    let nodes = report["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(nodes.len(), 2, "{report}");
    for n in &nodes {
        let e = n["error"].as_str().unwrap_or("");
        assert!(
            e.contains("did not finish within 20s") && e.contains("Pending"),
            "{n}"
        );
    }
    assert!(err.contains("warning: node worker-1"), "{err}");
    // Removed afterwards.
    let left = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=secmon-cis"))
        .await
        .expect("list")
        .items;
    assert!(left.is_empty(), "scan pods left behind: {}", left.len());

    // A node that does not exist: one line, exit 2, nothing created.
    let out = cluster.secmon(&["cis", "run", "--nodes", "nope", "--timeout", "5s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("get nodes") && err.contains("404"), "{err}");
}

/// The report of a node scan as a scan pod's log holds it (recorded from
/// `kubectl-secmon cis run -o json` on a fixture node), gathered into the per-node report.
#[test]
fn gathering_a_recorded_log() {
    let root = common::cis_node::worker();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args([
            "cis",
            "run",
            "--benchmark",
            "cis-1.12",
            "--node-name",
            "n1",
            "-o",
            "json",
            "--root",
        ])
        .arg(root.dir.path())
        .output()
        .expect("run");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let scan = secmon::cis::scanpod::gather("n1", &log);
    assert!(scan.error.is_none(), "{scan:?}");
    let r = scan.report.expect("report");
    assert_eq!(r["node"], "n1");
    assert!(r["totals"]["pass"].as_u64().unwrap_or(0) > 0, "{r}");
}
