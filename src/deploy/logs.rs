//! The sensor pods' logs merged into one stream of alerts.
//!
//! A sensor pod's log is its stdout and stderr interleaved: alerts as JSON lines (ours or
//! Falco's `json_output`), and the sensor's own messages as plain text (`secmon sensor
//! ready: …`, Falco's start-up banner). [`merge`] reads any number of logs, each an
//! [`AsyncBufRead`] (the API server's log streams, or recorded ones in tests), line by line:
//! a line that starts with `{` is an alert or a malformed one (counted, the first named with
//! its pod and line); any other line is the sensor talking and is counted, not shown.
//!
//! Two orders: [`Order::Time`] reads every log to its end and hands the alerts over sorted
//! by their time (stable: one pod's alerts keep their order); [`Order::Arrival`] hands each
//! alert over as soon as its line is read, for following.

use std::io;

use futures::{AsyncBufRead, AsyncBufReadExt, Stream, StreamExt};

use crate::sensor::alert::{Alert, Decoded};

/// One pod's log.
pub struct PodLog<R> {
    /// `namespace/name`, for messages.
    pub pod: String,
    pub reader: R,
}

/// How merged alerts are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Read every log to its end, then hand alerts over by time.
    Time,
    /// Hand each alert over as it is read.
    Arrival,
}

/// What reading the logs found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Logs read.
    pub streams: usize,
    /// Alerts read (before any filter).
    pub alerts: usize,
    /// Lines that were the sensor's own messages.
    pub text_lines: usize,
    /// JSON lines that were not alerts.
    pub malformed: usize,
    /// The first malformed line: pod, line number (1-based, in that pod's log), why.
    pub first_error: Option<(String, usize, String)>,
    /// Logs that broke off with an error: pod, error.
    pub broken: Vec<(String, String)>,
    /// Reading stopped because the consumer asked to (a closed stdout).
    pub stopped: bool,
}

/// What to do after an alert was handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// One read line, or the end of a log.
enum Item {
    Line(Vec<u8>),
    Failed(io::Error),
    End,
}

/// A log as a stream of whole lines (bytes: a line need not be UTF-8 to be counted),
/// then [`Item::End`]; after an error, nothing more.
fn lines<R: AsyncBufRead + Unpin>(reader: R) -> impl Stream<Item = Item> {
    futures::stream::unfold(Some(reader), |state| async move {
        let mut r = state?;
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) => Some((Item::End, None)),
            Ok(_) => Some((Item::Line(buf), Some(r))),
            Err(e) => Some((Item::Failed(e), None)),
        }
    })
}

/// Per-log state while merging.
struct Cursor {
    pod: String,
    line: usize,
}

/// Classify one line of a log; alerts go to `out`.
fn take_line(
    raw: &[u8],
    cursor: &mut Cursor,
    summary: &mut MergeSummary,
    mut out: impl FnMut(Box<Alert>),
) {
    cursor.line += 1;
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t.trim(),
        Err(_) => {
            // A sensor writes UTF-8 only; bytes that are not are not an alert either.
            if raw.trim_ascii_start().starts_with(b"{") {
                bad(summary, cursor, "not UTF-8 text".to_string());
            } else {
                summary.text_lines += 1;
            }
            return;
        }
    };
    if text.is_empty() {
        return;
    }
    if !text.starts_with('{') {
        summary.text_lines += 1;
        return;
    }
    match Alert::from_json(text) {
        Ok(a) => {
            summary.alerts += 1;
            out(Box::new(a));
        }
        Err(why) => bad(summary, cursor, why),
    }
}

fn bad(summary: &mut MergeSummary, cursor: &Cursor, why: String) {
    summary.malformed += 1;
    if summary.first_error.is_none() {
        summary.first_error = Some((cursor.pod.clone(), cursor.line, why));
    }
}

