//! A real local control plane for integration tests: `tests/cluster/up` starts etcd,
//! kube-apiserver (RBAC, PodSecurity admission) and kube-controller-manager on loopback,
//! once per test binary, and stops them when the test process exits. Tests talk to it
//! through the same kube client code users get (`--kubeconfig` of the admin kubeconfig).
//!
//! Missing prerequisites (Go, or binaries not built yet and no network) fail under
//! `CI=true` and skip loudly elsewhere.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub struct Cluster {
    pub state: PathBuf,
    pub kubeconfig: PathBuf,
    pub api_port: u16,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Cluster {
    /// The test binary's control plane, started on first use.
    pub fn shared() -> Option<&'static Cluster> {
        CLUSTER.get_or_init(Cluster::start).as_ref()
    }

    fn start() -> Option<Cluster> {
        let state = std::env::temp_dir().join(format!("secmon-cluster-{}", std::process::id()));
        let out = Command::new(repo().join("tests/cluster/up"))
            .arg(&state)
            .arg("--watch")
            .arg(std::process::id().to_string())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                super::require_or_skip(&format!("cannot run tests/cluster/up: {e}"));
                return None;
            }
        };
        if !out.status.success() {
            super::require_or_skip(&format!(
                "the local control plane did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return None;
        }
        let kubeconfig = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        let env = std::fs::read_to_string(state.join("env")).unwrap_or_default();
        let api_port = env
            .lines()
            .find_map(|l| l.strip_prefix("API_PORT="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Some(Cluster {
            state,
            kubeconfig,
            api_port,
        })
    }

    /// Run the plugin against this cluster: `kubectl-secmon --kubeconfig K ARGS…`.
    pub fn secmon(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl-secmon")
    }

    /// A kube client for the admin user, from the kubeconfig, as the plugin builds it.
    pub async fn client(&self) -> kube::Client {
        let cfg = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(cfg, &Default::default())
            .await
            .expect("config");
        kube::Client::try_from(config).expect("client")
    }

    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }

    pub fn stop(&self) {
        let _ = Command::new(repo().join("tests/cluster/down"))
            .arg(&self.state)
            .status();
    }
}

/// Apply a YAML/JSON manifest with server-side apply as the test's own field manager.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::discovery::{ApiResource, Discovery};
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for doc in yaml.split("\n---") {
        if doc.trim().is_empty() {
            continue;
        }
        let obj: DynamicObject = serde_saphyr::from_str(doc).expect("manifest");
        let gvk = obj
            .types
            .as_ref()
            .map(|t| kube::api::GroupVersionKind::try_from(t).expect("gvk"))
            .expect("apiVersion and kind");
        let (ar, caps): (ApiResource, _) = discovery.resolve_gvk(&gvk).expect("known kind");
        let api: Api<DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced {
            Api::namespaced_with(
                client.clone(),
                obj.metadata.namespace.as_deref().unwrap_or("default"),
                &ar,
            )
        } else {
            Api::all_with(client.clone(), &ar)
        };
        let name = obj.metadata.name.clone().expect("name");
        api.patch(
            &name,
            &PatchParams::apply("secmon-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"));
    }
}

/// Path helper for fixtures read by cluster tests.
pub fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}
