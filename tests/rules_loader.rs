//! The rules-file loader and condition language: Falco's item semantics (overrides,
//! append, exceptions, lists of lists, macros of macros, several files), operators and
//! fields, and errors that name the file, the line and what is wrong.

use secmon::rules::{
    self, Event, HostResolver, LoadError, LoadOptions, Matches, Priority, RuleMatching, RuleStatus,
    Ruleset,
};

fn opts() -> LoadOptions {
    LoadOptions {
        rule_matching: RuleMatching::All,
        resolver: HostResolver::Static(vec![(
            "api.test".into(),
            vec!["192.0.2.10".parse().unwrap()],
        )]),
        ..LoadOptions::default()
    }
}

fn load(files: &[(&str, &str)]) -> Ruleset {
    rules::load_files(files, &opts())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn err(files: &[(&str, &str)]) -> LoadError {
    match rules::load_files(files, &opts()) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

fn ev(json: &str) -> Event {
    let mut e: Event = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    if e.num == 0 {
        e.num = 1;
    }
    e
}

fn fired(rs: &Ruleset, e: &Event) -> Vec<String> {
    let mut m = Matches::new();
    rs.matches(e, &mut m);
    m.ids()
        .iter()
        .map(|id| rs.rule(*id).unwrap().name.clone())
        .collect()
}

/// One rule with this condition, named R.
fn rule(cond: &str) -> String {
    format!("- rule: R\n  desc: d\n  condition: {cond}\n  output: o\n  priority: WARNING\n")
}

fn matches(cond: &str, event: &str) -> bool {
    let text = rule(cond);
    let rs = load(&[("t.yaml", &text)]);
    !fired(&rs, &ev(event)).is_empty()
}

const OPEN_SHADOW: &str = r#"{"type":"openat","args":{"flags":"O_RDONLY|O_CLOEXEC","name":"/etc/shadow"},
  "proc":{"name":"cat","exe":"cat","exepath":"/usr/bin/cat","args":["/etc/shadow"],"cwd":"/root/"},
  "parents":[{"pid":10,"name":"bash","exepath":"/usr/bin/bash"},{"pid":1,"name":"sshd","exepath":"/usr/sbin/sshd"}],
  "fd":{"num":3,"type":"file","name":"/etc/shadow"},"user":{"uid":0,"name":"root"},
  "container":{"id":"abcdef123456","image_repository":"nginx"},"k8s":{"ns":"shop","pod":"p","labels":{"app":"web"}}}"#;

// ---------------------------------------------------------------------------------------
// Errors: file, line, what is wrong
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_macro_names_file_line_and_macro() {
    let text = "- macro: m\n  condition: evt.type = open\n\n- rule: R\n  desc: d\n  condition: m and not missing_macro\n  output: o\n  priority: INFO\n";
    let e = err(&[("my.yaml", text)]);
    assert_eq!((e.file.as_str(), e.line), ("my.yaml", 6), "{e}");
    assert!(e.message.contains("undefined macro 'missing_macro'"), "{e}");
    assert!(e.to_string().starts_with("my.yaml:6: rule 'R': "), "{e}");
}

#[test]
fn unknown_macro_inside_a_macro_points_at_the_macro() {
    let text = "- macro: outer\n  condition: inner_missing\n- rule: R\n  desc: d\n  condition: outer\n  output: o\n  priority: INFO\n";
    let e = err(&[("f.yaml", text)]);
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.message.contains("macro 'outer'") && e.message.contains("inner_missing"),
        "{e}"
    );
}

#[test]
fn unbalanced_parenthesis() {
    let e = err(&[("f.yaml", &rule("(proc.name = cat and (fd.num > 0)"))]);
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("unbalanced parenthesis"), "{e}");
    let e = err(&[("f.yaml", &rule("proc.name = cat)"))]);
    assert!(e.message.contains("unbalanced parenthesis"), "{e}");
    let e = err(&[("f.yaml", &rule("proc.name in (a, b"))]);
    assert!(e.message.contains("unbalanced parenthesis"), "{e}");
}

#[test]
fn unknown_operator() {
    let e = err(&[("f.yaml", &rule("proc.name like cat"))]);
    assert_eq!(
        e.to_string().split(':').take(2).collect::<Vec<_>>(),
        ["f.yaml", "3"],
        "{e}"
    );
    assert!(e.message.contains("unknown operator 'like'"), "{e}");
}

