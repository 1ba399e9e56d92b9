//! The kube client is configured from the global flags with kubectl's semantics. One test
//! per process state: this file owns the KUBECONFIG and HOME variables it sets.

use std::path::Path;

use clap::Parser;
use secmon::cli::Cli;
use secmon::kube::{self, kubeconfig_paths, read_kubeconfigs};

fn kubeconfig(server: &str, ctx: &str, ns: Option<&str>) -> String {
    let ns = ns
        .map(|n| format!("\n    namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {ctx}\nclusters:\n- name: {ctx}-cluster\n  cluster:\n    server: {server}\ncontexts:\n- name: {ctx}\n  context:\n    cluster: {ctx}-cluster\n    user: {ctx}-user{ns}\nusers:\n- name: {ctx}-user\n  user:\n    token: t-{ctx}\n"
    )
}

fn global(args: &[&str]) -> secmon::cli::GlobalArgs {
    let mut argv = vec!["kubectl-secmon"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["version"]);
    Cli::try_parse_from(argv).unwrap().global
}

#[test]
fn kubeconfig_resolution_follows_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        kubeconfig("https://127.0.0.1:6443", "alpha", Some("team-a")),
    )
    .unwrap();
    std::fs::write(&b, kubeconfig("https://127.0.0.2:6443", "beta", None)).unwrap();
    let list = format!(
        "{}::{}:{}",
        a.display(),
        b.display(),
        dir.path().join("missing").display()
    );

    // KUBECONFIG is a list; empty entries are ignored; missing files are skipped.
    let paths = kubeconfig_paths(Some(&list), None);
    assert_eq!(paths.len(), 3);
    let merged = read_kubeconfigs(&paths).unwrap();
    assert_eq!(
        merged.current_context.as_deref(),
        Some("alpha"),
        "the first file's current-context wins"
    );
    assert_eq!(merged.contexts.len(), 2);
    // Without KUBECONFIG, ~/.kube/config if present.
    assert!(kubeconfig_paths(None, Some(Path::new("/nonexistent-home"))).is_empty());

    let rt = kube::runtime().unwrap();
    // SAFETY: this test binary has one test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("KUBECONFIG", &list);
        std::env::remove_var("KUBERNETES_SERVICE_HOST");
    }
    let cfg = rt.block_on(kube::config(&global(&[]))).unwrap();
    assert_eq!(cfg.cluster_url.to_string(), "https://127.0.0.1:6443/");
    assert_eq!(cfg.default_namespace, "team-a");
    let cfg = rt
        .block_on(kube::config(&global(&["--context", "beta"])))
        .unwrap();
    assert_eq!(cfg.cluster_url.to_string(), "https://127.0.0.2:6443/");
    assert_eq!(cfg.default_namespace, "default");
    let cfg = rt
        .block_on(kube::config(&global(&[
            "--context",
            "beta",
            "--cluster",
            "alpha-cluster",
            "-n",
            "x",
            "--request-timeout",
            "7s",
        ])))
        .unwrap();
    assert_eq!(cfg.cluster_url.to_string(), "https://127.0.0.1:6443/");
    assert_eq!(cfg.default_namespace, "x");
    assert_eq!(cfg.read_timeout, Some(std::time::Duration::from_secs(7)));

    // --kubeconfig reads only that file: no merging with KUBECONFIG.
    let err = rt
        .block_on(kube::config(&global(&[
            "--kubeconfig",
            b.to_str().unwrap(),
            "--context",
            "alpha",
        ])))
        .unwrap_err();
    assert!(err.to_string().contains("alpha"), "{err}");
    let cfg = rt
        .block_on(kube::config(&global(&[
            "--kubeconfig",
            b.to_str().unwrap(),
        ])))
        .unwrap();
    assert_eq!(cfg.cluster_url.to_string(), "https://127.0.0.2:6443/");

    // A client builds without panicking (one TLS provider), even though nothing listens.
    rt.block_on(kube::client(&global(&[
        "--kubeconfig",
        a.to_str().unwrap(),
    ])))
    .unwrap();

    // Nothing configured and not in a cluster: one clear error.
    unsafe {
        std::env::set_var("KUBECONFIG", dir.path().join("none").to_str().unwrap());
        std::env::set_var("HOME", dir.path());
    }
    let err = rt.block_on(kube::config(&global(&[]))).unwrap_err();
    assert!(err.to_string().starts_with("no kubeconfig found"), "{err}");

    // A malformed kubeconfig names the file.
    std::fs::write(&a, "clusters: [").unwrap();
    let err = rt
        .block_on(kube::config(&global(&[
            "--kubeconfig",
            a.to_str().unwrap(),
        ])))
        .unwrap_err();
    assert!(err.to_string().contains(a.to_str().unwrap()), "{err}");
}
