//! SARIF 2.1.0 as GitHub code scanning accepts it: a rule catalogue with descriptions,
//! results with ruleId, level, message, a physical location (path relative to the scan
//! root, start line of the document) and partialFingerprints.

use serde_json::{Value, json};

use super::{Findings, digest};

pub(super) fn build(f: &Findings) -> Value {
    let rules: Vec<Value> = f
        .rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.short},
                "fullDescription": {"text": r.full},
                "help": {"text": r.help},
                "defaultConfiguration": {"level": r.severity.sarif_level()},
                "properties": {
                    "tags": r.tags,
                    "security-severity": r.severity.security_severity(),
                    "precision": "very-high",
                },
            })
        })
        .collect();
    let results: Vec<Value> = f
        .results
        .iter()
        .map(|r| {
            let mut result = json!({
                "ruleId": r.rule_id,
                "level": r.severity.sarif_level(),
                "message": {"text": r.message},
                "partialFingerprints": {
                    "secmonFinding/v1": digest(&[&r.rule_id, &r.subject,
                        r.location.as_ref().map_or("", |l| l.path.as_str())]),
                },
            });
            if let Some(idx) = f.rules.iter().position(|x| x.id == r.rule_id) {
                result["ruleIndex"] = json!(idx);
            }
            if let Some(loc) = &r.location {
                result["locations"] = json!([{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&loc.path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": loc.line.max(1)},
                    },
                    "logicalLocations": [{"fullyQualifiedName": r.subject, "kind": "resource"}],
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kubectl-secmon",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the scan root"}}},
            "results": results,
        }],
    })
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
