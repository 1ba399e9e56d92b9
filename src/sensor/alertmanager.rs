//! The Alertmanager sink (`--alertmanager URL`): alerts POSTed to `URL/api/v2/alerts`, the
//! way Prometheus sends them, so that the routes of `emit alertmanager-config` (by
//! `severity`, grouped by `alertname`, `rule` and `namespace`) apply to detections sent
//! straight from the node too.
//!
//! Each alert becomes [`am_alert`]: labels `alertname` (the rule), `rule`, `severity`
//! (`critical`, `warning` or `info`), `priority`, `namespace`, `pod`, `node`, `source`; the
//! annotation `output` (and `summary`); `startsAt` the alert's time. Alertmanager resolves
//! it after its `resolve_timeout`, as a detection is an event, not a state.
//!
//! Same behaviour as the webhook: a bounded queue that never makes the event path wait
//! (full: `dropped`), up to `batch` alerts per request, connection errors, timeouts, 5xx and
//! 429 retried with exponential backoff and jitter up to `max_attempts` (then `failed`),
//! other 4xx failed at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::alert::Alert;
use super::sinks::{Outcome, XorShift, backoff_delay, classify};
use super::stats::{SensorStats, SinkKind};
use crate::httpc::{self, Auth, ClientError, HttpsClient};
use crate::rules::Priority;

/// `--alertmanager`.
#[derive(Debug, Clone)]
pub struct AmConfig {
    /// Alertmanager's base URL (`http://alertmanager:9093`).
    pub url: String,
    pub ca_file: Option<PathBuf>,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    pub queue: usize,
    /// Alerts per request at most.
    pub batch: usize,
}

impl AmConfig {
    /// 5 attempts, 0.5 s to 30 s backoff, 10 s per request, 1,000 queued, 64 per request.
    pub fn new(url: impl Into<String>) -> AmConfig {
        AmConfig {
            url: url.into(),
            ca_file: None,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            queue: 1000,
            batch: 64,
        }
    }
}

/// The `severity` label of a priority, matching `emit alertmanager-config`'s routes and
/// falcosidekick's default mapping.
pub fn severity(p: Priority) -> &'static str {
    match p {
        Priority::Emergency | Priority::Alert | Priority::Critical => "critical",
        Priority::Error | Priority::Warning => "warning",
        Priority::Notice | Priority::Informational | Priority::Debug => "info",
    }
}

/// One alert as Alertmanager's API v2 `postableAlert`. Pure.
pub fn am_alert(a: &Alert) -> Value {
    let mut labels = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            labels.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    put("alertname", &a.rule);
    put("rule", &a.rule);
    put("severity", severity(a.priority));
    put("priority", &a.priority.as_str().to_ascii_lowercase());
    put("namespace", a.namespace().unwrap_or_default());
    put("pod", a.field_str("k8s.pod.name").unwrap_or_default());
    put("node", &a.hostname);
    put("source", "secmon");
    json!({
        "labels": labels,
        "annotations": { "summary": a.rule, "output": a.output },
        "startsAt": a.time,
    })
}

/// The running sink.
pub struct AmSink {
    tx: mpsc::Sender<Arc<str>>,
    task: JoinHandle<()>,
    pending: Arc<AtomicU64>,
}

/// Start the sink (inside a tokio runtime); `Err` is one line naming the flag.
pub fn start(cfg: AmConfig, stats: Arc<SensorStats>) -> Result<AmSink, String> {
    let base = httpc::parse_url(&cfg.url).map_err(|reason| {
        format!(
            "--alertmanager {:?}: {reason}; use http://HOST:9093 or https://HOST:PORT",
            cfg.url
        )
    })?;
    let uri = httpc::join(&base, "api/v2/alerts")
        .map_err(|e| format!("--alertmanager {:?}: {e}", cfg.url))?;
    let client = httpc::client(&base, cfg.ca_file.as_deref()).map_err(|e| match e {
        ClientError::Ca { .. } => format!("--alertmanager-ca {e}"),
        e => format!("--alertmanager {}: {e}", cfg.url),
    })?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "the Alertmanager sink needs a tokio runtime".to_string())?;
    stats.sink(SinkKind::Alertmanager);
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let pending = Arc::new(AtomicU64::new(0));
    let task = handle.spawn(worker(rx, client, uri, cfg, stats, Arc::clone(&pending)));
    Ok(AmSink { tx, task, pending })
}

