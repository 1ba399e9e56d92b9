//! Generated monitoring configuration: Prometheus rules and a ServiceMonitor, an
//! Alertmanager route, a Kubernetes audit policy and a Grafana dashboard.
//!
//! Every generator is a pure function from options to a `serde_json::Value`; the `emit`
//! command serializes it (YAML through `report::to_yaml`, or JSON). The metrics queried are
//! the sensor's contract in [`crate::sensor::metrics`], never spelled out here by hand.

pub mod alertmanager;
pub mod audit;
pub mod es;
pub mod grafana;
pub mod prometheus;

/// Where the alerts' `runbook_url` annotations point by default: the README's runbooks.
pub const DEFAULT_RUNBOOK_BASE: &str = "https://github.com/kubectl-secmon/kubectl-secmon#";

/// The README anchor of an alert's runbook section (`### SecmonSensorDown` → `secmonsensordown`).
pub fn runbook_anchor(alert: &str) -> String {
    alert.to_ascii_lowercase()
}

/// Parse a byte quantity the Kubernetes way: a plain number, or with `Ki`, `Mi`, `Gi`, `Ti`,
/// `K`, `M`, `G` or `T`.
pub fn parse_bytes(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: use bytes or a unit such as 512Mi or 1Gi"))?;
    let factor = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "K" | "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => {
            return Err(format!(
                "invalid size {s:?}: use bytes or a unit such as 512Mi or 1Gi"
            ));
        }
    };
    Ok(n * factor)
}

/// Check a Prometheus duration such as `30s`, `5m`, `1h30m`: digits then a unit, repeated.
pub fn check_duration(s: &str) -> Result<String, String> {
    let bad = || format!("invalid duration {s:?}: use a number with a unit such as 30s, 5m or 1h");
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let d = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if d == 0 {
            return Err(bad());
        }
        rest = &rest[d..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        if !matches!(&rest[..u], "ms" | "s" | "m" | "h" | "d" | "w" | "y") {
            return Err(bad());
        }
        rest = &rest[u..];
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512Mi"), Ok(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("1000"), Ok(1000.0));
        assert_eq!(parse_bytes("1G"), Ok(1e9));
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("Mi").is_err());
    }

    #[test]
    fn durations_check() {
        assert!(check_duration("5m").is_ok());
        assert!(check_duration("1h30m").is_ok());
        assert!(check_duration("5").is_err());
        assert!(check_duration("m").is_err());
        assert!(check_duration("").is_err());
    }
}
