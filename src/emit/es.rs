//! Elasticsearch and OpenSearch storage for alerts: the index templates, the lifecycle
//! policy, and [`ecs_document`], the one mapping from a Falco alert to the Elastic Common
//! Schema document that both the templates describe and the sensor's `--elasticsearch` sink
//! writes.
//!
//! Two index modes:
//!
//! - [`IndexMode::DataStream`] (default): a data stream `secmon-alerts` of ECS documents
//!   (`event.kind: alert`). A component template holds the settings (shards, replicas and,
//!   for Elasticsearch, `index.lifecycle.name`); the composable index template holds the ECS
//!   mappings, plus the raw Falco alert under `falco.*` with its `output_fields` as one
//!   `flattened` (Elasticsearch) or `flat_object` (OpenSearch) field, whose leaves are all
//!   keywords, so no field is lost and no field can cause a mapping conflict.
//! - [`IndexMode::Falcosidekick`]: a template for the classic daily `falco-YYYY.MM.DD`
//!   indices falcosidekick writes (its Falco payload plus `@timestamp`), for teams that
//!   already ship that way.
//!
//! Lifecycle: with [`Flavor::Elasticsearch`] an ILM policy (hot, rolled over by age and
//! primary shard size; deleted after the retention); with [`Flavor::Opensearch`] the
//! equivalent ISM policy, which attaches itself to the backing indices through its
//! `ism_template`.
//!
//! Templates get priority 501 by default: above Elasticsearch's built-in templates (100 for
//! `logs-*-*` and friends, up to 500), with a pattern that overlaps none of them.
//!
//! Every resource carries a digest of its own body (`_meta.digest`, or the end of the ISM
//! policy's `description`, which has no `_meta`), so that `--apply` can tell "already up to
//! date" from "changed" without comparing the server's normalised echo of it.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::rules::Priority;
use crate::sensor::alert::Alert;

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";
/// The default data stream.
pub const DEFAULT_DATA_STREAM: &str = "secmon-alerts";
/// The default index prefix in falcosidekick mode (its `index`).
pub const DEFAULT_SIDEKICK_INDEX: &str = "falco";

/// Which server the lifecycle policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Elasticsearch 8: ILM (`_ilm/policy`), `flattened`.
    Elasticsearch,
    /// OpenSearch 2: ISM (`_plugins/_ism/policies`), `flat_object`.
    Opensearch,
}

/// What the template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexMode {
    /// secmon's own ECS data stream.
    DataStream,
    /// falcosidekick's daily `falco-YYYY.MM.DD` indices.
    Falcosidekick,
}

/// Everything the templates and the policy are generated from.
#[derive(Debug, Clone, PartialEq)]
pub struct EsOptions {
    pub flavor: Flavor,
    pub mode: IndexMode,
    /// The data stream (data-stream mode) or index prefix (falcosidekick mode).
    pub name: String,
    /// Delete indices this long after rollover (ILM/ISM duration, e.g. `90d`).
    pub retention: String,
    /// Roll the write index over at this age.
    pub rollover_age: String,
    /// … or at this primary shard size (e.g. `50gb`).
    pub rollover_size: String,
    pub shards: u32,
    pub replicas: u32,
    pub priority: u32,
    /// Emit no lifecycle policy (and reference none).
    pub no_policy: bool,
}

impl EsOptions {
    /// The documented defaults for a flavor and mode.
    pub fn new(flavor: Flavor, mode: IndexMode) -> EsOptions {
        EsOptions {
            flavor,
            mode,
            name: match mode {
                IndexMode::DataStream => DEFAULT_DATA_STREAM.into(),
                IndexMode::Falcosidekick => DEFAULT_SIDEKICK_INDEX.into(),
            },
            retention: "90d".into(),
            rollover_age: "1d".into(),
            rollover_size: "50gb".into(),
            shards: 1,
            replicas: 1,
            priority: 501,
            no_policy: false,
        }
    }

    fn base(&self) -> String {
        match self.mode {
            IndexMode::DataStream => self.name.clone(),
            IndexMode::Falcosidekick => format!("secmon-{}", self.name),
        }
    }
}

/// The kinds of resource `emit es-template` writes, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    IlmPolicy,
    IsmPolicy,
    ComponentTemplate,
    IndexTemplate,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::IlmPolicy => "ilm-policy",
            ResourceKind::IsmPolicy => "ism-policy",
            ResourceKind::ComponentTemplate => "component-template",
            ResourceKind::IndexTemplate => "index-template",
        }
    }
}

