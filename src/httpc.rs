//! The one HTTP client: hyper's HTTP/1.1 client over rustls, for the sensor's network sinks
//! (webhook, Elasticsearch/OpenSearch `_bulk`, Alertmanager) and `emit es-template --apply`.
//!
//! http and https; https trusts the system's CA certificates or those of a PEM file. A
//! request gets one deadline for connecting, sending and reading the whole response.
//! Credentials for Elasticsearch-style servers come from the environment
//! ([`Auth::from_env`]), never from a flag that `ps` would show.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{AUTHORIZATION, HeaderValue, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The client type every sink shares.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("kubectl-secmon/", env!("CARGO_PKG_VERSION"));

/// Why a client cannot be built. The caller names the flag.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is unusable; the text says why.
    #[error("{0}")]
    Url(String),
    #[error(
        "cannot load the system's CA certificates ({0}); install them (ca-certificates) or use http://"
    )]
    Tls(String),
    #[error("{}: {reason}; give a PEM file of CA certificates", path.display())]
    Ca { path: PathBuf, reason: String },
}

/// Parse an http(s) URL with a host; `Err` holds the reason.
pub fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    match uri.scheme_str() {
        Some("https") | Some("http") => {}
        _ => return Err("the scheme must be http or https".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(uri)
}

/// `base` (scheme, authority, any path prefix) joined with `path` (which may carry a query).
pub fn join(base: &Uri, path: &str) -> Result<Uri, String> {
    let prefix = base.path().trim_end_matches('/');
    let path = path.trim_start_matches('/');
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    format!("{scheme}://{authority}{prefix}/{path}")
        .parse()
        .map_err(|e| format!("{e}"))
}

/// A client for `uri`'s scheme; https trusts `ca_file` (PEM) or else the system roots.
pub fn client(uri: &Uri, ca_file: Option<&Path>) -> Result<HttpsClient, ClientError> {
    let https = uri.scheme_str() == Some("https");
    let tls = if let Some(path) = ca_file.filter(|_| https) {
        rustls::ClientConfig::builder()
            .with_root_certificates(ca_roots(path)?)
            .with_no_client_auth()
    } else if https {
        use hyper_rustls::ConfigBuilderExt;
        rustls::ClientConfig::builder()
            .with_native_roots()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_no_client_auth()
    } else {
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The CA certificates of a PEM file.
pub fn ca_roots(path: &Path) -> Result<rustls::RootCertStore, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let err = |reason: String| ClientError::Ca {
        path: path.to_path_buf(),
        reason,
    };
    let pem = fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| err(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("not a usable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(err("no certificates in it".into()));
    }
    Ok(roots)
}

/// Credentials for an Elasticsearch-style server.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: ApiKey <key>` (the base64 `id:api_key` Elasticsearch prints as
    /// `encoded`).
    ApiKey(String),
    /// `Authorization: Basic …`.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::ApiKey(_) => "Auth::ApiKey(…)",
            Auth::Basic { .. } => "Auth::Basic(…)",
        })
    }
}

/// The environment variables [`Auth::from_env`] reads.
pub const ENV_API_KEY: &str = "SECMON_ES_API_KEY";
pub const ENV_USERNAME: &str = "SECMON_ES_USERNAME";
pub const ENV_PASSWORD: &str = "SECMON_ES_PASSWORD";

impl Auth {
    /// `SECMON_ES_API_KEY`, else `SECMON_ES_USERNAME` with `SECMON_ES_PASSWORD`, else none.
    pub fn from_env() -> Auth {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(key) = get(ENV_API_KEY) {
            Auth::ApiKey(key)
        } else if let Some(user) = get(ENV_USERNAME) {
            Auth::Basic {
                user,
                password: get(ENV_PASSWORD).unwrap_or_default(),
            }
        } else {
            Auth::None
        }
    }

    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<HeaderValue> {
        let text = match self {
            Auth::None => return None,
            Auth::ApiKey(k) => format!("ApiKey {k}"),
            Auth::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
        };
        let mut v = HeaderValue::from_str(&text).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: hyper::StatusCode,
    pub body: Bytes,
}

/// Send `req` (with our User-Agent and `auth`), read the whole response, all within
/// `timeout`. `Err` is a one-line reason (connection refused, timeout, …).
pub async fn send(
    client: &HttpsClient,
    mut req: hyper::Request<Full<Bytes>>,
    auth: &Auth,
    timeout: Duration,
) -> Result<Response, String> {
    req.headers_mut()
        .insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    if let Some(h) = auth.header() {
        req.headers_mut().insert(AUTHORIZATION, h);
    }
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| error_chain(&e))?
            .to_bytes();
        Ok::<_, String>(Response { status, body })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        Ok(r) => r,
    }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("elastic:changeme", "ZWxhc3RpYzpjaGFuZ2VtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn urls_join_and_fail_with_reasons() {
        let b = parse_url("https://es.example:9200/prefix/").unwrap();
        assert_eq!(
            join(&b, "/_bulk?x=1").unwrap().to_string(),
            "https://es.example:9200/prefix/_bulk?x=1"
        );
        let b = parse_url("http://127.0.0.1:9093").unwrap();
        assert_eq!(
            join(&b, "api/v2/alerts").unwrap().to_string(),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("http:///x").is_err());
        assert_eq!(
            Auth::Basic {
                user: "elastic".into(),
                password: "changeme".into()
            }
            .header()
            .unwrap(),
            "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
        );
        assert!(Auth::None.header().is_none());
        assert_eq!(
            format!("{:?}", Auth::ApiKey("secret".into())),
            "Auth::ApiKey(…)"
        );
    }
}
