//! `install`, `uninstall`, `status` and `alerts` (cluster mode) against a real local control
//! plane (tests/cluster/up: etcd, kube-apiserver, kube-controller-manager; no kubelet, so
//! pods are stored and never run). The tests share one control plane and one sensor
//! namespace, so they take a lock and run one at a time; each starts from a clean cluster.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use common::cluster::Cluster;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

static LOCK: Mutex<()> = Mutex::new(());

const NS: &str = "secmon";
const NAME: &str = "secmon-sensor";
const MANAGED: &str = "app.kubernetes.io/managed-by=kubectl-secmon";

fn setup() -> Option<(
    &'static Cluster,
    MutexGuard<'static, ()>,
    tokio::runtime::Runtime,
)> {
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Cluster::shared()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(clean(cluster));
    Some((cluster, guard, rt))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Remove what a previous (perhaps failed) test left: test pods and nodes, then uninstall.
async fn clean(cluster: &Cluster) {
    let client = cluster.client().await;
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    for ns in [NS, "falco"] {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for p in list.items {
                let _ = pods
                    .delete(&p.metadata.name.unwrap_or_default(), &force)
                    .await;
            }
        }
    }
    let nodes: Api<Node> = Api::all(client.clone());
    if let Ok(list) = nodes.list(&ListParams::default()).await {
        for n in list.items {
            let _ = nodes
                .delete(
                    &n.metadata.name.unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
        }
    }
    let out = cluster.secmon(&["uninstall"]);
    assert_eq!(out.status.code(), Some(0), "cleanup: {}", stderr(&out));
}

/// Table rows as whitespace-split cells (header first).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Every value in `expected` is in `actual` (objects: keys recursively; arrays: same length,
/// element-wise); the server may add defaults, never change what we set.
fn is_subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let sub = format!("{path}.{k}");
                is_subset(v, a.get(k).ok_or(format!("{sub} missing"))?, &sub)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                is_subset(x, y, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, found {a}")),
    }
}

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().filter_map(|o| o.meta().name.clone()).collect();
    v.sort();
    v
}

async fn labelled<K>(api: Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    names(
        &api.list(&ListParams::default().labels(MANAGED))
            .await
            .unwrap()
            .items,
    )
}

/// The resourceVersion of every object install creates.
async fn versions(client: &kube::Client) -> BTreeMap<&'static str, String> {
    fn rv<K: kube::Resource>(o: K) -> String {
        o.meta().resource_version.clone().unwrap_or_default()
    }
    let c = || client.clone();
    BTreeMap::from([
        ("ns", rv(Api::<Namespace>::all(c()).get(NS).await.unwrap())),
        (
            "sa",
            rv(Api::<ServiceAccount>::namespaced(c(), NS)
                .get(NAME)
                .await
                .unwrap()),
        ),
        (
            "cr",
            rv(Api::<ClusterRole>::all(c()).get(NAME).await.unwrap()),
        ),
        (
            "crb",
            rv(Api::<ClusterRoleBinding>::all(c()).get(NAME).await.unwrap()),
        ),
        (
            "cm",
            rv(Api::<ConfigMap>::namespaced(c(), NS)
                .get("secmon-rules")
                .await
                .unwrap()),
        ),
        (
            "svc",
            rv(Api::<Service>::namespaced(c(), NS).get(NAME).await.unwrap()),
        ),
        (
            "ds",
            rv(Api::<DaemonSet>::namespaced(c(), NS)
                .get(NAME)
                .await
                .unwrap()),
        ),
    ])
}

