//! An Alertmanager configuration for secmon's alerts: a route by `severity` (critical to a
//! paging receiver, warning to a chat receiver), grouped by alert, rule and namespace, and an
//! inhibit rule that mutes a warning while a critical alert for the same rule and namespace
//! fires. Receivers are placeholders (`webhook_configs` with an example URL) to edit.

use serde_json::{Value, json};

/// Receiver names by severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivers {
    /// Receives `severity="critical"` (paging).
    pub critical: String,
    /// Receives `severity="warning"` and anything unmatched (chat).
    pub warning: String,
}

impl Default for Receivers {
    fn default() -> Self {
        Receivers {
            critical: "secmon-page".into(),
            warning: "secmon-chat".into(),
        }
    }
}

fn receiver(name: &str, severity: &str) -> Value {
    json!({
        "name": name,
        "webhook_configs": [{
            "url": format!("https://alerts.example.com/secmon/{severity}"),
            "send_resolved": true,
        }],
    })
}

/// The whole configuration file (`route`, `receivers`, `inhibit_rules`).
pub fn config(r: &Receivers) -> Value {
    let mut receivers = vec![receiver(&r.warning, "warning")];
    if r.critical != r.warning {
        receivers.push(receiver(&r.critical, "critical"));
    }
    json!({
        "route": {
            "receiver": r.warning,
            "group_by": ["alertname", "rule", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "matchers": ["severity=\"critical\""],
                    "receiver": r.critical,
                    "group_wait": "10s",
                    "repeat_interval": "1h",
                },
                {
                    "matchers": ["severity=\"warning\""],
                    "receiver": r.warning,
                },
            ],
        },
        "receivers": receivers,
        "inhibit_rules": [{
            "source_matchers": ["severity=\"critical\"", "rule=~\".+\""],
            "target_matchers": ["severity=\"warning\""],
            "equal": ["rule", "namespace"],
        }],
    })
}
