//! Server-side apply and deletion of the objects `install` manages, a permission
//! preflight, and waiting for a namespace to go.
//!
//! [`Applier::apply`] reads the object first: an object of the same name that
//! kubectl-secmon did not create (no `app.kubernetes.io/managed-by=kubectl-secmon`) is
//! never taken over. It then applies with field manager `kubectl-secmon` and reports
//! `created`, `configured` or `unchanged`; unchanged is the server's own verdict (the
//! resourceVersion did not move), so a second install provably writes nothing.
//! [`Applier::delete`] deletes only objects that carry the label.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy,
    WatchEvent, WatchParams,
};
use serde_json::Value;

use super::errors::{ApiError, Failure, Op, resource_name, retry};
use crate::deploy::manifests::{Manifest, ObjectRef};
use crate::deploy::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL};

/// What applying or deleting did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Deleted,
    /// Nothing to delete.
    Absent,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Absent => "absent",
        }
    }
}

/// Why an object was not applied or deleted.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "{what} already exists and was not created by kubectl-secmon (it lacks the label {MANAGED_BY_LABEL}={MANAGED_BY}{by}); refusing to take it over: remove it first, or keep the installation you have"
    )]
    NotOurs { what: String, by: String },
}

/// The outcome of applying one manifest.
#[derive(Debug, Clone)]
pub struct Applied {
    pub action: Action,
    /// False when a server dry run could not send the object: its namespace is only being
    /// created in the same (dry) run.
    pub validated: bool,
}

fn api_for(client: &kube::Client, r: &ObjectRef) -> Api<DynamicObject> {
    match &r.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r.resource),
        None => Api::all_with(client.clone(), &r.resource),
    }
}

fn op(verb: &'static str, r: &ObjectRef) -> Op {
    Op::new(verb, resource_name(&r.resource))
        .namespace(r.namespace.as_deref())
        .name(&r.name)
}

/// `DaemonSet secmon/secmon-sensor`, `Namespace secmon`.
pub fn describe(r: &ObjectRef) -> String {
    match &r.namespace {
        Some(ns) => format!("{} {ns}/{}", r.resource.kind, r.name),
        None => format!("{} {}", r.resource.kind, r.name),
    }
}

