//! The command line: global flags every command shares (parsed by the plugin itself,
//! because kubectl does not pass its own flags to plugins) and the subcommand tree.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::report::{FailOn, Format};

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-secmon",
    bin_name = "kubectl secmon",
    version = concat!("v", env!("CARGO_PKG_VERSION")),
    about = "Kubernetes security monitoring: Pod Security Standards, CIS benchmark, runtime detection",
    long_about = None,
    propagate_version = false,
    max_term_width = 110
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pod Security Standards checks, identical in verdict and message to the API server
    Psa(commands::psa::PsaArgs),
    /// CIS Kubernetes Benchmark checks on a node, natively (no shell), with honest states
    Cis(commands::cis::CisArgs),
    /// Detection rules (Falco format): validate, list, and replay recorded events
    Rules(commands::rules::RulesArgs),
    /// Run the node sensor here (Linux, root): eBPF probes, detection rules, Falco-format alerts
    // Boxed: the sensor's many flags would make every other variant as large.
    Sensor(Box<commands::sensor::SensorArgs>),
    /// Show the alerts node sensors raise: from the sensor pods' logs, this host, or a file
    Alerts(commands::alerts::AlertsArgs),
    /// Install the node sensor (or upstream Falco) on every node of the cluster
    Install(commands::install::InstallArgs),
    /// Remove everything `install` created, and nothing else
    Uninstall(commands::uninstall::UninstallArgs),
    /// The sensor on every node: ready, version, restarts, events, drops, alerts
    Status(commands::status::StatusArgs),
    /// Generate monitoring configuration: Prometheus rules, Alertmanager, Elasticsearch templates, audit policy, Grafana
    Emit(commands::emit::EmitArgs),
    /// Print the plugin's version
    Version(commands::version::VersionArgs),
    /// Shell completion scripts (bash, zsh, fish) and the kubectl completion helper
    Completion(commands::completion::CompletionArgs),
    /// Completion backend for `kubectl secmon <TAB>` (used by kubectl_complete-secmon)
    #[command(name = "__complete", hide = true)]
    Complete(commands::completion::CompleteArgs),
    /// Attack simulation: run safe attack scenarios and verify that the sensor detects each
    Simulate(commands::simulate::SimulateArgs),
    /// Run one attack action (src/simulate/actions.rs): scenarios and the sensor's tests
    #[command(name = "__action", hide = true)]
    Action {
        /// The action's name
        name: String,
        /// Its arguments (the last is the scenario's correlation id)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A scenario's first process (src/simulate/init.rs)
    #[command(name = "__sim-init", hide = true)]
    SimInit(commands::simulate::SimInitArgs),
    /// A `simulate --in-cluster` Job pod: run scenarios, print one JSON line per scenario
    #[command(name = "__sim-pod", hide = true)]
    SimPod(commands::simulate::SimPodArgs),
}

/// Flags shared by every command, with kubectl's names and meanings.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use (only this file: KUBECONFIG is not merged)
    #[arg(long, global = true, value_name = "PATH", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true, value_name = "NAME", help_heading = "Cluster")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use
    #[arg(long, global = true, value_name = "NAME", help_heading = "Cluster")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use
    #[arg(long, global = true, value_name = "NAME", help_heading = "Cluster")]
    pub user: Option<String>,
    /// Namespace scope (default: the context's namespace, else "default")
    #[arg(
        short = 'n',
        long,
        global = true,
        value_name = "NS",
        help_heading = "Cluster"
    )]
    pub namespace: Option<String>,
    /// All namespaces (ignores --namespace)
    #[arg(short = 'A', long, global = true, help_heading = "Cluster")]
    pub all_namespaces: bool,
    /// Label selector, e.g. app=web,tier!=db
    #[arg(
        short = 'l',
        long,
        global = true,
        value_name = "SELECTOR",
        help_heading = "Cluster"
    )]
    pub selector: Option<String>,
    /// Time to wait for a server response: 0 (none), or a number with a unit (1s, 2m, 500ms)
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = parse_timeout, help_heading = "Cluster")]
    pub request_timeout: Timeout,
    /// Output format
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    pub output: Format,
    /// Write the output to this file instead of stdout
    #[arg(long, global = true, value_name = "PATH", help_heading = "Output")]
    pub output_file: Option<PathBuf>,
    /// Exit with code 1 when a finding has this severity or higher
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "low",
        help_heading = "Output"
    )]
    pub fail_on: FailOn,
    /// Never use colour (also honoured: the NO_COLOR environment variable)
    #[arg(long, global = true, help_heading = "Output")]
    pub no_color: bool,
    /// More detail (repeat for more): -v lists skipped objects, -vv traces requests
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
}

/// `--request-timeout`: `None` for 0 (wait forever, as kubectl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeout(pub Option<Duration>);

/// Parse kubectl's `--request-timeout`: `0`, a bare number of seconds, or a number with a
/// unit (`ms`, `s`, `m`, `h`, combinable as in `1m30s`).
pub fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Timeout(None));
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Timeout(Some(Duration::from_secs(secs))));
    }
    let bad = || {
        format!("invalid duration {s:?}: use 0, or a number with a unit such as 30s, 2m or 500ms")
    };
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(n * factor);
        rest = &rest[unit_len..];
    }
    Ok(Timeout(if total.is_zero() { None } else { Some(total) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_parse_like_kubectl() {
        assert_eq!(parse_timeout("0"), Ok(Timeout(None)));
        assert_eq!(
            parse_timeout("5"),
            Ok(Timeout(Some(Duration::from_secs(5))))
        );
        assert_eq!(
            parse_timeout("1m30s"),
            Ok(Timeout(Some(Duration::from_secs(90))))
        );
        assert_eq!(
            parse_timeout("500ms"),
            Ok(Timeout(Some(Duration::from_millis(500))))
        );
        assert!(parse_timeout("5x").is_err());
        assert!(parse_timeout("s").is_err());
        assert!(parse_timeout("").is_err());
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "kubectl-secmon",
            "psa",
            "check",
            "-f",
            "x.yaml",
            "-o",
            "json",
            "--context",
            "kind",
            "-n",
            "ns",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.context.as_deref(), Some("kind"));
        assert_eq!(cli.global.namespace.as_deref(), Some("ns"));
        assert_eq!(cli.global.verbose, 2);
    }
}
