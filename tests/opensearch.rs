//! Against a real single-node OpenSearch 2.19 (started from its Maven Central artifacts by
//! the launcher in tests/opensearch/, once per test binary, plus one more that the outage
//! test stops and restarts):
//!
//! - `emit es-template --flavor opensearch --apply`: created, then unchanged, then updated;
//!   the ISM policy refused with a clear line (this OpenSearch has no ISM plugin: it is not
//!   on Maven Central), and `--no-policy` applying the rest; falcosidekick mode mapping a
//!   daily index.
//! - the sink writes ECS documents that query back by their ECS fields (term, range on an
//!   `ip`, wildcard on `process.command_line`);
//! - a real sensor (root) with `--elasticsearch` ships a Critical detection;
//! - outages: the store down at start, down mid-stream and back, a sink restarted while
//!   the store is down, and a spool past its bound: every alert delivered exactly once or
//!   counted as dropped.
//!
//! Without Java or Maven these fail under CI=true and skip loudly elsewhere.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use secmon::sensor::alert::Alert;
use secmon::sensor::elasticsearch::EsConfig;
use secmon::sensor::sinks::{SinkConfig, Sinks};
use secmon::sensor::stats::{SensorStats, SinkKind};
use serde_json::{Value, json};

mod common;
use common::servers::{self, OpenSearch, free_port, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

fn tmp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The OpenSearch every test but the outage test shares; `None` when it cannot run here.
fn shared() -> Option<&'static OpenSearch> {
    static OS: OnceLock<Option<OpenSearch>> = OnceLock::new();
    OS.get_or_init(|| {
        let launcher = servers::opensearch_launcher()?;
        Some(OpenSearch::start(
            &launcher,
            &tmp_dir("opensearch-shared"),
            0,
        ))
    })
    .as_ref()
}

fn url(os: &OpenSearch) -> String {
    format!("http://127.0.0.1:{}", os.port)
}

