//! Reports of `kubectl secmon install`, `uninstall` and `status`, and the manifests that
//! `install --dry-run=client -o yaml|json` prints for GitOps.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;

use super::{Cell, Finding, Findings, Format, RenderError, Report, Severity, Style, Table};
use crate::deploy::SensorKind;
use crate::deploy::status::{NodeStatus, SensorState};
use crate::kube::apply::Action;

const API_VERSION: &str = "secmon.dev/v1alpha1";

/// `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// Print or list the objects; nothing is sent to the cluster
    Client,
    /// Send the objects for the server to validate and admit; nothing is stored
    Server,
}

/// One object `install` applied or `uninstall` deleted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `None` with a client dry run: nothing was asked of the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// False when a server dry run could not send it (its namespace does not exist yet).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_validated: bool,
}

/// What `install` or `uninstall` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// `secmon` or `falco`; absent for `uninstall`, which removes both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor: Option<SensorKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    pub objects: Vec<ObjectResult>,
    /// False when the run stopped at an error: the objects listed are those handled
    /// before it; running the command again finishes the job.
    pub complete: bool,
    /// Lines for the reader (what was skipped and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ApplyReport {
    pub fn install(sensor: SensorKind, image: String, dry_run: Option<DryRun>) -> ApplyReport {
        ApplyReport {
            api_version: API_VERSION,
            kind: "InstallResult",
            sensor: Some(sensor),
            image: Some(image),
            dry_run,
            objects: Vec::new(),
            complete: true,
            notes: Vec::new(),
        }
    }

    pub fn uninstall(dry_run: Option<DryRun>) -> ApplyReport {
        ApplyReport {
            api_version: API_VERSION,
            kind: "UninstallResult",
            sensor: None,
            image: None,
            dry_run,
            objects: Vec::new(),
            complete: true,
            notes: Vec::new(),
        }
    }

    fn action_text(&self, o: &ObjectResult) -> String {
        let base = match (o.action, self.dry_run) {
            (None, _) => "apply".to_string(),
            (Some(a), _) => a.as_str().to_string(),
        };
        match self.dry_run {
            Some(DryRun::Client) => format!("{base} (client dry run)"),
            Some(DryRun::Server) if o.not_validated => {
                format!("{base} (server dry run, not validated)")
            }
            Some(DryRun::Server) => format!("{base} (server dry run)"),
            None => base,
        }
    }
}

impl Report for ApplyReport {
    fn tables(&self, _wide: bool) -> Vec<Table> {
        let mut t = Table {
            headers: vec!["KIND", "NAME", "NAMESPACE", "ACTION"],
            ..Table::default()
        };
        for o in &self.objects {
            let style = match o.action {
                Some(Action::Created | Action::Configured | Action::Deleted) => Style::Good,
                _ => Style::Plain,
            };
            t.rows.push(vec![
                Cell::new(o.kind.clone()),
                Cell::new(o.name.clone()),
                Cell::new(o.namespace.clone().unwrap_or_default()),
                Cell::styled(self.action_text(o), style),
            ]);
        }
        t.footer = self.notes.clone();
        if !self.complete {
            t.footer.push(
                "incomplete: stopped at the error below; run the command again to finish"
                    .to_string(),
            );
        }
        vec![t]
    }

    fn findings(&self) -> Findings {
        Findings::default()
    }
}

/// `status`: the sensor on every node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub sensor: SensorKind,
    pub namespace: String,
    /// Whether the DaemonSet exists.
    pub installed: bool,
    pub nodes: Vec<NodeStatus>,
}

impl StatusReport {
    pub fn new(sensor: SensorKind, installed: bool, nodes: Vec<NodeStatus>) -> StatusReport {
        StatusReport {
            api_version: API_VERSION,
            kind: "SensorStatus",
            sensor,
            namespace: sensor.namespace().to_string(),
            installed,
            nodes,
        }
    }

    fn count(&self, s: SensorState) -> usize {
        self.nodes.iter().filter(|n| n.state == s).count()
    }
}