#[test]
fn unknown_keys_are_errors_with_their_line() {
    let text = "- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  severity: high\n";
    let e = err(&[("f.yaml", text)]);
    assert_eq!(e.line, 6, "{e}");
    assert!(e.message.contains("unknown key 'severity'"), "{e}");
    let e = err(&[("f.yaml", "- list: l\n  items: [a]\n  itemz: [b]\n")]);
    assert_eq!(e.line, 3, "{e}");
    let e = err(&[(
        "f.yaml",
        "- macro: m\n  condition: always\n  enabled: false\n",
    )]);
    assert_eq!(e.line, 3, "{e}");
    let e = err(&[("f.yaml", "- foo: bar\n")]);
    assert!(e.message.contains("unknown item"), "{e}");
    let text = "- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  exceptions:\n    - name: e\n      field: proc.name\n";
    let e = err(&[("f.yaml", text)]);
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn wrong_types_are_errors_with_their_line() {
    let base = "- rule: R\n  desc: d\n  condition: evt.type = open\n  output: o\n";
    let e = err(&[("f.yaml", &format!("{base}  priority: LOUD\n"))]);
    assert_eq!(e.line, 5);
    assert!(e.message.contains("unknown priority 'LOUD'"), "{e}");
    let e = err(&[(
        "f.yaml",
        &format!("{base}  priority: INFO\n  tags: container\n"),
    )]);
    assert_eq!(e.line, 6);
    assert!(e.message.contains("'tags' must be a list"), "{e}");
    let e = err(&[(
        "f.yaml",
        &format!("{base}  priority: INFO\n  enabled: maybe\n"),
    )]);
    assert_eq!(e.line, 6);
    assert!(e.message.contains("'enabled' must be true or false"), "{e}");
    let e = err(&[("f.yaml", "- list: l\n  items: notalist\n")]);
    assert_eq!(e.line, 2);
    let e = err(&[("f.yaml", "- macro: m\n  condition: [a, b]\n")]);
    assert!(e.message.contains("'condition' must be a string"), "{e}");
    let e = err(&[("f.yaml", "rule: R\n")]);
    assert!(e.message.contains("must be a YAML list"), "{e}");
    let e = err(&[(
        "f.yaml",
        "- rule: R\n  desc: d\n  condition: x\n  priority: INFO\n",
    )]);
    assert!(e.message.contains("missing required key 'output'"), "{e}");
}

#[test]
fn value_type_errors() {
    let e = err(&[("f.yaml", &rule("fd.num = abc"))]);
    assert!(e.message.contains("'abc' is not a number"), "{e}");
    let e = err(&[("f.yaml", &rule("fd.num contains 3"))]);
    assert!(
        e.message
            .contains("operator 'contains' does not apply to numeric field"),
        "{e}"
    );
    let e = err(&[("f.yaml", &rule("fd.snet in (10.0.0.0/99)"))]);
    assert!(e.message.contains("not a network"), "{e}");
    let e = err(&[("f.yaml", &rule("proc.name regex '('"))]);
    assert!(e.message.contains("invalid regex"), "{e}");
    let e = err(&[("f.yaml", &rule("k8s.pod.label = x"))]);
    assert!(e.message.contains("needs an argument"), "{e}");
}

#[test]
fn yaml_syntax_errors_have_a_line() {
    let e = err(&[("bad.yaml", "- list: l\n  items: [a, b\n- rule: x\n")]);
    assert_eq!(e.file, "bad.yaml");
    assert!(e.line >= 2, "{e}");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
}

#[test]
fn macro_cycles_and_deep_nesting_are_errors_not_crashes() {
    let text = "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: R\n  desc: d\n  condition: a\n  output: o\n  priority: INFO\n";
    let e = err(&[("f.yaml", text)]);
    assert!(e.message.contains("refers to itself"), "{e}");
    let deep = format!("{}evt.type = open{}", "(".repeat(500), ")".repeat(500));
    let e = err(&[("f.yaml", &rule(&format!("'{deep}'")))]);
    assert!(e.message.contains("deeper"), "{e}");
}

#[test]
fn newer_engine_version_is_refused() {
    let e = err(&[("f.yaml", "- required_engine_version: 9.0.0\n")]);
    assert!(
        e.message.contains("requires rules engine version 9.0.0"),
        "{e}"
    );
    load(&[(
        "f.yaml",
        "- required_engine_version: 0.57.0\n- required_plugin_versions:\n    - name: container\n      version: 0.4.0\n",
    )]);
}

// ---------------------------------------------------------------------------------------
// Items, overrides, exceptions, several files
// ---------------------------------------------------------------------------------------

#[test]
fn lists_of_lists_and_macros_of_macros() {
    let text = r#"
- list: inner
  items: [cat, "less"]
- list: outer
  items: [inner, more]
- macro: is_reader
  condition: proc.name in (outer)
- macro: reads_shadow
  condition: is_reader and fd.name = /etc/shadow
- rule: R
  desc: d
  condition: evt.type in (open, openat) and reads_shadow
  output: o
  priority: info
"#;
    let rs = load(&[("f.yaml", text)]);
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R"]);
    assert_eq!(rs.rules()[0].priority, Priority::Informational);
}

#[test]
fn later_files_override_and_append() {
    let base = r#"
- list: readers
  items: [less]
- macro: tuned
  condition: (evt.num < 0)
- rule: R
  desc: first
  condition: evt.type = openat and proc.name in (readers)
  output: "read %fd.name"
  priority: WARNING
  tags: [a]
"#;
    let rs = load(&[("base.yaml", base)]);
    assert!(fired(&rs, &ev(OPEN_SHADOW)).is_empty());
    let local = r#"
- list: readers
  items: [cat]
  override:
    items: append
- rule: R
  desc: more
  output: "by %proc.name"
  tags: [b]
  override:
    desc: append
    output: append
    tags: append
"#;
    let rs = load(&[("base.yaml", base), ("local.yaml", local)]);
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R"]);
    let info = &rs.rules()[0];
    assert_eq!(info.desc, "first more");
    assert_eq!(info.tags, ["a", "b"]);
    let out = rs
        .render_output(rules::RuleId(0), &ev(OPEN_SHADOW))
        .unwrap();
    assert_eq!(out.text, "read /etc/shadow by cat");
    // Replace the condition and the priority; append to a macro; disable by the legacy form.
    let more = r#"
- macro: tuned
  condition: or proc.name = cat
  override:
    condition: append
- rule: R
  condition: evt.type = openat and not tuned
  priority: critical
  override:
    condition: replace
    priority: replace
"#;
    let rs = load(&[
        ("base.yaml", base),
        ("local.yaml", local),
        ("more.yaml", more),
    ]);
    assert!(fired(&rs, &ev(OPEN_SHADOW)).is_empty());
    assert_eq!(rs.rules()[0].priority, Priority::Critical);
    let off = "- rule: R\n  enabled: false\n";
    let rs = load(&[
        ("base.yaml", base),
        ("local.yaml", local),
        ("off.yaml", off),
    ]);
    assert_eq!(rs.rules()[0].status, RuleStatus::Disabled);
    assert!(fired(&rs, &ev(OPEN_SHADOW)).is_empty());
}

#[test]
fn deprecated_append_works_with_a_warning() {
    let base = "- list: l\n  items: [less]\n- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n";
    let more = "- list: l\n  items: [cat]\n  append: true\n- rule: R\n  condition: and proc.name in (l)\n  append: true\n";
    let (rs, diags) = rules::load_files(&[("a.yaml", base), ("b.yaml", more)], &opts()).unwrap();
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R"]);
    assert!(rs.rules()[0].condition.ends_with("and proc.name in (l)"));
    let deprecations = diags
        .iter()
        .filter(|d| d.message.contains("deprecated"))
        .count();
    assert_eq!(deprecations, 2, "{diags:?}");
}

#[test]
fn override_errors() {
    let base =
        "- rule: R\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n";
    let e = err(&[
        ("a.yaml", base),
        (
            "b.yaml",
            "- rule: R\n  priority: INFO\n  override:\n    priority: append\n",
        ),
    ]);
    assert!(e.message.contains("'priority' cannot be appended"), "{e}");
    let e = err(&[
        ("a.yaml", base),
        (
            "b.yaml",
            "- rule: Nope\n  condition: x\n  override:\n    condition: append\n",
        ),
    ]);
    assert!(e.message.contains("not defined"), "{e}");
    let e = err(&[
        ("a.yaml", base),
        (
            "b.yaml",
            "- rule: R\n  condition: x\n  desc: y\n  override:\n    condition: append\n",
        ),
    ]);
    assert_eq!((e.file.as_str(), e.line), ("b.yaml", 3));
    assert!(e.message.contains("not listed in 'override'"), "{e}");
}

#[test]
fn exceptions_compile_to_and_not_like_falco() {
    let text = r#"
- rule: R
  desc: d
  condition: evt.type = openat and fd.name startswith /etc
  output: o
  priority: WARNING
  exceptions:
    - name: proc_file
      fields: [proc.name, fd.name]
      values:
        - [cat, /etc/shadow]
        - [less, [/etc/a, /etc/b]]
      comps: [=, in]
    - name: images
      fields: container.image.repository
      values: [registry.example/tool, "with space"]
    - name: nothing
      fields: [proc.name]
"#;
    let rs = load(&[("f.yaml", text)]);
    assert_eq!(
        rs.rules()[0].condition,
        "(evt.type = openat and fd.name startswith /etc) and not (((proc.name = cat and fd.name in (/etc/shadow)) \
         or (proc.name = less and fd.name in (/etc/a, /etc/b))) or (container.image.repository in (registry.example/tool, \"with space\")))"
    );
    assert!(
        fired(&rs, &ev(OPEN_SHADOW)).is_empty(),
        "cat reading /etc/shadow is excepted"
    );
    let other = OPEN_SHADOW.replace("\"name\":\"cat\"", "\"name\":\"vim\"");
    assert_eq!(fired(&rs, &ev(&other)), ["R"]);
    // Appending values to an existing exception.
    let more = "- rule: R\n  exceptions:\n    - name: images\n      values: [nginx]\n  override:\n    exceptions: append\n";
    let rs = load(&[("f.yaml", text), ("m.yaml", more)]);
    assert!(
        fired(&rs, &ev(&other)).is_empty(),
        "nginx image now excepted"
    );
    // Shape errors.
    let bad = text.replace("comps: [=, in]", "comps: [=]");
    assert!(err(&[("f.yaml", &bad)]).message.contains("same length"));
    let bad = text.replace("comps: [=, in]", "comps: [=, like]");
    assert!(
        err(&[("f.yaml", &bad)])
            .message
            .contains("unknown comparison operator 'like'")
    );
}

#[test]
fn unsupported_fields_skip_the_rule_and_say_why() {
    let text = format!(
        "{}- rule: S\n  desc: d\n  condition: evt.type = open and proc.vpgid.name = x and not fd.types[0] = y\n  output: \"%nosuch.field %proc.name\"\n  priority: INFO\n",
        rule("evt.type = openat")
    );
    let (rs, diags) = rules::load_files(&[("f.yaml", text.as_str())], &opts()).unwrap();
    let s = &rs.rules()[1];
    assert_eq!(s.status, RuleStatus::Unsupported);
    assert_eq!(s.unsupported_fields, ["fd.types", "proc.vpgid.name"]);
    let d = diags
        .iter()
        .find(|d| d.rule.as_deref() == Some("S") && d.message.contains("rule skipped"))
        .unwrap();
    assert_eq!(
        d.to_string(),
        "f.yaml:6: warning: rule 'S' needs fields this engine does not support (fd.types, proc.vpgid.name); rule skipped"
    );
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("output field '%nosuch.field'"))
    );
    assert!(rs.rules()[0].is_active());
}

