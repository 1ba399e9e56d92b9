//! Levels, policy versions, and the set of checks a `level:version` runs.

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::Violation;
use super::checks::{CheckFn, CheckId, REGISTRY};

/// The newest policy version at which any check changes; `latest` and anything newer
/// evaluate as this version (the v1.37 sysctls change, as in upstream master).
pub const LATEST_MINOR: u32 = 37;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// The next stricter level, if any.
    pub fn stricter(self) -> Option<Level> {
        match self {
            Level::Privileged => Some(Level::Baseline),
            Level::Baseline => Some(Level::Restricted),
            Level::Restricted => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a level or version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid Pod Security level {0:?}: must be one of privileged, baseline, restricted")]
    Level(String),
    #[error("invalid Pod Security version {0:?}: must be \"latest\" or \"v1.x\"")]
    Version(String),
}

impl FromStr for Level {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(PolicyError::Level(s.to_string())),
        }
    }
}

/// A policy version: `latest` or `v1.N` (N may exceed the newest known version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Latest,
    V1(u32),
}

impl Version {
    /// The minor version the checks are evaluated at (clamped to [`LATEST_MINOR`]).
    pub fn effective_minor(self) -> u32 {
        match self {
            Version::Latest => LATEST_MINOR,
            Version::V1(m) => m.min(LATEST_MINOR),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::V1(m) => write!(f, "v1.{m}"),
        }
    }
}

impl FromStr for Version {
    type Err = PolicyError;
    /// Accepts `latest` or `^v1\.(0|[1-9][0-9]*)$`, as the admission plugin does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let bad = || PolicyError::Version(s.to_string());
        let minor = s.strip_prefix("v1.").ok_or_else(bad)?;
        let valid = !minor.is_empty()
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || !minor.starts_with('0'));
        if !valid {
            return Err(bad());
        }
        minor.parse::<u32>().map(Version::V1).map_err(|_| bad())
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One check at the variant chosen for a policy version.
#[derive(Clone, Copy)]
pub(crate) struct ActiveCheck {
    pub id: CheckId,
    run: CheckFn,
}

impl ActiveCheck {
    pub fn run(&self, meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
        (self.run)(meta, spec).map(|mut v| {
            v.check = self.id;
            v
        })
    }
}

/// A `level:version` with its active checks resolved once, in upstream's output order.
#[derive(Clone)]
pub struct Policy {
    level: Level,
    version: Version,
    checks: Vec<ActiveCheck>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("level", &self.level)
            .field("version", &self.version)
            .field("checks", &self.check_ids())
            .finish()
    }
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.level == other.level && self.version == other.version
    }
}

impl Policy {
    pub fn new(level: Level, version: Version) -> Policy {
        let minor = version.effective_minor();
        let mut checks = Vec::new();
        if level != Level::Privileged {
            let mut overridden: Vec<CheckId> = Vec::new();
            let mut candidates = Vec::new();
            for entry in REGISTRY {
                if entry.level == Level::Restricted && level != Level::Restricted {
                    continue;
                }
                let Some(variant) = entry.variants.iter().rev().find(|v| v.since <= minor) else {
                    continue;
                };
                if level == Level::Restricted {
                    overridden.extend_from_slice(variant.overrides);
                }
                candidates.push(ActiveCheck {
                    id: entry.id,
                    run: variant.run,
                });
            }
            checks = candidates
                .into_iter()
                .filter(|c| !overridden.contains(&c.id))
                .collect();
        }
        Policy {
            level,
            version,
            checks,
        }
    }

    /// Parse `level` and `version` strings (`restricted`, `v1.30`).
    pub fn parse(level: &str, version: &str) -> Result<Policy, PolicyError> {
        Ok(Policy::new(level.parse()?, version.parse()?))
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// `<level>:<version>` as the API server echoes it (not clamped).
    pub fn label(&self) -> String {
        format!("{}:{}", self.level, self.version)
    }

    pub(crate) fn checks(&self) -> &[ActiveCheck] {
        &self.checks
    }

    /// The IDs of the checks this policy runs, in output order.
    pub fn check_ids(&self) -> Vec<CheckId> {
        self.checks.iter().map(|c| c.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckId::*;

    fn ids(level: &str, version: &str) -> Vec<CheckId> {
        Policy::parse(level, version).unwrap().check_ids()
    }

    #[test]
    fn versions_parse_like_upstream() {
        assert_eq!("latest".parse::<Version>(), Ok(Version::Latest));
        assert_eq!("v1.0".parse::<Version>(), Ok(Version::V1(0)));
        assert_eq!("v1.40".parse::<Version>(), Ok(Version::V1(40)));
        for bad in ["v1.01", "1.2", "v2.0", "v1.", "v1.x", "", "Latest", "v1.-1"] {
            assert!(bad.parse::<Version>().is_err(), "{bad} should be refused");
        }
        assert_eq!(Version::V1(40).effective_minor(), LATEST_MINOR);
        assert!("Restricted".parse::<Level>().is_err());
    }

    #[test]
    fn check_sets_match_the_registry_table() {
        assert!(ids("privileged", "latest").is_empty());
        let baseline_old = vec![
            AppArmorProfile,
            CapabilitiesBaseline,
            HostNamespaces,
            HostPathVolumes,
            HostPorts,
            Privileged,
            ProcMount,
            SeLinuxOptions,
            SeccompProfileBaseline,
            Sysctls,
            WindowsHostProcess,
        ];
        assert_eq!(ids("baseline", "v1.0"), baseline_old);
        assert_eq!(ids("baseline", "v1.33"), baseline_old);
        assert_eq!(ids("baseline", "v1.34").len(), 12);
        assert_eq!(ids("restricted", "v1.0").len(), 12);
        assert_eq!(ids("restricted", "v1.8").len(), 13);
        assert_eq!(ids("restricted", "v1.19").len(), 13);
        assert_eq!(ids("restricted", "v1.22").len(), 13);
        assert_eq!(ids("restricted", "v1.23").len(), 14);
        assert_eq!(ids("restricted", "v1.34").len(), 15);
        assert_eq!(
            ids("restricted", "latest"),
            vec![
                AppArmorProfile,
                HostNamespaces,
                HostPorts,
                HostProbesAndHostLifecycle,
                Privileged,
                SeLinuxOptions,
                Sysctls,
                WindowsHostProcess,
                AllowPrivilegeEscalation,
                CapabilitiesRestricted,
                ProcMountRestricted,
                RestrictedVolumes,
                RunAsNonRoot,
                RunAsUser,
                SeccompProfileRestricted,
            ]
        );
        assert!(ids("restricted", "v1.21").contains(&CapabilitiesBaseline));
        assert!(ids("restricted", "v1.18").contains(&SeccompProfileBaseline));
        assert!(ids("restricted", "v1.34").contains(&ProcMount));
    }

    #[test]
    fn label_echoes_the_requested_version() {
        assert_eq!(
            Policy::parse("restricted", "v1.40").unwrap().label(),
            "restricted:v1.40"
        );
    }
}
