//! Prometheus alerting and recording rules over the sensor's metrics, as a plain rules file
//! (`groups:`) or a Prometheus Operator `PrometheusRule`, and the `ServiceMonitor` that
//! scrapes the sensor.
//!
//! Each alert carries a `severity` label (`critical` or `warning`, which the emitted
//! Alertmanager route keys on), `summary` and `description` annotations, and a `runbook_url`
//! pointing at the README section of the same name. No `query_offset` (Prometheus 2.53+):
//! Debian's promtool 2.42 rejects it.

use serde_json::{Map, Value, json};

use crate::sensor::metrics as m;

/// Thresholds and names the rules are generated with; `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleOptions {
    /// Window over which detections are counted (`increase(...[window])`).
    pub window: String,
    /// Alerts per namespace within `spike_window` above which a spike fires.
    pub spike_threshold: f64,
    /// Window of the spike alert.
    pub spike_window: String,
    /// Fraction of events dropped (0–1) above which the drop alert fires.
    pub drop_ratio: f64,
    /// The sensor container's CPU limit, in cores.
    pub cpu_limit: f64,
    /// The sensor container's memory limit, in bytes.
    pub memory_limit: f64,
    /// Fraction of a limit (0–1) at which "near its limit" fires.
    pub limit_ratio: f64,
    /// The scrape job of the sensor (`up{job=...}`).
    pub job: String,
    /// Namespace of the sensor DaemonSet (kube-state-metrics' `namespace` label).
    pub sensor_namespace: String,
    /// Prefix of every `runbook_url`; the alert's anchor is appended.
    pub runbook_base: String,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            window: "5m".into(),
            spike_threshold: 20.0,
            spike_window: "10m".into(),
            drop_ratio: 0.01,
            cpu_limit: 0.5,
            memory_limit: 512.0 * 1024.0 * 1024.0,
            limit_ratio: 0.9,
            job: m::SENSOR_NAME.into(),
            sensor_namespace: m::SENSOR_NAMESPACE.into(),
            runbook_base: super::DEFAULT_RUNBOOK_BASE.into(),
        }
    }
}

/// Every alert the rules define, in order: the README has one runbook section per name.
pub const ALERTS: [&str; 12] = [
    "SecmonCriticalDetection",
    "SecmonWarningDetection",
    "SecmonAlertSpike",
    "SecmonEventsDropped",
    "SecmonSensorNotReady",
    "SecmonSensorDown",
    "SecmonSensorAbsent",
    "SecmonRulesNotLoaded",
    "SecmonSensorCpuHigh",
    "SecmonSensorMemoryHigh",
    "SecmonSinkLosingAlerts",
    "SecmonSinkSpoolFilling",
];

/// A number as PromQL and people read it: no float noise (`0.45`, not `0.45000000000000007`).
pub fn num(x: f64) -> String {
    let r = (x * 1e6).round() / 1e6;
    format!("{r}")
}

fn alert(
    o: &RuleOptions,
    name: &str,
    expr: String,
    for_: &str,
    severity: &str,
    summary: &str,
    description: String,
) -> Value {
    let mut rule = Map::new();
    rule.insert("alert".into(), json!(name));
    rule.insert("expr".into(), json!(expr));
    if for_ != "0s" {
        rule.insert("for".into(), json!(for_));
    }
    rule.insert("labels".into(), json!({ "severity": severity }));
    rule.insert(
        "annotations".into(),
        json!({
            "summary": summary,
            "description": description,
            "runbook_url": format!("{}{}", o.runbook_base, super::runbook_anchor(name)),
        }),
    );
    Value::Object(rule)
}

/// The rules file: a `groups:` document with the alerting and the recording group.
pub fn rules_file(o: &RuleOptions) -> Value {
    json!({ "groups": [alert_group(o), record_group(o)] })
}

/// Alerts counted over `w` for the series `sel`: a series first seen within `w` counts with
/// its whole value, the others with their `increase`. `increase` alone never sees the first
/// alert of a (rule, priority, namespace): the sensor's counter appears at 1, not 0. "First
/// seen" needs the sensor to have been scraped `w` ago already (`secmon_sensor_info offset
/// w`), so a Prometheus that has just started does not take every old count for new.
fn counted(sel: &str, w: &str) -> String {
    format!(
        "(({sel} unless {sel} offset {w}) and on (instance, job) ({info} offset {w})) or increase({sel}[{w}])",
        info = m::SENSOR_INFO
    )
}

