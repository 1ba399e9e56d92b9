//! `kubectl secmon emit …` through the real binary, checked by the real tools: `promtool
//! check rules` and `promtool test rules` (one unit test per alert, input series in the
//! sensor's metric names), `amtool check-config` and `amtool config routes test`. Without
//! promtool/amtool these tests fail under CI=true and print a loud SKIPPED line otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const RUNBOOK: &str = "https://github.com/kubectl-secmon/kubectl-secmon#";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// Whether `tool` runs here; under CI=true its absence is a failure.
fn have(tool: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{tool} is required under CI (apt-get install prometheus prometheus-alertmanager)"
    );
    eprintln!(
        "SKIPPED LOUDLY: {tool} not found; install Debian's prometheus and prometheus-alertmanager"
    );
    false
}

fn tool(dir: &Path, tool: &str, args: &[&str]) -> String {
    let o = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{tool} {args:?} failed:\n{out}");
    out
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn alert_names(rules: &Value) -> Vec<String> {
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect()
}

#[test]
fn rules_file_passes_promtool_check() {
    if !have("promtool") {
        return;
    }
    let d = tmp();
    write(d.path(), "rules.yaml", &ok(&["emit", "prometheus-rules"]));
    let out = tool(d.path(), "promtool", &["check", "rules", "rules.yaml"]);
    assert!(out.contains("SUCCESS: 15 rules found"), "{out}");
    // Non-default thresholds still give valid rules.
    let custom = ok(&[
        "emit",
        "prometheus-rules",
        "--spike-threshold",
        "50",
        "--drop-ratio",
        "0.05",
        "--memory-limit",
        "1Gi",
        "--cpu-limit",
        "2",
        "--window",
        "10m",
    ]);
    assert!(custom.contains("> 50"), "{custom}");
    assert!(custom.contains("> 966367641.6"), "{custom}");
    assert!(custom.contains("[10m]"), "{custom}");
    write(d.path(), "custom.yaml", &custom);
    tool(d.path(), "promtool", &["check", "rules", "custom.yaml"]);
}

#[test]
fn prometheusrule_spec_is_the_rules_file_and_passes_promtool() {
    let cr = json_of(&[
        "emit",
        "prometheus-rules",
        "--format",
        "prometheusrule",
        "--label",
        "release=kube-prometheus-stack",
        "--label",
        "team=sec",
        "-n",
        "monitoring",
        "-o",
        "json",
    ]);
    assert_eq!(cr["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(cr["kind"], "PrometheusRule");
    assert_eq!(cr["metadata"]["namespace"], "monitoring");
    assert_eq!(
        cr["metadata"]["labels"],
        json!({"release": "kube-prometheus-stack", "team": "sec"})
    );
    let plain = json_of(&["emit", "prometheus-rules", "-o", "json"]);
    assert_eq!(cr["spec"], plain);
    // The default (YAML) output is the same document.
    let yaml = ok(&["emit", "prometheus-rules", "--format", "prometheusrule"]);
    assert!(yaml.contains("kind: PrometheusRule"));
    assert!(yaml.contains("namespace: secmon"));
    if !have("promtool") {
        return;
    }
    let d = tmp();
    write(
        d.path(),
        "spec.json",
        &serde_json::to_string_pretty(&cr["spec"]).unwrap(),
    );
    tool(d.path(), "promtool", &["check", "rules", "spec.json"]);
}

fn alert(name: &str, labels: Value, summary: &str, description: &str) -> Value {
    json!({
        "exp_labels": labels,
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": format!("{RUNBOOK}{}", name.to_ascii_lowercase()),
        },
    })
}

/// One promtool unit test: input series, then (eval_time, alertname, expected alerts).
fn case(name: &str, series: &[(&str, &str)], checks: Vec<(&str, &str, Vec<Value>)>) -> Value {
    json!({
        "name": name,
        "interval": "1m",
        "input_series": series.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
        "alert_rule_test": checks.into_iter().map(|(t, a, exp)| json!({
            "eval_time": t, "alertname": a, "exp_alerts": exp,
        })).collect::<Vec<_>>(),
    })
}

#[test]
fn every_alert_has_a_passing_promtool_unit_test() {
    let rules = json_of(&["emit", "prometheus-rules", "-o", "json"]);
    let job = r#"job="secmon-sensor""#;
    let n1 = r#"instance="node1:9376""#;
    let n2 = r#"instance="node2:9376""#;
    let crit = r#"secmon_alerts_total{rule="Terminal shell in container",priority="critical",namespace="shop"}"#;
    let warn = r#"secmon_alerts_total{rule="Read sensitive file untrusted",priority="warning",namespace="db"}"#;
    let tests = vec![
        case(
            "critical fires at once",
            &[
                (crit, "0 0 1 1 1 1 1 1 1 1 1 1"),
                (warn, "0 0 1 1 1 1 1 1 1 1 1 1"),
            ],
            vec![
                ("1m", "SecmonCriticalDetection", vec![]),
                (
                    "2m",
                    "SecmonCriticalDetection",
                    vec![alert(
                        "SecmonCriticalDetection",
                        json!({"severity": "critical", "rule": "Terminal shell in container", "priority": "critical", "namespace": "shop"}),
                        "Critical detection: Terminal shell in container",
                        "The secmon sensor raised critical alerts for rule \"Terminal shell in container\" in namespace \"shop\" within 5m.",
                    )],
                ),
                // Resolves once the window has no new detection.
                ("10m", "SecmonCriticalDetection", vec![]),
            ],
        ),
        // The sensor's counter for a (rule, priority, namespace) appears at 1 with its first
        // alert: increase() sees nothing, the first-seen arm fires once the sensor has been
        // scraped for the window.
        case(
            "a counter born at 1 fires",
            &[
                (
                    r#"secmon_sensor_info{instance="node1:9376",job="secmon-sensor",node="node1",version="0.1.0"}"#,
                    "1x20",
                ),
                (
                    r#"secmon_alerts_total{instance="node1:9376",job="secmon-sensor",rule="Fileless execution via memfd",priority="critical",namespace="shop"}"#,
                    "_x9 1x10",
                ),
            ],
            vec![
                (
                    "10m",
                    "SecmonCriticalDetection",
                    vec![alert(
                        "SecmonCriticalDetection",
                        json!({"severity": "critical", "rule": "Fileless execution via memfd", "priority": "critical", "namespace": "shop"}),
                        "Critical detection: Fileless execution via memfd",
                        "The secmon sensor raised critical alerts for rule \"Fileless execution via memfd\" in namespace \"shop\" within 5m.",
                    )],
                ),
                ("16m", "SecmonCriticalDetection", vec![]),
            ],
        ),
        // A Prometheus that has just started takes no old count for a new detection.
        case(
            "old counts at Prometheus start are not new",
            &[
                (
                    r#"secmon_sensor_info{instance="node1:9376",job="secmon-sensor",node="node1",version="0.1.0"}"#,
                    "1x20",
                ),
                (
                    r#"secmon_alerts_total{instance="node1:9376",job="secmon-sensor",rule="Fileless execution via memfd",priority="critical",namespace="shop"}"#,
                    "3x20",
                ),
            ],
            vec![
                ("1m", "SecmonCriticalDetection", vec![]),
                ("10m", "SecmonCriticalDetection", vec![]),
            ],
        ),
        case(
            "warnings by rule over the window",
            &[
                (crit, "0 0 1 1 1 1 1 1 1 1 1 1"),
                (warn, "0 0 2 2 2 2 2 2 2 2 2 2"),
            ],
            vec![
                (
                    "3m",
                    "SecmonWarningDetection",
                    vec![alert(
                        "SecmonWarningDetection",
                        json!({"severity": "warning", "rule": "Read sensitive file untrusted", "priority": "warning", "namespace": "db"}),
                        "Detection: Read sensitive file untrusted",
                        "The secmon sensor raised warning alerts for rule \"Read sensitive file untrusted\" in namespace \"db\" within 5m.",
                    )],
                ),
                ("10m", "SecmonWarningDetection", vec![]),
            ],
        ),
        case(
            "spike per namespace",
            &[
                (
                    r#"secmon_alerts_total{rule="Drift",priority="notice",namespace="burst"}"#,
                    "0+5x20",
                ),
                (
                    r#"secmon_alerts_total{rule="Drift",priority="notice",namespace="calm"}"#,
                    "0+1x20",
                ),
            ],
            vec![(
                "15m",
                "SecmonAlertSpike",
                vec![alert(
                    "SecmonAlertSpike",
                    json!({"severity": "warning", "namespace": "burst"}),
                    "Spike of secmon alerts in namespace burst",
                    "More than 20 sensor alerts in namespace \"burst\" within 10m.",
                )],
            )],
        ),
        case(
            "event drops above the ratio",
            &[
                (
                    &format!(r#"secmon_events_total{{{job},{n1},category="process"}}"#),
                    "0+1000x30",
                ),
                (
                    &format!(r#"secmon_events_dropped_total{{{job},{n1},category="process"}}"#),
                    "0+100x30",
                ),
                (
                    &format!(r#"secmon_events_total{{{job},{n2},category="process"}}"#),
                    "0+1000x30",
                ),
                (
                    &format!(r#"secmon_events_dropped_total{{{job},{n2},category="process"}}"#),
                    "0x30",
                ),
            ],
            vec![
                ("4m", "SecmonEventsDropped", vec![]),
                (
                    "12m",
                    "SecmonEventsDropped",
                    vec![alert(
                        "SecmonEventsDropped",
                        json!({"severity": "warning", "instance": "node1:9376", "category": "process"}),
                        "The sensor on node1:9376 drops process events",
                        "More than 1% of process events were dropped before rule evaluation for 5m: detections may be missed.",
                    )],
                ),
            ],
        ),
        case(
            "daemonset desired vs ready",
            &[
                (
                    r#"kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics",namespace="secmon",daemonset="secmon-sensor"}"#,
                    "3x30",
                ),
                (
                    r#"kube_daemonset_status_number_ready{job="kube-state-metrics",namespace="secmon",daemonset="secmon-sensor"}"#,
                    "3 3 2x28",
                ),
            ],
            vec![
                ("8m", "SecmonSensorNotReady", vec![]),
                (
                    "15m",
                    "SecmonSensorNotReady",
                    vec![alert(
                        "SecmonSensorNotReady",
                        json!({"severity": "critical", "job": "kube-state-metrics", "namespace": "secmon", "daemonset": "secmon-sensor"}),
                        "Nodes without a ready secmon sensor",
                        "1 node(s) that should run the secmon sensor have had no ready sensor pod for 10m: nothing is detected there.",
                    )],
                ),
            ],
        ),
        case(
            "sensor not scraped",
            &[
                (&format!("up{{{job},{n1}}}"), "1 1 0x20"),
                (&format!("up{{{job},{n2}}}"), "1x22"),
            ],
            vec![
                ("5m", "SecmonSensorDown", vec![]),
                (
                    "10m",
                    "SecmonSensorDown",
                    vec![alert(
                        "SecmonSensorDown",
                        json!({"severity": "critical", "job": "secmon-sensor", "instance": "node1:9376"}),
                        "The secmon sensor on node1:9376 cannot be scraped",
                        "Prometheus has failed to scrape the sensor at node1:9376 for 5m.",
                    )],
                ),
            ],
        ),
        case(
            "no sensor target at all",
            &[(r#"up{job="node-exporter",instance="node1:9100"}"#, "1x30")],
            vec![
                ("10m", "SecmonSensorAbsent", vec![]),
                (
                    "20m",
                    "SecmonSensorAbsent",
                    vec![alert(
                        "SecmonSensorAbsent",
                        json!({"severity": "critical", "job": "secmon-sensor"}),
                        "No secmon sensor is scraped",
                        "Prometheus has had no target for job \"secmon-sensor\" for 15m: check the ServiceMonitor and the sensor Service.",
                    )],
                ),
            ],
        ),
        case(
            "rules not loaded",
            &[
                (&format!("secmon_rules_loaded{{{job},{n1}}}"), "0x10"),
                (&format!("secmon_rules_loaded{{{job},{n2}}}"), "33x10"),
            ],
            vec![(
                "6m",
                "SecmonRulesNotLoaded",
                vec![alert(
                    "SecmonRulesNotLoaded",
                    json!({"severity": "critical", "job": "secmon-sensor", "instance": "node1:9376"}),
                    "The secmon sensor on node1:9376 has no rules loaded",
                    "The sensor at node1:9376 has run for 5m with no detection rules loaded: it sees events but detects nothing.",
                )],
            )],
        ),
        case(
            "a sink loses alerts",
            &[
                (
                    &format!(
                        "secmon_sink_deliveries_total{{{job},{n1},sink=\"elasticsearch\",status=\"dropped\"}}"
                    ),
                    "0 0 0 5x20",
                ),
                (
                    &format!(
                        "secmon_sink_deliveries_total{{{job},{n1},sink=\"elasticsearch\",status=\"delivered\"}}"
                    ),
                    "0+10x22",
                ),
            ],
            vec![
                ("2m", "SecmonSinkLosingAlerts", vec![]),
                (
                    "4m",
                    "SecmonSinkLosingAlerts",
                    vec![alert(
                        "SecmonSinkLosingAlerts",
                        json!({"severity": "warning", "instance": "node1:9376", "sink": "elasticsearch"}),
                        "The secmon sensor on node1:9376 loses alerts on its elasticsearch sink",
                        "The sensor at node1:9376 could not deliver 5 alert(s) to its elasticsearch sink within 10m (failed or dropped): they are missing there.",
                    )],
                ),
                // Resolves once the window holds no loss.
                ("20m", "SecmonSinkLosingAlerts", vec![]),
            ],
        ),
        case(
            "a spool filling up",
            &[
                (
                    &format!("secmon_sink_spool_bytes{{{job},{n1},sink=\"elasticsearch\"}}"),
                    "0 100 200 900x20",
                ),
                (
                    &format!("secmon_sink_spool_limit_bytes{{{job},{n1},sink=\"elasticsearch\"}}"),
                    "1000x23",
                ),
            ],
            vec![
                ("5m", "SecmonSinkSpoolFilling", vec![]),
                (
                    "9m",
                    "SecmonSinkSpoolFilling",
                    vec![alert(
                        "SecmonSinkSpoolFilling",
                        json!({"severity": "warning", "job": "secmon-sensor", "instance": "node1:9376", "sink": "elasticsearch"}),
                        "The elasticsearch spool of the sensor on node1:9376 is filling up",
                        "The elasticsearch spool of the sensor at node1:9376 has been over 80% full for 5m: the store is not taking alerts, and new ones are dropped once it is full.",
                    )],
                ),
            ],
        ),
        case(
            "cpu near the limit",
            &[
                (
                    &format!("process_cpu_seconds_total{{{job},{n1}}}"),
                    "0+30x40",
                ),
                (
                    &format!("process_cpu_seconds_total{{{job},{n2}}}"),
                    "0+6x40",
                ),
            ],
            vec![
                ("10m", "SecmonSensorCpuHigh", vec![]),
                (
                    "25m",
                    "SecmonSensorCpuHigh",
                    vec![alert(
                        "SecmonSensorCpuHigh",
                        json!({"severity": "warning", "job": "secmon-sensor", "instance": "node1:9376"}),
                        "The secmon sensor on node1:9376 is near its CPU limit",
                        "The sensor at node1:9376 has used more than 0.45 cores (90% of its 0.5 core limit) for 15m; it will be throttled and drop events.",
                    )],
                ),
            ],
        ),
        case(
            "memory near the limit",
            &[
                (
                    &format!("process_resident_memory_bytes{{{job},{n1}}}"),
                    "500000000x30",
                ),
                (
                    &format!("process_resident_memory_bytes{{{job},{n2}}}"),
                    "100000000x30",
                ),
            ],
            vec![(
                "20m",
                "SecmonSensorMemoryHigh",
                vec![alert(
                    "SecmonSensorMemoryHigh",
                    json!({"severity": "warning", "job": "secmon-sensor", "instance": "node1:9376"}),
                    "The secmon sensor on node1:9376 is near its memory limit",
                    "The sensor at node1:9376 has used more than 90% of its 536870912 byte memory limit for 15m; it risks being OOM-killed.",
                )],
            )],
        ),
    ];
    // Every alert the rules define is tested here, and nothing else.
    let mut tested: Vec<String> = tests
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .map(|c| c["alertname"].as_str().unwrap().to_string())
        .collect();
    tested.sort();
    tested.dedup();
    let mut defined = alert_names(&rules);
    defined.sort();
    assert_eq!(tested, defined, "every emitted alert needs a unit test");

    let mut tests = tests;
    tests.push(json!({
        "name": "recording rules",
        "interval": "1m",
        "input_series": [{"series": crit, "values": "0+60x20"}],
        "promql_expr_test": [{
            "expr": "priority:secmon_alerts:rate5m",
            "eval_time": "10m",
            "exp_samples": [{"labels": "priority:secmon_alerts:rate5m{priority=\"critical\"}", "value": 1}],
        }],
    }));
    if !have("promtool") {
        return;
    }
    let d = tmp();
    write(d.path(), "rules.yaml", &ok(&["emit", "prometheus-rules"]));
    let file = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": tests,
    });
    write(
        d.path(),
        "test.json",
        &serde_json::to_string_pretty(&file).unwrap(),
    );
    let out = tool(d.path(), "promtool", &["test", "rules", "test.json"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alertmanager_config_passes_amtool_and_routes_by_severity() {
    let cfg = ok(&[
        "emit",
        "alertmanager-config",
        "--receiver",
        "critical=pagerduty",
        "--receiver",
        "warning=slack",
    ]);
    let v = json_of(&[
        "emit",
        "alertmanager-config",
        "--receiver",
        "critical=pagerduty",
        "--receiver",
        "warning=slack",
        "-o",
        "json",
    ]);
    assert_eq!(
        v["route"]["group_by"],
        json!(["alertname", "rule", "namespace"])
    );
    assert_eq!(v["inhibit_rules"][0]["equal"], json!(["rule", "namespace"]));
    if !have("amtool") {
        return;
    }
    let d = tmp();
    write(d.path(), "am.yaml", &cfg);
    let out = tool(d.path(), "amtool", &["check-config", "am.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    for (labels, receiver) in [
        (
            &["severity=critical", "rule=Terminal shell in container"][..],
            "pagerduty",
        ),
        (&["severity=warning", "namespace=db"][..], "slack"),
        (&["severity=info"][..], "slack"),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file=am.yaml"];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend_from_slice(labels);
        tool(d.path(), "amtool", &args);
    }
    // A wrong expectation fails, so the checks above mean something.
    let o = Command::new("amtool")
        .args([
            "config",
            "routes",
            "test",
            "--config.file=am.yaml",
            "--verify.receivers=slack",
            "severity=critical",
        ])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    // The defaults (no --receiver) are valid too.
    write(
        d.path(),
        "default.yaml",
        &ok(&["emit", "alertmanager-config"]),
    );
    tool(d.path(), "amtool", &["check-config", "default.yaml"]);
}

#[test]
fn servicemonitor_scrapes_the_sensor_service() {
    let v = json_of(&[
        "emit",
        "servicemonitor",
        "--label",
        "release=kube-prometheus-stack",
        "-o",
        "json",
    ]);
    assert_eq!(v["kind"], "ServiceMonitor");
    assert_eq!(v["metadata"]["namespace"], "secmon");
    assert_eq!(v["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(
        v["spec"]["namespaceSelector"]["matchNames"],
        json!(["secmon"])
    );
    let ep = &v["spec"]["endpoints"][0];
    assert_eq!(ep["port"], "metrics");
    assert_eq!(ep["honorLabels"], true);
}

#[test]
fn audit_policy_orders_its_rules_and_names_the_flags() {
    let text = ok(&["emit", "audit-policy"]);
    for flag in [
        "--audit-policy-file=",
        "--audit-log-path=",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=10",
        "--audit-log-maxsize=100",
    ] {
        assert!(text.contains(&format!("#   {flag}")), "{flag}");
    }
    let yaml: Value = serde_saphyr::from_str(&text).unwrap();
    let p = json_of(&["emit", "audit-policy", "-o", "json"]);
    assert_eq!(yaml, p);
    assert_eq!(p["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(p["kind"], "Policy");
    let rules = p["rules"].as_array().unwrap();
    let levels = ["None", "Metadata", "Request", "RequestResponse"];
    for r in rules {
        assert!(levels.contains(&r["level"].as_str().unwrap()), "{r}");
    }
    // First match wins: the rule covering each resource decides its level.
    let first = |group: &str, resource: &str, verb: &str| -> String {
        rules
            .iter()
            .find(|r| {
                let verb_ok = r["verbs"]
                    .as_array()
                    .is_none_or(|v| v.iter().any(|x| x == verb));
                let res_ok = match r["resources"].as_array() {
                    None => r.get("nonResourceURLs").is_none(),
                    Some(rs) => rs.iter().any(|g| {
                        g["group"] == group
                            && g["resources"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .any(|x| x == resource)
                    }),
                };
                verb_ok && res_ok && r.get("users").is_none() && r.get("userGroups").is_none()
            })
            .map(|r| r["level"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(first("", "secrets", "get"), "Metadata");
    assert_eq!(first("", "secrets", "list"), "Metadata");
    assert_eq!(first("", "configmaps", "get"), "Metadata");
    assert_eq!(first("", "secrets", "create"), "Metadata");
    assert_eq!(
        first("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
        "RequestResponse"
    );
    assert_eq!(
        first("rbac.authorization.k8s.io", "roles", "patch"),
        "RequestResponse"
    );
    assert_eq!(first("", "pods/exec", "create"), "Request");
    assert_eq!(first("", "pods/attach", "create"), "Request");
    assert_eq!(first("", "pods/portforward", "create"), "Request");
    assert_eq!(first("", "pods", "create"), "Request");
    assert_eq!(first("", "serviceaccounts/token", "create"), "Request");
    assert_eq!(first("", "events", "create"), "None");
    assert_eq!(first("apps", "deployments", "get"), "Metadata");
    let health = &rules[0];
    assert_eq!(health["level"], "None");
    assert!(
        health["nonResourceURLs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "/healthz*")
    );
}

/// Grafana's dashboard JSON model, as far as import needs it.
fn check_grafana_dashboard(d: &Value) -> Result<(), String> {
    let o = d.as_object().ok_or("dashboard is not an object")?;
    for k in [
        "uid",
        "title",
        "schemaVersion",
        "panels",
        "time",
        "templating",
        "annotations",
        "version",
    ] {
        if !o.contains_key(k) {
            return Err(format!("missing key {k}"));
        }
    }
    if !d["title"].is_string() || !d["uid"].is_string() {
        return Err("title and uid must be strings".into());
    }
    if d["uid"].as_str().unwrap().len() > 40 {
        return Err("uid longer than 40".into());
    }
    if d["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
        return Err("schemaVersion must be a number >= 36".into());
    }
    if !d["time"]["from"].is_string() || !d["time"]["to"].is_string() {
        return Err("time needs from and to".into());
    }
    if !d["templating"]["list"].is_array() || !d["annotations"]["list"].is_array() {
        return Err("templating.list and annotations.list must be arrays".into());
    }
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let panels = d["panels"].as_array().ok_or("panels is not an array")?;
    if panels.is_empty() {
        return Err("no panels".into());
    }
    let mut ids = std::collections::HashSet::new();
    let mut cells = std::collections::HashSet::new();
    for p in panels {
        let title = p["title"].as_str().ok_or("panel without a title")?;
        let id = p["id"]
            .as_u64()
            .ok_or(format!("{title}: id must be a number"))?;
        if !ids.insert(id) {
            return Err(format!("{title}: duplicate id {id}"));
        }
        let kind = p["type"].as_str().unwrap_or("");
        if ![
            "timeseries",
            "stat",
            "table",
            "bargauge",
            "gauge",
            "piechart",
            "text",
        ]
        .contains(&kind)
        {
            return Err(format!("{title}: unknown panel type {kind:?}"));
        }
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().ok_or(format!("{title}: gridPos.x"))?,
            g["y"].as_u64().ok_or(format!("{title}: gridPos.y"))?,
            g["w"].as_u64().ok_or(format!("{title}: gridPos.w"))?,
            g["h"].as_u64().ok_or(format!("{title}: gridPos.h"))?,
        );
        if w == 0 || h == 0 || x + w > 24 {
            return Err(format!("{title}: gridPos outside the 24-column grid"));
        }
        for cx in x..x + w {
            for cy in y..y + h {
                if !cells.insert((cx, cy)) {
                    return Err(format!("{title}: overlaps another panel"));
                }
            }
        }
        let targets = p["targets"]
            .as_array()
            .ok_or(format!("{title}: no targets"))?;
        if targets.is_empty() {
            return Err(format!("{title}: no targets"));
        }
        let mut refs = std::collections::HashSet::new();
        for t in targets {
            let r = t["refId"]
                .as_str()
                .ok_or(format!("{title}: target without refId"))?;
            if !refs.insert(r) {
                return Err(format!("{title}: duplicate refId {r}"));
            }
            let expr = t["expr"].as_str().unwrap_or("");
            if expr.is_empty() {
                return Err(format!("{title}: target {r} without expr"));
            }
            if expr.matches('(').count() != expr.matches(')').count() {
                return Err(format!("{title}: unbalanced parentheses in {expr}"));
            }
        }
        for ds in std::iter::once(&p["datasource"]).chain(targets.iter().map(|t| &t["datasource"]))
        {
            let uid = ds["uid"].as_str().unwrap_or("");
            if ds["type"] != "prometheus"
                || !(uid.starts_with("${") && vars.contains(&&uid[2..uid.len() - 1]))
            {
                return Err(format!(
                    "{title}: datasource must be the dashboard's Prometheus variable"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn grafana_dashboard_has_grafanas_shape_and_queries_the_sensor_metrics() {
    let d = json_of(&["emit", "grafana-dashboard"]);
    check_grafana_dashboard(&d).unwrap();
    let exprs: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    for metric in [
        "secmon_alerts_total",
        "secmon_events_dropped_total",
        "secmon_rules_loaded",
        "up{",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "kube_daemonset_status_number_ready",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(metric)),
            "{metric} not charted"
        );
    }
    // The checker catches a broken dashboard.
    let mut bad = d.clone();
    bad["panels"][0]["gridPos"]["w"] = json!(30);
    assert!(check_grafana_dashboard(&bad).is_err());
    let mut bad = d.clone();
    bad["panels"][1]["targets"][0]["expr"] = json!("");
    assert!(check_grafana_dashboard(&bad).is_err());
    let mut bad = d;
    bad.as_object_mut().unwrap().remove("schemaVersion");
    assert!(check_grafana_dashboard(&bad).is_err());
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        &["emit", "prometheus-rules", "--drop-ratio", "2"][..],
        &["emit", "prometheus-rules", "--memory-limit", "lots"],
        &["emit", "prometheus-rules", "--window", "5"],
        &["emit", "prometheus-rules", "--label", "novalue"],
        &["emit", "prometheus-rules", "--label", "a=b"],
        &["emit", "alertmanager-config", "--receiver", "info=x"],
        &["emit", "alertmanager-config", "--receiver", "critical="],
        &["emit", "audit-policy", "-o", "sarif"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.contains("error") || first.contains("Error"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn output_file_is_honoured() {
    let d = tmp();
    let p = d.path().join("dash.json");
    let o = run(&[
        "emit",
        "grafana-dashboard",
        "--output-file",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v["uid"], "secmon-sensor");
}

#[test]
fn threshold_flags_change_what_fires() {
    if !have("promtool") {
        return;
    }
    let d = tmp();
    write(
        d.path(),
        "rules.yaml",
        &ok(&[
            "emit",
            "prometheus-rules",
            "--spike-threshold",
            "60",
            "--drop-ratio",
            "0.2",
            "--memory-limit",
            "1Gi",
        ]),
    );
    let job = r#"job="secmon-sensor",instance="node1:9376""#;
    // The inputs that fire with the defaults (see the unit tests above) stay quiet here.
    let tests = vec![
        case(
            "50 alerts in 10m is no spike above 60",
            &[(
                r#"secmon_alerts_total{rule="Drift",priority="notice",namespace="burst"}"#,
                "0+5x20",
            )],
            vec![("15m", "SecmonAlertSpike", vec![])],
        ),
        case(
            "9% drops is under 20%",
            &[
                (
                    &format!(r#"secmon_events_total{{{job},category="process"}}"#),
                    "0+1000x30",
                ),
                (
                    &format!(r#"secmon_events_dropped_total{{{job},category="process"}}"#),
                    "0+100x30",
                ),
            ],
            vec![("12m", "SecmonEventsDropped", vec![])],
        ),
        case(
            "500 MB is under 90% of 1Gi",
            &[(
                &format!("process_resident_memory_bytes{{{job}}}"),
                "500000000x30",
            )],
            vec![("20m", "SecmonSensorMemoryHigh", vec![])],
        ),
    ];
    let file = json!({ "rule_files": ["rules.yaml"], "tests": tests });
    write(
        d.path(),
        "test.json",
        &serde_json::to_string_pretty(&file).unwrap(),
    );
    tool(d.path(), "promtool", &["test", "rules", "test.json"]);
}
