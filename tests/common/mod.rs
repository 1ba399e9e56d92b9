//! Helpers shared by integration tests and benchmarks.
pub mod cis_node;
#[cfg(target_os = "linux")]
pub mod kubelet;
pub mod rules_cases;
#[cfg(target_os = "linux")]
pub mod sensor;
pub mod servers;

/// A prerequisite is missing: fail under CI (`CI=true`), otherwise say so loudly and let
/// the caller skip.
#[allow(dead_code)]
pub fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI: {what}");
    }
    eprintln!("SKIPPED LOUDLY: {what}");
}
pub mod cluster;