#[test]
fn other_sources_and_min_priority() {
    let text = format!(
        "{}- rule: K\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: DEBUG\n  source: k8s_audit\n",
        rule("evt.type = openat")
    );
    let rs = load(&[("f.yaml", &text)]);
    assert_eq!(rs.rules()[1].status, RuleStatus::OtherSource);
    let o = LoadOptions {
        min_priority: Priority::Error,
        ..opts()
    };
    let (rs, _) = rules::load_files(&[("f.yaml", text.as_str())], &o).unwrap();
    assert_eq!(rs.rules()[0].status, RuleStatus::BelowMinPriority);
    assert_eq!(rs.active_count(), 0);
}

// ---------------------------------------------------------------------------------------
// Operators and fields
// ---------------------------------------------------------------------------------------

#[test]
fn string_operators() {
    let e = OPEN_SHADOW;
    assert!(matches("proc.name = cat", e));
    assert!(matches("proc.name == cat", e));
    assert!(!matches("proc.name != cat", e));
    assert!(matches("fd.name contains shad", e));
    assert!(matches("fd.name icontains SHAD", e));
    assert!(matches("fd.name startswith /etc/", e));
    assert!(matches("fd.name endswith dow", e));
    assert!(matches("fd.name glob '/etc/s*w'", e));
    assert!(matches("fd.name iglob '/ETC/S*'", e));
    assert!(matches("fd.name regex '/etc/(shadow|passwd)'", e));
    assert!(
        !matches("fd.name regex 'shadow'", e),
        "regex is anchored at both ends as in Falco"
    );
    assert!(matches("fd.name in (/etc/passwd, /etc/shadow)", e));
    assert!(matches("fd.name intersects (/etc/shadow)", e));
    assert!(matches("fd.name pmatch (/etc)", e));
    assert!(!matches("fd.name pmatch (/et)", e));
    assert!(matches("fd.directory = /etc and fd.filename = shadow", e));
    assert!(matches(
        "proc.cmdline = \"cat /etc/shadow\" and proc.args = /etc/shadow",
        e
    ));
    assert!(matches(
        "proc.cwd = /root/ and proc.exe = cat and proc.exepath = /usr/bin/cat",
        e
    ));
    assert!(matches(
        "evt.arg.flags contains O_CLOEXEC and evt.arg[1] = /etc/shadow and evt.arg[flags] startswith O_RDONLY",
        e
    ));
    assert!(matches(
        "evt.args = \"flags=O_RDONLY|O_CLOEXEC name=/etc/shadow\"",
        e
    ));
    assert!(matches("fd.name bcontains 736861646f77", e));
    assert!(matches("fd.name bstartswith 2f657463", e));
    assert!(matches("proc.name = 'c\\at' or proc.name = \"cat\"", e));
}

