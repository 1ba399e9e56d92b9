//! `kubectl secmon cis run` through the real binary on fixture nodes: exit codes, every
//! output format (table with scores, json, yaml, junit, sarif, kube-bench-json) and
//! one-line errors for bad input.

mod common;

use std::process::{Command, Output};

use common::cis_node::*;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn misconfigured() -> Node {
    let n = hardened_control_plane();
    let api = with_flag(APISERVER, "--authorization-mode", Some("AlwaysAllow"));
    process_owned(&n, 1100, &api, &[]);
    n
}

#[test]
fn table_groups_by_section_with_scores_and_exit_codes() {
    let n = hardened_control_plane();
    let root = n.root().to_str().unwrap();
    let o = run(&["cis", "run", "--root", root]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("[1] Control Plane Security Configuration (master)"),
        "{out}"
    );
    assert!(out.contains("section 4: 25 pass, 0 fail"), "{out}");
    assert!(out.contains("total: 91 pass, 0 fail, 40 warn"), "{out}");
    assert!(out.contains("compliance 100.0%"), "{out}");

    let n = misconfigured();
    let root = n.root().to_str().unwrap();
    let o = run(&["cis", "run", "--root", root, "--benchmark", "cis-1.12"]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("1.2.6   FAIL"), "{out}");
    assert!(out.contains("fix: Set `--authorization-mode`"), "{out}");
    // 1.2.6 is high: --fail-on high still trips; critical does not.
    let o = run(&["cis", "run", "--root", root, "--fail-on", "high"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["cis", "run", "--root", root, "--fail-on", "critical"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn json_yaml_junit_sarif_and_kube_bench_json() {
    let n = misconfigured();
    let root = n.root().to_str().unwrap();
    let o = run(&["cis", "run", "--root", root, "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "CisReport");
    assert_eq!(v["node"], "cp-1");
    assert_eq!(v["mode"], "native");
    assert_eq!(v["sections"][0]["id"], "1");
    let r = v["sections"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "1.2.6")
        .unwrap();
    assert_eq!(r["state"], "FAIL");
    assert_eq!(r["observed"], "AlwaysAllow");
    assert_eq!(r["source"], "flag --authorization-mode");
    assert_eq!(r["evidence"][0]["verdict"], "FAIL");
    assert!(v["totals"]["score"].as_f64().unwrap() < 100.0);

    let o = run(&["cis", "run", "--root", root, "-o", "yaml"]);
    assert!(text(&o.stdout).contains("kind: CisReport"));

    let o = run(&["cis", "run", "--root", root, "-o", "junit"]);
    let x = text(&o.stdout);
    assert!(x.contains(r#"<testcase classname="1.2 API Server" name="1.2.6 --authorization-mode is not AlwaysAllow">"#), "{x}");
    assert!(
        x.contains("<failure message=\"observed AlwaysAllow; expected"),
        "{x}"
    );

    let o = run(&["cis", "run", "--root", root, "-o", "sarif"]);
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        s["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ruleId"] == "CIS-1.2.6")
    );

    let o = run(&["cis", "run", "--root", root, "-o", "kube-bench-json"]);
    let k: Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&k), ["Controls", "Totals"]);
    let c = &k["Controls"][0];
    assert_eq!(
        keys(c),
        [
            "id",
            "version",
            "detected_version",
            "text",
            "node_type",
            "tests",
            "total_pass",
            "total_fail",
            "total_warn",
            "total_info"
        ]
    );
    assert_eq!(
        keys(&c["tests"][0]),
        [
            "section", "type", "pass", "fail", "warn", "info", "desc", "results"
        ]
    );
    let res = c["tests"][1]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test_number"] == "1.2.6")
        .unwrap();
    assert_eq!(
        keys(res),
        [
            "test_number",
            "test_desc",
            "audit",
            "AuditEnv",
            "AuditConfig",
            "type",
            "remediation",
            "test_info",
            "status",
            "actual_value",
            "scored",
            "IsMultiple",
            "expected_result"
        ]
    );
    assert_eq!(res["status"], "FAIL");
    assert_eq!(k["Totals"]["total_fail"], 3);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let n = worker();
    let root = n.root().to_str().unwrap();
    for (args, needle) in [
        (vec!["cis", "run", "--root", root], "pass --benchmark"),
        (
            vec![
                "cis",
                "run",
                "--root",
                "/nonexistent/x",
                "--benchmark",
                "cis-1.12",
            ],
            "--root is not a directory",
        ),
        (
            vec![
                "cis",
                "run",
                "--root",
                root,
                "--benchmark",
                "cis-1.12",
                "--targets",
                "bogus",
            ],
            "unknown target",
        ),
        (
            vec!["cis", "run", "--root", root, "--benchmark", "cis-7"],
            "unknown benchmark",
        ),
        (
            vec!["psa", "check", "-f", "/dev/null", "-o", "kube-bench-json"],
            "only available for `cis run`",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = text(&o.stderr);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn kube_bench_json_maps_our_extra_states_with_reasons() {
    let n = worker();
    n.file("/var/lib/kubelet/config.yaml", "authentication: [\n", 0o600);
    let root = n.root().to_str().unwrap();
    let o = run(&[
        "cis",
        "run",
        "--root",
        root,
        "--benchmark",
        "cis-1.12",
        "-o",
        "kube-bench-json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("could not be evaluated (ERROR)"));
    let k: Value = serde_json::from_slice(&o.stdout).unwrap();
    let find = |id: &str| -> Value {
        k["Controls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["tests"].as_array().cloned().unwrap_or_default())
            .flat_map(|g| g["results"].as_array().cloned().unwrap_or_default())
            .find(|r| r["test_number"] == id)
            .unwrap()
    };
    let na = find("1.1.1");
    assert_eq!(na["status"], "INFO");
    assert_eq!(
        na["reason"],
        "not applicable: kube-apiserver is not running on this node"
    );
    let err = find("4.2.1");
    assert_eq!(err["status"], "WARN");
    assert!(
        err["reason"]
            .as_str()
            .unwrap()
            .starts_with("could not evaluate: /var/lib/kubelet/config.yaml: invalid YAML"),
        "{err}"
    );
}