/// One `PUT path` with its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: ResourceKind,
    pub name: String,
    /// Without a leading slash: `_index_template/secmon-alerts`.
    pub path: String,
    pub body: Value,
    /// `sha256:<hex>` of the body without its digest; the body carries it too.
    pub digest: String,
}

/// Every resource, in the order to apply them: the policy (which the settings name), the
/// settings component, the index template (which names the component).
pub fn resources(o: &EsOptions) -> Vec<Resource> {
    let base = o.base();
    let settings_name = format!("{base}-settings");
    let mut out = Vec::new();
    if !o.no_policy {
        match o.flavor {
            Flavor::Elasticsearch => out.push(stamp(
                ResourceKind::IlmPolicy,
                &base,
                format!("_ilm/policy/{base}"),
                ilm_policy(o),
            )),
            Flavor::Opensearch => out.push(stamp(
                ResourceKind::IsmPolicy,
                &base,
                format!("_plugins/_ism/policies/{base}"),
                ism_policy(o),
            )),
        }
    }
    out.push(stamp(
        ResourceKind::ComponentTemplate,
        &settings_name,
        format!("_component_template/{settings_name}"),
        settings_component(o),
    ));
    out.push(stamp(
        ResourceKind::IndexTemplate,
        &base,
        format!("_index_template/{base}"),
        index_template(o, &settings_name),
    ));
    out
}

/// The resources as requests: `[{method, path, body}]` (`-o json|yaml`).
pub fn requests(resources: &[Resource]) -> Value {
    Value::Array(
        resources
            .iter()
            .map(|r| json!({ "method": "PUT", "path": format!("/{}", r.path), "body": r.body }))
            .collect(),
    )
}

/// The resources in the Dev Tools console format of Kibana and OpenSearch Dashboards
/// (`PUT path` then the JSON body), also what `curl -XPUT URL/path -d BODY` needs.
pub fn console(resources: &[Resource]) -> String {
    let mut out = String::new();
    for r in resources {
        out.push_str(&format!("PUT {}\n", r.path));
        out.push_str(&serde_json::to_string_pretty(&r.body).unwrap_or_default());
        out.push_str("\n\n");
    }
    out
}

/// `sha256:<hex>` of a JSON value's compact serialisation.
fn digest_of(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap_or_default();
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}", &hex[..32])
}

fn meta(digest: &str) -> Value {
    json!({ "managed_by": "kubectl-secmon", "digest": digest })
}

fn stamp(kind: ResourceKind, name: &str, path: String, mut body: Value) -> Resource {
    let digest = digest_of(&body);
    match kind {
        ResourceKind::IlmPolicy => body["policy"]["_meta"] = meta(&digest),
        ResourceKind::IsmPolicy => {
            let d = body["policy"]["description"].as_str().unwrap_or_default();
            body["policy"]["description"] = json!(format!("{d} [{digest}]"));
        }
        ResourceKind::ComponentTemplate | ResourceKind::IndexTemplate => {
            body["_meta"] = meta(&digest)
        }
    }
    Resource {
        kind,
        name: name.to_string(),
        path,
        body,
        digest,
    }
}

fn ilm_policy(o: &EsOptions) -> Value {
    let hot = match o.mode {
        IndexMode::DataStream => json!({
            "min_age": "0ms",
            "actions": {
                "rollover": { "max_age": o.rollover_age, "max_primary_shard_size": o.rollover_size },
                "set_priority": { "priority": 100 },
            },
        }),
        // Daily indices roll over by name; ILM only ages and deletes them.
        IndexMode::Falcosidekick => json!({
            "min_age": "0ms",
            "actions": { "set_priority": { "priority": 100 } },
        }),
    };
    json!({
        "policy": {
            "phases": {
                "hot": hot,
                "delete": { "min_age": o.retention, "actions": { "delete": {} } },
            },
        },
    })
}