/// The live object of a manifest, as JSON.
async fn live(client: &kube::Client, manifest: &Value) -> Value {
    use kube::api::DynamicObject;
    use kube::discovery::ApiResource;
    let gvk = kube::api::GroupVersionKind::try_from(&kube::api::TypeMeta {
        api_version: manifest["apiVersion"].as_str().unwrap().to_string(),
        kind: manifest["kind"].as_str().unwrap().to_string(),
    })
    .unwrap();
    let plural = match gvk.kind.as_str() {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        "ConfigMap" => "configmaps",
        "Service" => "services",
        "DaemonSet" => "daemonsets",
        other => panic!("unexpected kind {other}"),
    };
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let name = manifest["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match manifest["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()
}

#[test]
fn install_is_least_privilege_idempotent_upgradable_and_uninstall_removes_only_its_objects() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let client = rt.block_on(cluster.client());

    // An unrelated namespace with objects whose names and even labels look like ours.
    rt.block_on(async {
        let c = client.clone();
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "unrelated"}});
        Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
            .await
            .unwrap();
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "secmon-rules", "namespace": "unrelated",
                         "labels": {"app.kubernetes.io/managed-by": "kubectl-secmon"}},
            "data": {"keep": "me"}});
        Api::<ConfigMap>::namespaced(c, "unrelated")
            .create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
            .await
            .unwrap();
    });

    // A server dry run goes through the API server and stores nothing.
    let dry = cluster.secmon(&["install", "--dry-run=server"]);
    let text = ok(&dry);
    assert_eq!(text.matches("created (server dry run").count(), 7, "{text}");
    rt.block_on(async {
        assert!(
            Api::<Namespace>::all(client.clone())
                .get_opt(NS)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            Api::<ClusterRole>::all(client.clone())
                .get_opt(NAME)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            Api::<ClusterRoleBinding>::all(client.clone())
                .get_opt(NAME)
                .await
                .unwrap()
                .is_none()
        );
    });

    // Install: exactly the expected objects.
    let out = cluster.secmon(&["install"]);
    let table = rows(&ok(&out));
    assert_eq!(table[0], ["KIND", "NAME", "NAMESPACE", "ACTION"]);
    let kinds: Vec<(&str, &str)> = table[1..]
        .iter()
        .map(|r| (r[0].as_str(), r.last().unwrap().as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Namespace", "created"),
            ("ServiceAccount", "created"),
            ("ClusterRole", "created"),
            ("ClusterRoleBinding", "created"),
            ("ConfigMap", "created"),
            ("Service", "created"),
            ("DaemonSet", "created"),
        ]
    );
    assert!(stderr(&out).contains("installing the secmon sensor"));

    rt.block_on(async {
        let c = || client.clone();
        assert_eq!(labelled(Api::<Namespace>::all(c())).await, ["secmon"]);
        assert_eq!(labelled(Api::<ClusterRole>::all(c())).await, [NAME]);
        assert_eq!(labelled(Api::<ClusterRoleBinding>::all(c())).await, [NAME]);
        assert_eq!(labelled(Api::<ServiceAccount>::namespaced(c(), NS)).await, [NAME]);
        assert_eq!(labelled(Api::<ConfigMap>::namespaced(c(), NS)).await, ["secmon-rules"]);
        assert_eq!(labelled(Api::<Service>::namespaced(c(), NS)).await, [NAME]);
        assert_eq!(labelled(Api::<DaemonSet>::namespaced(c(), NS)).await, [NAME]);

        // Only the sensor's namespace is privileged.
        let ns = Api::<Namespace>::all(c()).get(NS).await.unwrap();
        assert_eq!(
            ns.metadata.labels.unwrap()["pod-security.kubernetes.io/enforce"],
            "privileged"
        );

        // Least privilege: get/list/watch pods and nodes, nothing more.
        let role = serde_json::to_value(Api::<ClusterRole>::all(c()).get(NAME).await.unwrap())
            .unwrap();
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}])
        );
        let binding = Api::<ClusterRoleBinding>::all(c()).get(NAME).await.unwrap();
        assert_eq!(binding.role_ref.name, NAME);
        let subjects = binding.subjects.unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str(), subjects[0].namespace.as_deref()),
            ("ServiceAccount", NAME, Some(NS))
        );

        // The DaemonSet's security settings, as stored by the API server.
        let ds = serde_json::to_value(Api::<DaemonSet>::namespaced(c(), NS).get(NAME).await.unwrap())
            .unwrap();
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostPID"], true);
        assert_eq!(pod["serviceAccountName"], NAME);
        assert!(pod.get("hostNetwork").is_none_or(|v| v == false));
        assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        let ctr = &containers[0];
        assert_eq!(
            ctr["image"],
            format!("ghcr.io/kubectl-secmon/sensor:v{}", env!("CARGO_PKG_VERSION"))
        );
        let sc = &ctr["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            sc["capabilities"]["add"],
            json!(["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "DAC_READ_SEARCH"])
        );
        let mounts = ctr["volumeMounts"].as_array().unwrap();
        assert!(mounts.iter().all(|m| m["readOnly"] == true), "{mounts:?}");
        let host_paths: BTreeMap<String, String> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v.get("hostPath").is_some())
            .map(|v| {
                let mount = mounts
                    .iter()
                    .find(|m| m["name"] == v["name"])
                    .expect("every host volume is mounted");
                (
                    v["hostPath"]["path"].as_str().unwrap().to_string(),
                    mount["mountPath"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            host_paths,
            BTreeMap::from([
                ("/etc".to_string(), "/host/etc".to_string()),
                ("/sys/fs/cgroup".to_string(), "/sys/fs/cgroup".to_string()),
                ("/sys/kernel/btf".to_string(), "/sys/kernel/btf".to_string()),
                ("/sys/kernel/tracing".to_string(), "/sys/kernel/tracing".to_string()),
            ])
        );
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(ctr[probe]["httpGet"]["path"], "/healthz", "{probe}");
            assert_eq!(ctr[probe]["httpGet"]["port"], "metrics", "{probe}");
        }
        for r in ["requests", "limits"] {
            assert!(ctr["resources"][r]["cpu"].is_string(), "{r}");
            assert!(ctr["resources"][r]["memory"].is_string(), "{r}");
        }
        assert_eq!(
            ctr["env"],
            json!([{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}])
        );
        let args: Vec<&str> = ctr["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        for pair in [
            ["--node-name", "$(NODE_NAME)"],
            ["--metrics-addr", "0.0.0.0:8765"],
            ["--host-root", "/host"],
            ["--rules", "/etc/secmon/rules/secmon_rules.yaml"],
        ] {
            assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
        }
        assert_eq!(ctr["ports"][0]["name"], "metrics");
        assert_eq!(ctr["ports"][0]["containerPort"], 8765);

        // The Service is what the generated ServiceMonitor selects, with scrape annotations.
        let svc = serde_json::to_value(Api::<Service>::namespaced(c(), NS).get(NAME).await.unwrap())
            .unwrap();
        let sm = secmon::emit::prometheus::service_monitor("monitoring", &[], "30s");
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&svc["metadata"]["labels"][k], v, "label {k}");
        }
        assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"][0], NS);
        assert_eq!(svc["spec"]["ports"][0]["name"], sm["spec"]["endpoints"][0]["port"]);
        assert_eq!(svc["metadata"]["annotations"]["prometheus.io/scrape"], "true");
        assert_eq!(svc["metadata"]["annotations"]["prometheus.io/port"], "8765");
        // The Service selects the DaemonSet's pods.
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&ds["spec"]["template"]["metadata"]["labels"][k], v);
        }
    });

    // A second install writes nothing: every resourceVersion stays.
    let before = rt.block_on(versions(&client));
    let again = rows(&ok(&cluster.secmon(&["install"])));
    assert!(
        again[1..].iter().all(|r| r.last().unwrap() == "unchanged"),
        "{again:?}"
    );
    assert_eq!(rt.block_on(versions(&client)), before);

    // The manifests printed for GitOps are what install applied.
    let yaml = ok(&cluster.secmon(&["install", "--dry-run=client", "-o", "yaml"]));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("the manifests parse");
    assert_eq!(docs.len(), 7);
    rt.block_on(async {
        for doc in &docs {
            let obj = live(&client, doc).await;
            is_subset(doc, &obj, doc["kind"].as_str().unwrap()).unwrap();
        }
    });
    let json_list: Value = serde_json::from_str(&ok(&cluster.secmon(&[
        "install",
        "--dry-run=client",
        "-o",
        "json",
    ])))
    .unwrap();
    assert_eq!(json_list["kind"], "List");
    assert_eq!(json_list["items"].as_array().unwrap(), &docs);

    // A new version upgrades: the DaemonSet changes, nothing else does.
    let up = rows(&ok(&cluster.secmon(&[
        "install",
        "--image",
        "registry.example/secmon/sensor:v9.9.9",
    ])));
    let actions: Vec<(&str, &str)> = up[1..]
        .iter()
        .map(|r| (r[0].as_str(), r.last().unwrap().as_str()))
        .collect();
    assert_eq!(actions.last(), Some(&("DaemonSet", "configured")));
    assert!(
        actions[..6].iter().all(|(_, a)| *a == "unchanged"),
        "{actions:?}"
    );
    let after = rt.block_on(versions(&client));
    for (k, v) in &before {
        assert_eq!(after[k] == *v, *k != "ds", "{k}");
    }
    rt.block_on(async {
        let ds = Api::<DaemonSet>::namespaced(client.clone(), NS)
            .get(NAME)
            .await
            .unwrap();
        let image = ds.spec.template.spec.unwrap().containers[0].image.clone();
        assert_eq!(
            image.as_deref(),
            Some("registry.example/secmon/sensor:v9.9.9")
        );
    });

    // Uninstall removes all of it, waits for the namespace, and nothing else.
    let out = cluster.secmon(&["uninstall"]);
    let table = rows(&ok(&out));
    assert_eq!(table.len(), 8, "{table:?}");
    assert!(table[1..].iter().all(|r| r.last().unwrap() == "deleted"));
    assert!(stderr(&out).contains("waiting for namespace secmon"));
    rt.block_on(async {
        let c = || client.clone();
        assert!(
            Api::<Namespace>::all(c())
                .get_opt(NS)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            Api::<ClusterRole>::all(c())
                .get_opt(NAME)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            Api::<ClusterRoleBinding>::all(c())
                .get_opt(NAME)
                .await
                .unwrap()
                .is_none()
        );
        let kept = Api::<ConfigMap>::namespaced(c(), "unrelated")
            .get("secmon-rules")
            .await
            .unwrap();
        assert_eq!(kept.data.unwrap()["keep"], "me");
        Api::<Namespace>::all(c())
            .delete("unrelated", &DeleteParams::default())
            .await
            .unwrap();
    });
    // And again: nothing to do, not an error.
    let again = ok(&cluster.secmon(&["uninstall"]));
    assert!(again.contains("nothing to uninstall"), "{again}");
}

