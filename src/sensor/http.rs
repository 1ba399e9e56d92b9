//! The sensor's small HTTP/1.1 server (hand-written over `tokio::net`, requests parsed with
//! `httparse`; one request per connection, `Connection: close`):
//!
//! - `GET /metrics`: the Prometheus text exposition (`text/plain; version=0.0.4`) of
//!   [`SensorStats`].
//! - `GET /healthz`: `200 ok` while the pipeline reports itself healthy (a shared flag the
//!   run loop sets), `503` otherwise.
//! - `GET /alerts[?since=SECONDS]`: alerts as they happen, as **JSON lines in a chunked
//!   response** (`Content-Type: application/x-ndjson`; one alert per chunk, each ending in a
//!   newline), so that `curl -N http://…/alerts | jq` works as it does on Falco's output.
//!   `since` first replays the alerts of the last SECONDS from a bounded in-memory backlog
//!   ([`AlertHub`], by default the last 1,000 alerts). Alerts reach clients through a
//!   `tokio::sync::broadcast` channel: publishing never waits for a client. A client that
//!   reads too slowly falls behind the channel; it is then sent one line
//!   `{"skipped":N,"message":"…"}` (see [`skip_notice`]) and continues with the newest
//!   alerts, and the skipped alerts count as `dropped` for the `http` sink.
//!
//! Any other path is 404; another method on a known path is 405.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use super::alert::Alert;
use super::stats::{SensorStats, SinkKind};

/// Alerts kept for `?since=` replays.
pub const DEFAULT_BACKLOG: usize = 1000;
/// Alerts a streaming client may fall behind by before it is told it skipped some.
pub const DEFAULT_CHANNEL: usize = 1024;
/// Where the sensor listens by default (Falco's webserver port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";

const MAX_HEAD: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// One published alert: its time and its JSON line (without the newline).
#[derive(Debug)]
struct Published {
    time_ns: u64,
    line: Arc<str>,
}

#[derive(Debug)]
struct HubInner {
    tx: broadcast::Sender<Arc<Published>>,
    backlog: Mutex<VecDeque<Arc<Published>>>,
    capacity: usize,
}

/// The fan-out to `/alerts` clients: a broadcast channel plus a bounded backlog of recent
/// alerts. Cheap to clone; [`AlertHub::publish`] never blocks on clients.
#[derive(Debug, Clone)]
pub struct AlertHub {
    inner: Arc<HubInner>,
}

impl Default for AlertHub {
    fn default() -> Self {
        AlertHub::new(DEFAULT_BACKLOG, DEFAULT_CHANNEL)
    }
}

impl AlertHub {
    /// Keep the last `backlog` alerts; let clients fall `channel` alerts behind.
    pub fn new(backlog: usize, channel: usize) -> AlertHub {
        let (tx, _) = broadcast::channel(channel.max(1));
        AlertHub {
            inner: Arc::new(HubInner {
                tx,
                backlog: Mutex::new(VecDeque::with_capacity(backlog.min(4096))),
                capacity: backlog,
            }),
        }
    }

    /// Publish an alert to current clients and the backlog.
    pub fn publish(&self, alert: &Alert) {
        let time_ns = alert.time_ns().unwrap_or_else(now_ns);
        self.publish_line(time_ns, alert.to_json_line().into());
    }

    /// Publish an alert already serialized as one JSON line (no newline).
    pub fn publish_line(&self, time_ns: u64, line: Arc<str>) {
        let p = Arc::new(Published { time_ns, line });
        // Under the backlog lock, so that a subscriber sees each alert exactly once: either
        // in its backlog snapshot or on its receiver.
        let mut backlog = self.inner.backlog.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.capacity > 0 {
            if backlog.len() >= self.inner.capacity {
                backlog.pop_front();
            }
            backlog.push_back(Arc::clone(&p));
        }
        // An error only means that nobody is listening.
        let _ = self.inner.tx.send(p);
    }

