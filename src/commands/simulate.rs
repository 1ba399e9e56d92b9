//! `kubectl secmon simulate list|run|verify`: run safe attack scenarios and check that the
//! node sensor detected each. Parses flags, picks scenarios (`simulate::catalogue`), hands
//! them to `simulate::session` (Linux) and the results to `report::simulate`.
//!
//! Exit codes: 0 every scenario detected or skipped, 1 one was MISSED, 2 errors (a bad
//! flag, no sensor to read, a scenario that could not be run).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;
use crate::commands::alerts::parse_duration;
use crate::commands::{emit, exit};
use crate::deploy::SensorKind;
use crate::report::simulate::ScenarioListReport;
use crate::sensor::http::DEFAULT_ADDR;
use crate::simulate::catalogue::{self, RulesetKind, SCENARIOS};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon simulate list
  sudo kubectl secmon simulate verify --all --container --coverage
  sudo kubectl secmon simulate verify 'ptrace-*' credential-file-read -o junit > simulate.xml
  sudo kubectl secmon simulate verify --all --container --html coverage.html
  sudo kubectl secmon simulate run --all --container --loop --rate 10,20,40 --duration 10s
  kubectl secmon simulate verify --all --in-cluster
  kubectl secmon simulate verify --all --in-cluster --all-nodes --allow-privileged -o junit")]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub command: SimulateCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// List the scenarios: the rules each must trigger, its MITRE technique, its context
    List(ListArgs),
    /// Run scenarios without checking detection; --loop makes it a load test of the sensor
    Run(RunArgs),
    /// Run scenarios and check that the sensor raised the expected alert for each
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show the rules of this ruleset
    #[arg(long, value_enum, default_value = "default")]
    pub ruleset: RulesetKind,
}

/// What `run` and `verify` share.
#[derive(Debug, Args)]
pub struct Selection {
    /// Scenarios by name or glob (* and ?), see `simulate list`
    #[arg(value_name = "NAME|GLOB")]
    pub scenarios: Vec<String>,
    /// Every scenario that a rule of --ruleset covers
    #[arg(long)]
    pub all: bool,
    /// Run each scenario in its own container: new namespaces and a kubelet-shaped cgroup
    #[arg(long)]
    pub container: bool,
    /// The ruleset the sensor runs, which decides the rules each scenario must trigger
    #[arg(long, value_enum, default_value = "default")]
    pub ruleset: RulesetKind,
    /// The API server address the API-contact scenario connects to (inside a private
    /// network namespace: nothing leaves the host); default: KUBERNETES_SERVICE_HOST:PORT,
    /// else 10.96.0.1:443. It must be in the rules' secmon_k8s_api_server_addresses
    #[arg(long, value_name = "HOST:PORT")]
    pub api_server: Option<String>,
    /// Longest a scenario may run before it is killed
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub scenario_timeout: Duration,
    /// Run the scenarios in the cluster: Jobs in namespace secmon-sim on a node with a
    /// sensor, verified against that node's sensor, everything removed afterwards
    #[arg(long, conflicts_with = "container")]
    pub in_cluster: bool,
    /// With --in-cluster: one Job per node, each running every scenario (default: one
    /// Job per scenario, all on one node)
    #[arg(long, requires = "in_cluster")]
    pub all_nodes: bool,
    /// With --in-cluster: the node to run on (default: the first with a running sensor)
    #[arg(
        long,
        value_name = "NAME",
        requires = "in_cluster",
        conflicts_with = "all_nodes"
    )]
    pub node: Option<String>,
    /// With --in-cluster: give the scenarios that need a privileged container (the
    /// escapes) one; without it they are SKIPPED
    #[arg(long, requires = "in_cluster")]
    pub allow_privileged: bool,
    /// With --in-cluster: the Job pods' image (default: the installed sensor's image)
    #[arg(long, value_name = "IMAGE", requires = "in_cluster")]
    pub image: Option<String>,
    /// With --in-cluster: how long a Job's pod may take to start, on top of its scenarios
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub pod_timeout: Duration,
    /// With --in-cluster: at most this many Jobs at once on a node
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// With --in-cluster: the sensor whose alerts verification reads
    #[arg(long, value_enum, default_value = "secmon")]
    pub sensor: SensorKind,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Repeat the scenarios round-robin at --rate per second, reporting the sensor's load
    #[arg(long = "loop")]
    pub repeat: bool,
    /// Scenarios per second in --loop mode; several (10,20,40) run one after another
    #[arg(long, value_name = "N", value_delimiter = ',', requires = "repeat")]
    pub rate: Vec<f64>,
    /// How long each --rate runs
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, requires = "repeat")]
    pub duration: Duration,
    /// The sensor on this host whose /metrics --loop reads, at ADDR (its --metrics-addr)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_value = DEFAULT_ADDR, default_missing_value = DEFAULT_ADDR)]
    pub local: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Read alerts from the sensor on this host, at ADDR (its --metrics-addr); the default
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADDR, conflicts_with_all = ["alerts_file", "in_cluster"])]
    pub local: Option<String>,
    /// Read alerts from the JSON-lines file the sensor writes (--alerts-file), or Falco's
    #[arg(long, value_name = "PATH", conflicts_with = "in_cluster")]
    pub alerts_file: Option<PathBuf>,
    /// How long to wait for a scenario's alerts after it ran
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also print the coverage: detected/run, rules covered, the MITRE ATT&CK matrix
    #[arg(long)]
    pub coverage: bool,
    /// Write the coverage and the results as a self-contained HTML page
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `__sim-init`: a scenario's first process (see `simulate::init`).
#[derive(Debug, Args)]
pub struct SimInitArgs {
    /// Join this cgroup (repeatable)
    #[arg(long = "cgroup", value_name = "DIR")]
    pub cgroups: Vec<PathBuf>,
    /// Unshare mount, UTS, IPC and PID namespaces
    #[arg(long)]
    pub container: bool,
    /// Give the command a pseudo-terminal
    #[arg(long)]
    pub tty: bool,
    /// Run the command as UID:GID
    #[arg(long, value_name = "UID:GID")]
    pub user: Option<String>,
    /// The command: a file of NUL-separated arguments, program first (not on this command
    /// line, so that rules looking at arguments see the command's own process only)
    #[arg(long, value_name = "FILE")]
    pub command_file: PathBuf,
}

