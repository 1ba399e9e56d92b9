//! `emit es-template` checked structurally (no Elasticsearch server can run here; OpenSearch
//! runs for real in tests/opensearch.rs): the `--flavor elasticsearch` requests against the
//! request shapes Elasticsearch 8 documents (`PUT _index_template`, `PUT
//! _component_template`, `PUT _ilm/policy`: serde structs that refuse unknown keys), the
//! rules that make a data stream work, and the ISM policy of `--flavor opensearch`. Also:
//! every field of the ECS documents the sink writes is mapped by the template.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};

fn emit(args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args(["emit", "es-template", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn by_path<'a>(reqs: &'a Value, prefix: &str) -> &'a Value {
    reqs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no request for {prefix} in {reqs:#}"))
}

// Elasticsearch 8's request bodies (elasticsearch-specification: IndicesPutIndexTemplate,
// ClusterPutComponentTemplate, IlmPutLifecycle), with the keys they allow.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PutIndexTemplate {
    index_patterns: Vec<String>,
    composed_of: Option<Vec<String>>,
    template: Option<IndexTemplateMapping>,
    data_stream: Option<DataStreamVisibility>,
    priority: Option<u64>,
    version: Option<u64>,
    _meta: Option<BTreeMap<String, Value>>,
    allow_auto_create: Option<bool>,
    ignore_missing_component_templates: Option<Vec<String>>,
    deprecated: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DataStreamVisibility {
    hidden: Option<bool>,
    allow_custom_routing: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IndexTemplateMapping {
    settings: Option<Value>,
    mappings: Option<Value>,
    aliases: Option<Value>,
    lifecycle: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PutComponentTemplate {
    template: IndexTemplateMapping,
    version: Option<u64>,
    _meta: Option<BTreeMap<String, Value>>,
    deprecated: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutLifecycle {
    policy: IlmPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IlmPolicy {
    phases: BTreeMap<String, IlmPhase>,
    _meta: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IlmPhase {
    min_age: Option<String>,
    actions: BTreeMap<String, Value>,
}

/// The ILM actions each phase allows (Elasticsearch 8 docs, "Index lifecycle actions").
fn allowed_actions(phase: &str) -> &'static [&'static str] {
    match phase {
        "hot" => &[
            "set_priority",
            "unfollow",
            "rollover",
            "readonly",
            "downsample",
            "shrink",
            "forcemerge",
            "searchable_snapshot",
        ],
        "warm" => &[
            "set_priority",
            "unfollow",
            "readonly",
            "downsample",
            "allocate",
            "migrate",
            "shrink",
            "forcemerge",
        ],
        "delete" => &["wait_for_snapshot", "delete"],
        _ => &[],
    }
}

fn es_duration(s: &str) -> bool {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    split > 0
        && matches!(
            &s[split..],
            "d" | "h" | "m" | "s" | "ms" | "micros" | "nanos"
        )
}

/// Built-in Elasticsearch 8 templates' patterns that a user template must not shadow.
const BUILT_IN: [&str; 6] = [
    "logs-*-*",
    "metrics-*-*",
    "synthetics-*-*",
    "profiling-*",
    "traces-*-*",
    ".kibana*",
];

/// A tiny glob for index patterns (`*` only).
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

#[test]
fn elasticsearch_flavor_has_es8_request_shapes() {
    let reqs = emit(&["--flavor", "elasticsearch"]);
    for r in reqs.as_array().unwrap() {
        assert_eq!(r["method"], "PUT");
    }
    // The order matters: the policy and component exist before the template names them.
    let paths: Vec<&str> = reqs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/_ilm/policy/secmon-alerts",
            "/_component_template/secmon-alerts-settings",
            "/_index_template/secmon-alerts"
        ]
    );

    let ilm: PutLifecycle =
        serde_json::from_value(by_path(&reqs, "/_ilm/").get("body").unwrap().clone()).unwrap();
    for (name, phase) in &ilm.policy.phases {
        assert!(
            ["hot", "warm", "cold", "frozen", "delete"].contains(&name.as_str()),
            "{name}"
        );
        assert!(es_duration(phase.min_age.as_deref().unwrap()), "{phase:?}");
        for action in phase.actions.keys() {
            assert!(
                allowed_actions(name).contains(&action.as_str()),
                "{action} in {name}"
            );
        }
    }
    let hot = &ilm.policy.phases["hot"];
    let rollover = &hot.actions["rollover"];
    assert_eq!(rollover["max_age"], "1d");
    assert_eq!(rollover["max_primary_shard_size"], "50gb");
    assert_eq!(ilm.policy.phases["delete"].min_age.as_deref(), Some("90d"));
    assert_eq!(ilm.policy.phases["delete"].actions["delete"], json!({}));

    let comp: PutComponentTemplate =
        serde_json::from_value(by_path(&reqs, "/_component_template/")["body"].clone()).unwrap();
    let settings = comp.template.settings.unwrap();
    assert_eq!(settings["index"]["lifecycle"]["name"], "secmon-alerts");
    assert_eq!(settings["index"]["number_of_shards"], 1);

    let tpl: PutIndexTemplate =
        serde_json::from_value(by_path(&reqs, "/_index_template/")["body"].clone()).unwrap();
    assert!(tpl.data_stream.is_some(), "a data stream template");
    let prio = tpl.priority.unwrap();
    assert!(
        prio > 500,
        "priority {prio} must beat the built-in templates"
    );
    assert_eq!(
        tpl.composed_of.as_deref(),
        Some(&["secmon-alerts-settings".to_string()][..])
    );
    for p in &tpl.index_patterns {
        assert!(!p.contains('@'));
        for b in BUILT_IN {
            // A name both patterns match would make them overlap.
            let probe = p.replace('*', "x-y-z");
            assert!(!glob(b, &probe), "{p} overlaps {b}");
        }
        assert!(glob(p, "secmon-alerts"));
    }
    let mappings = tpl.template.unwrap().mappings.unwrap();
    let ts = &mappings["properties"]["@timestamp"]["type"];
    assert!(
        ts == "date" || ts == "date_nanos",
        "a data stream needs @timestamp as date"
    );
    assert_eq!(
        mappings["properties"]["falco"]["properties"]["output_fields"]["type"],
        "flattened"
    );
    assert_eq!(
        mappings["properties"]["event"]["properties"]["severity"]["type"],
        "long"
    );
    assert_eq!(
        mappings["properties"]["process"]["properties"]["command_line"]["type"],
        "wildcard"
    );
    // Retention and rollover flags reach the policy.
    let custom = emit(&[
        "--retention",
        "30d",
        "--rollover-age",
        "12h",
        "--rollover-size",
        "10gb",
    ]);
    let phases = &by_path(&custom, "/_ilm/")["body"]["policy"]["phases"];
    assert_eq!(phases["delete"]["min_age"], "30d");
    assert_eq!(phases["hot"]["actions"]["rollover"]["max_age"], "12h");
    assert_eq!(
        phases["hot"]["actions"]["rollover"]["max_primary_shard_size"],
        "10gb"
    );
}

#[test]
fn opensearch_flavor_has_an_ism_policy_for_the_backing_indices() {
    let reqs = emit(&["--flavor", "opensearch"]);
    let ism = &by_path(&reqs, "/_plugins/_ism/policies/secmon-alerts")["body"]["policy"];
    let states: Vec<&str> = ism["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["hot", "delete"]);
    assert!(states.contains(&ism["default_state"].as_str().unwrap()));
    for s in ism["states"].as_array().unwrap() {
        for t in s["transitions"].as_array().unwrap() {
            assert!(states.contains(&t["state_name"].as_str().unwrap()));
            let conds = t["conditions"].as_object().unwrap();
            for k in conds.keys() {
                assert!(
                    [
                        "min_index_age",
                        "min_rollover_age",
                        "min_doc_count",
                        "min_size",
                        "cron"
                    ]
                    .contains(&k.as_str()),
                    "{k}"
                );
            }
        }
    }
    assert_eq!(
        ism["states"][0]["transitions"][0]["conditions"]["min_rollover_age"],
        "90d"
    );
    assert_eq!(
        ism["states"][0]["actions"][0]["rollover"]["min_index_age"],
        "1d"
    );
    assert_eq!(ism["states"][1]["actions"][0], json!({"delete": {}}));
    let pattern = ism["ism_template"][0]["index_patterns"][0]
        .as_str()
        .unwrap();
    assert!(glob(pattern, ".ds-secmon-alerts-000001"), "{pattern}");
    // No ILM setting in OpenSearch's settings; flat_object for the raw fields.
    let comp = &by_path(&reqs, "/_component_template/")["body"];
    assert!(
        comp["template"]["settings"]["index"]
            .get("lifecycle")
            .is_none()
    );
    let tpl = &by_path(&reqs, "/_index_template/")["body"];
    assert_eq!(
        tpl["template"]["mappings"]["properties"]["falco"]["properties"]["output_fields"]["type"],
        "flat_object"
    );
}

#[test]
fn falcosidekick_mode_templates_the_daily_indices() {
    for flavor in ["elasticsearch", "opensearch"] {
        let reqs = emit(&["--flavor", flavor, "--index-mode", "falcosidekick"]);
        let tpl = &by_path(&reqs, "/_index_template/secmon-falco")["body"];
        assert!(tpl.get("data_stream").is_none(), "classic indices");
        let p = tpl["index_patterns"][0].as_str().unwrap();
        assert!(glob(p, "falco-2026.05.01"), "{p}");
        let props = &tpl["template"]["mappings"]["properties"];
        for f in ["@timestamp", "time", "rule", "priority", "output_fields"] {
            assert!(props.get(f).is_some(), "{f}");
        }
    }
    let es = emit(&["--index-mode", "falcosidekick"]);
    let ilm: PutLifecycle = serde_json::from_value(by_path(&es, "/_ilm/")["body"].clone()).unwrap();
    assert!(
        !ilm.policy.phases["hot"].actions.contains_key("rollover"),
        "daily indices roll over by name"
    );
    let os = emit(&["--flavor", "opensearch", "--index-mode", "falcosidekick"]);
    let ism = &by_path(&os, "/_plugins/")["body"]["policy"];
    assert!(glob(
        ism["ism_template"][0]["index_patterns"][0]
            .as_str()
            .unwrap(),
        "falco-2026.05.01"
    ));
}

/// Check that every leaf of `doc` is mapped in `mapping` (an object with `properties`).
fn check_mapped(doc: &Value, mapping: &Value, path: &str) {
    let Value::Object(fields) = doc else { return };
    for (k, v) in fields {
        let m = &mapping["properties"][k];
        let here = format!("{path}{k}");
        assert!(!m.is_null(), "{here} is not mapped");
        match m["type"].as_str() {
            Some("flattened") | Some("flat_object") => {}
            Some(_) => assert!(!v.is_object(), "{here} is an object but mapped as a leaf"),
            None => check_mapped(v, m, &format!("{here}.")),
        }
    }
}

#[test]
fn every_ecs_field_the_sink_writes_is_mapped() {
    use secmon::emit::es::{Flavor, ecs_document, ecs_mappings};
    use secmon::sensor::alert::Alert;
    let alerts = [
        r#"{"hostname":"node-1","output":"o","output_fields":{"evt.time":1,"proc.name":"x","proc.exepath":"/x","proc.cmdline":"x -c","proc.cwd":"/","proc.pid":4,"proc.ppid":1,"proc.pname":"sh","proc.pexepath":"/bin/sh","user.name":"root","user.uid":0,"container.id":"abc","container.image.repository":"nginx","k8s.ns.name":"ns","k8s.pod.name":"p","k8s.pod.uid":"u","fd.name":"10.0.0.1:5->10.0.0.2:80","fd.sip":"10.0.0.2","fd.sport":80},"priority":"Critical","rule":"r","source":"syscall","tags":["T1059","mitre_execution","network"],"time":"2026-05-01T10:00:00.000000001Z"}"#,
        r#"{"hostname":"node-1","output":"o","output_fields":{"fd.name":"/etc/shadow"},"priority":"Warning","rule":"r","source":"syscall","tags":["filesystem"],"time":"2026-05-01T10:00:00Z"}"#,
    ];
    for flavor in [Flavor::Elasticsearch, Flavor::Opensearch] {
        let mapping = ecs_mappings(flavor);
        for a in alerts {
            let doc = ecs_document(&Alert::from_json(a).unwrap());
            check_mapped(&doc, &mapping, "");
        }
    }
}

#[test]
fn console_output_is_put_lines_and_bodies() {
    let o = Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
        .args(["emit", "es-template"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{text}");
    for b in blocks {
        let (first, body) = b.split_once('\n').unwrap();
        assert!(first.starts_with("PUT _"), "{first}");
        let _: Value = serde_json::from_str(body).unwrap();
    }
    // Bad flags: one line, exit 2.
    for args in [
        &["--name", "Upper"][..],
        &["--rollover-size", "50"][..],
        &["--flavor", "solr"][..],
        &["--apply", "ftp://x"][..],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_kubectl-secmon"))
            .args(["emit", "es-template"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}
