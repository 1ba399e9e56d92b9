//! Conformance: every upstream Pod Security fixture in ../shared/conformance/psa/testdata
//! is allowed (pass/) or denied (fail/) at its own level and version, and each denial's
//! message contains the substring upstream's harness expects for that check.

use std::path::{Path, PathBuf};

use secmon::manifest::{self, Limits};
use secmon::psa::{self, Policy, workload};

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/psa/testdata");
    if root.is_dir() {
        return Some(root);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "conformance corpus missing at {} (required under CI)",
            root.display()
        );
    }
    eprintln!(
        "SKIPPED LOUDLY: conformance corpus not found at {}",
        root.display()
    );
    None
}

/// The substring upstream's harness requires for a fixture file-name prefix.
fn expected_substring(file: &str) -> &'static str {
    let prefix = file
        .trim_end_matches(".yaml")
        .trim_end_matches(|c: char| c.is_ascii_digit());
    match prefix {
        "allowprivilegeescalation" => "allowPrivilegeEscalation",
        "apparmorprofile" => "forbidden AppArmor profile",
        "capabilities_baseline" => "capabilities",
        "capabilities_restricted" => "unrestricted capabilities",
        "hostnamespaces" => "host namespaces",
        "hostpathvolumes" => "hostPath",
        "hostports" => "hostPort",
        "hostprobesandhostlifecycle" => "probe or lifecycle host",
        "privileged" => "privileged",
        "procmount" | "procmount_restricted" => "procMount",
        "restrictedvolumes" => "restricted volume types",
        "runasnonroot" => "runAsNonRoot",
        "runasuser" => "runAsUser",
        "seccompprofile_baseline" | "seccompprofile_restricted" => "seccompProfile",
        "selinuxoptions" => "seLinuxOptions",
        "sysctls" => "forbidden sysctl",
        "windowshostprocess" => "hostProcess",
        other => panic!("unknown fixture prefix {other}"),
    }
}

#[test]
fn every_upstream_fixture_agrees() {
    let Some(root) = corpus() else { return };
    let (mut pass, mut fail, mut failures) = (0usize, 0usize, Vec::new());
    let mut levels: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    levels.sort();
    for level_dir in levels {
        let level = level_dir.file_name().unwrap().to_str().unwrap().to_string();
        for version_dir in std::fs::read_dir(&level_dir).unwrap() {
            let version_dir = version_dir.unwrap().path();
            let version = version_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let policy = Policy::parse(&level, &version).unwrap();
            for outcome in ["pass", "fail"] {
                let dir = version_dir.join(outcome);
                let (files, errors) = manifest::read_sources(
                    &[dir.to_string_lossy().to_string()],
                    &root,
                    Limits::default(),
                );
                assert!(errors.is_empty(), "{errors:?}");
                for file in files {
                    let (objects, errors) = manifest::objects(std::slice::from_ref(&file));
                    assert!(errors.is_empty(), "{}: {errors:?}", file.display);
                    assert_eq!(objects.len(), 1, "{}", file.display);
                    let t = workload::extract(workload::WorkloadKind::Pod, &objects[0].value)
                        .unwrap_or_else(|e| panic!("{}: {e}", file.display))
                        .unwrap();
                    let eval = psa::evaluate(&policy, &t.meta, &t.spec);
                    let message = eval.warning(&policy);
                    let name = Path::new(&file.display)
                        .file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string();
                    if outcome == "pass" {
                        pass += 1;
                        if !eval.allowed() {
                            failures.push(format!(
                                "{}: expected allowed, got: {message}",
                                file.display
                            ));
                        }
                    } else {
                        fail += 1;
                        let want = expected_substring(&name);
                        if eval.allowed() {
                            failures
                                .push(format!("{}: expected denied, was allowed", file.display));
                        } else if !message.contains(want) {
                            failures.push(format!(
                                "{}: message lacks {want:?}: {message}",
                                file.display
                            ));
                        } else if message.contains("unknown forbidden reason") {
                            failures.push(format!("{}: unknown forbidden reason", file.display));
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "PSA conformance: {pass} pass fixtures, {fail} fail fixtures, {} disagreements",
        failures.len()
    );
    assert_eq!(pass + fail, 4537, "the corpus has 4,537 fixtures");
    assert!(
        failures.is_empty(),
        "{} of 4537 fixtures disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
