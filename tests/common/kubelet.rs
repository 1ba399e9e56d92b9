//! A stand-in kubelet for the local control plane (Linux, root), so that pods can run:
//!
//! - it registers a node whose kubelet endpoint is this process (127.0.0.1, TLS with a
//!   throw-away certificate: the API server does not verify kubelets unless told to);
//! - it runs the pods bound to that node in the namespaces it watches: their container
//!   command on this host, in a kubelet-shaped cgroup whose id derives from the pod's
//!   UID, with only the capabilities the pod's security context adds (setpriv: bounding
//!   set, and no new privileges unless allowed), the environment a kubelet gives
//!   (`KUBERNETES_SERVICE_HOST/PORT`), and reports their status as a kubelet would
//!   (Running, then Succeeded or Failed with the exit code and the container's id);
//! - it serves their logs (`GET /containerLogs/NS/POD/CONTAINER`, `follow=true` included),
//!   which is how the API server's `pods/log` reaches it;
//! - a pod it is given a live source for (a real sensor's alerts) is reported Running and
//!   its log streams that source as it grows.
//!
//! Everything stops and the cgroups go when it is dropped.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// What a pod's log is.
#[derive(Clone)]
pub enum LogSource {
    /// A finished container's output.
    Done(String),
    /// A running sensor's alerts, as its harness collects them: one JSON line each.
    Live(Arc<Mutex<Vec<Value>>>),
}

type Logs = Arc<Mutex<BTreeMap<(String, String), LogSource>>>;

pub struct Kubelet {
    pub node: String,
    stop: Arc<AtomicBool>,
    logs: Logs,
    scopes: Arc<Mutex<Vec<PathBuf>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    client: kube::Client,
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A self-signed serving certificate and key (PEM files in `dir`), made with openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=stand-in-kubelet", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "openssl could not make the stand-in kubelet's certificate"
    );
    (crt, key)
}

fn tls_config(crt: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(crt)
        .expect("certificate")
        .map(|c| c.expect("certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("TLS config"),
    )
}

/// Answer one request on `stream`: a container's log, followed while it is live.
fn serve(
    stream: std::net::TcpStream,
    tls: Arc<rustls::ServerConfig>,
    logs: Logs,
    stop: Arc<AtomicBool>,
) {
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    drop(reader);
    let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let follow = query.split('&').any(|p| p == "follow=true");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let source = match parts[..] {
        ["containerLogs", ns, pod, _container] => logs
            .lock()
            .expect("lock")
            .get(&(ns.to_string(), pod.to_string()))
            .cloned(),
        _ => None,
    };
    let Some(source) = source else {
        let _ = tls
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if tls
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return;
    }
    match source {
        LogSource::Done(text) => {
            let _ = tls.write_all(text.as_bytes());
        }
        LogSource::Live(alerts) => {
            let mut sent = 0;
            loop {
                let lines: Vec<String> = {
                    let a = alerts.lock().expect("lock");
                    a[sent.min(a.len())..]
                        .iter()
                        .map(|v| v.to_string())
                        .collect()
                };
                for l in &lines {
                    if tls.write_all(format!("{l}\n").as_bytes()).is_err() {
                        return;
                    }
                }
                sent += lines.len();
                if tls.flush().is_err() || !follow || stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// The status a kubelet reports for a pod's one container.
fn status(phase: &str, container: &str, cid: &str, exit: Option<i32>) -> Value {
    let state = match exit {
        None => json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
        Some(code) => json!({"terminated": {
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
        }}),
    };
    json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": container, "image": "stand-in", "imageID": "", "ready": exit.is_none(),
            "restartCount": 0, "containerID": format!("containerd://{cid}"), "state": state,
        }],
    }})
}

/// Make a kubelet-shaped container's cgroup scopes (`…/kubepods-besteffort-pod<uid>.slice/
/// cri-containerd-<cid>.scope`) in every hierarchy; the caller removes them.
pub fn container_scopes(cid: &str, pod_uid: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in secmon::simulate::runner::cgroup_roots() {
        let scope = root
            .join("kubepods.slice/kubepods-besteffort.slice")
            .join(format!(
                "kubepods-besteffort-pod{}.slice",
                pod_uid.replace('-', "_")
            ))
            .join(format!("cri-containerd-{cid}.scope"));
        std::fs::create_dir_all(&scope).expect("cgroup scope");
        out.push(scope);
    }
    out
}

