//! What the upstream fixture corpus does not cover: ephemeral containers, AppArmor fields
//! and annotations, user namespaces, Windows exemptions, image/csi/ephemeral volumes,
//! container_engine_t, every workload kind, and exact full messages with several
//! violations and containers.

use secmon::psa::workload::{self, WorkloadKind};
use secmon::psa::{self, CheckId, Policy};
use serde_json::{Value, json};

fn message(level: &str, version: &str, kind: WorkloadKind, object: &Value) -> String {
    let policy = Policy::parse(level, version).unwrap();
    let t = workload::extract(kind, object).unwrap().unwrap();
    psa::evaluate(&policy, &t.meta, &t.spec).warning(&policy)
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn checks(level: &str, version: &str, object: &Value) -> Vec<CheckId> {
    let policy = Policy::parse(level, version).unwrap();
    let t = workload::extract(WorkloadKind::Pod, object)
        .unwrap()
        .unwrap();
    psa::evaluate(&policy, &t.meta, &t.spec)
        .violations
        .iter()
        .map(|v| v.check)
        .collect()
}

/// A container that satisfies restricted:latest.
fn good(name: &str) -> Value {
    json!({"name": name, "image": "i", "securityContext": {
        "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}})
}

fn restricted_pod_spec(containers: Vec<Value>) -> Value {
    json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": containers})
}

#[test]
fn bare_nginx_matches_the_message_real_clusters_print() {
    let p = pod(json!({"containers": [{"name": "nginx", "image": "nginx"}]}));
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn several_violations_and_containers_in_visit_order() {
    let p = pod(json!({
    "initContainers": [{"name": "init", "image": "i"}],
    "containers": [
        {"name": "a", "image": "i", "ports": [{"containerPort": 8080, "hostPort": 8080}]},
        {"name": "b", "image": "i", "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 9, "hostPort": 10}]}
    ]}));
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"restricted:latest\": hostPort (containers \"a\", \"b\" use hostPorts 10, 80, 8080), allowPrivilegeEscalation != false (containers \"init\", \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (containers \"init\", \"a\", \"b\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or containers \"init\", \"a\", \"b\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or containers \"init\", \"a\", \"b\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn many_baseline_breaks_in_upstream_order() {
    // Evaluated on a Deployment template, where neither hostPort nor AppArmor defaulting
    // applies, with the hostPort written out as the API server would default it for a Pod.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
            "spec": {
                "hostNetwork": true, "hostPID": true,
                "securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
                "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
                "containers": [{"name": "c", "image": "i",
                    "ports": [{"containerPort": 80, "hostPort": 80}],
                    "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]}}}]}}}});
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Deployment, &d),
        "would violate PodSecurity \"baseline:latest\": forbidden AppArmor profile (annotation must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\"), non-default capabilities (container \"c\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add), host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"h\"), hostPort (container \"c\" uses hostPort 80), privileged (container \"c\" must not set securityContext.privileged=true), forbidden sysctls (kernel.msgmax)"
    );
}

#[test]
fn host_network_pods_get_host_ports_defaulted() {
    let p = pod(
        json!({"hostNetwork": true, "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8443}]}]}),
    );
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), hostPort (container \"c\" uses hostPort 8443)"
    );
}

#[test]
fn ephemeral_containers_are_checked_after_the_others() {
    let mut spec = restricted_pod_spec(vec![good("app")]);
    spec["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox",
        "securityContext": {"privileged": true}}]);
    let p = pod(spec);
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"restricted:latest\": privileged (container \"debugger\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"debugger\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"debugger\" must set securityContext.capabilities.drop=[\"ALL\"])"
    );
}

#[test]
fn apparmor_fields_and_annotations() {
    // Fields on a template: pod and container, one distinct value: singular reason.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
                       {"name": "ok", "image": "i", "securityContext": {"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}}]}}}});
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Deployment, &d),
        "would violate PodSecurity \"baseline:latest\": forbidden AppArmor profile (pod and container \"c\" must not set AppArmor profile type to \"Unconfined\")"
    );
    // On a Pod, API servers 1.30-1.33 mirrored the field into an annotation; 1.34+ no
    // longer do (kubernetes#131989, confirmed against v1.36 by tests/psa_live.rs).
    let p = pod(json!({"containers": [{"name": "c", "image": "i",
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}}}]}));
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"baseline:latest\": forbidden AppArmor profile (container \"c\" must not set AppArmor profile type to \"Unconfined\")"
    );
    // Allowed values: RuntimeDefault, Localhost, runtime/default, localhost/*, empty.
    let p = pod(
        json!({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "i"}]}),
    );
    assert!(checks("baseline", "latest", &p).is_empty());
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {
        "metadata": {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/a": "localhost/x",
            "container.apparmor.security.beta.kubernetes.io/b": "",
            "container.apparmor.security.beta.kubernetes.io/c": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/d": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/e": "docker-default"}},
        "spec": {"containers": [{"name": "a", "image": "i"}]}}}});
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Deployment, &d),
        "would violate PodSecurity \"baseline:latest\": forbidden AppArmor profiles (annotations must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/d=\"unconfined\"\", \"container.apparmor.security.beta.kubernetes.io/e=\"docker-default\"\")"
    );
}

