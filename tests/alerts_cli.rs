//! `kubectl secmon alerts` through the real binary: saved files (ours and Falco's own lines,
//! with a malformed one), every filter, table/wide/json/yaml, `--follow` across a rotation,
//! and `--local` against a loopback server streaming a canned chunked `/alerts` response.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"));
    c.env_remove("COLUMNS").env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn iso(ns: u64) -> String {
    secmon::sensor::alert::iso8601(ns)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// An alert line in our format.
fn ours(rule: &str, priority: &str, ns: Option<&str>, container: &str, time_ns: u64) -> String {
    let mut fields = serde_json::Map::new();
    fields.insert("evt.time".into(), json!(time_ns));
    fields.insert("proc.name".into(), json!("bash"));
    fields.insert("proc.cmdline".into(), json!("bash -i"));
    fields.insert("container.id".into(), json!(container));
    if let Some(ns) = ns {
        fields.insert("k8s.ns.name".into(), json!(ns));
        fields.insert("k8s.pod.name".into(), json!("web-0"));
    }
    json!({
        "hostname": "node-1",
        "output": format!("10:00:00.000000000: {priority} {rule} (user=root)"),
        "output_fields": fields,
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "tags": ["container", "shell"],
        "time": iso(time_ns),
    })
    .to_string()
}

/// A line exactly as Falco 0.4x writes it with json_output (keys, nulls, numbers).
const FALCO_LINE: &str = r#"{"hostname":"falco-node","output":"10:00:00.123456789: Critical Sensitive file opened for reading by non-trusted program | file=/etc/shadow gparent=systemd ggparent=<NA> gggparent=<NA> evt_type=openat user=root user_uid=0 user_loginuid=-1 process=cat proc_exepath=/usr/bin/cat parent=bash command=cat /etc/shadow terminal=34816 container_id=3ad7b26ded6d container_name=web","output_fields":{"container.id":"3ad7b26ded6d","container.name":"web","evt.time":1714557600123456789,"evt.type":"openat","fd.name":"/etc/shadow","k8s.ns.name":"payments","k8s.pod.name":"api-7d9","proc.aname[2]":"systemd","proc.aname[3]":null,"proc.cmdline":"cat /etc/shadow","proc.exepath":"/usr/bin/cat","proc.name":"cat","proc.pname":"bash","proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0},"priority":"Critical","rule":"Read sensitive file untrusted","source":"syscall","tags":["T1555","container","filesystem","host","maturity_stable","mitre_credential_access"],"time":"2024-05-01T10:00:00.123456789Z"}"#;

/// A file: ours (old and recent), Falco's, a blank line, a malformed line (line 4).
fn write_fixture(dir: &Path) -> (std::path::PathBuf, u64) {
    let now = now_ns();
    let hour = 3_600_000_000_000;
    let lines = [
        ours(
            "Terminal shell in container",
            "Notice",
            Some("default"),
            "aaaa11112222",
            now - 2 * hour,
        ),
        ours(
            "Netcat reverse shell in container",
            "Warning",
            Some("prod"),
            "bbbb33334444",
            now - 60_000_000_000,
        ),
        String::new(),
        "{\"rule\": \"cut off".to_string(),
        FALCO_LINE.to_string(),
        ours(
            "Drift: new executable",
            "Error",
            None,
            "cccc55556666",
            now - 30_000_000_000,
        ),
    ];
    let path = dir.join("alerts.json");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, now)
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn rules_of(o: &Output) -> Vec<String> {
    json_lines(o)
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn table_of_a_file_with_a_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_fixture(dir.path());
    let o = run(&["alerts", "--file", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("TIME"));
    for h in ["PRIORITY", "RULE", "WHERE", "PROCESS", "DETAILS"] {
        assert!(lines[0].contains(h), "{}", lines[0]);
    }
    assert!(lines[1].contains("Notice") && lines[1].contains("default/web-0"));
    assert!(lines[1].contains("bash -i"));
    // Falco's line: its pod, command line and key details.
    let falco = lines[3];
    assert!(falco.starts_with("2024-05-01T10:00:00Z"), "{falco}");
    assert!(falco.contains("Critical") && falco.contains("Read sensitive file untrusted"));
    assert!(falco.contains("payments/api-7d9") && falco.contains("cat /etc/shadow"));
    assert!(falco.contains("file=/etc/shadow"), "{falco}");
    // A container alert without a pod shows the container.
    assert!(lines[4].contains("cccc55556666"), "{}", lines[4]);
    // Columns line up.
    let col = lines[0].find("RULE").unwrap();
    assert!(lines[1..].iter().all(|l| l[col - 2..col] == *"  "));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert!(
        err.contains("skipped 1 line(s) that are not alerts (first: line 4"),
        "{err}"
    );

    let wide = run(&["alerts", "--file", path.to_str().unwrap(), "-o", "wide"]);
    let out = stdout(&wide);
    assert!(out.lines().next().unwrap().contains("HOST"));
    assert!(out.contains("2024-05-01T10:00:00.123456789Z"));
    assert!(out.contains("payments/api-7d9 (3ad7b26ded6d)"));
    assert!(out.contains("proc.tty=34816"), "{out}");
}

#[test]
fn filters_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_fixture(dir.path());
    let p = path.to_str().unwrap();
    let all = run(&["alerts", "--file", p, "-o", "json"]);
    assert_eq!(all.status.code(), Some(0));
    assert_eq!(json_lines(&all).len(), 4);
    // The Falco line comes back exactly as it was (key order and all).
    assert_eq!(stdout(&all).lines().nth(2).unwrap(), FALCO_LINE);

    let only = |args: &[&str]| {
        let mut a = vec!["alerts", "--file", p, "-o", "json"];
        a.extend_from_slice(args);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        rules_of(&o)
    };
    assert_eq!(
        only(&["--priority", "warning"]),
        [
            "Netcat reverse shell in container",
            "Read sensitive file untrusted",
            "Drift: new executable"
        ]
    );
    assert_eq!(
        only(&["--priority", "ERROR"]),
        ["Read sensitive file untrusted", "Drift: new executable"]
    );
    assert_eq!(
        only(&["--rule", "*SHELL*"]),
        [
            "Terminal shell in container",
            "Netcat reverse shell in container"
        ]
    );
    assert_eq!(
        only(&["--rule", "drift:*", "--rule", "read ?ensitive*"]),
        ["Read sensitive file untrusted", "Drift: new executable"]
    );
    assert_eq!(only(&["-n", "prod"]), ["Netcat reverse shell in container"]);
    assert_eq!(
        only(&["--namespace", "payments"]),
        ["Read sensitive file untrusted"]
    );
    assert_eq!(only(&["-n", "prod", "-A"]).len(), 4);
    assert_eq!(
        only(&["--container", "3ad7b2"]),
        ["Read sensitive file untrusted"]
    );
    assert!(only(&["--container", "ad7b2"]).is_empty());
    assert_eq!(
        only(&["--since", "10m"]),
        ["Netcat reverse shell in container", "Drift: new executable"]
    );
    assert_eq!(
        only(&["--since", "10m", "--priority", "error", "--rule", "*"]),
        ["Drift: new executable"]
    );

    let yaml = run(&["alerts", "--file", p, "-o", "yaml", "-n", "prod"]);
    let text = stdout(&yaml);
    assert!(text.starts_with("---\n"), "{text}");
    assert!(text.contains("rule: Netcat reverse shell in container\n"));

    // Nothing matches: no output, still success.
    let none = run(&["alerts", "--file", p, "-n", "nowhere"]);
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(stdout(&none), "");
    assert!(stderr(&none).contains("No alerts found."));
}

#[test]
fn errors_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let check = |args: &[&str], needle: &str| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(stdout(&o), "");
    };
    let missing = dir.path().join("missing.json");
    // Cluster mode needs a cluster: a kubeconfig that is not there is one line.
    check(
        &["alerts", "--kubeconfig", missing.to_str().unwrap()],
        "cannot read kubeconfig",
    );
    check(
        &["alerts", "--file", missing.to_str().unwrap()],
        "cannot read alerts file",
    );
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "hello\nworld\n").unwrap();
    check(
        &["alerts", "--file", junk.to_str().unwrap()],
        "line 1 is not an alert",
    );
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let o = run(&["alerts", "--file", empty.to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    check(
        &["alerts", "--file", empty.to_str().unwrap(), "-o", "sarif"],
        "-o sarif is not available for alerts",
    );
    let o = run(&[
        "alerts",
        "--file",
        empty.to_str().unwrap(),
        "--priority",
        "loud",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown priority \"loud\""),
        "{}",
        stderr(&o)
    );
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    check(
        &["alerts", "--local", &addr],
        "is `kubectl secmon sensor` running",
    );
}

/// Serve one canned chunked `/alerts` response on loopback; returns the address and a
/// handle giving the request line the server saw.
fn canned_sensor(body_chunks: Vec<Vec<u8>>) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut request_line = String::new();
        r.read_line(&mut request_line).unwrap();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l.trim().is_empty() {
                break;
            }
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        for c in body_chunks {
            s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .unwrap();
            s.write_all(&c).unwrap();
            s.write_all(b"\r\n").unwrap();
            s.flush().unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
        request_line
    });
    (addr, handle)
}