/// `__sim-pod`: a `simulate --in-cluster` Job pod (see `simulate::cluster`).
#[derive(Debug, Args)]
pub struct SimPodArgs {
    /// The run's id: the correlation ids are secmon-sim-RUN-INDEX
    #[arg(long, value_name = "RUN")]
    pub run_id: String,
    #[arg(long, value_enum, default_value = "default")]
    pub ruleset: RulesetKind,
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub scenario_timeout: Duration,
    /// The API server address the API-contact scenario uses (default: the pod's service)
    #[arg(long, value_name = "HOST:PORT")]
    pub api_server: Option<String>,
    /// The scenarios, in order, each as INDEX=NAME
    #[arg(value_name = "INDEX=NAME", required = true)]
    pub steps: Vec<String>,
}

fn parse_user(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: use UID:GID");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

pub fn run_init(a: SimInitArgs) -> anyhow::Result<i32> {
    let user = a
        .user
        .as_deref()
        .map(parse_user)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--user {e}"))?;
    let bytes = std::fs::read(&a.command_file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.command_file.display()))?;
    let argv = bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    crate::simulate::init::run(&crate::simulate::init::InitOptions {
        cgroups: a.cgroups,
        container: a.container,
        tty: a.tty,
        user,
        argv,
    })
    .map_err(anyhow::Error::msg)
}

pub fn run(g: &GlobalArgs, args: SimulateArgs) -> anyhow::Result<i32> {
    match args.command {
        SimulateCommand::List(a) => {
            let all: Vec<&'static catalogue::Scenario> = SCENARIOS.iter().collect();
            emit(g, &ScenarioListReport::new(&all, a.ruleset))
        }
        SimulateCommand::Run(a) if a.selection.in_cluster => {
            if a.repeat {
                bail!(
                    "--loop runs on a node against its local sensor; it cannot be combined with --in-cluster"
                );
            }
            in_cluster(g, &a.selection, None)
        }
        SimulateCommand::Verify(a) if a.selection.in_cluster => {
            in_cluster(g, &a.selection, Some(&a))
        }
        SimulateCommand::Run(a) => run_scenarios(g, a),
        SimulateCommand::Verify(a) => verify(g, a),
    }
}

fn check_selection(s: &Selection) -> anyhow::Result<Vec<&'static catalogue::Scenario>> {
    let chosen = catalogue::select(&s.scenarios, s.all, s.ruleset).map_err(anyhow::Error::msg)?;
    if !cfg!(target_os = "linux") {
        bail!(
            "attack simulation runs on Linux only (namespaces, cgroups and the node sensor); run it on a node"
        );
    }
    Ok(chosen)
}

/// The API server address: the flag, else the in-cluster service, else kubeadm's default.
#[cfg(any(target_os = "linux", test))]
pub fn api_server(flag: &Option<String>) -> anyhow::Result<String> {
    let addr = match flag {
        Some(a) => a.clone(),
        None => match (
            std::env::var("KUBERNETES_SERVICE_HOST"),
            std::env::var("KUBERNETES_SERVICE_PORT"),
        ) {
            (Ok(h), Ok(p)) if !h.is_empty() => {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            }
            _ => "10.96.0.1:443".to_string(),
        },
    };
    addr.parse::<std::net::SocketAddr>().map_err(|_| {
        anyhow::anyhow!("--api-server {addr:?}: use an IP address and port, such as 10.96.0.1:443")
    })?;
    Ok(addr)
}

