//! Real servers on loopback for the monitoring tests: OpenSearch (from the Maven-built
//! launcher of tests/opensearch/, built and cached by scripts/opensearch-launcher),
//! Prometheus and Alertmanager (Debian's packages), and a tiny blocking HTTP client.
//! Each server is a child process killed when its handle drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; (status, body). `None` if nothing answers.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// JSON of a request that must succeed.
pub fn json(port: u16, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
    let (status, text) = http(port, method, path, body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer on port {port}"));
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Poll `f` every 200 ms until it returns `Some`, for at most `limit` (a deadline for
/// something to happen, not a performance threshold).
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The launcher directory (classpath.txt, classes/) built by scripts/opensearch-launcher,
/// or `None` (loud skip; a failure under CI) when Java or Maven is missing or it fails.
pub fn opensearch_launcher() -> Option<PathBuf> {
    static DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        if !have("java") || !have("mvn") {
            super::require_or_skip(
                "java and mvn for the OpenSearch launcher (apt-get install openjdk-17-jdk-headless maven)",
            );
            return None;
        }
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/opensearch-launcher"
        ))
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
        if !out.status.success() {
            super::require_or_skip("scripts/opensearch-launcher failed (see above)");
            return None;
        }
        Some(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    })
    .clone()
}

/// A real single-node OpenSearch on 127.0.0.1.
pub struct OpenSearch {
    pub port: u16,
    pub home: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl OpenSearch {
    /// Start one with its data in `home` on `port` (0: any free one); blocks until it
    /// serves HTTP and its cluster is at least yellow.
    pub fn start(launcher: &Path, home: &Path, port: u16) -> OpenSearch {
        let cp = std::fs::read_to_string(launcher.join("classpath.txt")).expect("classpath.txt");
        let cp = format!("{}:{}", cp.trim(), launcher.join("classes").display());
        let mut child = Command::new("java")
            .args(["-Xms512m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-cp"])
            .arg(cp)
            .arg("secmon.Launcher")
            .arg(home)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start java");
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("READY ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap_or(0));
                }
            }
        });
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let port = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(p) if p > 0 => p,
            _ => {
                let _ = child.kill();
                panic!(
                    "OpenSearch did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let os = OpenSearch {
            port,
            home: home.to_path_buf(),
            child,
            stdin,
        };
        wait_for(
            "OpenSearch's cluster health",
            Duration::from_secs(120),
            || {
                http(
                    port,
                    "GET",
                    "/_cluster/health?wait_for_status=yellow&timeout=5s",
                    None,
                )
                .filter(|(s, _)| *s == 200)
            },
        );
        eprintln!(
            "OpenSearch up on 127.0.0.1:{port} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        os
    }

    /// Stop it (closing stdin: the node closes and the JVM exits) and wait.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stdin.take());
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Documents matching `query` (a JSON query clause) in `index`, after a refresh; none
    /// while the index does not exist yet. An index created a moment ago may have no
    /// started shard yet (503 "all shards failed"): then its health is awaited and the
    /// search made again.
    pub fn search(&self, index: &str, query: serde_json::Value) -> Vec<serde_json::Value> {
        let body = serde_json::json!({ "query": query, "size": 1000 }).to_string();
        let mut answer = None;
        for _ in 0..3 {
            let _ = http(self.port, "POST", &format!("/{index}/_refresh"), None);
            let got = http(self.port, "POST", &format!("/{index}/_search"), Some(&body))
                .unwrap_or_else(|| panic!("no answer from OpenSearch on {}", self.port));
            if got.0 != 503 {
                answer = Some(got);
                break;
            }
            let _ = http(
                self.port,
                "GET",
                &format!("/_cluster/health/{index}?wait_for_status=yellow&timeout=30s"),
                None,
            );
            answer = Some(got);
        }
        let (status, text) = answer.unwrap_or_default();
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "search {index}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["hits"]["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|h| h["_source"].clone())
            .collect()
    }

    /// How many documents `index` holds, after a refresh.
    pub fn count(&self, index: &str) -> u64 {
        let _ = http(self.port, "POST", &format!("/{index}/_refresh"), None);
        match http(self.port, "GET", &format!("/{index}/_count"), None) {
            Some((200, body)) => serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["count"].as_u64())
                .unwrap_or(0),
            _ => 0,
        }
    }
}

impl Drop for OpenSearch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a webhook receiver got: (path, body) per request.
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A loopback HTTP/1.1 receiver (keep-alive) that answers every request 200 and records it.
pub fn webhook_receiver() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got: Received = Default::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut w = match stream.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    g.lock()
                        .unwrap()
                        .push((path, String::from_utf8_lossy(&body).to_string()));
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

/// Debian's Alertmanager on 127.0.0.1:`port` with `config` (YAML), no clustering; `None`
/// (loud skip, CI failure) when it is not installed.
pub fn alertmanager(dir: &Path, port: u16, config: &str) -> Option<Proc> {
    if !have("prometheus-alertmanager") {
        super::require_or_skip("prometheus-alertmanager (apt-get install prometheus-alertmanager)");
        return None;
    }
    std::fs::write(dir.join("alertmanager.yml"), config).expect("write the config");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("alertmanager.log")).expect("log"))
        .spawn()
        .expect("start prometheus-alertmanager");
    let p = Proc {
        child,
        name: "alertmanager",
    };
    wait_for("Alertmanager ready", Duration::from_secs(60), || {
        http(port, "GET", "/-/ready", None).filter(|(s, _)| *s == 200)
    });
    Some(p)
}

/// Debian's Prometheus on 127.0.0.1:`port` with `config` (YAML) and the files it names in
/// `dir`; `None` (loud skip, CI failure) when it is not installed.
pub fn prometheus(dir: &Path, port: u16, config: &str) -> Option<Proc> {
    if !have("prometheus") {
        super::require_or_skip("prometheus (apt-get install prometheus)");
        return None;
    }
    std::fs::write(dir.join("prometheus.yml"), config).expect("write the config");
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log"))
        .spawn()
        .expect("start prometheus");
    let p = Proc {
        child,
        name: "prometheus",
    };
    wait_for("Prometheus ready", Duration::from_secs(60), || {
        http(port, "GET", "/-/ready", None).filter(|(s, _)| *s == 200)
    });
    Some(p)
}

/// Percent-encode a query parameter.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
