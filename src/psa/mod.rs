//! The Pod Security Standards engine: pure, no I/O.
//!
//! Evaluates a pod's metadata and spec against a level (`privileged`, `baseline`,
//! `restricted`) at a policy version (`v1.0` … `v1.37`, or `latest`) exactly as the
//! Kubernetes `PodSecurity` admission plugin does: the same checks in the same order,
//! each at its newest variant at or below the requested version, with upstream's reason
//! and detail strings word for word. The aggregated message is what the API server
//! prints (`would violate PodSecurity "restricted:latest": …`).
//!
//! Callers hand in typed `k8s-openapi` objects; [`workload`] finds the pod template of
//! the workload kinds and applies the API server's defaulting that changes verdicts.

mod checks;
pub mod fix;
pub mod namespace;
mod policy;
pub mod workload;

pub use checks::CheckId;
pub use policy::{LATEST_MINOR, Level, Policy, PolicyError, Version};

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// One failed check: upstream's short reason, its detail, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The upstream check ID, e.g. `allowPrivilegeEscalation`.
    pub check: CheckId,
    /// Upstream's `ForbiddenReason`, e.g. `allowPrivilegeEscalation != false`.
    pub reason: &'static str,
    /// Upstream's `ForbiddenDetail`, e.g. `container "app" must set …`.
    pub detail: String,
    /// The concrete change that satisfies the check (field and value), or why none is safe.
    pub fix: String,
}

/// The outcome of evaluating one pod (or pod template) against one policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    pub violations: Vec<Violation>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Upstream's aggregated detail: `reason (detail), reason (detail)`.
    pub fn forbidden_detail(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(v.reason);
            if !v.detail.is_empty() {
                out.push_str(" (");
                out.push_str(&v.detail);
                out.push(')');
            }
        }
        out
    }

    /// Upstream's short form: the reasons only, joined with `, `.
    pub fn forbidden_reason(&self) -> String {
        let reasons: Vec<&str> = self.violations.iter().map(|v| v.reason).collect();
        reasons.join(", ")
    }

    /// The warning text the API server returns for this policy:
    /// `would violate PodSecurity "restricted:latest": …`. Empty when allowed.
    pub fn warning(&self, policy: &Policy) -> String {
        if self.allowed() {
            return String::new();
        }
        format!(
            "would violate PodSecurity \"{}\": {}",
            policy.label(),
            self.forbidden_detail()
        )
    }
}

/// Evaluate a pod's metadata and spec against a policy. Pure and allocation-free when the
/// pod is allowed.
pub fn evaluate(policy: &Policy, meta: &ObjectMeta, spec: &PodSpec) -> Evaluation {
    let mut violations = Vec::new();
    for check in policy.checks() {
        if let Some(v) = check.run(meta, spec) {
            violations.push(v);
        }
    }
    Evaluation { violations }
}

/// Quote a list the way upstream's `joinQuote` does: `"a", "b"` (no escaping).
pub(crate) fn join_quote<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(item.as_ref());
        out.push('"');
    }
    out
}

/// Upstream's `pluralize`: the singular form only for exactly one.
pub(crate) fn pluralize(singular: &'static str, plural: &'static str, n: usize) -> &'static str {
    if n == 1 { singular } else { plural }
}

/// Go's `%q` for a string (`strconv.Quote`), used where upstream formats with `%q`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("unconfined"), "\"unconfined\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("é"), "\"é\"");
    }

    #[test]
    fn join_quote_and_pluralize() {
        assert_eq!(join_quote(["a", "b"]), "\"a\", \"b\"");
        assert_eq!(join_quote(Vec::<String>::new()), "");
        assert_eq!(pluralize("container", "containers", 1), "container");
        assert_eq!(pluralize("container", "containers", 0), "containers");
        assert_eq!(pluralize("container", "containers", 2), "containers");
    }
}
