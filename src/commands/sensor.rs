//! `kubectl-secmon sensor`: the node agent. Parses its flags into
//! [`crate::sensor::run::SensorOptions`] and hands over; everything else lives in
//! `src/sensor/`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::rules::Priority;

#[derive(Debug, Args)]
pub struct SensorArgs {
    /// Rules files or directories to load after the embedded default ruleset (repeatable)
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load the embedded default ruleset: --rules replaces it
    #[arg(long)]
    pub no_default_rules: bool,
    /// Minimum priority of the rules that run (Falco's `priority:`)
    #[arg(long, value_name = "PRIORITY", default_value = "debug", value_parser = parse_priority)]
    pub priority: Priority,
    /// Serve /metrics, /healthz and /alerts here ("off" to disable; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = crate::sensor::http::DEFAULT_ADDR)]
    pub metrics_addr: String,
    /// This node's name: enables pod metadata from a watch of the node's pods (in-cluster)
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// The hostname alerts carry (default: the node name, else the system hostname)
    #[arg(long, value_name = "NAME", env = "FALCO_HOSTNAME")]
    pub hostname: Option<String>,
    /// Also write alerts to this file (JSON lines, rotated by size)
    #[arg(long, value_name = "PATH")]
    pub alerts_file: Option<PathBuf>,
    /// Rotate the alerts file at this size, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 100)]
    pub alerts_file_max_mib: u64,
    /// Rotated alerts files to keep
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub alerts_file_keep: usize,
    /// POST every alert to this URL (falcosidekick-compatible JSON)
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Trust this CA bundle (PEM) for an https --webhook instead of the system roots
    #[arg(long, value_name = "PATH", requires = "webhook")]
    pub webhook_ca: Option<PathBuf>,
    /// Ship alerts to Elasticsearch or OpenSearch at this URL (_bulk into a data stream, ECS
    /// documents; credentials from SECMON_ES_API_KEY or SECMON_ES_USERNAME/SECMON_ES_PASSWORD)
    #[arg(long, value_name = "URL")]
    pub elasticsearch: Option<String>,
    /// The data stream --elasticsearch writes to (see `emit es-template`)
    #[arg(long, value_name = "NAME", default_value = crate::emit::es::DEFAULT_DATA_STREAM, requires = "elasticsearch")]
    pub elasticsearch_data_stream: String,
    /// Trust this CA bundle (PEM) for an https --elasticsearch
    #[arg(long, value_name = "PATH", requires = "elasticsearch")]
    pub elasticsearch_ca: Option<PathBuf>,
    /// API key for --elasticsearch (the `encoded` form); prefer the environment variable,
    /// which `ps` does not show. Basic auth: SECMON_ES_USERNAME, SECMON_ES_PASSWORD
    #[arg(
        long,
        value_name = "KEY",
        env = "SECMON_ES_API_KEY",
        hide_env_values = true
    )]
    pub elasticsearch_api_key: Option<String>,
    /// Where --elasticsearch keeps alerts the store has not taken yet (survives restarts)
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/kubectl-secmon/spool/elasticsearch",
        requires = "elasticsearch"
    )]
    pub elasticsearch_spool_dir: PathBuf,
    /// Bound of that spool in MiB; alerts beyond it are dropped and counted
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 256,
        requires = "elasticsearch"
    )]
    pub elasticsearch_spool_max_mib: u64,
    /// Send a bulk request at this many KiB of documents, or after --elasticsearch-flush-ms
    #[arg(
        long,
        value_name = "KIB",
        default_value_t = 1024,
        requires = "elasticsearch"
    )]
    pub elasticsearch_batch_kib: u64,
    /// Send a bulk request once its first alert has waited this long
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        requires = "elasticsearch"
    )]
    pub elasticsearch_flush_ms: u64,
    /// Send bulk requests uncompressed (gzip otherwise)
    #[arg(long, requires = "elasticsearch")]
    pub elasticsearch_no_gzip: bool,
    /// Post alerts to this Alertmanager (its /api/v2/alerts), labelled for `emit alertmanager-config`'s routes
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// Trust this CA bundle (PEM) for an https --alertmanager
    #[arg(long, value_name = "PATH", requires = "alertmanager")]
    pub alertmanager_ca: Option<PathBuf>,
    /// Do not print alerts on stdout
    #[arg(long)]
    pub quiet: bool,
    /// Kernel ring buffer size in MiB (a power of two)
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub buffer_size_mib: u32,
    /// Drop file events under this path prefix in the kernel (repeatable, at most 8)
    #[arg(long, value_name = "PREFIX")]
    pub drop_path_prefix: Vec<String>,
    /// Do not resolve host names used with fd.sip.name in rules (only literal addresses match)
    #[arg(long)]
    pub no_resolve_hosts: bool,
    /// Load this eBPF object instead of the embedded one (built by scripts/build-bpf)
    #[arg(long, value_name = "PATH", env = "SECMON_BPF_OBJECT", hide = true)]
    pub bpf_object: Option<PathBuf>,
    /// The host's root filesystem inside the sensor's container (user names from its /etc)
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub host_root: PathBuf,
    /// Add this field to every alert's output_fields, as Falco's append_output extra_fields
    /// (repeatable), e.g. proc.env[SECMON_SIM_ID] for `simulate verify`
    #[arg(long = "append-output-field", value_name = "FIELD")]
    pub append_output_fields: Vec<String>,
    /// Stop after this many seconds (benchmarks, tests)
    #[arg(long, value_name = "SECONDS", hide = true)]
    pub duration: Option<u64>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).ok_or_else(|| {
        format!("unknown priority {s:?}: use emergency, alert, critical, error, warning, notice, informational or debug")
    })
}

