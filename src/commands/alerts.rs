//! `kubectl secmon alerts`: show the alerts node sensors raise, from a saved JSON-lines
//! file (the sensor's `--alerts-file`, or Falco's own `json_output`; `--follow` keeps
//! reading as it grows, across rotations) or from the sensor on this host (`--local`,
//! which streams `GET http://ADDR/alerts`). Filters by time, priority, rule name,
//! namespace and container; prints through `report::alerts`, one alert as soon as it is
//! read (the reading itself is `sensor::follow`, shared with `simulate verify`). Reading the
//! sensor pods' logs across a cluster is not implemented yet.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;

use crate::cli::GlobalArgs;
use crate::commands::{exit, use_color};
use crate::report::alerts::{AlertPrinter, ReadSummary, warnings};
use crate::report::{Format, RenderError, RenderOptions};
use crate::rules::Priority;
use crate::sensor::alert::{Alert, AlertFilter, Decoded, LineDecoder};
use crate::sensor::follow::{self, AlertSink, alerts_url};
use crate::sensor::http::DEFAULT_ADDR;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl secmon alerts --local                     follow the sensor on this host
  kubectl secmon alerts --local --since 10m         …starting with its last 10 minutes
  kubectl secmon alerts --file alerts.json --priority warning -n prod
  kubectl secmon alerts --file /var/log/secmon/alerts.json --follow --rule '*shell*'
  kubectl secmon alerts --file falco.json -o json | jq .output_fields

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
    /// Keep reading the file as it grows, like tail -f (also across rotations)
    #[arg(long, requires = "file", help_heading = "Source")]
    pub follow: bool,
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
    if args.file.is_none() && args.local.is_none() {
        bail!(
            "reading alerts from the cluster (the sensor pods' logs) is not available yet: use --local [ADDR] to follow the sensor on this host, or --file PATH to read a saved alerts file"
        );
    }
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
        (None, None) => Ok(LineDecoder::default()),
    };
    let decoder = result?;
    view.finish(decoder)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ns)
}

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
