//! The default ruleset (rules/secmon_rules.yaml): it loads with every rule active and
//! MITRE-tagged, and each rule fires on its recorded event and stays quiet on a near miss.
//!
//! Cases live in tests/fixtures/rules/secmon_cases.jsonl, one JSON object per line:
//! `{"rule": NAME, "expect": "fire"|"miss", "note": TEXT, "event": EVENT}` where EVENT is
//! the engine's event JSON (see `secmon::rules::event`).

use secmon::rules::{self, Event, HostResolver, LoadOptions, Matches, RuleMatching, Ruleset};
mod common;

use common::rules_cases::{self, Case};

const CASES: &str = include_str!("fixtures/rules/secmon_cases.jsonl");

/// Test-only tuning, as a user would write it: point the API-server rule at loopback and
/// list one mining pool host (resolved by a fixed table, never the network).
const TEST_OVERRIDES: &str = r#"
- list: secmon_k8s_api_server_addresses
  items: [127.0.0.1]
  override:
    items: replace
- list: secmon_miner_pool_domains
  items: [pool.test]
  override:
    items: replace
"#;

fn load() -> Ruleset {
    let mut files = rules::default_ruleset_sources();
    files.push(("test_overrides.yaml".into(), TEST_OVERRIDES.into()));
    let options = LoadOptions {
        rule_matching: RuleMatching::All,
        resolver: HostResolver::Static(vec![(
            "pool.test".into(),
            vec!["198.51.100.7".parse().unwrap()],
        )]),
        ..LoadOptions::default()
    };
    let (rs, diags) = rules::load_files(&files, &options).unwrap_or_else(|e| panic!("{e}"));
    let warnings: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == rules::Severity::Warning)
        .map(|d| d.to_string())
        .collect();
    assert!(
        warnings.is_empty(),
        "default ruleset warnings: {warnings:#?}"
    );
    rs
}

fn cases() -> Vec<Case> {
    rules_cases::parse(CASES, "secmon_cases.jsonl")
}

#[test]
fn every_default_rule_is_active_tagged_and_prioritised() {
    let rs = load();
    assert!(rs.rules().len() >= 33, "only {} rules", rs.rules().len());
    for r in rs.rules() {
        assert!(r.is_active(), "{} is {:?}", r.name, r.status);
        assert!(
            !r.mitre.tactics.is_empty(),
            "{} has no mitre_* tactic tag",
            r.name
        );
        assert!(
            !r.mitre.techniques.is_empty(),
            "{} has no ATT&CK technique tag",
            r.name
        );
        assert!(
            !r.event_types.is_empty(),
            "{} is tested on every event type",
            r.name
        );
        assert!(!r.desc.is_empty() && !r.output.is_empty());
    }
}

#[test]
fn every_default_rule_fires_on_its_event_and_not_on_the_near_miss() {
    let rs = load();
    let cases = cases();
    rules_cases::check(&rs, &cases, true);
    println!(
        "{} default-ruleset cases over {} rules",
        cases.len(),
        rs.rules().len()
    );
}

#[test]
fn first_match_reports_one_rule() {
    let mut rs = load();
    rs.set_rule_matching(RuleMatching::First);
    // A miner run from /dev/shm in a container matches several rules.
    let ev: Event = serde_json::from_str(
        r#"{"type":"execve","proc":{"name":"xmrig","args":["-o","stratum+tcp://p:3333"],"exepath":"/dev/shm/xmrig"},"container":{"id":"abc"}}"#,
    )
    .unwrap();
    let mut out = Matches::new();
    assert_eq!(rs.matches(&ev, &mut out), 1);
    let first = out.ids()[0];
    rs.set_rule_matching(RuleMatching::All);
    assert!(
        rs.matches(&ev, &mut out) >= 2,
        "expected several rules to match"
    );
    assert_eq!(
        out.ids()[0],
        first,
        "first match is the earliest rule in load order"
    );
}

/// Under first-match (the sensor's mode, as Falco's default) only the earliest matching
/// rule alerts, so a rule whose every firing event also matches an earlier rule is dead.
/// Each rule must win at least one of its own firing cases.
#[test]
fn no_rule_is_shadowed_under_first_match() {
    let mut rs = load();
    rs.set_rule_matching(RuleMatching::First);
    let mut out = Matches::new();
    let mut shadowed = Vec::new();
    for r in rs.rules() {
        let id = rs.find(&r.name).expect("rule");
        let fire: Vec<Case> = cases()
            .into_iter()
            .filter(|c| c.rule == r.name && c.expect == "fire")
            .collect();
        let wins = fire.iter().any(|c| {
            rs.matches(&c.event, &mut out);
            out.ids() == [id]
        });
        if !wins {
            let by: Vec<String> = fire
                .iter()
                .filter_map(|c| {
                    rs.matches(&c.event, &mut out);
                    out.ids()
                        .first()
                        .and_then(|i| rs.rule(*i))
                        .map(|i| i.name.clone())
                })
                .collect();
            shadowed.push(format!("{} (reported as {by:?})", r.name));
        }
    }
    assert!(
        shadowed.is_empty(),
        "shadowed under first-match: {shadowed:#?}"
    );
}

#[test]
fn output_renders_fields_and_na() {
    let rs = load();
    let id = rs
        .find("Credential file read by untrusted process")
        .unwrap();
    let ev: Event = serde_json::from_str(
        r#"{"type":"openat","args":{"flags":"O_RDONLY"},"proc":{"name":"cat","args":["/etc/shadow"]},"fd":{"num":3,"type":"file","name":"/etc/shadow"},"user":{"uid":0,"name":"root"}}"#,
    )
    .unwrap();
    let r = rs.render_output(id, &ev).unwrap();
    assert!(r.text.contains("file=/etc/shadow"), "{}", r.text);
    assert!(r.text.contains("cmdline=cat /etc/shadow"), "{}", r.text);
    assert!(r.text.contains("container=host"), "{}", r.text);
    assert!(r.text.contains("ns=<NA>"), "{}", r.text);
    assert_eq!(r.output_fields["fd.name"], "/etc/shadow");
    assert_eq!(r.output_fields["user.uid"], 0);
    assert!(r.output_fields["k8s.ns.name"].is_null());
    assert!(r.output_fields["proc.aname[2]"].is_null());
}

#[test]
fn the_sensor_captures_exactly_the_event_types_the_rules_use() {
    let mut rs = load();
    let types = rs.event_types();
    for t in [
        "execve",
        "openat",
        "connect",
        "dup2",
        "ptrace",
        "finit_module",
        "setns",
    ] {
        assert!(
            types.iter().any(|x| x.name() == t),
            "{t} missing from {types:?}"
        );
    }
    // nothing in the default rules looks at read(2): the sensor must not attach it
    assert!(!types.iter().any(|x| x.name() == "read"), "{types:?}");
    // disabling the only rules on ptrace removes ptrace from what is captured
    for name in ["Process attached with ptrace", "Anti-debugging with ptrace"] {
        let id = rs.find(name).expect("rule exists");
        assert!(rs.set_enabled(id, false));
    }
    assert!(!rs.event_types().iter().any(|x| x.name() == "ptrace"));
}