pub fn run(_g: &GlobalArgs, args: SensorArgs) -> anyhow::Result<i32> {
    let metrics_addr = if args.metrics_addr == "off" {
        None
    } else {
        Some(args.metrics_addr.parse::<SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "--metrics-addr {:?}: {e}; use HOST:PORT such as 127.0.0.1:8765, or off",
                args.metrics_addr
            )
        })?)
    };
    // Sink URLs are checked here, before the kernel is touched (the sinks start later).
    for (flag, url) in [
        ("--webhook", &args.webhook),
        ("--elasticsearch", &args.elasticsearch),
        ("--alertmanager", &args.alertmanager),
    ] {
        if let Some(u) = url {
            crate::httpc::parse_url(u).map_err(|reason| {
                anyhow::anyhow!("{flag} {u:?}: {reason}; use http://HOST:PORT or https://HOST:PORT")
            })?;
        }
    }
    let ring_bytes = args
        .buffer_size_mib
        .checked_mul(1 << 20)
        .filter(|b| b.is_power_of_two())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--buffer-size-mib {}: use a power of two from 1 to 2048",
                args.buffer_size_mib
            )
        })?;
    let opts = crate::sensor::run::SensorOptions {
        rules: args.rules,
        default_rules: !args.no_default_rules,
        min_priority: args.priority,
        resolve_hosts: !args.no_resolve_hosts,
        metrics_addr,
        node_name: args.node_name,
        hostname: args.hostname,
        alerts_file: args.alerts_file.map(|p| {
            let mut f = crate::sensor::sinks::FileConfig::new(p);
            f.max_bytes = args.alerts_file_max_mib.saturating_mul(1 << 20);
            f.keep = args.alerts_file_keep;
            f
        }),
        webhook: args.webhook.map(|url| {
            let mut w = crate::sensor::sinks::WebhookConfig::new(url);
            w.ca_file = args.webhook_ca;
            w
        }),
        elasticsearch: args.elasticsearch.map(|url| {
            let mut e =
                crate::sensor::elasticsearch::EsConfig::new(url, args.elasticsearch_spool_dir);
            e.data_stream = args.elasticsearch_data_stream;
            e.auth = match args.elasticsearch_api_key.filter(|k| !k.is_empty()) {
                Some(k) => crate::httpc::Auth::ApiKey(k),
                None => crate::httpc::Auth::from_env(),
            };
            e.ca_file = args.elasticsearch_ca;
            e.spool_max_bytes = args.elasticsearch_spool_max_mib.saturating_mul(1 << 20);
            e.batch_bytes = args.elasticsearch_batch_kib.saturating_mul(1 << 10).max(1);
            e.flush_interval = std::time::Duration::from_millis(args.elasticsearch_flush_ms);
            e.gzip = !args.elasticsearch_no_gzip;
            e
        }),
        alertmanager: args.alertmanager.map(|url| {
            let mut a = crate::sensor::alertmanager::AmConfig::new(url);
            a.ca_file = args.alertmanager_ca;
            a
        }),
        stdout: !args.quiet,
        ring_bytes,
        drop_prefixes: args.drop_path_prefix,
        bpf_object: args.bpf_object,
        duration: args.duration.map(std::time::Duration::from_secs),
        host_root: args.host_root,
        append_output_fields: args.append_output_fields,
    };
    crate::sensor::run::run(opts)
}
