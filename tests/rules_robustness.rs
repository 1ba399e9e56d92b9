//! Hostile input never panics: the condition parser and the whole loader are driven with
//! deterministic pseudo-random mutations of real rules files and conditions (a cheap stand-in
//! for the cargo-fuzz target, which calls the same two entry points). Every outcome must be
//! Ok or an error that names a file and line.

use secmon::rules::{self, HostResolver, LoadOptions};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    " and ",
    " or ",
    "not ",
    "proc.name",
    "fd.name",
    "proc.aname[",
    "]",
    "=",
    "!=",
    "<=",
    " in ",
    " pmatch ",
    " glob ",
    " regex ",
    "\"",
    "'",
    "\\",
    ",",
    "evt.type",
    "k8s.pod.label[",
    "exists",
    "macro_x",
    "0",
    "-1",
    "99999999999999999999",
    "\u{00e9}",
    "\u{1F600}",
    "\n",
    "[",
    "%",
    ":",
    "- ",
    "  ",
    "{",
    "}",
    "&a",
    "*a",
    "!!str ",
];

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(6) {
        let pos = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (pos + rng.below(20)).min(s.len());
                s.drain(pos.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                for (i, c) in t.chars().enumerate() {
                    s.insert((pos + i).min(s.len()), c);
                }
            }
            2 if !s.is_empty() => {
                let i = pos.min(s.len() - 1);
                s[i] = char::from_u32(rng.below(0x80) as u32).unwrap_or('x');
            }
            _ => s.truncate(pos),
        }
    }
    s.into_iter().collect()
}

const CONDITIONS: &[&str] = &[
    "evt.type in (open, openat) and proc.name = cat and not fd.name pmatch (/etc, /usr/bin)",
    "(proc.aname[2] = sshd or k8s.pod.label[app] exists) and fd.sip.name = \"a.b\" and fd.snet in (\"10.0.0.0/8\")",
    "not (not (a or b) and c) and proc.cmdline regex '^x.*$' and fd.name glob '/home/*/.ssh/*'",
];

#[test]
fn condition_parser_survives_mutations() {
    let mut rng = Rng(0x5EC0_0001);
    let mut errors = 0;
    for i in 0..20_000 {
        let base = CONDITIONS[i % CONDITIONS.len()];
        let c = mutate(&mut rng, base);
        if let Err(e) = rules::parser::parse(&c) {
            errors += 1;
            assert!(!e.message.is_empty());
            assert!(e.pos <= c.len(), "error position past the end for {c:?}");
        }
    }
    assert!(
        errors > 1000,
        "mutations should produce many syntax errors ({errors})"
    );
}

fn check(files: &[(String, String)]) {
    let options = LoadOptions {
        resolver: HostResolver::Disabled,
        ..LoadOptions::default()
    };
    if let Err(e) = rules::load_files(files, &options) {
        assert!(!e.message.is_empty());
        assert!(
            files.iter().any(|(n, _)| *n == e.file),
            "error names an unknown file: {e}"
        );
        assert!(e.line >= 1, "{e}");
        assert!(!e.to_string().contains('\n'), "error is not one line: {e}");
    }
}

#[test]
fn loader_survives_mutated_rules_files() {
    let mut rng = Rng(0x5EC0_0002);
    let default = rules::default_ruleset_sources().remove(0).1;
    // Small windows of a real file keep each run fast while covering every item kind.
    let lines: Vec<&str> = default.lines().collect();
    for _ in 0..1500 {
        let start = rng.below(lines.len());
        let len = 5 + rng.below(60);
        let window = lines[start..(start + len).min(lines.len())].join("\n");
        let text = mutate(&mut rng, &window);
        check(&[("m.yaml".into(), text)]);
    }
    for text in [
        "",
        "---",
        "[]",
        "- ",
        "-",
        "~",
        "- rule:",
        "- rule: [",
        "- list: x\n  items: [[[[",
        "- macro: m\n  condition: (((",
        "\u{feff}- list: a\n  items: []",
    ] {
        check(&[("edge.yaml".into(), text.into())]);
    }
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    check(&[("deep.yaml".into(), format!("- list: x\n  items: {deep}\n"))]);
}

#[test]
fn whole_file_mutations_do_not_panic() {
    let mut rng = Rng(0x5EC0_0003);
    let default = rules::default_ruleset_sources().remove(0).1;
    for _ in 0..40 {
        let text = mutate(&mut rng, &default);
        check(&[("m.yaml".into(), text)]);
    }
}
