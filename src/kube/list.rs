//! Reading objects from a live cluster: one paginated LIST per kind and scope. Transient
//! failures are retried and API errors described by the one mechanism in
//! [`super::errors`] (for 403s: which verb on which resource is missing).

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::errors::{self, ApiError, Failure, Op};

/// A kind the plugin reads, by group/version/kind and plural resource name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl KindRef {
    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> KindRef {
        KindRef {
            group,
            version,
            kind,
            plural,
            namespaced,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// `plural.group` as RBAC names it (`pods`, `deployments.apps`).
    pub fn rbac_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

pub const NAMESPACES: KindRef = KindRef::new("", "v1", "Namespace", "namespaces", false);

/// Every kind Pod Security evaluates: pods and the kinds with a pod template.
pub const WORKLOAD_KINDS: [KindRef; 9] = [
    KindRef::new("", "v1", "Pod", "pods", true),
    KindRef::new(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
    ),
    KindRef::new("", "v1", "PodTemplate", "podtemplates", true),
    KindRef::new("apps", "v1", "ReplicaSet", "replicasets", true),
    KindRef::new("apps", "v1", "Deployment", "deployments", true),
    KindRef::new("apps", "v1", "StatefulSet", "statefulsets", true),
    KindRef::new("apps", "v1", "DaemonSet", "daemonsets", true),
    KindRef::new("batch", "v1", "Job", "jobs", true),
    KindRef::new("batch", "v1", "CronJob", "cronjobs", true),
];

/// Objects per LIST page.
pub const PAGE_SIZE: u32 = 500;

/// An API request that failed: one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApiFailure(pub String);

/// The reading commands' wording of a failed call (`cannot list pods in namespace x: …`),
/// with the status code and what to do.
impl From<ApiError> for ApiFailure {
    fn from(e: ApiError) -> ApiFailure {
        let what = e.op.permission();
        let msg = errors::one_line(&e.message);
        ApiFailure(match e.failure {
            Failure::Unauthorized => format!(
                "cannot {what}: the API server refused the credentials (401 Unauthorized): the token or certificate in the kubeconfig is invalid or expired"
            ),
            Failure::Forbidden => format!(
                "cannot {what}: forbidden (403): the user needs RBAC permission to {what}; ask an admin for a Role/ClusterRole granting it"
            ),
            Failure::NotFound => format!("cannot {what}: not found (404): {msg}"),
            Failure::Conflict => format!("cannot {what}: conflict (409): {msg}"),
            Failure::Status(code) => {
                format!("cannot {what}: the API server answered {code}: {msg}")
            }
            Failure::Timeout => format!(
                "cannot {what}: {msg}; the cluster is slow or unreachable (--request-timeout sets the limit)"
            ),
            Failure::Unreachable => format!(
                "cannot {what}: {msg}; is the API server running and the kubeconfig's server address right?"
            ),
            Failure::Other => format!("cannot {what}: {msg}"),
        })
    }
}

impl KindRef {
    /// The API call `verb` on this kind, in `namespace` (or cluster-wide).
    pub fn op(&self, verb: &'static str, namespace: Option<&str>) -> Op {
        Op::new(verb, self.rbac_resource()).namespace(if self.namespaced {
            namespace
        } else {
            None
        })
    }
}

/// LIST every object of `kind` (in `namespace`, or everywhere), page by page; `on_page`
/// hears how many objects each page brought. Items come back as JSON with their
/// `apiVersion` and `kind` set (LIST responses leave them out of items).
pub async fn list_all(
    client: &kube::Client,
    kind: &KindRef,
    namespace: Option<&str>,
    mut on_page: impl FnMut(usize),
) -> Result<Vec<Value>, ApiFailure> {
    let ar = kind.resource();
    let api: Api<DynamicObject> = match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(PAGE_SIZE);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = errors::retry(kind.op("list", namespace), || api.list(&lp)).await?;
        on_page(page.items.len());
        for item in page.items {
            let mut v = serde_json::to_value(&item)
                .map_err(|e| ApiFailure(format!("cannot read a {}: {e}", kind.kind)))?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("apiVersion".into(), Value::from(kind.api_version()));
                obj.insert("kind".into(), Value::from(kind.kind));
            }
            out.push(v);
        }
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// GET one object of `kind` by name.
pub async fn get(
    client: &kube::Client,
    kind: &KindRef,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiFailure> {
    let ar = kind.resource();
    let api: Api<DynamicObject> = match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    let obj = errors::retry(kind.op("get", namespace).name(name), || api.get(name)).await?;
    let mut v = serde_json::to_value(&obj)
        .map_err(|e| ApiFailure(format!("cannot read {} {name}: {e}", kind.kind)))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), Value::from(kind.api_version()));
        o.insert("kind".into(), Value::from(kind.kind));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(&format!("{reason} message"), reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn forbidden_names_the_missing_permission() {
        let pods = WORKLOAD_KINDS[0];
        let e = ApiError::from_kube(pods.op("list", None), &api_error(403, "Forbidden"));
        let m = ApiFailure::from(e).0;
        assert!(m.contains("list pods (cluster-wide)"), "{m}");
        let deploy = WORKLOAD_KINDS[4];
        let e = ApiError::from_kube(
            deploy.op("list", Some("team-a")),
            &api_error(403, "Forbidden"),
        );
        let m = ApiFailure::from(e).0;
        assert!(
            m.contains("list deployments.apps in namespace team-a"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }

    #[test]
    fn other_errors_are_one_line() {
        let pods = WORKLOAD_KINDS[0];
        let e = ApiError::from_kube(pods.op("list", Some("x")), &api_error(401, "Unauthorized"));
        let m = ApiFailure::from(e).0;
        assert!(m.contains("401") && m.contains("credentials"), "{m}");
        let e = ApiError::from_kube(
            NAMESPACES.op("get", None).name("x"),
            &api_error(404, "NotFound"),
        );
        let m = ApiFailure::from(e).0;
        assert!(m.contains("404"), "{m}");
        // a cluster-scoped kind never carries a namespace
        assert_eq!(NAMESPACES.op("list", Some("x")).namespace, None);
    }
}
