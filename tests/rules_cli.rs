//! `kubectl secmon rules validate|list|test` through the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn falco(file: &str) -> Option<String> {
    let p = root().join("../shared/conformance/falco-rules").join(file);
    if p.exists() {
        return Some(p.to_string_lossy().to_string());
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{} is required under CI",
        p.display()
    );
    eprintln!("SKIPPED LOUDLY: {} not found", p.display());
    None
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn validate_reports_counts_and_unsupported_rules() {
    let Some(stable) = falco("falco_rules.yaml") else {
        return;
    };
    let o = run(&[
        "rules",
        "validate",
        &stable,
        "-o",
        "json",
        "--fail-on",
        "never",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["counts"]["total"], 25);
    assert_eq!(v["counts"]["active"], 25);
    assert_eq!(v["counts"]["macros"], 87);
    assert_eq!(v["counts"]["lists"], 49);
    let Some(sandbox) = falco("falco-sandbox_rules.yaml") else {
        return;
    };
    let o = run(&["rules", "validate", &sandbox, "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "warnings are findings");
    let v = json(&o);
    let unsupported: Vec<&str> = v["unsupported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["rule"].as_str().unwrap())
        .collect();
    assert_eq!(unsupported.len(), 4, "{unsupported:?}");
    assert!(
        v["unsupported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["fields"][0] == "evt.buffer")
    );
}

#[test]
fn broken_rules_files_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: r\n  desc: d\n  condition: (evt.type = open\n  output: o\n  priority: WARNING\n",
    )
    .unwrap();
    let o = run(&["rules", "validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: {}:", bad.display())),
        "{err}"
    );
    let o = run(&["rules", "validate", "no/such.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such.yaml"));
}

#[test]
fn list_shows_the_default_ruleset_with_mitre_mappings() {
    let o = run(&["rules", "list", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let rules = v["rules"].as_array().unwrap();
    assert!(rules.len() >= 25);
    for r in rules {
        assert_eq!(r["status"], "active", "{}", r["name"]);
        assert!(
            !r["mitre"]["tactics"].as_array().unwrap().is_empty(),
            "{}",
            r["name"]
        );
        assert!(
            !r["mitre"]["techniques"].as_array().unwrap().is_empty(),
            "{}",
            r["name"]
        );
    }
    let t = String::from_utf8(run(&["rules", "list"]).stdout).unwrap();
    assert!(t.contains("Interactive shell in container") && t.contains("T1059"));
}

#[test]
fn test_replays_recorded_events() {
    let o = run(&[
        "rules",
        "test",
        "--events",
        "examples/events/sample.jsonl",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["events"], 16);
    let firings = v["firings"].as_array().unwrap();
    let shell = firings
        .iter()
        .find(|f| f["rule"] == "Interactive shell in container")
        .unwrap();
    assert_eq!(shell["event"], 4, "the event's line in the file");
    assert_eq!(shell["priority"], "Notice");
    assert!(
        shell["output"]
            .as_str()
            .unwrap()
            .starts_with("Interactive shell opened in a container")
    );
    assert!(shell["outputFields"]["proc.name"].is_string());
    // Near misses (every other line) never fire.
    assert!(
        firings
            .iter()
            .all(|f| f["event"].as_u64().unwrap() % 2 == 0),
        "{firings:?}"
    );
    // --fail-on critical: only the kernel module load is critical.
    let o = run(&[
        "rules",
        "test",
        "--events",
        "examples/events/sample.jsonl",
        "--fail-on",
        "critical",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[
        "rules",
        "test",
        "--events",
        "examples/events/sample.jsonl",
        "--min-priority",
        "error",
        "-o",
        "json",
    ]);
    let v = json(&o);
    assert!(
        v["firings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["priority"] == "Critical" || f["priority"] == "Error")
    );
}

#[test]
fn bad_events_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.jsonl");
    std::fs::write(&ev, "{\"type\":\"execve\"}\n{\"type\":\"nosuchcall\"}\n").unwrap();
    let o = run(&["rules", "test", "--events", ev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(&format!("error: {}:2", ev.display())),
        "{}",
        stderr(&o)
    );
    let o = run(&["rules", "test", "--events", "missing.jsonl"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.jsonl"));
}
