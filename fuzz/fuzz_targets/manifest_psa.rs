//! Arbitrary bytes through the whole offline pipeline: the manifest reader (as YAML and as
//! JSON), the pod-template extraction of every workload kind, the Pod Security engine at
//! several policies, the safe fixes, and a re-evaluation of the patched object.
//!
//! Besides "never panics", it checks properties that must hold for every input:
//! document ranges lie inside the text on character boundaries; a fix never makes a
//! readable object unreadable, never adds a failing check, is idempotent, and its output
//! (YAML or JSON, as `psa fix` prints it) reads back to the same object.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secmon::manifest::{self, SourceFile};
use secmon::psa::workload::{self, WorkloadKind};
use secmon::psa::{self, CheckId, Policy};
use serde_json::Value;

fn policies() -> &'static [Policy] {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            ("restricted", "latest"),
            ("baseline", "latest"),
            ("restricted", "v1.22"),
            ("baseline", "v1.0"),
        ]
        .into_iter()
        .map(|(level, version)| Policy::parse(level, version).expect("a valid policy"))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = manifest::text_from_bytes(data.to_vec()) else {
        return;
    };
    for json in [false, true] {
        let file = SourceFile {
            path: None,
            display: "fuzz".into(),
            text: text.clone(),
            json,
        };
        read(&file);
    }
});

fn read(file: &SourceFile) {
    let text = file.text.as_str();
    for doc in manifest::documents(file) {
        let r = &doc.range;
        assert!(r.start <= r.end && r.end <= text.len(), "range {r:?}");
        assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
        assert!(r.start <= doc.content && doc.content <= r.end.max(r.start));
        assert!(doc.line >= 1);
        // A document that does not parse gives its error here too; a List gives the
        // items it could read and an error for each one it could not.
        let (objects, errors) = doc.into_objects(&file.display);
        for e in &errors {
            assert!(e.location.starts_with("fuzz"), "{e}");
            assert!(!e.message.contains('\n'), "multi-line message: {e:?}");
        }
        for object in objects {
            evaluate(&object, file.json);
        }
    }
}

fn evaluate(object: &Value, json: bool) {
    let field = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
    let Some(kind) = WorkloadKind::from_type(field("apiVersion"), field("kind")) else {
        return;
    };
    let template = match workload::extract(kind, object) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            assert!(!e.message.is_empty());
            return;
        }
    };
    for policy in policies() {
        let before = psa::evaluate(policy, &template.meta, &template.spec);
        assert_eq!(before.allowed(), before.warning(policy).is_empty());
        if before.allowed() {
            continue;
        }
        let failed: Vec<CheckId> = before.violations.iter().map(|v| v.check).collect();
        let mut patched = object.clone();
        let changes = psa::fix::patch(kind, &mut patched, &failed);
        if changes.is_empty() {
            assert_eq!(
                &patched, object,
                "no changes reported, but the object changed"
            );
            continue;
        }
        let after = match workload::extract(kind, &patched) {
            Ok(Some(t)) => t,
            Ok(None) => panic!("the fix removed the pod template"),
            Err(e) => panic!("the fix made a readable object unreadable: {e}"),
        };
        let after_eval = psa::evaluate(policy, &after.meta, &after.spec);
        for v in &after_eval.violations {
            assert!(
                failed.contains(&v.check),
                "the fix introduced a new violation: {v:?}"
            );
        }
        // Idempotent: fixing what is still failing changes nothing more.
        let still: Vec<CheckId> = after_eval.violations.iter().map(|v| v.check).collect();
        let mut again = patched.clone();
        let more = psa::fix::patch(kind, &mut again, &still);
        assert!(more.is_empty(), "a second fix changed more: {more:?}");
        // What `psa fix` prints reads back to the object it patched.
        round_trip(&patched, json);
    }
}

fn round_trip(patched: &Value, json: bool) {
    let text = if json {
        serde_json::to_string_pretty(patched).expect("JSON serialization")
    } else {
        match secmon::report::to_yaml(patched) {
            Ok(yaml) => yaml,
            Err(_) => return,
        }
    };
    let file = SourceFile {
        path: None,
        display: "fixed".into(),
        text,
        json,
    };
    let docs = manifest::documents(&file);
    assert_eq!(docs.len(), 1, "fix output:\n{}", file.text);
    match &docs[0].value {
        Ok(v) => assert_eq!(v, patched, "fix output:\n{}", file.text),
        Err(e) => panic!("the fix output is not readable YAML: {e}\n{}", file.text),
    }
}
