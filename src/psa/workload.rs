//! Finding the pod template of every kind the PodSecurity plugin evaluates, and applying
//! the API server's defaulting and mutation that change what the plugin sees.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{AppArmorProfile, PodSpec, SecurityContext, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

/// The kinds that carry a pod or a pod template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum WorkloadKind {
    Pod,
    PodTemplate,
    ReplicationController,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
}

impl WorkloadKind {
    /// Recognise a kind by `apiVersion` and `kind`, with the groups the API serves it in.
    pub fn from_type(api_version: &str, kind: &str) -> Option<WorkloadKind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let k = match (group, kind) {
            ("", "Pod") => WorkloadKind::Pod,
            ("", "PodTemplate") => WorkloadKind::PodTemplate,
            ("", "ReplicationController") => WorkloadKind::ReplicationController,
            ("apps" | "extensions", "ReplicaSet") => WorkloadKind::ReplicaSet,
            ("apps" | "extensions", "Deployment") => WorkloadKind::Deployment,
            ("apps", "StatefulSet") => WorkloadKind::StatefulSet,
            ("apps" | "extensions", "DaemonSet") => WorkloadKind::DaemonSet,
            ("batch", "Job") => WorkloadKind::Job,
            ("batch", "CronJob") => WorkloadKind::CronJob,
            _ => return None,
        };
        Some(k)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::PodTemplate => "PodTemplate",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
        }
    }

    /// JSON pointer to the object holding the pod's `metadata` and `spec`.
    pub fn template_pointer(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "",
            WorkloadKind::PodTemplate => "/template",
            WorkloadKind::CronJob => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the PodSecurity plugin evaluates: the template's metadata and spec.
#[derive(Debug, Clone, Default)]
pub struct PodTemplate {
    pub meta: ObjectMeta,
    pub spec: PodSpec,
}

/// Why an object's pod template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

/// Read the pod template of `kind` out of an object, typed, with the API server's
/// defaulting applied. `Ok(None)` for a ReplicationController without a template, which
/// upstream allows.
pub fn extract(kind: WorkloadKind, object: &Value) -> Result<Option<PodTemplate>, TemplateError> {
    let pointer = kind.template_pointer();
    let Some(holder) = object.pointer(pointer) else {
        if kind == WorkloadKind::ReplicationController {
            return Ok(None);
        }
        return Err(TemplateError {
            message: format!("missing {}", dotted(pointer)),
        });
    };
    if holder.is_null() && kind == WorkloadKind::ReplicationController {
        return Ok(None);
    }
    if !holder.is_object() {
        return Err(TemplateError {
            message: format!(
                "{}: expected an object, found {}",
                dotted_or_root(pointer),
                type_name(holder)
            ),
        });
    }
    let meta: ObjectMeta = match holder.get("metadata") {
        None | Some(Value::Null) => ObjectMeta::default(),
        Some(m) => typed(m, &format!("{}.metadata", dotted_or_root(pointer)))?,
    };
    let spec_path = if pointer.is_empty() {
        "spec".to_string()
    } else {
        format!("{}.spec", dotted(pointer))
    };
    let spec: PodSpec = match holder.get("spec") {
        None | Some(Value::Null) => {
            return Err(TemplateError {
                message: format!("missing {spec_path}"),
            });
        }
        Some(s) => typed(s, &spec_path)?,
    };
    let mut template = PodTemplate { meta, spec };
    apply_defaults(&mut template, kind == WorkloadKind::Pod);
    Ok(Some(template))
}

fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn dotted_or_root(pointer: &str) -> String {
    if pointer.is_empty() {
        "(root)".to_string()
    } else {
        dotted(pointer)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value, base: &str) -> Result<T, TemplateError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." || path.is_empty() {
            base.trim_start_matches("(root).").to_string()
        } else {
            format!("{}.{}", base, path)
                .trim_start_matches("(root).")
                .to_string()
        };
        TemplateError {
            message: format!("{at}: {}", e.inner()),
        }
    })
}