#[test]
fn install_stops_at_conflicts_and_never_takes_over_objects_it_did_not_create() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let client = rt.block_on(cluster.client());
    rt.block_on(async {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "falco"}});
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &serde_json::from_value(ns).unwrap())
            .await
            .unwrap();
    });
    // A field someone else changed stops the run with the conflict named...
    ok(&cluster.secmon(&["install"]));
    rt.block_on(async {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sensor", "image": "registry.example/other:v1"}]}}}});
        Api::<DaemonSet>::namespaced(client.clone(), NS)
            .patch(
                NAME,
                &PatchParams {
                    field_manager: Some("kubectl-set".into()),
                    ..PatchParams::default()
                },
                &Patch::Strategic(&patch),
            )
            .await
            .unwrap();
    });
    let out = cluster.secmon(&["install"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("conflict with \"kubectl-set\"") && last.contains("--force-conflicts"),
        "{err}"
    );
    // ...with what was done before it marked incomplete...
    let partial = stdout(&out);
    assert!(partial.contains("incomplete"), "{partial}");
    assert!(!partial.contains("DaemonSet"), "{partial}");
    // ...and --force-conflicts takes the field back.
    let forced = rows(&ok(&cluster.secmon(&["install", "--force-conflicts"])));
    assert_eq!(forced.last().unwrap().last().unwrap(), "configured");
    rt.block_on(async {
        let ds = Api::<DaemonSet>::namespaced(client.clone(), NS)
            .get(NAME)
            .await
            .unwrap();
        let image = ds.spec.template.spec.unwrap().containers[0].image.clone();
        assert!(image.unwrap().starts_with("ghcr.io/kubectl-secmon/sensor:"));
    });

    let out = cluster.secmon(&["install", "--sensor", "falco"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("Namespace falco already exists and was not created by kubectl-secmon"),
        "{err}"
    );
    // Uninstall leaves it alone too.
    let un = ok(&cluster.secmon(&["uninstall"]));
    assert!(un.contains("left Namespace falco alone"), "{un}");
    rt.block_on(async {
        let api = Api::<Namespace>::all(client.clone());
        assert!(api.get_opt("falco").await.unwrap().is_some());
        api.delete("falco", &DeleteParams::default()).await.unwrap();
    });
}

async fn create_node(client: &kube::Client, name: &str) {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}}});
    Api::<Node>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(node).unwrap(),
        )
        .await
        .unwrap();
}

