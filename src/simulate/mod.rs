//! Attack simulation. For now the actions themselves ([`actions`]): small, safe, Rust-only
//! implementations of the system-call patterns the detection rules look for, run by the
//! sensor's end-to-end tests through the hidden `kubectl-secmon __action NAME` command.
//! The scenario catalogue and `simulate` command build on them.

pub mod actions;
