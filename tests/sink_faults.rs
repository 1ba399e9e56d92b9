//! Faults a real store cannot be made to produce on demand, against a small loopback
//! server that speaks the `_bulk` response format: whole requests refused with 429, and a
//! partial bulk failure (one document rejected for good, one rejected for now, one already
//! there). Also the Alertmanager sink with nothing listening and with a server that never
//! answers. The outages of a real store are in tests/opensearch.rs.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secmon::sensor::alert::Alert;
use secmon::sensor::alertmanager::AmConfig;
use secmon::sensor::elasticsearch::EsConfig;
use secmon::sensor::sinks::{SinkConfig, Sinks};
use secmon::sensor::stats::{SensorStats, SinkKind};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

mod common;

fn alert(i: u64) -> Alert {
    let line = json!({
        "hostname": "node-1",
        "output": format!("10:00:00.000000000: Warning test alert {i}"),
        "output_fields": {"proc.cmdline": format!("cat --id {i} /etc/shadow"), "fd.name": "/etc/shadow"},
        "priority": "Warning",
        "rule": "Read sensitive file untrusted",
        "source": "syscall",
        "tags": ["filesystem"],
        "time": secmon::sensor::alert::iso8601(1_777_629_600_000_000_000 + i),
    });
    Alert::from_json(&line.to_string()).unwrap()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    /// Decompressed.
    body: String,
}

/// A loopback HTTP/1.1 server (keep-alive) answering each request with `respond(request
/// number, request)`; records what it saw.
async fn server(
    respond: impl Fn(usize, &Seen) -> (u16, String) + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let respond = Arc::new(respond);
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = s.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut raw = vec![0u8; len];
                    if r.read_exact(&mut raw).await.is_err() {
                        return;
                    }
                    let gz = headers
                        .iter()
                        .any(|(k, v)| k == "content-encoding" && v == "gzip");
                    let body = if gz {
                        let mut out = String::new();
                        flate2::read::GzDecoder::new(&raw[..])
                            .read_to_string(&mut out)
                            .unwrap();
                        out
                    } else {
                        String::from_utf8_lossy(&raw).to_string()
                    };
                    let req = Seen {
                        path,
                        headers,
                        body,
                    };
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(req.clone());
                        s.len() - 1
                    };
                    let (status, body) = respond(n, &req);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if w.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// The `_id`s and documents of a bulk body.
fn actions(body: &str) -> Vec<(String, Value)> {
    let lines: Vec<&str> = body.lines().collect();
    lines
        .chunks(2)
        .map(|p| {
            let action: Value = serde_json::from_str(p[0]).unwrap();
            let doc: Value = serde_json::from_str(p[1]).unwrap();
            (action["create"]["_id"].as_str().unwrap().to_string(), doc)
        })
        .collect()
}

