//! The sensor's run loop: check the host, load the rules, attach the probes the rules need,
//! then move records one way — ring buffer → decoder → enricher (process table, container,
//! pod) → rules → alerts → sinks — until SIGTERM or SIGINT, and flush on the way out.
//!
//! Threads: one pipeline thread owns the probes, the enricher and the ruleset (no locks on
//! the event path); a small tokio runtime runs the HTTP server, the sinks' network I/O, the
//! pod watch and the signal handlers. The pipeline never waits on a sink: sinks queue with
//! bounds and count what they drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use super::alertmanager::AmConfig;
use super::elasticsearch::EsConfig;
use super::sinks::{FileConfig, WebhookConfig};
use crate::rules::Priority;

/// Everything `kubectl-secmon sensor` can be told.
#[derive(Debug, Clone)]
pub struct SensorOptions {
    pub rules: Vec<PathBuf>,
    pub default_rules: bool,
    pub min_priority: Priority,
    pub resolve_hosts: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub alerts_file: Option<FileConfig>,
    pub webhook: Option<WebhookConfig>,
    pub elasticsearch: Option<EsConfig>,
    pub alertmanager: Option<AmConfig>,
    pub stdout: bool,
    pub ring_bytes: u32,
    pub drop_prefixes: Vec<String>,
    pub bpf_object: Option<PathBuf>,
    pub duration: Option<Duration>,
    /// The host's root filesystem as mounted in the sensor's (`/` on the host itself):
    /// user and group names come from its `etc/passwd` and `etc/group`.
    pub host_root: PathBuf,
    /// Fields added to every alert's `output_fields` (Falco's `append_output`
    /// `extra_fields`), e.g. `proc.env[SECMON_SIM_ID]`.
    pub append_output_fields: Vec<String>,
}

