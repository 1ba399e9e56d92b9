//! JUnit XML: one `<testsuite>` per suite name (an input file, a node, …) and one
//! `<testcase>` per subject and check, for GitLab, Jenkins and Azure test reports.

use std::io::{self, Write};

use super::{Case, Outcome};

pub(super) fn write(cases: &[Case], out: &mut dyn Write) -> io::Result<()> {
    let mut suites: Vec<(&str, Vec<&Case>)> = Vec::new();
    for c in cases {
        match suites.iter_mut().find(|(s, _)| *s == c.suite) {
            Some((_, list)) => list.push(c),
            None => suites.push((&c.suite, vec![c])),
        }
    }
    let count =
        |list: &[&Case], f: fn(&Outcome) -> bool| list.iter().filter(|c| f(&c.outcome)).count();
    let failed = |o: &Outcome| matches!(o, Outcome::Failed { .. });
    let errored = |o: &Outcome| matches!(o, Outcome::Errored { .. });
    let skipped = |o: &Outcome| matches!(o, Outcome::Skipped { .. });
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="kubectl-secmon" tests="{}" failures="{}" errors="{}" skipped="{}">"#,
        cases.len(),
        cases.iter().filter(|c| failed(&c.outcome)).count(),
        cases.iter().filter(|c| errored(&c.outcome)).count(),
        cases.iter().filter(|c| skipped(&c.outcome)).count(),
    )?;
    for (name, list) in &suites {
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}">"#,
            esc(name),
            list.len(),
            count(list, failed),
            count(list, errored),
            count(list, skipped),
        )?;
        for c in list {
            let open = format!(
                r#"    <testcase classname="{}" name="{}""#,
                esc(&c.classname),
                esc(&c.name)
            );
            match &c.outcome {
                Outcome::Passed => writeln!(out, "{open}/>")?,
                Outcome::Failed { message, text } => {
                    writeln!(out, "{open}>")?;
                    writeln!(
                        out,
                        r#"      <failure message="{}" type="violation">{}</failure>"#,
                        esc(message),
                        esc(text)
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
                Outcome::Errored { message } => {
                    writeln!(out, "{open}>")?;
                    writeln!(out, r#"      <error message="{}"/>"#, esc(message))?;
                    writeln!(out, "    </testcase>")?;
                }
                Outcome::Skipped { message } => {
                    writeln!(out, "{open}>")?;
                    writeln!(out, r#"      <skipped message="{}"/>"#, esc(message))?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Escape text for XML attributes and content; drop characters XML 1.0 cannot carry.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_counts() {
        let cases = vec![
            Case {
                suite: "a.yaml".into(),
                classname: "Pod/x".into(),
                name: "privileged".into(),
                outcome: Outcome::Passed,
            },
            Case {
                suite: "a.yaml".into(),
                classname: "Pod/x".into(),
                name: "hostPorts".into(),
                outcome: Outcome::Failed {
                    message: "hostPort <80>".into(),
                    text: "a & b\u{1}".into(),
                },
            },
        ];
        let mut buf = Vec::new();
        write(&cases, &mut buf).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(
            s.contains(
                r#"<testsuite name="a.yaml" tests="2" failures="1" errors="0" skipped="0">"#
            ),
            "{s}"
        );
        assert!(s.contains("hostPort &lt;80&gt;"));
        assert!(s.contains("a &amp; b\u{FFFD}"));
    }
}
