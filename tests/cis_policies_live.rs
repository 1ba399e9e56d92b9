//! CIS section 5 through the API against the real local control plane: a clean cluster
//! passes, RBAC and workload fixtures fail the right checks naming the right subjects,
//! and a user without list rights gets one line naming the missing permission.

mod common;

use std::process::Command;

use common::cluster::{Cluster, apply_yaml};
use serde_json::Value;

fn run_json(cluster: &Cluster, args: &[&str]) -> (i32, Value, String) {
    let out = cluster.secmon(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// (state, observed) of one check in a report.
fn check(report: &Value, id: &str) -> (String, String) {
    for s in report["sections"].as_array().into_iter().flatten() {
        for r in s["results"].as_array().into_iter().flatten() {
            if r["id"] == id {
                return (
                    r["state"].as_str().unwrap_or("").to_string(),
                    r["observed"].as_str().unwrap_or("").to_string(),
                );
            }
        }
    }
    panic!("no check {id} in {report}");
}

const POLICIES: &[&str] = &[
    "cis",
    "run",
    "--targets",
    "policies",
    "--benchmark",
    "cis-1.12",
    "-o",
    "json",
];

const HARDEN_DEFAULT: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: default
automountServiceAccountToken: false
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: default
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"#;

const FINDINGS: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: alice-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: wild
rules:
- apiGroups: [""]
  resources: ["*"]
  verbs: ["get"]
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: secret-reader
  namespace: team-a
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: bob-secrets
  namespace: team-a
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
  namespace: team-a
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-creator
  namespace: team-a
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: deployer-pods
  namespace: team-a
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-creator}
subjects:
- {kind: ServiceAccount, name: deployer, namespace: team-a}
---
apiVersion: v1
kind: Pod
metadata:
  name: uses-default
  namespace: team-a
spec:
  containers:
  - name: app
    image: registry.example/app:1
    env:
    - name: DB_PASSWORD
      valueFrom:
        secretKeyRef: {name: db, key: password}
---
apiVersion: v1
kind: Pod
metadata:
  name: host-pid
  namespace: team-a
spec:
  serviceAccountName: deployer
  hostPID: true
  containers:
  - name: app
    image: registry.example/app:1
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: default
"#;

#[tokio::test(flavor = "multi_thread")]
async fn clean_cluster_passes_then_fixtures_fail_naming_subjects() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().await;
    // The controller-manager creates default service accounts shortly after start.
    let sas: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), "default");
    for _ in 0..600 {
        if sas.get_opt("default").await.ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    apply_yaml(&client, HARDEN_DEFAULT).await;

    let (code, report, err) = run_json(cluster, POLICIES);
    assert_eq!(
        code, 0,
        "clean cluster should have no findings: {err}\n{report:#}"
    );
    assert_eq!(report["mode"], "api");
    for id in [
        "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5", "5.1.6", "5.1.8", "5.2.1", "5.2.2", "5.2.3",
        "5.3.2", "5.4.1", "5.6.4",
    ] {
        let (state, observed) = check(&report, id);
        assert_eq!(state, "PASS", "{id}: {observed}");
    }
    // Judgement checks stay WARN with the reason.
    assert_eq!(check(&report, "5.3.1").0, "WARN");
    assert_eq!(check(&report, "5.1.7").0, "WARN");
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("kube-system") && notes.contains("rbac-defaults"),
        "{notes}"
    );

    apply_yaml(&client, FINDINGS).await;
    let (code, report, err) = run_json(cluster, POLICIES);
    assert_eq!(code, 1, "{err}");
    let expect = [
        ("5.1.1", "User alice"),
        ("5.1.2", "User bob"),
        ("5.1.3", "ClusterRole wild"),
        ("5.1.4", "ServiceAccount team-a/deployer"),
        ("5.1.5", "Pod team-a/uses-default"),
        ("5.1.5", "ServiceAccount team-a/default"),
        ("5.2.1", "team-a"),
        ("5.2.3", "Pod team-a/host-pid"),
        ("5.3.2", "team-a"),
        ("5.4.1", "Pod team-a/uses-default"),
        ("5.4.1", "DB_PASSWORD from secret db"),
        ("5.6.4", "ServiceAccount default/app"),
    ];
    for (id, who) in expect {
        let (state, observed) = check(&report, id);
        assert_eq!(state, "FAIL", "{id}: {observed}");
        assert!(observed.contains(who), "{id} should name {who}: {observed}");
    }
    // The control plane's own subjects are excluded, and the wildcard finding names only
    // the role it should.
    let (_, secrets) = check(&report, "5.1.2");
    assert!(!secrets.contains("system:"), "{secrets}");
    assert!(
        secrets.starts_with("2 subjects"),
        "alice and bob: {secrets}"
    );
    let (_, wild) = check(&report, "5.1.3");
    assert!(wild.starts_with("1 roles"), "{wild}");
    // 5.2.2 privileged: nothing privileged, but team-a admits it → WARN naming it.
    let (state, observed) = check(&report, "5.2.2");
    assert_eq!(state, "WARN", "{observed}");
    assert!(observed.contains("team-a"), "{observed}");

    // kube-bench's JSON shape carries the same verdicts.
    let mut args = POLICIES.to_vec();
    args[7] = "kube-bench-json";
    let (_, kb, _) = run_json(cluster, &args);
    assert!(
        kb["Totals"]["total_fail"].as_u64().unwrap_or(0) >= 9,
        "{kb}"
    );
}

