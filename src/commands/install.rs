//! `kubectl secmon install`: put the node sensor on every node. The objects come from
//! `deploy::manifests` (pure); this file reads the `--rules` files and checks them,
//! checks the user's permissions, server-side applies each object through
//! `kube::apply`, and hands the outcome to `report::install`.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::{emit, exit};
use crate::deploy::SensorKind;
use crate::deploy::manifests::{InstallOptions, Manifest, ObjectRef, manifests};
use crate::kube::apply::{Applier, describe, missing_permissions, whoami};
use crate::kube::errors::{Failure, Op, resource_name};
use crate::report::install::{ApplyReport, DryRun, ObjectResult, write_manifests};
use crate::report::{Format, RenderError};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon install                                  the sensor on every node
  kubectl secmon install --rules my-rules.yaml            …with your rules after the defaults
  kubectl secmon install --image registry.example/secmon/sensor:v0.1.0
  kubectl secmon install --dry-run=client -o yaml > secmon.yaml   manifests for GitOps
  kubectl secmon install --dry-run=server                 let the API server check, store nothing
  kubectl secmon install --sensor falco                   upstream Falco (modern eBPF, JSON output)

Objects are applied with server-side apply (field manager kubectl-secmon): a second run
changes nothing, a new version upgrades. Objects of the same name that kubectl-secmon did not
create are never taken over.")]
pub struct InstallArgs {
    /// The sensor to install
    #[arg(long, value_enum, default_value = "secmon")]
    pub sensor: SensorKind,
    /// The sensor image [default: ghcr.io/kubectl-secmon/sensor:v<this version>; with
    /// --sensor falco, falcosecurity/falco:<pinned version>]
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Rules files or directories to load after the default ruleset (repeatable); stored in
    /// the rules ConfigMap
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// client: only print (-o yaml|json) or list the objects; server: have the API server
    /// validate and admit them without storing anything
    #[arg(long, value_enum, value_name = "MODE")]
    pub dry_run: Option<DryRun>,
    /// Take over fields another field manager changed instead of stopping at the conflict
    #[arg(long)]
    pub force_conflicts: bool,
}

/// Read the `--rules` files as `(file name, text)`, each stored under its file name.
fn read_rules(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let files = crate::rules::read_rule_files(paths).map_err(anyhow::Error::msg)?;
    Ok(files
        .into_iter()
        .map(|(path, text)| {
            let name = Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(path);
            (name, text)
        })
        .collect())
}

/// The sensor would refuse to start on rules that do not load: refuse to install them.
fn check_rules(extra: &[(String, String)]) -> anyhow::Result<()> {
    let mut files = crate::rules::default_ruleset_sources();
    files.extend(extra.iter().cloned());
    let opts = crate::rules::LoadOptions {
        resolver: crate::rules::HostResolver::Disabled,
        ..crate::rules::LoadOptions::default()
    };
    crate::rules::load_files(&files, &opts)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("--rules: {e}; check it with `kubectl secmon rules validate`"))
}

/// The permissions applying `ms` needs: get and patch on each object.
pub fn needed(ms: &[Manifest]) -> Vec<Op> {
    let mut ops = Vec::new();
    for m in ms {
        for verb in ["get", "patch"] {
            ops.push(
                Op::new(verb, resource_name(&m.resource))
                    .namespace(m.namespace.as_deref())
                    .name(&m.name),
            );
        }
    }
    ops
}

