//! Reading pods the way every command that makes pods does (`cis run --nodes` scan pods,
//! `simulate --in-cluster` Jobs): their phase, their containers' states, why one has not
//! finished, and names that are valid DNS labels.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::errors::one_line;

/// The pod's phase (`Pending`, `Running`, `Succeeded`, `Failed`), `Unknown` without one.
pub fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Unknown".to_string())
}

/// The statuses of the pod's (non-init) containers.
pub fn container_statuses(p: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
}

/// Why a pod has not finished: its phase and the first waiting reason, on one line.
pub fn pending_reason(p: &Pod) -> String {
    let waiting = container_statuses(p)
        .find_map(|c| c.state.as_ref()?.waiting.as_ref())
        .map(|w| {
            one_line(&format!(
                ": {} {}",
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            ))
        })
        .unwrap_or_default();
    format!("phase {}{waiting}", phase(p))
}

/// A DNS-1123 label from `s`: lower-case alphanumerics and dashes, no dash at either end,
/// at most `max` long.
pub fn dns_label(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let mut out = clean.trim_matches('-').to_string();
    out.truncate(max);
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(dns_label("Node_1.example-", 63), "node-1-example");
        assert_eq!(dns_label("abc-def", 4), "abc");
        assert!(dns_label(&"x".repeat(100), 63).len() == 63);
    }
}