    /// Clients currently streaming.
    pub fn clients(&self) -> usize {
        self.inner.tx.receiver_count()
    }

    /// The backlog alerts at or after `since_ns` (none for `None`) and a receiver for
    /// every alert published after them.
    fn subscribe(
        &self,
        since_ns: Option<u64>,
    ) -> (Vec<Arc<Published>>, broadcast::Receiver<Arc<Published>>) {
        let backlog = self.inner.backlog.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.inner.tx.subscribe();
        let replay = match since_ns {
            Some(since) => backlog
                .iter()
                .filter(|p| p.time_ns >= since)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (replay, rx)
    }
}

use super::clock::now_ns;

/// The line telling a slow `/alerts` client that it missed `n` alerts.
pub fn skip_notice(n: u64) -> String {
    serde_json::json!({
        "skipped": n,
        "message": format!("{n} alerts skipped: this client read too slowly"),
    })
    .to_string()
}

/// If `line` is a [`skip_notice`], how many alerts were skipped.
pub fn parse_skip_notice(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    if obj.contains_key("rule") {
        return None;
    }
    obj.get("skipped")?.as_u64()
}

/// What the server serves.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub stats: Arc<SensorStats>,
    pub alerts: AlertHub,
    /// `/healthz` answers 200 while this is true.
    pub healthy: Arc<AtomicBool>,
    /// For `secmon_sensor_info`.
    pub node: String,
    pub version: String,
}

/// Bind `addr` and serve until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    serve_on(listener, state, shutdown).await
}

/// Serve on a bound listener until `shutdown` completes; then streaming clients get the
/// end of their response, and connections still open after a short grace are closed.
pub async fn serve_on(
    listener: TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(handle(stream, state.clone(), stop_rx.clone()));
                }
                // Out of file descriptors and the like: let other work proceed.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    Ok(())
}

struct Request {
    method: String,
    path: String,
    query: String,
}

enum HeadError {
    Closed,
    TooLarge,
    Bad,
}

async fn read_head(rd: &mut OwnedReadHalf) -> Result<Request, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = rd.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or_default().to_string();
                let target = req.path.unwrap_or_default();
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                return Ok(Request {
                    method,
                    path: path.to_string(),
                    query: query.to_string(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::TooLarge),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Bad),
        }
    }
}

async fn handle(stream: TcpStream, state: ServerState, stop: watch::Receiver<bool>) {
    let (mut rd, mut wr) = stream.into_split();
    let req = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut rd)).await {
        Ok(Ok(req)) => req,
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => {
            let _ = respond(
                &mut wr,
                431,
                "text/plain",
                "request header too large\n",
                &[],
            )
            .await;
            return;
        }
        Ok(Err(HeadError::Bad)) => {
            let _ = respond(&mut wr, 400, "text/plain", "bad request\n", &[]).await;
            return;
        }
        Err(_) => {
            let _ = respond(&mut wr, 408, "text/plain", "request timeout\n", &[]).await;
            return;
        }
    };
    let known = matches!(req.path.as_str(), "/metrics" | "/healthz" | "/alerts");
    if !known {
        let _ = respond(&mut wr, 404, "text/plain", "not found\n", &[]).await;
        return;
    }
    if req.method != "GET" {
        let body = "method not allowed: use GET\n";
        let _ = respond(&mut wr, 405, "text/plain", body, &[("Allow", "GET")]).await;
        return;
    }
    let _ = match req.path.as_str() {
        "/metrics" => {
            let body = state.stats.render_prometheus(&state.node, &state.version);
            let ct = "text/plain; version=0.0.4; charset=utf-8";
            respond(&mut wr, 200, ct, &body, &[]).await
        }
        "/healthz" => {
            if state.healthy.load(Ordering::Relaxed) {
                respond(&mut wr, 200, "text/plain", "ok\n", &[]).await
            } else {
                respond(&mut wr, 503, "text/plain", "not ready\n", &[]).await
            }
        }
        _ => match parse_since(&req.query) {
            Ok(since) => stream_alerts(rd, wr, &state, since, stop).await,
            Err(msg) => respond(&mut wr, 400, "text/plain", &msg, &[]).await,
        },
    };
}

