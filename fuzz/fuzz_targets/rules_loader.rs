//! Arbitrary bytes through the detection rules engine: the condition parser on the raw
//! text, the loader and compiler on the text as a rules file (alone, and after the embedded
//! default ruleset so that overrides and appends meet real lists, macros and rules), then
//! matching and output rendering on a fixed set of recorded events.
//!
//! Besides "never panics", it checks properties that must hold for every input:
//! a syntax error points inside the condition and reads as one line; a load error or a
//! diagnostic is one line that starts with the name of a loaded file and a line number;
//! every rule names a loaded file; `rule_matching: first` reports the first rule that
//! `all` reports; every rule that fires has an output.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secmon::rules::event::{self, Event, EventType};
use secmon::rules::{self, HostResolver, LoadError, LoadOptions, Matches, RuleMatching, Ruleset};

/// The name the fuzzed text is loaded under.
const FUZZ_FILE: &str = "fuzz.yaml";

/// Recorded events from the rules tests: the first case of each event type in each file,
/// then one bare event of every type (empty process, no fd, no container).
fn events() -> &'static [Event] {
    static EVENTS: OnceLock<Vec<Event>> = OnceLock::new();
    EVENTS.get_or_init(|| {
        let mut out: Vec<Event> = Vec::new();
        for cases in [
            include_str!("../../tests/fixtures/rules/secmon_cases.jsonl"),
            include_str!("../../tests/fixtures/rules/falco_stable_cases.jsonl"),
        ] {
            let mut kinds = Vec::new();
            for line in cases.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let case: serde_json::Value = serde_json::from_str(line).expect("a case line");
                let ev: Event =
                    serde_json::from_value(case["event"].clone()).expect("a recorded event");
                if !kinds.contains(&ev.kind) {
                    kinds.push(ev.kind);
                    out.push(ev);
                }
            }
        }
        // The JSON form is the one recordings use: make sure it reads back.
        for ev in &out {
            let back = Event::from_json(&ev.to_json()).expect("an event reads back");
            assert_eq!(&back, ev);
        }
        let lines: Vec<String> = out.iter().map(Event::to_json).collect();
        assert_eq!(
            event::parse_json_lines(&lines.join("\n")).expect("lines"),
            out
        );
        out.extend(EventType::ALL.iter().map(|&t| Event::new(t)));
        out
    })
}

fn defaults() -> &'static [(String, String)] {
    static DEFAULTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    DEFAULTS.get_or_init(rules::default_ruleset_sources)
}

fn options() -> LoadOptions {
    LoadOptions {
        // Never resolve host names here: no network, and the same input gives the same result.
        resolver: HostResolver::Disabled,
        ..LoadOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    parse_condition(text);

    let alone = [(FUZZ_FILE.to_string(), text.to_string())];
    if let Err(e) = load(&alone)
        && e.file == FUZZ_FILE
        && (e.message.starts_with("invalid YAML:")
            || e.message.starts_with("a rules file must be a YAML list"))
    {
        // The text is refused before any of its items is read: after the default ruleset
        // it would fail the same way, only 30 times slower.
        return;
    }

    let mut stacked = defaults().to_vec();
    stacked.push((FUZZ_FILE.to_string(), text.to_string()));
    let _ = load(&stacked);
});

fn parse_condition(text: &str) {
    if let Err(e) = rules::parser::parse(text) {
        assert!(!e.message.is_empty(), "empty syntax error for {text:?}");
        assert!(e.pos <= text.len(), "error past the end: {e:?}");
        let shown = e.to_string();
        assert!(!shown.contains(['\n', '\r']), "multi-line: {shown:?}");
    }
}

fn names(files: &[(String, String)]) -> impl Iterator<Item = &str> {
    files.iter().map(|(n, _)| n.as_str())
}

/// Whether `shown` is `file:line: …` for one of the loaded files, on a single line.
fn check_located(files: &[(String, String)], file: &str, line: usize, shown: &str) {
    assert!(
        names(files).any(|n| n == file),
        "names an unknown file: {shown:?}"
    );
    assert!(
        shown.starts_with(&format!("{file}:{line}: ")),
        "does not start with the file and line: {shown:?}"
    );
    assert!(line >= 1, "line 0: {shown:?}");
    assert!(!shown.contains(['\n', '\r']), "multi-line: {shown:?}");
}

/// Load, check the outcome, and run the events through what loaded.
fn load(files: &[(String, String)]) -> Result<(), LoadError> {
    let (mut ruleset, diagnostics) = match rules::load_files(files, &options()) {
        Ok(loaded) => loaded,
        Err(e) => {
            assert!(!e.message.is_empty(), "empty load error: {e:?}");
            check_located(files, &e.file, e.line, &e.to_string());
            return Err(e);
        }
    };
    for d in &diagnostics {
        check_located(files, &d.file, d.line, &d.to_string());
    }
    for info in ruleset.rules() {
        assert!(
            names(files).any(|n| n == info.file),
            "rule {:?} names an unknown file {:?}",
            info.name,
            info.file
        );
    }
    run_events(&mut ruleset);
    Ok(())
}

fn run_events(ruleset: &mut Ruleset) {
    let mut first = Matches::new();
    let mut all = Matches::new();
    for ev in events() {
        ruleset.set_rule_matching(RuleMatching::First);
        let n = ruleset.matches(ev, &mut first);
        assert_eq!(n, first.len());
        assert!(n <= 1, "rule_matching: first reported {n} rules");

        ruleset.set_rule_matching(RuleMatching::All);
        let n = ruleset.matches(ev, &mut all);
        assert_eq!(n, all.len());
        assert_eq!(
            first.ids(),
            &all.ids()[..all.len().min(1)],
            "first and all disagree on {:?}",
            ev.kind
        );
        assert!(
            all.ids().windows(2).all(|w| w[0] < w[1]),
            "not in load order"
        );

        for &id in all.ids() {
            let info = ruleset.rule(id).expect("a matched rule exists");
            assert!(info.is_active(), "an inactive rule fired: {:?}", info.name);
            let rendered = ruleset
                .render_output(id, ev)
                .unwrap_or_else(|| panic!("no output for fired rule {:?}", info.name));
            std::hint::black_box(rendered);
        }
    }
    // The fuzzed file's own output templates rarely fire: render them on every event.
    let own: Vec<_> = ruleset
        .rules()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.file == FUZZ_FILE && r.is_active())
        .map(|(i, _)| rules::RuleId(i))
        .take(8)
        .collect();
    for ev in events() {
        for &id in &own {
            std::hint::black_box(ruleset.render_output(id, ev));
        }
    }
}
