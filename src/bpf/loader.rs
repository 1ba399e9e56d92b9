//! Loading and attaching the sensor's eBPF programs with aya, reading their ring buffer and
//! their per-category counters. Linux only.
//!
//! The object is `sensor.bpf.o`, embedded at build time (so `cargo build` needs no clang);
//! `SECMON_BPF_OBJECT=PATH` (or [`ProbeConfig::object`]) loads another build of the same
//! source instead, which is how CI tests the object it has just rebuilt.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};

use super::abi::{self, CATEGORIES};

/// The object built by `scripts/build-bpf`, 8-byte aligned for the ELF parser.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!("sensor.bpf.o"));

/// Most path prefixes the kernel can drop (`drop_prefix` in the C source).
pub const MAX_DROP_PREFIXES: usize = 8;
/// Syscall numbers the kernel's `want_syscall` table covers.
const MAX_NR: usize = 512;
/// Longest path prefix the kernel can drop, in bytes.
pub const MAX_DROP_PREFIX_LEN: usize = 63;

/// How to load the probes.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Ring buffer size in bytes (a power of two, at least one page).
    pub ring_bytes: u32,
    /// Wake the reader only when this many bytes are pending (0: on every record).
    pub wakeup_bytes: u64,
    /// File events whose path starts with one of these never leave the kernel.
    pub drop_prefixes: Vec<String>,
    /// Syscall numbers to attach (`abi::SYSCALLS`); process lifecycle is always attached.
    pub syscalls: BTreeSet<u16>,
    /// The process whose events the kernel drops (the sensor itself).
    pub self_pid: u32,
    /// Load this object file instead of the embedded one.
    pub object: Option<PathBuf>,
    /// Where tracefs is mounted (checked by `sensor::prereq`; aya finds tracepoint ids in
    /// it when attaching the sched programs).
    pub tracefs: PathBuf,
}

/// What went wrong while loading; `Display` is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot read the eBPF object {0}: {1}")]
    Object(PathBuf, std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error(
        "the kernel refused the eBPF object: {0} (needs BTF, BPF ring buffers and kernel 5.15 or newer)"
    )]
    Load(String),
    #[error("cannot attach {what}: {why}")]
    Attach { what: String, why: String },
    #[error("eBPF map {0} missing from the object")]
    Map(&'static str),
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s.replace('\n', " ")
}

/// Kernel-side counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Records written to the ring buffer, per category (`abi::CATEGORIES`).
    pub produced: [u64; CATEGORIES.len()],
    /// Records lost because the ring buffer was full, per category.
    pub lost: [u64; CATEGORIES.len()],
    /// File events dropped on purpose by the path-prefix filter.
    pub prefix_dropped: u64,
}

impl KernelCounters {
    pub fn total_produced(&self) -> u64 {
        self.produced.iter().sum()
    }
    pub fn total_lost(&self) -> u64 {
        self.lost.iter().sum()
    }
}

/// The loaded and attached probes.
pub struct Probes {
    _bpf: Ebpf,
    ring: RingBuf<MapData>,
    stats: PerCpuArray<MapData, u64>,
    /// Tracepoints attached, as `category/name`.
    pub attached: Vec<String>,
}

