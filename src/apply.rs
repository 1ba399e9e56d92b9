//! `emit es-template --apply URL`: PUT the generated resources ([`crate::emit::es`]) to an
//! Elasticsearch or OpenSearch server, each only when it is missing or differs.
//!
//! "Differs" is decided by the digest every resource carries (in `_meta`, or in an ISM
//! policy's description): a GET whose body holds our digest means up to date, so the
//! server's normalised echo of a template never has to be compared field by field. An ISM
//! policy is replaced with `if_seq_no`/`if_primary_term`, as OpenSearch requires.
//! This is the edge of `emit`: the only part that does I/O.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use hyper::header::CONTENT_TYPE;
use serde_json::Value;

use crate::emit::es::{Resource, ResourceKind};
use crate::httpc::{self, Auth};
use crate::report::emit::{Applied, ApplyResult};

/// Where and how to apply.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub auth: Auth,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// Apply each resource in order; stops at the first failure with a one-line error that
/// names the resource and what the server said.
pub fn apply(target: &Target, resources: &[Resource]) -> anyhow::Result<Vec<Applied>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(apply_async(target, resources))
}

async fn apply_async(target: &Target, resources: &[Resource]) -> anyhow::Result<Vec<Applied>> {
    let base = httpc::parse_url(&target.url).map_err(|reason| {
        anyhow::anyhow!(
            "--apply {:?}: {reason}; use http://HOST:9200 or https://HOST:9200",
            target.url
        )
    })?;
    let client = httpc::client(&base, target.ca_file.as_deref()).map_err(|e| match e {
        httpc::ClientError::Ca { .. } => anyhow::anyhow!("--ca-file {e}"),
        e => anyhow::anyhow!("--apply {}: {e}", target.url),
    })?;
    let call = |method: Method, path: String, body: Option<Vec<u8>>| {
        let client = &client;
        let base = &base;
        async move {
            let uri = httpc::join(base, &path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let req = hyper::Request::builder()
                .method(method.clone())
                .uri(uri)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
            httpc::send(client, req, &target.auth, target.timeout)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{method} {}/{path}: {e}", target.url.trim_end_matches('/'))
                })
        }
    };
    let mut out = Vec::new();
    for r in resources {
        let got = call(Method::GET, r.path.clone(), None).await?;
        let status = got.status.as_u16();
        let existing = match status {
            200 => Some(got.body),
            404 => None,
            401 | 403 => anyhow::bail!(
                "GET {}: HTTP {status}: the server refused the credentials; set {} or {} and {}",
                r.path,
                httpc::ENV_API_KEY,
                httpc::ENV_USERNAME,
                httpc::ENV_PASSWORD
            ),
            _ => anyhow::bail!("GET {}: HTTP {status}: {}", r.path, hint(r, &got.body)),
        };
        let result = match &existing {
            Some(body) if contains(body, &r.digest) => {
                out.push(applied(r, ApplyResult::Unchanged));
                continue;
            }
            Some(_) => ApplyResult::Updated,
            None => ApplyResult::Created,
        };
        let mut path = r.path.clone();
        if r.kind == ResourceKind::IsmPolicy
            && let Some(body) = &existing
        {
            let v: Value = serde_json::from_slice(body).unwrap_or_default();
            if let (Some(seq), Some(term)) = (v["_seq_no"].as_u64(), v["_primary_term"].as_u64()) {
                path = format!("{path}?if_seq_no={seq}&if_primary_term={term}");
            }
        }
        let body = serde_json::to_vec(&r.body)?;
        let put = call(Method::PUT, path, Some(body)).await?;
        if !put.status.is_success() {
            anyhow::bail!(
                "PUT {}: HTTP {}: {}",
                r.path,
                put.status.as_u16(),
                hint(r, &put.body)
            );
        }
        out.push(applied(r, result));
    }
    Ok(out)
}

fn applied(r: &Resource, result: ApplyResult) -> Applied {
    Applied {
        kind: r.kind,
        name: r.name.clone(),
        path: r.path.clone(),
        digest: r.digest.clone(),
        result,
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The server's error reason, and what to do for the common ones.
fn hint(r: &Resource, body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    let reason = v["error"]["reason"]
        .as_str()
        .or_else(|| v["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect()
        });
    let reason = reason.replace('\n', " ");
    let no_handler = reason.contains("no handler found");
    match r.kind {
        ResourceKind::IsmPolicy if no_handler || reason.is_empty() => format!(
            "{reason}: this OpenSearch has no Index State Management plugin (opensearch-index-management); install it, or use --no-policy and manage retention yourself"
        ),
        ResourceKind::IlmPolicy if no_handler || reason.is_empty() => format!(
            "{reason}: this server has no ILM (is it OpenSearch? use --flavor opensearch); or use --no-policy"
        ),
        _ => reason,
    }
}
