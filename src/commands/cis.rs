//! `kubectl secmon cis run`: the CIS Kubernetes Benchmark on this node (or a node tree
//! under `--root`). Gathers node facts natively, picks the benchmark, evaluates, and
//! hands the report to `report`. With `--profile-dir`, runs kube-bench's own profiles in
//! compatibility mode instead. Section 5 (policies) is judged through the Kubernetes API
//! when `--targets` names `policies` (or with `--from-api`), read with the global kube
//! flags; a plain node scan never needs a cluster.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::cis::cluster::{self, ClusterFacts};
use crate::cis::collect::{self, Options};
use crate::cis::eval::{self, Selection};
use crate::cis::facts::{ConfigFacts, NodeFacts};
use crate::cis::profile::{self, Benchmark, Target};
use crate::cis::scanpod::{self, ScanOptions};
use crate::cis::{CisError, kubebench};
use crate::cis::{mirror, policies};
use crate::cli::{GlobalArgs, Timeout};
use crate::commands::emit;
use crate::report::cis::{CisNodesReport, CisReport, ComponentInfo};

#[derive(Debug, Args)]
pub struct CisArgs {
    #[command(subcommand)]
    pub command: CisCommand,
}

#[derive(Debug, Subcommand)]
pub enum CisCommand {
    /// Run the benchmark on this node, or on a node tree under --root
    Run(RunArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Where the node's filesystem is (its /proc, /etc, /var); in a pod, the host mount
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Benchmark to run: a shipped one (cis-1.12, cis-1.11), or auto from the node's Kubernetes version
    #[arg(long, value_name = "NAME", default_value = "auto")]
    pub benchmark: String,
    /// Sections to run (default: all): master, etcd, controlplane, node, policies
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Only these checks: ids, groups, or prefixes such as 4.2.*
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub check: Vec<String>,
    /// Report these checks as INFO without evaluating them
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub skip: Vec<String>,
    /// Run kube-bench's profiles from this cfg/ directory (compatibility mode: their
    /// shell audits run through /bin/sh, as kube-bench does); needs --benchmark
    #[arg(long, value_name = "DIR")]
    pub profile_dir: Option<PathBuf>,
    /// The node's name in the report (default: the kubelet's --hostname-override, else
    /// the host name)
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Refuse config files larger than this many MiB
    #[arg(long, value_name = "MIB", default_value_t = 4)]
    pub max_file_size: u64,
    /// Read the cluster (global kube flags) instead of this node: section 5 through the
    /// API, the control-plane sections from kube-system's static-pod mirror pods.
    /// `--targets policies` alone implies it
    #[arg(long)]
    pub from_api: bool,
    /// Scan these nodes from the cluster instead of this one: `all` or a node name. A
    /// short-lived pod per node (namespace secmon, hostPID, read-only host mounts) runs the
    /// node scan; results are gathered from its log and the pods removed
    #[arg(long, value_name = "all|NAME")]
    pub nodes: Option<String>,
    /// Image of the scan pods (it must contain kubectl-secmon on its PATH)
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// How long to wait for the scan pods to finish (e.g. 90s, 5m); a pod not done by
    /// then is an ERROR for its node
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::cli::parse_timeout)]
    pub timeout: Timeout,
}

/// The scan pods' image: this version's release image.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/secmon/kubectl-secmon:v", env!("CARGO_PKG_VERSION"));

pub fn run(g: &GlobalArgs, args: CisArgs) -> anyhow::Result<i32> {
    match args.command {
        CisCommand::Run(a) => {
            let sel = selection(&a)?;
            let api_only = a.from_api
                || (!sel.targets.is_empty() && sel.targets.iter().all(|t| *t == Target::Policies));
            if let Some(nodes) = &a.nodes {
                let report = scan_nodes(g, &a, nodes)?;
                for n in report.nodes.iter().filter(|n| n.error.is_some()) {
                    eprintln!(
                        "warning: node {}: {}",
                        n.node,
                        n.error.as_deref().unwrap_or("")
                    );
                }
                return emit(g, &report);
            }
            let report = if a.profile_dir.is_some() {
                run_compat(&a)?
            } else if api_only {
                scan_api(g, &a)?
            } else if sel.targets.contains(&Target::Policies) {
                // Node targets from the node, policies through the API.
                let mut node = a.clone();
                node.targets.retain(|t| t.trim() != "policies");
                let mut report = scan(&node)?;
                let (sections, notes) = read_policies(g, &a, &report.benchmark)?;
                report.add_sections(sections, notes, "native+api");
                report
            } else {
                scan(&a)?
            };
            if report.totals.error > 0 {
                eprintln!(
                    "warning: {} checks could not be evaluated (ERROR); their reasons say why",
                    report.totals.error
                );
            }
            emit(g, &report)
        }
    }
}