impl AmSink {
    /// Queue an alert's JSON line; never waits.
    pub fn send(&self, line: &Arc<str>, stats: &SensorStats) {
        self.pending.fetch_add(1, Relaxed);
        if self.tx.try_send(Arc::clone(line)).is_err() {
            self.pending.fetch_sub(1, Relaxed);
            stats
                .sink(SinkKind::Alertmanager)
                .dropped
                .fetch_add(1, Relaxed);
        }
    }

    /// Deliver what is queued until `end`; what is left then counts as dropped.
    pub async fn shutdown(self, end: tokio::time::Instant, stats: &SensorStats) {
        let AmSink {
            tx,
            mut task,
            pending,
        } = self;
        drop(tx);
        if tokio::time::timeout_at(end, &mut task).await.is_err() {
            task.abort();
            stats
                .sink(SinkKind::Alertmanager)
                .dropped
                .fetch_add(pending.swap(0, Relaxed), Relaxed);
        }
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Arc<str>>,
    client: HttpsClient,
    uri: Uri,
    cfg: AmConfig,
    stats: Arc<SensorStats>,
    pending: Arc<AtomicU64>,
) {
    let c = stats.sink(SinkKind::Alertmanager);
    let mut rng = XorShift::seeded();
    while let Some(first) = rx.recv().await {
        let mut lines = vec![first];
        while lines.len() < cfg.batch.max(1) {
            match rx.try_recv() {
                Ok(l) => lines.push(l),
                Err(_) => break,
            }
        }
        let n = lines.len() as u64;
        let alerts: Vec<Value> = lines
            .iter()
            .filter_map(|l| Alert::from_json(l).ok())
            .map(|a| am_alert(&a))
            .collect();
        let unreadable = n - alerts.len() as u64;
        c.failed.fetch_add(unreadable, Relaxed);
        let body = Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default());
        let mut attempt = 1;
        loop {
            let req = hyper::Request::post(uri.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let outcome = match req {
                Ok(req) => match httpc::send(&client, req, &Auth::None, cfg.timeout).await {
                    Ok(r) => classify(r.status),
                    Err(why) => Outcome::Retry(why),
                },
                Err(e) => Outcome::Fail(e.to_string()),
            };
            match outcome {
                Outcome::Delivered => {
                    c.delivered.fetch_add(n - unreadable, Relaxed);
                    break;
                }
                Outcome::Retry(_) if attempt < cfg.max_attempts => {
                    c.retries.fetch_add(1, Relaxed);
                    let delay =
                        backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max, rng.next());
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Outcome::Retry(why) | Outcome::Fail(why) => {
                    c.failed.fetch_add(n - unreadable, Relaxed);
                    eprintln!(
                        "secmon: alertmanager {}: gave up on {} alert(s) after {attempt} attempt(s): {why}",
                        cfg.url,
                        n - unreadable
                    );
                    break;
                }
            }
        }
        pending.fetch_sub(n, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_carry_the_routing_labels() {
        let a = Alert::from_json(r#"{"hostname":"node-1","output":"10:00:00.000000000: Critical memfd x","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"web-1"},"priority":"Critical","rule":"Fileless execution via memfd","source":"syscall","tags":[],"time":"2026-05-01T10:00:00.000000000Z"}"#).unwrap();
        let v = am_alert(&a);
        assert_eq!(
            v["labels"],
            json!({
                "alertname": "Fileless execution via memfd",
                "rule": "Fileless execution via memfd",
                "severity": "critical",
                "priority": "critical",
                "namespace": "shop",
                "pod": "web-1",
                "node": "node-1",
                "source": "secmon",
            })
        );
        assert_eq!(v["annotations"]["output"], a.output);
        assert_eq!(v["startsAt"], "2026-05-01T10:00:00.000000000Z");
        let mut host = a.clone();
        host.output_fields.clear();
        host.priority = Priority::Notice;
        let v = am_alert(&host);
        assert!(v["labels"].get("namespace").is_none());
        assert_eq!(v["labels"]["severity"], "info");
    }
}
