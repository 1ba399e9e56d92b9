//! `kubectl secmon uninstall`: delete what `install` created (either sensor), and nothing
//! else: only objects with an `install` name that carry the label
//! `app.kubernetes.io/managed-by=kubectl-secmon`. Then wait for the namespaces to go.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::alerts::parse_duration;
use crate::commands::{emit, exit};
use crate::deploy::manifests::owned_objects;
use crate::kube::apply::{Action, Applier, ApplyError, describe, wait_namespace_gone};
use crate::report::install::{ApplyReport, DryRun, ObjectResult};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon uninstall                  remove the sensor (ours or Falco) and wait
  kubectl secmon uninstall --dry-run=server show what would be deleted

Running it again when nothing is left is not an error.")]
pub struct UninstallArgs {
    /// client: list what would be looked for; server: have the API server check the
    /// deletions without doing them
    #[arg(long, value_enum, value_name = "MODE")]
    pub dry_run: Option<DryRun>,
    /// Do not wait for the namespaces to be deleted
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the namespaces to go
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn run(g: &GlobalArgs, args: UninstallArgs) -> anyhow::Result<i32> {
    let owned = owned_objects();
    let mut report = ApplyReport::uninstall(args.dry_run);
    if args.dry_run == Some(DryRun::Client) {
        report.objects = owned
            .iter()
            .map(|r| ObjectResult {
                kind: r.resource.kind.clone(),
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                action: None,
                not_validated: false,
            })
            .collect();
        report
            .notes
            .push("objects deleted only if they exist and carry app.kubernetes.io/managed-by=kubectl-secmon".into());
        emit(g, &report)?;
        return Ok(exit::CLEAN);
    }
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    let outcome: anyhow::Result<()> = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        let applier = Applier::new(client.clone(), args.dry_run.is_some(), false);
        let mut deleted_namespaces = Vec::new();
        for r in &owned {
            let action = match applier.delete(r).await {
                Ok(a) => a,
                Err(ApplyError::NotOurs { what, .. }) => {
                    report.notes.push(format!(
                        "left {what} alone: kubectl-secmon did not create it"
                    ));
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot delete {}", describe(r))),
            };
            if action == Action::Absent {
                continue;
            }
            if r.resource.kind == "Namespace" {
                deleted_namespaces.push(r.name.clone());
            }
            report.objects.push(ObjectResult {
                kind: r.resource.kind.clone(),
                name: r.name.clone(),
                namespace: r.namespace.clone(),
                action: Some(action),
                not_validated: false,
            });
        }
        if args.dry_run.is_none() && !args.no_wait {
            for ns in &deleted_namespaces {
                eprintln!("waiting for namespace {ns} to be deleted");
                wait_namespace_gone(&client, ns, args.timeout)
                    .await
                    .map_err(anyhow::Error::msg)?;
            }
        }
        Ok(())
    });
    if report.objects.is_empty() && outcome.is_ok() {
        report
            .notes
            .push("nothing to uninstall: no object created by kubectl-secmon was found".into());
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