fn selection(a: &RunArgs) -> anyhow::Result<Selection> {
    let mut targets = Vec::new();
    for t in &a.targets {
        let t = t.trim();
        match Target::parse(t) {
            Some(x) => targets.push(x),
            None => bail!(
                "unknown target {t:?} in --targets; use master, etcd, controlplane, node, policies"
            ),
        }
    }
    let clean = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Ok(Selection {
        targets,
        checks: clean(&a.check),
        skip: clean(&a.skip),
    })
}

/// `--check` that matches nothing is a typo, not a clean run.
fn nothing_selected(sel: &Selection, sections: &[eval::SectionResult]) -> anyhow::Result<()> {
    if !sel.checks.is_empty() && sections.iter().all(|s| s.results.is_empty()) {
        bail!(
            "no check matches --check {} in the selected targets; ids look like 1.2.1, groups like 4.2, prefixes like 4.2.*",
            sel.checks.join(",")
        );
    }
    Ok(())
}

fn options(a: &RunArgs) -> Options {
    Options {
        max_file_bytes: a.max_file_size.saturating_mul(1024 * 1024),
        node_name: a.node_name.clone(),
    }
}

/// Choose the benchmark: named, or from the Kubernetes version the node shows.
pub fn choose(
    name: &str,
    facts: &NodeFacts,
) -> Result<(Benchmark, String, Option<String>), CisError> {
    let detected = facts.versions.first().cloned();
    if name != "auto" {
        let b = profile::load_shipped(name)?;
        return Ok((b, "--benchmark".into(), detected.map(|d| d.0)));
    }
    let Some((minor, from)) = detected else {
        return Err(CisError::Usage(format!(
            "cannot tell this node's Kubernetes version (no control-plane static pod image tag under {}); pass --benchmark, e.g. --benchmark {}",
            facts.root,
            profile::shipped().join(" or ")
        )));
    };
    match profile::for_kubernetes(&minor) {
        Some(n) => Ok((
            profile::load_shipped(n)?,
            format!("auto: Kubernetes {minor} from the {from}"),
            Some(minor),
        )),
        None => Err(CisError::Usage(format!(
            "Kubernetes {minor} (from the {from}) has no shipped benchmark; pass --benchmark (shipped: {})",
            profile::shipped().join(", ")
        ))),
    }
}

fn components(facts: &NodeFacts) -> Vec<ComponentInfo> {
    facts
        .components
        .iter()
        .map(|(c, cf)| {
            let (config, config_error) = match &cf.config {
                ConfigFacts::None => (vec![], None),
                ConfigFacts::Error { message } => (vec![], Some(message.clone())),
                ConfigFacts::Layers { layers } => {
                    (layers.iter().map(|l| l.source.clone()).collect(), None)
                }
            };
            ComponentInfo {
                component: c.process_name().to_string(),
                pid: cf.pid,
                config,
                config_error,
            }
        })
        .collect()
}

/// The native scan: facts once, then the pure evaluation.
pub fn scan(a: &RunArgs) -> anyhow::Result<CisReport> {
    let sel = selection(a)?;
    // A named benchmark is loaded (and checked) before any node I/O; `auto` collects
    // what every shipped benchmark reads, so that one pass over the node suffices.
    let named = match a.benchmark.as_str() {
        "auto" => None,
        name => Some(profile::load_shipped(name)?),
    };
    let refs = match &named {
        Some(b) => b.file_refs(),
        None => {
            let mut refs = BTreeSet::new();
            for name in profile::shipped() {
                refs.extend(profile::load_shipped(name)?.file_refs());
            }
            refs
        }
    };
    let facts = collect::collect(&a.root, &refs, &options(a))?;
    let (benchmark, source, detected) = match named {
        Some(b) => (
            b,
            "--benchmark".to_string(),
            facts.versions.first().map(|v| v.0.clone()),
        ),
        None => choose("auto", &facts)?,
    };
    let sections = eval::evaluate(&benchmark, &facts, &sel);
    nothing_selected(&sel, &sections)?;
    Ok(CisReport::new(
        facts.node.clone(),
        facts.root.clone(),
        benchmark.name.clone(),
        source,
        detected,
        "native",
        components(&facts),
        sections,
        facts.notes.clone(),
    ))
}

/// Read the cluster and judge section 5: (sections, notes). `benchmark` is a shipped name
/// or `auto` (from the API server's version).
fn read_policies(
    g: &GlobalArgs,
    a: &RunArgs,
    benchmark: &str,
) -> anyhow::Result<(Vec<eval::SectionResult>, Vec<String>)> {
    let (b, _, _, facts) = read_cluster(g, benchmark)?;
    let sel = selection(a)?;
    Ok(policies::evaluate(&b, &facts, &sel))
}

