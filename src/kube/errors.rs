//! API errors for people, and retries for the transient ones.
//!
//! Every API call a command makes is described by an [`Op`] (verb, resource, namespace,
//! name), so a failure is one line that says what failed: a 403 names the missing
//! permission (`missing RBAC permission: patch daemonsets.apps in namespace secmon`), a
//! 401 the credentials, a 409 the field conflict and what to do, an unreachable server
//! its address's error. [`retry`] repeats calls that failed for a transient reason
//! (connection refused or reset, timeouts, 429, 500, 502, 503, 504) with backoff.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// One API call: `verb` (Kubernetes' RBAC verb: get, list, watch, create, patch, delete…)
/// on `resource` (the plural, `.group` appended for non-core groups), optionally in a
/// namespace and on one named object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub verb: &'static str,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Op {
    pub fn new(verb: &'static str, resource: impl Into<String>) -> Op {
        Op {
            verb,
            resource: resource.into(),
            namespace: None,
            name: None,
        }
    }

    pub fn namespace(mut self, ns: Option<&str>) -> Op {
        self.namespace = ns.map(str::to_string);
        self
    }

    pub fn name(mut self, name: &str) -> Op {
        self.name = Some(name.to_string());
        self
    }

    /// `patch daemonsets.apps in namespace secmon` (the permission, without the name).
    pub fn permission(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {} in namespace {ns}", self.verb, self.resource),
            None => format!("{} {} (cluster-wide)", self.verb, self.resource),
        }
    }

    /// `daemonsets.apps secmon/secmon-sensor`.
    pub fn target(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{} {ns}/{n}", self.resource),
            (None, Some(n)) => format!("{} {n}", self.resource),
            (Some(ns), None) => format!("{} in namespace {ns}", self.resource),
            (None, None) => self.resource.clone(),
        }
    }
}

/// The plural resource name with its group, as RBAC rules spell it: `namespaces`,
/// `daemonsets.apps`, `clusterroles.rbac.authorization.k8s.io`.
pub fn resource_name(ar: &kube::core::ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

/// What kind of failure, for callers that react to some (404, 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    /// Other HTTP statuses from the server.
    Status(u16),
    /// No answer: connection refused or reset, DNS, TLS.
    Unreachable,
    /// No answer within `--request-timeout`.
    Timeout,
    /// Anything else (a malformed response).
    Other,
}

/// A failed API call: what was attempted, how it failed, and the server's (or the
/// connection's) own words.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub op: Op,
    pub failure: Failure,
    pub message: String,
}

impl ApiError {
    pub fn from_kube(op: Op, e: &kube::Error) -> ApiError {
        let (failure, message) = classify(e);
        ApiError {
            op,
            failure,
            message,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.failure == Failure::NotFound
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = &self.op;
        let msg = one_line(&self.message);
        match self.failure {
            Failure::Forbidden => write!(
                f,
                "forbidden: missing RBAC permission: {} ({msg})",
                op.permission()
            ),
            Failure::Unauthorized => write!(
                f,
                "cannot {} {}: the API server did not accept the credentials (401 Unauthorized): check the kubeconfig's user (an expired token or certificate?)",
                op.verb,
                op.target()
            ),
            Failure::NotFound => write!(f, "cannot {} {}: not found ({msg})", op.verb, op.target()),
            Failure::Conflict => write!(f, "cannot {} {}: conflict ({msg})", op.verb, op.target()),
            Failure::Unreachable => write!(
                f,
                "cannot {} {}: the API server is unreachable: {msg}",
                op.verb,
                op.target()
            ),
            Failure::Timeout => write!(
                f,
                "cannot {} {}: the API server did not answer in time ({msg}); raise --request-timeout or check the cluster",
                op.verb,
                op.target()
            ),
            Failure::Status(code) => write!(
                f,
                "cannot {} {}: the API server answered {code}: {msg}",
                op.verb,
                op.target()
            ),
            Failure::Other => write!(f, "cannot {} {}: {msg}", op.verb, op.target()),
        }
    }
}

impl std::error::Error for ApiError {}

/// Messages are printed on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The innermost cause of an error chain: "Connection refused (os error 111)" rather than
/// the client's layers of wrapping.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        cur = err.source();
    }
    false
}