fn ism_policy(o: &EsOptions) -> Value {
    let (hot_actions, age_condition, pattern) = match o.mode {
        IndexMode::DataStream => (
            json!([{ "rollover": {
                "min_index_age": o.rollover_age,
                "min_primary_shard_size": o.rollover_size,
            } }]),
            // Counted from the rollover, as ILM's delete min_age is.
            "min_rollover_age",
            format!(".ds-{}-*", o.name),
        ),
        IndexMode::Falcosidekick => (json!([]), "min_index_age", format!("{}-*", o.name)),
    };
    json!({
        "policy": {
            "description": format!("kubectl-secmon: {} kept {}", pattern, o.retention),
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": hot_actions,
                    "transitions": [
                        { "state_name": "delete", "conditions": { age_condition: o.retention } },
                    ],
                },
                { "name": "delete", "actions": [{ "delete": {} }], "transitions": [] },
            ],
            "ism_template": [{ "index_patterns": [pattern], "priority": 100 }],
        },
    })
}

fn settings_component(o: &EsOptions) -> Value {
    let mut index = Map::new();
    index.insert("number_of_shards".into(), json!(o.shards));
    index.insert("number_of_replicas".into(), json!(o.replicas));
    if o.flavor == Flavor::Elasticsearch && !o.no_policy {
        index.insert("lifecycle".into(), json!({ "name": o.base() }));
    }
    json!({ "template": { "settings": { "index": index } } })
}

fn index_template(o: &EsOptions, settings: &str) -> Value {
    let mut t = Map::new();
    match o.mode {
        IndexMode::DataStream => {
            t.insert("index_patterns".into(), json!([format!("{}*", o.name)]));
            t.insert("data_stream".into(), json!({}));
            t.insert("composed_of".into(), json!([settings]));
            t.insert("priority".into(), json!(o.priority));
            t.insert(
                "template".into(),
                json!({ "mappings": ecs_mappings(o.flavor) }),
            );
        }
        IndexMode::Falcosidekick => {
            t.insert("index_patterns".into(), json!([format!("{}-*", o.name)]));
            t.insert("composed_of".into(), json!([settings]));
            t.insert("priority".into(), json!(o.priority));
            t.insert(
                "template".into(),
                json!({ "mappings": sidekick_mappings(o.flavor) }),
            );
        }
    }
    Value::Object(t)
}

fn flat(flavor: Flavor) -> Value {
    match flavor {
        Flavor::Elasticsearch => json!({ "type": "flattened" }),
        Flavor::Opensearch => json!({ "type": "flat_object" }),
    }
}

fn kw() -> Value {
    json!({ "type": "keyword", "ignore_above": 1024 })
}

fn obj(fields: &[(&str, Value)]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    json!({ "properties": props })
}

/// The ECS mappings of the alert documents, `dynamic: false` (unmapped fields stay in
/// `_source` without growing the mapping).
pub fn ecs_mappings(flavor: Flavor) -> Value {
    let long = || json!({ "type": "long" });
    let text = || json!({ "type": "match_only_text" });
    let command_line = json!({ "type": "wildcard" });
    let ip = || json!({ "type": "ip" });
    json!({
        "dynamic": false,
        "properties": {
            "@timestamp": { "type": "date_nanos" },
            "message": text(),
            "tags": kw(),
            "ecs": obj(&[("version", kw())]),
            "event": obj(&[
                ("kind", kw()), ("category", kw()), ("type", kw()), ("severity", long()),
                ("id", kw()), ("module", kw()), ("dataset", kw()), ("provider", kw()),
                ("created", json!({ "type": "date" })),
            ]),
            "rule": obj(&[("name", kw()), ("id", kw()), ("ruleset", kw()), ("category", kw())]),
            "threat": obj(&[
                ("framework", kw()),
                ("technique", obj(&[("id", kw())])),
                ("tactic", obj(&[("name", kw())])),
            ]),
            "process": obj(&[
                ("pid", long()), ("name", kw()), ("executable", kw()),
                ("command_line", command_line), ("working_directory", kw()),
                ("parent", obj(&[("pid", long()), ("name", kw()), ("executable", kw())])),
            ]),
            "user": obj(&[("name", kw()), ("id", kw())]),
            "container": obj(&[("id", kw()), ("image", obj(&[("name", kw())]))]),
            "orchestrator": obj(&[
                ("type", kw()), ("namespace", kw()),
                ("resource", obj(&[("type", kw()), ("name", kw()), ("id", kw())])),
            ]),
            "host": obj(&[("name", kw())]),
            "observer": obj(&[("vendor", kw()), ("product", kw()), ("type", kw())]),
            "file": obj(&[("path", kw())]),
            "source": obj(&[("ip", ip()), ("port", long())]),
            "destination": obj(&[("ip", ip()), ("port", long())]),
            "falco": obj(&[
                ("rule", kw()), ("priority", kw()), ("source", kw()), ("hostname", kw()),
                ("tags", kw()), ("time", kw()),
                ("output_fields", flat(flavor)),
            ]),
        },
    })
}

