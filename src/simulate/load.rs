//! Load mode (`simulate run --loop --rate N…`): the scenarios are repeated round-robin at
//! N per second for a while, for each rate asked, and the sensor's own figures are read
//! from its `/metrics` before, during and after: CPU (share of one core), resident memory,
//! events and drops. It doubles as the sensor's stress and overhead benchmark, as
//! event-generator's `bench` does for Falco, and also says whether detection held up:
//! how many of the step's scenarios got all their expected alerts (read from `/alerts`
//! and attributed as `verify` does; the sensor's own alert counter would also count
//! everything else on the host). Scenarios that take seconds by design are
//! left out; a rate the machine cannot reach is reported as achieved, not as asked.

use serde::Serialize;

use crate::sensor::metrics::{
    ALERTS_TOTAL, EVENTS_DROPPED_TOTAL, EVENTS_TOTAL, PROCESS_CPU_SECONDS_TOTAL,
    PROCESS_RESIDENT_MEMORY_BYTES,
};

/// The sensor's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsSample {
    pub cpu_seconds: f64,
    pub rss_bytes: f64,
    pub events: f64,
    pub dropped: f64,
    pub alerts: f64,
}

/// The sum of every series of metric `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !rest.starts_with(['{', ' ']) {
                return None;
            }
            l.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// Parse what the load mode needs from `/metrics`.
pub fn parse_metrics(text: &str) -> MetricsSample {
    MetricsSample {
        cpu_seconds: metric_sum(text, PROCESS_CPU_SECONDS_TOTAL),
        rss_bytes: metric_sum(text, PROCESS_RESIDENT_MEMORY_BYTES),
        events: metric_sum(text, EVENTS_TOTAL),
        dropped: metric_sum(text, EVENTS_DROPPED_TOTAL),
        alerts: metric_sum(text, ALERTS_TOTAL),
    }
}

/// One rate's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadStep {
    /// Scenarios per second asked for.
    pub rate: f64,
    pub duration_s: f64,
    pub scenarios_run: usize,
    /// Scenarios per second reached.
    pub achieved_rate: f64,
    /// Scenario runs that failed (not skipped).
    pub errors: usize,
    /// Scenario runs all of whose expected alerts arrived.
    pub detected: usize,
    /// The scenarios that missed, with how many times.
    pub missed: std::collections::BTreeMap<String, usize>,
    /// The sensor's CPU over the step, in % of one core.
    pub sensor_cpu_percent: f64,
    /// The sensor's largest resident memory seen, MiB.
    pub sensor_rss_mib: f64,
    pub events: u64,
    pub events_per_second: f64,
    pub dropped: u64,
    /// Alerts the sensor raised during the step, for anything on the host.
    pub sensor_alerts: u64,
}

impl LoadStep {
    /// The figures of a step from the samples around it (and the largest RSS seen in it).
    #[allow(clippy::too_many_arguments)]
    pub fn from_samples(
        rate: f64,
        duration_s: f64,
        scenarios_run: usize,
        errors: usize,
        detected: usize,
        before: &MetricsSample,
        after: &MetricsSample,
        max_rss_bytes: f64,
    ) -> LoadStep {
        let d = duration_s.max(1e-9);
        let delta = |a: f64, b: f64| (b - a).max(0.0);
        let events = delta(before.events, after.events);
        LoadStep {
            rate,
            duration_s,
            scenarios_run,
            achieved_rate: scenarios_run as f64 / d,
            errors,
            detected,
            missed: Default::default(),
            sensor_cpu_percent: 100.0 * delta(before.cpu_seconds, after.cpu_seconds) / d,
            sensor_rss_mib: max_rss_bytes.max(after.rss_bytes) / (1024.0 * 1024.0),
            events: events as u64,
            events_per_second: events / d,
            dropped: delta(before.dropped, after.dropped) as u64,
            sensor_alerts: delta(before.alerts, after.alerts) as u64,
        }
    }
}

/// `GET http://ADDR/metrics`: the body. `Err` is one line.
pub fn fetch_metrics(addr: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let host = addr.trim_start_matches("http://").trim_end_matches('/');
    let hint = format!(
        "cannot read the sensor's metrics at http://{host}/metrics: is `kubectl secmon sensor` running here with --metrics-addr {host}?"
    );
    let sock = host
        .to_socket_addrs()
        .map_err(|e| format!("{hint} ({e})"))?
        .next()
        .ok_or_else(|| hint.clone())?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .map_err(|e| format!("{hint} ({e})"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{hint} ({e})"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("{hint} ({e})"))?;
    let (head, body) = resp.split_once("\r\n\r\n").ok_or_else(|| hint.clone())?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{hint} (it answered {})",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\nsecmon_events_total{category=\"file\"} 100\nsecmon_events_total{category=\"process\"} 20\nsecmon_events_dropped_total{category=\"file\"} 3\nsecmon_events_total_other 9\nprocess_cpu_seconds_total 1.5\nprocess_resident_memory_bytes 41943040\nsecmon_alerts_total{rule=\"a b\",priority=\"warning\",namespace=\"\"} 4\n";

    #[test]
    fn metrics_parse_and_steps_compute() {
        let m = parse_metrics(TEXT);
        assert_eq!(m.events, 120.0);
        assert_eq!(m.dropped, 3.0);
        assert_eq!(m.cpu_seconds, 1.5);
        assert_eq!(m.alerts, 4.0);
        let after = MetricsSample {
            cpu_seconds: 2.5,
            rss_bytes: 40.0 * 1048576.0,
            events: 1120.0,
            dropped: 3.0,
            alerts: 14.0,
        };
        let s = LoadStep::from_samples(10.0, 10.0, 95, 1, 90, &m, &after, 50.0 * 1048576.0);
        assert_eq!(s.achieved_rate, 9.5);
        assert_eq!(s.sensor_cpu_percent, 10.0);
        assert_eq!(s.sensor_rss_mib, 50.0);
        assert_eq!(
            (s.events, s.dropped, s.sensor_alerts, s.detected),
            (1000, 0, 10, 90)
        );
        assert_eq!(s.events_per_second, 100.0);
    }
}
