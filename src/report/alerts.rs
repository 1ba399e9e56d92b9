//! Output of `kubectl secmon alerts`: alerts printed one at a time, as they are read, so
//! that following a sensor or a growing file shows each alert when it arrives.
//!
//! - `table`: one line per alert: TIME (UTC, to the second), PRIORITY, RULE, WHERE (the
//!   pod as `namespace/pod`, else the container id, else `host:<hostname>`), PROCESS (the
//!   command line, else the process name) and DETAILS (a few telling fields: the file or
//!   connection, the executable, the user). Columns have fixed widths while following, and
//!   fit the content (within the same limits) when the whole input is known; long values
//!   are cut with `…`.
//! - `wide`: the same with nanosecond times, the host, nothing cut, and every other output
//!   field in DETAILS.
//! - `json`: **JSON lines**, one alert object per line, exactly the alert format (Falco's),
//!   whether following or not: `| jq` handles them one by one, `| jq -s` collects them into
//!   an array, and the output can be read again with `--file`.
//! - `yaml`: one YAML document per alert (`---` separated).

use std::io::Write;

use super::{Format, RenderError, RenderOptions};
use crate::rules::{Priority, one_line};
use crate::sensor::alert::{Alert, iso8601};

const HEADERS: [&str; 6] = ["TIME", "PRIORITY", "RULE", "WHERE", "PROCESS", "DETAILS"];
const WIDE_HEADERS: [&str; 7] = [
    "TIME", "PRIORITY", "RULE", "HOST", "WHERE", "PROCESS", "DETAILS",
];
/// Column widths of the table (the last column is never padded or cut).
const WIDTHS: [usize; 6] = [20, 13, 36, 28, 28, 0];
/// Minimum widths of the wide table while following.
const WIDE_WIDTHS: [usize; 7] = [30, 13, 36, 16, 28, 28, 0];

/// Fields DETAILS shows in the table, in this order, when present, and their labels.
const DETAIL_FIELDS: [(&str, &str); 6] = [
    ("fd.name", "file"),
    ("proc.exepath", "exe"),
    ("user.name", "user"),
    ("proc.pname", "parent"),
    ("container.image.repository", "image"),
    ("evt.type", "evt"),
];
/// Fields shown elsewhere in a row, or not worth showing.
const SHOWN_ELSEWHERE: [&str; 7] = [
    "evt.time",
    "k8s.ns.name",
    "k8s.pod.name",
    "container.id",
    "proc.name",
    "proc.cmdline",
    "evt.hostname",
];

/// Writes alerts in the chosen format, one call per alert.
#[derive(Debug)]
pub struct AlertPrinter {
    format: Format,
    color: bool,
    widths: Vec<usize>,
    header_done: bool,
}

impl AlertPrinter {
    /// A printer for `-o table|wide|json|yaml`; other formats are an error.
    pub fn new(opts: RenderOptions) -> Result<AlertPrinter, RenderError> {
        let widths = match opts.format {
            Format::Table => WIDTHS.to_vec(),
            Format::Wide => WIDE_WIDTHS.to_vec(),
            Format::Json | Format::Yaml => Vec::new(),
            other => {
                let name = serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                return Err(RenderError::Unsupported(format!(
                    "-o {name} is not available for alerts: use -o table, wide, json or yaml"
                )));
            }
        };
        Ok(AlertPrinter {
            format: opts.format,
            color: opts.color,
            widths,
            header_done: false,
        })
    }

    /// The format it prints.
    pub fn format(&self) -> Format {
        self.format
    }

    fn wide(&self) -> bool {
        self.format == Format::Wide
    }

