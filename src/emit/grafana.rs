//! A Grafana dashboard (JSON model, schemaVersion 39) over the sensor's metrics: alerts by
//! priority and by rule over time, the top namespaces, event drops, and sensor health per
//! node. The Prometheus data source is a dashboard variable, so it imports anywhere.

use serde_json::{Value, json};

use crate::sensor::metrics as m;

/// Grafana's dashboard JSON schema version the model follows.
pub const SCHEMA_VERSION: u64 = 39;

struct Panel<'a> {
    kind: &'a str,
    title: &'a str,
    unit: &'a str,
    /// (expr, legend) pairs.
    targets: Vec<(String, &'a str)>,
    /// Query at one instant (tables, bar gauges) rather than over a range.
    instant: bool,
    /// (x, y, w, h) on Grafana's 24-column grid.
    grid: (u32, u32, u32, u32),
}

fn panel(id: usize, p: Panel) -> Value {
    let ds = json!({ "type": "prometheus", "uid": "${datasource}" });
    let targets: Vec<Value> = p
        .targets
        .iter()
        .zip(b'A'..)
        .map(|((expr, legend), r)| {
            json!({
                "refId": (r as char).to_string(),
                "datasource": ds,
                "expr": expr,
                "legendFormat": legend,
                "instant": p.instant,
                "range": !p.instant,
                "format": if p.kind == "table" { "table" } else { "time_series" },
            })
        })
        .collect();
    let (x, y, w, h) = p.grid;
    json!({
        "id": id,
        "type": p.kind,
        "title": p.title,
        "datasource": ds,
        "gridPos": { "x": x, "y": y, "w": w, "h": h },
        "targets": targets,
        "fieldConfig": { "defaults": { "unit": p.unit }, "overrides": [] },
        "options": {},
    })
}

/// The dashboard, with the sensor's scrape job `job` in its health queries.
pub fn dashboard(job: &str) -> Value {
    let a = m::ALERTS_TOTAL;
    let sel = format!("{{job=\"{job}\"}}");
    let panels = vec![
        Panel {
            kind: "timeseries",
            title: "Alerts by priority",
            unit: "short",
            targets: vec![(
                format!(
                    "sum by ({}) (increase({a}[$__rate_interval]))",
                    m::LABEL_PRIORITY
                ),
                "{{priority}}",
            )],
            instant: false,
            grid: (0, 0, 12, 8),
        },
        Panel {
            kind: "timeseries",
            title: "Alerts by rule",
            unit: "short",
            targets: vec![(
                format!(
                    "sum by ({}) (increase({a}[$__rate_interval]))",
                    m::LABEL_RULE
                ),
                "{{rule}}",
            )],
            instant: false,
            grid: (12, 0, 12, 8),
        },
        Panel {
            kind: "bargauge",
            title: "Top namespaces by alerts",
            unit: "short",
            targets: vec![(
                format!(
                    "topk(10, sum by ({}) (increase({a}[$__range])))",
                    m::LABEL_NAMESPACE
                ),
                "{{namespace}}",
            )],
            instant: true,
            grid: (0, 8, 12, 8),
        },
        Panel {
            kind: "timeseries",
            title: "Dropped events",
            unit: "ops",
            targets: vec![(
                format!(
                    "sum by (instance, {}) (rate({}[$__rate_interval]))",
                    m::LABEL_CATEGORY,
                    m::EVENTS_DROPPED_TOTAL
                ),
                "{{instance}} {{category}}",
            )],
            instant: false,
            grid: (12, 8, 12, 8),
        },
        Panel {
            kind: "table",
            title: "Sensor health per node",
            unit: "short",
            targets: vec![
                (format!("max by (node, instance) (up{sel})"), "up"),
                (
                    format!("max by (node, instance) ({}{sel})", m::RULES_LOADED),
                    "rules loaded",
                ),
                (
                    format!("max by (node, instance) ({}{sel})", m::PROCESS_TABLE_SIZE),
                    "processes tracked",
                ),
            ],
            instant: true,
            grid: (0, 16, 12, 8),
        },
        Panel {
            kind: "stat",
            title: "Nodes without a ready sensor",
            unit: "short",
            targets: vec![(
                format!(
                    "sum({}{{daemonset=\"{n}\"}}) - sum({}{{daemonset=\"{n}\"}})",
                    m::KUBE_DAEMONSET_DESIRED,
                    m::KUBE_DAEMONSET_READY,
                    n = m::SENSOR_NAME
                ),
                "not ready",
            )],
            instant: false,
            grid: (12, 16, 12, 8),
        },
        Panel {
            kind: "timeseries",
            title: "Sensor CPU per node",
            unit: "cores",
            targets: vec![(
                format!(
                    "rate({}{sel}[$__rate_interval])",
                    m::PROCESS_CPU_SECONDS_TOTAL
                ),
                "{{node}}",
            )],
            instant: false,
            grid: (0, 24, 12, 8),
        },
        Panel {
            kind: "timeseries",
            title: "Sensor memory per node",
            unit: "bytes",
            targets: vec![(
                format!("{}{sel}", m::PROCESS_RESIDENT_MEMORY_BYTES),
                "{{node}}",
            )],
            instant: false,
            grid: (12, 24, 12, 8),
        },
    ];
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, p)| panel(i + 1, p))
        .collect();
    json!({
        "uid": "secmon-sensor",
        "title": "secmon: runtime detection",
        "description": "Alerts and sensor health from the kubectl-secmon node sensor",
        "tags": ["secmon", "security"],
        "editable": true,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": { "from": "now-6h", "to": "now" },
        "annotations": { "list": [] },
        "templating": {
            "list": [{
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
            }],
        },
        "panels": panels,
    })
}
