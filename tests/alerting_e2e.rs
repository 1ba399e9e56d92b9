//! The alerting path end to end on loopback, with the real servers from Debian's packages:
//!
//! - a real sensor (root) serving `/metrics` and posting to Alertmanager (`--alertmanager`);
//! - a real Prometheus scraping it every second with the rules of `emit prometheus-rules`
//!   (`--window 20s`, so that the test waits seconds, not minutes);
//! - a real Alertmanager with the config of `emit alertmanager-config`, its placeholder
//!   receiver URLs pointed at a webhook receiver in this test.
//!
//! A Critical detection (`kubectl-secmon __action memfd-exec`: "Fileless execution via
//! memfd") must reach the critical receiver twice: as `SecmonCriticalDetection` through
//! Prometheus → Alertmanager, and as the rule itself straight from the sensor. A second test
//! starts the Alertmanager sink while Alertmanager is down, then starts Alertmanager and
//! finds the alerts in its API.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use secmon::sensor::alert::Alert;
use secmon::sensor::alertmanager::AmConfig;
use secmon::sensor::sinks::{SinkConfig, Sinks};
use secmon::sensor::stats::{SensorStats, SinkKind};
use serde_json::{Value, json};

mod common;
use common::servers::{self, free_port, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

fn tmp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn emit(args: &[&str]) -> String {
    let o = Command::new(BIN).arg("emit").args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The emitted Alertmanager config with its receivers pointed at `receiver_port`.
fn am_config(receiver_port: u16) -> String {
    let cfg = emit(&[
        "alertmanager-config",
        "--receiver",
        "critical=page",
        "--receiver",
        "warning=chat",
    ]);
    assert!(
        cfg.contains("https://alerts.example.com/secmon/critical"),
        "{cfg}"
    );
    cfg.replace(
        "https://alerts.example.com/secmon/",
        &format!("http://127.0.0.1:{receiver_port}/"),
    )
}

/// Alerts the receiver got on `path` (each notification's `alerts[]`).
fn received(got: &servers::Received, path: &str) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
        .flat_map(|v| v["alerts"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_critical_detection_reaches_the_receiver_through_prometheus_and_directly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    if let Err(e) = secmon::sensor::prereq::check() {
        common::require_or_skip(&format!("sensor prerequisites: {e}"));
        return;
    }
    let dir = tmp_dir("alerting-e2e");
    let (receiver_port, got) = servers::webhook_receiver();
    let am_port = free_port();
    let Some(_am) = servers::alertmanager(&dir, am_port, &am_config(receiver_port)) else {
        return;
    };

    let mut child = Command::new(BIN)
        .args(["sensor", "--quiet", "--metrics-addr", "127.0.0.1:0"])
        .args(["--alertmanager", &format!("http://127.0.0.1:{am_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = tx.send(line.clone());
            }
            if !line.starts_with("warning") {
                eprintln!("sensor: {line}");
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    let mut sensor = servers::Proc {
        child,
        name: "sensor",
    };
    let ready = ready.expect("the sensor became ready");
    let metrics: u16 = ready
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no metrics port in {ready}"));

    std::fs::write(
        dir.join("rules.yaml"),
        emit(&["prometheus-rules", "--window", "20s"]),
    )
    .unwrap();
    let prom_port = free_port();
    let prom_cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yaml]\n\
         alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n\
         scrape_configs:\n- job_name: secmon-sensor\n  static_configs:\n  - targets: ['127.0.0.1:{metrics}']\n"
    );
    let Some(_prom) = servers::prometheus(&dir, prom_port, &prom_cfg) else {
        return;
    };
    // The first-seen arm of the detection rules needs the sensor scraped 20s ago.
    let q = format!(
        "/api/v1/query?query={}",
        servers::urlencode("secmon_sensor_info{job=\"secmon-sensor\"} offset 20s")
    );
    wait_for(
        "the sensor scraped for 20s",
        Duration::from_secs(120),
        || {
            let v = servers::json(prom_port, "GET", &q, None);
            (!v["data"]["result"].as_array()?.is_empty()).then_some(())
        },
    );

    let status = Command::new(BIN)
        .args(["__action", "memfd-exec"])
        .status()
        .unwrap();
    assert!(status.success());

    let rule = "Fileless execution via memfd";
    let direct = wait_for(
        "the sensor's own alert at the critical receiver",
        Duration::from_secs(120),
        || {
            received(&got, "/critical")
                .into_iter()
                .find(|a| a["labels"]["alertname"] == rule && a["labels"]["source"] == "secmon")
        },
    );
    assert_eq!(direct["labels"]["severity"], "critical");
    assert_eq!(direct["labels"]["priority"], "critical");
    assert!(!direct["labels"]["node"].as_str().unwrap_or("").is_empty());
    assert!(
        direct["annotations"]["output"]
            .as_str()
            .unwrap_or("")
            .contains("Program executed from memory"),
        "{direct:#}"
    );
    let via_prom = wait_for(
        "SecmonCriticalDetection at the critical receiver",
        Duration::from_secs(120),
        || {
            received(&got, "/critical").into_iter().find(|a| {
                a["labels"]["alertname"] == "SecmonCriticalDetection" && a["labels"]["rule"] == rule
            })
        },
    );
    assert_eq!(via_prom["labels"]["severity"], "critical");
    assert_eq!(via_prom["status"], "firing");
    assert!(
        via_prom["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or("")
            .ends_with("#secmoncriticaldetection")
    );
    // Nothing critical went to the chat receiver.
    assert!(
        received(&got, "/warning")
            .iter()
            .all(|a| a["labels"]["severity"] != "critical")
    );
    let (_, m) = servers::http(metrics, "GET", "/metrics", None).unwrap();
    assert!(
        m.contains("secmon_sink_deliveries_total{sink=\"alertmanager\",status=\"delivered\"}"),
        "{m}"
    );
    unsafe { libc::kill(sensor.child.id() as i32, libc::SIGTERM) };
    let status = sensor.child.wait().unwrap();
    assert!(status.success(), "sensor exit {status}");
}

#[test]
fn alerts_sent_while_alertmanager_is_down_arrive_once_it_is_up() {
    let dir = tmp_dir("alerting-down");
    let am_port = free_port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stats = Arc::new(SensorStats::default());
    let mut cfg = AmConfig::new(format!("http://127.0.0.1:{am_port}"));
    cfg.backoff_base = Duration::from_millis(300);
    cfg.backoff_max = Duration::from_secs(2);
    cfg.max_attempts = 30;
    let sinks = rt
        .block_on(async {
            Sinks::start(
                SinkConfig {
                    alertmanager: Some(cfg),
                    ..Default::default()
                },
                Arc::clone(&stats),
            )
        })
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for (i, ns) in ["shop", "db"].iter().enumerate() {
        let line = json!({
            "hostname": "node-9",
            "output": format!("Warning Sensitive file opened ({i})"),
            "output_fields": {"k8s.ns.name": ns, "k8s.pod.name": format!("pod-{i}")},
            "priority": "Warning",
            "rule": "Read sensitive file untrusted",
            "source": "syscall",
            "tags": [],
            "time": secmon::sensor::alert::iso8601(now + i as u64),
        });
        sinks.send(&Alert::from_json(&line.to_string()).unwrap());
    }
    let c = stats.sink(SinkKind::Alertmanager);
    wait_for("a retry while it is down", Duration::from_secs(30), || {
        (c.retries() >= 1).then_some(())
    });
    assert_eq!(c.delivered(), 0);
    let (receiver_port, _got) = servers::webhook_receiver();
    let Some(_am) = servers::alertmanager(&dir, am_port, &am_config(receiver_port)) else {
        return;
    };
    wait_for("2 delivered", Duration::from_secs(60), || {
        (c.delivered() == 2).then_some(())
    });
    let alerts = servers::json(am_port, "GET", "/api/v2/alerts", None);
    let mine: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["node"] == "node-9")
        .collect();
    assert_eq!(mine.len(), 2, "{alerts:#}");
    for a in mine {
        assert_eq!(a["labels"]["alertname"], "Read sensitive file untrusted");
        assert_eq!(a["labels"]["severity"], "warning");
        assert!(
            a["annotations"]["output"]
                .as_str()
                .unwrap()
                .contains("Sensitive file")
        );
    }
    assert_eq!((c.failed(), c.dropped()), (0, 0));
    rt.block_on(sinks.shutdown(Duration::from_secs(2)));
}
