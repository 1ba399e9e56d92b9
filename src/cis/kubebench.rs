//! kube-bench's own profiles (`cfg/<benchmark>/*.yaml` plus `cfg/config.yaml`), loaded
//! as they are: ids kept as the raw YAML text (`5.10` is not `5.1`), compare values
//! stringified. Running them is the compatibility mode: each `audit` script goes
//! through `/bin/sh` as kube-bench does, and its output is judged with kube-bench's
//! test semantics (leftmost flag match, JSONPath on `audit_config`, env lines).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

use super::CisError;
use super::eval::{CheckResult, SectionResult, Selection, State, compare, op_phrase};
use super::facts::NodeFacts;
use super::profile::{CheckSeverity, Component, Op, Target, first_line};

/// A kube-bench controls file (one target).
#[derive(Debug, Clone, Deserialize)]
pub struct KbControls {
    #[serde(default, deserialize_with = "raw")]
    pub version: String,
    #[serde(default, deserialize_with = "raw")]
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub groups: Vec<KbGroup>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KbGroup {
    #[serde(deserialize_with = "raw")]
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub checks: Vec<KbCheck>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KbCheck {
    #[serde(deserialize_with = "raw")]
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub audit: String,
    #[serde(default)]
    pub audit_config: String,
    #[serde(default)]
    pub audit_env: String,
    #[serde(default)]
    pub tests: Option<KbTests>,
    #[serde(default)]
    pub remediation: String,
    #[serde(default)]
    pub scored: bool,
    #[serde(default)]
    pub use_multiple_values: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KbTests {
    #[serde(default)]
    pub bin_op: String,
    #[serde(default)]
    pub test_items: Vec<KbItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KbItem {
    #[serde(default)]
    pub flag: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub set: Option<bool>,
    #[serde(default)]
    pub compare: Option<KbCompare>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KbCompare {
    #[serde(default)]
    pub op: String,
    #[serde(default, deserialize_with = "raw")]
    pub value: String,
}

/// A component block of `cfg/config.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KbComponent {
    #[serde(default)]
    pub bins: Vec<String>,
    #[serde(default)]
    pub confs: Vec<String>,
    #[serde(default)]
    pub defaultconf: Option<String>,
    #[serde(default)]
    pub svc: Vec<String>,
    #[serde(default)]
    pub defaultsvc: Option<String>,
    #[serde(default)]
    pub kubeconfig: Vec<String>,
    #[serde(default)]
    pub defaultkubeconfig: Option<String>,
    #[serde(default)]
    pub cafile: Vec<String>,
    #[serde(default)]
    pub defaultcafile: Option<String>,
    #[serde(default)]
    pub datadirs: Vec<String>,
    #[serde(default)]
    pub defaultdatadir: Option<String>,
}

/// A loaded kube-bench benchmark: its targets and the component paths for substitution.
#[derive(Debug, Clone)]
pub struct KbBenchmark {
    pub name: String,
    pub targets: Vec<(String, KbControls)>,
    /// target → component → paths (global config merged with the benchmark's).
    pub components: BTreeMap<String, BTreeMap<String, KbComponent>>,
}

/// A YAML scalar as its text; numbers keep their written form (`5.10`, not `5.1`).
fn raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_lowercase()
}

fn read(path: &Path) -> Result<String, CisError> {
    fs::read_to_string(path).map_err(|e| CisError::Profile {
        file: path.display().to_string(),
        message: format!("cannot read: {}", io_text(&e)),
    })
}

/// The benchmark directories under a kube-bench `cfg/` directory.
pub fn benchmarks(cfg: &Path) -> Result<Vec<String>, CisError> {
    let rd = fs::read_dir(cfg).map_err(|e| CisError::Profile {
        file: cfg.display().to_string(),
        message: format!("cannot read the profile directory: {}", io_text(&e)),
    })?;
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Parse one controls file; its `type` must match the file's stem.
pub fn parse_controls(display: &str, stem: &str, text: &str) -> Result<KbControls, CisError> {
    let c: KbControls = serde_saphyr::from_str(text).map_err(|e| CisError::Profile {
        file: display.to_string(),
        message: first_line(&e.to_string()),
    })?;
    if c.kind != stem {
        return Err(CisError::Profile {
            file: display.to_string(),
            message: format!("controls type {:?} does not match the file name", c.kind),
        });
    }
    for g in &c.groups {
        for ch in &g.checks {
            if let Some(t) = &ch.tests {
                if !matches!(t.bin_op.as_str(), "" | "and" | "or") {
                    return Err(CisError::Profile {
                        file: display.to_string(),
                        message: format!("check {}: bin_op {:?} is not and/or", ch.id, t.bin_op),
                    });
                }
                for i in &t.test_items {
                    if let Some(cmp) = &i.compare
                        && kb_op(&cmp.op) == Some(Op::Regex)
                        && let Err(e) = regex::Regex::new(&cmp.value)
                    {
                        return Err(CisError::Profile {
                            file: display.to_string(),
                            message: format!(
                                "check {}: invalid regex: {}",
                                ch.id,
                                first_line(&e.to_string())
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(c)
}

/// kube-bench's op names; `None` for an unknown op (the item then fails, as there).
pub fn kb_op(op: &str) -> Option<Op> {
    Some(match op {
        "eq" => Op::Eq,
        "noteq" => Op::Noteq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "has" => Op::Has,
        "nothave" => Op::Nothave,
        "regex" => Op::Regex,
        "valid_elements" => Op::ValidElements,
        "bitmask" => Op::Bitmask,
        _ => return None,
    })
}

fn components_of(v: &Value) -> BTreeMap<String, BTreeMap<String, KbComponent>> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.as_object() else { return out };
    for (target, block) in obj {
        let Some(block) = block.as_object() else {
            continue;
        };
        let mut comps = BTreeMap::new();
        for (name, c) in block {
            if name == "components" {
                continue;
            }
            if let Ok(k) = serde_json::from_value::<KbComponent>(c.clone()) {
                comps.insert(name.clone(), k);
            }
        }
        out.insert(target.clone(), comps);
    }
    out
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Load `cfg/<benchmark>/` with `cfg/config.yaml` merged under its own `config.yaml`.
pub fn load(cfg: &Path, benchmark: &str) -> Result<KbBenchmark, CisError> {
    let dir: PathBuf = cfg.join(benchmark);
    if !dir.is_dir() {
        return Err(CisError::Usage(format!(
            "{}: no benchmark {benchmark:?} in this kube-bench profile directory",
            cfg.display()
        )));
    }
    let parse_cfg = |p: &Path| -> Result<Value, CisError> {
        if !p.exists() {
            return Ok(Value::Null);
        }
        let v: Value = serde_saphyr::from_str(&read(p)?).map_err(|e| CisError::Profile {
            file: p.display().to_string(),
            message: first_line(&e.to_string()),
        })?;
        Ok(v)
    };
    let mut config = parse_cfg(&cfg.join("config.yaml"))?;
    let own = parse_cfg(&dir.join("config.yaml"))?;
    if config.is_null() {
        config = own;
    } else if !own.is_null() {
        merge(&mut config, &own);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| CisError::Profile {
            file: dir.display().to_string(),
            message: format!("cannot read: {}", io_text(&e)),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && p.file_stem().is_some_and(|s| s != "config")
        })
        .collect();
    files.sort();
    let mut targets = Vec::new();
    for f in files {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let c = parse_controls(&f.display().to_string(), &stem, &read(&f)?)?;
        targets.push((stem, c));
    }
    Ok(KbBenchmark {
        name: benchmark.to_string(),
        targets,
        components: components_of(&config),
    })
}

/// kube-bench's component names for ours.
fn our_component(name: &str) -> Option<Component> {
    Some(match name {
        "apiserver" => Component::Apiserver,
        "controllermanager" => Component::ControllerManager,
        "scheduler" => Component::Scheduler,
        "etcd" => Component::Etcd,
        "kubelet" => Component::Kubelet,
        "proxy" => Component::Proxy,
        _ => return None,
    })
}

/// The `$<component><ext>` values for one target, as kube-bench computes them: the
/// running binary among `bins`, else the first existing path of each list, else the
/// `default*` value, else the component name. Paths are inside `root`.
pub fn substitutions(
    kb: &KbBenchmark,
    target: &str,
    facts: &NodeFacts,
    root: &Path,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(comps) = kb.components.get(target) else {
        return out;
    };
    let in_root = |p: &str| -> String {
        if root == Path::new("/") {
            p.to_string()
        } else {
            format!("{}{}", root.display(), p)
        }
    };
    for (name, c) in comps {
        let running = our_component(name)
            .and_then(|oc| facts.components.get(&oc))
            .map(|cf| cf.argv.join(" "));
        let bin = c
            .bins
            .iter()
            .find(|b| {
                running.as_deref().is_some_and(|cmd| {
                    regex::Regex::new(&format!(r"^(\S*/)*{}", regex::escape(b)))
                        .is_ok_and(|r| r.is_match(cmd))
                })
            })
            .or(c.bins.first())
            .cloned()
            .unwrap_or_else(|| name.clone());
        let bin = if bin.contains(' ') {
            format!("'{bin}'")
        } else {
            bin
        };
        out.push((format!("${name}bin"), bin));
        let pick = |list: &[String], default: &Option<String>| -> String {
            list.iter()
                .find(|p| root.join(p.trim_start_matches('/')).exists())
                .map(|p| in_root(p))
                .or_else(|| default.as_deref().map(in_root))
                .unwrap_or_else(|| name.clone())
        };
        out.push((format!("${name}conf"), pick(&c.confs, &c.defaultconf)));
        out.push((format!("${name}svc"), pick(&c.svc, &c.defaultsvc)));
        out.push((
            format!("${name}kubeconfig"),
            pick(&c.kubeconfig, &c.defaultkubeconfig),
        ));
        out.push((format!("${name}cafile"), pick(&c.cafile, &c.defaultcafile)));
        out.push((
            format!("${name}datadir"),
            pick(&c.datadirs, &c.defaultdatadir),
        ));
    }
    // Longest names first, so `$kubeletkubeconfig` is not cut by a shorter variable.
    out.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    out
}

/// With a root other than `/`, scripts are pointed into it: absolute node paths are
/// prefixed, and `ps` is emulated over `<root>/proc` (a fixture tree has processes only
/// as files). On `/` the scripts run exactly as kube-bench runs them.
const PS_EMULATION: &str = r#"ps() {
  _n=
  while [ $# -gt 0 ]; do
    case "$1" in -fC|-C) _n="$2"; shift ;; -o) shift ;; esac
    shift
  done
  for _d in "$SECMON_ROOT"/proc/[0-9]*; do
    [ -f "$_d/cmdline" ] || continue
    _c=$(tr '\000' ' ' < "$_d/cmdline")
    _a=${_c%% *}
    if [ -n "$_n" ] && [ "${_a##*/}" != "$_n" ]; then continue; fi
    echo "root ${_d##*/} 1 0 00:00 ? 00:00:00 $_c"
  done
}
"#;

const NODE_PATHS: &[&str] = &[
    "/etc/kubernetes/",
    "/var/lib/cni/",
    "/var/lib/etcd",
    "/var/lib/kubelet/",
    "/etc/systemd/",
    "/lib/systemd/",
    "/etc/cni/",
];

/// The script as it will run: root rewrites (if any), then variable substitution.
pub fn prepare(script: &str, subs: &[(String, String)], root: &Path) -> String {
    let mut s = script.trim().to_string();
    if root != Path::new("/") {
        s = s.replace("/bin/ps ", "ps ");
        for p in NODE_PATHS {
            s = s.replace(&format!(" {p}"), &format!(" $SECMON_ROOT{p}"));
            s = s.replace(&format!("\"{p}"), &format!("\"$SECMON_ROOT{p}"));
            s = s.replace(&format!("={p}"), &format!("=$SECMON_ROOT{p}"));
        }
    }
    for (k, v) in subs {
        s = s.replace(k, v);
    }
    s
}

/// Run a script through `/bin/sh` (on stdin, as kube-bench does); stdout and stderr
/// together. `Err` carries the output too, for the reason text.
pub fn run_script(script: &str, root: &Path) -> Result<String, (String, String)> {
    if script.trim().is_empty() {
        return Ok(String::new());
    }
    let mut full = String::from("exec 2>&1\n");
    if root != Path::new("/") {
        full.push_str(PS_EMULATION);
    }
    full.push_str(script);
    full.push('\n');
    let mut cmd = Command::new("/bin/sh");
    cmd.env("SECMON_ROOT", root);
    if root != Path::new("/") {
        // kubectl in the policy audits talks to the node tree's cluster, if any, never
        // to whatever the scanning host's own kubeconfig points at.
        cmd.env("KUBECONFIG", root.join("etc/kubernetes/admin.conf"));
    }
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Err((String::new(), format!("cannot start /bin/sh: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(full.as_bytes());
    }
    // Read the output on a thread so that a hung audit can be killed after the timeout.
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
            buf
        })
    });
    let start = std::time::Instant::now();
    // Poll with a growing pause: short scripts are noticed within microseconds.
    let mut pause = std::time::Duration::from_micros(20);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if start.elapsed() > SCRIPT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {} s (killed)",
                    SCRIPT_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(5));
            }
            Err(e) => break Err(format!("/bin/sh failed: {e}")),
        }
    };
    let out = reader
        .and_then(|h| h.join().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    match status {
        Err(e) => Err((out, e)),
        Ok(st) => match st.code() {
            Some(0) => Ok(out),
            Some(c) => Err((out, format!("exit status {c}"))),
            None => Err((out, "killed by a signal".into())),
        },
    }
}

/// Longest an audit script may run (kube-bench has no limit; a hung `kubectl` would
/// hang the scan).
const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// kube-bench's flag lookup: substring test, then the leftmost
/// `(<flag>)(=|: *)*([^\s]*)` (the flag is not escaped, as there).
pub fn flag_value(output: &str, flag: &str) -> Option<String> {
    if flag.is_empty() || !output.contains(flag) {
        return None;
    }
    let re = regex::Regex::new(&format!(r"({flag})(=|: *)*([^\s]*)")).ok()?;
    let caps = re.captures(output)?;
    let v = caps.get(3).map_or("", |m| m.as_str());
    Some(if !v.is_empty() {
        v.to_string()
    } else if flag.starts_with("--") {
        "true".to_string()
    } else {
        flag.to_string()
    })
}

/// The subset of client-go JSONPath kube-bench's profiles use: `{.a.b.c}` and
/// `{range .list[:]}{}{','}{end}`.
pub fn json_path(doc: &Value, path: &str) -> Option<String> {
    let p = path.trim();
    if let Some(rest) = p.strip_prefix("{range .") {
        let key = rest.split('[').next()?;
        let list = super::eval::config_value(doc, key)?;
        let sep = if p.contains("{','}") { "," } else { "" };
        let out: String = list.split(',').map(|x| format!("{x}{sep}")).collect();
        return (!out.is_empty()).then_some(out);
    }
    let key = p.strip_prefix("{.")?.strip_suffix('}')?;
    super::eval::config_value(doc, key)
}

fn parse_doc(text: &str) -> Option<Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_saphyr::from_str::<Value>(text).ok())
}

struct ItemEnv<'a> {
    audit: &'a str,
    config: Option<&'a Value>,
    env: &'a str,
}

fn item_passes(i: &KbItem, out: &ItemEnv) -> bool {
    let mut found = flag_value(out.audit, &i.flag);
    if found.is_none()
        && !i.path.is_empty()
        && let Some(doc) = out.config
    {
        found = json_path(doc, &i.path);
    }
    if found.is_none() && !i.env.is_empty() {
        found = regex::Regex::new(&format!("{}=.*", regex::escape(&i.env)))
            .ok()
            .and_then(|r| r.find(out.env))
            .map(|m| m.as_str()[i.env.len() + 1..].to_string());
    }
    match (i.set.unwrap_or(true), found) {
        (false, f) => f.is_none(),
        (true, None) => false,
        (true, Some(v)) => match &i.compare {
            None => true,
            Some(c) => kb_op(&c.op).is_some_and(|op| compare(op, &v, &c.value)),
        },
    }
}

fn item_expected(i: &KbItem) -> String {
    let name = if !i.flag.is_empty() {
        &i.flag
    } else if !i.path.is_empty() {
        &i.path
    } else {
        &i.env
    };
    match (i.set.unwrap_or(true), &i.compare) {
        (false, _) => format!("'{name}' is not present"),
        (true, None) => format!("'{name}' is present"),
        (true, Some(c)) => match kb_op(&c.op) {
            Some(op) => format!("'{name}' {}", op_phrase(op, &c.value)),
            None => String::new(),
        },
    }
}

/// One kube-bench check on this node, with kube-bench's state machine.
fn run_check(
    ch: &KbCheck,
    group_skip: bool,
    skipped: bool,
    subs: &[(String, String)],
    facts: &NodeFacts,
    root: &Path,
) -> CheckResult {
    let mut r = CheckResult {
        id: ch.id.clone(),
        title: ch.text.clone(),
        group: String::new(),
        group_title: String::new(),
        component: None,
        automated: ch.scored,
        state: State::Info,
        severity: CheckSeverity::Medium,
        observed: None,
        expected: String::new(),
        source: Some("kube-bench audit via /bin/sh".into()),
        reason: None,
        evidence: Vec::new(),
        remediation: prepare(&ch.remediation, subs, Path::new("/")),
    };
    let not_pass = if ch.scored { State::Fail } else { State::Warn };
    if skipped || group_skip || ch.kind == "skip" {
        r.reason = Some("skipped".into());
        return r;
    }
    if ch.kind == "manual" {
        r.state = State::Warn;
        r.reason = Some("manual check".into());
        return r;
    }
    let Some(tests) = &ch.tests else {
        r.state = State::Warn;
        r.reason = Some("no tests".into());
        return r;
    };
    if tests.test_items.is_empty() {
        r.state = not_pass;
        r.reason = Some("no test items".into());
        return r;
    }
    // audit_env: as kube-bench generates it, the component's /proc/<pid>/environ.
    let mut env_script = prepare(&ch.audit_env, subs, root);
    if env_script.is_empty() && tests.test_items.iter().any(|i| !i.env.is_empty()) {
        let pid = [Component::Etcd, Component::Apiserver, Component::Kubelet]
            .iter()
            .find_map(|c| facts.components.get(c).map(|cf| cf.pid));
        if let Some(pid) = pid {
            env_script = format!("tr '\\000' '\\n' < \"$SECMON_ROOT/proc/{pid}/environ\"");
        }
    }
    let fail = |mut r: CheckResult, why: String| {
        r.state = not_pass;
        r.reason = Some(why);
        r
    };
    let env_out = match run_script(&env_script, root) {
        Ok(o) => o,
        Err((_, e)) => return fail(r, format!("audit_env failed: {e}")),
    };
    let audit = prepare(&ch.audit, subs, root);
    let audit_out = match run_script(&audit, root) {
        Ok(o) => o,
        Err((o, e)) => {
            r.observed = Some(o.trim().to_string());
            return fail(r, format!("audit failed: {e}"));
        }
    };
    let config_out = match run_script(&prepare(&ch.audit_config, subs, root), root) {
        Ok(o) => o,
        Err((o, e))
            if (e.contains("127") || o.contains("No such file or directory"))
                && (!audit_out.is_empty() || !env_out.is_empty()) =>
        {
            String::new()
        }
        Err((_, e)) => return fail(r, format!("audit_config failed: {e}")),
    };
    let doc = if config_out.trim().is_empty() {
        None
    } else {
        parse_doc(&config_out)
    };
    let or = tests.bin_op == "or";
    let judge = |audit: &str| {
        let env = ItemEnv {
            audit,
            config: doc.as_ref(),
            env: &env_out,
        };
        let mut results = tests.test_items.iter().map(|i| item_passes(i, &env));
        if or {
            results.any(|x| x)
        } else {
            results.all(|x| x)
        }
    };
    let passed = if ch.use_multiple_values {
        let lines: Vec<&str> = audit_out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        !lines.is_empty() && lines.iter().all(|l| judge(l))
    } else {
        judge(&audit_out)
    };
    r.expected = tests
        .test_items
        .iter()
        .map(item_expected)
        .collect::<Vec<_>>()
        .join(if or { " OR " } else { " AND " });
    r.observed = Some(audit_out.trim().to_string());
    r.state = if passed { State::Pass } else { not_pass };
    r
}

/// Run a kube-bench benchmark in compatibility mode on the node under `facts.root`.
pub fn run(
    kb: &KbBenchmark,
    facts: &NodeFacts,
    sel: &Selection,
) -> Result<Vec<SectionResult>, CisError> {
    let root = PathBuf::from(&facts.root);
    let mut targets: Vec<(Target, &KbControls, &str)> = kb
        .targets
        .iter()
        .filter_map(|(name, c)| Target::parse(name).map(|t| (t, c, name.as_str())))
        .collect();
    targets.sort_by_key(|(t, _, _)| *t);
    let mut out = Vec::new();
    for (target, controls, name) in targets {
        if !sel.wants_target(target) {
            continue;
        }
        let subs = substitutions(kb, name, facts, &root);
        let mut results = Vec::new();
        for g in &controls.groups {
            for ch in &g.checks {
                if !sel.wants(&ch.id, &g.id) {
                    continue;
                }
                let mut r = run_check(
                    ch,
                    g.kind == "skip",
                    sel.skips(&ch.id, &g.id),
                    &subs,
                    facts,
                    &root,
                );
                r.group = g.id.clone();
                r.group_title = g.text.clone();
                results.push(r);
            }
        }
        if results.is_empty() && !sel.checks.is_empty() {
            continue;
        }
        out.push(SectionResult {
            id: controls.id.clone(),
            title: controls.text.clone(),
            target,
            results,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_raw_text() {
        let text = "controls:\nversion: \"x\"\nid: 5\ntext: t\ntype: policies\ngroups:\n- id: 5.10\n  text: g\n  checks:\n  - id: 5.10.1\n    text: c\n    tests:\n      test_items:\n      - flag: a\n        compare: {op: eq, value: false}\n  - id: 5.1\n    text: d\n";
        let c = parse_controls("t.yaml", "policies", text).unwrap();
        assert_eq!(c.id, "5");
        assert_eq!(c.groups[0].id, "5.10");
        assert_eq!(c.groups[0].checks[0].id, "5.10.1");
        assert_eq!(c.groups[0].checks[1].id, "5.1");
        let cmp = c.groups[0].checks[0].tests.as_ref().unwrap().test_items[0]
            .compare
            .as_ref()
            .unwrap();
        assert_eq!(cmp.value, "false");
    }

    #[test]
    fn kube_bench_value_extraction() {
        let ps = "root 1 kube-apiserver --etcd-servers=x --profiling=false --anonymous-auth";
        assert_eq!(flag_value(ps, "--profiling").as_deref(), Some("false"));
        assert_eq!(flag_value(ps, "--anonymous-auth").as_deref(), Some("true"));
        assert_eq!(
            flag_value("root:root", "root:root").as_deref(),
            Some("root:root")
        );
        assert_eq!(
            flag_value("permissions=644", "permissions").as_deref(),
            Some("644")
        );
        assert_eq!(flag_value(ps, "--etcd-cafile"), None);
        // Substring semantics, as kube-bench: `--etcd` is found inside `--etcd-servers`.
        assert_eq!(flag_value(ps, "--etcd").as_deref(), Some("-servers=x"));
        let doc = serde_json::json!({"a": {"b": false}, "l": ["X", "Y"]});
        assert_eq!(json_path(&doc, "{.a.b}").as_deref(), Some("false"));
        assert_eq!(
            json_path(&doc, "{range .l[:]}{}{','}{end}").as_deref(),
            Some("X,Y,")
        );
        assert_eq!(json_path(&doc, "{.z}"), None);
    }

    #[test]
    fn scripts_run_through_sh_with_root_rewrites() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc/kubernetes")).unwrap();
        std::fs::write(d.path().join("etc/kubernetes/admin.conf"), "x").unwrap();
        let s = prepare(
            "cat /etc/kubernetes/admin.conf; echo $apiserverbin",
            &[("$apiserverbin".into(), "kube-apiserver".into())],
            d.path(),
        );
        assert_eq!(run_script(&s, d.path()).unwrap(), "xkube-apiserver\n");
        let e = run_script("echo out; exit 3", d.path()).unwrap_err();
        assert_eq!(e, ("out\n".to_string(), "exit status 3".to_string()));
    }

    #[test]
    fn bad_profiles_are_errors() {
        assert!(parse_controls("t.yaml", "node", "type: master\n").is_err());
        assert!(parse_controls("t.yaml", "node", "type: [").is_err());
        let text = "type: node\ngroups:\n- id: 1\n  checks:\n  - id: 1.1\n    tests: {bin_op: xor, test_items: []}\n";
        assert!(parse_controls("t.yaml", "node", text).is_err());
    }
}
