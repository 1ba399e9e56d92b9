//! `kubectl secmon emit …`: print generated monitoring configuration (Prometheus rules, a
//! ServiceMonitor, an Alertmanager config, an audit policy, a Grafana dashboard,
//! Elasticsearch/OpenSearch templates and lifecycle policies) to stdout or `--output-file`;
//! `es-template --apply URL` PUTs its resources instead (`crate::apply`). The generators live in `crate::emit`; this file parses flags and
//! picks the serialization: each artifact's native format by default, or `-o json|yaml`.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::commands::{exit, write_text};
use crate::emit::{self, alertmanager, audit, es, grafana, prometheus};
use crate::report::{self, Format};
use crate::sensor::metrics as m;

#[derive(Debug, Args)]
pub struct EmitArgs {
    #[command(subcommand)]
    pub command: EmitCommand,
}

#[derive(Debug, Subcommand)]
pub enum EmitCommand {
    /// Prometheus alerting and recording rules over the sensor's metrics
    PrometheusRules(RulesArgs),
    /// A Prometheus Operator ServiceMonitor for the sensor's metrics Service
    Servicemonitor(ServiceMonitorArgs),
    /// An Alertmanager config routing critical alerts to paging and warnings to chat
    AlertmanagerConfig(AlertmanagerArgs),
    /// A Kubernetes audit policy (audit.k8s.io/v1) and the apiserver flags to enable it
    AuditPolicy,
    /// A Grafana dashboard (JSON) over the sensor's metrics
    GrafanaDashboard(DashboardArgs),
    /// Elasticsearch/OpenSearch index templates (ECS) and a lifecycle policy for the alerts
    EsTemplate(EsTemplateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlavorArg {
    /// Elasticsearch 8 (ILM policy, `flattened`)
    Elasticsearch,
    /// OpenSearch 2 (ISM policy, `flat_object`)
    Opensearch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IndexModeArg {
    /// secmon's ECS data stream, written by `kubectl-secmon sensor --elasticsearch`
    DataStream,
    /// falcosidekick's daily falco-YYYY.MM.DD indices
    Falcosidekick,
}

#[derive(Debug, Args)]
pub struct EsTemplateArgs {
    /// The server the policy is for
    #[arg(long, value_enum, default_value = "elasticsearch")]
    pub flavor: FlavorArg,
    /// What the template is for
    #[arg(long, value_enum, default_value = "data-stream")]
    pub index_mode: IndexModeArg,
    /// The data stream (default secmon-alerts), or falcosidekick's index prefix (default falco)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Delete alerts this long after rollover (falcosidekick mode: after the index is created)
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = check_es_duration)]
    pub retention: String,
    /// Roll the write index over at this age …
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = check_es_duration)]
    pub rollover_age: String,
    /// … or at this primary shard size
    #[arg(long, value_name = "SIZE", default_value = "50gb", value_parser = check_es_size)]
    pub rollover_size: String,
    /// Primary shards per index
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,
    /// Replicas per shard (0 on a single-node cluster)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub replicas: u32,
    /// Template priority: above the built-in templates (up to 500)
    #[arg(long, value_name = "N", default_value_t = 501)]
    pub priority: u32,
    /// No lifecycle policy: manage retention yourself
    #[arg(long)]
    pub no_policy: bool,
    /// PUT the resources to this server instead of printing them (credentials from
    /// SECMON_ES_API_KEY, or SECMON_ES_USERNAME and SECMON_ES_PASSWORD)
    #[arg(long, value_name = "URL")]
    pub apply: Option<String>,
    /// Trust this CA bundle (PEM) for an https --apply
    #[arg(long, value_name = "PATH", requires = "apply")]
    pub ca_file: Option<std::path::PathBuf>,
    /// API key for --apply (Elasticsearch's `encoded` form); prefer the environment
    /// variable, which `ps` does not show. Basic auth: SECMON_ES_USERNAME, SECMON_ES_PASSWORD
    #[arg(
        long,
        value_name = "KEY",
        env = "SECMON_ES_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
}

/// An ILM/ISM duration: a whole number with d, h, m, s, ms (`90d`, `12h`).
fn check_es_duration(s: &str) -> Result<String, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    if !n.is_empty() && matches!(unit, "d" | "h" | "m" | "s" | "ms") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid duration {s:?}: use a whole number with d, h, m or s, e.g. 90d"
        ))
    }
}