fn es(port: u16, dir: &std::path::Path) -> EsConfig {
    let mut c = EsConfig::new(format!("http://127.0.0.1:{port}"), dir);
    c.flush_interval = Duration::from_millis(300);
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

async fn start(cfg: SinkConfig, stats: &Arc<SensorStats>) -> Sinks {
    Sinks::start(cfg, Arc::clone(stats)).unwrap()
}

fn items(statuses: &[u16]) -> String {
    let items: Vec<Value> = statuses
        .iter()
        .map(|s| match s {
            201 => json!({"create": {"status": 201, "result": "created"}}),
            409 => json!({"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"}}}),
            429 => json!({"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution"}}}),
            _ => json!({"create": {"status": s, "error": {"type": "document_parsing_exception", "reason": "failed to parse field"}}}),
        })
        .collect();
    json!({"took": 1, "errors": statuses.iter().any(|s| *s != 201), "items": items}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_are_retried_until_delivered() {
    let (port, seen) = server(|n, req| {
        if n < 2 {
            (429, r#"{"error":"too many requests"}"#.into())
        } else {
            let docs = req.body.lines().count() / 2;
            (200, items(&vec![201; docs]))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(SensorStats::default());
    let sinks = start(
        SinkConfig {
            elasticsearch: Some(es(port, dir.path())),
            ..Default::default()
        },
        &stats,
    )
    .await;
    for i in 0..5 {
        sinks.send(&alert(i));
    }
    let c = stats.sink(SinkKind::Elasticsearch);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.delivered() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.delivered(), 5);
    assert_eq!((c.failed(), c.dropped()), (0, 0));
    assert!(c.retries() >= 2, "{}", c.retries());
    let seen = seen.lock().unwrap().clone();
    // The same documents each time, gzipped NDJSON `create` actions into the data stream.
    let first = actions(&seen[0].body);
    assert_eq!(seen.last().map(|s| actions(&s.body)), Some(first.clone()));
    assert_eq!(seen[0].path, "/secmon-alerts/_bulk");
    let h = |k: &str| {
        seen[0]
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(h("content-type").as_deref(), Some("application/x-ndjson"));
    assert_eq!(h("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(first.len(), 5);
    for (id, doc) in &first {
        assert_eq!(doc["event"]["id"].as_str(), Some(id.as_str()));
        assert_eq!(doc["event"]["kind"], "alert");
        assert_eq!(doc["file"]["path"], "/etc/shadow");
    }
    sinks.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_bulk_failure_retries_only_what_may_succeed() {
    // By document: id 1 is malformed for good (400), id 2 is refused once (429), id 3 is
    // already stored (409), the rest are created.
    let refused_once = Arc::new(AtomicBool::new(false));
    let r = refused_once.clone();
    let (port, seen) = server(move |_, req| {
        let statuses: Vec<u16> = actions(&req.body)
            .iter()
            .map(|(_, d)| {
                let cmd = d["process"]["command_line"].as_str().unwrap_or("");
                if cmd.contains("--id 1 ") {
                    400
                } else if cmd.contains("--id 2 ") && !r.swap(true, Ordering::SeqCst) {
                    429
                } else if cmd.contains("--id 3 ") {
                    409
                } else {
                    201
                }
            })
            .collect();
        (200, items(&statuses))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(SensorStats::default());
    let sinks = start(
        SinkConfig {
            elasticsearch: Some(es(port, dir.path())),
            ..Default::default()
        },
        &stats,
    )
    .await;
    for i in 0..5 {
        sinks.send(&alert(i));
    }
    let c = stats.sink(SinkKind::Elasticsearch);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.delivered() + c.failed() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 0, 2 (on retry), 3 (already there) and 4 delivered; 1 failed for good.
    assert_eq!((c.delivered(), c.failed(), c.dropped()), (4, 1, 0));
    assert_eq!(c.item_errors(), vec![(400, 1), (429, 1)]);
    assert!(refused_once.load(Ordering::SeqCst));
    let seen = seen.lock().unwrap().clone();
    let all: Vec<String> = seen
        .iter()
        .flat_map(|s| actions(&s.body))
        .map(|(_, d)| d["process"]["command_line"].as_str().unwrap().to_string())
        .collect();
    // Every document once, and the throttled one once more; never the rejected one twice.
    assert_eq!(
        all.iter().filter(|c| c.contains("--id 2 ")).count(),
        2,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|c| c.contains("--id 1 ")).count(),
        1,
        "{all:?}"
    );
    assert_eq!(all.len(), 6, "{all:?}");
    let text = stats.render_prometheus("n", "v");
    assert!(
        text.contains("secmon_sink_item_errors_total{sink=\"elasticsearch\",code=\"400\"} 1\n")
    );
    assert!(
        text.contains("secmon_sink_deliveries_total{sink=\"elasticsearch\",status=\"failed\"} 1\n")
    );
    assert!(text.contains("secmon_sink_spool_alerts{sink=\"elasticsearch\"} 0\n"));
    sinks.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_unreachable_is_retried_then_counted() {
    // Nothing listens on this port.
    let port = common::servers::free_port();
    let stats = Arc::new(SensorStats::default());
    let mut cfg = AmConfig::new(format!("http://127.0.0.1:{port}"));
    cfg.max_attempts = 3;
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(50);
    let sinks = start(
        SinkConfig {
            alertmanager: Some(cfg),
            ..Default::default()
        },
        &stats,
    )
    .await;
    for i in 0..3 {
        sinks.send(&alert(i));
    }
    let c = stats.sink(SinkKind::Alertmanager);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.failed() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((c.delivered(), c.failed(), c.dropped()), (0, 3, 0));
    assert!(c.retries() >= 2);
    sinks.shutdown(Duration::from_secs(1)).await;

    // One that accepts but never answers: the queue bound holds, the rest is dropped
    // (counted) and shutdown gives up at its deadline, counting what it held.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let stats = Arc::new(SensorStats::default());
    let mut cfg = AmConfig::new(format!("http://127.0.0.1:{port}"));
    cfg.queue = 2;
    cfg.batch = 1;
    cfg.timeout = Duration::from_secs(60);
    let sinks = start(
        SinkConfig {
            alertmanager: Some(cfg),
            ..Default::default()
        },
        &stats,
    )
    .await;
    for i in 0..10 {
        sinks.send(&alert(i));
    }
    let c = stats.sink(SinkKind::Alertmanager);
    assert!(
        c.dropped() >= 7,
        "queue of 2 (+1 in flight): {}",
        c.dropped()
    );
    sinks.shutdown(Duration::from_millis(200)).await;
    assert_eq!(
        c.delivered() + c.failed() + c.dropped(),
        10,
        "every loss counted"
    );
}

/// `emit es-template --apply` sends the credentials it is given: `--api-key` (or
/// SECMON_ES_API_KEY) as `ApiKey`, SECMON_ES_USERNAME/PASSWORD as Basic; a 401 is one line
/// naming the variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_sends_credentials_and_explains_a_refusal() {
    let (port, seen) = server(|_, req| {
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if auth.is_empty() || auth.contains("wrong") {
            (
                401,
                r#"{"error":{"reason":"unable to authenticate"}}"#.into(),
            )
        } else if req.body.is_empty() {
            // A GET: nothing exists yet.
            (404, "{}".into())
        } else {
            (200, r#"{"acknowledged":true}"#.into())
        }
    })
    .await;
    let run = move |args: Vec<String>, env: Vec<(&'static str, &'static str)>| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"));
            cmd.args(["emit", "es-template", "--apply"])
                .arg(format!("http://127.0.0.1:{port}"))
                .args(args)
                .env_remove("SECMON_ES_API_KEY")
                .env_remove("SECMON_ES_USERNAME")
                .env_remove("SECMON_ES_PASSWORD");
            for (k, v) in env {
                cmd.env(k, v);
            }
            let o = cmd.output().unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).to_string(),
            )
        })
    };
    let (code, err) = run(vec!["--api-key".into(), "a2V5".into()], vec![])
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(
        vec![],
        vec![
            ("SECMON_ES_USERNAME", "elastic"),
            ("SECMON_ES_PASSWORD", "changeme"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let auths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert!(auths.contains(&"ApiKey a2V5".to_string()), "{auths:?}");
    assert!(
        auths.contains(&"Basic ZWxhc3RpYzpjaGFuZ2VtZQ==".to_string()),
        "{auths:?}"
    );
    let (code, err) = run(vec![], vec![("SECMON_ES_API_KEY", "wrong")])
        .await
        .unwrap();
    assert_eq!(code, Some(2));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("401") && err.contains("SECMON_ES_API_KEY"),
        "{err}"
    );
}