#[test]
fn process_tree_fields() {
    let e = OPEN_SHADOW;
    assert!(matches(
        "proc.pname = bash and proc.aname[1] = bash and proc.aname[2] = sshd and proc.aname[0] = cat",
        e
    ));
    assert!(matches(
        "proc.aname = sshd and proc.aname in (sshd) and not proc.aname = cat",
        e
    ));
    assert!(matches(
        "proc.pexepath = /usr/bin/bash and proc.aexepath[2] = /usr/sbin/sshd",
        e
    ));
    assert!(!matches("proc.aname[3] exists", e));
    assert!(matches("proc.pcmdline = bash and proc.ppid = 10", e));
    assert!(
        !matches("proc.aname[5] != x", e),
        "an absent value satisfies no comparison"
    );
}

#[test]
fn exists_numbers_bools_and_context() {
    let e = OPEN_SHADOW;
    assert!(matches(
        "fd.num >= 0 and fd.num > 2 and fd.num < 4 and fd.num <= 3 and fd.num = 3 and fd.num != 4",
        e
    ));
    assert!(matches(
        "fd.num in (1, 2, 3) and user.uid = 0 and user.loginuid = -1",
        e
    ));
    assert!(matches(
        "evt.is_open_read = true and evt.is_open_write = false",
        e
    ));
    assert!(matches(
        "container.id = abcdef123456 and container.image.repository = nginx",
        e
    ));
    assert!(matches(
        "k8s.ns.name = shop and k8s.pod.label[app] = web and not k8s.pod.label[tier] exists",
        e
    ));
    assert!(matches(
        "evt.res = SUCCESS and evt.rawres = 0 and evt.type = openat and fd.typechar = f",
        e
    ));
    assert!(matches(
        "proc.name exists and not proc.sname exists and not proc.tty != 0",
        e
    ));
    let host = r#"{"type":"execve","proc":{"name":"sh"}}"#;
    assert!(matches(
        "container.id = host and not container.image.repository exists",
        host
    ));
    assert!(matches(
        "evt.type in (execve, execveat) and not evt.type = open",
        host
    ));
    assert!(!matches("evt.type != execve", host));
}