#[test]
fn user_namespaces_relax_three_checks_from_v1_35() {
    let mut spec = json!({"hostUsers": false,
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsUser": 0}}]});
    let p = pod(spec.clone());
    assert!(
        checks("restricted", "v1.35", &p).is_empty(),
        "{:?}",
        checks("restricted", "v1.35", &p)
    );
    assert!(checks("restricted", "latest", &p).is_empty());
    assert_eq!(
        checks("restricted", "v1.34", &p),
        vec![CheckId::RunAsNonRoot, CheckId::RunAsUser]
    );
    assert_eq!(
        message("restricted", "v1.34", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"restricted:v1.34\": runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), runAsUser=0 (pod and container \"c\" must not set runAsUser=0)"
    );
    // procMount: baseline relaxes, restricted does not.
    spec["containers"][0]["securityContext"]["procMount"] = json!("Unmasked");
    let p = pod(spec);
    assert!(checks("baseline", "v1.35", &p).is_empty());
    assert_eq!(checks("baseline", "v1.34", &p), vec![CheckId::ProcMount]);
    assert_eq!(
        checks("restricted", "v1.35", &p),
        vec![CheckId::ProcMountRestricted]
    );
    assert!(
        message("restricted", "v1.35", WorkloadKind::Pod, &p).ends_with(
            "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")"
        )
    );
}

#[test]
fn windows_pods_are_exempt_from_three_restricted_checks_from_v1_25() {
    let p = pod(
        json!({"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": true},
        "containers": [{"name": "c", "image": "i"}]}),
    );
    assert!(checks("restricted", "v1.25", &p).is_empty());
    assert_eq!(
        checks("restricted", "v1.24", &p),
        vec![
            CheckId::AllowPrivilegeEscalation,
            CheckId::CapabilitiesRestricted,
            CheckId::SeccompProfileRestricted
        ]
    );
    // runAsNonRoot and baseline still apply.
    let p = pod(
        json!({"os": {"name": "windows"}, "containers": [{"name": "c", "image": "i",
        "securityContext": {"windowsOptions": {"hostProcess": true}}}]}),
    );
    assert_eq!(
        checks("restricted", "latest", &p),
        vec![CheckId::WindowsHostProcess, CheckId::RunAsNonRoot]
    );
    assert!(message("restricted", "latest", WorkloadKind::Pod, &p)
        .contains("hostProcess (container \"c\" must not set securityContext.windowsOptions.hostProcess=true)"));
}

#[test]
fn modern_volume_types_and_selinux_types() {
    let mut spec = restricted_pod_spec(vec![good("c")]);
    spec["volumes"] = json!([
        {"name": "img", "image": {"reference": "registry/x:1"}},
        {"name": "csi", "csi": {"driver": "d"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "default"}
    ]);
    assert!(checks("restricted", "v1.0", &pod(spec.clone())).is_empty());
    spec["volumes"] = json!([{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "g", "gitRepo": {"repository": "r"}},
        {"name": "h", "hostPath": {"path": "/"}}]);
    assert!(message("restricted", "latest", WorkloadKind::Pod, &pod(spec.clone()))
        .ends_with("restricted volume types (volumes \"n\", \"g\", \"h\" use restricted volume types \"gitRepo\", \"hostPath\", \"nfs\")"));
    let mut spec = restricted_pod_spec(vec![good("c")]);
    spec["securityContext"]["seLinuxOptions"] = json!({"type": "container_engine_t"});
    assert_eq!(checks("restricted", "v1.31", &pod(spec.clone())), vec![]);
    assert_eq!(
        checks("restricted", "v1.30", &pod(spec.clone())),
        vec![CheckId::SeLinuxOptions]
    );
    spec["containers"][0]["securityContext"]["seLinuxOptions"] =
        json!({"type": "spc_t", "user": "u", "role": "r"});
    assert!(message("baseline", "v1.30", WorkloadKind::Pod, &pod(spec)).ends_with(
        "seLinuxOptions (pod and container \"c\" set forbidden securityContext.seLinuxOptions: types \"container_engine_t\", \"spc_t\"; user may not be set; role may not be set)"
    ));
}

#[test]
fn sysctls_follow_their_versions() {
    let spec = json!({"securityContext": {"sysctls": [
        {"name": "net.ipv4.tcp_keepalive_time", "value": "1"},
        {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"},
        {"name": "net.ipv4.tcp_keepalive_time", "value": "2"}]},
        "containers": [{"name": "c", "image": "i"}]});
    assert!(message("baseline", "v1.28", WorkloadKind::Pod, &pod(spec.clone())).ends_with(
        "forbidden sysctls (net.ipv4.tcp_keepalive_time, net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_keepalive_time)"
    ));
    assert!(
        message("baseline", "v1.36", WorkloadKind::Pod, &pod(spec.clone()))
            .ends_with("forbidden sysctls (net.ipv4.tcp_slow_start_after_idle)")
    );
    assert!(checks("baseline", "v1.37", &pod(spec.clone())).is_empty());
    assert!(
        checks("baseline", "v1.99", &pod(spec)).is_empty(),
        "newer versions evaluate as the newest"
    );
}

#[test]
fn every_workload_kind_is_read_from_its_template() {
    let bad_template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"hostPID": true, "containers": [{"name": "c", "image": "i"}]}});
    let objects = [
        (
            WorkloadKind::Pod,
            json!({"apiVersion": "v1", "kind": "Pod", "spec": bad_template["spec"]}),
        ),
        (
            WorkloadKind::PodTemplate,
            json!({"apiVersion": "v1", "kind": "PodTemplate", "template": bad_template}),
        ),
        (
            WorkloadKind::ReplicationController,
            json!({"apiVersion": "v1", "kind": "ReplicationController", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::ReplicaSet,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::Deployment,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::StatefulSet,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::DaemonSet,
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::Job,
            json!({"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": bad_template}}),
        ),
        (
            WorkloadKind::CronJob,
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": bad_template}}}}),
        ),
    ];
    for (kind, obj) in objects {
        let api = obj["apiVersion"].as_str().unwrap();
        assert_eq!(
            WorkloadKind::from_type(api, obj["kind"].as_str().unwrap()),
            Some(kind)
        );
        assert_eq!(
            message("baseline", "latest", kind, &obj),
            "would violate PodSecurity \"baseline:latest\": host namespaces (hostPID=true)",
            "{kind}"
        );
    }
    // A workload's own annotations are ignored; its template's are used.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Deployment, &d),
        ""
    );
}