/// falcosidekick's documents: the Falco payload plus `@timestamp` and `uuid`.
fn sidekick_mappings(flavor: Flavor) -> Value {
    json!({
        "properties": {
            "@timestamp": { "type": "date_nanos" },
            "time": { "type": "date_nanos" },
            "uuid": kw(),
            "output": { "type": "match_only_text" },
            "priority": kw(),
            "rule": kw(),
            "source": kw(),
            "hostname": kw(),
            "tags": kw(),
            "output_fields": flat(flavor),
        },
    })
}

/// ECS `event.severity` of a priority: Falco's own numbers, the syslog levels
/// (0 emergency … 7 debug).
pub fn severity(p: Priority) -> u8 {
    p.level()
}

/// The stable id of an alert (`event.id`, and the document `_id`, so that a batch sent
/// twice after an outage stores each alert once): 32 hex digits of the SHA-256 of its JSON.
pub fn alert_id(alert: &Alert) -> String {
    let hash = Sha256::digest(alert.to_json_line().as_bytes());
    hash.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn set(doc: &mut Map<String, Value>, path: &str, v: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = doc;
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), v);
            return;
        }
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
}

/// A field's value as a non-empty string (numbers too); `None` for absent, null, `<NA>`.
fn text_field(alert: &Alert, key: &str) -> Option<String> {
    match alert.output_fields.get(key)? {
        Value::String(s) if !s.is_empty() && s != "<NA>" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number_field(alert: &Alert, key: &str) -> Option<i64> {
    match alert.output_fields.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `ip:port` (or `[v6]:port`) into its parts.
fn endpoint(s: &str) -> Option<(std::net::IpAddr, Option<u16>)> {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() => {
            (h, p.parse().ok())
        }
        _ => (s, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse().ok().map(|ip| (ip, port))
}

fn technique(tag: &str) -> bool {
    let b = tag.as_bytes();
    b.len() >= 5
        && b[0] == b'T'
        && b[1..5].iter().all(u8::is_ascii_digit)
        && (b.len() == 5 || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
}

/// `mitre_credential_access` → `Credential Access`.
fn tactic(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("mitre_")?;
    let words: Vec<String> = rest
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The ECS document of a Falco alert: what the sensor's `--elasticsearch` sink writes and
/// what [`ecs_mappings`] maps. Pure; the raw alert is kept under `falco.*`.
pub fn ecs_document(alert: &Alert) -> Value {
    let mut d = Map::new();
    let s = |v: &str| Value::String(v.to_string());
    set(&mut d, "@timestamp", s(&alert.time));
    set(&mut d, "message", s(&alert.output));
    set(&mut d, "tags", json!(alert.tags));
    set(&mut d, "ecs.version", s(ECS_VERSION));
    set(&mut d, "event.kind", s("alert"));
    set(&mut d, "event.id", s(&alert_id(alert)));
    set(&mut d, "event.severity", json!(severity(alert.priority)));
    set(&mut d, "event.module", s("secmon"));
    set(&mut d, "event.dataset", s("secmon.alerts"));
    set(&mut d, "event.provider", s(&alert.source));
    let category = if alert.tags.iter().any(|t| t == "network") {
        vec!["intrusion_detection", "network"]
    } else if alert.tags.iter().any(|t| t == "filesystem") {
        vec!["intrusion_detection", "file"]
    } else if alert.tags.iter().any(|t| t == "process") {
        vec!["intrusion_detection", "process"]
    } else {
        vec!["intrusion_detection"]
    };
    set(&mut d, "event.category", json!(category));
    set(&mut d, "event.type", json!(["info"]));
    set(&mut d, "rule.name", s(&alert.rule));
    let rid = Sha256::digest(alert.rule.as_bytes());
    set(
        &mut d,
        "rule.id",
        s(&rid
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()),
    );
    set(&mut d, "rule.ruleset", s("secmon"));
    let techniques: Vec<&str> = alert
        .tags
        .iter()
        .map(String::as_str)
        .filter(|t| technique(t))
        .collect();
    let tactics: Vec<String> = alert.tags.iter().filter_map(|t| tactic(t)).collect();
    if !techniques.is_empty() || !tactics.is_empty() {
        set(&mut d, "threat.framework", s("MITRE ATT&CK"));
    }
    if !techniques.is_empty() {
        set(&mut d, "threat.technique.id", json!(techniques));
    }
    if !tactics.is_empty() {
        set(&mut d, "threat.tactic.name", json!(tactics));
    }
    for (key, path) in [
        ("proc.name", "process.name"),
        ("proc.exepath", "process.executable"),
        ("proc.cmdline", "process.command_line"),
        ("proc.cwd", "process.working_directory"),
        ("proc.pname", "process.parent.name"),
        ("proc.pexepath", "process.parent.executable"),
        ("user.name", "user.name"),
        ("user.uid", "user.id"),
        ("container.image.repository", "container.image.name"),
        ("k8s.ns.name", "orchestrator.namespace"),
        ("k8s.pod.name", "orchestrator.resource.name"),
        ("k8s.pod.uid", "orchestrator.resource.id"),
    ] {
        if let Some(v) = text_field(alert, key) {
            set(&mut d, path, Value::String(v));
        }
    }
    for (key, path) in [
        ("proc.pid", "process.pid"),
        ("proc.ppid", "process.parent.pid"),
    ] {
        if let Some(v) = number_field(alert, key) {
            set(&mut d, path, json!(v));
        }
    }
    if let Some(id) = text_field(alert, "container.id").filter(|c| c != "host") {
        set(&mut d, "container.id", Value::String(id));
    }
    if text_field(alert, "k8s.ns.name").is_some() || text_field(alert, "k8s.pod.name").is_some() {
        set(&mut d, "orchestrator.type", s("kubernetes"));
        set(&mut d, "orchestrator.resource.type", s("pod"));
    }
    set(&mut d, "host.name", s(&alert.hostname));
    set(&mut d, "observer.vendor", s("kubectl-secmon"));
    set(&mut d, "observer.product", s("secmon sensor"));
    set(&mut d, "observer.type", s("ids"));
    let fd_name = text_field(alert, "fd.name");
    if let Some(path) = fd_name.as_deref().filter(|n| n.starts_with('/')) {
        set(&mut d, "file.path", s(path));
    }
    // Falco's socket names read `client:port->server:port`.
    if let Some((client, server)) = fd_name.as_deref().and_then(|n| n.split_once("->")) {
        for (side, ep) in [("source", client), ("destination", server)] {
            if let Some((ip, port)) = endpoint(ep) {
                set(&mut d, &format!("{side}.ip"), s(&ip.to_string()));
                if let Some(p) = port {
                    set(&mut d, &format!("{side}.port"), json!(p));
                }
            }
        }
    }
    for (ip_key, port_key) in [("fd.sip", "fd.sport"), ("fd.rip", "fd.rport")] {
        if let Some(ip) = text_field(alert, ip_key).and_then(|v| v.parse::<std::net::IpAddr>().ok())
        {
            set(&mut d, "destination.ip", s(&ip.to_string()));
            if let Some(p) = number_field(alert, port_key) {
                set(&mut d, "destination.port", json!(p));
            }
            break;
        }
    }
    set(&mut d, "falco.rule", s(&alert.rule));
    set(&mut d, "falco.priority", s(alert.priority.as_str()));
    set(&mut d, "falco.source", s(&alert.source));
    set(&mut d, "falco.hostname", s(&alert.hostname));
    set(&mut d, "falco.tags", json!(alert.tags));
    set(&mut d, "falco.time", s(&alert.time));
    set(
        &mut d,
        "falco.output_fields",
        Value::Object(alert.output_fields.clone()),
    );
    Value::Object(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        let line = r#"{"hostname":"node-1","output":"10:00:00.000000001: Critical Program executed from memory (exe=memfd:x)","output_fields":{"evt.time":1777629600000000001,"proc.name":"x","proc.exepath":"memfd:x","proc.cmdline":"x -c id","proc.pid":42,"proc.ppid":7,"proc.pname":"bash","user.name":"root","user.uid":0,"container.id":"0123456789ab","container.image.repository":null,"k8s.ns.name":"shop","k8s.pod.name":"web-1","fd.name":"10.0.0.5:40000->93.184.216.34:443"},"priority":"Critical","rule":"Fileless execution via memfd","source":"syscall","tags":["T1620","container","mitre_defense_evasion","process"],"time":"2026-05-01T10:00:00.000000001Z"}"#;
        Alert::from_json(line).unwrap()
    }

    #[test]
    fn alert_maps_to_ecs() {
        let d = ecs_document(&alert());
        assert_eq!(d["@timestamp"], "2026-05-01T10:00:00.000000001Z");
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["severity"], 2);
        assert_eq!(
            d["event"]["category"],
            json!(["intrusion_detection", "process"])
        );
        assert_eq!(d["rule"]["name"], "Fileless execution via memfd");
        assert_eq!(d["rule"]["id"].as_str().unwrap().len(), 16);
        assert_eq!(d["threat"]["technique"]["id"], json!(["T1620"]));
        assert_eq!(d["threat"]["tactic"]["name"], json!(["Defense Evasion"]));
        assert_eq!(d["process"]["pid"], 42);
        assert_eq!(d["process"]["parent"]["pid"], 7);
        assert_eq!(d["process"]["command_line"], "x -c id");
        assert_eq!(d["user"]["id"], "0");
        assert_eq!(d["container"]["id"], "0123456789ab");
        assert!(
            d["container"].get("image").is_none(),
            "null fields are left out"
        );
        assert_eq!(d["orchestrator"]["namespace"], "shop");
        assert_eq!(d["orchestrator"]["resource"]["name"], "web-1");
        assert_eq!(d["orchestrator"]["type"], "kubernetes");
        assert_eq!(d["host"]["name"], "node-1");
        assert_eq!(d["destination"]["ip"], "93.184.216.34");
        assert_eq!(d["destination"]["port"], 443);
        assert_eq!(d["source"]["port"], 40000);
        assert!(d.get("file").is_none());
        assert_eq!(d["falco"]["output_fields"]["proc.name"], "x");
        assert_eq!(d["event"]["id"], alert_id(&alert()));
    }

    #[test]
    fn host_file_alert_and_odd_values() {
        let mut a = alert();
        a.output_fields.clear();
        a.output_fields
            .insert("fd.name".into(), json!("/etc/shadow"));
        a.output_fields.insert("container.id".into(), json!("host"));
        a.output_fields
            .insert("proc.pid".into(), json!("not a number"));
        a.tags = vec!["filesystem".into(), "T1003.008".into(), "Tx".into()];
        let d = ecs_document(&a);
        assert_eq!(d["file"]["path"], "/etc/shadow");
        assert!(d.get("container").is_none());
        assert!(d.get("orchestrator").is_none());
        assert!(d.get("process").is_none());
        assert_eq!(d["threat"]["technique"]["id"], json!(["T1003.008"]));
        assert_eq!(
            d["event"]["category"],
            json!(["intrusion_detection", "file"])
        );
        assert_eq!(
            endpoint("[::1]:80"),
            Some(("::1".parse().unwrap(), Some(80)))
        );
    }

    #[test]
    fn resources_are_ordered_and_stamped() {
        let es = resources(&EsOptions::new(
            Flavor::Elasticsearch,
            IndexMode::DataStream,
        ));
        let kinds: Vec<_> = es.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                ResourceKind::IlmPolicy,
                ResourceKind::ComponentTemplate,
                ResourceKind::IndexTemplate
            ]
        );
        assert_eq!(es[0].body["policy"]["_meta"]["digest"], es[0].digest);
        assert_eq!(
            es[1].body["template"]["settings"]["index"]["lifecycle"]["name"],
            "secmon-alerts"
        );
        let os = resources(&EsOptions::new(Flavor::Opensearch, IndexMode::DataStream));
        assert_eq!(os[0].path, "_plugins/_ism/policies/secmon-alerts");
        let desc = os[0].body["policy"]["description"].as_str().unwrap();
        assert!(desc.ends_with(&format!("[{}]", os[0].digest)), "{desc}");
        assert!(
            os[1].body["template"]["settings"]["index"]
                .get("lifecycle")
                .is_none()
        );
        // A change of option changes the digest.
        let mut o = EsOptions::new(Flavor::Elasticsearch, IndexMode::DataStream);
        o.retention = "30d".into();
        assert_ne!(resources(&o)[0].digest, es[0].digest);
        o.no_policy = true;
        assert_eq!(resources(&o).len(), 2);
    }
}
