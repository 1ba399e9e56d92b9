//! The node sensor. Its event pipeline (probes, decoding, process table, enrichment, sinks)
//! lands with the sensor issue; what is here now is its contract with the outside world:
//! the Prometheus metric names in [`metrics`], which the generated monitoring configuration
//! (`src/emit/`) queries and which the sensor's `/metrics` sink must expose unchanged.

pub mod metrics;
pub mod clock;
pub mod clock;
pub mod container;
pub mod pods;
pub mod proctable;
