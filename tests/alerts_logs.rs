//! `alerts` in cluster mode, on recorded log streams: the sensor pods' logs (two secmon
//! sensors and a Falco pod, each with its own non-alert lines, one with a truncated line)
//! merged by `deploy::logs::merge` and filtered with the same `AlertFilter` as the local
//! and file modes. No pod runs in the test control plane, so this is where merging and
//! filtering are tested; tests/install.rs checks pod discovery against the API server.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::Cursor;
use futures::{AsyncBufRead, AsyncRead};
use secmon::deploy::logs::{Flow, MergeSummary, Order, PodLog, merge};
use secmon::rules::Priority;
use secmon::sensor::alert::{Alert, AlertFilter, Decoded, parse_iso8601};

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/alerts")
            .join(name),
    )
    .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Merge `logs` and keep the alerts `filter` passes, as `host rule`.
fn read<R: AsyncBufRead + Unpin>(
    logs: Vec<PodLog<R>>,
    order: Order,
    filter: &AlertFilter,
) -> (Vec<String>, MergeSummary) {
    let mut got = Vec::new();
    let summary = block_on(merge(logs, order, |d| {
        if let Decoded::Alert(a) = d
            && filter.matches(&a)
        {
            got.push(format!("{} {}", a.hostname, a.rule));
        }
        Flow::Continue
    }));
    (got, summary)
}

fn three_pods() -> Vec<PodLog<Cursor<Vec<u8>>>> {
    [
        ("secmon/secmon-sensor-n1", "secmon-node-1.log"),
        ("secmon/secmon-sensor-n2", "secmon-node-2.log"),
        ("falco/falco-n3", "falco-node-3.log"),
    ]
    .into_iter()
    .map(|(pod, file)| PodLog {
        pod: pod.to_string(),
        reader: Cursor::new(recorded(file)),
    })
    .collect()
}

#[test]
fn pods_are_merged_by_time_with_the_sensors_own_lines_skipped_and_bad_lines_named() {
    let (got, s) = read(three_pods(), Order::Time, &AlertFilter::default());
    assert_eq!(
        got,
        [
            "node-1 Credential file read by untrusted process",
            "node-2 Terminal shell in container",
            "node-3 Read sensitive file untrusted",
            "node-1 Netcat reverse shell in container",
            "node-2 Falco internal: syscall event drop",
            "node-1 Package management process launched in container",
            "node-3 Terminal shell in container",
        ]
    );
    assert_eq!(s.streams, 3);
    assert_eq!(s.alerts, 7);
    // The secmon sensors' ready lines and watch warning, Falco's banner, a stray line.
    assert_eq!(s.text_lines, 2 + 1 + 5 + 1);
    assert_eq!(s.malformed, 1);
    let (pod, line, why) = s.first_error.unwrap();
    assert_eq!((pod.as_str(), line), ("secmon/secmon-sensor-n2", 3));
    assert!(why.contains("EOF"), "{why}");
    assert!(s.broken.is_empty() && !s.stopped);
}

#[test]
fn the_local_modes_filters_apply_to_merged_pods_ours_and_falcos() {
    let only = |f: AlertFilter| read(three_pods(), Order::Time, &f).0;
    assert_eq!(
        only(AlertFilter {
            namespace: Some("prod".into()),
            min_priority: Some(Priority::Warning),
            ..AlertFilter::default()
        }),
        [
            "node-1 Credential file read by untrusted process",
            "node-2 Terminal shell in container",
            "node-3 Read sensitive file untrusted",
            "node-1 Netcat reverse shell in container",
        ]
    );
    assert_eq!(
        only(AlertFilter {
            rules: vec!["*shell*".into()],
            ..AlertFilter::default()
        }),
        [
            "node-2 Terminal shell in container",
            "node-1 Netcat reverse shell in container",
            "node-3 Terminal shell in container",
        ]
    );
    assert_eq!(
        only(AlertFilter {
            container: Some("e1c2".into()),
            ..AlertFilter::default()
        }),
        [
            "node-3 Read sensitive file untrusted",
            "node-3 Terminal shell in container"
        ]
    );
    assert_eq!(
        only(AlertFilter {
            since_ns: parse_iso8601("2026-11-27T10:00:05Z"),
            ..AlertFilter::default()
        }),
        [
            "node-2 Falco internal: syscall event drop",
            "node-1 Package management process launched in container",
            "node-3 Terminal shell in container",
        ]
    );
    assert!(
        only(AlertFilter {
            namespace: Some("nowhere".into()),
            ..AlertFilter::default()
        })
        .is_empty()
    );
}

/// A log that arrives in pieces: each read returns at most `chunk` bytes (a line may be
/// cut anywhere, across reads), then optionally fails instead of ending.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
    fail_at_end: bool,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pos == this.data.len() {
            if this.fail_at_end {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "stream reset by the API server",
                )));
            }
            return Poll::Ready(Ok(0));
        }
        let n = this.chunk.min(buf.len()).min(this.data.len() - this.pos);
        buf[..n].copy_from_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

fn trickle(file: &str, chunk: usize, fail_at_end: bool) -> futures::io::BufReader<Trickle> {
    futures::io::BufReader::with_capacity(
        16,
        Trickle {
            data: recorded(file),
            pos: 0,
            chunk,
            fail_at_end,
        },
    )
}

#[test]
fn following_hands_alerts_over_as_read_keeping_each_pods_order_across_cut_lines() {
    let logs = vec![
        PodLog {
            pod: "secmon/secmon-sensor-n1".to_string(),
            reader: trickle("secmon-node-1.log", 7, false),
        },
        PodLog {
            pod: "falco/falco-n3".to_string(),
            reader: trickle("falco-node-3.log", 13, false),
        },
        PodLog {
            pod: "secmon/secmon-sensor-n2".to_string(),
            // This pod's log breaks off at its end: the others are still read.
            reader: trickle("secmon-node-2.log", 5, true),
        },
    ];
    let mut by_host: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut order = Vec::new();
    let s = block_on(merge(logs, Order::Arrival, |d| {
        if let Decoded::Alert(a) = d {
            let a: Alert = *a;
            order.push(a.hostname.clone());
            by_host.entry(a.hostname).or_default().push(a.rule);
        }
        Flow::Continue
    }));
    assert_eq!(s.alerts, 7);
    assert_eq!(
        by_host["node-1"],
        [
            "Credential file read by untrusted process",
            "Netcat reverse shell in container",
            "Package management process launched in container"
        ]
    );
    assert_eq!(
        by_host["node-3"],
        [
            "Read sensitive file untrusted",
            "Terminal shell in container"
        ]
    );
    assert_eq!(
        by_host["node-2"],
        [
            "Terminal shell in container",
            "Falco internal: syscall event drop"
        ]
    );
    // Interleaved as read, not one pod after another.
    let first_n2 = order.iter().position(|h| h == "node-2").unwrap();
    let last_n1 = order.iter().rposition(|h| h == "node-1").unwrap();
    assert!(first_n2 < last_n1, "{order:?}");
    assert_eq!(
        s.broken,
        [(
            "secmon/secmon-sensor-n2".to_string(),
            "stream reset by the API server".to_string()
        )]
    );
    assert_eq!(s.malformed, 1);
}