/// The benchmark (chosen as `cis run` chooses it, from the API server's version for
/// `auto`), how it was chosen, the version seen, and the cluster's facts.
fn read_cluster(
    g: &GlobalArgs,
    benchmark: &str,
) -> anyhow::Result<(Benchmark, String, Option<String>, ClusterFacts)> {
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    let facts = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        let server = crate::kube::config(g)
            .await
            .map(|c| c.cluster_url.to_string())
            .unwrap_or_default();
        anyhow::Ok(cluster::collect(&client, server).await?)
    })?;
    let detected = facts.version.clone();
    if benchmark != "auto" {
        return Ok((
            profile::load_shipped(benchmark)?,
            "--benchmark".into(),
            detected,
            facts,
        ));
    }
    let Some(minor) = detected.clone() else {
        bail!(
            "cannot tell the cluster's Kubernetes version (/version did not answer); pass --benchmark, e.g. --benchmark {}",
            profile::shipped().join(" or ")
        );
    };
    match profile::for_kubernetes(&minor) {
        Some(n) => Ok((
            profile::load_shipped(n)?,
            format!("auto: Kubernetes {minor} from the API server's /version"),
            detected,
            facts,
        )),
        None => bail!(
            "Kubernetes {minor} (from the API server's /version) has no shipped benchmark; pass --benchmark (shipped: {})",
            profile::shipped().join(", ")
        ),
    }
}

/// The cluster read through the API: section 5 judged on its objects.
pub fn scan_api(g: &GlobalArgs, a: &RunArgs) -> anyhow::Result<CisReport> {
    let sel = selection(a)?;
    let (benchmark, source, detected, facts) = read_cluster(g, &a.benchmark)?;
    let mut sections = Vec::new();
    let mut notes = Vec::new();
    if mirror::TARGETS.iter().any(|t| sel.wants_target(*t)) {
        let pods = mirror::from_pods(&facts.workloads);
        notes.push(match pods.len() {
            0 => "control plane: no static-pod mirror pods in kube-system".to_string(),
            _ => format!(
                "control plane read from mirror pods: {}",
                pods.iter()
                    .map(|p| format!("kube-system/{} on {}", p.name, p.node))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        sections.extend(mirror::evaluate(&benchmark, &pods, &sel));
    }
    if sel.wants_target(Target::Node) {
        sections.extend(mirror::not_read(
            &benchmark,
            Target::Node,
            &sel,
            "kubelet and kube-proxy settings are read on each node, not through the API: run `cis run --nodes all`",
        ));
    }
    if sel.wants_target(Target::Policies) {
        let (s, n) = policies::evaluate(&benchmark, &facts, &sel);
        sections.extend(s);
        notes.extend(n);
    }
    sections.retain(|s| !s.results.is_empty() || sel.checks.is_empty());
    nothing_selected(&sel, &sections)?;
    Ok(CisReport::new(
        "cluster".into(),
        facts.server.clone(),
        benchmark.name.clone(),
        source,
        detected,
        "api",
        Vec::new(),
        sections,
        notes,
    ))
}

/// `--nodes`: a scan pod per node, results gathered from their logs.
fn scan_nodes(g: &GlobalArgs, a: &RunArgs, nodes: &str) -> anyhow::Result<CisNodesReport> {
    let Some(timeout) = a.timeout.0 else {
        bail!("--timeout must be more than 0 with --nodes");
    };
    let opts = ScanOptions {
        nodes: nodes.to_string(),
        image: a.image.clone(),
        benchmark: a.benchmark.clone(),
        timeout,
    };
    // A short id that keeps this run's pods apart from a concurrent run's.
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64 ^ u64::from(std::process::id()))
            .unwrap_or(u64::from(std::process::id()))
            & 0xff_ffff
    );
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    let scans = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        anyhow::Ok(scanpod::scan_nodes(&client, &opts, &run).await?)
    })?;
    Ok(CisNodesReport::new(a.benchmark.clone(), scans))
}

/// Compatibility mode: kube-bench's profiles and shell audits.
pub fn run_compat(a: &RunArgs) -> anyhow::Result<CisReport> {
    let Some(dir) = &a.profile_dir else {
        bail!("--profile-dir is required for compatibility mode");
    };
    if a.benchmark == "auto" {
        match kubebench::benchmarks(dir) {
            Ok(names) => bail!(
                "--profile-dir needs --benchmark NAME (one of: {})",
                names.join(", ")
            ),
            Err(e) => bail!("--profile-dir needs --benchmark NAME; and {e}"),
        }
    }
    let sel = selection(a)?;
    let kb = kubebench::load(dir, &a.benchmark)?;
    let facts = collect::collect(&a.root, &BTreeSet::new(), &options(a))?;
    let sections = kubebench::run(&kb, &facts, &sel)?;
    nothing_selected(&sel, &sections)?;
    Ok(CisReport::new(
        facts.node.clone(),
        facts.root.clone(),
        kb.name.clone(),
        format!("--benchmark from {}", dir.display()),
        facts.versions.first().map(|v| v.0.clone()),
        "kube-bench-compat",
        components(&facts),
        sections,
        facts.notes.clone(),
    ))
}