fn classify(e: &kube::Error) -> (Failure, String) {
    match e {
        kube::Error::Api(status) => {
            let failure = match status.code {
                401 => Failure::Unauthorized,
                403 => Failure::Forbidden,
                404 => Failure::NotFound,
                409 => Failure::Conflict,
                504 => Failure::Timeout,
                code => Failure::Status(code),
            };
            let msg = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            (failure, msg)
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            if is_timeout(e) {
                (Failure::Timeout, root_cause(e))
            } else {
                (Failure::Unreachable, root_cause(e))
            }
        }
        other => (Failure::Other, root_cause(other)),
    }
}

/// Whether a failure may go away by itself.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Attempts [`retry`] makes in all.
pub const ATTEMPTS: u32 = 4;

/// Run `call` until it succeeds, fails for a lasting reason, or [`ATTEMPTS`] are spent,
/// waiting 250 ms, 500 ms, 1 s between attempts. The error is described by `op`.
pub async fn retry<T, F, Fut>(op: Op, call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    retry_from(op, Duration::from_millis(250), call).await
}

/// [`retry`] with the first delay given (tests use zero).
pub async fn retry_from<T, F, Fut>(
    op: Op,
    first_delay: Duration,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = first_delay;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => {
                let mut err = ApiError::from_kube(op, &e);
                if attempt > 1 {
                    err.message = format!("{} (after {attempt} attempts)", err.message);
                }
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn forbidden_names_the_missing_permission() {
        let op = Op::new("patch", "daemonsets.apps")
            .namespace(Some("secmon"))
            .name("secmon-sensor");
        let e = ApiError::from_kube(
            op,
            &api(
                403,
                "daemonsets.apps \"secmon-sensor\" is forbidden:\nUser \"x\" cannot patch",
            ),
        );
        assert_eq!(
            e.to_string(),
            "forbidden: missing RBAC permission: patch daemonsets.apps in namespace secmon (daemonsets.apps \"secmon-sensor\" is forbidden: User \"x\" cannot patch)"
        );
        let cluster =
            ApiError::from_kube(Op::new("get", "namespaces").name("secmon"), &api(403, "no"));
        assert!(
            cluster
                .to_string()
                .contains("get namespaces (cluster-wide)")
        );
    }

    #[test]
    fn statuses_are_classified() {
        let op = || Op::new("get", "pods");
        assert_eq!(
            ApiError::from_kube(op(), &api(401, "")).failure,
            Failure::Unauthorized
        );
        assert!(ApiError::from_kube(op(), &api(404, "gone")).is_not_found());
        assert_eq!(
            ApiError::from_kube(op(), &api(409, "c")).failure,
            Failure::Conflict
        );
        assert_eq!(
            ApiError::from_kube(op(), &api(500, "x")).failure,
            Failure::Status(500)
        );
        assert!(is_transient(&api(503, "")));
        assert!(is_transient(&api(429, "")));
        assert!(!is_transient(&api(403, "")));
        assert!(!is_transient(&api(409, "")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transient_failures_are_retried_then_reported() {
        let mut calls = 0;
        let r: Result<u32, ApiError> = retry_from(Op::new("list", "nodes"), Duration::ZERO, || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(api(503, "busy")) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<(), ApiError> = retry_from(Op::new("list", "nodes"), Duration::ZERO, || {
            calls += 1;
            async { Err(api(503, "busy")) }
        })
        .await;
        assert_eq!(calls, ATTEMPTS);
        assert!(r.unwrap_err().to_string().contains("after 4 attempts"));

        let mut calls = 0;
        let _ = retry_from(Op::new("list", "nodes"), Duration::ZERO, || {
            calls += 1;
            async { Err::<(), _>(api(403, "no")) }
        })
        .await;
        assert_eq!(calls, 1);
    }
}
