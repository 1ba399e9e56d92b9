//! The sensor's counters and gauges, shared (`Arc<SensorStats>`) between the event
//! pipeline, the sinks and the `/metrics` endpoint, and their Prometheus text exposition.
//!
//! The hot path (events seen and dropped) is lock-free atomics indexed by category. Alerts
//! are counted by (rule, priority, namespace) under a mutex: alerts are rare, and the label
//! set is only known when one fires. Metric names come from [`super::metrics`], which the
//! generated Prometheus rules and dashboards query.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::metrics as m;
use crate::bpf::abi::CATEGORIES;
use crate::rules::Priority;

const N_CAT: usize = CATEGORIES.len();

/// Where alerts go; each has its own delivery counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Stdout,
    File,
    Webhook,
    /// Clients streaming `GET /alerts`.
    Http,
    /// `_bulk` into an Elasticsearch/OpenSearch data stream.
    Elasticsearch,
    /// Alertmanager's `/api/v2/alerts`.
    Alertmanager,
}

impl SinkKind {
    pub const ALL: [SinkKind; 6] = [
        SinkKind::Stdout,
        SinkKind::File,
        SinkKind::Webhook,
        SinkKind::Http,
        SinkKind::Elasticsearch,
        SinkKind::Alertmanager,
    ];

    /// Sinks that send over the network and retry.
    pub fn retries(self) -> bool {
        matches!(
            self,
            SinkKind::Webhook | SinkKind::Elasticsearch | SinkKind::Alertmanager
        )
    }

    /// The `sink` label value.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::File => "file",
            SinkKind::Webhook => "webhook",
            SinkKind::Http => "http",
            SinkKind::Elasticsearch => "elasticsearch",
            SinkKind::Alertmanager => "alertmanager",
        }
    }
}

/// One sink's delivery counters (see [`m::SINK_DELIVERIES_TOTAL`]).
#[derive(Debug, Default)]
pub struct SinkCounters {
    enabled: AtomicBool,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
    /// Documents a store rejected, by the item's HTTP status (0: no status).
    item_errors: Mutex<std::collections::BTreeMap<u16, u64>>,
    /// Alerts held in the spool, its undelivered bytes, and its bound (spooling sinks).
    spool_alerts: AtomicU64,
    spool_bytes: AtomicU64,
    spool_limit: AtomicU64,
}

