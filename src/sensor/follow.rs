//! Reading alerts back: a saved JSON-lines file (read once, or followed as it grows and
//! across rotations, like `tail -F`) and the sensor's `/alerts` stream. Lines are decoded
//! by [`LineDecoder`] and handed to an [`AlertSink`]. Used by `kubectl secmon alerts` (which
//! prints them) and `kubectl secmon simulate verify` (which matches them to scenarios).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::alert::{Decoded, LineDecoder};
use super::http::DEFAULT_ADDR;

/// How often a followed file is checked for new lines, and a stream for `done`.
const POLL: Duration = Duration::from_millis(100);

/// Where decoded lines go.
pub trait AlertSink {
    /// One decoded line: an alert, or the sensor's notice of skipped alerts.
    fn take(&mut self, d: Decoded);
    /// Stop reading: the consumer has what it needs, or its output went away.
    fn done(&self) -> bool {
        false
    }
    /// Whether Ctrl-C ends a followed source. A consumer that handles SIGINT itself says no,
    /// so that reading never takes the signal away from it.
    fn stops_on_ctrl_c(&self) -> bool {
        true
    }
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read alerts file {}: {e}; check the path (the sensor writes it with --alerts-file)",
            path.display()
        )
    })
}

/// Read a whole file once.
pub fn read_file(path: &Path, sink: &mut dyn AlertSink) -> anyhow::Result<LineDecoder> {
    let mut f = open(path)?;
    let mut decoder = LineDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        decoder.push(&buf[..n], |d| sink.take(d));
        if sink.done() {
            break;
        }
    }
    Ok(decoder)
}

/// The identity of the file a path names, to notice rotation.
#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on Ctrl-C when the sink wants that, never otherwise.
async fn ctrl_c_if(wanted: bool) {
    if wanted {
        let _ = tokio::signal::ctrl_c().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Read the file, then keep polling it for new lines until Ctrl-C or the sink is done.
/// When the path is replaced (rotated) or truncated, the rest of the old file is read and
/// reading starts again at the beginning of the new one.
pub fn follow_file(path: &Path, sink: &mut dyn AlertSink) -> anyhow::Result<LineDecoder> {
    let mut f = open(path)?;
    let mut id = file_id(&f.metadata()?);
    let mut pos: u64 = 0;
    let mut decoder = LineDecoder::default();
    let rt = runtime()?;
    let on_ctrl_c = sink.stops_on_ctrl_c();
    rt.block_on(async {
        let mut buf = vec![0u8; 64 * 1024];
        let ctrl_c = ctrl_c_if(on_ctrl_c);
        tokio::pin!(ctrl_c);
        loop {
            let n = f
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n > 0 {
                pos += n as u64;
                decoder.push(&buf[..n], |d| sink.take(d));
                if sink.done() {
                    break;
                }
                continue;
            }
            if sink.done() {
                break;
            }
            // At the end: has the path moved on to a new file, or been truncated?
            if let Ok(m) = std::fs::metadata(path) {
                let replaced = file_id(&m) != id;
                if (replaced || m.len() < pos)
                    && let Ok(newf) = File::open(path)
                {
                    f = newf;
                    id = file_id(&m);
                    pos = 0;
                    continue;
                }
            }
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(decoder)
}

/// `http://ADDR/alerts`, with `since` as seconds.
pub fn alerts_url(addr: &str, since: Option<Duration>) -> String {
    let base = addr.trim_end_matches('/');
    let base = if base.starts_with("http://") {
        base.to_string()
    } else {
        format!("http://{base}")
    };
    match since {
        Some(d) => format!("{base}/alerts?since={}", d.as_secs().max(1)),
        None => format!("{base}/alerts"),
    }
}

/// Follow the sensor at `addr` through its `/alerts` stream (replaying its backlog from
/// `since` ago first) until Ctrl-C, the end of the stream, or the sink is done.
pub fn follow_local(
    addr: &str,
    since: Option<Duration>,
    sink: &mut dyn AlertSink,
) -> anyhow::Result<LineDecoder> {
    let url = alerts_url(addr, since);
    let uri: hyper::Uri = url.parse().map_err(|_| {
        anyhow::anyhow!("--local {addr:?}: not an address; use HOST:PORT, e.g. {DEFAULT_ADDR}")
    })?;
    let hint = format!(
        "is `kubectl secmon sensor` running on this host with --metrics-addr {}?",
        uri.authority().map_or(addr, |a| a.as_str())
    );
    let mut decoder = LineDecoder::default();
    let rt = runtime()?;
    let on_ctrl_c = sink.stops_on_ctrl_c();
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let resp = client.get(uri).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to the sensor at {url}: {}; {hint}",
                root_cause(&e)
            )
        })?;
        if !resp.status().is_success() {
            bail!("the server at {url} answered {}: {hint}", resp.status());
        }
        let mut body = resp.into_body();
        let ctrl_c = ctrl_c_if(on_ctrl_c);
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = tokio::time::sleep(POLL) => {
                    if sink.done() {
                        break;
                    }
                }
                frame = body.frame() => match frame {
                    None => break,
                    Some(Err(e)) => bail!("the sensor at {url} broke off the stream: {e}"),
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            decoder.push(data, |d| sink.take(d));
                        }
                        if sink.done() {
                            break;
                        }
                    }
                },
            }
        }
        Ok(())
    })?;
    Ok(decoder)
}

/// The innermost error: "Connection refused (os error 111)" rather than the layers
/// of client wrapping around it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            alerts_url("127.0.0.1:8765", None),
            "http://127.0.0.1:8765/alerts"
        );
        assert_eq!(
            alerts_url("http://node:9000/", Some(Duration::from_secs(600))),
            "http://node:9000/alerts?since=600"
        );
        assert_eq!(
            alerts_url("h:1", Some(Duration::from_millis(10))),
            "http://h:1/alerts?since=1"
        );
    }

    struct Collect(Vec<Decoded>, usize);
    impl AlertSink for Collect {
        fn take(&mut self, d: Decoded) {
            self.0.push(d);
        }
        fn done(&self) -> bool {
            self.0.len() >= self.1
        }
        fn stops_on_ctrl_c(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_followed_file_stops_when_the_sink_is_done() {
        let dir = std::env::temp_dir().join(format!("secmon-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.jsonl");
        let line = r#"{"rule":"R","priority":"Debug","time":"2026-05-01T10:00:00Z"}"#;
        std::fs::write(&path, format!("{line}\n{line}\n")).unwrap();
        let mut sink = Collect(Vec::new(), 2);
        let d = follow_file(&path, &mut sink).unwrap();
        assert_eq!((d.parsed, sink.0.len()), (2, 2));
        let mut once = Collect(Vec::new(), usize::MAX);
        assert_eq!(read_file(&path, &mut once).unwrap().parsed, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
