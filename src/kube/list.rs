//! Reading objects from a live cluster: one paginated LIST per kind and scope, transient
//! failures retried with backoff, and API errors turned into one line that says what was
//! refused and what to do (for 403s: which verb on which resource is missing).

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

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

/// Whether a failure is worth retrying: timeouts, connection errors, 429 and 5xx.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// One line for a failed `verb` on `kind` (in `namespace`, if any).
pub fn describe(e: &kube::Error, verb: &str, kind: &KindRef, namespace: Option<&str>) -> String {
    let scope = match namespace {
        Some(ns) => format!(" in namespace {ns}"),
        None if kind.namespaced => " in all namespaces".to_string(),
        None => String::new(),
    };
    let what = format!("{verb} {}{scope}", kind.rbac_resource());
    match e {
        kube::Error::Api(s) if s.code == 401 => format!(
            "cannot {what}: the API server refused the credentials (401 Unauthorized): the token or certificate in the kubeconfig is invalid or expired"
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "cannot {what}: forbidden (403): the user needs RBAC permission to {verb} {}{}; ask an admin for a Role/ClusterRole granting it",
            kind.rbac_resource(),
            if kind.namespaced && namespace.is_none() {
                " cluster-wide (a ClusterRole)".to_string()
            } else {
                scope.clone()
            }
        ),
        kube::Error::Api(s) if s.code == 404 => format!(
            "cannot {what}: not found (404){}",
            if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.message.replace('\n', " "))
            }
        ),
        kube::Error::Api(s) => format!(
            "cannot {what}: {} ({}): {}",
            s.reason,
            s.code,
            s.message.replace('\n', " ")
        ),
        other => {
            let text = error_chain(other);
            let hint = if text.contains("timed out") || text.contains("deadline") {
                "; the cluster is slow or unreachable (--request-timeout sets the limit)"
            } else if text.contains("refused") || text.contains("connect") {
                "; is the API server running and the kubeconfig's server address right?"
            } else {
                ""
            };
            format!("cannot {what}: {text}{hint}")
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s.replace('\n', " ")
}

/// Retry a request on transient failures: 3 attempts, 200 ms then 800 ms apart.
pub async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 3 && is_transient(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 4;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
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
        let page = with_retries(|| api.list(&lp))
            .await
            .map_err(|e| ApiFailure(describe(&e, "list", kind, namespace)))?;
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
    let obj = with_retries(|| api.get(name))
        .await
        .map_err(|e| ApiFailure(describe(&e, "get", kind, namespace)))?;
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
        let m = describe(&api_error(403, "Forbidden"), "list", &pods, None);
        assert!(m.contains("list pods cluster-wide"), "{m}");
        let deploy = WORKLOAD_KINDS[4];
        let m = describe(
            &api_error(403, "Forbidden"),
            "list",
            &deploy,
            Some("team-a"),
        );
        assert!(
            m.contains("list deployments.apps in namespace team-a"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }

    #[test]
    fn other_errors_are_one_line() {
        let pods = WORKLOAD_KINDS[0];
        let m = describe(&api_error(401, "Unauthorized"), "list", &pods, Some("x"));
        assert!(m.contains("401") && m.contains("credentials"), "{m}");
        let m = describe(&api_error(404, "NotFound"), "get", &NAMESPACES, None);
        assert!(m.contains("404"), "{m}");
        assert!(is_transient(&api_error(503, "ServiceUnavailable")));
        assert!(is_transient(&api_error(429, "TooManyRequests")));
        assert!(!is_transient(&api_error(403, "Forbidden")));
    }
}