/// Read `logs` and hand their alerts to `emit` in `order`, until every log ends or
/// `emit` says stop. A log that breaks off is noted in the summary and the others go on.
pub async fn merge<R, F>(logs: Vec<PodLog<R>>, order: Order, mut emit: F) -> MergeSummary
where
    R: AsyncBufRead + Unpin,
    F: FnMut(Decoded) -> Flow,
{
    let mut summary = MergeSummary {
        streams: logs.len(),
        ..MergeSummary::default()
    };
    let mut cursors = Vec::with_capacity(logs.len());
    let mut streams = Vec::with_capacity(logs.len());
    for (i, log) in logs.into_iter().enumerate() {
        cursors.push(Cursor {
            pod: log.pod,
            line: 0,
        });
        streams.push(lines(log.reader).map(move |item| (i, item)).boxed_local());
    }
    let mut all = futures::stream::select_all(streams);
    // Time order: (time, log, position in log, alert).
    let mut held: Vec<(u64, usize, usize, Box<Alert>)> = Vec::new();
    while let Some((i, item)) = all.next().await {
        let Some(cursor) = cursors.get_mut(i) else {
            continue;
        };
        match item {
            Item::Line(raw) => {
                let mut stop = false;
                take_line(&raw, cursor, &mut summary, |a| match order {
                    Order::Arrival => {
                        if emit(Decoded::Alert(a)) == Flow::Stop {
                            stop = true;
                        }
                    }
                    Order::Time => {
                        let t = a.time_ns().unwrap_or(u64::MAX);
                        let seq = held.len();
                        held.push((t, i, seq, a));
                    }
                });
                if stop {
                    summary.stopped = true;
                    return summary;
                }
            }
            Item::Failed(e) => summary.broken.push((cursor.pod.clone(), e.to_string())),
            Item::End => {}
        }
    }
    held.sort_by_key(|(t, i, seq, _)| (*t, *i, *seq));
    for (_, _, _, a) in held {
        if emit(Decoded::Alert(a)) == Flow::Stop {
            summary.stopped = true;
            break;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor as IoCursor;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn alert(time: &str, rule: &str, host: &str) -> String {
        format!(
            r#"{{"hostname":"{host}","output":"x","output_fields":{{}},"priority":"Warning","rule":"{rule}","source":"syscall","tags":[],"time":"{time}"}}"#
        )
    }

    fn run(logs: Vec<(&str, String)>, order: Order) -> (Vec<String>, MergeSummary) {
        let logs = logs
            .into_iter()
            .map(|(pod, text)| PodLog {
                pod: pod.to_string(),
                reader: IoCursor::new(text.into_bytes()),
            })
            .collect();
        let mut got = Vec::new();
        let summary = block_on(merge(logs, order, |d| {
            if let Decoded::Alert(a) = d {
                got.push(format!("{} {}", a.hostname, a.rule));
            }
            Flow::Continue
        }));
        (got, summary)
    }

    #[test]
    fn time_order_interleaves_pods_and_skips_the_sensors_own_lines() {
        let a = format!(
            "secmon sensor ready: 20 syscalls\n{}\n{}\n",
            alert("2026-05-01T10:00:01Z", "r1", "a"),
            alert("2026-05-01T10:00:03Z", "r3", "a")
        );
        let b = format!(
            "{}\nwarning: something\n{}\n{{not json\n",
            alert("2026-05-01T10:00:02Z", "r2", "b"),
            alert("2026-05-01T10:00:03Z", "r3", "b")
        );
        let (got, s) = run(vec![("ns/a", a), ("ns/b", b)], Order::Time);
        assert_eq!(got, ["a r1", "b r2", "a r3", "b r3"]);
        assert_eq!(s.alerts, 4);
        assert_eq!(s.text_lines, 2);
        assert_eq!(s.malformed, 1);
        let (pod, line, _) = s.first_error.unwrap();
        assert_eq!((pod.as_str(), line), ("ns/b", 4));
    }

    #[test]
    fn arrival_order_keeps_each_pods_order_and_a_last_line_without_newline() {
        let a = format!(
            "{}\n{}",
            alert("2026-05-01T10:00:09Z", "late", "a"),
            alert("2026-05-01T10:00:01Z", "early", "a")
        );
        let (got, s) = run(vec![("ns/a", a), ("ns/b", String::new())], Order::Arrival);
        assert_eq!(got, ["a late", "a early"]);
        assert_eq!(s.streams, 2);
        assert!(s.broken.is_empty());
    }

    #[test]
    fn stop_ends_reading() {
        let a = format!(
            "{}\n{}\n",
            alert("2026-05-01T10:00:01Z", "r1", "a"),
            alert("2026-05-01T10:00:02Z", "r2", "a")
        );
        let logs = vec![PodLog {
            pod: "ns/a".to_string(),
            reader: IoCursor::new(a.into_bytes()),
        }];
        let mut n = 0;
        let s = block_on(merge(logs, Order::Arrival, |_| {
            n += 1;
            Flow::Stop
        }));
        assert_eq!(n, 1);
        assert!(s.stopped);
    }
}