/// `since=SECONDS` (a non-negative number) from a query string, as a time in ns.
fn parse_since(query: &str) -> Result<Option<u64>, String> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "since" {
            continue;
        }
        let secs: f64 = v
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| format!("since must be a number of seconds, not {v:?}\n"))?;
        let back = (secs * 1e9).min(u64::MAX as f64) as u64;
        return Ok(Some(now_ns().saturating_sub(back)));
    }
    Ok(None)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn write_all(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn respond(
    wr: &mut OwnedWriteHalf,
    status: u16,
    content_type: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    write_all(wr, out.as_bytes()).await?;
    wr.shutdown().await
}

/// One chunk holding `line` and a newline.
fn chunk(line: &str) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", line.len() + 1).into_bytes();
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\n\r\n");
    out
}

async fn stream_alerts(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    state: &ServerState,
    since: Option<u64>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let counters = state.stats.sink(SinkKind::Http);
    let (replay, mut rx) = state.alerts.subscribe(since);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    write_all(&mut wr, head.as_bytes()).await?;
    for p in replay {
        write_all(&mut wr, &chunk(&p.line)).await?;
        counters.delivered.fetch_add(1, Ordering::Relaxed);
    }
    let mut scratch = [0u8; 256];
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = stop.changed() => break,
            // The client closed its side (or sent junk after its request): we are done.
            n = rd.read(&mut scratch) => match n {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
            msg = rx.recv() => match msg {
                Ok(p) => {
                    write_all(&mut wr, &chunk(&p.line)).await?;
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    counters.dropped.fetch_add(n, Ordering::Relaxed);
                    write_all(&mut wr, &chunk(&skip_notice(n))).await?;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    write_all(&mut wr, b"0\r\n\r\n").await?;
    wr.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_notices_round_trip_and_are_not_alerts() {
        let n = skip_notice(12);
        assert_eq!(parse_skip_notice(&n), Some(12));
        assert!(Alert::from_json(&n).is_err());
        assert_eq!(
            parse_skip_notice(r#"{"rule":"R","skipped":3,"priority":"Debug"}"#),
            None
        );
        assert_eq!(parse_skip_notice("not json"), None);
    }

    #[test]
    fn since_parses_seconds() {
        assert_eq!(parse_since("").unwrap(), None);
        assert_eq!(parse_since("x=1").unwrap(), None);
        let t = parse_since("x=1&since=60").unwrap().unwrap();
        assert!(t <= now_ns() - 59_000_000_000);
        assert!(parse_since("since=-1").is_err());
        assert!(parse_since("since=10m").is_err());
        assert!(parse_since("since=inf").is_err());
    }

    #[test]
    fn the_backlog_is_bounded_and_filtered_by_time() {
        let hub = AlertHub::new(3, 8);
        for t in 1..=5u64 {
            hub.publish_line(t, format!("{{\"n\":{t}}}").into());
        }
        let (replay, _rx) = hub.subscribe(Some(4));
        let lines: Vec<&str> = replay.iter().map(|p| &*p.line).collect();
        assert_eq!(lines, [r#"{"n":4}"#, r#"{"n":5}"#]);
        let (all, mut rx) = hub.subscribe(Some(0));
        assert_eq!(all.len(), 3);
        assert_eq!(hub.clients(), 2);
        hub.publish_line(6, "six".into());
        assert_eq!(&*rx.try_recv().unwrap().line, "six");
        let (none, _) = hub.subscribe(None);
        assert!(none.is_empty());
        assert_eq!(chunk("ab"), b"3\r\nab\n\r\n");
    }
}
