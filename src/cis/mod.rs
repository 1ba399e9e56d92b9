//! CIS Kubernetes Benchmark on a node: shipped profiles ([`profile`]), node facts gathered
//! natively once per run ([`collect`], the only part that does I/O), and a pure
//! evaluation of checks over those facts ([`eval`]). kube-bench's own profiles load
//! through [`kubebench`] and run their shell audits in a compatibility mode.
//!
//! Facts are plain data ([`facts::NodeFacts`]) so that other collectors (static-pod
//! mirror pods through the API, a scan pod per node) can plug in later.

pub mod argv;
pub mod cluster;
pub mod collect;
pub mod eval;
pub mod facts;
pub mod kubebench;
pub mod mirror;
pub mod policies;
pub mod profile;
pub mod rbac;
pub mod scanpod;

/// Errors of the CIS engine, each one line for a person.
#[derive(Debug, thiserror::Error)]
pub enum CisError {
    #[error("{file}: {message}")]
    Profile { file: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Node { path: String, message: String },
}
