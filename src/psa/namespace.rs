//! Namespace labels to policies, with the admission plugin's rules for missing and
//! invalid labels and for warn defaulting.

use std::collections::BTreeMap;

use super::{Level, Policy, Version};

pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The three Pod Security modes a namespace can label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Audit,
    Warn,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Warn => "warn",
        }
    }
}

/// Cluster defaults for unlabelled namespaces (the `PodSecurityConfiguration` defaults;
/// built in: privileged and latest for every mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    pub enforce: (Level, Version),
    pub audit: (Level, Version),
    pub warn: (Level, Version),
}

impl Default for Defaults {
    fn default() -> Self {
        let p = (Level::Privileged, Version::Latest);
        Defaults {
            enforce: p,
            audit: p,
            warn: p,
        }
    }
}

/// One mode's effective policy and whether a label (rather than a default) set it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModePolicy {
    pub policy: Policy,
    pub labelled: bool,
}

/// The effective policies of a namespace, and any label errors (as the plugin's
/// `pod-security.kubernetes.io/error` audit annotation would report them).
#[derive(Debug, Clone, PartialEq)]
pub struct NamespacePolicy {
    pub enforce: ModePolicy,
    pub audit: ModePolicy,
    pub warn: ModePolicy,
    pub errors: Vec<String>,
}

impl NamespacePolicy {
    pub fn get(&self, mode: Mode) -> &ModePolicy {
        match mode {
            Mode::Enforce => &self.enforce,
            Mode::Audit => &self.audit,
            Mode::Warn => &self.warn,
        }
    }
}

/// Resolve a namespace's labels into its policies, exactly as the admission plugin does:
/// an invalid enforce level fails closed (restricted), an invalid audit or warn level
/// fails open (privileged), an invalid version means latest, and an unlabelled warn
/// follows a stricter explicit enforce.
pub fn from_labels(
    labels: Option<&BTreeMap<String, String>>,
    defaults: &Defaults,
) -> NamespacePolicy {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let mut errors = Vec::new();
    let mut resolve = |mode: Mode, default: (Level, Version), invalid: Level| {
        let level_key = format!("{LABEL_PREFIX}{}", mode.as_str());
        let version_key = format!("{level_key}-version");
        let level_label = labels.get(&level_key);
        let version_label = labels.get(&version_key);
        let level = match level_label {
            None => default.0,
            Some(v) => v.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{level_key}: must be one of privileged, baseline, restricted (got {v:?})"
                ));
                invalid
            }),
        };
        let version = match version_label {
            None => default.1,
            Some(v) => v.parse().unwrap_or_else(|_| {
                errors.push(format!(
                    "{version_key}: must be \"latest\" or \"v1.x\" (got {v:?})"
                ));
                Version::Latest
            }),
        };
        (
            level,
            version,
            level_label.is_some(),
            version_label.is_some(),
        )
    };
    let enforce = resolve(Mode::Enforce, defaults.enforce, Level::Restricted);
    let audit = resolve(Mode::Audit, defaults.audit, Level::Privileged);
    let mut warn = resolve(Mode::Warn, defaults.warn, Level::Privileged);
    if !warn.2 && enforce.2 && enforce.0 > warn.0 {
        warn.0 = enforce.0;
        if !warn.3 {
            warn.1 = enforce.1;
        }
    }
    let mk = |(l, v, labelled, _): (Level, Version, bool, bool)| ModePolicy {
        policy: Policy::new(l, v),
        labelled,
    };
    NamespacePolicy {
        enforce: mk(enforce),
        audit: mk(audit),
        warn: mk(warn),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn unlabelled_namespaces_use_the_defaults() {
        let p = from_labels(None, &Defaults::default());
        assert_eq!(p.enforce.policy.label(), "privileged:latest");
        assert!(!p.enforce.labelled);
    }

    #[test]
    fn invalid_labels_fail_closed_for_enforce_and_open_for_the_others() {
        let l = labels(&[
            ("enforce", "strict"),
            ("audit", "nope"),
            ("warn-version", "1.2"),
        ]);
        let p = from_labels(Some(&l), &Defaults::default());
        assert_eq!(p.enforce.policy.label(), "restricted:latest");
        assert_eq!(p.audit.policy.label(), "privileged:latest");
        assert_eq!(p.errors.len(), 3);
    }

    #[test]
    fn warn_follows_a_stricter_enforce() {
        let l = labels(&[("enforce", "restricted"), ("enforce-version", "v1.30")]);
        let p = from_labels(Some(&l), &Defaults::default());
        assert_eq!(p.warn.policy.label(), "restricted:v1.30");
        let l = labels(&[
            ("enforce", "baseline"),
            ("enforce-version", "v1.30"),
            ("warn-version", "v1.25"),
        ]);
        let p = from_labels(Some(&l), &Defaults::default());
        assert_eq!(p.warn.policy.label(), "baseline:v1.25");
        let l = labels(&[("enforce", "restricted"), ("warn", "baseline")]);
        assert_eq!(
            from_labels(Some(&l), &Defaults::default())
                .warn
                .policy
                .label(),
            "baseline:latest"
        );
    }
}
