//! The Elasticsearch/OpenSearch sink (`--elasticsearch URL`): alerts as ECS documents
//! ([`crate::emit::es::ecs_document`], the shape `emit es-template` maps) into a data stream
//! with the `_bulk` API.
//!
//! Path of an alert: [`EsSink::send`] queues its JSON line without waiting (a full queue
//! counts `dropped`); the intake task turns it into an ECS document and appends it to the
//! on-disk [`Spool`] (a full spool counts `dropped`: the bound is what an outage may cost);
//! the shipper task takes batches from the spool, by size (`batch_bytes`, `batch_docs`) or
//! age (`flush_interval`), and POSTs them gzipped to `URL/<data stream>/_bulk` as `create`
//! actions with the document's stable id as `_id`.
//!
//! Outcomes: a batch is committed (removed from the spool) only once every document in it
//! is settled. Connection errors, timeouts, 429 and 5xx responses, and items rejected with
//! 429 or 5xx, are retried with exponential backoff and jitter, for as long as it takes:
//! the spool holds the rest meanwhile. Items created (2xx) or already there (409, a batch
//! sent again after a crash or a lost response) count `delivered`; items rejected for good
//! (a 4xx such as a mapping error) count `failed`; every rejected item is counted by status
//! in `secmon_sink_item_errors_total`. A 400 or 413 for the whole request fails its batch.
//! At shutdown what is not delivered stays in the spool for the next run.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::alert::Alert;
use super::sinks::{XorShift, backoff_delay};
use super::spool::{Full as SpoolFull, Spool};
use super::stats::{SensorStats, SinkCounters, SinkKind};
use crate::emit::es::ecs_document;
use crate::httpc::{self, Auth, ClientError, HttpsClient};

/// `--elasticsearch` and its companions.
#[derive(Debug, Clone)]
pub struct EsConfig {
    /// The server's base URL (`https://es.example:9200`).
    pub url: String,
    /// The data stream written to.
    pub data_stream: String,
    pub auth: Auth,
    /// For https: trust this PEM file's CA certificates instead of the system's.
    pub ca_file: Option<PathBuf>,
    pub spool_dir: PathBuf,
    /// Bound on the undelivered bytes held in the spool.
    pub spool_max_bytes: u64,
    /// A batch goes out at this many bytes of documents …
    pub batch_bytes: u64,
    /// … or this many documents …
    pub batch_docs: usize,
    /// … or when its first document has waited this long.
    pub flush_interval: Duration,
    pub gzip: bool,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Alerts waiting for the intake before new ones are dropped.
    pub queue: usize,
}

impl EsConfig {
    /// Data stream `secmon-alerts`, a 256 MiB spool, 1 MiB or 1,000-document batches
    /// flushed after 1 s, gzip, 0.5 s to 30 s backoff, 30 s per request.
    pub fn new(url: impl Into<String>, spool_dir: impl Into<PathBuf>) -> EsConfig {
        EsConfig {
            url: url.into(),
            data_stream: crate::emit::es::DEFAULT_DATA_STREAM.into(),
            auth: Auth::None,
            ca_file: None,
            spool_dir: spool_dir.into(),
            spool_max_bytes: 256 * 1024 * 1024,
            batch_bytes: 1024 * 1024,
            batch_docs: 1000,
            flush_interval: Duration::from_secs(1),
            gzip: true,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            queue: 10_000,
        }
    }
}

/// The running sink.
pub struct EsSink {
    tx: mpsc::Sender<Arc<str>>,
    intake: JoinHandle<()>,
    shipper: JoinHandle<()>,
    closed: Arc<AtomicBool>,
    notify: Arc<Notify>,
    spool: Arc<Mutex<Spool>>,
}