/// The defaulting and create-time mutation that the API server applies before the
/// PodSecurity plugin sees an object, where it changes a verdict or a message:
///
/// * a volume with no source becomes an `emptyDir` (every kind);
/// * for Pods with `hostNetwork: true`, each container port's `hostPort` defaults to its
///   `containerPort` (Pods only since 1.28);
/// * for Linux Pods, AppArmor annotations are copied into the fields they stand for (the
///   field-to-annotation direction of 1.30–1.33 was dropped in 1.34, kubernetes#131989).
pub fn apply_defaults(template: &mut PodTemplate, is_pod: bool) {
    for vol in template.spec.volumes.iter_mut().flatten() {
        if !volume_has_source(vol) {
            vol.empty_dir = Some(Default::default());
        }
    }
    if !is_pod {
        return;
    }
    if template.spec.host_network == Some(true) {
        let spec = &mut template.spec;
        for c in spec
            .init_containers
            .iter_mut()
            .flatten()
            .chain(spec.containers.iter_mut())
        {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    sync_apparmor(template);
}

fn volume_has_source(v: &Volume) -> bool {
    v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some()
}

const APPARMOR_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn field_for_annotation(a: &str) -> Option<AppArmorProfile> {
    let profile = |t: &str, name: Option<String>| AppArmorProfile {
        type_: t.to_string(),
        localhost_profile: name,
    };
    match a {
        "runtime/default" => Some(profile("RuntimeDefault", None)),
        "unconfined" => Some(profile("Unconfined", None)),
        _ => {
            let name = a.strip_prefix("localhost/")?;
            // An invalid field (empty or blank localhost profile name) is not copied.
            if name.trim().is_empty() {
                return None;
            }
            Some(profile("Localhost", Some(name.to_string())))
        }
    }
}

/// Upstream's `applyAppArmorVersionSkew` for Linux pods, as of 1.34: annotation to field.
fn sync_apparmor(t: &mut PodTemplate) {
    if t.spec.os.as_ref().is_some_and(|os| os.name == "windows") {
        return;
    }
    let pod_profile = t
        .spec
        .security_context
        .as_ref()
        .and_then(|s| s.app_armor_profile.clone());
    let annotations = t.meta.annotations.get_or_insert_with(BTreeMap::new);
    let spec = &mut t.spec;
    let visit = |name: &str, sc: &mut Option<SecurityContext>| {
        let key = format!("{APPARMOR_PREFIX}{name}");
        let container_profile = sc.as_ref().and_then(|s| s.app_armor_profile.as_ref());
        // Since 1.34 fields are no longer copied into annotations (kubernetes#131989).
        if let Some(a) = annotations.get(&key)
            && container_profile.is_none()
            && let Some(field) = field_for_annotation(a)
            && pod_profile.as_ref() != Some(&field)
        {
            sc.get_or_insert_with(Default::default).app_armor_profile = Some(field);
        }
    };
    for c in spec.init_containers.iter_mut().flatten() {
        visit(&c.name, &mut c.security_context);
    }
    for c in spec.containers.iter_mut() {
        visit(&c.name, &mut c.security_context);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        visit(&c.name, &mut c.security_context);
    }
    if annotations.is_empty() {
        t.meta.annotations = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_recognised_by_group() {
        assert_eq!(
            WorkloadKind::from_type("v1", "Pod"),
            Some(WorkloadKind::Pod)
        );
        assert_eq!(
            WorkloadKind::from_type("apps/v1", "Deployment"),
            Some(WorkloadKind::Deployment)
        );
        assert_eq!(
            WorkloadKind::from_type("batch/v1", "CronJob"),
            Some(WorkloadKind::CronJob)
        );
        assert_eq!(WorkloadKind::from_type("v1", "Deployment"), None);
        assert_eq!(WorkloadKind::from_type("v1", "ConfigMap"), None);
        assert_eq!(WorkloadKind::from_type("example.com/v1", "Pod"), None);
    }

    #[test]
    fn sourceless_volume_defaults_to_empty_dir() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v"}]}});
        let t = extract(WorkloadKind::Pod, &pod).unwrap().unwrap();
        assert!(t.spec.volumes.unwrap()[0].empty_dir.is_some());
    }

    #[test]
    fn host_network_defaults_host_ports_for_pods_only() {
        let spec = json!({"hostNetwork": true, "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]});
        let pod = json!({"kind": "Pod", "spec": spec});
        let t = extract(WorkloadKind::Pod, &pod).unwrap().unwrap();
        assert_eq!(
            t.spec.containers[0].ports.as_ref().unwrap()[0].host_port,
            Some(80)
        );
        let dep = json!({"kind": "Deployment", "spec": {"template": {"spec": spec}}});
        let t = extract(WorkloadKind::Deployment, &dep).unwrap().unwrap();
        assert_eq!(
            t.spec.containers[0].ports.as_ref().unwrap()[0].host_port,
            None
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "securityContext": {"privileged": "yes"}}]}});
        let err = extract(WorkloadKind::Pod, &pod).unwrap_err();
        assert!(
            err.message
                .starts_with("spec.containers[0].securityContext.privileged: invalid type"),
            "{}",
            err.message
        );
        let dep = json!({"kind": "Deployment", "spec": {}});
        assert_eq!(
            extract(WorkloadKind::Deployment, &dep).unwrap_err().message,
            "missing spec.template"
        );
        let rc = json!({"kind": "ReplicationController", "spec": {}});
        assert!(
            extract(WorkloadKind::ReplicationController, &rc)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn apparmor_annotations_become_fields_but_not_the_reverse() {
        // 1.34+ (kubernetes#131989): a field is not mirrored into an annotation; the
        // differential test against a real v1.36 API server (tests/psa_live.rs) found it.
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "c",
            "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}});
        let t = extract(WorkloadKind::Pod, &pod).unwrap().unwrap();
        assert!(t.meta.annotations.is_none());
        let pod = json!({"kind": "Pod", "metadata": {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/c": "localhost/prof"}},
            "spec": {"containers": [{"name": "c"}]}});
        let t = extract(WorkloadKind::Pod, &pod).unwrap().unwrap();
        let p = t.spec.containers[0]
            .security_context
            .as_ref()
            .unwrap()
            .app_armor_profile
            .as_ref()
            .unwrap();
        assert_eq!(p.type_, "Localhost");
        assert_eq!(p.localhost_profile.as_deref(), Some("prof"));
    }
}
