//! `kubectl-secmon sensor` refuses bad flags and bad rules with one line and exit code 2,
//! before touching the kernel.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    (out.status.code().unwrap_or(-1), stderr)
}

fn assert_one_line_error(args: &[&str], needle: &str) {
    let (code, stderr) = run(args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
}

#[test]
fn bad_flags_and_rules_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "- rule: broken\n  condition: evt.type = \n").expect("write");
    let missing = dir.path().join("missing.yaml");
    assert_one_line_error(&["sensor", "--metrics-addr", "nowhere"], "--metrics-addr");
    assert_one_line_error(&["sensor", "--buffer-size-mib", "3"], "power of two");
    assert_one_line_error(
        &["sensor", "--no-default-rules"],
        "--no-default-rules needs --rules",
    );
    assert_one_line_error(
        &["sensor", "--rules", bad.to_str().expect("utf-8")],
        "bad.yaml",
    );
    assert_one_line_error(
        &["sensor", "--rules", missing.to_str().expect("utf-8")],
        "missing.yaml",
    );
    assert_one_line_error(
        &["sensor", "--elasticsearch", "ftp://es:9200"],
        "--elasticsearch",
    );
    assert_one_line_error(&["sensor", "--alertmanager", "not a url"], "--alertmanager");
    assert_one_line_error(&["sensor", "--webhook", "http:///x"], "--webhook");
    assert_one_line_error(
        &["sensor", "--append-output-field", "proc.nope"],
        "--append-output-field: unknown field \"proc.nope\"",
    );
    // clap's own usage errors end with its "For more information" hint
    let (code, stderr) = run(&["sensor", "--priority", "loud"]);
    assert_eq!(code, 2);
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|l| l.contains("unknown priority")),
        "{stderr}"
    );
}

#[test]
fn actions_report_unknown_names() {
    assert_one_line_error(&["__action", "nope"], "unknown action");
}
