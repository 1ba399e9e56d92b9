//! Helpers shared by integration tests and benchmarks.
pub mod cis_node;
pub mod rules_cases;