/// Why the sink cannot start: one line for the flag.
pub fn start(cfg: EsConfig, stats: Arc<SensorStats>) -> Result<EsSink, String> {
    let uri = httpc::parse_url(&cfg.url).map_err(|reason| {
        format!(
            "--elasticsearch {:?}: {reason}; use http://HOST:PORT or https://HOST:PORT",
            cfg.url
        )
    })?;
    if cfg.data_stream.is_empty()
        || cfg
            .data_stream
            .chars()
            .any(|c| c.is_ascii_uppercase() || "\\/*?\"<>| ,#:".contains(c))
    {
        return Err(format!(
            "--elasticsearch-data-stream {:?}: not a valid index name; use lower case without \\ / * ? \" < > | , # : or spaces",
            cfg.data_stream
        ));
    }
    let bulk = httpc::join(&uri, &format!("{}/_bulk", cfg.data_stream))
        .map_err(|e| format!("--elasticsearch {:?}: {e}", cfg.url))?;
    let client = httpc::client(&uri, cfg.ca_file.as_deref()).map_err(|e| match e {
        ClientError::Ca { .. } => format!("--elasticsearch-ca {e}"),
        e => format!("--elasticsearch {}: {e}", cfg.url),
    })?;
    let spool =
        Spool::open(&cfg.spool_dir, cfg.spool_max_bytes, segment_bytes(&cfg)).map_err(|e| {
            format!(
                "--elasticsearch-spool-dir {}: cannot use it: {e}",
                cfg.spool_dir.display()
            )
        })?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| "the Elasticsearch sink needs a tokio runtime".to_string())?;
    let counters_ready = stats.sink(SinkKind::Elasticsearch);
    counters_ready.set_spool(
        spool.pending_lines(),
        spool.pending_bytes(),
        spool.max_bytes(),
    );
    let spool = Arc::new(Mutex::new(spool));
    let notify = Arc::new(Notify::new());
    let closed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let intake = handle.spawn(intake(
        rx,
        Arc::clone(&spool),
        Arc::clone(&notify),
        Arc::clone(&stats),
    ));
    let shipper = handle.spawn(
        Shipper {
            client,
            bulk,
            cfg,
            stats,
            spool: Arc::clone(&spool),
            notify: Arc::clone(&notify),
            closed: Arc::clone(&closed),
        }
        .run(),
    );
    Ok(EsSink {
        tx,
        intake,
        shipper,
        closed,
        notify,
        spool,
    })
}

fn segment_bytes(cfg: &EsConfig) -> u64 {
    (cfg.spool_max_bytes / 16).clamp(64 * 1024, 16 * 1024 * 1024)
}

impl EsSink {
    /// Queue an alert's JSON line; never waits.
    pub fn send(&self, line: &Arc<str>, stats: &SensorStats) {
        let c = stats.sink(SinkKind::Elasticsearch);
        if self.tx.try_send(Arc::clone(line)).is_err() {
            c.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Spool what is queued, then try to deliver the spool until `end`; whatever is left
    /// stays on disk for the next run.
    pub async fn shutdown(self, end: tokio::time::Instant) {
        let EsSink {
            tx,
            intake,
            mut shipper,
            closed,
            notify,
            spool,
        } = self;
        drop(tx);
        let _ = tokio::time::timeout_at(end, intake).await;
        closed.store(true, Relaxed);
        notify.notify_one();
        if tokio::time::timeout_at(end, &mut shipper).await.is_err() {
            shipper.abort();
        }
        let mut s = spool.lock().unwrap_or_else(|e| e.into_inner());
        let _ = s.close();
    }
}

async fn intake(
    mut rx: mpsc::Receiver<Arc<str>>,
    spool: Arc<Mutex<Spool>>,
    notify: Arc<Notify>,
    stats: Arc<SensorStats>,
) {
    let c = stats.sink(SinkKind::Elasticsearch);
    let mut full_since_warned = false;
    while let Some(line) = rx.recv().await {
        let Ok(alert) = Alert::from_json(&line) else {
            c.failed.fetch_add(1, Relaxed);
            continue;
        };
        let doc = ecs_document(&alert);
        let id = doc["event"]["id"].as_str().unwrap_or_default().to_string();
        let entry = format!("{id} {doc}");
        let result = {
            let mut s = spool.lock().unwrap_or_else(|e| e.into_inner());
            let r = s.append(entry.as_bytes());
            c.set_spool(s.pending_lines(), s.pending_bytes(), s.max_bytes());
            r
        };
        match result {
            Ok(Ok(())) => {
                full_since_warned = false;
                notify.notify_one();
            }
            Ok(Err(SpoolFull)) => {
                c.dropped.fetch_add(1, Relaxed);
                if !full_since_warned {
                    eprintln!(
                        "secmon: elasticsearch: the spool is full; alerts are dropped (and counted) until the store takes some"
                    );
                    full_since_warned = true;
                }
            }
            Err(e) => {
                c.dropped.fetch_add(1, Relaxed);
                eprintln!("secmon: elasticsearch: cannot write to the spool: {e}");
            }
        }
    }
}

struct Shipper {
    client: HttpsClient,
    bulk: Uri,
    cfg: EsConfig,
    stats: Arc<SensorStats>,
    spool: Arc<Mutex<Spool>>,
    notify: Arc<Notify>,
    closed: Arc<AtomicBool>,
}

/// What the store said about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    /// Try the whole request again later.
    Retry(String),
    /// The whole request was refused for good.
    Fail(String),
    /// Per item, in request order.
    Items(Vec<ItemOutcome>),
}

/// One document's fate in a `_bulk` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Created, or already there (409).
    Delivered { status: u16 },
    /// Rejected for now (429, 5xx): send again.
    Retry { status: u16 },
    /// Rejected for good.
    Failed { status: u16, reason: String },
}