fn alert_group(o: &RuleOptions) -> Value {
    let alerts = m::ALERTS_TOTAL;
    let w = &o.window;
    let job = format!("job=\"{}\"", o.job);
    let ds = format!(
        "namespace=\"{}\",daemonset=\"{}\"",
        o.sensor_namespace,
        m::SENSOR_NAME
    );
    let by = format!(
        "{}, {}, {}",
        m::LABEL_RULE,
        m::LABEL_PRIORITY,
        m::LABEL_NAMESPACE
    );
    let drops = format!(
        "sum by (instance, {c}) (rate({d}[5m]))",
        c = m::LABEL_CATEGORY,
        d = m::EVENTS_DROPPED_TOTAL
    );
    let events = format!(
        "sum by (instance, {c}) (rate({e}[5m]))",
        c = m::LABEL_CATEGORY,
        e = m::EVENTS_TOTAL
    );
    let cpu = num(o.cpu_limit * o.limit_ratio);
    let mem = num(o.memory_limit * o.limit_ratio);
    let pct = |r: f64| format!("{}%", num(r * 100.0));
    let rules = vec![
        alert(
            o,
            "SecmonCriticalDetection",
            format!("sum by ({by}) ({}) > 0", counted(&format!("{alerts}{{priority=~\"emergency|alert|critical\"}}"), w)),
            "0s",
            "critical",
            "Critical detection: {{ $labels.rule }}",
            format!("The secmon sensor raised {{{{ $labels.priority }}}} alerts for rule \"{{{{ $labels.rule }}}}\" in namespace \"{{{{ $labels.namespace }}}}\" within {w}."),
        ),
        alert(
            o,
            "SecmonWarningDetection",
            format!("sum by ({by}) ({}) > 0", counted(&format!("{alerts}{{priority=~\"error|warning\"}}"), w)),
            "0s",
            "warning",
            "Detection: {{ $labels.rule }}",
            format!("The secmon sensor raised {{{{ $labels.priority }}}} alerts for rule \"{{{{ $labels.rule }}}}\" in namespace \"{{{{ $labels.namespace }}}}\" within {w}."),
        ),
        alert(
            o,
            "SecmonAlertSpike",
            format!("sum by ({ns}) ({c}) > {t}", ns = m::LABEL_NAMESPACE, c = counted(alerts, &o.spike_window), t = num(o.spike_threshold)),
            "0s",
            "warning",
            "Spike of secmon alerts in namespace {{ $labels.namespace }}",
            format!("More than {t} sensor alerts in namespace \"{{{{ $labels.namespace }}}}\" within {sw}.", t = num(o.spike_threshold), sw = o.spike_window),
        ),
        alert(
            o,
            "SecmonEventsDropped",
            format!("{drops} / ({events} + {drops}) > {}", num(o.drop_ratio)),
            "5m",
            "warning",
            "The sensor on {{ $labels.instance }} drops {{ $labels.category }} events",
            format!("More than {} of {{{{ $labels.category }}}} events were dropped before rule evaluation for 5m: detections may be missed.", pct(o.drop_ratio)),
        ),
        alert(
            o,
            "SecmonSensorNotReady",
            format!("{d}{{{ds}}} - {r}{{{ds}}} > 0", d = m::KUBE_DAEMONSET_DESIRED, r = m::KUBE_DAEMONSET_READY),
            "10m",
            "critical",
            "Nodes without a ready secmon sensor",
            "{{ $value }} node(s) that should run the secmon sensor have had no ready sensor pod for 10m: nothing is detected there.".into(),
        ),
        alert(
            o,
            "SecmonSensorDown",
            format!("up{{{job}}} == 0"),
            "5m",
            "critical",
            "The secmon sensor on {{ $labels.instance }} cannot be scraped",
            "Prometheus has failed to scrape the sensor at {{ $labels.instance }} for 5m.".into(),
        ),
        alert(
            o,
            "SecmonSensorAbsent",
            format!("absent(up{{{job}}})"),
            "15m",
            "critical",
            "No secmon sensor is scraped",
            format!("Prometheus has had no target for job \"{}\" for 15m: check the ServiceMonitor and the sensor Service.", o.job),
        ),
        alert(
            o,
            "SecmonRulesNotLoaded",
            format!("{}{{{job}}} == 0", m::RULES_LOADED),
            "5m",
            "critical",
            "The secmon sensor on {{ $labels.instance }} has no rules loaded",
            "The sensor at {{ $labels.instance }} has run for 5m with no detection rules loaded: it sees events but detects nothing.".into(),
        ),
        alert(
            o,
            "SecmonSensorCpuHigh",
            format!("rate({}{{{job}}}[5m]) > {cpu}", m::PROCESS_CPU_SECONDS_TOTAL),
            "15m",
            "warning",
            "The secmon sensor on {{ $labels.instance }} is near its CPU limit",
            format!("The sensor at {{{{ $labels.instance }}}} has used more than {cpu} cores ({} of its {} core limit) for 15m; it will be throttled and drop events.", pct(o.limit_ratio), num(o.cpu_limit)),
        ),
        alert(
            o,
            "SecmonSensorMemoryHigh",
            format!("{}{{{job}}} > {mem}", m::PROCESS_RESIDENT_MEMORY_BYTES),
            "15m",
            "warning",
            "The secmon sensor on {{ $labels.instance }} is near its memory limit",
            format!("The sensor at {{{{ $labels.instance }}}} has used more than {} of its {} byte memory limit for 15m; it risks being OOM-killed.", pct(o.limit_ratio), num(o.memory_limit)),
        ),
        alert(
            o,
            "SecmonSinkLosingAlerts",
            format!(
                "sum by (instance, {s}) (increase({d}{{{st}=~\"failed|dropped\"}}[10m])) > 0",
                s = m::LABEL_SINK,
                d = m::SINK_DELIVERIES_TOTAL,
                st = m::LABEL_STATUS
            ),
            "0s",
            "warning",
            "The secmon sensor on {{ $labels.instance }} loses alerts on its {{ $labels.sink }} sink",
            "The sensor at {{ $labels.instance }} could not deliver {{ $value }} alert(s) to its {{ $labels.sink }} sink within 10m (failed or dropped): they are missing there.".into(),
        ),
        alert(
            o,
            "SecmonSinkSpoolFilling",
            format!(
                "{b} / {l} > 0.8",
                b = m::SINK_SPOOL_BYTES,
                l = m::SINK_SPOOL_LIMIT_BYTES
            ),
            "5m",
            "warning",
            "The {{ $labels.sink }} spool of the sensor on {{ $labels.instance }} is filling up",
            "The {{ $labels.sink }} spool of the sensor at {{ $labels.instance }} has been over 80% full for 5m: the store is not taking alerts, and new ones are dropped once it is full.".into(),
        ),
    ];
    json!({ "name": "secmon.alerts", "rules": rules })
}