#[test]
fn network_fields() {
    let conn = r#"{"type":"connect","res":-115,"proc":{"name":"curl"},
      "fd":{"num":5,"type":"ipv4","name":"10.1.1.1:40000->192.0.2.10:443","l4proto":"tcp",
            "cip":"10.1.1.1","cport":40000,"sip":"192.0.2.10","sport":443,"connected":true}}"#;
    assert!(matches(
        "evt.res = EINPROGRESS and fd.sip = 192.0.2.10 and fd.cip = 10.1.1.1",
        conn
    ));
    assert!(matches(
        "fd.sport = 443 and fd.dport = 443 and fd.rport = 443 and fd.lport = 40000",
        conn
    ));
    assert!(matches(
        "fd.lip = 10.1.1.1 and fd.rip = 192.0.2.10 and fd.port = 40000 and fd.port = 443",
        conn
    ));
    assert!(matches(
        "fd.snet = 192.0.2.0/24 and fd.cnet in (\"10.0.0.0/8\", 172.16.0.0/12)",
        conn
    ));
    assert!(matches(
        "fd.ip != 0.0.0.0 and fd.net != 127.0.0.0/8 and fd.net = 10.0.0.0/8",
        conn
    ));
    assert!(matches(
        "fd.sip.name = api.test and fd.sip.name in (api.test, other.test)",
        conn
    ));
    assert!(!matches("fd.sip.name = unknown.test", conn));
    assert!(matches(
        "fd.l4proto = tcp and fd.sockfamily = ip and fd.connected = true and fd.typechar = 4",
        conn
    ));
    assert!(matches("fd.sip in (192.0.2.10, 2001:db8::1)", conn));
}

