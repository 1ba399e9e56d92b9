//! `kubectl secmon status`: the sensor on every node. Lists the nodes and the sensor's
//! pods, reads each pod's `/metrics` through the API server's pod proxy (a pod that does
//! not answer is "metrics unavailable", not a failure), and reports through
//! `report::install`. Exit code 1 when a node that should run a sensor has no ready one.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::alerts::parse_duration;
use crate::commands::emit;
use crate::deploy::SensorKind;
use crate::deploy::status::{node_statuses, with_metrics};
use crate::kube::sensor;
use crate::report::install::StatusReport;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon status                  every node: ready, version, restarts, events, drops, alerts
  kubectl secmon status -o wide          …with the pod names
  kubectl secmon status --sensor falco   the same for an upstream Falco installed by `install --sensor falco`

Exit code 1 when a node has no ready sensor (missing or not ready); nodes the sensor does
not run on (not Linux, not amd64) are listed as not-applicable and do not count.")]
pub struct StatusArgs {
    /// The sensor to look for
    #[arg(long, value_enum, default_value = "secmon")]
    pub sensor: SensorKind,
    /// How long to wait for each pod's /metrics
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub metrics_timeout: Duration,
}

pub fn run(g: &GlobalArgs, args: StatusArgs) -> anyhow::Result<i32> {
    let kind = args.sensor;
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    let report = rt.block_on(async {
        let client = crate::kube::client(g).await?;
        // Concurrently, but a failure is reported in this order, the same every time.
        let (nodes, ds, pods) = futures::future::join3(
            sensor::nodes(&client),
            sensor::daemon_set(&client, kind),
            sensor::pods(&client, kind, None),
        )
        .await;
        let (nodes, ds, pods) = (nodes?, ds?, pods?);
        let mut rows = node_statuses(kind, &nodes, &pods);
        let scrapes = rows.iter().map(|row| {
            let client = client.clone();
            let pod = row.pod.clone();
            async move {
                match pod {
                    Some(p) => Some(
                        sensor::metrics(&client, kind.namespace(), &p, args.metrics_timeout).await,
                    ),
                    None => None,
                }
            }
        });
        let scraped = futures::future::join_all(scrapes).await;
        for (row, s) in rows.iter_mut().zip(scraped) {
            if let Some(s) = s {
                with_metrics(kind, row, s.as_deref().map_err(String::as_str));
            }
        }
        anyhow::Ok(StatusReport::new(kind, ds.is_some(), rows))
    })?;
    emit(g, &report)
}
