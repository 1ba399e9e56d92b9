//! The node sensor. Its event pipeline (probes, decoding, process table, enrichment, sinks)
//! lands with the sensor issue; what is here now is its contract with the outside world:
//! the Prometheus metric names in [`metrics`], which the generated monitoring configuration
//! (`src/emit/`) queries and which the sensor's `/metrics` sink must expose unchanged.
//!
//! What the sensor emits: [`alert`] (Falco's JSON alert format and the drop alert),
//! [`stats`] (counters and their Prometheus exposition), [`sinks`] (stdout, rotated files,
//! webhooks) and [`http`] (`/metrics`, `/healthz`, `/alerts`).

pub mod alert;
pub mod http;
pub mod metrics;
pub mod sinks;
pub mod stats;