/// The host's name for alerts: the flag, else the node name, else the kernel's.
fn hostname(opts: &SensorOptions) -> String {
    opts.hostname
        .clone()
        .or_else(|| opts.node_name.clone())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// Load the rules the sensor runs: the embedded defaults unless replaced, then the files.
pub fn load_rules(
    opts: &SensorOptions,
) -> anyhow::Result<(crate::rules::Ruleset, Vec<crate::rules::Diagnostic>)> {
    let mut sources = if opts.default_rules {
        crate::rules::default_ruleset_sources()
    } else {
        Vec::new()
    };
    sources.extend(crate::rules::read_rule_files(&opts.rules).map_err(anyhow::Error::msg)?);
    if sources.is_empty() {
        anyhow::bail!("no rules to run: --no-default-rules needs --rules FILE");
    }
    let options = crate::rules::LoadOptions {
        rule_matching: crate::rules::RuleMatching::First,
        min_priority: opts.min_priority,
        resolver: if opts.resolve_hosts {
            crate::rules::HostResolver::System
        } else {
            crate::rules::HostResolver::Disabled
        },
    };
    Ok(crate::rules::load_files(&sources, &options)?)
}

#[cfg(not(target_os = "linux"))]
pub fn run(_opts: SensorOptions) -> anyhow::Result<i32> {
    anyhow::bail!(
        "the sensor runs on Linux only (eBPF); use `kubectl secmon install` to run it on your nodes"
    )
}

#[cfg(target_os = "linux")]
pub fn run(opts: SensorOptions) -> anyhow::Result<i32> {
    linux::run(opts)
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    use std::collections::BTreeSet;
    use std::time::Instant;

    use crate::bpf::abi::{self, CATEGORIES};
    use crate::bpf::loader::{KernelCounters, ProbeConfig, Probes};
    use crate::rules::{Matches, Ruleset};
    use crate::sensor::alert::{Alert, DropAlerts, DropCounts};
    use crate::sensor::enrich::{Enricher, EnricherConfig};
    use crate::sensor::http::{AlertHub, ServerState};
    use crate::sensor::pods::PodCache;
    use crate::sensor::sinks::{SinkConfig, Sinks};
    use crate::sensor::stats::SensorStats;
    use crate::sensor::{pods, prereq};

    /// Wake the reader once this much is pending; a 10 ms timer drains the rest.
    const WAKEUP_BYTES: u64 = 64 * 1024;
    const POLL: Duration = Duration::from_millis(10);
    /// How long the sinks get to deliver what they hold at shutdown (Kubernetes' default
    /// grace period is 30 s); the Elasticsearch spool keeps the rest on disk.
    const SHUTDOWN: Duration = Duration::from_secs(5);

    pub fn run(opts: SensorOptions) -> anyhow::Result<i32> {
        // Rules first: a bad rules file is the commonest mistake and needs no privileges.
        let (ruleset, diagnostics) = load_rules(&opts)?;
        let extra_fields = crate::rules::ExtraFields::compile(&opts.append_output_fields)
            .map_err(|e| anyhow::anyhow!("--append-output-field: {e}"))?;
        let tracefs = prereq::check().map_err(anyhow::Error::msg)?;
        for d in diagnostics
            .iter()
            .filter(|d| d.severity == crate::rules::Severity::Warning)
        {
            eprintln!("warning: {d}");
        }
        let types: BTreeSet<_> = ruleset.event_types().into_iter().collect();
        let syscalls: BTreeSet<u16> = abi::SYSCALLS
            .iter()
            .filter(|s| types.contains(&s.2))
            .map(|s| s.0)
            .collect();
        let host = hostname(&opts);
        let node = opts.node_name.clone().unwrap_or_else(|| host.clone());
        let stats = Arc::new(SensorStats::default());
        stats.set_rules_loaded(ruleset.active_count() as u64);

        let n_syscalls = syscalls.len();
        let probes = Probes::load(&ProbeConfig {
            ring_bytes: opts.ring_bytes,
            wakeup_bytes: WAKEUP_BYTES.min(opts.ring_bytes as u64 / 4),
            drop_prefixes: opts.drop_prefixes.clone(),
            syscalls,
            self_pid: std::process::id(),
            object: opts.bpf_object.clone(),
            tracefs,
        })?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("secmon-io")
            .build()
            .context("cannot start the I/O runtime")?;
        let stop = Arc::new(AtomicBool::new(false));
        let healthy = Arc::new(AtomicBool::new(false));
        let hub = AlertHub::default();

        let (sinks, metrics_addr, server) = runtime.block_on(async {
            let sinks = Sinks::start(
                SinkConfig {
                    stdout: opts.stdout,
                    file: opts.alerts_file.clone(),
                    webhook: opts.webhook.clone(),
                    elasticsearch: opts.elasticsearch.clone(),
                    alertmanager: opts.alertmanager.clone(),
                    hub: opts.metrics_addr.map(|_| hub.clone()),
                },
                stats.clone(),
            )?;
            let mut bound = None;
            let mut server = None;
            if let Some(addr) = opts.metrics_addr {
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!(
                        "--metrics-addr {addr}: cannot listen: {e}; pick a free port or use off"
                    )
                })?;
                bound = listener.local_addr().ok();
                let state = ServerState {
                    stats: stats.clone(),
                    alerts: hub.clone(),
                    healthy: healthy.clone(),
                    node: node.clone(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                };
                let stop = stop.clone();
                server = Some(tokio::spawn(crate::sensor::http::serve_on(
                    listener,
                    state,
                    async move {
                        while !stop.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                )));
            }
            anyhow::Ok((sinks, bound, server))
        })?;

        let pod_cache = PodCache::default();
        if let Some(node_name) = opts.node_name.clone() {
            let cache = pod_cache.clone();
            runtime.spawn(async move {
                match kube::Client::try_default().await {
                    Ok(client) => pods::watch_node_pods(client, node_name, cache).await,
                    Err(e) => eprintln!(
                        "warning: no pod metadata (cannot reach the API server: {e}); alerts carry container and pod ids only"
                    ),
                }
            });
        }

        {
            let stop = stop.clone();
            runtime.spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
                stop.store(true, Ordering::Relaxed);
            });
        }
        if let Some(d) = opts.duration {
            let stop = stop.clone();
            runtime.spawn(async move {
                tokio::time::sleep(d).await;
                stop.store(true, Ordering::Relaxed);
            });
        }

        let mut enricher = Enricher::new(
            EnricherConfig {
                hostname: host.clone(),
                etc_root: opts.host_root.join("etc"),
                ..EnricherConfig::default()
            },
            opts.node_name.is_some().then_some(pod_cache),
        );
        let seeded = enricher.seed();
        stats.set_process_table_size(seeded as u64);
        let attached = probes.attached.len();
        let traced = n_syscalls;
        healthy.store(true, Ordering::Relaxed);
        match metrics_addr {
            Some(a) => eprintln!(
                "secmon sensor ready: {traced} syscalls and process lifecycle traced ({attached} programs), {} rules, {seeded} processes; metrics on http://{a}/metrics",
                ruleset.active_count()
            ),
            None => eprintln!(
                "secmon sensor ready: {traced} syscalls and process lifecycle traced ({attached} programs), {} rules, {seeded} processes",
                ruleset.active_count()
            ),
        }

        let pipeline = Pipeline {
            probes,
            enricher,
            ruleset,
            sinks: &sinks,
            stats: &stats,
            hostname: host,
            extra_fields,
            last: KernelCounters::default(),
            drop_alerts: DropAlerts::default(),
            decode_errors: 0,
        };
        let result = std::thread::scope(|s| {
            s.spawn(|| pipeline.run(&stop))
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the event pipeline crashed")))
        });
        healthy.store(false, Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            sinks.shutdown(SHUTDOWN).await;
            if let Some(server) = server {
                let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
            }
        });
        runtime.shutdown_timeout(Duration::from_millis(200));
        result?;
        Ok(crate::commands::exit::CLEAN)
    }

    struct Pipeline<'a> {
        probes: Probes,
        enricher: Enricher,
        ruleset: Ruleset,
        sinks: &'a Sinks,
        stats: &'a SensorStats,
        hostname: String,
        extra_fields: crate::rules::ExtraFields,
        last: KernelCounters,
        drop_alerts: DropAlerts,
        decode_errors: u64,
    }

    impl Pipeline<'_> {
        fn run(mut self, stop: &AtomicBool) -> anyhow::Result<()> {
            let mut matches = Matches::new();
            let mut next_tick = Instant::now() + Duration::from_secs(1);
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let Pipeline {
                    probes,
                    enricher,
                    ruleset,
                    sinks,
                    hostname,
                    extra_fields,
                    decode_errors,
                    ..
                } = &mut self;
                probes
                    .poll(if stopping { Duration::ZERO } else { POLL }, |bytes| {
                        let raw = match abi::decode(bytes) {
                            Ok(r) => r,
                            Err(_) => {
                                *decode_errors += 1;
                                return;
                            }
                        };
                        let Some(ev) = enricher.apply(&raw) else {
                            return;
                        };
                        if ruleset.matches(&ev, &mut matches) == 0 {
                            return;
                        }
                        for &id in matches.ids() {
                            // sinks.send counts the alert in the metrics too
                            if let Some(mut alert) = Alert::from_match(ruleset, id, &ev, hostname) {
                                if !extra_fields.is_empty() {
                                    alert.append_fields(extra_fields, &ev);
                                }
                                sinks.send(&alert);
                            }
                        }
                    })
                    .context("reading the kernel ring buffer")?;
                if stopping {
                    self.tick();
                    return Ok(());
                }
                if Instant::now() >= next_tick {
                    self.tick();
                    next_tick = Instant::now() + Duration::from_secs(1);
                }
            }
        }

        /// Once a second: kernel counters into the metrics, the drop alert, table size.
        fn tick(&mut self) {
            let now = self.probes.counters();
            let mut delta = DropCounts {
                ebpf_enabled: true,
                ..DropCounts::default()
            };
            for i in 0..CATEGORIES.len() {
                let produced = now.produced[i].saturating_sub(self.last.produced[i]);
                let lost = now.lost[i].saturating_sub(self.last.lost[i]);
                self.stats.add_events(i as u8, produced);
                self.stats.add_dropped(i as u8, lost);
                delta.n_drops_buffer[i] = lost;
                delta.n_evts += produced + lost;
                delta.n_drops += lost;
            }
            self.last = now;
            if self.decode_errors > 0 {
                self.stats.add_dropped(abi::CAT_OTHER, self.decode_errors);
                self.decode_errors = 0;
            }
            self.stats
                .set_process_table_size(self.enricher.table().len() as u64);
            let now_ns = crate::sensor::clock::now_ns();
            if delta.n_drops > 0 && self.drop_alerts.should_alert(now_ns, &delta) {
                let alert = Alert::syscall_event_drop(now_ns, &self.hostname, &delta);
                self.sinks.send(&alert);
            }
        }
    }
}
