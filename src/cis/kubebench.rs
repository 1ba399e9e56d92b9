//! kube-bench's own profiles (`cfg/<benchmark>/*.yaml` plus `cfg/config.yaml`), loaded
//! as they are: ids kept as the raw YAML text (`5.10` is not `5.1`), compare values
//! stringified. Running them is the compatibility mode: each `audit` script goes
//! through `/bin/sh` as kube-bench does, and its output is judged with kube-bench's
//! test semantics (leftmost flag match, JSONPath on `audit_config`, env lines).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::CisError;
use super::profile::{Op, first_line};

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

fn read(path: &Path) -> Result<String, CisError> {
    fs::read_to_string(path).map_err(|e| CisError::Profile {
        file: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })
}

/// The benchmark directories under a kube-bench `cfg/` directory.
pub fn benchmarks(cfg: &Path) -> Result<Vec<String>, CisError> {
    let rd = fs::read_dir(cfg).map_err(|e| CisError::Profile {
        file: cfg.display().to_string(),
        message: format!("cannot read the profile directory: {e}"),
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
            message: format!("cannot read: {e}"),
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

/// Run a kube-bench benchmark in compatibility mode.
pub fn run(
    _kb: &KbBenchmark,
    _facts: &super::facts::NodeFacts,
    _sel: &super::eval::Selection,
) -> Result<Vec<super::eval::SectionResult>, CisError> {
    Err(CisError::Usage(
        "compatibility mode is not available in this build".into(),
    ))
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
    fn bad_profiles_are_errors() {
        assert!(parse_controls("t.yaml", "node", "type: master\n").is_err());
        assert!(parse_controls("t.yaml", "node", "type: [").is_err());
        let text = "type: node\ngroups:\n- id: 1\n  checks:\n  - id: 1.1\n    tests: {bin_op: xor, test_items: []}\n";
        assert!(parse_controls("t.yaml", "node", text).is_err());
    }
}
