//! Where alerts go: stdout, a size-rotated JSON-lines file, a falcosidekick-compatible
//! webhook, and the `/alerts` stream of [`super::http`]. [`Sinks`] fans each alert out.
//!
//! The event path never waits for a sink: [`Sinks::send`] serializes the alert once and
//! hands the line to each sink's bounded queue with `try_send`; when a queue is full the
//! alert is dropped for that sink and counted (`secmon_sink_deliveries_total{status=
//! "dropped"}`). Behind the queues:
//!
//! - `stdout` and the file each have a writer thread (blocking writes stay off the async
//!   runtime). stdout gets one JSON line per alert, flushed. The file (`--alerts-file
//!   PATH`) is JSON lines, rotated by size: when the next line would take `PATH` past
//!   `max_bytes`, `PATH.(keep-1)` becomes `PATH.keep` … `PATH` becomes `PATH.1` and a new
//!   `PATH` is started; at most `keep` rotated files are kept. Each line is written with
//!   one `write`; the file is fsynced on rotation and on shutdown.
//! - `--elasticsearch` ([`super::elasticsearch`]): `_bulk` into a data stream through a
//!   bounded on-disk spool; `--alertmanager` ([`super::alertmanager`]): Alertmanager's API.
//! - the webhook is a tokio task POSTing each alert's JSON to the URL with
//!   `Content-Type: application/json`, as Falco's `http_output` does (falcosidekick's
//!   input). http and https (rustls; the system's CA certificates, or those of a PEM file
//!   given as `ca_file`). Connection errors, timeouts, 5xx and 429 are retried with
//!   exponential backoff and jitter up to `max_attempts` attempts (then counted
//!   `failed`); other 4xx fail at once.
//!
//! [`Sinks::shutdown`] closes the queues, lets each sink finish what it holds, and gives
//! up at a deadline: alerts still queued for the webhook then count as `dropped`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::header::CONTENT_TYPE;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::alert::{Alert, SOURCE_INTERNAL};
use super::alertmanager::{AmConfig, AmSink};
use super::elasticsearch::{EsConfig, EsSink};
use super::http::AlertHub;
use super::stats::{SensorStats, SinkCounters, SinkKind};
use crate::httpc::{self, Auth, ClientError, HttpsClient};

/// Which sinks to start.
#[derive(Debug, Clone, Default)]
pub struct SinkConfig {
    /// One JSON line per alert on stdout.
    pub stdout: bool,
    pub file: Option<FileConfig>,
    pub webhook: Option<WebhookConfig>,
    /// `_bulk` into Elasticsearch/OpenSearch, through an on-disk spool.
    pub elasticsearch: Option<EsConfig>,
    /// Alertmanager's API.
    pub alertmanager: Option<AmConfig>,
    /// The `/alerts` fan-out of the HTTP server, if it runs.
    pub hub: Option<AlertHub>,
}

/// `--alerts-file`.
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub path: PathBuf,
    /// Rotate before `path` would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files to keep (`PATH.1` … `PATH.keep`); 0 truncates instead.
    pub keep: usize,
    /// Alerts that may wait for the writer before new ones are dropped.
    pub queue: usize,
}

impl FileConfig {
    /// 100 MiB per file, 5 rotated files, 10,000 queued alerts.
    pub fn new(path: impl Into<PathBuf>) -> FileConfig {
        FileConfig {
            path: path.into(),
            max_bytes: 100 * 1024 * 1024,
            keep: 5,
            queue: 10_000,
        }
    }
}

/// `--webhook`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Attempts per alert, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one, up to `backoff_max`,
    /// with jitter (a random half of it).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per request, connection included.
    pub timeout: Duration,
    /// Alerts that may wait before new ones are dropped.
    pub queue: usize,
    /// For https: trust the CA certificates in this PEM file instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl WebhookConfig {
    /// 5 attempts, 0.5 s to 30 s backoff, 10 s per request, 1,000 queued alerts.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            queue: 1000,
            ca_file: None,
        }
    }
}

/// A sink that cannot start. One line, naming the flag and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--webhook {url:?}: {reason}; use http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")]
    Url { url: String, reason: String },
    #[error(
        "--webhook {url}: cannot load the system's CA certificates ({reason}); install them (ca-certificates) or use http://"
    )]
    Tls { url: String, reason: String },
    #[error("--webhook-ca {}: {reason}; give a PEM file of CA certificates", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("--alerts-file {}: cannot open for writing: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("the webhook sink needs a tokio runtime: start the sinks from async code")]
    NoRuntime,
    /// The Elasticsearch or Alertmanager sink: the line names the flag.
    #[error("{0}")]
    Other(String),
}

