//! The one kube client constructor, from the global flags with kubectl's semantics:
//! `--kubeconfig` reads only that file; otherwise the `KUBECONFIG` list is merged (first
//! file to set a value wins) or `~/.kube/config` is read; with neither, the in-cluster
//! service-account config. `--context`, `--cluster`, `--user` override the kubeconfig's
//! choices, `-n` sets the default namespace, `--request-timeout` bounds every request.
//!
//! Also here: API errors for people and retries ([`errors`]), server-side apply and
//! deletion of what `install` manages ([`apply`]), and reading the installed sensor back
//! ([`sensor`]).

pub mod apply;
pub mod errors;
pub mod pods;
pub mod sensor;

pub mod list;

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::GlobalArgs;

/// Why no client could be configured: one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("invalid kubeconfig: {0}")]
    Config(#[source] kube::config::KubeconfigError),
    #[error(
        "no kubeconfig found (set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config) and not running inside a cluster"
    )]
    NoConfig,
    #[error("in-cluster configuration: {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

fn options(g: &GlobalArgs) -> KubeConfigOptions {
    KubeConfigOptions {
        context: g.context.clone(),
        cluster: g.cluster.clone(),
        user: g.user.clone(),
    }
}

/// The kubeconfig files kubectl would read, in order: `KUBECONFIG` entries (empty ones
/// ignored), else `~/.kube/config` if it exists.
pub fn kubeconfig_paths(kubeconfig_env: Option<&str>, home: Option<&Path>) -> Vec<PathBuf> {
    if let Some(list) = kubeconfig_env {
        let sep = if cfg!(windows) { ';' } else { ':' };
        let paths: Vec<PathBuf> = list
            .split(sep)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if !paths.is_empty() {
            return paths;
        }
    }
    home.map(|h| h.join(".kube/config"))
        .filter(|p| p.exists())
        .into_iter()
        .collect()
}

/// Read and merge kubeconfig files, the first file to set a value winning.
pub fn read_kubeconfigs(paths: &[PathBuf]) -> Result<Kubeconfig, ClientError> {
    let mut merged: Option<Kubeconfig> = None;
    for p in paths {
        if !p.exists() {
            continue; // kubectl ignores missing KUBECONFIG entries
        }
        let kc = Kubeconfig::read_from(p).map_err(|source| ClientError::Kubeconfig {
            path: p.display().to_string(),
            source,
        })?;
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).map_err(ClientError::Config)?,
        });
    }
    merged.ok_or(ClientError::NoConfig)
}

/// Build the client configuration from the global flags.
pub async fn config(g: &GlobalArgs) -> Result<kube::Config, ClientError> {
    let opts = options(g);
    let mut cfg = if let Some(path) = &g.kubeconfig {
        let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })?;
        kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(ClientError::Config)?
    } else {
        let env = std::env::var("KUBECONFIG").ok();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let paths = kubeconfig_paths(env.as_deref(), home.as_deref());
        match read_kubeconfigs(&paths) {
            Ok(kc) => kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(ClientError::Config)?,
            Err(ClientError::NoConfig) => {
                if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
                    return Err(ClientError::NoConfig);
                }
                kube::Config::incluster().map_err(ClientError::InCluster)?
            }
            Err(e) => return Err(e),
        }
    };
    if let Some(ns) = &g.namespace {
        cfg.default_namespace = ns.clone();
    }
    if let Some(t) = g.request_timeout.0 {
        cfg.connect_timeout = Some(t);
        cfg.read_timeout = Some(t);
        cfg.write_timeout = Some(t);
    }
    Ok(cfg)
}

/// A client for the cluster the global flags select.
pub async fn client(g: &GlobalArgs) -> Result<kube::Client, ClientError> {
    let cfg = config(g).await?;
    kube::Client::try_from(cfg).map_err(ClientError::Client)
}

/// A runtime for commands that talk to a cluster.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