/// Read a `_bulk` response (status and body) for `n` documents. Pure.
pub fn bulk_outcome(status: u16, body: &[u8], n: usize) -> BulkOutcome {
    let short = |b: &[u8]| {
        let t = String::from_utf8_lossy(b);
        let t = t.trim();
        t.chars().take(200).collect::<String>()
    };
    if status == 429 || status >= 500 {
        return BulkOutcome::Retry(format!("HTTP {status}"));
    }
    if status == 400 || status == 413 {
        return BulkOutcome::Fail(format!("HTTP {status}: {}", short(body)));
    }
    if !(200..300).contains(&status) {
        // 401, 403, 404 …: a configuration to fix; the spool waits for it.
        return BulkOutcome::Retry(format!("HTTP {status}: {}", short(body)));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return BulkOutcome::Retry(format!("HTTP {status} with a body that is not JSON"));
    };
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let item = items
            .get(i)
            .and_then(|it| it.as_object().and_then(|o| o.values().next()).cloned());
        let Some(item) = item else {
            out.push(ItemOutcome::Retry { status: 0 });
            continue;
        };
        let st = item["status"].as_u64().unwrap_or(0) as u16;
        out.push(match st {
            200..=299 | 409 => ItemOutcome::Delivered { status: st },
            429 | 500..=599 | 0 => ItemOutcome::Retry { status: st },
            _ => ItemOutcome::Failed {
                status: st,
                reason: format!(
                    "{}: {}",
                    item["error"]["type"].as_str().unwrap_or("error"),
                    item["error"]["reason"].as_str().unwrap_or("")
                ),
            },
        });
    }
    BulkOutcome::Items(out)
}

/// The NDJSON body of `create` actions for spool entries (`<id> <document>`).
pub fn bulk_body(entries: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.iter().map(|e| e.len() + 40).sum());
    for e in entries {
        let (id, doc) = match e.iter().position(|&b| b == b' ') {
            Some(i) => (&e[..i], &e[i + 1..]),
            None => (&b""[..], *e),
        };
        if id.is_empty() {
            body.extend_from_slice(b"{\"create\":{}}\n");
        } else {
            body.extend_from_slice(b"{\"create\":{\"_id\":\"");
            body.extend_from_slice(id);
            body.extend_from_slice(b"\"}}\n");
        }
        body.extend_from_slice(doc);
        body.push(b'\n');
    }
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

impl Shipper {
    fn counters(&self) -> &SinkCounters {
        self.stats.sink(SinkKind::Elasticsearch)
    }

    fn pending(&self) -> (u64, u64) {
        let s = self.spool.lock().unwrap_or_else(|e| e.into_inner());
        (s.pending_lines(), s.pending_bytes())
    }

    async fn run(self) {
        let mut rng = XorShift::seeded();
        loop {
            let (lines, _) = self.pending();
            if lines == 0 {
                if self.closed.load(Relaxed) {
                    return;
                }
                self.notify.notified().await;
                continue;
            }
            // Wait for a full batch, or for the first document to have waited long enough.
            let deadline = tokio::time::Instant::now() + self.cfg.flush_interval;
            loop {
                let (lines, bytes) = self.pending();
                if bytes >= self.cfg.batch_bytes
                    || lines as usize >= self.cfg.batch_docs
                    || self.closed.load(Relaxed)
                {
                    break;
                }
                if tokio::time::timeout_at(deadline, self.notify.notified())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let batch = {
                let mut s = self.spool.lock().unwrap_or_else(|e| e.into_inner());
                s.peek(self.cfg.batch_bytes, self.cfg.batch_docs)
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("secmon: elasticsearch: cannot read the spool: {e}");
                    tokio::time::sleep(self.cfg.backoff_max).await;
                    continue;
                }
            };
            self.deliver(&batch.lines, &mut rng).await;
            let mut s = self.spool.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = s.commit(batch.end) {
                eprintln!("secmon: elasticsearch: cannot update the spool: {e}");
            }
            self.counters()
                .set_spool(s.pending_lines(), s.pending_bytes(), s.max_bytes());
        }
    }

