//! Generate the seed corpus for `rules_loader` from real rules files: each file whole,
//! each top-level item on its own, runs of a few consecutive items (so that lists and
//! macros meet the rules that use them), every condition on its own, items that override
//! or append to the default ruleset's lists, macros and rules, and a few hand-written
//! conditions that use every operator.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_rules_corpus -- \
//!     fuzz/corpus/rules_loader ../shared/conformance/falco-rules/*.yaml rules/secmon_rules.yaml
//! ```

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use secmon::rules::{self, HostResolver, LoadOptions};

/// The longest input worth seeding (the fuzz run uses -max_len=65536).
const MAX_LEN: usize = 65536;

/// How many consecutive items make a run.
const RUN: usize = 6;

const CONDITIONS: &[&str] = &[
    "evt.type in (open, openat, openat2) and evt.dir = < and fd.name startswith /etc",
    "spawned_process and container and proc.name in (bash, sh) and proc.tty != 0",
    "proc.aname[2] = sshd or proc.pname glob 'runc*' or proc.cmdline icontains \"curl \"",
    "fd.name pmatch (/etc, /usr/bin) and not fd.name endswith .log",
    "fd.sip in (\"10.0.0.1\", \"::1\") or fd.snet in (\"10.0.0.0/8\") or fd.sport >= 1024",
    "fd.sip.name = example.com and fd.sport in (80, 443)",
    "k8s.pod.label[app] exists and k8s.ns.name != kube-system",
    "proc.cmdline regex '^nc(at)? .*-e' and user.uid <= 0 and evt.res < 0",
    "proc.args bcontains 2f746d70 and proc.exepath bstartswith 2f746d70",
    "proc.env[LD_PRELOAD] exists or proc.cap_effective intersects (CAP_SYS_ADMIN)",
    "evt.arg.flags contains O_CREAT and evt.rawres > 0 and fd.typechar = f",
    "not (not (a or b) and (c)) and ((((proc.name = x))))",
    "proc.name iglob '*SH' and container.image.repository in (shell_binaries)",
    "evt.type = execve and proc.is_exe_upper_layer = true",
    "(proc.name = \"a \\\" b\") and proc.name = 'c'",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: seed_rules_corpus OUT_DIR RULES_FILE...");
        std::process::exit(2);
    };
    let out = Path::new(&out);
    std::fs::create_dir_all(out).expect("create the corpus directory");
    let mut paths: Vec<String> = args.collect();
    paths.sort();
    let mut seen = HashSet::new();
    let mut written = 0usize;
    let mut files = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("read a rules file");
        written += write(out, &mut seen, &text);
        let items = items(&text);
        for item in &items {
            written += write(out, &mut seen, item);
            for condition in conditions(item) {
                written += write(out, &mut seen, &condition);
            }
        }
        for run in items.chunks(RUN) {
            written += write(out, &mut seen, &run.concat());
        }
        files.push((path.clone(), text));
    }
    // The conditions as the compiler sees them (exceptions folded in), from loading the
    // files in an order that works: Falco's stable rules first, then the files that use them.
    files.sort_by_key(|(p, _)| !p.ends_with("/falco_rules.yaml"));
    if let Ok((ruleset, _)) = rules::load_files(&files, &options()) {
        for r in ruleset.rules() {
            written += write(out, &mut seen, &r.condition);
        }
    }
    for c in CONDITIONS {
        written += write(out, &mut seen, c);
    }
    for item in overrides() {
        written += write(out, &mut seen, &item);
    }
    eprintln!(
        "{written} seeds from {} rules files in {}",
        paths.len(),
        out.display()
    );
}

fn options() -> LoadOptions {
    LoadOptions {
        resolver: HostResolver::Disabled,
        ..LoadOptions::default()
    }
}

/// The top-level items of a rules file as text: each starts at a `-` in the first column
/// and runs to the next one (comments before an item stay with the previous one).
fn items(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with('-') && !current.trim().is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if line.starts_with('-') || !current.is_empty() {
            current.push_str(line);
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The `condition:` values of an item, plain or as a block (`>` or `|`), as text.
fn conditions(item: &str) -> Vec<String> {
    let lines: Vec<&str> = item.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("condition:") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let value = line[at + "condition:".len()..].trim();
        if !value.is_empty() && !value.starts_with(['>', '|']) {
            out.push(value.trim_matches(['"', '\'']).to_string());
            continue;
        }
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .map(|l| l.trim())
            .collect();
        let joined = block.join(" ").trim().to_string();
        if !joined.is_empty() {
            out.push(joined);
        }
    }
    out
}

/// Items that extend or override every list, macro and rule of the default ruleset, in
/// the deprecated and the current syntax.
fn overrides() -> Vec<String> {
    let Ok((ruleset, _)) = rules::load_files(&rules::default_ruleset_sources(), &options()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in ruleset.list_names() {
        out.push(format!(
            "- list: {name}\n  items: [x, \"/y\"]\n  override:\n    items: append\n"
        ));
        out.push(format!("- list: {name}\n  items: []\n  append: true\n"));
    }
    for name in ruleset.macro_names() {
        out.push(format!(
            "- macro: {name}\n  condition: or proc.name = x\n  override:\n    condition: append\n"
        ));
        out.push(format!(
            "- macro: {name}\n  condition: (never_true)\n  override:\n    condition: replace\n"
        ));
    }
    for r in ruleset.rules() {
        let name = yaml_quote(&r.name);
        out.push(format!(
            "- rule: {name}\n  condition: and not proc.name = x\n  output: \" %proc.name %fd.name\"\n  \
             override:\n    condition: append\n    output: append\n"
        ));
        out.push(format!(
            "- rule: {name}\n  enabled: false\n  override:\n    enabled: replace\n"
        ));
        out.push(format!(
            "- rule: {name}\n  exceptions:\n    - name: x\n      fields: [proc.name, fd.name]\n      \
             comps: [=, startswith]\n      values:\n        - [a, /b]\n  override:\n    exceptions: append\n"
        ));
        out.push(format!(
            "- rule: {name}\n  priority: DEBUG\n  tags: [T1059]\n  \
             override:\n    priority: replace\n    tags: append\n"
        ));
        out.push(format!(
            "- rule: {name}\n  condition: proc.name = x\n  append: true\n"
        ));
    }
    out
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Write one seed named by its digest; 1 if it was new.
fn write(out: &Path, seen: &mut HashSet<u64>, text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LEN || !seen.insert(digest(bytes)) {
        return 0;
    }
    let path = out.join(format!("seed-{:016x}", digest(bytes)));
    std::fs::write(path, bytes).expect("write a seed");
    1
}
