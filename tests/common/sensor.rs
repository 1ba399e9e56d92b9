//! A real node sensor for integration tests: started with `kubectl-secmon sensor` on a free
//! port, its stdout (JSON-lines alerts) collected, stopped with SIGTERM.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub struct Sensor {
    pub child: Child,
    pub alerts: Arc<Mutex<Vec<serde_json::Value>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// HOST:PORT of its /metrics, /healthz and /alerts.
    pub addr: String,
}

impl Sensor {
    /// Start `bin sensor ARGS…`; `None` (after `require_or_skip`) when the host cannot run it.
    pub fn start(bin: &str, args: &[&str]) -> Option<Sensor> {
        if let Err(e) = secmon::sensor::prereq::check() {
            super::require_or_skip(&format!("sensor prerequisites: {e}"));
            return None;
        }
        let mut child = Command::new(bin)
            .args(["sensor", "--metrics-addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sensor");
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let a = alerts.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("sensor stdout is not JSON lines ({e}): {line}"));
                a.lock().expect("lock").push(v);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(line.clone());
                }
                e.lock().expect("lock").push(line);
            }
        });
        let Ok(ready) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = stderr.lock().expect("lock").join("\n");
            super::require_or_skip(&format!("the sensor never became ready:\n{log}"));
            return None;
        };
        let addr = ready
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .map(|w| {
                w.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no address in the ready line: {ready}"));
        Some(Sensor {
            child,
            alerts,
            stderr,
            addr,
        })
    }

    /// Wait up to 20 s until the alerts so far satisfy `pred`.
    pub fn wait_for(&self, pred: impl Fn(&[serde_json::Value]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if pred(&self.alerts.lock().expect("lock")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `GET path` on the sensor's HTTP address: the raw response.
    pub fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the sensor");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    }

    /// SIGTERM, wait, and every alert it printed.
    pub fn stop(mut self) -> (Vec<serde_json::Value>, Vec<String>) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for the sensor");
        std::thread::sleep(Duration::from_millis(200));
        let log = self.stderr.lock().expect("lock").clone();
        assert!(
            status.success(),
            "sensor exit {status}; stderr:\n{}",
            log.join("\n")
        );
        (self.alerts.lock().expect("lock").clone(), log)
    }
}

/// Write a rules file into `dir` and return its path as a string.
pub fn rules_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write rules");
    p.display().to_string()
}
