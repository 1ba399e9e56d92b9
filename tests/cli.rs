//! The CLI end to end through the real binary: exit codes, every output format, stdin,
//! output files, namespace-derived levels, fixes, completion and version.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubectl-secmon")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The result for the object called `name` in a JSON report.
fn result_named<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result named {name}"))
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn version_prints_the_package_version() {
    let o = run(&["version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(concat!("v", env!("CARGO_PKG_VERSION"))));
    let v = json(&run(&["version", "-o", "json"]));
    assert_eq!(v["version"], concat!("v", env!("CARGO_PKG_VERSION")));
    assert_eq!(v["podSecurityLatest"], "v1.37");
}

#[test]
fn findings_exit_1_clean_exits_0_and_fail_on_raises_the_bar() {
    assert_eq!(
        run(&["psa", "check", "-f", "examples/manifests/web.yaml"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&["psa", "check", "-f", "examples/manifests/hardened.yaml"])
            .status
            .code(),
        Some(0)
    );
    // web.yaml only breaks restricted-only checks (medium); node-agent breaks baseline (high).
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "--fail-on",
        "high",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/node-agent.yaml",
        "--fail-on",
        "high",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "--level",
        "baseline",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let o = run(&["psa", "check", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "--version",
        "1.30",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("must be \"latest\" or \"v1.x\""),
        "{}",
        stderr(&o)
    );
    // without -f, psa check audits the cluster: no kubeconfig is one line
    let o = run(&["--kubeconfig", "/nonexistent/kubeconfig", "psa", "check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: cannot read kubeconfig /nonexistent/kubeconfig"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);
    let o = run(&["psa", "check", "-f", "no/such/file.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "error: no/such/file.yaml: no such file or directory"
    );
    let o = run(&["psa", "check", "-f", "x", "--request-timeout", "5x"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn json_report_carries_verdict_violations_fix_and_the_upstream_message() {
    let o = run(&["psa", "check", "-f", "examples/manifests", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["apiVersion"], "secmon.dev/v1alpha1");
    assert_eq!(v["kind"], "PodSecurityReport");
    assert_eq!(v["summary"]["objects"], 5);
    assert_eq!(v["summary"]["violating"], 3);
    assert_eq!(v["summary"]["skipped"], 2);
    let web = result_named(&v, "web");
    assert_eq!(web["path"], "examples/manifests/web.yaml");
    assert_eq!(web["line"], 2);
    assert_eq!(web["kind"], "Deployment");
    assert_eq!(web["namespace"], "shop");
    assert_eq!(web["policy"], "restricted:latest");
    assert_eq!(web["allowed"], false);
    assert!(web["message"].as_str().unwrap().starts_with(
        "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), "
    ));
    let first = &web["violations"][0];
    assert_eq!(first["check"], "allowPrivilegeEscalation");
    assert_eq!(first["level"], "restricted");
    assert_eq!(first["severity"], "medium");
    assert_eq!(first["reason"], "allowPrivilegeEscalation != false");
    assert_eq!(
        first["fix"],
        "set securityContext.allowPrivilegeEscalation: false on container \"nginx\""
    );
}

#[test]
fn yaml_output_has_the_same_schema_as_json() {
    let j = json(&run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "-o",
        "json",
    ]));
    let y = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "-o",
        "yaml",
    ]);
    let y: Value = serde_saphyr::from_str(&stdout(&y)).unwrap();
    assert_eq!(j, y);
}

#[test]
fn sarif_is_what_github_code_scanning_accepts() {
    let o = run(&["psa", "check", "-f", "examples/manifests", "-o", "sarif"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "kubectl-secmon");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for r in rules {
        for key in ["shortDescription", "fullDescription", "help"] {
            assert!(!r[key]["text"].as_str().unwrap().is_empty(), "{key} of {r}");
        }
        assert!(
            r["properties"]["security-severity"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .is_ok()
        );
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 16);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        assert!(rules.iter().any(|x| x["id"] == id), "{id} has no rule");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("examples/manifests/") && !uri.starts_with('/'),
            "{uri}"
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(!r["partialFingerprints"].as_object().unwrap().is_empty());
    }
    let web = results
        .iter()
        .find(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == "examples/manifests/web.yaml"
        })
        .unwrap();
    assert_eq!(
        web["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    // Fingerprints are unique per finding and stable across runs.
    let fps: std::collections::HashSet<String> = results
        .iter()
        .map(|r| r["partialFingerprints"].to_string())
        .collect();
    assert_eq!(fps.len(), results.len());
    let again = json(&self::run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "-o",
        "sarif",
    ]));
    assert_eq!(again["runs"][0]["results"], run["results"]);
}

#[test]
fn junit_has_one_testcase_per_object_and_check() {
    let o = run(&["psa", "check", "-f", "examples/manifests", "-o", "junit"]);
    let x = stdout(&o);
    assert!(x.starts_with("<?xml"));
    // 5 evaluated objects x 15 restricted:latest checks.
    assert_eq!(x.matches("<testcase ").count(), 75);
    assert_eq!(x.matches("<failure ").count(), 16);
    assert!(x.contains(r#"<testsuite name="examples/manifests/web.yaml" tests="15" failures="4" errors="0" skipped="0">"#), "{x}");
    assert!(x.contains(
        r#"classname="Deployment/shop/web" name="restricted:latest allowPrivilegeEscalation""#
    ));
}

#[test]
fn table_lists_violations_with_fixes_and_a_summary() {
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "--no-color",
    ]);
    let t = stdout(&o);
    assert!(!t.contains('\u{1b}'), "no colour codes");
    assert!(t.contains("OBJECT") && t.contains("DETAIL / FIX"));
    assert!(
        t.contains("set securityContext.allowPrivilegeEscalation: false on container \"nginx\"")
    );
    assert!(
        t.trim_end()
            .ends_with("1 object checked: 0 allowed, 1 violating"),
        "{t}"
    );
    let wide = stdout(&run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "-o",
        "wide",
        "-v",
    ]));
    assert!(
        wide.contains("allowed")
            && wide.contains("Skipped:")
            && wide.contains("ConfigMap/monitoring/agent-config")
    );
}

#[test]
fn output_file_replaces_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.sarif");
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests/web.yaml",
        "-o",
        "sarif",
        "--output-file",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
}

#[test]
fn stdin_multi_document_and_lists() {
    let input = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: c, image: i}]}\n---\n# second\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  hostIPC: true\n  containers: [{name: c, image: i}]\n";
    let o = run_stdin(
        &[
            "psa", "check", "-f", "-", "--level", "baseline", "-o", "json",
        ],
        input,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["path"], "-");
    assert_eq!(results[0]["allowed"], true);
    assert_eq!(results[1]["line"], 10);
    assert_eq!(
        results[1]["message"],
        "would violate PodSecurity \"baseline:latest\": host namespaces (hostIPC=true)"
    );
}