/// A sensor pod on `node`, as the DaemonSet controller would create it (there is none
/// in the test control plane). Never runs.
async fn create_sensor_pod(client: &kube::Client, name: &str, node: &str) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS,
            "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/version": "v0.0.1"}},
        "spec": {"nodeName": node, "hostPID": true,
            "containers": [{"name": "sensor", "image": "ghcr.io/kubectl-secmon/sensor:v0.1.0"}]}});
    Api::<Pod>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
}

#[test]
fn status_reports_ready_and_missing_nodes_and_exits_1() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let client = rt.block_on(cluster.client());
    ok(&cluster.secmon(&["install"]));
    rt.block_on(async {
        create_node(&client, "node-ready").await;
        create_node(&client, "node-missing").await;
        create_sensor_pod(&client, "secmon-sensor-ready", "node-ready").await;
        // The kubelet's part: the pod is running and ready, restarted twice.
        let status = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "sensor", "ready": true, "restartCount": 2,
                "image": "ghcr.io/kubectl-secmon/sensor:v0.1.0", "imageID": "",
                "started": true, "state": {"running": {}}}]}});
        Api::<Pod>::namespaced(client.clone(), NS)
            .patch_status(
                "secmon-sensor-ready",
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
            .unwrap();
    });

    let out = cluster.secmon(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let table = rows(&text);
    assert_eq!(
        table[0][..8],
        [
            "NODE", "SENSOR", "READY", "VERSION", "RESTARTS", "EVENTS", "DROPS", "ALERTS"
        ]
    );
    let ready = table
        .iter()
        .find(|r| r[0] == "node-ready")
        .expect("node-ready row");
    assert_eq!(ready[1..5], ["ready", "yes", "v0.1.0", "2"]);
    // The pod never ran: its /metrics cannot answer through the proxy, and that is noted,
    // not fatal.
    assert!(ready.join(" ").contains("metrics unavailable"), "{text}");
    let missing = table
        .iter()
        .find(|r| r[0] == "node-missing")
        .expect("node-missing row");
    assert_eq!(missing[1], "missing");
    assert!(
        text.contains("1 of 2 node(s) have a ready sensor (0 not ready, 1 missing)"),
        "{text}"
    );

    let json_out = cluster.secmon(&["status", "-o", "json"]);
    assert_eq!(json_out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(v["kind"], "SensorStatus");
    assert_eq!(v["installed"], true);
    let states: BTreeMap<String, String> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().into(),
                n["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("node-missing".to_string(), "missing".to_string()),
            ("node-ready".to_string(), "ready".to_string()),
        ])
    );

    // The metrics columns through the pod proxy need a pod address the API server will
    // proxy to, which is never loopback; tests here serve on loopback only, so the proxy
    // path is covered by the unit tests of the exposition parsing and the "metrics
    // unavailable" case below.

    // A pod that never became ready is not-ready, with why.
    rt.block_on(create_sensor_pod(
        &client,
        "secmon-sensor-pending",
        "node-missing",
    ));
    let out = cluster.secmon(&["status", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pending = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "node-missing")
        .unwrap()
        .clone();
    assert_eq!(pending["state"], "not-ready");
    assert!(
        pending["message"]
            .as_str()
            .unwrap()
            .contains("metrics unavailable")
    );
    assert!(pending.get("metrics").is_none());

    rt.block_on(clean(cluster));
}

