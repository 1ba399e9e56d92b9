//! Node trees for the CIS tests and benchmark, built in a temporary directory by the
//! test itself so that file modes and owners are real (the tests run as root): a
//! `<root>/proc/<pid>/{cmdline,environ}` process table, `/etc/passwd` and `/etc/group`,
//! and the kubeadm layout of a control-plane or worker node.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

/// `cis run` arguments for a scan of `root` with `benchmark`, all targets and checks, and
/// kube-bench's profiles from `profile_dir` (compatibility mode) when given.
pub fn run_args(
    root: &Path,
    benchmark: &str,
    profile_dir: Option<PathBuf>,
) -> secmon::commands::cis::RunArgs {
    secmon::commands::cis::RunArgs {
        root: root.to_path_buf(),
        benchmark: benchmark.into(),
        targets: vec![],
        check: vec![],
        skip: vec![],
        profile_dir,
        node_name: None,
        max_file_size: 4,
        from_api: false,
        nodes: None,
        image: secmon::commands::cis::DEFAULT_IMAGE.into(),
        timeout: secmon::cli::Timeout(Some(std::time::Duration::from_secs(120))),
    }
}

pub const ETCD_UID: u32 = 4242;

pub struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let n = Node {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        n.file(
            "/etc/passwd",
            &format!("root:x:0:0:root:/root:/bin/bash\netcd:x:{ETCD_UID}:{ETCD_UID}::/var/lib/etcd:/sbin/nologin\n"),
            0o644,
        );
        n.file(
            "/etc/group",
            &format!("root:x:0:\netcd:x:{ETCD_UID}:\n"),
            0o644,
        );
        fs::create_dir_all(n.root().join("proc")).unwrap();
        n
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root().join(p.trim_start_matches('/'))
    }

    /// Write a root-owned file with `mode`, creating its directories (0755).
    pub fn file(&self, p: &str, content: &str, mode: u32) {
        let path = self.path(p);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, content).unwrap();
        self.chmod(p, mode);
        self.chown(p, 0, 0);
    }

    pub fn dir(&self, p: &str, mode: u32) {
        fs::create_dir_all(self.path(p)).unwrap();
        self.chmod(p, mode);
    }

    pub fn chmod(&self, p: &str, mode: u32) {
        fs::set_permissions(self.path(p), fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn chown(&self, p: &str, uid: u32, gid: u32) {
        chown(self.path(p), Some(uid), Some(gid)).unwrap();
    }

    pub fn symlink(&self, p: &str, target: &str) {
        let path = self.path(p);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    pub fn remove(&self, p: &str) {
        let path = self.path(p);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }

    /// A process: `/proc/<pid>/cmdline` (NUL-separated argv) and `environ`.
    pub fn process(&self, pid: u32, argv: &[&str], env: &[(&str, &str)]) {
        let d = self.path(&format!("/proc/{pid}"));
        fs::create_dir_all(&d).unwrap();
        let mut cmd = argv.join("\0");
        cmd.push('\0');
        fs::write(d.join("cmdline"), cmd).unwrap();
        let envs: String = env.iter().map(|(k, v)| format!("{k}={v}\0")).collect();
        fs::write(d.join("environ"), envs).unwrap();
    }

    pub fn kill(&self, pid: u32) {
        fs::remove_dir_all(self.path(&format!("/proc/{pid}"))).unwrap();
    }
}

pub const APISERVER: &[&str] = &[
    "kube-apiserver",
    "--advertise-address=10.0.0.10",
    "--allow-privileged=true",
    "--anonymous-auth=false",
    "--audit-log-maxage=30",
    "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100",
    "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
    "--authorization-mode=Node,RBAC",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--enable-admission-plugins=NodeRestriction,EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs",
    "--admission-control-config-file=/etc/kubernetes/admission.yaml",
    "--enable-bootstrap-token-auth=true",
    "--encryption-provider-config=/etc/kubernetes/enc/encryption.yaml",
    "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
    "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
    "--etcd-servers=https://127.0.0.1:2379",
    "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
    "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "--profiling=false",
    "--secure-port=6443",
    "--service-account-extend-token-expiration=false",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
    "--service-account-lookup=true",
    "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
    "--service-cluster-ip-range=10.96.0.0/12",
    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
    "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
];

pub const CONTROLLER_MANAGER: &[&str] = &[
    "kube-controller-manager",
    "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--bind-address=127.0.0.1",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
    "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
    "--kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--leader-elect=true",
    "--profiling=false",
    "--root-ca-file=/etc/kubernetes/pki/ca.crt",
    "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
    "--terminated-pod-gc-threshold=10",
    "--use-service-account-credentials=true",
    "--feature-gates=RotateKubeletServerCertificate=true",
];

pub const SCHEDULER: &[&str] = &[
    "kube-scheduler",
    "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
    "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
    "--bind-address=127.0.0.1",
    "--kubeconfig=/etc/kubernetes/scheduler.conf",
    "--leader-elect=true",
    "--profiling=false",
];

pub const ETCD: &[&str] = &[
    "etcd",
    "--advertise-client-urls=https://10.0.0.10:2379",
    "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
    "--client-cert-auth=true",
    "--data-dir=/var/lib/etcd",
    "--key-file=/etc/kubernetes/pki/etcd/server.key",
    "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.10:2379",
    "--name=cp-1",
    "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
    "--peer-client-cert-auth=true",
    "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
    "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
    "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
];

pub const KUBELET: &[&str] = &[
    "/usr/bin/kubelet",
    "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
    "--kubeconfig=/etc/kubernetes/kubelet.conf",
    "--config=/var/lib/kubelet/config.yaml",
    "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
];

pub const PROXY: &[&str] = &[
    "/usr/local/bin/kube-proxy",
    "--config=/var/lib/kube-proxy/config.conf",
    "--hostname-override=cp-1",
];

pub const KUBELET_CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
readOnlyPort: 0
streamingConnectionIdleTimeout: 5m
makeIPTablesUtilChains: true
eventRecordQPS: 5
tlsCertFile: /var/lib/kubelet/pki/kubelet.crt
tlsPrivateKeyFile: /var/lib/kubelet/pki/kubelet.key
rotateCertificates: true
featureGates:
  RotateKubeletServerCertificate: true
tlsCipherSuites:
  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
podPidsLimit: 4096
seccompDefault: true
cgroupDriver: systemd
";

pub const PROXY_CONFIG: &str = "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
metricsBindAddress: 127.0.0.1:10249
mode: iptables
";

fn manifest(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: kube-system\nspec:\n  containers:\n  - name: {name}\n    image: registry.k8s.io/{name}:v1.33.2\n"
    )
}

/// The kubelet and kube-proxy part every node has.
pub fn worker_parts(n: &Node, hostname: &str) {
    n.file("/etc/hostname", &format!("{hostname}\n"), 0o644);
    n.process(1, &["/sbin/init"], &[]);
    n.process(410, &["/usr/sbin/sshd", "-D"], &[]);
    n.process(2000, KUBELET, &[("HOME", "/root")]);
    n.process(3000, PROXY, &[]);
    n.file(
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS\n",
        0o600,
    );
    n.file(
        "/etc/kubernetes/kubelet.conf",
        "apiVersion: v1\nkind: Config\n",
        0o600,
    );
    n.file("/var/lib/kubelet/config.yaml", KUBELET_CONFIG, 0o600);
    n.dir("/etc/kubernetes/pki", 0o755);
    n.file("/etc/kubernetes/pki/ca.crt", "CERT\n", 0o644);
    n.file("/var/lib/kube-proxy/config.conf", PROXY_CONFIG, 0o600);
    n.file(
        "/var/lib/kube-proxy/kubeconfig.conf",
        "apiVersion: v1\nkind: Config\n",
        0o600,
    );
    n.file("/etc/cni/net.d/10-calico.conflist", "{}\n", 0o600);
    n.dir("/var/lib/cni/networks/k8s-pod-network", 0o700);
    n.file(
        "/var/lib/cni/networks/k8s-pod-network/10.0.0.5",
        "abc\n",
        0o600,
    );
}

/// A kubeadm control-plane node hardened so that every automatable check passes.
pub fn hardened_control_plane() -> Node {
    let n = Node::new();
    worker_parts(&n, "cp-1");
    n.process(1100, APISERVER, &[]);
    n.process(1200, CONTROLLER_MANAGER, &[]);
    n.process(1300, SCHEDULER, &[]);
    n.process(1400, ETCD, &[("ETCD_NAME", "cp-1")]);
    for m in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        n.file(
            &format!("/etc/kubernetes/manifests/{m}.yaml"),
            &manifest(m),
            0o600,
        );
    }
    for f in [
        "admin.conf",
        "super-admin.conf",
        "scheduler.conf",
        "controller-manager.conf",
    ] {
        n.file(
            &format!("/etc/kubernetes/{f}"),
            "apiVersion: v1\nkind: Config\n",
            0o600,
        );
    }
    for f in [
        "ca",
        "apiserver",
        "apiserver-kubelet-client",
        "apiserver-etcd-client",
        "front-proxy-ca",
    ] {
        n.file(&format!("/etc/kubernetes/pki/{f}.crt"), "CERT\n", 0o644);
        n.file(&format!("/etc/kubernetes/pki/{f}.key"), "KEY\n", 0o600);
    }
    n.file("/etc/kubernetes/pki/sa.pub", "PUB\n", 0o644);
    n.file("/etc/kubernetes/pki/sa.key", "KEY\n", 0o600);
    n.dir("/etc/kubernetes/pki/etcd", 0o755);
    for f in ["ca", "server", "peer"] {
        n.file(
            &format!("/etc/kubernetes/pki/etcd/{f}.crt"),
            "CERT\n",
            0o644,
        );
        n.file(&format!("/etc/kubernetes/pki/etcd/{f}.key"), "KEY\n", 0o600);
    }
    n.dir("/var/lib/etcd/member", 0o700);
    n.chmod("/var/lib/etcd", 0o700);
    n.chown("/var/lib/etcd", ETCD_UID, ETCD_UID);
    n
}

/// A worker node: kubelet and kube-proxy only.
pub fn worker() -> Node {
    let n = Node::new();
    worker_parts(&n, "worker-1");
    n
}

/// Replace one flag (or add it) in an argv.
pub fn with_flag(argv: &[&str], flag: &str, value: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = argv
        .iter()
        .filter(|a| !(a.starts_with(&format!("{flag}=")) || **a == flag))
        .map(|s| s.to_string())
        .collect();
    if let Some(v) = value {
        out.push(format!("{flag}={v}"));
    }
    out
}

pub fn process_owned(n: &Node, pid: u32, argv: &[String], env: &[(&str, &str)]) {
    let v: Vec<&str> = argv.iter().map(String::as_str).collect();
    n.process(pid, &v, env);
}
