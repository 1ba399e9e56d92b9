//! Pod Security performance, printed as figures (no harness, no thresholds):
//!
//! 1. the engine alone: pod evaluations per second on one core at restricted:latest, for
//!    a hardened pod, a bare pod (four violations, messages built) and a realistic mix;
//! 2. `kubectl-secmon psa check -f` end to end on a file of 10,000 mixed documents.
//!
//! Run: `cargo bench --bench psa`.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use secmon::psa::workload::{self, PodTemplate, WorkloadKind};
use secmon::psa::{self, Policy};
use serde_json::json;

fn template(v: serde_json::Value) -> PodTemplate {
    workload::extract(WorkloadKind::Pod, &v).unwrap().unwrap()
}

fn hardened() -> PodTemplate {
    template(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api", "labels": {"app": "api"}},
        "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
          "volumes": [{"name": "cfg", "configMap": {"name": "api"}}, {"name": "tmp", "emptyDir": {}}],
          "containers": [
            {"name": "api", "image": "registry.example/api:2.1", "ports": [{"containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
             "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}},
            {"name": "proxy", "image": "envoy:1.31",
             "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]}}),
    )
}

fn bare() -> PodTemplate {
    template(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}),
    )
}

fn with_init() -> PodTemplate {
    template(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
        "spec": {"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
          "initContainers": [{"name": "migrate", "image": "app:1", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
          "containers": [{"name": "app", "image": "app:1", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}),
    )
}

/// CPU time of this thread, so a busy machine does not understate the per-core rate.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Evaluations per CPU-second and per wall-second over at least `min` of wall time.
fn rate(policy: &Policy, pods: &[PodTemplate], min: Duration) -> (f64, f64) {
    let mut n = 0u64;
    let start = Instant::now();
    let cpu0 = thread_cpu();
    while start.elapsed() < min {
        for _ in 0..1000 {
            for p in pods {
                let e = psa::evaluate(policy, &p.meta, &p.spec);
                black_box(&e);
                n += 1;
            }
        }
    }
    let cpu = (thread_cpu() - cpu0).as_secs_f64();
    (n as f64 / cpu, n as f64 / start.elapsed().as_secs_f64())
}

fn engine() {
    let policy = Policy::parse("restricted", "latest").unwrap();
    let min = Duration::from_secs(2);
    let (h, b, i) = (hardened(), bare(), with_init());
    // A realistic mix: most pods pass, some fail.
    let mix = vec![
        h.clone(),
        h.clone(),
        i.clone(),
        h.clone(),
        b.clone(),
        i.clone(),
        h.clone(),
        i.clone(),
        h.clone(),
        b.clone(),
    ];
    println!("psa engine, restricted:latest, one core:");
    for (name, pods) in [
        ("hardened pod (allowed)", vec![h]),
        ("bare pod (4 violations)", vec![b]),
        ("pod with init container (allowed)", vec![i]),
        ("mix (80% allowed)", mix),
    ] {
        let (cpu, wall) = rate(&policy, &pods, min);
        println!(
            "  {name:<36} {cpu:>12.0} evaluations/CPU-s ({:.0} ns each; {wall:.0}/s wall)",
            1e9 / cpu
        );
    }
}

fn document(i: usize) -> String {
    match i % 5 {
        0 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n  namespace: ns-{}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web-{i}}}\n  template:\n    metadata:\n      labels: {{app: web-{i}}}\n    spec:\n      containers:\n        - name: nginx\n          image: nginx:1.27\n          ports:\n            - containerPort: 80\n",
            i % 100
        ),
        1 => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-{i}\nspec:\n  selector: {{app: web-{i}}}\n  ports:\n    - port: 80\n      targetPort: 8080\n"
        ),
        2 => format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api-{i}\nspec:\n  securityContext:\n    runAsNonRoot: true\n    seccompProfile: {{type: RuntimeDefault}}\n  containers:\n    - name: api\n      image: registry.example/api:2.1\n      securityContext:\n        allowPrivilegeEscalation: false\n        capabilities: {{drop: [\"ALL\"]}}\n"
        ),
        3 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i}\ndata:\n  level: info\n  endpoint: https://example.invalid/{i}\n"
        ),
        _ => format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: report-{i}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          hostNetwork: true\n          containers:\n            - name: report\n              image: registry.example/report:1.0\n              securityContext: {{privileged: true}}\n"
        ),
    }
}

/// User + system CPU time used by finished child processes so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn end_to_end() {
    let dir = std::env::temp_dir().join(format!("secmon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("10k.yaml");
    let text: Vec<String> = (0..10_000).map(document).collect();
    std::fs::write(&file, text.join("---\n")).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let bin = env!("CARGO_BIN_EXE_kubectl-secmon");
    let mut times = Vec::new();
    for format in ["table", "json", "sarif"] {
        times.clear();
        let cpu0 = children_cpu();
        for _ in 0..5 {
            let start = Instant::now();
            let out = Command::new(bin)
                .args(["psa", "check", "-f", file.to_str().unwrap(), "-o", format])
                .output()
                .unwrap();
            times.push(start.elapsed());
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let cpu = (children_cpu() - cpu0) / 5;
        times.sort();
        println!(
            "psa check -f <10,000 documents, {:.1} MB> -o {format:<5}: wall best {:>4} ms, median {:>4} ms; CPU {:>4} ms per run (5 runs)",
            size as f64 / 1e6,
            times[0].as_millis(),
            times[2].as_millis(),
            cpu.as_millis()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    engine();
    end_to_end();
}