/// The running sinks. See the module docs.
pub struct Sinks {
    stats: Arc<SensorStats>,
    hub: Option<AlertHub>,
    stdout: Option<ThreadSink>,
    file: Option<ThreadSink>,
    webhook: Option<WebhookSink>,
    elasticsearch: Option<EsSink>,
    alertmanager: Option<AmSink>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("stdout", &self.stdout.is_some())
            .field("file", &self.file.is_some())
            .field("webhook", &self.webhook.is_some())
            .field("elasticsearch", &self.elasticsearch.is_some())
            .field("alertmanager", &self.alertmanager.is_some())
            .field("hub", &self.hub.is_some())
            .finish()
    }
}

impl Sinks {
    /// Start the configured sinks. Opens the file and checks the webhook URL now, so that
    /// a bad flag is an error at start-up; a webhook needs to be started inside a tokio
    /// runtime.
    pub fn start(config: SinkConfig, stats: Arc<SensorStats>) -> Result<Sinks, SinkError> {
        let webhook = match config.webhook {
            Some(cfg) => Some(WebhookSink::start(cfg, Arc::clone(&stats))?),
            None => None,
        };
        let elasticsearch = match config.elasticsearch {
            Some(cfg) => Some(
                super::elasticsearch::start(cfg, Arc::clone(&stats)).map_err(SinkError::Other)?,
            ),
            None => None,
        };
        let alertmanager = match config.alertmanager {
            Some(cfg) => Some(
                super::alertmanager::start(cfg, Arc::clone(&stats)).map_err(SinkError::Other)?,
            ),
            None => None,
        };
        let file = match config.file {
            Some(cfg) => {
                let writer =
                    RotatingFile::open(&cfg.path, cfg.max_bytes, cfg.keep).map_err(|e| {
                        SinkError::File {
                            path: cfg.path.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                Some(ThreadSink::start(
                    SinkKind::File,
                    cfg.queue,
                    writer,
                    Arc::clone(&stats),
                ))
            }
            None => None,
        };
        let stdout = config
            .stdout
            .then(|| ThreadSink::start(SinkKind::Stdout, 10_000, StdoutLines, Arc::clone(&stats)));
        Ok(Sinks {
            stats,
            hub: config.hub,
            stdout,
            file,
            webhook,
            elasticsearch,
            alertmanager,
        })
    }

    /// Hand an alert to every sink; never blocks. Rule alerts are counted in
    /// `secmon_alerts_total` here (the sensor's own `internal` alerts are not).
    pub fn send(&self, alert: &Alert) {
        if alert.source != SOURCE_INTERNAL {
            self.stats.record_alert(
                &alert.rule,
                alert.priority,
                alert.namespace().unwrap_or_default(),
            );
        }
        let line: Arc<str> = alert.to_json_line().into();
        if let Some(hub) = &self.hub {
            let time = alert.time_ns().unwrap_or_else(now_ns);
            hub.publish_line(time, Arc::clone(&line));
        }
        for sink in [&self.stdout, &self.file].into_iter().flatten() {
            sink.send(&line, &self.stats);
        }
        if let Some(w) = &self.webhook {
            w.send(&line, &self.stats);
        }
        if let Some(es) = &self.elasticsearch {
            es.send(&line, &self.stats);
        }
        if let Some(am) = &self.alertmanager {
            am.send(&line, &self.stats);
        }
    }

    /// Close the queues and wait, at most `deadline`, for the sinks to deliver what they
    /// hold; the file is fsynced. Alerts the webhook or Alertmanager sink has not delivered
    /// by then are dropped; the Elasticsearch sink keeps them in its spool for the next run.
    pub async fn shutdown(self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        let Sinks {
            stats,
            stdout,
            file,
            webhook,
            elasticsearch,
            alertmanager,
            ..
        } = self;
        let mut done = Vec::new();
        for sink in [stdout, file].into_iter().flatten() {
            drop(sink.tx);
            done.push(sink.done);
        }
        let webhook = webhook.map(|w| {
            drop(w.tx);
            (w.task, w.pending)
        });
        for d in done {
            let _ = tokio::time::timeout_at(end, d).await;
        }
        let es = elasticsearch.map(|es| tokio::spawn(es.shutdown(end)));
        if let Some(am) = alertmanager {
            am.shutdown(end, &stats).await;
        }
        if let Some(es) = es {
            let _ = es.await;
        }
        if let Some((mut task, pending)) = webhook
            && tokio::time::timeout_at(end, &mut task).await.is_err()
        {
            task.abort();
            stats
                .sink(SinkKind::Webhook)
                .dropped
                .fetch_add(pending.swap(0, Relaxed), Relaxed);
        }
    }
}

use super::clock::now_ns;

/// A blocking line writer run on its own thread.
trait LineWriter: Send + 'static {
    fn write_line(&mut self, line: &str) -> io::Result<()>;
    /// After a batch of lines.
    fn flush(&mut self) -> io::Result<()>;
    /// At shutdown.
    fn close(&mut self) -> io::Result<()>;
}

struct ThreadSink {
    kind: SinkKind,
    tx: mpsc::SyncSender<Arc<str>>,
    done: oneshot::Receiver<()>,
}

impl ThreadSink {
    fn start(
        kind: SinkKind,
        queue: usize,
        mut writer: impl LineWriter,
        stats: Arc<SensorStats>,
    ) -> ThreadSink {
        let (tx, rx) = mpsc::sync_channel::<Arc<str>>(queue.max(1));
        let (done_tx, done) = oneshot::channel();
        stats.sink(kind);
        let spawned = std::thread::Builder::new()
            .name(format!("secmon-sink-{}", kind.name()))
            .spawn(move || {
                let counters = stats.sink(kind);
                while let Ok(first) = rx.recv() {
                    let mut next = Some(first);
                    while let Some(line) = next.take() {
                        count(counters, writer.write_line(&line).is_ok());
                        next = rx.try_recv().ok();
                    }
                    let _ = writer.flush();
                }
                let _ = writer.close();
                let _ = done_tx.send(());
            });
        // Without a thread the queue's receiver is gone: every send then counts as dropped.
        drop(spawned);
        ThreadSink { kind, tx, done }
    }

    fn send(&self, line: &Arc<str>, stats: &SensorStats) {
        if self.tx.try_send(Arc::clone(line)).is_err() {
            stats.sink(self.kind).dropped.fetch_add(1, Relaxed);
        }
    }
}

fn count(c: &SinkCounters, ok: bool) {
    if ok {
        c.delivered.fetch_add(1, Relaxed);
    } else {
        c.failed.fetch_add(1, Relaxed);
    }
}

struct StdoutLines;

impl LineWriter for StdoutLines {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

/// A JSON-lines file rotated by size (see the module docs).
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        let mut f = RotatingFile {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            keep,
            file: None,
            size: 0,
        };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            let _ = f.sync_all();
        }
        if self.keep == 0 {
            fs::remove_file(&self.path).or_else(ignore_not_found)?;
        } else {
            fs::remove_file(self.rotated(self.keep)).or_else(ignore_not_found)?;
            for n in (1..self.keep).rev() {
                fs::rename(self.rotated(n), self.rotated(n + 1)).or_else(ignore_not_found)?;
            }
            fs::rename(&self.path, self.rotated(1)).or_else(ignore_not_found)?;
        }
        self.reopen()
    }
}

