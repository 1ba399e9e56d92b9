//! The node sensor. Its event pipeline (probes, decoding, process table, enrichment, sinks)
//! lands with the sensor issue; what is here now is its contract with the outside world:
//! the Prometheus metric names in [`metrics`], which the generated monitoring configuration
//! (`src/emit/`) queries and which the sensor's `/metrics` sink must expose unchanged.
//!
//! The enrichment layer is here: [`enrich`] turns decoded records into rules-engine events
//! with the process table ([`proctable`]), container identity from cgroups ([`container`]),
//! pod metadata from the API server ([`pods`]) and boot-to-wall time ([`clock`]).

pub mod clock;
pub mod container;
pub mod enrich;
pub mod metrics;
pub mod pods;
pub mod prereq;
pub mod proctable;