#[test]
fn event_types_are_derived_like_falco() {
    let text = r#"
- rule: A
  desc: d
  condition: evt.type in (open, openat) and proc.name = cat
  output: o
  priority: INFO
- rule: B
  desc: d
  condition: (evt.type = execve or evt.type = connect) and not evt.type = connect
  output: o
  priority: INFO
- rule: C
  desc: d
  condition: not evt.type in (open, openat) and evt.type != execve and proc.name = x
  output: o
  priority: INFO
- rule: D
  desc: d
  condition: proc.name = x
  output: o
  priority: INFO
"#;
    let rs = load(&[("f.yaml", text)]);
    let names = |i: usize| {
        rs.rules()[i]
            .event_types
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(0), ["open", "openat"]);
    assert_eq!(names(1), ["execve"]);
    let c = names(2);
    assert!(!c.contains(&"open") && !c.contains(&"execve") && c.contains(&"connect"));
    assert!(
        names(3).is_empty(),
        "no restriction: tested on every event type"
    );
}

#[test]
fn rule_matching_first_and_all() {
    let text = format!(
        "{}{}",
        rule("proc.name = cat"),
        rule("fd.name = /etc/shadow").replace("rule: R", "rule: R2")
    );
    let (mut rs, _) = rules::load_files(
        &[("f.yaml", text.as_str())],
        &LoadOptions {
            resolver: HostResolver::Disabled,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R"]);
    rs.set_rule_matching(RuleMatching::All);
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R", "R2"]);
    assert!(rs.set_enabled(rs.find("R").unwrap(), false));
    assert_eq!(fired(&rs, &ev(OPEN_SHADOW)), ["R2"]);
}

#[test]
fn events_round_trip_through_json_lines() {
    let e = ev(OPEN_SHADOW);
    let line = e.to_json();
    assert!(!line.contains('\n'));
    let back = rules::event::parse_json_lines(&format!("# comment\n\n{line}\n")).unwrap();
    assert_eq!(back, vec![e]);
    let err = rules::event::parse_json_lines("{\"type\":\"openat\"}\n{\"type\":\"nosuchcall\"}\n")
        .unwrap_err();
    assert!(err.starts_with("line 2:"), "{err}");
    let err = rules::event::parse_json_lines("{\"type\":\"openat\",\"typo\":1}").unwrap_err();
    assert!(err.contains("typo"), "{err}");
    let caps: Event = serde_json::from_str(
        r#"{"type":"execve","proc":{"cap_effective":["CAP_SYS_ADMIN","sys_module"]}}"#,
    )
    .unwrap();
    assert_eq!(caps.proc.cap_effective.0, (1 << 21) | (1 << 16));
}