/// Run `pod`'s container on this host as the kubelet would; its log is stored in `logs`.
fn run_pod(
    pod: &Pod,
    bin: &str,
    client: &kube::Client,
    logs: &Logs,
    all_scopes: &Mutex<Vec<PathBuf>>,
) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(spec) = pod.spec.as_ref() else {
        return;
    };
    let c = &spec.containers[0];
    let cid = sha256_hex(&uid);
    let scopes = container_scopes(&cid, &uid);
    all_scopes
        .lock()
        .expect("lock")
        .extend(scopes.iter().cloned());
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let patch = |v: Value| {
        let _ = rt.block_on(api.patch_status(&name, &PatchParams::default(), &Patch::Merge(v)));
    };
    patch(status("Running", &c.name, &cid, None));
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged == Some(true);
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    if argv.first().is_some_and(|a| a == "kubectl-secmon") {
        argv[0] = bin.to_string();
    }
    let mut cmd = if privileged {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd
    } else {
        let caps: String = sc
            .capabilities
            .and_then(|c| c.add)
            .unwrap_or_default()
            .iter()
            .map(|c| format!(",+{}", c.to_ascii_lowercase()))
            .collect();
        let mut cmd = Command::new("setpriv");
        if sc.allow_privilege_escalation != Some(true) {
            cmd.arg("--no-new-privs");
        }
        cmd.arg("--bounding-set")
            .arg(format!("-all{caps}"))
            .args(["--inh-caps", "-all", "--"])
            .args(&argv);
        cmd
    };
    let procs: Vec<PathBuf> = scopes.iter().map(|s| s.join("cgroup.procs")).collect();
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", &name)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443")
        .stdin(Stdio::null());
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                std::fs::write(p, "0")?;
            }
            Ok(())
        });
    }
    let (log, code) = match cmd.output() {
        Ok(out) => {
            let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
            log.push_str(&String::from_utf8_lossy(&out.stderr));
            (log, out.status.code().unwrap_or(137))
        }
        Err(e) => (format!("exec {}: {e}\n", argv[0]), 128),
    };
    logs.lock()
        .expect("lock")
        .insert((ns, name.clone()), LogSource::Done(log));
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    patch(status(phase, &c.name, &cid, Some(code)));
}

impl Kubelet {
    /// Register `node` and start serving it: pods bound to it in `namespaces` are run.
    pub async fn start(
        client: &kube::Client,
        node: &str,
        namespaces: &[&str],
        bin: &str,
    ) -> Kubelet {
        let dir = tempfile::tempdir().expect("tempdir");
        let (crt, key) = certificate(dir.path());
        let tls = tls_config(&crt, &key);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let logs: Logs = Default::default();
        let mut threads = Vec::new();
        {
            let (stop, logs) = (stop.clone(), logs.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let (tls, logs, stop) = (tls.clone(), logs.clone(), stop.clone());
                            std::thread::spawn(move || serve(s, tls, logs, stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }));
        }
        super::cluster::apply_yaml(
            client,
            &format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n"),
        )
        .await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        nodes
            .patch_status(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                    "conditions": [{"type": "Ready", "status": "True"}],
                }})),
            )
            .await
            .expect("node status");
        let scopes: Arc<Mutex<Vec<PathBuf>>> = Default::default();
        for ns in namespaces {
            let (stop, logs, scopes) = (stop.clone(), logs.clone(), scopes.clone());
            let (client, ns, node, bin) = (
                client.clone(),
                ns.to_string(),
                node.to_string(),
                bin.to_string(),
            );
            threads.push(std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
                let mut started: BTreeSet<String> = BTreeSet::new();
                let mut running = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let pods = rt
                        .block_on(api.list(&lp))
                        .map(|l| l.items)
                        .unwrap_or_default();
                    for pod in pods {
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        let pending =
                            pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
                        if !pending
                            || pod.metadata.deletion_timestamp.is_some()
                            || !started.insert(uid)
                        {
                            continue;
                        }
                        let (client, logs, scopes, bin) =
                            (client.clone(), logs.clone(), scopes.clone(), bin.clone());
                        running.push(std::thread::spawn(move || {
                            run_pod(&pod, &bin, &client, &logs, &scopes)
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                for t in running {
                    let _ = t.join();
                }
            }));
        }
        // The certificate files are loaded; the directory can go.
        drop(dir);
        Kubelet {
            node: node.to_string(),
            stop,
            logs,
            scopes,
            threads,
            client: client.clone(),
        }
    }

    /// Create a pod on this node that is Running, whose log is `source` (a sensor).
    pub async fn live_pod(&self, yaml: &str, source: Arc<Mutex<Vec<Value>>>) {
        super::cluster::apply_yaml(&self.client, yaml).await;
        let obj: Value = serde_saphyr::from_str(yaml).expect("pod manifest");
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = obj["metadata"]["name"].as_str().expect("name").to_string();
        let container = obj["spec"]["containers"][0]["name"].as_str().unwrap_or("c");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let uid = api
            .get(&name)
            .await
            .expect("pod")
            .metadata
            .uid
            .unwrap_or_default();
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(status("Running", container, &sha256_hex(&uid), None)),
        )
        .await
        .expect("pod status");
        self.logs
            .lock()
            .expect("lock")
            .insert((ns, name), LogSource::Live(source));
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Processes left in the pods' cgroups are killed, then the cgroups removed.
        let scopes = std::mem::take(&mut *self.scopes.lock().unwrap_or_else(|e| e.into_inner()));
        for s in &scopes {
            if let Ok(procs) = std::fs::read_to_string(s.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for s in &scopes {
            let mut dir = Some(s.as_path());
            // The scope, then its pod slice (empty once every scope of the pod is gone).
            for _ in 0..2 {
                if let Some(d) = dir {
                    let _ = std::fs::remove_dir(d);
                    dir = d.parent();
                }
            }
        }
    }
}
