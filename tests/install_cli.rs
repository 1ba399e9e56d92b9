//! `install`, `uninstall` and `status` through the real binary without a cluster: the
//! client dry run works offline, `--rules` files are checked before anything is sent, and
//! errors (bad rules, an unreachable API server, an output format that cannot hold
//! manifests) are one line with exit code 2. The commands against a real control plane
//! are in tests/install.rs.

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn one_line_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{needle}: {err}");
}

#[test]
fn client_dry_run_prints_manifests_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("team-rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Team rule\n  desc: d\n  condition: evt.type = execve and proc.name = nc\n  output: nc (%proc.cmdline)\n  priority: WARNING\n",
    )
    .unwrap();
    let o = run(&[
        "install",
        "--dry-run=client",
        "-o",
        "json",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    let cm = items.iter().find(|i| i["kind"] == "ConfigMap").unwrap();
    assert!(
        cm["data"]["team-rules.yaml"]
            .as_str()
            .unwrap()
            .contains("Team rule")
    );
    assert!(cm["data"]["secmon_rules.yaml"].is_string());
    let ds = items.iter().find(|i| i["kind"] == "DaemonSet").unwrap();
    let args = ds["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("/etc/secmon/rules/team-rules.yaml"), "{args}");

    let table = run(&["install", "--dry-run=client"]);
    assert_eq!(table.status.code(), Some(0));
    assert_eq!(stdout(&table).matches("apply (client dry run)").count(), 7);

    let falco = run(&[
        "install",
        "--sensor",
        "falco",
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&stdout(&falco)).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "DaemonSet"
        ]
    );
    assert_eq!(docs[4]["metadata"]["name"], "falco");

    let un = run(&["uninstall", "--dry-run=client"]);
    assert_eq!(un.status.code(), Some(0));
    assert!(stdout(&un).contains("Namespace"));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: Broken\n  desc: d\n  condition: evt.type in (execve\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    one_line_error(
        &run(&[
            "install",
            "--dry-run=client",
            "--rules",
            bad.to_str().unwrap(),
        ]),
        "bad.yaml",
    );
    one_line_error(
        &run(&[
            "install",
            "--dry-run=client",
            "--rules",
            "/nonexistent/rules.yaml",
        ]),
        "/nonexistent/rules.yaml",
    );
    one_line_error(
        &run(&["install", "--dry-run=client", "-o", "sarif"]),
        "cannot print manifests",
    );
    one_line_error(&run(&["install"]), "no kubeconfig found");
    one_line_error(&run(&["status"]), "no kubeconfig found");
}

#[test]
fn an_unreachable_api_server_is_one_line_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\nusers:\n- name: u\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    let k = kubeconfig.to_str().unwrap();
    let o = run(&["--kubeconfig", k, "install"]);
    one_line_error(
        &o,
        "cannot check permissions: the API server is unreachable",
    );
    assert!(stderr(&o).contains("after 4 attempts"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    one_line_error(&run(&["--kubeconfig", k, "status"]), "unreachable");
    one_line_error(&run(&["--kubeconfig", k, "uninstall"]), "unreachable");
}
