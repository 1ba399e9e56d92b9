//! What the API server holds that section 5 (policies) and the remote control-plane checks
//! judge, as plain data ([`ClusterFacts`]), and the collector that reads it: one paginated
//! LIST per kind through [`crate::kube::list`], so a missing permission is one line naming
//! the verb and resource. The evaluation ([`super::policies`], [`super::mirror`]) reads
//! only the facts and is tested on facts built in code.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::kube::list::{self, ApiFailure, KindRef, NAMESPACES, WORKLOAD_KINDS};

/// Namespaces the control plane owns: their workloads and service accounts are the
/// cluster's own and are excluded from section 5 findings (the report says so).
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Everything section 5 reads, typed where the judgement needs types.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// The API server's address, for the report.
    pub server: String,
    /// `major.minor` from the API server's /version, e.g. `1.36`.
    pub version: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub cluster_roles: Vec<ClusterRole>,
    pub roles: Vec<Role>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub role_bindings: Vec<RoleBinding>,
    pub service_accounts: Vec<ServiceAccount>,
    /// Pods and pod-template kinds as the API returns them (`apiVersion`, `kind` set).
    pub workloads: Vec<Value>,
    pub network_policies: Vec<NetworkPolicy>,
    /// Admission policy objects, as `Kind/name` (ValidatingAdmissionPolicies and
    /// validating/mutating webhook configurations).
    pub admission: Vec<String>,
}

const RBAC: &str = "rbac.authorization.k8s.io";
pub const CLUSTER_ROLES: KindRef = KindRef::new(RBAC, "v1", "ClusterRole", "clusterroles", false);
pub const ROLES: KindRef = KindRef::new(RBAC, "v1", "Role", "roles", true);
pub const CLUSTER_ROLE_BINDINGS: KindRef = KindRef::new(
    RBAC,
    "v1",
    "ClusterRoleBinding",
    "clusterrolebindings",
    false,
);
pub const ROLE_BINDINGS: KindRef = KindRef::new(RBAC, "v1", "RoleBinding", "rolebindings", true);
pub const SERVICE_ACCOUNTS: KindRef =
    KindRef::new("", "v1", "ServiceAccount", "serviceaccounts", true);
pub const NETWORK_POLICIES: KindRef = KindRef::new(
    "networking.k8s.io",
    "v1",
    "NetworkPolicy",
    "networkpolicies",
    true,
);
const ADMISSION: &str = "admissionregistration.k8s.io";
pub const ADMISSION_KINDS: [KindRef; 3] = [
    KindRef::new(
        ADMISSION,
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
    ),
    KindRef::new(
        ADMISSION,
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    KindRef::new(
        ADMISSION,
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
];

async fn typed<T: DeserializeOwned>(
    client: &kube::Client,
    kind: &KindRef,
) -> Result<Vec<T>, ApiFailure> {
    list::list_all(client, kind, None, |_| {})
        .await?
        .into_iter()
        .map(|v| {
            serde_json::from_value(v)
                .map_err(|e| ApiFailure(format!("cannot read a {} from the API: {e}", kind.kind)))
        })
        .collect()
}

/// The API server's `major.minor`, if /version answers.
pub async fn server_minor(client: &kube::Client) -> Option<String> {
    let info = client.apiserver_version().await.ok()?;
    let minor: String = info
        .minor
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(format!("{}.{minor}", info.major))
}

/// Read every kind section 5 judges, cluster-wide, one paginated LIST per kind. The first
/// refusal stops the read with a one-line error naming the missing permission.
pub async fn collect(client: &kube::Client, server: String) -> Result<ClusterFacts, ApiFailure> {
    let mut f = ClusterFacts {
        server,
        version: server_minor(client).await,
        namespaces: typed(client, &NAMESPACES).await?,
        cluster_roles: typed(client, &CLUSTER_ROLES).await?,
        roles: typed(client, &ROLES).await?,
        cluster_role_bindings: typed(client, &CLUSTER_ROLE_BINDINGS).await?,
        role_bindings: typed(client, &ROLE_BINDINGS).await?,
        service_accounts: typed(client, &SERVICE_ACCOUNTS).await?,
        network_policies: typed(client, &NETWORK_POLICIES).await?,
        ..Default::default()
    };
    for kind in &WORKLOAD_KINDS {
        f.workloads
            .extend(list::list_all(client, kind, None, |_| {}).await?);
    }
    for kind in &ADMISSION_KINDS {
        for v in list::list_all(client, kind, None, |_| {}).await? {
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            f.admission.push(format!("{}/{name}", kind.kind));
        }
    }
    Ok(f)
}