#[test]
fn level_from_namespace_uses_the_labels_in_the_input() {
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "--level",
        "from-namespace",
        "-o",
        "json",
    ]);
    let v = json(&o);
    let agent = result_named(&v, "node-agent");
    assert_eq!(agent["policy"], "baseline:v1.33");
    assert_eq!(agent["policySource"], "namespace/monitoring");
    let web = result_named(&v, "web");
    assert_eq!(web["policy"], "privileged:latest");
    assert_eq!(web["policySource"], "default");
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "--level",
        "from-namespace",
        "--default-level",
        "restricted",
        "-o",
        "json",
    ]);
    let v = json(&o);
    let web = result_named(&v, "web");
    assert_eq!(web["policy"], "restricted:latest");
}

#[test]
fn fix_output_passes_the_check_and_keeps_untouched_documents_verbatim() {
    let o = run(&["psa", "fix", "-f", "examples/manifests/web.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fixed = stdout(&o);
    assert!(
        fixed.starts_with("# A typical web Deployment"),
        "leading comment kept: {fixed}"
    );
    let check = run_stdin(&["psa", "check", "-f", "-"], &fixed);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));

    // The hardened file is printed byte for byte; unfixable findings remain and exit 1.
    let o = run(&["psa", "fix", "-f", "examples/manifests/hardened.yaml"]);
    assert_eq!(
        stdout(&o),
        std::fs::read_to_string(root().join("examples/manifests/hardened.yaml")).unwrap()
    );
    let o = run(&["psa", "fix", "-f", "examples/manifests/node-agent.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("apiVersion: v1\nkind: ConfigMap"),
        "untouched document kept"
    );
    assert!(out.contains("allowPrivilegeEscalation: false"));
    let err = stderr(&o);
    assert!(
        err.contains("privileged") && err.contains("hostPath"),
        "{err}"
    );

    // --in-place rewrites only the changed files.
    let dir = tempfile::tempdir().unwrap();
    for f in ["web.yaml", "hardened.yaml"] {
        std::fs::copy(
            root().join("examples/manifests").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let before = std::fs::metadata(dir.path().join("hardened.yaml"))
        .unwrap()
        .modified()
        .unwrap();
    let o = run(&[
        "psa",
        "fix",
        "--in-place",
        "-f",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let after = std::fs::metadata(dir.path().join("hardened.yaml"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    let check = run(&["psa", "check", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0));
}

#[test]
fn completion_scripts_and_the_kubectl_helper() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completion", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("kubectl-secmon"), "{shell}");
    }
    let helper = Path::new(bin()).with_file_name("kubectl_complete-secmon");
    let o = Command::new(&helper).args(["psa", "ch"]).output().unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("check\t"), "{out}");
    assert_eq!(lines[1], ":4");
    let o = run(&["__complete", "psa", "check", "--level", ""]);
    let out = stdout(&o);
    assert!(
        out.contains("from-namespace") && out.ends_with(":4\n"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "completion",
        "install",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let shim = std::fs::read_to_string(dir.path().join("kubectl_complete-secmon")).unwrap();
    assert!(shim.contains("exec kubectl-secmon __complete \"$@\""));
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    // `script` gives the command a pseudo-terminal, as a user's shell would.
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "`script` (util-linux) is required under CI"
        );
        eprintln!("SKIPPED LOUDLY: `script` not found; colour on a terminal not tested");
        return;
    }
    let tty = |extra: &str, env: &str| {
        let cmd = format!(
            "{env} {} psa check -f examples/manifests/web.yaml {extra}",
            bin()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(root())
            .env_remove("NO_COLOR")
            .env("COLUMNS", "120")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert!(tty("", "").contains("\u{1b}["), "colour on a terminal");
    assert!(!tty("--no-color", "").contains("\u{1b}["));
    assert!(!tty("", "NO_COLOR=1").contains("\u{1b}["));
    // Piped output never has colour.
    assert!(
        !stdout(&run(&["psa", "check", "-f", "examples/manifests/web.yaml"])).contains('\u{1b}')
    );
}

#[test]
fn label_selector_filters_objects_like_kubectl() {
    let v = json(&run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "-l",
        "app=web",
        "-o",
        "json",
    ]));
    assert_eq!(v["summary"]["objects"], 1);
    assert_eq!(v["results"][0]["name"], "web");
    let v = json(&run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "-l",
        "app!=web",
        "-o",
        "json",
    ]));
    assert_eq!(v["summary"]["objects"], 4);
    let o = run(&[
        "psa",
        "check",
        "-f",
        "examples/manifests",
        "-l",
        "app in (web",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error: invalid label selector"),
        "{}",
        stderr(&o)
    );
}
