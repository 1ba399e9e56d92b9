//! The node sensor (`kubectl-secmon sensor`): records from the eBPF probes (`crate::bpf`)
//! flow one way through this module and out as Falco-format alerts.
//!
//! - [`run`]: the run loop and its threads; [`prereq`]: what the host must provide.
//! - Enrichment: [`enrich`] turns decoded records into rules-engine events with the process
//!   table ([`proctable`]), container identity from cgroups ([`container`]), pod metadata
//!   from the API server ([`pods`]) and boot-to-wall time ([`clock`]).
//! - Outputs: [`alert`] (Falco's JSON alert format and the drop alert), [`stats`] (counters
//!   and their Prometheus exposition), [`sinks`] (stdout, rotated files, webhooks,
//!   [`elasticsearch`] through the on-disk [`spool`], [`alertmanager`]) and [`http`]
//!   (`/metrics`, `/healthz`, `/alerts`); [`follow`] reads alerts back from a file or the
//!   `/alerts` stream.
//! - [`metrics`]: the metric names, a contract with the generated monitoring configuration
//!   (`src/emit/`).

pub mod alert;
pub mod alertmanager;
pub mod clock;
pub mod container;
pub mod elasticsearch;
pub mod enrich;
pub mod follow;
pub mod http;
pub mod metrics;
pub mod pods;
pub mod prereq;
pub mod proctable;
pub mod run;
pub mod sinks;
pub mod spool;
pub mod stats;