impl Probes {
    /// Load the object, relocate it against the kernel's BTF and attach the programs.
    pub fn load(cfg: &ProbeConfig) -> Result<Probes, ProbeError> {
        let file;
        let object: &[u8] = match &cfg.object {
            Some(p) => {
                file = std::fs::read(p).map_err(|e| ProbeError::Object(p.clone(), e))?;
                &file
            }
            None => &OBJECT.0,
        };
        if cfg.drop_prefixes.len() > MAX_DROP_PREFIXES {
            return Err(ProbeError::Config(format!(
                "at most {MAX_DROP_PREFIXES} --drop-path-prefix values are supported, got {}",
                cfg.drop_prefixes.len()
            )));
        }
        let mut prefixes = [[0u8; 64]; MAX_DROP_PREFIXES];
        let mut prefix_lens = [0u32; MAX_DROP_PREFIXES];
        for (i, p) in cfg.drop_prefixes.iter().enumerate() {
            let b = p.as_bytes();
            if b.is_empty() || b.len() > MAX_DROP_PREFIX_LEN || b.contains(&0) {
                return Err(ProbeError::Config(format!(
                    "--drop-path-prefix {p:?}: must be 1 to {MAX_DROP_PREFIX_LEN} bytes"
                )));
            }
            prefixes[i][..b.len()].copy_from_slice(b);
            prefix_lens[i] = b.len() as u32;
        }
        if !cfg.ring_bytes.is_power_of_two() || cfg.ring_bytes < 4096 {
            return Err(ProbeError::Config(format!(
                "--buffer-size {}: must be a power of two of at least 4096 bytes",
                cfg.ring_bytes
            )));
        }
        let mut want = [0u8; MAX_NR];
        for &n in &cfg.syscalls {
            if let Some(w) = want.get_mut(n as usize) {
                *w = 1;
            }
        }
        let mut loader = EbpfLoader::new();
        loader
            .override_global("want_syscall", &want, true)
            .override_global("sensor_tgid", &cfg.self_pid, true)
            .override_global("wakeup_bytes", &cfg.wakeup_bytes, true)
            .override_global("drop_prefix", &prefixes, true)
            .override_global("drop_prefix_len", &prefix_lens, true)
            .map_max_entries("events", cfg.ring_bytes);
        let mut bpf = loader
            .load(object)
            .map_err(|e| ProbeError::Load(chain(&e)))?;

        let mut attached = Vec::new();
        let attach_err = |what: &str, e: &dyn std::error::Error| ProbeError::Attach {
            what: what.to_string(),
            why: chain(e),
        };

        // Process lifecycle: always.
        for (prog, cat, name) in [
            ("sched_exec", "sched", "sched_process_exec"),
            ("sched_exit", "sched", "sched_process_exit"),
        ] {
            let p: &mut TracePoint = program(&mut bpf, prog)?;
            p.load().map_err(|e| attach_err(prog, &e))?;
            p.attach(cat, name).map_err(|e| attach_err(name, &e))?;
            attached.push(format!("{cat}/{name}"));
        }
        let btf = Btf::from_sys_fs().map_err(|e| ProbeError::Load(chain(&e)))?;
        let fork: &mut BtfTracePoint = program(&mut bpf, "sched_fork")?;
        fork.load("sched_process_fork", &btf)
            .map_err(|e| attach_err("sched_fork", &e))?;
        fork.attach()
            .map_err(|e| attach_err("sched_process_fork", &e))?;
        attached.push("tp_btf/sched_process_fork".to_string());

        // Syscalls the rules need, at exit: one program on the raw sys_exit tracepoint,
        // filtered by the `want_syscall` table set before load.
        let wanted: Vec<&(u16, &str, crate::rules::EventType, u8)> = abi::SYSCALLS
            .iter()
            .filter(|s| cfg.syscalls.contains(&s.0))
            .collect();
        if !wanted.is_empty() {
            let p: &mut BtfTracePoint = program(&mut bpf, "sys_exit_btf")?;
            p.load("sys_exit", &btf)
                .map_err(|e| attach_err("sys_exit_btf", &e))?;
            p.attach().map_err(|e| attach_err("tp_btf/sys_exit", &e))?;
            let names: Vec<&str> = wanted.iter().map(|s| s.1).collect();
            attached.push(format!("tp_btf/sys_exit ({})", names.join(", ")));
        }

        let ring = RingBuf::try_from(bpf.take_map("events").ok_or(ProbeError::Map("events"))?)
            .map_err(|e| ProbeError::Load(chain(&e)))?;
        let stats = PerCpuArray::try_from(bpf.take_map("stats").ok_or(ProbeError::Map("stats"))?)
            .map_err(|e| ProbeError::Load(chain(&e)))?;
        Ok(Probes {
            _bpf: bpf,
            ring,
            stats,
            attached,
        })
    }

    /// Wait up to `timeout` for records, then hand every pending record to `f`. Returns
    /// how many records were read.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(&[u8])) -> std::io::Result<usize> {
        let mut pfd = libc::pollfd {
            fd: self.ring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        Ok(n)
    }

    /// The kernel's counters, summed over CPUs.
    pub fn counters(&self) -> KernelCounters {
        let mut c = KernelCounters::default();
        let sum = |i: u32| -> u64 {
            self.stats
                .get(&i, 0)
                .map(|v| v.iter().copied().sum())
                .unwrap_or(0)
        };
        for i in 0..CATEGORIES.len() {
            c.produced[i] = sum(2 * i as u32);
            c.lost[i] = sum(2 * i as u32 + 1);
        }
        c.prefix_dropped = sum(2 * CATEGORIES.len() as u32);
        c
    }
}

fn program<'a, T>(bpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = bpf
        .program_mut(name)
        .ok_or_else(|| ProbeError::Load(format!("program {name} missing from the object")))?;
    p.try_into()
        .map_err(|e: aya::programs::ProgramError| ProbeError::Load(chain(&e)))
}
