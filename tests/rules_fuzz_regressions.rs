//! Regressions found by the `rules_loader` fuzz target (fuzz/fuzz_targets/rules_loader.rs).
//!
//! Load errors and diagnostics display as one line, `file:line: message`. YAML scalars may
//! hold line breaks (a blank line inside a multi-line plain scalar, `\n` in a double-quoted
//! one, a block scalar) and other control characters (`\r`, `\e`), and the messages quote
//! names, keys and values from the file: what they quote must not break the line or reach
//! the terminal as a control sequence.

use secmon::rules::{self, HostResolver, LoadOptions};

fn options() -> LoadOptions {
    LoadOptions {
        resolver: HostResolver::Disabled,
        ..LoadOptions::default()
    }
}

/// `shown` is `f.yaml:LINE: …` on one line.
fn assert_one_line(shown: &str) {
    let line = shown
        .strip_prefix("f.yaml:")
        .and_then(|rest| rest.split_once(": "))
        .map(|(line, _)| line);
    assert!(
        line.is_some_and(|l| l.parse::<usize>().is_ok_and(|n| n >= 1)),
        "not `f.yaml:LINE: …`: {shown:?}"
    );
    assert!(
        !shown.contains(['\n', '\r']),
        "not one line: {shown:?}\n---\n{shown}\n---"
    );
}

fn load_error(text: &str) -> String {
    let err =
        rules::load_files(&[("f.yaml", text)], &options()).expect_err("the file should be refused");
    err.to_string()
}

fn diagnostics(text: &str) -> Vec<String> {
    let (_, diags) = rules::load_files(&[("f.yaml", text)], &options())
        .unwrap_or_else(|e| panic!("the file should load: {e}"));
    assert!(!diags.is_empty(), "expected a diagnostic for {text:?}");
    diags.iter().map(ToString::to_string).collect()
}

/// The minimized fuzz crash: a blank line inside a multi-line plain scalar folds to a line
/// break, so the rule is named "e\ne" and the error quoting it spans two lines.
#[test]
fn error_quoting_a_folded_plain_scalar_is_one_line() {
    let shown = load_error("- rule: e\n\n  e\n");
    assert_one_line(&shown);
}

#[test]
fn errors_quoting_names_keys_and_values_with_line_breaks_are_one_line() {
    for text in [
        // Names: double-quoted escapes, a block scalar, a blank line in a quoted scalar.
        "- rule: \"a\\nb\"\n  bogus: 1\n",
        "- macro: \"a\\r\\nb\"\n  bogus: 1\n",
        "- list: \"a\\nb\"\n  items: 1\n",
        "- macro: |\n    a\n    b\n  bogus: 1\n",
        "- rule: \"a\n\n   b\"\n  enabled: maybe\n",
        // An override key and an override mode.
        "- list: x\n  items: []\n- list: x\n  items: []\n  override:\n    \"it\\nems\": append\n",
        "- list: x\n  items: []\n- list: x\n  items: []\n  override:\n    items: \"app\\nend\"\n",
        // An unknown key.
        "- rule: r\n  \"bo\\ngus\": 1\n",
    ] {
        assert_one_line(&load_error(text));
    }
}

#[test]
fn diagnostics_quoting_names_and_values_with_line_breaks_are_one_line() {
    let rule = |name: &str, condition: &str| {
        format!(
            "- rule: {name}\n  desc: d\n  condition: {condition}\n  output: o\n  priority: WARNING\n"
        )
    };
    for text in [
        // The rule name, in "needs fields this engine does not support".
        rule("\"r\\nx\"", "proc.nosuch = 1"),
        // An unknown event type.
        rule("r", "'evt.type = \"x\n\n    y\"'"),
        rule("r", "\"evt.type = \\\"x\\ny\\\"\""),
        // An unresolved host name.
        rule("r", "'fd.sip.name = \"a\n\n    b\"'"),
        rule("r", "\"fd.sip.name = \\\"a\\nb\\\"\""),
    ] {
        for shown in diagnostics(&text) {
            assert_one_line(&shown);
        }
    }
}

/// A rules file must not be able to send escape sequences to the terminal of whoever
/// loads it (`kubectl secmon rules check`), nor overwrite the line with a carriage return.
#[test]
fn messages_carry_no_control_characters() {
    let shown = load_error("- rule: \"\\e[2J\\e[31mfine\\r\"\n  bogus: 1\n");
    assert_one_line(&shown);
    assert!(
        !shown.chars().any(char::is_control),
        "control character in: {shown:?}"
    );
    for shown in diagnostics(
        "- rule: \"\\e]0;x\\a\"\n  desc: d\n  condition: proc.nosuch = 1\n  output: o\n  \
         priority: WARNING\n",
    ) {
        assert!(
            !shown.chars().any(char::is_control),
            "control character in: {shown:?}"
        );
    }
}