fn opt_num<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl Report for StatusReport {
    fn tables(&self, wide: bool) -> Vec<Table> {
        let mut headers = vec![
            "NODE", "SENSOR", "READY", "VERSION", "RESTARTS", "EVENTS", "DROPS", "ALERTS",
        ];
        if wide {
            headers.insert(2, "POD");
        }
        headers.push("MESSAGE");
        let mut t = Table {
            headers,
            keep_width: vec![0],
            ..Table::default()
        };
        for n in &self.nodes {
            let style = match n.state {
                SensorState::Ready => Style::Good,
                SensorState::NotApplicable => Style::Dim,
                _ => Style::Bad,
            };
            let ready = match n.state {
                SensorState::Ready => "yes",
                SensorState::NotReady => "no",
                SensorState::Missing => "-",
                SensorState::NotApplicable => "n/a",
            };
            let m = n.metrics.as_ref();
            let mut row = vec![
                Cell::new(n.node.clone()),
                Cell::styled(n.state.as_str(), style),
                Cell::styled(ready, style),
                Cell::new(n.version.clone().unwrap_or_else(|| "-".to_string())),
                Cell::new(opt_num(n.restarts)),
                Cell::new(opt_num(m.map(|m| m.events))),
                Cell::new(opt_num(m.map(|m| m.drops))),
                Cell::new(opt_num(m.map(|m| m.alerts))),
                Cell::new(n.message.clone()),
            ];
            if wide {
                row.insert(2, Cell::new(n.pod.clone().unwrap_or_default()));
            }
            t.rows.push(row);
        }
        let ready = self.count(SensorState::Ready);
        let watched = self.nodes.len() - self.count(SensorState::NotApplicable);
        t.footer.push(format!(
            "{ready} of {watched} node(s) have a ready sensor ({} not ready, {} missing)",
            self.count(SensorState::NotReady),
            self.count(SensorState::Missing)
        ));
        if !self.installed {
            t.footer.push(format!(
                "the sensor is not installed (no DaemonSet {}/{}): run `kubectl secmon install{}`",
                self.sensor.namespace(),
                self.sensor.app(),
                if self.sensor == SensorKind::Falco {
                    " --sensor falco"
                } else {
                    ""
                }
            ));
        }
        vec![t]
    }

    /// A node without a ready sensor is a high finding: nobody watches it.
    fn findings(&self) -> Findings {
        let results = self
            .nodes
            .iter()
            .filter(|n| n.state.is_problem())
            .map(|n| Finding {
                rule_id: format!("SENSOR-{}", n.state.as_str().to_ascii_uppercase()),
                severity: Severity::High,
                message: format!(
                    "node {}: sensor {}{}",
                    n.node,
                    n.state.as_str(),
                    if n.message.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", n.message)
                    }
                ),
                location: None,
                subject: format!("Node/{}", n.node),
            })
            .collect();
        Findings {
            rules: Vec::new(),
            results,
        }
    }
}

/// Write manifests for GitOps: YAML documents separated by `---` (through the one YAML
/// writer), or JSON as a `v1` `List`.
pub fn write_manifests(
    objects: &[Value],
    format: Format,
    out: &mut dyn Write,
) -> Result<(), RenderError> {
    match format {
        Format::Yaml => {
            for obj in objects {
                let text = super::to_yaml(obj)?;
                let nl = if text.ends_with('\n') { "" } else { "\n" };
                write!(out, "---\n{text}{nl}")?;
            }
        }
        Format::Json => {
            let list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "List",
                "items": objects,
            });
            serde_json::to_writer_pretty(&mut *out, &list)
                .map_err(|e| RenderError::Serialize(e.to_string()))?;
            writeln!(out)?;
        }
        other => {
            let name = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(RenderError::Unsupported(format!(
                "-o {name} cannot print manifests: use -o yaml or -o json"
            )));
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{RenderOptions, render};

    #[test]
    fn install_table_has_kind_name_namespace_action() {
        let mut r = ApplyReport::install(SensorKind::Secmon, "img".into(), None);
        r.objects.push(ObjectResult {
            kind: "Namespace".into(),
            name: "secmon".into(),
            namespace: None,
            action: Some(Action::Created),
            not_validated: false,
        });
        r.objects.push(ObjectResult {
            kind: "DaemonSet".into(),
            name: "secmon-sensor".into(),
            namespace: Some("secmon".into()),
            action: Some(Action::Unchanged),
            not_validated: false,
        });
        let mut out = Vec::new();
        render(
            &r,
            RenderOptions {
                format: Format::Table,
                color: false,
            },
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["KIND", "NAME", "NAMESPACE", "ACTION"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["DaemonSet", "secmon-sensor", "secmon", "unchanged"]
        );
    }

    #[test]
    fn manifests_are_yaml_documents_or_a_json_list() {
        let objs = vec![
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}),
        ];
        let mut out = Vec::new();
        write_manifests(&objs, Format::Yaml, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("---\n").count(), 2);
        assert!(text.contains("name: b"));
        let mut out = Vec::new();
        write_manifests(&objs, Format::Json, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["kind"], "List");
        assert!(write_manifests(&objs, Format::Sarif, &mut Vec::new()).is_err());
    }
}
