//! The node sensor in a cluster: what `kubectl secmon install` puts there, and how
//! `status` and `alerts` read it back.
//!
//! - [`manifests`]: the objects `install` applies (ours, or upstream Falco with
//!   `--sensor falco`), as a pure function of the options, and the set of objects
//!   `uninstall` may delete.
//! - [`status`]: per-node sensor health from Nodes, the sensor's Pods and each pod's
//!   `/metrics` text; pure.
//! - [`logs`]: the sensor pods' log streams merged into one stream of alerts, over any
//!   `AsyncBufRead` (the API server's log streams, or recorded ones in tests).
//!
//! The API calls themselves live in `crate::kube`; the commands glue the two.

pub mod logs;
pub mod manifests;
pub mod status;

use serde::Serialize;

/// The field manager of every server-side apply `install` makes.
pub const FIELD_MANAGER: &str = "kubectl-secmon";
/// The label that marks every object `install` creates; `uninstall` deletes only objects
/// that carry it (and have a name `install` uses).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "kubectl-secmon";
/// The label naming the application: the sensor's Pods and Service are selected by it.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label carrying the version on the DaemonSet and its pods.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
/// The port the sensor (and Falco's web server) serves `/metrics` and `/healthz` on.
pub const METRICS_PORT: u16 = 8765;
/// Upstream Falco's pinned release, installed by `--sensor falco`.
pub const FALCO_VERSION: &str = "0.44.1";

/// Which sensor runs on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SensorKind {
    /// kubectl-secmon's own sensor (`kubectl-secmon sensor`)
    Secmon,
    /// Upstream Falco with the modern eBPF engine, for teams that already run Falco
    Falco,
}

impl SensorKind {
    /// Both kinds, for `uninstall`.
    pub const ALL: [SensorKind; 2] = [SensorKind::Secmon, SensorKind::Falco];

    /// The namespace the DaemonSet and its objects live in.
    pub fn namespace(self) -> &'static str {
        match self {
            SensorKind::Secmon => crate::sensor::metrics::SENSOR_NAMESPACE,
            SensorKind::Falco => "falco",
        }
    }

    /// The DaemonSet's name, and the value of [`NAME_LABEL`] on its pods.
    pub fn app(self) -> &'static str {
        match self {
            SensorKind::Secmon => crate::sensor::metrics::SENSOR_NAME,
            SensorKind::Falco => "falco",
        }
    }

    /// The container running the sensor in each pod.
    pub fn container(self) -> &'static str {
        match self {
            SensorKind::Secmon => "sensor",
            SensorKind::Falco => "falco",
        }
    }

    /// The label selector of the sensor's pods.
    pub fn selector(self) -> String {
        format!("{NAME_LABEL}={}", self.app())
    }

    /// The image installed when `--image` is not given.
    pub fn default_image(self) -> String {
        match self {
            SensorKind::Secmon => default_image(),
            SensorKind::Falco => format!("falcosecurity/falco:{FALCO_VERSION}"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Secmon => "secmon",
            SensorKind::Falco => "falco",
        }
    }
}

/// The sensor image matching this build: `ghcr.io/kubectl-secmon/sensor:v<version>`.
pub fn default_image() -> String {
    format!(
        "ghcr.io/kubectl-secmon/sensor:v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The tag of an image reference (`repo:tag`, `repo:tag@sha256:…`); `None` for a bare
/// repository or a digest only. A `:` in a registry's `host:port` is not a tag.
pub fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':')
        .map(|(_, tag)| tag)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("ghcr.io/a/b:v1.2.3"), Some("v1.2.3"));
        assert_eq!(image_tag("registry:5000/a/b"), None);
        assert_eq!(image_tag("registry:5000/a/b:1.0"), Some("1.0"));
        assert_eq!(image_tag("a/b:1.0@sha256:abc"), Some("1.0"));
        assert_eq!(image_tag("a/b@sha256:abc"), None);
        assert_eq!(image_tag("falcosecurity/falco:0.44.1"), Some("0.44.1"));
        assert!(default_image().ends_with(&format!(":v{}", env!("CARGO_PKG_VERSION"))));
    }
}