fn record_group(_o: &RuleOptions) -> Value {
    let a = m::ALERTS_TOTAL;
    let rec = |record: &str, expr: String| json!({ "record": record, "expr": expr });
    json!({
        "name": "secmon.records",
        "rules": [
            rec("rule_priority_namespace:secmon_alerts:rate5m",
                format!("sum by ({}, {}, {}) (rate({a}[5m]))", m::LABEL_RULE, m::LABEL_PRIORITY, m::LABEL_NAMESPACE)),
            rec("priority:secmon_alerts:rate5m",
                format!("sum by ({}) (rate({a}[5m]))", m::LABEL_PRIORITY)),
            rec("category:secmon_events_dropped:rate5m",
                format!("sum by ({}) (rate({}[5m]))", m::LABEL_CATEGORY, m::EVENTS_DROPPED_TOTAL)),
        ],
    })
}

/// The same rules as a Prometheus Operator `PrometheusRule` in `namespace`, with `labels`
/// (which must match the Prometheus resource's `ruleSelector`).
pub fn prometheus_rule(o: &RuleOptions, namespace: &str, labels: &[(String, String)]) -> Value {
    let mut meta = json!({ "name": "secmon", "namespace": namespace });
    if !labels.is_empty() {
        let l: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        meta["labels"] = Value::Object(l);
    }
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": rules_file(o),
    })
}

/// A `ServiceMonitor`, itself in `namespace`, scraping the sensor's metrics Service
/// (`secmon-sensor`, port `metrics`) in the sensor's namespace `secmon`. `honorLabels`
/// keeps the sensor's own `namespace` label (the namespace of the pod an alert is about)
/// instead of the target's.
pub fn service_monitor(namespace: &str, labels: &[(String, String)], interval: &str) -> Value {
    let mut meta = json!({ "name": m::SENSOR_NAME, "namespace": namespace });
    let mut l = Map::new();
    l.insert("app.kubernetes.io/name".into(), json!(m::SENSOR_NAME));
    for (k, v) in labels {
        l.insert(k.clone(), json!(v));
    }
    meta["labels"] = Value::Object(l);
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta,
        "spec": {
            "jobLabel": "app.kubernetes.io/name",
            "selector": { "matchLabels": { "app.kubernetes.io/name": m::SENSOR_NAME } },
            "namespaceSelector": { "matchNames": [m::SENSOR_NAMESPACE] },
            "endpoints": [{
                "port": m::METRICS_PORT_NAME,
                "path": "/metrics",
                "interval": interval,
                "honorLabels": true,
                "relabelings": [{
                    "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                    "targetLabel": "node",
                }],
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_is_generated_once_with_its_runbook() {
        let f = rules_file(&RuleOptions::default());
        let rules = f["groups"][0]["rules"].as_array().unwrap();
        let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(names, ALERTS);
        for r in rules {
            let sev = r["labels"]["severity"].as_str().unwrap();
            assert!(sev == "critical" || sev == "warning");
            let url = r["annotations"]["runbook_url"].as_str().unwrap();
            assert!(url.ends_with(&r["alert"].as_str().unwrap().to_ascii_lowercase()));
        }
    }

    #[test]
    fn thresholds_print_without_float_noise() {
        assert_eq!(num(0.5 * 0.9), "0.45");
        assert_eq!(num(20.0), "20");
    }
}
