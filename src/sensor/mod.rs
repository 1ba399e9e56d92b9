//! The node sensor. Its event pipeline (probes, decoding, process table, enrichment, sinks)
//! lands with the sensor issue; what is here now is its contract with the outside world:
//! the Prometheus metric names in [`metrics`], which the generated monitoring configuration
//! (`src/emit/`) queries and which the sensor's `/metrics` sink must expose unchanged.
//!
//! What the sensor emits: [`alert`] (Falco's JSON alert format and the drop alert) and
//! [`stats`] (counters and their Prometheus exposition).

pub mod alert;
pub mod metrics;
pub mod stats;