#[test]
fn alerts_from_the_cluster_finds_the_sensor_pods_and_explains_pods_that_never_ran() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let client = rt.block_on(cluster.client());

    // Not installed: one line saying so.
    let out = cluster.secmon(&["alerts"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no secmon sensor pod on any node"),
        "{}",
        stderr(&out)
    );

    ok(&cluster.secmon(&["install"]));
    rt.block_on(async {
        create_node(&client, "node-1").await;
        create_node(&client, "node-2").await;
        create_sensor_pod(&client, "secmon-sensor-n1", "node-1").await;
        create_sensor_pod(&client, "secmon-sensor-n2", "node-2").await;
        // An unrelated pod in the namespace is not a sensor pod.
        let other = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "other", "namespace": NS},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]}});
        Api::<Pod>::namespaced(client.clone(), NS)
            .create(
                &PostParams::default(),
                &serde_json::from_value(other).unwrap(),
            )
            .await
            .unwrap();

        // Discovery finds the DaemonSet's pods, per node.
        use secmon::deploy::SensorKind;
        let all = secmon::kube::sensor::pods(&client, SensorKind::Secmon, None)
            .await
            .unwrap();
        assert_eq!(names(&all), ["secmon-sensor-n1", "secmon-sensor-n2"]);
        let one = secmon::kube::sensor::pods(&client, SensorKind::Secmon, Some("node-2"))
            .await
            .unwrap();
        assert_eq!(names(&one), ["secmon-sensor-n2"]);
    });

    // The pods never ran: reading their logs fails with a message naming the pod, its node
    // and why, on one line (the first pod, and how many others failed likewise).
    let out = cluster.secmon(&["alerts", "--node", "node-1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot read the logs of pod secmon/secmon-sensor-n1 on node-1")
            && err.contains("it has not run"),
        "{err}"
    );
    let out = cluster.secmon(&["alerts", "-f"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("and 1 other pod(s) likewise"),
        "{}",
        stderr(&out)
    );

    let out = cluster.secmon(&["alerts", "--node", "node-9"]);
    assert!(
        stderr(&out).contains("no secmon sensor pod on node node-9"),
        "{}",
        stderr(&out)
    );
    let out = cluster.secmon(&["alerts", "--sensor", "falco"]);
    assert!(
        stderr(&out).contains(
            "no falco sensor pod on any node (namespace falco, label app.kubernetes.io/name=falco)"
        ),
        "{}",
        stderr(&out)
    );

    rt.block_on(clean(cluster));
}

