//! Output templates: `%field` and `%field[arg]` replaced by the event's values, `<NA>` for
//! a value the event does not have, as Falco prints them; and the `output_fields` map
//! (dotted field name → JSON value, `null` when absent) for Falco's JSON alert format.

use super::event::Event;
use super::fields::{self, FieldRef, Scratch};

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Field {
        /// The field as written, e.g. `proc.aname[2]`: the `output_fields` key.
        key: String,
        /// `None` when the engine does not know the field (renders `<NA>`).
        field: Option<FieldRef>,
    },
}

/// A compiled output template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn compile(text: &str) -> Template {
        let text = text.trim();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if !after.starts_with(|c: char| c.is_ascii_alphabetic()) {
                lit.push('%');
                rest = after;
                continue;
            }
            let mut len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(after.len());
            while len > 0 && after.as_bytes().get(len - 1) == Some(&b'.') {
                len -= 1;
            }
            let name = &after[..len];
            let mut consumed = len;
            let mut arg = None;
            if after[len..].starts_with('[')
                && let Some(close) = after[len..].find(']')
            {
                arg = Some(&after[len + 1..len + close]);
                consumed = len + close + 1;
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            let key = match arg {
                Some(a) => format!("{name}[{a}]"),
                None => name.to_string(),
            };
            parts.push(Part::Field {
                key,
                field: fields::resolve(name, arg).ok(),
            });
            rest = &after[consumed..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Template { parts }
    }

    /// Fields in the template that the engine does not know.
    pub fn unknown_fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { key, field: None } => Some(key.as_str()),
            _ => None,
        })
    }

    /// The text and the `output_fields` map for one event.
    pub fn render(
        &self,
        ev: &Event,
        scratch: &mut Scratch,
    ) -> (String, serde_json::Map<String, serde_json::Value>) {
        let mut text = String::new();
        let mut map = serde_json::Map::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => text.push_str(s),
                Part::Field { key, field } => {
                    let val = field.as_ref().and_then(|f| {
                        scratch.prepare(f, ev);
                        fields::get(f, ev, scratch)
                    });
                    match val {
                        Some(v) => {
                            v.write_to(&mut text);
                            map.insert(key.clone(), v.to_json());
                        }
                        None => {
                            text.push_str("<NA>");
                            map.insert(key.clone(), serde_json::Value::Null);
                        }
                    }
                }
            }
        }
        (text, map)
    }
}

/// Fields added to every alert's `output_fields`, whatever the rule's output names: Falco's
/// `append_output` `extra_fields` (e.g. `proc.env[SECMON_SIM_ID]`, which lets
/// `kubectl secmon simulate verify` tie an alert to the scenario process that caused it).
#[derive(Debug, Clone, Default)]
pub struct ExtraFields {
    template: Option<Template>,
}

impl ExtraFields {
    /// Compile field names as written in rule outputs, without the `%` (`proc.name`,
    /// `proc.env[HOME]`). `Err` names the first field that is malformed or unknown.
    pub fn compile(fields: &[String]) -> Result<ExtraFields, String> {
        if fields.is_empty() {
            return Ok(ExtraFields::default());
        }
        let mut text = String::new();
        for f in fields {
            let f = f.trim();
            let single = Template::compile(&format!("%{f}"));
            let well_formed = matches!(
                single.parts.as_slice(),
                [Part::Field { key, .. }] if key == f
            );
            if !well_formed {
                return Err(format!(
                    "{f:?} is not a field name; write it as in a rule output without the %, e.g. proc.env[SECMON_SIM_ID]"
                ));
            }
            if let Some(unknown) = single.unknown_fields().next() {
                return Err(format!(
                    "unknown field {unknown:?}: the rules engine does not supply it"
                ));
            }
            text.push_str(&format!("%{f} "));
        }
        Ok(ExtraFields {
            template: Some(Template::compile(&text)),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.template.is_none()
    }

    /// The fields' values for one event (`null` where the event lacks one).
    pub fn render(&self, ev: &Event) -> serde_json::Map<String, serde_json::Value> {
        match &self.template {
            Some(t) => {
                let mut scratch = Scratch::default();
                scratch.reset(0);
                t.render(ev, &mut scratch).1
            }
            None => serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_render_like_output_fields() {
        let ev: Event = serde_json::from_str(
            r#"{"type":"execve","proc":{"name":"sh","env":["A=1","SECMON_SIM_ID=run-7"]}}"#,
        )
        .unwrap();
        let x =
            ExtraFields::compile(&["proc.env[SECMON_SIM_ID]".into(), "proc.name".into()]).unwrap();
        let m = x.render(&ev);
        assert_eq!(m["proc.env[SECMON_SIM_ID]"], "run-7");
        assert_eq!(m["proc.name"], "sh");
        let missing = ExtraFields::compile(&["proc.env[NOPE]".into()]).unwrap();
        assert!(missing.render(&ev)["proc.env[NOPE]"].is_null());
        assert!(ExtraFields::compile(&[]).unwrap().is_empty());
        assert!(ExtraFields::compile(&[]).unwrap().render(&ev).is_empty());
        for bad in ["proc.nope", "%proc.name", "proc.name fd.name", "", "1x"] {
            assert!(ExtraFields::compile(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(
            ExtraFields::compile(&["proc.nope".into()])
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