fn managed_by_us(obj: &DynamicObject) -> bool {
    obj.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

fn other_manager(obj: &DynamicObject) -> String {
    match obj
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
    {
        Some(v) => format!("; it is managed by {v:?}"),
        None => String::new(),
    }
}

/// The object without what the server changes on every write, for comparing a dry run's
/// answer with the live object.
fn comparable(obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    v
}

/// Applies and deletes objects with field manager `kubectl-secmon`.
pub struct Applier {
    client: kube::Client,
    dry_run: bool,
    force: bool,
    /// Namespaces a server dry run is "creating": objects in them cannot be sent.
    dry_namespaces: BTreeSet<String>,
}

impl Applier {
    /// `dry_run`: the server's dry run (nothing is stored). `force`: take over fields
    /// another field manager owns instead of failing with a conflict.
    pub fn new(client: kube::Client, dry_run: bool, force: bool) -> Applier {
        Applier {
            client,
            dry_run,
            force,
            dry_namespaces: BTreeSet::new(),
        }
    }

    /// Server-side apply `m`.
    pub async fn apply(&mut self, m: &Manifest) -> Result<Applied, ApplyError> {
        let r = ObjectRef::from(m);
        if self.dry_run
            && let Some(ns) = &r.namespace
            && self.dry_namespaces.contains(ns)
        {
            return Ok(Applied {
                action: Action::Created,
                validated: false,
            });
        }
        let api = api_for(&self.client, &r);
        let before = retry(op("get", &r), || api.get_opt(&r.name)).await?;
        if let Some(b) = &before
            && !managed_by_us(b)
        {
            return Err(ApplyError::NotOurs {
                what: describe(&r),
                by: other_manager(b),
            });
        }
        let pp = PatchParams {
            dry_run: self.dry_run,
            force: self.force,
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patch = Patch::Apply(&m.object);
        let after = retry(op("patch", &r), || api.patch(&r.name, &pp, &patch))
            .await
            .map_err(|mut e| {
                if e.failure == Failure::Conflict {
                    e.message = format!(
                        "{}; another field manager changed these fields: re-run with --force-conflicts to take them over",
                        e.message
                    );
                }
                e
            })?;
        let action = match &before {
            None => {
                if self.dry_run && r.resource.kind == "Namespace" {
                    self.dry_namespaces.insert(r.name.clone());
                }
                Action::Created
            }
            Some(b) if self.dry_run => {
                if comparable(b) == comparable(&after) {
                    Action::Unchanged
                } else {
                    Action::Configured
                }
            }
            Some(b) if b.metadata.resource_version == after.metadata.resource_version => {
                Action::Unchanged
            }
            Some(_) => Action::Configured,
        };
        Ok(Applied {
            action,
            validated: true,
        })
    }

    /// Delete `r` if it exists and kubectl-secmon created it. An object of that name that
    /// kubectl-secmon did not create is left alone and reported as an error.
    pub async fn delete(&self, r: &ObjectRef) -> Result<Action, ApplyError> {
        let api = api_for(&self.client, r);
        let Some(obj) = retry(op("get", r), || api.get_opt(&r.name)).await? else {
            return Ok(Action::Absent);
        };
        if !managed_by_us(&obj) {
            return Err(ApplyError::NotOurs {
                what: describe(r),
                by: other_manager(&obj),
            });
        }
        let dp = DeleteParams {
            dry_run: self.dry_run,
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match retry(op("delete", r), || api.delete(&r.name, &dp)).await {
            Ok(_) => Ok(Action::Deleted),
            Err(e) if e.is_not_found() => Ok(Action::Absent),
            Err(e) => Err(e.into()),
        }
    }
}

/// Wait until namespace `name` is gone (the namespace controller deletes its contents
/// first), watching it rather than polling. `Err` after `timeout`, with what the namespace
/// says is left.
pub async fn wait_namespace_gone(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let wait = async {
        loop {
            let ns = match retry(Op::new("get", "namespaces").name(name), || {
                api.get_opt(name)
            })
            .await
            {
                Ok(None) => return Ok(()),
                Ok(Some(ns)) => ns,
                Err(e) => return Err(e.to_string()),
            };
            let version = ns.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(60);
            let Ok(stream) = api.watch(&wp, &version).await else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Deleted(_)) => return Ok(()),
                    Ok(WatchEvent::Error(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => {
            let left = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|ns| ns.status)
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.status == "True")
                .filter_map(|c| c.message)
                .collect::<Vec<_>>()
                .join("; ");
            Err(format!(
                "namespace {name} is still terminating after {}s{}",
                timeout.as_secs(),
                if left.is_empty() {
                    String::new()
                } else {
                    format!(": {left}")
                }
            ))
        }
    }
}

/// The operations among `ops` the current user may not perform, by SelfSubjectAccessReview.
/// `Err` when the reviews themselves fail (then the caller just proceeds and reports the
/// first real failure).
pub async fn missing_permissions(client: &kube::Client, ops: &[Op]) -> Result<Vec<Op>, ApiError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = ops.iter().map(|o| {
        let (resource, group) = o
            .resource
            .split_once('.')
            .unwrap_or((o.resource.as_str(), ""));
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(o.verb.to_string()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api = api.clone();
        let o = o.clone();
        async move {
            let pp = PostParams::default();
            let r = retry(
                Op::new("create", "selfsubjectaccessreviews.authorization.k8s.io"),
                || api.create(&pp, &review),
            )
            .await?;
            Ok::<_, ApiError>((o, r.status.is_some_and(|s| s.allowed)))
        }
    });
    let mut missing = Vec::new();
    for r in futures::future::join_all(reviews).await {
        let (o, allowed) = r?;
        if !allowed {
            missing.push(o);
        }
    }
    Ok(missing)
}

/// The user name the API server knows the caller by (SelfSubjectReview), if it says.
pub async fn whoami(client: &kube::Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let r = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    r.status?.user_info?.username
}