#[test]
fn explicit_false_wins_over_pod_level_true() {
    let p = pod(
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "i", "securityContext": {"runAsNonRoot": false,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "Unconfined"}}}]}),
    );
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &p),
        "would violate PodSecurity \"restricted:latest\": runAsNonRoot != true (container \"c\" must not set securityContext.runAsNonRoot=false), seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
}

#[test]
fn privileged_level_allows_everything() {
    let p = pod(
        json!({"hostPID": true, "containers": [{"name": "c", "image": "i", "securityContext": {"privileged": true}}]}),
    );
    assert!(checks("privileged", "latest", &p).is_empty());
}

/// Messages recorded from a real kube-apiserver v1.36.3 (server-side dry-run into labelled
/// namespaces; see docs/spikes/apiserver): the enforce error reads `violates PodSecurity …`,
/// the warning `would violate PodSecurity …`, with the same detail text as ours.
#[test]
fn matches_messages_recorded_from_a_real_apiserver() {
    let privileged = pod(
        json!({"hostPID": true, "containers": [{"name": "c", "image": "busybox",
        "securityContext": {"privileged": true}}]}),
    );
    let recorded_restricted = "violates PodSecurity \"restricted:latest\": host namespaces (hostPID=true), privileged (container \"c\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &privileged),
        format!("would {recorded_restricted}").replacen("would violates", "would violate", 1)
    );
    let recorded_baseline = "violates PodSecurity \"baseline:latest\": host namespaces (hostPID=true), privileged (container \"c\" must not set securityContext.privileged=true)";
    assert_eq!(
        message("baseline", "latest", WorkloadKind::Pod, &privileged),
        format!("would {recorded_baseline}").replacen("would violates", "would violate", 1)
    );
    let plain = pod(json!({"containers": [{"name": "ok", "image": "busybox"}]}));
    let recorded_warning = "would violate PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"ok\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"ok\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"ok\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"ok\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";
    assert_eq!(
        message("restricted", "latest", WorkloadKind::Pod, &plain),
        recorded_warning
    );
}