/// An Elasticsearch byte size: a whole number with b, kb, mb, gb, tb (`50gb`).
fn check_es_size(s: &str) -> Result<String, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    if !n.is_empty() && matches!(unit, "b" | "kb" | "mb" | "gb" | "tb" | "pb") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid size {s:?}: use a whole number with b, kb, mb, gb or tb, e.g. 50gb"
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// A plain Prometheus rules file (`groups:`), for rule_files and promtool
    RulesFile,
    /// A Prometheus Operator PrometheusRule resource (namespace from -n, default secmon)
    Prometheusrule,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output shape
    #[arg(long, value_enum, default_value = "rules-file")]
    pub format: RulesFormat,
    /// Label on the PrometheusRule, to match your Prometheus ruleSelector (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Window over which detections are counted
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = emit::check_duration)]
    pub window: String,
    /// Alerts per namespace within --spike-window above which SecmonAlertSpike fires
    #[arg(long, value_name = "N", default_value_t = 20.0, value_parser = parse_non_negative)]
    pub spike_threshold: f64,
    /// Window of SecmonAlertSpike
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = emit::check_duration)]
    pub spike_window: String,
    /// Fraction of events dropped (0-1) above which SecmonEventsDropped fires
    #[arg(long, value_name = "RATIO", default_value_t = 0.01, value_parser = parse_ratio)]
    pub drop_ratio: f64,
    /// The sensor container's CPU limit, in cores
    #[arg(long, value_name = "CORES", default_value_t = 0.5, value_parser = parse_non_negative)]
    pub cpu_limit: f64,
    /// The sensor container's memory limit (bytes, or 512Mi, 1Gi, …)
    #[arg(long, value_name = "SIZE", default_value = "512Mi", value_parser = emit::parse_bytes)]
    pub memory_limit: f64,
    /// Fraction of a limit (0-1) at which the CPU and memory alerts fire
    #[arg(long, value_name = "RATIO", default_value_t = 0.9, value_parser = parse_ratio)]
    pub limit_ratio: f64,
    /// The sensor's scrape job name
    #[arg(long, value_name = "NAME", default_value = m::SENSOR_NAME)]
    pub job: String,
    /// Namespace of the sensor DaemonSet
    #[arg(long, value_name = "NS", default_value = m::SENSOR_NAMESPACE)]
    pub sensor_namespace: String,
    /// Prefix of each alert's runbook_url (the alert's anchor is appended)
    #[arg(long, value_name = "URL", default_value = emit::DEFAULT_RUNBOOK_BASE)]
    pub runbook_base: String,
}

#[derive(Debug, Args)]
pub struct ServiceMonitorArgs {
    /// Label on the ServiceMonitor, to match your Prometheus serviceMonitorSelector (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Scrape interval
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = emit::check_duration)]
    pub interval: String,
}

#[derive(Debug, Args)]
pub struct AlertmanagerArgs {
    /// Receiver name for a severity: critical=NAME (paging) or warning=NAME (chat) (repeatable)
    #[arg(long = "receiver", value_name = "SEVERITY=NAME", value_parser = parse_label)]
    pub receivers: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The sensor's scrape job name
    #[arg(long, value_name = "NAME", default_value = m::SENSOR_NAME)]
    pub job: String,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("invalid {s:?}: use KEY=VALUE")),
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "invalid ratio {s:?}: use a number from 0 to 1, e.g. 0.9"
        )),
    }
}

fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("invalid number {s:?}: use a non-negative number")),
    }
}

/// How an artifact is written when `-o` is left at its default.
#[derive(Clone, Copy)]
enum Native {
    Yaml,
    Json,
}

fn write(g: &GlobalArgs, v: &Value, native: Native, header: &str) -> anyhow::Result<i32> {
    let json = match (g.output, native) {
        (Format::Json, _) | (Format::Table, Native::Json) => true,
        (Format::Yaml, _) | (Format::Table, Native::Yaml) => false,
        (other, _) => bail!(
            "-o {} is not available for `emit`: use -o yaml or -o json",
            format!("{other:?}").to_lowercase()
        ),
    };
    let text = if json {
        let mut s = serde_json::to_string_pretty(v)?;
        s.push('\n');
        s
    } else {
        format!("{header}{}", report::to_yaml(v)?)
    };
    write_text(g, &text)?;
    Ok(exit::CLEAN)
}

