//! The kernel side of the node sensor and everything that touches it directly.
//!
//! - `sensor.bpf.c`: the eBPF programs (C, CO-RE), built with `scripts/build-bpf` into the
//!   committed `sensor.bpf.o`, so that `cargo build` needs neither clang nor nightly.
//! - [`abi`]: the record format the programs write into the ring buffer, and its decoder.
//! - `loader` (Linux only): loads the object with aya, attaches what the rules need, reads
//!   the ring buffer and the drop counters.

pub mod abi;
#[cfg(target_os = "linux")]
pub mod loader;