/// A client certificate for a user with no RBAC bindings, signed by the test CA.
fn unprivileged_kubeconfig(cluster: &Cluster, dir: &std::path::Path) -> std::path::PathBuf {
    let pki = cluster.state.join("pki");
    let key = dir.join("nobody.key");
    let csr = dir.join("nobody.csr");
    let crt = dir.join("nobody.crt");
    let ok = |c: &mut Command| assert!(c.output().expect("openssl").status.success());
    ok(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=nobody",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    let ext = dir.join("cli.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("write");
    ok(Command::new("openssl")
        .args(["x509", "-req", "-days", "1"])
        .arg("-extfile")
        .arg(&ext)
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(pki.join("ca.crt"))
        .arg("-CAkey")
        .arg(pki.join("ca.key"))
        .arg("-CAcreateserial")
        .arg("-CAserial")
        .arg(dir.join("ca.srl"))
        .arg("-out")
        .arg(&crt));
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let b64 = |p: &std::path::Path| {
        let o = Command::new("base64")
            .arg("-w0")
            .arg(p)
            .output()
            .expect("base64");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let mut out = String::new();
    let mut skip = false;
    for l in text.lines() {
        if l.trim_start().starts_with("client-certificate-data:") {
            out.push_str(&format!("    client-certificate-data: {}\n", b64(&crt)));
            skip = true;
            continue;
        }
        if skip && l.trim_start().starts_with("client-key-data:") {
            out.push_str(&format!("    client-key-data: {}\n", b64(&key)));
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    let kc = dir.join("nobody.kubeconfig");
    std::fs::write(&kc, out).expect("write");
    kc
}

#[test]
fn a_user_without_list_rights_gets_one_line_naming_the_permission() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = unprivileged_kubeconfig(cluster, dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .arg("--kubeconfig")
        .arg(&kc)
        .args(&POLICIES[..6])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("forbidden (403)") && err.contains("list namespaces"),
        "{err}"
    );
}

/// (state, source, reason) of one check.
fn detail(report: &Value, id: &str) -> (String, String, String) {
    for s in report["sections"].as_array().into_iter().flatten() {
        for r in s["results"].as_array().into_iter().flatten() {
            if r["id"] == id {
                let t = |k: &str| r[k].as_str().unwrap_or("").to_string();
                return (t("state"), t("source"), t("reason"));
            }
        }
    }
    panic!("no check {id} in {report}");
}

#[test]
fn control_plane_without_mirror_pods_is_not_applicable_through_the_api() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let (code, report, err) = run_json(
        cluster,
        &[
            "cis",
            "run",
            "--from-api",
            "--targets",
            "master,node",
            "--benchmark",
            "cis-1.12",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (state, _, reason) = detail(&report, "1.2.1");
    assert_eq!(state, "NOT_APPLICABLE");
    assert!(reason.contains("no static-pod mirror pods"), "{reason}");
    let (state, _, reason) = detail(&report, "4.2.1");
    assert_eq!(state, "NOT_APPLICABLE");
    assert!(reason.contains("--nodes"), "{reason}");
}

/// The local control plane's kube-apiserver is a real process on this machine: a node
/// scan of `/` reads its flags from /proc and judges section 1.2 on them.
#[test]
fn the_local_apiserver_process_is_judged_from_proc() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let out = cluster.secmon(&[
        "cis",
        "run",
        "--root",
        "/",
        "--benchmark",
        "cis-1.12",
        "--check",
        "1.2.*",
        "-o",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        report["components"].to_string().contains("kube-apiserver"),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --authorization-mode=Node,RBAC
    for id in ["1.2.6", "1.2.7", "1.2.8"] {
        let (state, source, _) = detail(&report, id);
        assert_eq!(state, "PASS", "{id}");
        assert_eq!(source, "flag --authorization-mode", "{id}");
    }
    // --anonymous-auth is not set: the documented default (true) decides, and 1.2.1 is
    // not scored, so it is WARN rather than FAIL.
    let (state, source, _) = detail(&report, "1.2.1");
    assert_eq!(state, "WARN");
    assert_eq!(source, "Kubernetes default (set nowhere)");
    // --token-auth-file is not set: pass.
    assert_eq!(detail(&report, "1.2.2").0, "PASS");
}