/// A kubeconfig for `user`, a client certificate signed by the test cluster's CA, with no
/// RBAC bindings at all.
fn user_kubeconfig(cluster: &Cluster, user: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let pki = cluster.state.join("pki");
    let key = dir.join("user.key");
    let csr = dir.join("user.csr");
    let crt = dir.join("user.crt");
    let ext = dir.join("user.ext");
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
        "-subj",
        &format!("/CN={user}"),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        pki.join("ca.crt").to_str().unwrap(),
        "-CAkey",
        pki.join("ca.key").to_str().unwrap(),
        "-CAcreateserial",
        "-CAserial",
        dir.join("ca.srl").to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-days",
        "1",
        "-extfile",
        ext.to_str().unwrap(),
    ]);
    use base64_free::encode;
    let admin = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let mut out = String::new();
    for line in admin.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("client-certificate-data:") {
            out.push_str(&format!(
                "{indent}client-certificate-data: {}\n",
                encode(&std::fs::read(&crt).unwrap())
            ));
        } else if trimmed.starts_with("client-key-data:") {
            out.push_str(&format!(
                "{indent}client-key-data: {}\n",
                encode(&std::fs::read(&key).unwrap())
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let path = dir.join("user.kubeconfig");
    std::fs::write(&path, out).unwrap();
    path
}

/// Standard base64, for the kubeconfig (no crate for eleven lines).
mod base64_free {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[test]
fn install_without_rbac_rights_fails_with_one_line_naming_the_missing_permission() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = user_kubeconfig(cluster, "secmon-test-nobody", dir.path());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["install"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: forbidden: user \"secmon-test-nobody\""),
        "{err}"
    );
    for needed in [
        "get, patch namespaces (cluster-wide)",
        "get, patch clusterroles.rbac.authorization.k8s.io (cluster-wide)",
        "get, patch daemonsets.apps in namespace secmon",
    ] {
        assert!(err.contains(needed), "{needed}: {err}");
    }
    assert_eq!(stdout(&out), "");
    // Nothing was created.
    rt.block_on(async {
        let client = cluster.client().await;
        assert!(
            Api::<Namespace>::all(client)
                .get_opt(NS)
                .await
                .unwrap()
                .is_none()
        );
    });

    // The other commands name the permission they lack, one line each.
    for (args, needle) in [
        (
            &["status"][..],
            "missing RBAC permission: list nodes (cluster-wide)",
        ),
        (
            &["uninstall"][..],
            "missing RBAC permission: get daemonsets.apps in namespace secmon",
        ),
        (
            &["alerts"][..],
            "missing RBAC permission: list pods in namespace secmon",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn an_interrupted_install_is_finished_by_running_it_again() {
    let Some((cluster, _guard, rt)) = setup() else {
        return;
    };
    let client = rt.block_on(cluster.client());
    // What a run stopped by Ctrl-C after three objects leaves behind.
    rt.block_on(async {
        use secmon::deploy::SensorKind;
        use secmon::deploy::manifests::{InstallOptions, manifests};
        let ms = manifests(&InstallOptions::new(SensorKind::Secmon)).unwrap();
        let mut applier = secmon::kube::apply::Applier::new(client.clone(), false, false);
        for m in &ms[..3] {
            applier.apply(m).await.unwrap();
        }
    });
    let table = rows(&ok(&cluster.secmon(&["install"])));
    let actions: Vec<&str> = table[1..]
        .iter()
        .map(|r| r.last().unwrap().as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "unchanged",
            "unchanged",
            "unchanged",
            "created",
            "created",
            "created",
            "created"
        ]
    );
    rt.block_on(clean(cluster));
}
