//! `kubectl secmon emit …`: print generated monitoring configuration (Prometheus rules, a
//! ServiceMonitor, an Alertmanager config, an audit policy, a Grafana dashboard) to stdout
//! or `--output-file`. The generators live in `crate::emit`; this file parses flags and
//! picks the serialization: each artifact's native format by default, or `-o json|yaml`.

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::commands::{exit, write_text};
use crate::emit::{self, alertmanager, audit, grafana, prometheus};
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
    }
}