impl SinkCounters {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }
    pub fn failed(&self) -> u64 {
        self.failed.load(Relaxed)
    }
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Relaxed)
    }

    /// A store rejected one document with this status.
    pub fn item_error(&self, status: u16) {
        let mut m = self.item_errors.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(status).or_insert(0) += 1;
    }

    /// Rejected documents so far, by status.
    pub fn item_errors(&self) -> Vec<(u16, u64)> {
        let m = self.item_errors.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// The spool's state: alerts and bytes held, and its bound in bytes.
    pub fn set_spool(&self, alerts: u64, bytes: u64, limit: u64) {
        self.spool_alerts.store(alerts, Relaxed);
        self.spool_bytes.store(bytes, Relaxed);
        self.spool_limit.store(limit, Relaxed);
    }

    /// Alerts held in the spool.
    pub fn spooled(&self) -> u64 {
        self.spool_alerts.load(Relaxed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct AlertKey {
    rule: String,
    priority: Priority,
    namespace: String,
}

/// Everything `/metrics` reports. Create with `Arc::new(SensorStats::default())`.
#[derive(Debug, Default)]
pub struct SensorStats {
    events: [AtomicU64; N_CAT],
    dropped: [AtomicU64; N_CAT],
    alerts: Mutex<HashMap<AlertKey, u64>>,
    rules_loaded: AtomicU64,
    process_table_size: AtomicU64,
    sinks: [SinkCounters; SinkKind::ALL.len()],
}

/// Categories beyond the known ones count as `other`.
fn cat_index(category: u8) -> usize {
    usize::from(category).min(N_CAT - 1)
}

impl SensorStats {
    /// `n` kernel events of `category` (an index into [`CATEGORIES`]) were decoded.
    pub fn add_events(&self, category: u8, n: u64) {
        self.events[cat_index(category)].fetch_add(n, Relaxed);
    }

    /// `n` events of `category` were lost before rule evaluation.
    pub fn add_dropped(&self, category: u8, n: u64) {
        self.dropped[cat_index(category)].fetch_add(n, Relaxed);
    }

    /// Events decoded so far, by category ([`CATEGORIES`] order).
    pub fn events(&self) -> [u64; N_CAT] {
        std::array::from_fn(|i| self.events[i].load(Relaxed))
    }

    /// Events dropped so far, by category ([`CATEGORIES`] order).
    pub fn dropped(&self) -> [u64; N_CAT] {
        std::array::from_fn(|i| self.dropped[i].load(Relaxed))
    }

    /// An alert was raised. `namespace` is empty for host processes.
    pub fn record_alert(&self, rule: &str, priority: Priority, namespace: &str) {
        let key = AlertKey {
            rule: rule.to_string(),
            priority,
            namespace: namespace.to_string(),
        };
        let mut alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        *alerts.entry(key).or_insert(0) += 1;
    }

    /// Alerts raised so far for this (rule, priority, namespace).
    pub fn alerts(&self, rule: &str, priority: Priority, namespace: &str) -> u64 {
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        alerts
            .iter()
            .find(|(k, _)| k.rule == rule && k.priority == priority && k.namespace == namespace)
            .map_or(0, |(_, n)| *n)
    }

    pub fn set_rules_loaded(&self, n: u64) {
        self.rules_loaded.store(n, Relaxed);
    }

    pub fn set_process_table_size(&self, n: u64) {
        self.process_table_size.store(n, Relaxed);
    }

    /// A sink's counters; the sink appears on `/metrics` from the first call.
    pub fn sink(&self, kind: SinkKind) -> &SinkCounters {
        let c = &self.sinks[kind as usize];
        c.enabled.store(true, Relaxed);
        c
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render_prometheus(&self, node: &str, version: &str) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            m::SENSOR_INFO,
            "gauge",
            "The node sensor's version and node, always 1.",
        );
        sample(
            &mut out,
            m::SENSOR_INFO,
            &[(m::LABEL_NODE, node), (m::LABEL_VERSION, version)],
            1,
        );

        family(
            &mut out,
            m::EVENTS_TOTAL,
            "counter",
            "Kernel events decoded, by category.",
        );
        for (name, n) in CATEGORIES.iter().zip(self.events()) {
            sample(&mut out, m::EVENTS_TOTAL, &[(m::LABEL_CATEGORY, name)], n);
        }
        family(
            &mut out,
            m::EVENTS_DROPPED_TOTAL,
            "counter",
            "Events lost before rule evaluation, by category.",
        );
        for (name, n) in CATEGORIES.iter().zip(self.dropped()) {
            sample(
                &mut out,
                m::EVENTS_DROPPED_TOTAL,
                &[(m::LABEL_CATEGORY, name)],
                n,
            );
        }

        family(
            &mut out,
            m::ALERTS_TOTAL,
            "counter",
            "Alerts raised, by rule, priority and namespace.",
        );
        let mut alerts: Vec<(AlertKey, u64)> = {
            let map = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        alerts.sort();
        for (k, n) in &alerts {
            let priority = m::PRIORITIES
                .get(usize::from(k.priority.level()))
                .copied()
                .unwrap_or("debug");
            sample(
                &mut out,
                m::ALERTS_TOTAL,
                &[
                    (m::LABEL_RULE, &k.rule),
                    (m::LABEL_PRIORITY, priority),
                    (m::LABEL_NAMESPACE, &k.namespace),
                ],
                *n,
            );
        }

        family(
            &mut out,
            m::RULES_LOADED,
            "gauge",
            "Rules loaded and enabled.",
        );
        sample(
            &mut out,
            m::RULES_LOADED,
            &[],
            self.rules_loaded.load(Relaxed),
        );
        family(
            &mut out,
            m::PROCESS_TABLE_SIZE,
            "gauge",
            "Processes tracked in the process table.",
        );
        sample(
            &mut out,
            m::PROCESS_TABLE_SIZE,
            &[],
            self.process_table_size.load(Relaxed),
        );

        let enabled: Vec<(SinkKind, &SinkCounters)> = SinkKind::ALL
            .iter()
            .map(|k| (*k, &self.sinks[*k as usize]))
            .filter(|(_, c)| c.enabled.load(Relaxed))
            .collect();
        family(
            &mut out,
            m::SINK_DELIVERIES_TOTAL,
            "counter",
            "Alerts handed to each sink, by outcome.",
        );
        for (kind, c) in &enabled {
            for (status, n) in [
                ("delivered", c.delivered()),
                ("failed", c.failed()),
                ("dropped", c.dropped()),
            ] {
                sample(
                    &mut out,
                    m::SINK_DELIVERIES_TOTAL,
                    &[(m::LABEL_SINK, kind.name()), (m::LABEL_STATUS, status)],
                    n,
                );
            }
        }
        family(
            &mut out,
            m::SINK_RETRIES_TOTAL,
            "counter",
            "Requests retried by the network sinks (connection errors, timeouts, 5xx, 429).",
        );
        for (kind, c) in enabled.iter().filter(|(k, _)| k.retries()) {
            sample(
                &mut out,
                m::SINK_RETRIES_TOTAL,
                &[(m::LABEL_SINK, kind.name())],
                c.retries(),
            );
        }
        family(
            &mut out,
            m::SINK_ITEM_ERRORS_TOTAL,
            "counter",
            "Documents a store rejected in a bulk response, by HTTP status of the item.",
        );
        for (kind, c) in &enabled {
            for (code, n) in c.item_errors() {
                sample(
                    &mut out,
                    m::SINK_ITEM_ERRORS_TOTAL,
                    &[
                        (m::LABEL_SINK, kind.name()),
                        (m::LABEL_CODE, &code.to_string()),
                    ],
                    n,
                );
            }
        }
        let spooling: Vec<&(SinkKind, &SinkCounters)> = enabled
            .iter()
            .filter(|(k, _)| *k == SinkKind::Elasticsearch)
            .collect();
        for (name, help, get) in [
            (
                m::SINK_SPOOL_ALERTS,
                "Alerts held in the sink's on-disk spool, not yet delivered.",
                (|c: &SinkCounters| c.spool_alerts.load(Relaxed)) as fn(&SinkCounters) -> u64,
            ),
            (
                m::SINK_SPOOL_BYTES,
                "Bytes held in the sink's on-disk spool, not yet delivered.",
                |c: &SinkCounters| c.spool_bytes.load(Relaxed),
            ),
            (
                m::SINK_SPOOL_LIMIT_BYTES,
                "The bound on the spool's bytes; alerts past it are dropped.",
                |c: &SinkCounters| c.spool_limit.load(Relaxed),
            ),
        ] {
            family(&mut out, name, "gauge", help);
            for (kind, c) in &spooling {
                sample(&mut out, name, &[(m::LABEL_SINK, kind.name())], get(c));
            }
        }

        let proc = process_usage();
        family(
            &mut out,
            m::PROCESS_CPU_SECONDS_TOTAL,
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(out, "{} {}", m::PROCESS_CPU_SECONDS_TOTAL, proc.cpu_seconds);
        family(
            &mut out,
            m::PROCESS_RESIDENT_MEMORY_BYTES,
            "gauge",
            "Resident memory size in bytes.",
        );
        sample(
            &mut out,
            m::PROCESS_RESIDENT_MEMORY_BYTES,
            &[],
            proc.resident_bytes,
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape `\`, `"` and line feeds (the exposition format's rule).
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The standard process collector's two values; zero where the platform has no `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct ProcessUsage {
    cpu_seconds: f64,
    resident_bytes: u64,
}

#[cfg(target_os = "linux")]
fn process_usage() -> ProcessUsage {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
    parse_process_usage(&stat, &statm, page_size(&auxv))
}

#[cfg(not(target_os = "linux"))]
fn process_usage() -> ProcessUsage {
    ProcessUsage::default()
}

/// The kernel reports CPU times in `USER_HZ` ticks, 100 per second on every Linux
/// architecture this sensor builds for.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const USER_HZ: f64 = 100.0;

/// `AT_PAGESZ` from the auxiliary vector (no `unsafe` `sysconf` needed); 4096 if absent.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn page_size(auxv: &[u8]) -> u64 {
    const AT_PAGESZ: u64 = 6;
    let w = std::mem::size_of::<usize>();
    let word = |c: &[u8]| -> u64 {
        let mut buf = [0u8; 8];
        let n = c.len().min(8);
        buf[..n].copy_from_slice(&c[..n]);
        if w == 8 {
            u64::from_ne_bytes(buf)
        } else {
            u64::from(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]))
        }
    };
    auxv.chunks_exact(2 * w)
        .find(|pair| word(&pair[..w]) == AT_PAGESZ)
        .map(|pair| word(&pair[w..]))
        .filter(|&p| p > 0)
        .unwrap_or(4096)
}

/// utime and stime (fields 14 and 15 of `/proc/self/stat`, counted after the `)` closing
/// the command name, which may itself hold spaces) and resident pages (field 2 of statm).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_process_usage(stat: &str, statm: &str, page_size: u64) -> ProcessUsage {
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After ")": state is field 3, so utime (14) is index 11, stime (15) index 12.
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            get(11) + get(12)
        })
        .unwrap_or(0);
    let pages = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    ProcessUsage {
        cpu_seconds: ticks as f64 / USER_HZ,
        resident_bytes: pages.saturating_mul(page_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A small exposition-format checker: every sample's family has exactly one TYPE line
    /// before it, label values are properly quoted and escaped, values are numbers.
    /// Returns the samples as (name, labels, value).
    type Sample = (String, Vec<(String, String)>, f64);

    fn parse(text: &str) -> Vec<Sample> {
        let mut typed = HashSet::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                assert!(typed.insert(name.to_string()), "duplicate TYPE: {line}");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{name}"
            );
            assert!(typed.contains(name), "sample without TYPE: {line}");
            let mut labels = Vec::new();
            let chars: Vec<char> = line[name_end..].chars().collect();
            let mut i = 0;
            if chars[0] == '{' {
                i = 1;
                loop {
                    let mut key = String::new();
                    while chars[i] != '=' {
                        key.push(chars[i]);
                        i += 1;
                    }
                    assert_eq!(chars[i + 1], '"', "{line}");
                    i += 2;
                    let mut value = String::new();
                    loop {
                        match chars[i] {
                            '"' => break,
                            '\\' => {
                                i += 1;
                                value.push(match chars[i] {
                                    '\\' => '\\',
                                    '"' => '"',
                                    'n' => '\n',
                                    other => panic!("bad escape \\{other} in {line}"),
                                });
                            }
                            c => value.push(c),
                        }
                        i += 1;
                    }
                    labels.push((key, value));
                    i += 1;
                    match chars[i] {
                        ',' => i += 1,
                        '}' => {
                            i += 1;
                            break;
                        }
                        other => panic!("unexpected {other:?} in {line}"),
                    }
                }
            }
            let rest: String = chars[i..].iter().collect();
            let value: f64 = rest.trim().parse().unwrap_or_else(|_| panic!("{line}"));
            samples.push((name.to_string(), labels, value));
        }
        samples
    }

    #[test]
    fn exposition_is_well_formed_and_uses_the_contract_names() {
        let s = SensorStats::default();
        s.add_events(0, 10);
        s.add_events(2, 5);
        s.add_events(200, 1); // unknown category counts as other
        s.add_dropped(1, 3);
        s.record_alert(
            "Terminal \"shell\" in\\container\n",
            Priority::Notice,
            "default",
        );
        s.record_alert(
            "Terminal \"shell\" in\\container\n",
            Priority::Notice,
            "default",
        );
        s.record_alert("Read shadow", Priority::Warning, "");
        s.set_rules_loaded(42);
        s.set_process_table_size(7);
        s.sink(SinkKind::Webhook).retries.fetch_add(2, Relaxed);
        s.sink(SinkKind::Webhook).delivered.fetch_add(1, Relaxed);
        let text = s.render_prometheus("node \"1\"", "v0.1.0");
        let samples = parse(&text);
        let find = |name: &str, labels: &[(&str, &str)]| -> f64 {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels.len() == l.len()
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
                })
                .unwrap_or_else(|| panic!("{name} {labels:?} not in\n{text}"))
                .2
        };
        assert_eq!(
            find(
                m::SENSOR_INFO,
                &[("node", "node \"1\""), ("version", "v0.1.0")]
            ),
            1.0
        );
        assert_eq!(find(m::EVENTS_TOTAL, &[("category", "process")]), 10.0);
        assert_eq!(find(m::EVENTS_TOTAL, &[("category", "network")]), 5.0);
        assert_eq!(find(m::EVENTS_TOTAL, &[("category", "other")]), 1.0);
        assert_eq!(find(m::EVENTS_DROPPED_TOTAL, &[("category", "file")]), 3.0);
        assert_eq!(
            find(
                m::ALERTS_TOTAL,
                &[
                    ("rule", "Terminal \"shell\" in\\container\n"),
                    ("priority", "notice"),
                    ("namespace", "default")
                ]
            ),
            2.0
        );
        assert_eq!(
            find(
                m::ALERTS_TOTAL,
                &[
                    ("rule", "Read shadow"),
                    ("priority", "warning"),
                    ("namespace", "")
                ]
            ),
            1.0
        );
        assert_eq!(find(m::RULES_LOADED, &[]), 42.0);
        assert_eq!(find(m::PROCESS_TABLE_SIZE, &[]), 7.0);
        assert_eq!(
            find(
                m::SINK_DELIVERIES_TOTAL,
                &[("sink", "webhook"), ("status", "delivered")]
            ),
            1.0
        );
        assert_eq!(find(m::SINK_RETRIES_TOTAL, &[("sink", "webhook")]), 2.0);
        // Sinks never used are not reported.
        assert!(!text.contains("sink=\"stdout\""));
        let rss = find(m::PROCESS_RESIDENT_MEMORY_BYTES, &[]);
        find(m::PROCESS_CPU_SECONDS_TOTAL, &[]);
        if cfg!(target_os = "linux") {
            assert!(rss > 0.0, "this process has resident memory");
        }
        assert_eq!(s.alerts("Read shadow", Priority::Warning, ""), 1);
    }

    #[test]
    fn proc_files_parse() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 50 0 0 20 0 9 0 100 1000000 300 18446744073709551615";
        let u = parse_process_usage(stat, "5000 300 200 1 0 400 0\n", 4096);
        assert_eq!(u.cpu_seconds, 2.0);
        assert_eq!(u.resident_bytes, 300 * 4096);
        assert_eq!(parse_process_usage("", "", 4096), ProcessUsage::default());
        let w = std::mem::size_of::<usize>();
        let mut auxv = Vec::new();
        for (k, v) in [(3u64, 99u64), (6, 16384), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes()[..w]);
            auxv.extend_from_slice(&v.to_ne_bytes()[..w]);
        }
        assert_eq!(page_size(&auxv), 16384);
        assert_eq!(page_size(&[]), 4096);
    }
}