    /// Fit the table's columns to these alerts (within the usual limits) before printing
    /// them; when following, the fixed widths are used instead.
    pub fn fit(&mut self, alerts: &[Alert]) {
        if !matches!(self.format, Format::Table | Format::Wide) {
            return;
        }
        let headers: &[&str] = if self.wide() { &WIDE_HEADERS } else { &HEADERS };
        let mut fitted: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for a in alerts {
            for (i, cell) in row(a, self.wide()).iter().enumerate() {
                if let Some(w) = fitted.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        for (i, w) in self.widths.iter_mut().enumerate() {
            let last = i + 1 == headers.len();
            *w = if last {
                0
            } else if self.format == Format::Wide {
                fitted[i]
            } else {
                fitted[i].min(*w)
            };
        }
    }

    /// Print one alert.
    pub fn print(&mut self, alert: &Alert, out: &mut dyn Write) -> Result<(), RenderError> {
        match self.format {
            Format::Json => writeln!(out, "{}", alert.to_json_line())?,
            Format::Yaml => {
                let text = super::to_yaml(alert)?;
                let nl = if text.ends_with('\n') { "" } else { "\n" };
                write!(out, "---\n{text}{nl}")?;
            }
            _ => {
                if !self.header_done {
                    let headers: Vec<String> = if self.wide() {
                        WIDE_HEADERS.iter().map(|s| s.to_string()).collect()
                    } else {
                        HEADERS.iter().map(|s| s.to_string()).collect()
                    };
                    let line = self.line(&headers, None);
                    writeln!(out, "{line}")?;
                    self.header_done = true;
                }
                let cells = row(alert, self.wide());
                let line = self.line(&cells, Some(alert.priority));
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    }

    fn line(&self, cells: &[String], priority: Option<Priority>) -> String {
        let cut = !self.wide();
        let mut line = String::new();
        for (i, (cell, &width)) in cells.iter().zip(&self.widths).enumerate() {
            let last = i + 1 == cells.len();
            let text = if cut && !last {
                truncate(cell, width)
            } else {
                cell.clone()
            };
            let pad = if last {
                0
            } else {
                width.saturating_sub(text.chars().count())
            };
            match (i, priority) {
                (1, Some(p)) if self.color => line.push_str(&paint(&text, p)),
                _ => line.push_str(&text),
            }
            if !last {
                line.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        line.truncate(line.trim_end().len());
        line
    }
}

fn paint(text: &str, p: Priority) -> String {
    let code = match p {
        Priority::Emergency | Priority::Alert | Priority::Critical | Priority::Error => "31",
        Priority::Warning => "33",
        Priority::Notice => return text.to_string(),
        Priority::Informational | Priority::Debug => "90",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn truncate(s: &str, width: usize) -> String {
    if width == 0 || s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// A field's value as text: strings as they are, other JSON as JSON; `None` for null,
/// absent, empty and `<NA>`.
fn text(a: &Alert, key: &str) -> Option<String> {
    let v = a.output_fields.get(key)?;
    let s = match v {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (!s.is_empty() && s != "<NA>").then(|| one_line(&s).into_owned())
}

/// The cells of an alert's row (unstyled, uncut).
pub fn row(a: &Alert, wide: bool) -> Vec<String> {
    let time = match a.time_ns() {
        Some(ns) if wide => iso8601(ns),
        Some(ns) => {
            let full = iso8601(ns);
            format!("{}Z", &full[..19])
        }
        None => a.time.clone(),
    };
    let pod = match (text(a, "k8s.ns.name"), text(a, "k8s.pod.name")) {
        (Some(ns), Some(pod)) => Some(format!("{ns}/{pod}")),
        (Some(ns), None) => Some(format!("{ns}/?")),
        _ => None,
    };
    let container = text(a, "container.id").filter(|c| c != "host");
    let host = one_line(&a.hostname).into_owned();
    let place = if wide {
        match (pod, container) {
            (Some(p), Some(c)) => format!("{p} ({c})"),
            (Some(p), None) => p,
            (None, Some(c)) => c,
            (None, None) => "host".to_string(),
        }
    } else {
        pod.or(container)
            .unwrap_or_else(|| format!("host:{}", if host.is_empty() { "?" } else { &host }))
    };
    let process = text(a, "proc.cmdline")
        .or_else(|| text(a, "proc.name"))
        .unwrap_or_default();
    let details = details(a, wide);
    let mut cells = vec![
        time,
        a.priority.as_str().to_string(),
        one_line(&a.rule).into_owned(),
    ];
    if wide {
        cells.push(host);
    }
    cells.extend([place, process, details]);
    cells
}

fn details(a: &Alert, wide: bool) -> String {
    let mut parts = Vec::new();
    let connection = match (text(a, "fd.sip"), text(a, "fd.sport")) {
        (Some(ip), Some(port)) => Some(format!("{ip}:{port}")),
        (Some(ip), None) => Some(ip),
        _ => None,
    };
    let mut shown: Vec<&str> = SHOWN_ELSEWHERE.to_vec();
    if let Some(c) = connection {
        parts.push(format!("→ {c}"));
        shown.extend(["fd.sip", "fd.sport"]);
    }
    for (key, label) in DETAIL_FIELDS {
        if wide || parts.len() < 3 {
            if key == "fd.name" && parts.iter().any(|p| p.starts_with('→')) {
                // A socket's fd.name repeats the connection.
                shown.push(key);
                continue;
            }
            if let Some(v) = text(a, key) {
                parts.push(format!("{label}={v}"));
                shown.push(key);
            }
        }
    }
    if wide {
        for (k, _) in &a.output_fields {
            if shown.contains(&k.as_str()) {
                continue;
            }
            if let Some(v) = text(a, k) {
                parts.push(format!("{k}={v}"));
            }
        }
    }
    if parts.is_empty() && !wide {
        // A rule whose output names none of the usual fields: show its message.
        if let Some((_, msg)) = a.output.split_once(": ") {
            let msg = msg
                .strip_prefix(a.priority.as_str())
                .unwrap_or(msg)
                .trim_start();
            return one_line(msg).into_owned();
        }
    }
    parts.join(" ")
}

/// What reading the input found, for the closing warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// The file or address read.
    pub source: String,
    pub shown: usize,
    pub malformed: usize,
    /// The first malformed line's number and what was wrong with it.
    pub first_error: Option<(usize, String)>,
    /// Alerts the sensor said this reader missed (it read too slowly).
    pub skipped: u64,
}

/// The warnings to print on stderr after the alerts (none when all went well).
pub fn warnings(s: &ReadSummary) -> Vec<String> {
    let mut out = Vec::new();
    if s.malformed > 0 {
        let (line, why) = s.first_error.clone().unwrap_or((0, String::new()));
        out.push(format!(
            "warning: {}: skipped {} line(s) that are not alerts (first: line {line}: {})",
            s.source,
            s.malformed,
            one_line(&why)
        ));
    }
    if s.skipped > 0 {
        out.push(format!(
            "warning: {}: the sensor skipped {} alert(s) because this reader fell behind",
            s.source, s.skipped
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(json: &str) -> Alert {
        Alert::from_json(json).unwrap()
    }

    #[test]
    fn rows_show_where_process_and_details() {
        let a = alert(
            r#"{"hostname":"node-1","output":"10:00:00.123456789: Warning Shadow read","priority":"Warning",
                "rule":"Read sensitive file untrusted","time":"2026-05-01T10:00:00.123456789Z",
                "output_fields":{"evt.time":1,"fd.name":"/etc/shadow","proc.name":"cat","proc.cmdline":"cat /etc/shadow",
                "proc.exepath":"/usr/bin/cat","user.name":"root","container.id":"3ad7b26ded6d",
                "k8s.ns.name":"default","k8s.pod.name":"web-0","proc.pid":42}}"#,
        );
        assert_eq!(
            row(&a, false),
            [
                "2026-05-01T10:00:00Z",
                "Warning",
                "Read sensitive file untrusted",
                "default/web-0",
                "cat /etc/shadow",
                "file=/etc/shadow exe=/usr/bin/cat user=root"
            ]
        );
        let wide = row(&a, true);
        assert_eq!(wide[0], "2026-05-01T10:00:00.123456789Z");
        assert_eq!(wide[3], "node-1");
        assert_eq!(wide[4], "default/web-0 (3ad7b26ded6d)");
        assert!(wide[6].ends_with("proc.pid=42"), "{}", wide[6]);

        let net = alert(
            r#"{"hostname":"node-1","priority":"Notice","rule":"Outbound","time":"2026-05-01T10:00:00Z",
                "output_fields":{"fd.name":"10.0.0.5:43210->1.2.3.4:443","fd.sip":"1.2.3.4","fd.sport":443,
                "container.id":"3ad7b26ded6d","k8s.ns.name":null,"proc.name":"curl"}}"#,
        );
        let r = row(&net, false);
        assert_eq!(r[3], "3ad7b26ded6d");
        assert_eq!(r[4], "curl");
        assert_eq!(r[5], "→ 1.2.3.4:443");

        let host = alert(
            r#"{"hostname":"node-1","output":"10:00:00.000000000: Debug Falco internal: syscall event drop. 5 system calls dropped in last second.",
                "priority":"Debug","rule":"Falco internal: syscall event drop","time":"2026-05-01T10:00:00Z","source":"internal",
                "output_fields":{"n_drops":5}}"#,
        );
        let r = row(&host, false);
        assert_eq!(r[3], "host:node-1");
        assert_eq!(
            r[5],
            "Falco internal: syscall event drop. 5 system calls dropped in last second."
        );
    }

    #[test]
    fn table_lines_are_aligned_cut_and_optionally_coloured() {
        let a = alert(
            r#"{"hostname":"h","priority":"Critical","rule":"A very long rule name that goes on and on and on",
                "time":"2026-05-01T10:00:00Z","output_fields":{"proc.name":"sh","k8s.ns.name":"ns","k8s.pod.name":"p"}}"#,
        );
        let mut p = AlertPrinter::new(RenderOptions {
            format: Format::Table,
            color: false,
        })
        .unwrap();
        let mut out = Vec::new();
        p.print(&a, &mut out).unwrap();
        p.print(&a, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("TIME                  PRIORITY       RULE"));
        assert_eq!(lines[1].find("Critical"), lines[0].find("PRIORITY"));
        // Aligned in characters (the cut rule ends in a multi-byte `…`).
        let col = |l: &str, n: &str| l.find(n).map(|b| l[..b].chars().count());
        assert_eq!(col(lines[1], "ns/p"), col(lines[0], "WHERE"));
        assert!(lines[1].contains("A very long rule name that goes on…"));

        let mut c = AlertPrinter::new(RenderOptions {
            format: Format::Table,
            color: true,
        })
        .unwrap();
        let mut out = Vec::new();
        c.print(&a, &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("\x1b[31mCritical\x1b[0m")
        );

        let mut fitted = AlertPrinter::new(RenderOptions {
            format: Format::Table,
            color: false,
        })
        .unwrap();
        fitted.fit(std::slice::from_ref(&a));
        let mut out = Vec::new();
        fitted.print(&a, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("TIME                  PRIORITY  RULE"),
            "{text}"
        );
    }

    #[test]
    fn json_is_lines_and_other_formats_are_refused() {
        let a = alert(r#"{"priority":"Debug","rule":"R","time":"2026-05-01T10:00:00Z"}"#);
        let mut p = AlertPrinter::new(RenderOptions {
            format: Format::Json,
            color: false,
        })
        .unwrap();
        let mut out = Vec::new();
        p.print(&a, &mut out).unwrap();
        p.print(&a, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, format!("{0}\n{0}\n", a.to_json_line()));
        let err = AlertPrinter::new(RenderOptions {
            format: Format::Sarif,
            color: false,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("-o sarif is not available"),
            "{err}"
        );
    }

    #[test]
    fn warnings_name_the_first_bad_line() {
        assert!(warnings(&ReadSummary::default()).is_empty());
        let w = warnings(&ReadSummary {
            source: "a.json".into(),
            shown: 1,
            malformed: 2,
            first_error: Some((7, "expected value\nat column 1".into())),
            skipped: 3,
        });
        assert_eq!(
            w[0],
            "warning: a.json: skipped 2 line(s) that are not alerts (first: line 7: expected value\\nat column 1)"
        );
        assert!(w[1].contains("skipped 3 alert(s)"));
    }
}
