//! Reading the installed sensor back from the API server: nodes, the DaemonSet and its
//! pods, each pod's `/metrics` through the API server's pod proxy, and its log stream.

use std::time::Duration;

use futures::AsyncBufRead;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, LogParams};
use kube::core::{ObjectList, Resource};
use serde::de::DeserializeOwned;

use super::errors::{ApiError, Op, one_line, retry};
use crate::deploy::{METRICS_PORT, SensorKind};

/// Objects per LIST page.
const PAGE: u32 = 500;

/// LIST every object `api` sees (paginated), as `op` for errors.
pub async fn list_all<K>(api: &Api<K>, lp: ListParams, op: Op) -> Result<Vec<K>, ApiError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug + Resource,
{
    let mut out = Vec::new();
    let mut lp = lp.limit(PAGE);
    loop {
        let page: ObjectList<K> = retry(op.clone(), || api.list(&lp)).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => return Ok(out),
        }
    }
}

/// Every node.
pub async fn nodes(client: &kube::Client) -> Result<Vec<Node>, ApiError> {
    let api: Api<Node> = Api::all(client.clone());
    list_all(&api, ListParams::default(), Op::new("list", "nodes")).await
}

/// The sensor's DaemonSet, if installed.
pub async fn daemon_set(
    client: &kube::Client,
    kind: SensorKind,
) -> Result<Option<DaemonSet>, ApiError> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), kind.namespace());
    retry(
        Op::new("get", "daemonsets.apps")
            .namespace(Some(kind.namespace()))
            .name(kind.app()),
        || api.get_opt(kind.app()),
    )
    .await
}

/// The sensor's pods (by their `app.kubernetes.io/name` label), on one node or all.
pub async fn pods(
    client: &kube::Client,
    kind: SensorKind,
    node: Option<&str>,
) -> Result<Vec<Pod>, ApiError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), kind.namespace());
    let mut lp = ListParams::default().labels(&kind.selector());
    if let Some(n) = node {
        lp = lp.fields(&format!("spec.nodeName={n}"));
    }
    list_all(
        &api,
        lp,
        Op::new("list", "pods").namespace(Some(kind.namespace())),
    )
    .await
}

/// A pod's `/metrics` text through the API server's proxy
/// (`GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/metrics`), within `timeout`. `Err` is
/// a short reason, for a "metrics unavailable" cell: a pod that is not running cannot
/// answer, and that is not a failure of the command.
pub async fn metrics(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    timeout: Duration,
) -> Result<String, String> {
    let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}:{METRICS_PORT}/proxy/metrics");
    let req = hyper::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request_text(req)).await {
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        Ok(Err(e)) => Err(ApiError::from_kube(
            Op::new("get", "pods/proxy")
                .namespace(Some(namespace))
                .name(pod),
            &e,
        )
        .message),
        Ok(Ok(text)) => Ok(text),
    }
}

/// Open the log stream of the sensor container of `pod`: everything it logged (or the
/// last `since`), and with `follow`, what it logs next until the pod stops.
pub async fn log_stream(
    client: &kube::Client,
    kind: SensorKind,
    pod: &Pod,
    follow: bool,
    since: Option<Duration>,
) -> Result<impl AsyncBufRead + use<>, String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), kind.namespace());
    let lp = LogParams {
        container: Some(kind.container().to_string()),
        follow,
        since_seconds: since.map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)),
        ..LogParams::default()
    };
    // Not retried: a follow stream may be opened only once, and a pod that has not
    // started will not have started a second later either.
    api.log_stream(&name, &lp).await.map_err(|e| {
        let err = ApiError::from_kube(
            Op::new("get", "pods/log")
                .namespace(Some(kind.namespace()))
                .name(&name),
            &e,
        );
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "no node".to_string());
        let phase = super::pods::phase(pod);
        let hint = if phase == "Running" {
            String::new()
        } else {
            format!(" (pod phase {phase}: it has not run; see `kubectl secmon status`)")
        };
        match err.failure {
            super::errors::Failure::Forbidden => format!(
                "cannot read the logs of pod {}/{name} on {node}: {err}",
                kind.namespace()
            ),
            _ => format!(
                "cannot read the logs of pod {}/{name} on {node}{hint}: {}",
                kind.namespace(),
                one_line(&err.message)
            ),
        }
    })
}