/// `simulate run|verify --in-cluster`: the scenarios as Jobs, their results from the
/// pods' logs, verified (`verify` given) against the sensor on their node.
fn in_cluster(g: &GlobalArgs, s: &Selection, verify: Option<&VerifyArgs>) -> anyhow::Result<i32> {
    use crate::report::simulate::{SimulationReport, coverage_html};
    use crate::simulate::{incluster, verify as check};
    let chosen = catalogue::select(&s.scenarios, s.all, s.ruleset).map_err(anyhow::Error::msg)?;
    if s.api_server.is_some() {
        bail!(
            "--api-server is for runs on a node; in a cluster the pods use their own service address"
        );
    }
    let opts = incluster::Options {
        image: s.image.clone(),
        node: s.node.clone(),
        all_nodes: s.all_nodes,
        allow_privileged: s.allow_privileged,
        pod_timeout: s.pod_timeout,
        scenario_timeout: s.scenario_timeout,
        alert_timeout: verify.map_or(Duration::ZERO, |v| v.timeout),
        ruleset: s.ruleset,
        sensor: s.sensor,
        verify: verify.is_some(),
        parallel: usize::from(s.parallel),
    };
    let run_id = crate::simulate::new_run_id();
    let rt = crate::kube::runtime()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let out = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        incluster::run(&client, &chosen, &run_id, &opts)
            .await
            .map_err(anyhow::Error::msg)
    })?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    let results = check::evaluate(&out.runs, &out.received, s.ruleset, verify.is_some());
    let report = SimulationReport::new(
        run_id,
        s.ruleset,
        "in-cluster",
        results,
        verify.map(|_| out.source.clone()),
        verify.is_some_and(|v| v.coverage),
    );
    if let Some(path) = verify.and_then(|v| v.html.as_ref()) {
        std::fs::write(path, coverage_html(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let code = emit(g, &report)?;
    if out.interrupted {
        eprintln!(
            "interrupted: the scenarios not finished are errors; everything the run made was removed"
        );
    }
    Ok(if report.summary.errors > 0 || out.interrupted {
        exit::ERROR
    } else {
        code
    })
}

#[cfg(not(target_os = "linux"))]
pub fn run_pod(_a: SimPodArgs) -> anyhow::Result<i32> {
    bail!("attack simulation runs on Linux only (namespaces, cgroups and the node sensor)")
}

/// `__sim-pod`: run the scenarios one after another in this (Job pod's) container and
/// print one `SimulationStep` JSON line for each as it ends, then `SimulationPodDone`.
#[cfg(target_os = "linux")]
pub fn run_pod(a: SimPodArgs) -> anyhow::Result<i32> {
    use crate::simulate::cluster::{DONE_KIND, SCRATCH, StepRecord, parse_pod_step};
    use crate::simulate::{runner, session, verify::sim_id};
    use std::io::Write;
    let steps = a
        .steps
        .iter()
        .map(|s| parse_pod_step(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    if a.run_id.is_empty() || !a.run_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("--run-id {:?}: use letters and digits", a.run_id);
    }
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find this program's path: {e}"))?;
    let scratch = std::path::Path::new(SCRATCH);
    let cfg = runner::RunConfig {
        container: false,
        in_pod: true,
        api_server: api_server(&a.api_server)?,
        step_timeout: a.scenario_timeout,
        ruleset: a.ruleset,
        program,
        temp_root: if scratch.is_dir() {
            scratch.to_path_buf()
        } else {
            std::env::temp_dir()
        },
    };
    session::catch_interrupts();
    let mut out = std::io::stdout().lock();
    let mut ran = 0usize;
    for (index, sc) in steps {
        if session::interrupted() {
            break;
        }
        let (run, _) = runner::run_scenario(sc, &sim_id(&a.run_id, index), &cfg);
        let line = serde_json::to_string(&StepRecord::of(&run))?;
        writeln!(out, "{line}")?;
        out.flush()?;
        ran += 1;
    }
    let done = serde_json::json!({"kind": DONE_KIND, "runId": a.run_id, "scenarios": ran});
    writeln!(out, "{done}")?;
    out.flush()?;
    Ok(if session::interrupted() {
        exit::ERROR
    } else {
        exit::CLEAN
    })
}

#[cfg(not(target_os = "linux"))]
fn run_scenarios(_g: &GlobalArgs, a: RunArgs) -> anyhow::Result<i32> {
    check_selection(&a.selection)?;
    Ok(exit::ERROR)
}

#[cfg(not(target_os = "linux"))]
fn verify(_g: &GlobalArgs, a: VerifyArgs) -> anyhow::Result<i32> {
    check_selection(&a.selection)?;
    Ok(exit::ERROR)
}

#[cfg(target_os = "linux")]
fn config(s: &Selection) -> anyhow::Result<crate::simulate::runner::RunConfig> {
    let root = unsafe { libc::geteuid() } == 0;
    if s.container {
        if !root {
            bail!("--container needs root: it creates namespaces and cgroups");
        }
        if crate::simulate::runner::cgroup_roots().is_empty() {
            bail!("--container needs a cgroup filesystem at /sys/fs/cgroup");
        }
    }
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find this program's path: {e}"))?;
    Ok(crate::simulate::runner::RunConfig {
        container: s.container,
        in_pod: false,
        api_server: api_server(&s.api_server)?,
        step_timeout: s.scenario_timeout,
        ruleset: s.ruleset,
        program,
        temp_root: std::env::temp_dir(),
    })
}

#[cfg(target_os = "linux")]
fn mode(s: &Selection) -> &'static str {
    if s.container { "container" } else { "host" }
}

#[cfg(target_os = "linux")]
fn run_scenarios(g: &GlobalArgs, a: RunArgs) -> anyhow::Result<i32> {
    use crate::report::simulate::{LoadReport, SimulationReport};
    use crate::simulate::{session, verify};
    let chosen = check_selection(&a.selection)?;
    let cfg = config(&a.selection)?;
    let run_id = crate::simulate::new_run_id();
    session::catch_interrupts();
    if a.repeat {
        let rates = if a.rate.is_empty() {
            vec![10.0]
        } else {
            a.rate.clone()
        };
        if let Some(bad) = rates.iter().find(|r| !r.is_finite() || **r <= 0.0) {
            bail!("--rate {bad}: use a positive number of scenarios per second");
        }
        let (names, steps) = session::load(&chosen, &run_id, &cfg, &rates, a.duration, &a.local)
            .map_err(anyhow::Error::msg)?;
        let report = LoadReport {
            api_version: "secmon.dev/v1alpha1",
            kind: "SimulationLoad",
            run_id,
            mode: mode(&a.selection),
            scenarios: names,
            steps,
        };
        emit(g, &report)?;
        return Ok(if session::interrupted() {
            exit::ERROR
        } else {
            exit::CLEAN
        });
    }
    let (runs, holds) = session::run_all(&chosen, &run_id, &cfg);
    if !holds.is_empty() {
        // A moment for a watching sensor to learn the last containers from their cgroups.
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(holds);
    let results = verify::evaluate(&runs, &[], cfg.ruleset, false);
    let report = SimulationReport::new(
        run_id,
        cfg.ruleset,
        mode(&a.selection),
        results,
        None,
        false,
    );
    emit(g, &report)?;
    Ok(if report.summary.errors > 0 || session::interrupted() {
        exit::ERROR
    } else {
        exit::CLEAN
    })
}

#[cfg(target_os = "linux")]
fn verify(g: &GlobalArgs, a: VerifyArgs) -> anyhow::Result<i32> {
    use crate::report::simulate::{SimulationReport, coverage_html};
    use crate::simulate::session::AlertSource;
    use crate::simulate::{session, verify};
    let chosen = check_selection(&a.selection)?;
    let cfg = config(&a.selection)?;
    let source = match (&a.alerts_file, &a.local) {
        (Some(p), _) => AlertSource::File(p.clone()),
        (None, Some(addr)) => AlertSource::Local(addr.clone()),
        (None, None) => AlertSource::Local(DEFAULT_ADDR.to_string()),
    };
    let run_id = crate::simulate::new_run_id();
    session::catch_interrupts();
    let v = session::verify_all(&chosen, &run_id, &cfg, &source, a.timeout)
        .map_err(anyhow::Error::msg)?;
    let results = verify::evaluate(&v.runs, &v.received, cfg.ruleset, true);
    let report = SimulationReport::new(
        run_id,
        cfg.ruleset,
        mode(&a.selection),
        results,
        Some(source.describe()),
        a.coverage,
    );
    if let Some(path) = &a.html {
        std::fs::write(path, coverage_html(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let code = emit(g, &report)?;
    Ok(if report.summary.errors > 0 {
        exit::ERROR
    } else {
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_addresses() {
        assert_eq!(
            api_server(&Some("127.0.0.1:443".into())).unwrap(),
            "127.0.0.1:443"
        );
        assert!(api_server(&Some("kubernetes.default:443".into())).is_err());
        assert!(api_server(&Some("10.0.0.1".into())).is_err());
    }
}
