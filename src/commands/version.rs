//! `kubectl secmon version`: the plugin's version, platform and what it supports.

use clap::Args;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::report::{Cell, Findings, Report, Table};

#[derive(Debug, Args)]
pub struct VersionArgs {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionReport {
    pub version: String,
    pub platform: String,
    /// The newest Pod Security policy version the engine knows (`latest` evaluates as it).
    pub pod_security_latest: String,
}

impl VersionReport {
    pub fn current() -> VersionReport {
        VersionReport {
            version: concat!("v", env!("CARGO_PKG_VERSION")).to_string(),
            platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            pod_security_latest: format!("v1.{}", crate::psa::LATEST_MINOR),
        }
    }
}

impl Report for VersionReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: vec!["VERSION", "PLATFORM"],
            rows: vec![vec![
                Cell::new(self.version.clone()),
                Cell::new(self.platform.clone()),
            ]],
            ..Default::default()
        };
        if wide {
            t.headers.push("POD SECURITY LATEST");
            t.rows[0].push(Cell::new(self.pod_security_latest.clone()));
        }
        vec![t]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}

pub fn run(g: &GlobalArgs, _args: VersionArgs) -> anyhow::Result<i32> {
    crate::commands::emit(g, &VersionReport::current())
}