pub fn run(g: &GlobalArgs, args: EmitArgs) -> anyhow::Result<i32> {
    let ns = g.namespace.as_deref().unwrap_or(m::SENSOR_NAMESPACE);
    match args.command {
        EmitCommand::PrometheusRules(a) => {
            let o = prometheus::RuleOptions {
                window: a.window,
                spike_threshold: a.spike_threshold,
                spike_window: a.spike_window,
                drop_ratio: a.drop_ratio,
                cpu_limit: a.cpu_limit,
                memory_limit: a.memory_limit,
                limit_ratio: a.limit_ratio,
                job: a.job,
                sensor_namespace: a.sensor_namespace,
                runbook_base: a.runbook_base,
            };
            let v = match a.format {
                RulesFormat::RulesFile => {
                    if !a.labels.is_empty() {
                        bail!("--label applies to --format prometheusrule only");
                    }
                    prometheus::rules_file(&o)
                }
                RulesFormat::Prometheusrule => prometheus::prometheus_rule(&o, ns, &a.labels),
            };
            write(g, &v, Native::Yaml, "")
        }
        EmitCommand::Servicemonitor(a) => write(
            g,
            &prometheus::service_monitor(ns, &a.labels, &a.interval),
            Native::Yaml,
            "",
        ),
        EmitCommand::AlertmanagerConfig(a) => {
            let mut r = alertmanager::Receivers::default();
            for (sev, name) in a.receivers {
                if name.is_empty() {
                    bail!(
                        "--receiver {sev}= needs a receiver name, e.g. --receiver {sev}=pagerduty"
                    );
                }
                match sev.as_str() {
                    "critical" => r.critical = name,
                    "warning" => r.warning = name,
                    _ => bail!(
                        "unknown severity {sev:?} in --receiver: use critical=NAME or warning=NAME"
                    ),
                }
            }
            write(g, &alertmanager::config(&r), Native::Yaml, "")
        }
        EmitCommand::AuditPolicy => write(g, &audit::policy(), Native::Yaml, &audit::header()),
        EmitCommand::GrafanaDashboard(a) => write(g, &grafana::dashboard(&a.job), Native::Json, ""),
        EmitCommand::EsTemplate(a) => es_template(g, a),
    }
}

fn es_template(g: &GlobalArgs, a: EsTemplateArgs) -> anyhow::Result<i32> {
    let flavor = match a.flavor {
        FlavorArg::Elasticsearch => es::Flavor::Elasticsearch,
        FlavorArg::Opensearch => es::Flavor::Opensearch,
    };
    let mode = match a.index_mode {
        IndexModeArg::DataStream => es::IndexMode::DataStream,
        IndexModeArg::Falcosidekick => es::IndexMode::Falcosidekick,
    };
    let mut o = es::EsOptions::new(flavor, mode);
    if let Some(name) = a.name {
        if name.is_empty()
            || name.starts_with(['-', '_', '+', '.'])
            || name
                .chars()
                .any(|c| c.is_ascii_uppercase() || "\\/*?\"<>| ,#:".contains(c))
        {
            bail!(
                "--name {name:?}: not a valid index name; use lower case letters, digits, - and _"
            );
        }
        o.name = name;
    }
    o.retention = a.retention;
    o.rollover_age = a.rollover_age;
    o.rollover_size = a.rollover_size;
    o.shards = a.shards;
    o.replicas = a.replicas;
    o.priority = a.priority;
    o.no_policy = a.no_policy;
    let resources = es::resources(&o);
    if let Some(url) = a.apply {
        let target = crate::apply::Target {
            url: url.clone(),
            auth: match a.api_key.filter(|k| !k.is_empty()) {
                Some(k) => crate::httpc::Auth::ApiKey(k),
                None => crate::httpc::Auth::from_env(),
            },
            ca_file: a.ca_file,
            timeout: std::time::Duration::from_secs(30),
        };
        let applied = crate::apply::apply(&target, &resources)?;
        let report = crate::report::emit::ApplyReport::new(url, applied);
        crate::commands::emit(g, &report)?;
        return Ok(exit::CLEAN);
    }
    match g.output {
        Format::Table => {
            write_text(g, &es::console(&resources))?;
            Ok(exit::CLEAN)
        }
        _ => write(g, &es::requests(&resources), Native::Json, ""),
    }
}
