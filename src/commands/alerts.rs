//! `kubectl secmon alerts`: show the alerts node sensors raise, from the cluster (the
//! logs of the sensor pods on every node, or `--node`; ours or Falco's, merged by
//! `deploy::logs`), from a saved JSON-lines file (the sensor's `--alerts-file`, or Falco's
//! own `json_output`; `--follow` keeps reading as it grows, across rotations) or from the
//! sensor on this host (`--local`, which streams `GET http://ADDR/alerts`). Filters by
//! time, priority, rule name, namespace and container; prints through `report::alerts`,
//! one alert as soon as it is read (file and local reading is `sensor::follow`, shared
//! with `simulate verify`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::{exit, use_color};
use crate::deploy::SensorKind;
use crate::deploy::logs::{Flow, Order, PodLog, merge};
use crate::kube::sensor;
use crate::report::alerts::{AlertPrinter, ReadSummary, warnings};
use crate::report::{Format, RenderError, RenderOptions};
use crate::rules::Priority;
use crate::sensor::alert::{Alert, AlertFilter, Decoded, LineDecoder};
use crate::sensor::follow::{self, AlertSink, alerts_url};
use crate::sensor::http::DEFAULT_ADDR;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon alerts                             every sensor pod's alerts so far, by time
  kubectl secmon alerts -f --node worker-1          follow the sensor on one node
  kubectl secmon alerts --sensor falco --since 1h   from Falco pods (install --sensor falco)
  kubectl secmon alerts --local                     follow the sensor on this host
  kubectl secmon alerts --local --since 10m         …starting with its last 10 minutes
  kubectl secmon alerts --file alerts.json --priority warning -n prod
  kubectl secmon alerts --file /var/log/secmon/alerts.json --follow --rule '*shell*'
  kubectl secmon alerts --file falco.json -o json | jq .output_fields

Without --file or --local, alerts come from the logs of the sensor pods (namespace secmon,
label app.kubernetes.io/name=secmon-sensor; with --sensor falco, namespace falco, label
app.kubernetes.io/name=falco): sorted by time, or with --follow as they arrive.
-o json prints JSON lines: one alert per line, in Falco's alert format.")]
pub struct AlertsArgs {
    /// Read alerts from a JSON-lines file (the sensor's --alerts-file, or Falco's json_output)
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "local",
        help_heading = "Source"
    )]
    pub file: Option<PathBuf>,
    /// Keep reading as alerts come: the sensor pods' logs, or the file as it grows (like
    /// tail -f, also across rotations); --local always follows
    #[arg(short = 'f', long, help_heading = "Source")]
    pub follow: bool,
    /// Only the sensor pod on this node (cluster mode)
    #[arg(long, value_name = "NODE", conflicts_with_all = ["file", "local"], help_heading = "Source")]
    pub node: Option<String>,
    /// Whose pods to read in cluster mode: ours, or upstream Falco's
    #[arg(long, value_enum, default_value = "secmon", help_heading = "Source")]
    pub sensor: SensorKind,
    /// Follow the sensor running on this host, at ADDR (its --metrics-addr)
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = DEFAULT_ADDR,
        help_heading = "Source"
    )]
    pub local: Option<String>,
    /// Only alerts from the last DURATION (30s, 10m, 2h, 1d); with --local, the sensor first
    /// replays what it still holds from that time
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Filters")]
    pub since: Option<Duration>,
    /// Only alerts of this priority or more severe (emergency … debug)
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority, help_heading = "Filters")]
    pub priority: Option<Priority>,
    /// Only rules whose name matches this glob (* and ?, case-insensitive); repeatable
    #[arg(long = "rule", value_name = "GLOB", help_heading = "Filters")]
    pub rules: Vec<String>,
    /// Only alerts from containers whose id starts with ID
    #[arg(long, value_name = "ID", help_heading = "Filters")]
    pub container: Option<String>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).ok_or_else(|| {
        format!("unknown priority {s:?}: use emergency, alert, critical, error, warning, notice, informational or debug")
    })
}

/// `30s`, `10m`, `2h`, `1d`, `1h30m`, `500ms`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad =
        || format!("invalid duration {s:?}: use a number with a unit, such as 30s, 10m, 2h or 1d");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(bad()),
        };
        total = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .and_then(|d| total.checked_add(d))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub fn run(g: &GlobalArgs, args: AlertsArgs) -> anyhow::Result<i32> {
    let opts = RenderOptions {
        format: g.output,
        color: use_color(g),
    };
    let printer = AlertPrinter::new(opts)?;
    let filter = AlertFilter {
        since_ns: args.since.map(|d| now_ns().saturating_sub(duration_ns(d))),
        min_priority: args.priority,
        rules: args.rules.clone(),
        namespace: if g.all_namespaces {
            None
        } else {
            g.namespace.clone()
        },
        container: args.container.clone(),
    };
    let mut out: Box<dyn Write> = match &g.output_file {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut view = View {
        printer,
        filter,
        out: &mut *out,
        summary: ReadSummary::default(),
        streaming: false,
        closed: false,
        batch: Vec::new(),
    };
    let result = match (&args.file, &args.local) {
        (Some(path), _) => {
            view.summary.source = path.display().to_string();
            view.streaming = args.follow;
            if args.follow {
                follow::follow_file(path, &mut view)
            } else {
                follow::read_file(path, &mut view)
            }
        }
        (None, Some(addr)) => {
            view.summary.source = alerts_url(addr, args.since);
            view.streaming = true;
            follow::follow_local(addr, args.since, &mut view)
        }
        (None, None) => read_cluster(g, &args, &mut view),
    };
    let decoder = result?;
    view.finish(decoder)
}

use crate::sensor::clock::now_ns;

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Where decoded lines go: filtered, then printed at once, or, for a table of a whole
/// file, collected to fit the columns to them.
struct View<'a> {
    printer: AlertPrinter,
    filter: AlertFilter,
    out: &'a mut dyn Write,
    summary: ReadSummary,
    /// Following (a growing file, a sensor): print and flush each alert as it comes.
    streaming: bool,
    /// stdout was closed (`| head`): stop reading.
    closed: bool,
    batch: Vec<Alert>,
}

