//! Attack simulation: prove that the monitoring detects what it claims to, end to end.
//!
//! - [`catalogue`]: the scenarios, pure data: one for every default rule and for each of
//!   Falco's stable rules, with the rules each must trigger, its MITRE ATT&CK tactic and
//!   technique, and the context it needs.
//! - [`actions`]: the scenarios' system calls, in Rust (`kubectl-secmon __action NAME`).
//! - [`init`]: a scenario's first process (`__sim-init`): session, container namespaces and
//!   cgroups, pseudo-terminal, user.
//! - `runner` (Linux): temporary directories, stand-ins, kubelet-shaped cgroups, timeouts
//!   and clean-up: the I/O half.
//! - [`verify`]: pure: which alert belongs to which run (container id, correlation id in the
//!   environment, on the command line or in paths), and each scenario's verdict.
//! - [`coverage`]: pure: detected/run, rules covered, the ATT&CK for Containers matrix.
//! - `session` (Linux): a whole run or verification (the alert reader alongside the
//!   scenarios, the wait for their alerts, Ctrl-C) and the load mode's driver.
//! - [`cluster`]: pure: `--in-cluster`'s plan (which Job pod runs which scenarios on
//!   which node, with which capabilities), the Jobs, and reading results from pod logs.
//! - [`incluster`]: `--in-cluster`'s API calls: namespace, Jobs, waiting, the node
//!   sensors' alerts, clean-up.
//! - [`load`]: load mode, scenarios repeated at a rate while the sensor's `/metrics` are
//!   sampled.
//!
//! `kubectl secmon simulate list|run|verify` (`commands::simulate`) drives them and hands
//! the results to `report::simulate`.

pub mod actions;
pub mod catalogue;
pub mod cluster;
pub mod coverage;
pub mod incluster;
pub mod init;
pub mod load;
#[cfg(target_os = "linux")]
pub mod runner;
#[cfg(target_os = "linux")]
pub mod session;
pub mod verify;

/// A fresh run id: 12 random hex digits.
pub fn new_run_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 6];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        let n = crate::sensor::clock::now_ns() ^ (u64::from(std::process::id()) << 32);
        b.copy_from_slice(&n.to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
