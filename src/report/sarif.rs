//! SARIF 2.1.0 as GitHub code scanning accepts it: a rule catalogue with descriptions,
//! results with ruleId, level, message, a physical location (path relative to the scan
//! root, start line of the document) and partialFingerprints.

use std::collections::HashMap;

use serde::Serialize;

use super::{Findings, digest};

#[derive(Serialize)]
pub(super) struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    original_uri_base_ids: HashMap<&'static str, UriBase>,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct UriBase {
    description: Text<&'static str>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    semantic_version: &'static str,
    information_uri: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
struct Text<T> {
    text: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text<&'a str>,
    full_description: Text<&'a str>,
    help: Text<&'a str>,
    default_configuration: Level,
    properties: RuleProperties<'a>,
}

#[derive(Serialize)]
struct Level {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties<'a> {
    tags: &'a [String],
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
    precision: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Text<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<SarifLocation<'a>>,
    partial_fingerprints: Fingerprints,
}

#[derive(Serialize)]
struct Fingerprints {
    #[serde(rename = "secmonFinding/v1")]
    finding: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation<'a> {
    physical_location: Physical,
    logical_locations: [Logical<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Physical {
    artifact_location: Artifact,
    region: Region,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Artifact {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Logical<'a> {
    fully_qualified_name: &'a str,
    kind: &'static str,
}

pub(super) fn build(f: &Findings) -> Log<'_> {
    let index: HashMap<&str, usize> = f
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let rules = f
        .rules
        .iter()
        .map(|r| Rule {
            id: &r.id,
            name: &r.name,
            short_description: Text { text: &r.short },
            full_description: Text { text: &r.full },
            help: Text { text: &r.help },
            default_configuration: Level {
                level: r.severity.sarif_level(),
            },
            properties: RuleProperties {
                tags: &r.tags,
                security_severity: r.severity.security_severity(),
                precision: "very-high",
            },
        })
        .collect();
    let results = f
        .results
        .iter()
        .map(|r| SarifResult {
            rule_id: &r.rule_id,
            rule_index: index.get(r.rule_id.as_str()).copied(),
            level: r.severity.sarif_level(),
            message: Text { text: &r.message },
            locations: r
                .location
                .iter()
                .map(|loc| SarifLocation {
                    physical_location: Physical {
                        artifact_location: Artifact {
                            uri: uri(&loc.path),
                            uri_base_id: "%SRCROOT%",
                        },
                        region: Region {
                            start_line: loc.line.max(1),
                        },
                    },
                    logical_locations: [Logical {
                        fully_qualified_name: &r.subject,
                        kind: "resource",
                    }],
                })
                .collect(),
            partial_fingerprints: Fingerprints {
                finding: digest(&[
                    &r.rule_id,
                    &r.subject,
                    r.location.as_ref().map_or("", |l| l.path.as_str()),
                ]),
            },
        })
        .collect();
    Log {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "kubectl-secmon",
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    information_uri: env!("CARGO_PKG_REPOSITORY"),
                    rules,
                },
            },
            original_uri_base_ids: HashMap::from([(
                "%SRCROOT%",
                UriBase {
                    description: Text {
                        text: "the scan root",
                    },
                },
            )]),
            results,
        }],
    }
}

/// A relative URI: `/` separators, spaces and other reserved characters escaped.
fn uri(path: &str) -> String {
    let path = if path == "-" { "stdin" } else { path };
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_and_escaped() {
        assert_eq!(uri("deploy/web app.yaml"), "deploy/web%20app.yaml");
        assert_eq!(uri("-"), "stdin");
    }
}