/// `emit es-template` with `args`; (exit code, stdout, stderr).
fn emit(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN)
        .args(["emit", "es-template"])
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Apply the OpenSearch data-stream template named `name` (0 replicas: one node).
fn apply_template(os: &OpenSearch, name: &str) {
    let (code, out, err) = emit(&[
        "--flavor",
        "opensearch",
        "--name",
        name,
        "--replicas",
        "0",
        "--no-policy",
        "--apply",
        &url(os),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

fn results(out: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(out).unwrap();
    v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn apply_creates_then_finds_up_to_date_then_updates() {
    let Some(os) = shared() else { return };
    let u = url(os);
    // The ISM policy comes first and this OpenSearch has no ISM: one clear line, exit 2,
    // and nothing applied.
    let (code, _, err) = emit(&["--flavor", "opensearch", "--name", "apply-t", "--apply", &u]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("_plugins/_ism/policies/apply-t") && err.contains("--no-policy"),
        "{err}"
    );
    let base = [
        "--flavor",
        "opensearch",
        "--name",
        "apply-t",
        "--replicas",
        "0",
        "--no-policy",
        "--apply",
        &u,
        "-o",
        "json",
    ];
    let (code, out, err) = emit(&base);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        results(&out),
        [
            (
                "component-template".into(),
                "apply-t-settings".into(),
                "created".into()
            ),
            ("index-template".into(), "apply-t".into(), "created".into()),
        ]
    );
    let (_, out, _) = emit(&base);
    assert!(results(&out).iter().all(|r| r.2 == "unchanged"), "{out}");
    let mut more_shards = base.to_vec();
    more_shards.extend(["--shards", "2"]);
    let (_, out, _) = emit(&more_shards);
    let r = results(&out);
    assert_eq!(r[0].2, "updated", "{out}");
    assert_eq!(r[1].2, "unchanged", "{out}");
    // The server holds what was sent: the template's mappings and priority.
    let t = servers::json(os.port, "GET", "/_index_template/apply-t", None);
    let tpl = &t["index_templates"][0]["index_template"];
    assert_eq!(tpl["priority"], 501);
    assert_eq!(tpl["index_patterns"], json!(["apply-t*"]));
    assert_eq!(
        tpl["template"]["mappings"]["properties"]["falco"]["properties"]["output_fields"]["type"],
        "flat_object"
    );
    // The table form names each resource and what happened.
    let (code, out, _) = emit(&base[..base.len() - 2]);
    assert_eq!(code, 0);
    assert!(
        out.contains("component-template") && out.contains("unchanged"),
        "{out}"
    );
}

#[test]
fn falcosidekick_mode_maps_the_daily_index() {
    let Some(os) = shared() else { return };
    let (code, out, err) = emit(&[
        "--flavor",
        "opensearch",
        "--index-mode",
        "falcosidekick",
        "--replicas",
        "0",
        "--no-policy",
        "--apply",
        &url(os),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // A document as falcosidekick writes it, into a daily index.
    let doc = json!({
        "@timestamp": "2026-05-01T10:00:00.123456789Z",
        "time": "2026-05-01T10:00:00.123456789Z",
        "uuid": "5f0c4d6e-1111-2222-3333-444455556666",
        "output": "10:00:00: Warning Sensitive file opened",
        "priority": "Warning",
        "rule": "Read sensitive file untrusted",
        "source": "syscall",
        "hostname": "node-1",
        "tags": ["filesystem"],
        "output_fields": {"proc.name": "cat", "fd.name": "/etc/shadow", "evt.time": 1},
    });
    servers::json(
        os.port,
        "POST",
        "/falco-2026.05.01/_doc?refresh=true",
        Some(&doc.to_string()),
    );
    let m = servers::json(os.port, "GET", "/falco-2026.05.01/_mapping", None);
    let props = &m["falco-2026.05.01"]["mappings"]["properties"];
    assert_eq!(props["output_fields"]["type"], "flat_object");
    assert_eq!(props["rule"]["type"], "keyword");
    assert_eq!(props["@timestamp"]["type"], "date_nanos");
    let hits = os.search(
        "falco-*",
        json!({"term": {"rule": "Read sensitive file untrusted"}}),
    );
    assert_eq!(hits.len(), 1);
}

fn container_alert(i: u64, ns: &str) -> Alert {
    let line = json!({
        "hostname": "node-7",
        "output": format!("10:00:00.000000000: Critical Program executed from memory (n={i})"),
        "output_fields": {
            "evt.time": 1_777_629_600_000_000_000u64 + i,
            "proc.name": "payload",
            "proc.exepath": "memfd:payload",
            "proc.cmdline": format!("payload --id {i} --connect 93.184.216.34"),
            "proc.pid": 4000 + i,
            "proc.ppid": 1,
            "proc.pname": "sh",
            "user.name": "root",
            "user.uid": 0,
            "container.id": "0123456789ab",
            "container.image.repository": null,
            "k8s.ns.name": ns,
            "k8s.pod.name": format!("web-{i}"),
            "fd.name": "10.0.0.5:40000->93.184.216.34:443",
        },
        "priority": "Critical",
        "rule": "Fileless execution via memfd",
        "source": "syscall",
        "tags": ["T1620", "container", "mitre_defense_evasion", "process"],
        "time": secmon::sensor::alert::iso8601(1_777_629_600_000_000_000 + i),
    });
    Alert::from_json(&line.to_string()).unwrap()
}

fn es_config(port: u16, stream: &str, spool: PathBuf) -> EsConfig {
    let mut c = EsConfig::new(format!("http://127.0.0.1:{port}"), spool);
    c.data_stream = stream.into();
    c.flush_interval = Duration::from_millis(100);
    c.backoff_base = Duration::from_millis(100);
    c.backoff_max = Duration::from_secs(1);
    c.timeout = Duration::from_secs(20);
    c
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn start_sinks(rt: &tokio::runtime::Runtime, cfg: EsConfig, stats: &Arc<SensorStats>) -> Sinks {
    rt.block_on(async {
        Sinks::start(
            SinkConfig {
                elasticsearch: Some(cfg),
                ..Default::default()
            },
            Arc::clone(stats),
        )
    })
    .unwrap()
}

#[test]
fn sink_documents_query_back_by_their_ecs_fields() {
    let Some(os) = shared() else { return };
    apply_template(os, "secmon-ecs");
    let rt = runtime();
    let stats = Arc::new(SensorStats::default());
    let sinks = start_sinks(
        &rt,
        es_config(os.port, "secmon-ecs", tmp_dir("spool-ecs")),
        &stats,
    );
    for i in 0..5 {
        sinks.send(&container_alert(i, if i < 3 { "shop" } else { "db" }));
    }
    let c = stats.sink(SinkKind::Elasticsearch);
    wait_for("5 delivered", Duration::from_secs(60), || {
        (c.delivered() == 5).then_some(())
    });
    rt.block_on(sinks.shutdown(Duration::from_secs(5)));
    assert_eq!((c.failed(), c.dropped()), (0, 0));
    assert_eq!(os.count("secmon-ecs"), 5);
    let shop = os.search(
        "secmon-ecs",
        json!({"bool": {"filter": [
            {"term": {"event.kind": "alert"}},
            {"term": {"orchestrator.namespace": "shop"}},
            {"term": {"rule.name": "Fileless execution via memfd"}},
            {"term": {"threat.technique.id": "T1620"}},
            {"term": {"container.id": "0123456789ab"}},
            {"term": {"host.name": "node-7"}},
            {"range": {"event.severity": {"lte": 2}}},
            {"range": {"destination.ip": {"gte": "93.184.216.0", "lte": "93.184.216.255"}}},
            {"term": {"destination.port": 443}},
        ]}}),
    );
    assert_eq!(shop.len(), 3, "{shop:#?}");
    let one = os.search(
        "secmon-ecs",
        json!({"bool": {"filter": [
            {"wildcard": {"process.command_line": "*--id 4 *"}},
            {"term": {"orchestrator.resource.name": "web-4"}},
            {"term": {"process.pid": 4004}},
            {"term": {"falco.priority": "Critical"}},
        ]}}),
    );
    assert_eq!(one.len(), 1, "{one:#?}");
    let d = &one[0];
    assert_eq!(d["@timestamp"], "2026-05-01T10:00:00.000000004Z");
    assert_eq!(d["falco"]["output_fields"]["proc.exepath"], "memfd:payload");
    assert_eq!(d["process"]["executable"], "memfd:payload");
    // The raw fields are searchable too (flat_object).
    let raw = os.search(
        "secmon-ecs",
        json!({"term": {"falco.output_fields": "memfd:payload"}}),
    );
    assert_eq!(raw.len(), 5);
}

#[cfg(target_os = "linux")]
#[test]
fn a_real_sensor_ships_a_critical_detection() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(os) = shared() else { return };
    if let Err(e) = secmon::sensor::prereq::check() {
        common::require_or_skip(&format!("sensor prerequisites: {e}"));
        return;
    }
    apply_template(os, "secmon-sensor-e2e");
    let spool = tmp_dir("spool-sensor");
    let mut child = Command::new(BIN)
        .args(["sensor", "--quiet", "--metrics-addr", "127.0.0.1:0"])
        .args(["--elasticsearch", &url(os)])
        .args(["--elasticsearch-data-stream", "secmon-sensor-e2e"])
        .arg("--elasticsearch-spool-dir")
        .arg(&spool)
        .args(["--elasticsearch-flush-ms", "200"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            eprintln!("sensor: {line}");
            if line.contains("ready") {
                let _ = tx.send(line);
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    let guard = servers::Proc {
        child,
        name: "sensor",
    };
    let ready = ready.expect("the sensor became ready");
    let metrics_port: u16 = ready
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no metrics port in {ready}"));
    let status = Command::new(BIN)
        .args(["__action", "memfd-exec"])
        .status()
        .unwrap();
    assert!(status.success());
    let query = json!({"bool": {"filter": [
        {"term": {"event.kind": "alert"}},
        {"term": {"rule.name": "Fileless execution via memfd"}},
    ]}});
    let hits = wait_for(
        "the detection in OpenSearch",
        Duration::from_secs(60),
        || {
            let h = os.search("secmon-sensor-e2e", query.clone());
            (!h.is_empty()).then_some(h)
        },
    );
    let d = &hits[0];
    assert_eq!(d["event"]["severity"], 2, "{d:#}");
    assert_eq!(d["falco"]["priority"], "Critical");
    assert_eq!(d["threat"]["technique"]["id"], json!(["T1620"]));
    assert!(
        d["process"]["executable"]
            .as_str()
            .unwrap_or("")
            .starts_with("memfd:"),
        "{d:#}"
    );
    assert!(!d["host"]["name"].as_str().unwrap_or("").is_empty());
    assert!(d["@timestamp"].as_str().unwrap().ends_with('Z'));
    let (_, metrics) = servers::http(metrics_port, "GET", "/metrics", None).unwrap();
    assert!(
        metrics
            .contains("secmon_sink_deliveries_total{sink=\"elasticsearch\",status=\"delivered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("secmon_sink_spool_limit_bytes{sink=\"elasticsearch\"} 268435456"));
    let mut guard = guard;
    unsafe { libc::kill(guard.child.id() as i32, libc::SIGTERM) };
    let status = guard.child.wait().unwrap();
    assert!(status.success(), "sensor exit {status}");
}

#[test]
fn outages_lose_nothing_within_the_spool_bound_and_count_the_rest() {
    let Some(launcher) = servers::opensearch_launcher() else {
        return;
    };
    let port = free_port();
    let home = tmp_dir("opensearch-outage");
    let rt = runtime();
    let stats = Arc::new(SensorStats::default());
    let spool = tmp_dir("spool-outage");
    let stream = "secmon-outage";
    let c = stats.sink(SinkKind::Elasticsearch);

    // 1. The store is down at start: alerts wait in the spool, requests are retried.
    let sinks = start_sinks(&rt, es_config(port, stream, spool.clone()), &stats);
    for i in 0..30 {
        sinks.send(&container_alert(i, "outage"));
    }
    wait_for("30 spooled and retried", Duration::from_secs(60), || {
        (c.spooled() == 30 && c.retries() >= 2).then_some(())
    });
    assert_eq!(c.delivered(), 0);

    // It comes up: all 30 arrive.
    let os = OpenSearch::start(&launcher, &home, port);
    apply_template(&os, stream);
    wait_for("30 delivered", Duration::from_secs(90), || {
        (c.delivered() == 30).then_some(())
    });
    assert_eq!(os.count(stream), 30);
    assert_eq!(c.spooled(), 0);

    // 2. Down mid-stream; and the sink itself restarts while the store is down.
    os.stop();
    for i in 30..70 {
        sinks.send(&container_alert(i, "outage"));
    }
    let retries = c.retries();
    wait_for("40 spooled while down", Duration::from_secs(60), || {
        (c.spooled() == 40 && c.retries() > retries).then_some(())
    });
    rt.block_on(sinks.shutdown(Duration::from_millis(500)));
    assert_eq!(c.dropped(), 0, "the spool keeps them across a restart");
    let stats2 = Arc::new(SensorStats::default());
    let c2 = stats2.sink(SinkKind::Elasticsearch);
    let sinks = start_sinks(&rt, es_config(port, stream, spool.clone()), &stats2);
    assert_eq!(c2.spooled(), 40, "the restarted sink finds the spool");
    let os = OpenSearch::start(&launcher, &home, port);
    wait_for(
        "the 40 delivered after the restart",
        Duration::from_secs(90),
        || (c2.delivered() == 40).then_some(()),
    );
    assert_eq!(os.count(stream), 70, "each alert stored once");
    rt.block_on(sinks.shutdown(Duration::from_secs(5)));

    // 3. A spool past its bound: what fits is delivered later, the rest counted dropped.
    os.stop();
    let stats3 = Arc::new(SensorStats::default());
    let c3 = stats3.sink(SinkKind::Elasticsearch);
    let mut small = es_config(port, stream, tmp_dir("spool-small"));
    small.spool_max_bytes = 16 * 1024;
    let sinks = start_sinks(&rt, small, &stats3);
    for i in 100..200 {
        sinks.send(&container_alert(i, "outage"));
    }
    wait_for("100 spooled or dropped", Duration::from_secs(60), || {
        (c3.spooled() + c3.dropped() == 100).then_some(())
    });
    let kept = c3.spooled();
    assert!(
        kept > 0 && c3.dropped() > 0,
        "kept {kept}, dropped {}",
        c3.dropped()
    );
    let os = OpenSearch::start(&launcher, &home, port);
    wait_for(
        "the spooled ones delivered",
        Duration::from_secs(90),
        || (c3.delivered() == kept).then_some(()),
    );
    assert_eq!(os.count(stream), 70 + kept);
    assert_eq!(c3.delivered() + c3.dropped(), 100, "every loss counted");
    assert_eq!(c3.failed() + c2.failed() + c.failed(), 0);
    rt.block_on(sinks.shutdown(Duration::from_secs(5)));
    os.stop();
}
