//! CIS node-scan performance, printed as figures (no harness): on the hardened kubeadm
//! control-plane fixture (built in a tempdir, as the tests do), side by side in one run:
//!
//! 1. the native scan (process table, stats, configs, evaluation of all 131 checks);
//! 2. the same benchmark in kube-bench compatibility mode (one `/bin/sh` per audit
//!    script, as kube-bench runs them), when kube-bench's profiles are present;
//! 3. `kubectl-secmon cis run` end to end as a process, for the wall time a user sees.
//!
//! Run: `cargo bench --bench cis`. Target: native under 50 ms and at least 20× faster
//! than compatibility mode.

#[path = "../tests/common/cis_node.rs"]
mod cis_node;

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use secmon::commands::cis::{RunArgs, run_compat, scan};

fn args(root: &std::path::Path, profile_dir: Option<PathBuf>) -> RunArgs {
    cis_node::run_args(root, "cis-1.12", profile_dir)
}

/// Median and minimum of `n` timed runs.
fn time(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[v.len() / 2], v[0])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let node = cis_node::hardened_control_plane();
    let native = args(node.root(), None);
    // Warm the page cache once.
    let r = scan(&native).expect("native scan");
    assert_eq!(r.totals.fail, 0);
    let (med, min) = time(50, || {
        black_box(scan(&native).expect("native scan"));
    });
    println!(
        "native scan, {} checks:          median {:7.2} ms   min {:7.2} ms",
        r.results().count(),
        ms(med),
        ms(min)
    );

    let bin = env!("CARGO_BIN_EXE_kubectl-secmon");
    let root = node.root().to_str().unwrap_or("/").to_string();
    let (pmed, pmin) = time(10, || {
        let o = Command::new(bin)
            .args(["cis", "run", "--root", &root, "-o", "json"])
            .output()
            .expect("run the binary");
        black_box(o);
    });
    println!(
        "kubectl-secmon cis run (process): median {:7.2} ms   min {:7.2} ms",
        ms(pmed),
        ms(pmin)
    );

    let cfg = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/kube-bench/cfg"
    ));
    if !cfg.is_dir() {
        println!(
            "compat mode: SKIPPED (no kube-bench profiles at {})",
            cfg.display()
        );
        return;
    }
    let compat = args(node.root(), Some(cfg));
    let (cmed, cmin) = time(3, || {
        black_box(run_compat(&compat).expect("compat run"));
    });
    println!(
        "kube-bench compat, same checks:   median {:7.2} ms   min {:7.2} ms",
        ms(cmed),
        ms(cmin)
    );
    println!(
        "native is {:.0}x faster (median vs median); target: < 50 ms and >= 20x",
        cmed.as_secs_f64() / med.as_secs_f64()
    );
}