impl AlertSink for View<'_> {
    fn take(&mut self, d: Decoded) {
        View::take(self, d);
    }

    fn done(&self) -> bool {
        self.closed
    }
}

impl View<'_> {
    fn take(&mut self, d: Decoded) {
        match d {
            Decoded::Skipped(n) => self.summary.skipped += n,
            Decoded::Alert(a) if self.filter.matches(&a) => {
                self.summary.shown += 1;
                if self.collects() {
                    self.batch.push(*a);
                } else {
                    self.print(&a);
                }
            }
            Decoded::Alert(_) => {}
        }
    }

    /// A table of a whole file is fitted to its rows, so they are collected first; every
    /// other output is written as it is read.
    fn collects(&self) -> bool {
        !self.streaming && matches!(self.printer.format(), Format::Table | Format::Wide)
    }

    fn print(&mut self, a: &Alert) {
        if self.closed {
            return;
        }
        let r = self.printer.print(a, self.out);
        let r = r.and_then(|()| {
            if self.streaming {
                self.out.flush()?;
            }
            Ok(())
        });
        if let Err(RenderError::Io(e)) = r
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed = true;
        }
    }

    fn finish(mut self, mut decoder: LineDecoder) -> anyhow::Result<i32> {
        if self.closed {
            // The reader went away (`| head`): what was not read is not worth a warning.
            return Ok(exit::CLEAN);
        }
        decoder.finish(|d| self.take(d));
        let batch = std::mem::take(&mut self.batch);
        self.printer.fit(&batch);
        for a in &batch {
            self.print(a);
        }
        match self.out.flush() {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                return Err(e).context("writing the alerts");
            }
            _ => {}
        }
        self.summary.malformed = decoder.malformed;
        self.summary.first_error = decoder.first_error.clone();
        if decoder.parsed == 0 && decoder.malformed > 0 {
            let (line, why) = decoder.first_error.unwrap_or_default();
            bail!(
                "{}: no alerts found: line {line} is not an alert ({why}); expected JSON lines as the sensor's --alerts-file or Falco's json_output write them",
                self.summary.source
            );
        }
        for w in warnings(&self.summary) {
            eprintln!("{w}");
        }
        if self.summary.shown == 0 && self.collects() {
            eprintln!("No alerts found.");
        }
        Ok(exit::CLEAN)
    }
}

/// Read the logs of the sensor pods (every node, or `--node`), merged: by time, or with
/// `--follow` as they come until Ctrl-C or every pod's log ends. A pod whose log cannot be
/// opened (it never ran) is named on stderr and the others are read; when none can be,
/// that is the error.
fn read_cluster(g: &GlobalArgs, args: &AlertsArgs, view: &mut View) -> anyhow::Result<LineDecoder> {
    let kind = args.sensor;
    view.streaming = args.follow;
    view.summary.source = format!("the {} sensor pods' logs", kind.as_str());
    let rt = crate::kube::runtime().context("cannot start the async runtime")?;
    rt.block_on(async {
        let client = crate::kube::client(g).await?;
        let pods = sensor::pods(&client, kind, args.node.as_deref()).await?;
        if pods.is_empty() {
            let place = match &args.node {
                Some(n) => format!("on node {n}"),
                None => "on any node".to_string(),
            };
            bail!(
                "no {} sensor pod {place} (namespace {}, label {}): is it installed? see `kubectl secmon status{}`",
                kind.as_str(),
                kind.namespace(),
                kind.selector(),
                if kind == SensorKind::Falco { " --sensor falco" } else { "" }
            );
        }
        let opened = futures::future::join_all(
            pods.iter()
                .map(|p| sensor::log_stream(&client, kind, p, args.follow, args.since)),
        )
        .await;
        let mut logs = Vec::new();
        let mut failures = Vec::new();
        for (pod, r) in pods.iter().zip(opened) {
            match r {
                Ok(reader) => logs.push(PodLog {
                    pod: format!(
                        "{}/{}",
                        kind.namespace(),
                        pod.metadata.name.clone().unwrap_or_default()
                    ),
                    reader: Box::pin(reader),
                }),
                Err(why) => failures.push(why),
            }
        }
        if logs.is_empty() {
            let more = match failures.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} other pod(s) likewise)", n - 1),
            };
            bail!("{}{more}", failures.first().cloned().unwrap_or_default());
        }
        for f in &failures {
            eprintln!("warning: {f}");
        }
        let order = if args.follow {
            Order::Arrival
        } else {
            Order::Time
        };
        let merged = merge(logs, order, |d| {
            view.take(d);
            if view.closed { Flow::Stop } else { Flow::Continue }
        });
        let summary = if args.follow {
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::select! {
                s = merged => Some(s),
                _ = ctrl_c => None,
            }
        } else {
            Some(merged.await)
        };
        let mut decoder = LineDecoder::default();
        if let Some(s) = summary {
            for (pod, why) in &s.broken {
                eprintln!("warning: the log of pod {pod} broke off: {why}");
            }
            decoder.parsed = s.alerts;
            decoder.malformed = s.malformed;
            decoder.first_error = s
                .first_error
                .map(|(pod, line, why)| (line, format!("{why} (pod {pod})")));
        }
        Ok(decoder)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "m", "10x", "1.5h", "-1m", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
