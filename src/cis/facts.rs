//! What the collector found on a node, as plain data: the running components (argv,
//! environment, located files, config layers) and the stat of every file the
//! benchmark reads. The evaluation reads only this.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::argv::Args;
use super::profile::{Component, FileKind};

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    pub node: String,
    pub root: String,
    /// Components whose process runs on the node.
    pub components: BTreeMap<Component, ComponentFacts>,
    /// Files by [`super::profile::FileRef::key`].
    pub files: BTreeMap<String, FileSet>,
    /// Kubernetes versions seen (e.g. from a static pod's image tag), with where.
    pub versions: Vec<(String, String)>,
    /// Things the collector could not read but that did not stop it.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentFacts {
    pub pid: u32,
    pub argv: Vec<String>,
    #[serde(skip)]
    pub args: Args,
    /// The process environment, or why it could not be read.
    pub env: Result<BTreeMap<String, String>, String>,
    /// Where each of its files is, and how we know.
    pub paths: BTreeMap<FileKind, Located>,
    pub config: ConfigFacts,
}

/// A located file and the reason we looked there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub path: String,
    /// e.g. `--config flag`, `candidate path`, `default path`.
    pub how: String,
}

/// The component's configuration file(s), lowest precedence first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ConfigFacts {
    /// The component uses no config file.
    None,
    /// A config file is in use but could not be read or parsed.
    Error {
        message: String,
    },
    Layers {
        layers: Vec<ConfigLayer>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigLayer {
    /// `config file /var/lib/kubelet/config.yaml` or `drop-in /etc/…/10-x.conf`.
    pub source: String,
    #[serde(skip)]
    pub value: Value,
}

/// The files behind one file reference.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum FileSet {
    /// Nothing exists where we looked.
    Missing {
        looked_at: Vec<String>,
    },
    /// The reference's component is not on this node.
    NoComponent,
    Found {
        files: Vec<FileFact>,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FileFact {
    pub path: String,
    /// How the path was chosen.
    pub how: String,
    pub stat: Result<Stat, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stat {
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub is_dir: bool,
}

impl Stat {
    pub fn mode_octal(&self) -> String {
        format!("{:o}", self.mode)
    }

    pub fn owner(&self) -> String {
        format!(
            "{}:{}",
            self.user.clone().unwrap_or_else(|| self.uid.to_string()),
            self.group.clone().unwrap_or_else(|| self.gid.to_string())
        )
    }
}
