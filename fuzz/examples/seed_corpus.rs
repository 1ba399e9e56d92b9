//! Generate the seed corpus for `manifest_psa` from upstream's Pod Security fixtures:
//! every distinct fixture as it is, as JSON, and wrapped in the workload kinds (YAML and
//! JSON), plus a few multi-document files and Lists.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus -- \
//!     ../shared/conformance/psa/testdata fuzz/corpus/manifest_psa
//! ```

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use secmon::manifest::{self, SourceFile};
use serde_json::{Value, json};

/// The longest input worth seeding (the fuzz run uses -max_len=65536).
const MAX_LEN: usize = 65536;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(testdata), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: seed_corpus TESTDATA_DIR OUT_DIR");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("create the corpus directory");
    let mut files = Vec::new();
    collect(Path::new(&testdata), &mut files);
    files.sort();
    let mut seen = HashSet::new();
    let mut seen_pods = HashSet::new();
    let mut written = 0usize;
    let mut pods = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("read a fixture");
        let Some(pod) = read_pod(path, bytes.clone()) else {
            written += write(&out, &mut seen, &bytes);
            continue;
        };
        // Many fixtures repeat across versions and differ only in their name.
        let mut anonymous = pod;
        anonymous["metadata"]["name"] = json!("p");
        if !seen_pods.insert(digest(anonymous.to_string().as_bytes())) {
            continue;
        }
        written += write(&out, &mut seen, &bytes);
        written += write(&out, &mut seen, anonymous.to_string().as_bytes());
        for (i, wrapped) in wrappers(&anonymous).into_iter().enumerate() {
            let text = if i % 2 == 0 {
                secmon::report::to_yaml(&wrapped).expect("YAML")
            } else {
                serde_json::to_string_pretty(&wrapped).expect("JSON")
            };
            written += write(&out, &mut seen, text.as_bytes());
        }
        pods.push(anonymous);
    }
    // Multi-document streams and Lists of a few pods each.
    for chunk in pods.chunks(7) {
        let docs: Vec<String> = chunk
            .iter()
            .map(|p| secmon::report::to_yaml(p).expect("YAML"))
            .collect();
        written += write(&out, &mut seen, docs.join("---\n").as_bytes());
        let list = json!({"apiVersion": "v1", "kind": "List", "items": chunk});
        written += write(&out, &mut seen, list.to_string().as_bytes());
    }
    eprintln!(
        "{written} seeds from {} fixtures in {}",
        files.len(),
        out.display()
    );
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the fixture directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn read_pod(path: &Path, bytes: Vec<u8>) -> Option<Value> {
    let file = SourceFile {
        path: Some(path.to_path_buf()),
        display: path.display().to_string(),
        text: manifest::text_from_bytes(bytes).ok()?,
        json: false,
    };
    let (objects, _) = manifest::objects(&[file]);
    objects.into_iter().next().map(|o| o.value)
}

/// The pod in each workload kind that carries a pod template.
fn wrappers(pod: &Value) -> Vec<Value> {
    let template = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
    let meta = json!({"name": "w"});
    let with_template = |api: &str, kind: &str| {
        json!({"apiVersion": api, "kind": kind, "metadata": meta,
               "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": template}})
    };
    vec![
        with_template("apps/v1", "Deployment"),
        with_template("apps/v1", "StatefulSet"),
        with_template("apps/v1", "DaemonSet"),
        with_template("apps/v1", "ReplicaSet"),
        with_template("v1", "ReplicationController"),
        with_template("batch/v1", "Job"),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": template}),
    ]
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Write one seed named by its digest; 1 if it was new.
fn write(out: &Path, seen: &mut HashSet<u64>, bytes: &[u8]) -> usize {
    if bytes.len() > MAX_LEN || !seen.insert(digest(bytes)) {
        return 0;
    }
    let path = out.join(format!("seed-{:016x}", digest(bytes)));
    std::fs::write(path, bytes).expect("write a seed");
    1
}