    /// Deliver every entry, retrying until each is settled.
    async fn deliver(&self, entries: &[Vec<u8>], rng: &mut XorShift) {
        let c = self.counters();
        let mut remaining: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let mut attempt = 1u32;
        let mut warned = 0u32;
        while !remaining.is_empty() {
            let body = bulk_body(&remaining);
            let outcome = match self.post(body).await {
                Ok((status, resp)) => bulk_outcome(status, &resp, remaining.len()),
                Err(why) => BulkOutcome::Retry(why),
            };
            match outcome {
                BulkOutcome::Items(items) => {
                    let mut again = Vec::new();
                    for (entry, item) in remaining.iter().zip(items) {
                        match item {
                            ItemOutcome::Delivered { .. } => {
                                c.delivered.fetch_add(1, Relaxed);
                            }
                            ItemOutcome::Retry { status } => {
                                c.item_error(status);
                                again.push(*entry);
                            }
                            ItemOutcome::Failed { status, reason } => {
                                c.item_error(status);
                                c.failed.fetch_add(1, Relaxed);
                                if warned < 3 {
                                    eprintln!(
                                        "secmon: elasticsearch: a document was rejected ({status} {reason})"
                                    );
                                    warned += 1;
                                }
                            }
                        }
                    }
                    remaining = again;
                    if remaining.is_empty() {
                        return;
                    }
                }
                BulkOutcome::Fail(why) => {
                    c.failed.fetch_add(remaining.len() as u64, Relaxed);
                    eprintln!(
                        "secmon: elasticsearch: {} alert(s) refused: {why}",
                        remaining.len()
                    );
                    return;
                }
                BulkOutcome::Retry(why) => {
                    if attempt == 1 || attempt.is_power_of_two() {
                        eprintln!(
                            "secmon: elasticsearch {}: {why}; {} alert(s) kept for retry",
                            self.cfg.url,
                            self.pending().0
                        );
                    }
                }
            }
            c.retries.fetch_add(1, Relaxed);
            let delay = backoff_delay(
                attempt,
                self.cfg.backoff_base,
                self.cfg.backoff_max,
                rng.next(),
            );
            if self.closed.load(Relaxed) {
                // Shutting down: keep trying until the deadline aborts us, but not faster.
                tokio::time::sleep(delay.min(Duration::from_millis(500))).await;
            } else {
                tokio::time::sleep(delay).await;
            }
            attempt = attempt.saturating_add(1);
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, Bytes), String> {
        let mut req =
            hyper::Request::post(self.bulk.clone()).header(CONTENT_TYPE, "application/x-ndjson");
        let body = if self.cfg.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
            gzip(&body)
        } else {
            body
        };
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let r = httpc::send(&self.client, req, &self.cfg.auth, self.cfg.timeout).await?;
        Ok((r.status.as_u16(), r.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_body_pairs_actions_with_documents() {
        let body = bulk_body(&[b"abc {\"a\":1}", b"{\"b\":2}"]);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"create\":{\"_id\":\"abc\"}}\n{\"a\":1}\n{\"create\":{}}\n{\"b\":2}\n"
        );
    }

    #[test]
    fn bulk_responses_are_read_item_by_item() {
        let body = br#"{"took":3,"errors":true,"items":[
            {"create":{"_index":".ds-x-1","status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}]}"#;
        assert_eq!(
            bulk_outcome(200, body, 5),
            BulkOutcome::Items(vec![
                ItemOutcome::Delivered { status: 201 },
                ItemOutcome::Delivered { status: 409 },
                ItemOutcome::Retry { status: 429 },
                ItemOutcome::Failed {
                    status: 400,
                    reason: "mapper_parsing_exception: bad".into()
                },
                ItemOutcome::Retry { status: 0 },
            ])
        );
        assert!(matches!(bulk_outcome(429, b"", 1), BulkOutcome::Retry(_)));
        assert!(matches!(bulk_outcome(503, b"", 1), BulkOutcome::Retry(_)));
        assert!(matches!(bulk_outcome(401, b"no", 1), BulkOutcome::Retry(_)));
        assert!(matches!(bulk_outcome(400, b"bad", 1), BulkOutcome::Fail(_)));
        assert!(matches!(
            bulk_outcome(200, b"<html>", 1),
            BulkOutcome::Retry(_)
        ));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let data = b"{\"create\":{}}\n{}\n".repeat(100);
        let z = gzip(&data);
        assert!(z.len() < data.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
