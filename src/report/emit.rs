//! The report of `emit es-template --apply`: each resource PUT to the server and what
//! happened to it.

use serde::Serialize;

use super::{Cell, Findings, Report, Style, Table};
use crate::emit::es::ResourceKind;

/// What `--apply` did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplyResult {
    /// It did not exist and was created.
    Created,
    /// It existed with other content and was replaced.
    Updated,
    /// It existed with this content already: nothing was sent.
    Unchanged,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Updated => "updated",
            ApplyResult::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub kind: ResourceKind,
    pub name: String,
    pub path: String,
    pub digest: String,
    pub result: ApplyResult,
}

/// `emit es-template --apply URL`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub url: String,
    pub resources: Vec<Applied>,
}

impl ApplyReport {
    pub fn new(url: String, resources: Vec<Applied>) -> ApplyReport {
        ApplyReport {
            api_version: "secmon.dev/v1alpha1",
            kind: "ApplyResult",
            url,
            resources,
        }
    }
}

impl Report for ApplyReport {
    fn tables(&self, _wide: bool) -> Vec<Table> {
        let rows = self
            .resources
            .iter()
            .map(|r| {
                let style = match r.result {
                    ApplyResult::Unchanged => Style::Dim,
                    _ => Style::Good,
                };
                vec![
                    Cell::new(r.kind.as_str()),
                    Cell::new(r.name.clone()),
                    Cell::styled(r.result.as_str(), style),
                ]
            })
            .collect();
        vec![Table {
            title: Some(format!("applied to {}", self.url)),
            headers: vec!["KIND", "NAME", "RESULT"],
            rows,
            keep_width: vec![0, 1, 2],
            ..Default::default()
        }]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}