#[test]
fn local_follows_a_chunked_alerts_stream() {
    let now = now_ns();
    let a = ours(
        "Terminal shell in container",
        "Notice",
        Some("default"),
        "aaaa",
        now,
    );
    let b = ours(
        "Netcat reverse shell in container",
        "Warning",
        Some("prod"),
        "bbbb",
        now,
    );
    let notice = secmon::sensor::http::skip_notice(5);
    // An alert split across chunks, two in one chunk, a lag notice, Falco's own line.
    let (first, second) = a.split_at(40);
    let chunks = vec![
        first.as_bytes().to_vec(),
        format!("{second}\n").into_bytes(),
        format!("{b}\n{notice}\n").into_bytes(),
        format!("{FALCO_LINE}\n").into_bytes(),
    ];
    let (addr, server) = canned_sensor(chunks.clone());
    let o = run(&["alerts", "--local", &addr, "--since", "10m", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        server.join().unwrap().trim(),
        "GET /alerts?since=600 HTTP/1.1"
    );
    // The filters apply to the stream too: Falco's 2024 alert is older than 10 minutes.
    assert_eq!(
        rules_of(&o),
        [
            "Terminal shell in container",
            "Netcat reverse shell in container"
        ]
    );
    let err = stderr(&o);
    assert!(
        err.contains("the sensor skipped 5 alert(s) because this reader fell behind"),
        "{err}"
    );

    let (addr, server) = canned_sensor(chunks);
    let o = run(&["alerts", "--local", &addr, "--priority", "warning"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.join().unwrap().trim(), "GET /alerts HTTP/1.1");
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("TIME"));
    assert!(lines[1].contains("Netcat reverse shell in container"));
    assert!(lines[2].contains("payments/api-7d9"));
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn follow_reads_new_lines_and_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    let now = now_ns();
    let line = |n: u64| {
        ours(
            &format!("Rule {n}"),
            "Warning",
            Some("default"),
            "aaaa",
            now + n,
        )
    };
    std::fs::write(&path, format!("{}\n", line(1))).unwrap();
    let child = bin()
        .args(["alerts", "--file", path.to_str().unwrap(), "--follow"])
        .args(["-o", "json", "--rule", "rule ?"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut next = || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        v["rule"].as_str().unwrap().to_string()
    };
    assert_eq!(next(), "Rule 1");
    // Appended, in two writes that split a line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let l2 = line(2);
    f.write_all(&l2.as_bytes()[..30]).unwrap();
    f.flush().unwrap();
    f.write_all(format!("{}\n{}\n", &l2[30..], line(3)).as_bytes())
        .unwrap();
    drop(f);
    assert_eq!(next(), "Rule 2");
    assert_eq!(next(), "Rule 3");
    // Rotated as the sensor does: the file moves to .1, a new one starts.
    std::fs::rename(&path, dir.path().join("alerts.json.1")).unwrap();
    std::fs::write(
        &path,
        format!(
            "{}\n{}\n",
            line(4),
            ours("Other", "Warning", None, "x", now)
        ),
    )
    .unwrap();
    assert_eq!(next(), "Rule 4");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(format!("{}\n", line(5)).as_bytes()).unwrap();
    drop(f);
    assert_eq!(next(), "Rule 5");
    drop(child);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.json");
    let line = ours("R", "Debug", None, "x", now_ns());
    // Far more than a pipe buffer holds.
    std::fs::write(&path, format!("{line}\n").repeat(5000)).unwrap();
    let mut child = bin()
        .args(["alerts", "--file", path.to_str().unwrap(), "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim_end(), line);
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
}

/// The command against the sensor's real HTTP server: the backlog, then a live alert, then
/// the end of the stream when the server shuts down.
#[test]
fn local_against_the_real_sensor_server() {
    use secmon::sensor::alert::Alert;
    use secmon::sensor::http::{AlertHub, ServerState, serve_on};
    use secmon::sensor::stats::SensorStats;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let hub = AlertHub::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = ServerState {
        stats: Arc::new(SensorStats::default()),
        alerts: hub.clone(),
        healthy: Arc::new(AtomicBool::new(true)),
        node: "node-1".into(),
        version: "test".into(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve_on(listener, state, async {
        let _ = stopped.await;
    }));
    let now = now_ns();
    let publish = |rule: &str, ns: &str, t: u64| {
        hub.publish(&Alert::from_json(&ours(rule, "Warning", Some(ns), "aaaa", t)).unwrap());
    };
    publish("Backlog old", "default", now - 3_600_000_000_000);
    publish("Backlog recent", "default", now - 1_000_000_000);
    publish("Backlog other ns", "kube-system", now);

    let child = bin()
        .args(["alerts", "--local", &addr, "--since", "5m", "-n", "default"])
        .args(["-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut next = || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        v["rule"].as_str().unwrap().to_string()
    };
    assert_eq!(next(), "Backlog recent");
    publish("Live other ns", "kube-system", now_ns());
    publish("Live", "default", now_ns());
    assert_eq!(next(), "Live");
    stop.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "");
}