fn ignore_not_found(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl LineWriter for RotatingFile {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.file.is_none() || (self.size > 0 && self.size + len > self.max_bytes) {
            // Also retries opening after an earlier failure.
            if self.file.is_some() {
                self.rotate()?;
            } else {
                self.reopen()?;
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        match file.write_all(&buf) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_all(),
            None => Ok(()),
        }
    }
}

struct WebhookSink {
    tx: tokio::sync::mpsc::Sender<Arc<str>>,
    task: JoinHandle<()>,
    /// Alerts queued or in flight.
    pending: Arc<AtomicU64>,
}

impl WebhookSink {
    fn start(cfg: WebhookConfig, stats: Arc<SensorStats>) -> Result<WebhookSink, SinkError> {
        let uri = httpc::parse_url(&cfg.url).map_err(|reason| SinkError::Url {
            url: cfg.url.clone(),
            reason,
        })?;
        let client = httpc::client(&uri, cfg.ca_file.as_deref()).map_err(|e| match e {
            ClientError::Ca { path, reason } => SinkError::Ca { path, reason },
            ClientError::Tls(reason) => SinkError::Tls {
                url: cfg.url.clone(),
                reason,
            },
            ClientError::Url(reason) => SinkError::Url {
                url: cfg.url.clone(),
                reason,
            },
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| SinkError::NoRuntime)?;
        let (tx, rx) = tokio::sync::mpsc::channel(cfg.queue.max(1));
        let pending = Arc::new(AtomicU64::new(0));
        stats.sink(SinkKind::Webhook);
        let task = handle.spawn(webhook_worker(
            rx,
            client,
            uri,
            cfg,
            stats,
            Arc::clone(&pending),
        ));
        Ok(WebhookSink { tx, task, pending })
    }

    fn send(&self, line: &Arc<str>, stats: &SensorStats) {
        self.pending.fetch_add(1, Relaxed);
        if self.tx.try_send(Arc::clone(line)).is_err() {
            self.pending.fetch_sub(1, Relaxed);
            stats.sink(SinkKind::Webhook).dropped.fetch_add(1, Relaxed);
        }
    }
}

pub(crate) enum Outcome {
    Delivered,
    Retry(String),
    Fail(String),
}

async fn webhook_worker(
    mut rx: tokio::sync::mpsc::Receiver<Arc<str>>,
    client: HttpsClient,
    uri: Uri,
    cfg: WebhookConfig,
    stats: Arc<SensorStats>,
    pending: Arc<AtomicU64>,
) {
    let counters = stats.sink(SinkKind::Webhook);
    let mut rng = XorShift::seeded();
    while let Some(line) = rx.recv().await {
        let mut attempt = 1;
        loop {
            match post(&client, &uri, &line, cfg.timeout).await {
                Outcome::Delivered => {
                    counters.delivered.fetch_add(1, Relaxed);
                    break;
                }
                Outcome::Retry(why) if attempt < cfg.max_attempts => {
                    let _ = why;
                    counters.retries.fetch_add(1, Relaxed);
                    let delay =
                        backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max, rng.next());
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Outcome::Retry(why) | Outcome::Fail(why) => {
                    counters.failed.fetch_add(1, Relaxed);
                    eprintln!(
                        "secmon: webhook {}: gave up on an alert after {attempt} attempt(s): {why}",
                        cfg.url
                    );
                    break;
                }
            }
        }
        pending.fetch_sub(1, Relaxed);
    }
}

async fn post(client: &HttpsClient, uri: &Uri, line: &str, timeout: Duration) -> Outcome {
    let req = hyper::Request::post(uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(line.as_bytes())));
    let req = match req {
        Ok(r) => r,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    match httpc::send(client, req, &Auth::None, timeout).await {
        Err(why) => Outcome::Retry(why),
        Ok(r) => classify(r.status),
    }
}

/// 2xx delivered; 5xx and 429 worth another try; any other status final.
pub(crate) fn classify(s: hyper::StatusCode) -> Outcome {
    if s.is_success() {
        Outcome::Delivered
    } else if s.is_server_error() || s.as_u16() == 429 {
        Outcome::Retry(s.to_string())
    } else {
        Outcome::Fail(s.to_string())
    }
}

/// The wait before retry number `attempt` (1 for the first retry): `base · 2^(attempt-1)`,
/// capped at `max`, of which a random half (drawn from `random`) is jitter.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration, random: u64) -> Duration {
    let exp = base
        .checked_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .unwrap_or(max)
        .min(max);
    let half = exp / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if span == 0 { 0 } else { random % (span + 1) };
    (exp - half) + Duration::from_nanos(jitter)
}

/// A tiny xorshift generator for backoff jitter (not for anything secret).
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn seeded() -> XorShift {
        let stack = 0u8;
        let seed = now_ns() ^ (&stack as *const u8 as u64).rotate_left(32);
        XorShift(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for r in [0, 1, 12_345_678, u64::MAX] {
            let d1 = backoff_delay(1, base, max, r);
            assert!(d1 >= Duration::from_millis(50) && d1 <= base, "{d1:?}");
            let d3 = backoff_delay(3, base, max, r);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d20 = backoff_delay(20, base, max, r);
            assert!(d20 >= max / 2 && d20 <= max, "{d20:?}");
            assert!(backoff_delay(99, base, max, r) <= max);
        }
        assert_eq!(backoff_delay(1, Duration::ZERO, max, 7), Duration::ZERO);
        let mut rng = XorShift(1);
        assert_ne!(rng.next(), rng.next());
    }

    #[test]
    fn file_rotation_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        let mut f = RotatingFile::open(&path, 30, 2).unwrap();
        // 9-byte lines (8 + newline): 3 per 30-byte file.
        for i in 0..10 {
            f.write_line(&format!("line-{i:03}")).unwrap();
        }
        f.close().unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "line-009\n");
        assert_eq!(read(f.rotated(1)), "line-006\nline-007\nline-008\n");
        assert_eq!(read(f.rotated(2)), "line-003\nline-004\nline-005\n");
        assert!(!f.rotated(3).exists());
        // A line longer than the limit still gets written, alone.
        f.write_line(&"x".repeat(40)).unwrap();
        assert_eq!(read(path.clone()), format!("{}\n", "x".repeat(40)));
        // keep = 0 truncates.
        let mut t = RotatingFile::open(&dir.path().join("t"), 20, 0).unwrap();
        for i in 0..5 {
            t.write_line(&format!("l{i:07}")).unwrap();
        }
        assert_eq!(read(dir.path().join("t")), "l0000004\n");
        assert!(!dir.path().join("t.1").exists());
        // Appending to an existing file continues its size.
        let mut again = RotatingFile::open(&path, 30, 2).unwrap();
        assert_eq!(again.size, 41);
        again.write_line("y").unwrap();
        assert_eq!(read(path), "y\n");
    }
}
