//! kubectl-secmon: Kubernetes security monitoring in one kubectl plugin.
//!
//! The library holds everything; the binary only parses the command line and maps errors
//! to exit codes. Engines (`psa`, `rules`, the evaluation half of `cis`) are pure; `manifest` and `kube` do the reading
//! and the API calls (`deploy` is what `install` puts in a cluster, as pure functions);
//! `report` is the one output layer; `commands` glue them together per subcommand.

pub mod apply;
pub mod bpf;
pub mod cis;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod emit;
pub mod httpc;
pub mod kube;
pub mod manifest;
pub mod psa;
pub mod report;
pub mod rules;
pub mod selector;
pub mod sensor;
pub mod simulate;