/// `get, patch namespaces (cluster-wide); get, patch serviceaccounts in namespace secmon`.
pub fn describe_missing(missing: &[Op]) -> String {
    let mut groups: BTreeMap<(String, Option<String>), Vec<&str>> = BTreeMap::new();
    let mut order = Vec::new();
    for o in missing {
        let key = (o.resource.clone(), o.namespace.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        let verbs = groups.entry(key).or_default();
        if !verbs.contains(&o.verb) {
            verbs.push(o.verb);
        }
    }
    order
        .iter()
        .map(|key| {
            let verbs = groups.get(key).map(|v| v.join(", ")).unwrap_or_default();
            match &key.1 {
                Some(ns) => format!("{verbs} {} in namespace {ns}", key.0),
                None => format!("{verbs} {} (cluster-wide)", key.0),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fail with one line when the user may not do everything `ops` lists.
pub async fn preflight(client: &kube::Client, ops: &[Op], what: &str) -> anyhow::Result<()> {
    let missing = match missing_permissions(client, ops).await {
        Ok(m) => m,
        // No usable API server: say so before anything else.
        Err(mut e)
            if matches!(
                e.failure,
                Failure::Unreachable | Failure::Timeout | Failure::Unauthorized
            ) =>
        {
            e.op = Op::new("check", "permissions");
            return Err(e.into());
        }
        // The reviews themselves were refused: the calls will say what is wrong.
        Err(_) => return Ok(()),
    };
    if missing.is_empty() {
        return Ok(());
    }
    let user = whoami(client)
        .await
        .map(|u| format!("user {u:?}"))
        .unwrap_or_else(|| "the current user".to_string());
    bail!(
        "forbidden: {user} lacks the RBAC permissions to {what}: missing {}; ask a cluster administrator (cluster-admin has them)",
        describe_missing(&missing)
    )
}

fn result(m: &Manifest) -> ObjectResult {
    ObjectResult {
        kind: m.kind().to_string(),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        action: None,
        not_validated: false,
    }
}

pub fn run(g: &GlobalArgs, args: InstallArgs) -> anyhow::Result<i32> {
    let extra = read_rules(&args.rules)?;
    if args.sensor == SensorKind::Secmon {
        check_rules(&extra)?;
    }
    let opts = InstallOptions {
        sensor: args.sensor,
        image: args.image.clone(),
        extra_rules: extra,
    };
    let ms = manifests(&opts)?;
    let mut report = ApplyReport::install(args.sensor, opts.image(), args.dry_run);

    if args.dry_run == Some(DryRun::Client) {
        if !matches!(g.output, Format::Table | Format::Wide) {
            let objects: Vec<serde_json::Value> = ms.iter().map(|m| m.object.clone()).collect();
            write_output(g, |w| write_manifests(&objects, g.output, w))?;
            return Ok(exit::CLEAN);
        }
        report.objects = ms.iter().map(result).collect();
        emit(g, &report)?;
        return Ok(exit::CLEAN);
    }

    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    let outcome: anyhow::Result<()> = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        preflight(&client, &needed(&ms), "install the sensor").await?;
        eprintln!(
            "installing the {} sensor ({}) in namespace {}{}",
            args.sensor.as_str(),
            opts.image(),
            args.sensor.namespace(),
            if args.dry_run.is_some() {
                " (server dry run)"
            } else {
                ""
            }
        );
        let mut applier = Applier::new(client, args.dry_run.is_some(), args.force_conflicts);
        for m in &ms {
            let applied = applier
                .apply(m)
                .await
                .with_context(|| format!("cannot apply {}", describe(&ObjectRef::from(m))))?;
            let mut r = result(m);
            r.action = Some(applied.action);
            r.not_validated = !applied.validated;
            report.objects.push(r);
        }
        Ok(())
    });
    if report.objects.iter().any(|o| o.not_validated) {
        report.notes.push(format!(
            "namespace {} does not exist yet, so the server could not check the objects in it",
            args.sensor.namespace()
        ));
    }
    match outcome {
        Ok(()) => {
            emit(g, &report)?;
            Ok(exit::CLEAN)
        }
        Err(e) => {
            if !report.objects.is_empty() {
                report.complete = false;
                emit(g, &report)?;
            }
            Err(e)
        }
    }
}

/// Write to stdout or `--output-file` through `write`, treating a closed pipe as success.
fn write_output(
    g: &GlobalArgs,
    write: impl FnOnce(&mut dyn Write) -> Result<(), RenderError>,
) -> anyhow::Result<()> {
    let r = match &g.output_file {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            write(&mut BufWriter::new(f))
        }
        None => write(&mut BufWriter::new(io::stdout().lock())),
    };
    match r {
        Err(RenderError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_permissions_are_grouped_in_one_line() {
        let ops = [
            Op::new("get", "namespaces").name("secmon"),
            Op::new("patch", "namespaces").name("secmon"),
            Op::new("patch", "daemonsets.apps")
                .namespace(Some("secmon"))
                .name("secmon-sensor"),
        ];
        assert_eq!(
            describe_missing(&ops),
            "get, patch namespaces (cluster-wide); patch daemonsets.apps in namespace secmon"
        );
    }
}
