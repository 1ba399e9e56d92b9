//! Falco's rules-file semantics: items (`list`, `macro`, `rule`, `required_engine_version`,
//! `required_plugin_versions`), their keys and types, `override` and the deprecated
//! `append`, several files in order. The result is the merged definitions, still text;
//! [`super::compile`] turns them into matchers.

use std::collections::HashMap;

use super::parser::{Operator, quote_value};
use super::yaml::{self, Node, Yaml};
use super::{Diagnostic, ENGINE_VERSION, LoadError, Priority, Severity};

/// Where something was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct ListDef {
    pub name: String,
    pub items: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MacroDef {
    pub name: String,
    pub condition: String,
    /// Where the (last) condition text came from.
    pub cond_origin: Origin,
}

/// One exception value in a tuple: a scalar, or a list for list operators.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExcItem {
    Scalar(String),
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct ExceptionDef {
    pub name: String,
    /// `Ok(field)` for the single-field form, `Err(fields)` for the tuple form.
    pub fields: Result<String, Vec<String>>,
    pub comps: Vec<String>,
    /// Single-field form: one item per value; tuple form: one tuple per value.
    pub values: Vec<Vec<ExcItem>>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDef {
    pub name: String,
    pub desc: String,
    pub condition: String,
    pub output: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub exceptions: Vec<ExceptionDef>,
    pub source: String,
    pub skip_if_unknown_filter: bool,
    pub origin: Origin,
    pub cond_origin: Origin,
}

/// Everything the files define, in definition order.
#[derive(Debug, Default)]
pub(crate) struct Definitions {
    pub lists: Vec<ListDef>,
    pub macros: Vec<MacroDef>,
    pub rules: Vec<RuleDef>,
    list_idx: HashMap<String, usize>,
    macro_idx: HashMap<String, usize>,
    rule_idx: HashMap<String, usize>,
    pub diagnostics: Vec<Diagnostic>,
}

const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override"];
const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "tags",
    "enabled",
    "exceptions",
    "source",
    "append",
    "override",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
];
const RULE_APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const RULE_REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "tags",
    "exceptions",
    "priority",
    "enabled",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
];
const EXCEPTION_KEYS: &[&str] = &["name", "fields", "comps", "values"];
const PLUGIN_KEYS: &[&str] = &["name", "version", "alternatives"];

/// One `override:` entry: the key, whether it appends (else replaces), and its line.
type Override = (String, bool, usize);

/// A mapping item with its file, for typed lookups with good errors.
struct Item<'a> {
    file: &'a str,
    text: &'a str,
    line: usize,
    entries: &'a [(Node, Node)],
    what: String,
}

impl<'a> Item<'a> {
    fn err(&self, line: usize, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn keys(&self) -> impl Iterator<Item = (&'a str, usize)> + 'a {
        self.entries
            .iter()
            .map(|(k, _)| (k.as_str().unwrap_or(""), k.line))
    }

    /// Every key must be one of `allowed`; keys must be strings.
    fn check_keys(&self, allowed: &[&str]) -> Result<(), LoadError> {
        for (k, _) in self.entries {
            let Some(name) = k.as_str() else {
                return Err(self.err(k.line, format!("{}: keys must be strings", self.what)));
            };
            if !allowed.contains(&name) {
                return Err(self.err(
                    k.line,
                    format!(
                        "{}: unknown key '{name}' (expected one of: {})",
                        self.what,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn string(&self, key: &str) -> Result<Option<(String, usize)>, LoadError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match &v.value {
            Yaml::Str(s) => Ok(Some((s.clone(), v.line))),
            Yaml::Int(_) | Yaml::Float(_) | Yaml::Bool(_) => {
                Ok(Some((v.scalar_text(self.text).unwrap_or_default(), v.line)))
            }
            _ => Err(self.err(
                v.line,
                format!(
                    "{}: '{key}' must be a string, found {}",
                    self.what,
                    v.kind()
                ),
            )),
        }
    }

    fn required_string(&self, key: &str) -> Result<(String, usize), LoadError> {
        self.string(key)?.ok_or_else(|| {
            self.err(
                self.line,
                format!("{}: missing required key '{key}'", self.what),
            )
        })
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, LoadError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match &v.value {
            Yaml::Bool(b) => Ok(Some(*b)),
            Yaml::Str(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Yaml::Str(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(self.err(
                v.line,
                format!(
                    "{}: '{key}' must be true or false, found {}",
                    self.what,
                    v.kind()
                ),
            )),
        }
    }

    fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, LoadError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        scalar_list(v, self.text).map(Some).map_err(|line| {
            self.err(
                line,
                format!("{}: '{key}' must be a list of strings", self.what),
            )
        })
    }

    /// `override:` as key → (append | replace).
    fn overrides(&self) -> Result<Option<Vec<Override>>, LoadError> {
        let Some(v) = self.get("override") else {
            return Ok(None);
        };
        let Yaml::Map(entries) = &v.value else {
            return Err(self.err(
                v.line,
                format!(
                    "{}: 'override' must be a mapping of key to append or replace",
                    self.what
                ),
            ));
        };
        let mut out = Vec::new();
        for (k, how) in entries {
            let (Some(key), Some(h)) = (k.as_str(), how.as_str()) else {
                return Err(self.err(
                    k.line,
                    format!(
                        "{}: 'override' entries must be 'key: append|replace'",
                        self.what
                    ),
                ));
            };
            let append = match h {
                "append" => true,
                "replace" => false,
                other => {
                    return Err(self.err(
                        how.line,
                        format!(
                            "{}: override for '{key}' must be append or replace, found '{other}'",
                            self.what
                        ),
                    ));
                }
            };
            out.push((key.to_string(), append, k.line));
        }
        Ok(Some(out))
    }
}

/// A list of scalars (numbers and booleans as written). `Err(line)` of the offending node.
fn scalar_list(v: &Node, text: &str) -> Result<Vec<String>, usize> {
    match &v.value {
        Yaml::Null => Ok(Vec::new()),
        Yaml::Seq(items) => items
            .iter()
            .map(|i| i.scalar_text(text).ok_or(i.line))
            .collect(),
        _ => Err(v.line),
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.');
    let a = parts.next()?.parse().ok()?;
    let b = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let c = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

impl Definitions {
    fn warn(&mut self, file: &str, line: usize, rule: Option<&str>, message: String) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            file: file.to_string(),
            line,
            rule: rule.map(str::to_string),
            message,
        });
    }

    /// Load one file's items on top of what is already defined.
    pub fn load_file(&mut self, file: &str, text: &str) -> Result<(), LoadError> {
        let root = yaml::parse(text).map_err(|(line, message)| LoadError {
            file: file.to_string(),
            line,
            message,
        })?;
        let items = match &root.value {
            Yaml::Null => return Ok(()),
            Yaml::Seq(items) => items,
            _ => {
                return Err(LoadError {
                    file: file.to_string(),
                    line: root.line,
                    message: format!(
                        "a rules file must be a YAML list of items, found {}",
                        root.kind()
                    ),
                });
            }
        };
        for node in items {
            let Yaml::Map(entries) = &node.value else {
                return Err(LoadError {
                    file: file.to_string(),
                    line: node.line,
                    message: format!(
                        "each item must be a mapping (rule, macro, list…), found {}",
                        node.kind()
                    ),
                });
            };
            let mut item = Item {
                file,
                text,
                line: node.line,
                entries,
                what: String::new(),
            };
            if item.has("required_engine_version") {
                item.what = "required_engine_version".into();
                self.engine_version(&item)?;
            } else if item.has("required_plugin_versions") {
                item.what = "required_plugin_versions".into();
                plugin_versions(&item)?;
            } else if item.has("list") {
                let (name, _) = item.required_string("list")?;
                item.what = format!("list '{name}'");
                self.list(&item, name)?;
            } else if item.has("macro") {
                let (name, _) = item.required_string("macro")?;
                item.what = format!("macro '{name}'");
                self.macro_item(&item, name)?;
            } else if item.has("rule") {
                let (name, _) = item.required_string("rule")?;
                item.what = format!("rule '{name}'");
                self.rule(&item, name)?;
            } else {
                let keys: Vec<&str> = item.keys().map(|(k, _)| k).collect();
                return Err(item.err(
                    node.line,
                    format!(
                        "unknown item with keys [{}]: expected one of rule, macro, list, \
                         required_engine_version, required_plugin_versions",
                        keys.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn engine_version(&mut self, item: &Item) -> Result<(), LoadError> {
        item.check_keys(&["required_engine_version"])?;
        let (v, line) = item.required_string("required_engine_version")?;
        let want = parse_version(&v).ok_or_else(|| {
            item.err(
                line,
                format!("required_engine_version: '{v}' is not a version"),
            )
        })?;
        // Old files give a bare integer N, meaning engine 0.N.0.
        let want = match want {
            (n, 0, 0) if !v.contains('.') => (0, n, 0),
            w => w,
        };
        let have = parse_version(ENGINE_VERSION).unwrap_or((0, 0, 0));
        if want > have {
            return Err(item.err(
                line,
                format!(
                    "the file requires rules engine version {v}; this engine implements {ENGINE_VERSION}"
                ),
            ));
        }
        Ok(())
    }

    fn list(&mut self, item: &Item, name: String) -> Result<(), LoadError> {
        item.check_keys(LIST_KEYS)?;
        let items = item.string_list("items")?;
        let append = item.boolean("append")?.unwrap_or(false);
        let overrides = item.overrides()?;
        let existing = self.list_idx.get(&name).copied();
        if append && overrides.is_some() {
            return Err(item.err(
                item.line,
                format!("{}: 'append' and 'override' cannot be combined", item.what),
            ));
        }
        let mode = if let Some(ov) = overrides {
            let mut mode = None;
            for (key, app, line) in ov {
                if key != "items" {
                    return Err(item.err(
                        line,
                        format!(
                            "{}: only 'items' can be overridden in a list, not '{key}'",
                            item.what
                        ),
                    ));
                }
                mode = Some(app);
            }
            if mode.is_some() && items.is_none() {
                return Err(item.err(
                    item.line,
                    format!(
                        "{}: 'override' names 'items' but the item has none",
                        item.what
                    ),
                ));
            }
            mode
        } else if append {
            self.warn(
                item.file,
                item.line,
                None,
                format!(
                    "{}: 'append: true' is deprecated; use 'override: {{items: append}}'",
                    item.what
                ),
            );
            Some(true)
        } else {
            None
        };
        let items = items.ok_or_else(|| {
            item.err(
                item.line,
                format!("{}: missing required key 'items'", item.what),
            )
        })?;
        match (mode, existing) {
            (Some(_), None) => Err(item.err(
                item.line,
                format!(
                    "{}: appends to or overrides a list that is not defined",
                    item.what
                ),
            )),
            (Some(true), Some(i)) => {
                self.lists[i].items.extend(items);
                Ok(())
            }
            (Some(false), Some(i)) | (None, Some(i)) => {
                self.lists[i].items = items;
                Ok(())
            }
            (None, None) => {
                self.list_idx.insert(name.clone(), self.lists.len());
                self.lists.push(ListDef { name, items });
                Ok(())
            }
        }
    }

    fn macro_item(&mut self, item: &Item, name: String) -> Result<(), LoadError> {
        item.check_keys(MACRO_KEYS)?;
        let (condition, cond_line) = item.required_string("condition")?;
        let append = item.boolean("append")?.unwrap_or(false);
        let overrides = item.overrides()?;
        if append && overrides.is_some() {
            return Err(item.err(
                item.line,
                format!("{}: 'append' and 'override' cannot be combined", item.what),
            ));
        }
        let cond_origin = Origin {
            file: item.file.to_string(),
            line: cond_line,
        };
        let mode = if let Some(ov) = overrides {
            let mut mode = None;
            for (key, app, line) in ov {
                if key != "condition" {
                    return Err(item.err(
                        line,
                        format!(
                            "{}: only 'condition' can be overridden in a macro, not '{key}'",
                            item.what
                        ),
                    ));
                }
                mode = Some(app);
            }
            mode
        } else if append {
            self.warn(
                item.file,
                item.line,
                None,
                format!(
                    "{}: 'append: true' is deprecated; use 'override: {{condition: append}}'",
                    item.what
                ),
            );
            Some(true)
        } else {
            None
        };
        let existing = self.macro_idx.get(&name).copied();
        match (mode, existing) {
            (Some(_), None) => Err(item.err(
                item.line,
                format!(
                    "{}: appends to or overrides a macro that is not defined",
                    item.what
                ),
            )),
            (Some(true), Some(i)) => {
                let m = &mut self.macros[i];
                m.condition = format!("{} {}", m.condition, condition);
                m.cond_origin = cond_origin;
                Ok(())
            }
            (Some(false), Some(i)) | (None, Some(i)) => {
                let m = &mut self.macros[i];
                m.condition = condition;
                m.cond_origin = cond_origin;
                Ok(())
            }
            (None, None) => {
                self.macro_idx.insert(name.clone(), self.macros.len());
                self.macros.push(MacroDef {
                    name,
                    condition,
                    cond_origin,
                });
                Ok(())
            }
        }
    }

    fn rule(&mut self, item: &Item, name: String) -> Result<(), LoadError> {
        item.check_keys(RULE_KEYS)?;
        // Validate every key's type up front, whatever the item does with it.
        let desc = item.string("desc")?;
        let condition = item.string("condition")?;
        let output = item.string("output")?;
        let priority = match item.string("priority")? {
            None => None,
            Some((p, line)) => Some(Priority::parse(&p).ok_or_else(|| {
                item.err(
                    line,
                    format!(
                        "{}: unknown priority '{p}' (expected EMERGENCY, ALERT, CRITICAL, ERROR, \
                         WARNING, NOTICE, INFORMATIONAL/INFO or DEBUG)",
                        item.what
                    ),
                )
            })?),
        };
        let tags = item.string_list("tags")?;
        let enabled = item.boolean("enabled")?;
        let source = item.string("source")?;
        let skip_unknown = item.boolean("skip-if-unknown-filter")?;
        item.boolean("capture")?;
        item.boolean("warn_evttypes")?;
        if let Some(v) = item.get("capture_duration")
            && !matches!(v.value, Yaml::Int(_))
        {
            return Err(item.err(
                v.line,
                format!(
                    "{}: 'capture_duration' must be a number of milliseconds",
                    item.what
                ),
            ));
        }
        let exceptions = match item.get("exceptions") {
            None => None,
            Some(v) => Some(exceptions(item, v)?),
        };
        let append = item.boolean("append")?.unwrap_or(false);
        let overrides = item.overrides()?;
        if append && overrides.is_some() {
            return Err(item.err(
                item.line,
                format!("{}: 'append' and 'override' cannot be combined", item.what),
            ));
        }
        let existing = self.rule_idx.get(&name).copied();
        let origin = Origin {
            file: item.file.to_string(),
            line: item.line,
        };
        let cond_origin = Origin {
            file: item.file.to_string(),
            line: item.get("condition").map_or(item.line, |n| n.line),
        };

        // The plan: which keys are appended and which replaced.
        let plan: Option<Vec<(String, bool)>> = if let Some(ov) = overrides {
            let mut plan = Vec::new();
            for (key, app, line) in &ov {
                let allowed = if *app {
                    RULE_APPENDABLE
                } else {
                    RULE_REPLACEABLE
                };
                if !allowed.contains(&key.as_str()) {
                    return Err(item.err(
                        *line,
                        format!(
                            "{}: '{key}' cannot be {} (allowed: {})",
                            item.what,
                            if *app { "appended" } else { "replaced" },
                            allowed.join(", ")
                        ),
                    ));
                }
                if !item.has(key) {
                    return Err(item.err(
                        *line,
                        format!(
                            "{}: 'override' names '{key}' but the item does not set it",
                            item.what
                        ),
                    ));
                }
                plan.push((key.clone(), *app));
            }
            for (key, line) in item.keys() {
                if key != "rule" && key != "override" && !ov.iter().any(|(k, ..)| k == key) {
                    return Err(item.err(
                        line,
                        format!(
                            "{}: key '{key}' is set but not listed in 'override'",
                            item.what
                        ),
                    ));
                }
            }
            Some(plan)
        } else if append {
            self.warn(
                item.file,
                item.line,
                Some(&name),
                format!(
                    "{}: 'append: true' is deprecated; use 'override'",
                    item.what
                ),
            );
            let mut plan = Vec::new();
            for (key, line) in item.keys() {
                match key {
                    "rule" | "append" => {}
                    k if RULE_APPENDABLE.contains(&k) => plan.push((k.to_string(), true)),
                    "enabled" => plan.push((key.to_string(), false)),
                    k => {
                        return Err(
                            item.err(line, format!("{}: '{k}' cannot be appended", item.what))
                        );
                    }
                }
            }
            Some(plan)
        } else if existing.is_some()
            && condition.is_none()
            && enabled.is_some()
            && item.entries.len() == 2
        {
            // The legacy form `- rule: X / enabled: false` toggles an existing rule.
            Some(vec![("enabled".to_string(), false)])
        } else {
            None
        };

        let Some(plan) = plan else {
            // A full definition (or redefinition, which replaces the rule in place).
            let need = |v: Option<(String, usize)>, key: &str| {
                v.ok_or_else(|| {
                    item.err(
                        item.line,
                        format!("{}: missing required key '{key}'", item.what),
                    )
                })
            };
            let priority = priority.ok_or_else(|| {
                item.err(
                    item.line,
                    format!("{}: missing required key 'priority'", item.what),
                )
            })?;
            let def = RuleDef {
                name: name.clone(),
                desc: need(desc, "desc")?.0,
                condition: need(condition, "condition")?.0,
                output: need(output, "output")?.0,
                priority,
                tags: dedup(tags.unwrap_or_default()),
                enabled: enabled.unwrap_or(true),
                exceptions: exceptions.unwrap_or_default(),
                source: source.map_or_else(|| "syscall".to_string(), |s| s.0),
                skip_if_unknown_filter: skip_unknown.unwrap_or(false),
                origin,
                cond_origin,
            };
            for e in &def.exceptions {
                if e.fields.as_ref().is_ok_and(|f| f.is_empty())
                    || e.fields.as_ref().is_err_and(|f| f.is_empty())
                {
                    return Err(item.err(
                        e.origin.line,
                        format!("{}: exception '{}' has no fields", item.what, e.name),
                    ));
                }
            }
            match existing {
                Some(i) => self.rules[i] = def,
                None => {
                    self.rule_idx.insert(name, self.rules.len());
                    self.rules.push(def);
                }
            }
            return Ok(());
        };

        let Some(i) = existing else {
            return Err(item.err(
                item.line,
                format!(
                    "{}: appends to or overrides a rule that is not defined",
                    item.what
                ),
            ));
        };
        let rule = &mut self.rules[i];
        for (key, app) in plan {
            match key.as_str() {
                "condition" => {
                    let c = condition.clone().map(|c| c.0).unwrap_or_default();
                    rule.condition = if app {
                        format!("{} {}", rule.condition, c)
                    } else {
                        c
                    };
                    rule.cond_origin = cond_origin.clone();
                }
                "output" => {
                    let o = output.clone().map(|c| c.0).unwrap_or_default();
                    rule.output = if app {
                        format!("{} {}", rule.output, o)
                    } else {
                        o
                    };
                }
                "desc" => {
                    let d = desc.clone().map(|c| c.0).unwrap_or_default();
                    rule.desc = if app {
                        format!("{} {}", rule.desc, d)
                    } else {
                        d
                    };
                }
                "tags" => {
                    let t = tags.clone().unwrap_or_default();
                    if app {
                        rule.tags.extend(t);
                        rule.tags = dedup(std::mem::take(&mut rule.tags));
                    } else {
                        rule.tags = dedup(t);
                    }
                }
                "exceptions" => {
                    let new = exceptions.clone().unwrap_or_default();
                    if app {
                        for e in new {
                            match rule.exceptions.iter_mut().find(|x| x.name == e.name) {
                                Some(x) => {
                                    if e.fields.as_ref().is_ok_and(|f| !f.is_empty())
                                        || e.fields.is_err()
                                    {
                                        return Err(LoadError {
                                            file: item.file.to_string(),
                                            line: e.origin.line,
                                            message: format!(
                                                "{}: exception '{}' already exists; only its values can be appended, not its fields or comps",
                                                item.what, e.name
                                            ),
                                        });
                                    }
                                    x.values.extend(e.values);
                                }
                                None => {
                                    if e.fields.as_ref().is_ok_and(|f| f.is_empty()) {
                                        return Err(LoadError {
                                            file: item.file.to_string(),
                                            line: e.origin.line,
                                            message: format!(
                                                "{}: new exception '{}' has no fields",
                                                item.what, e.name
                                            ),
                                        });
                                    }
                                    rule.exceptions.push(e);
                                }
                            }
                        }
                    } else {
                        rule.exceptions = new;
                    }
                }
                "priority" => {
                    if let Some(p) = priority {
                        rule.priority = p;
                    }
                }
                "enabled" => {
                    if let Some(e) = enabled {
                        rule.enabled = e;
                    }
                }
                "skip-if-unknown-filter" => {
                    if let Some(s) = skip_unknown {
                        rule.skip_if_unknown_filter = s;
                    }
                }
                // capture, capture_duration, warn_evttypes: accepted, no effect here.
                _ => {}
            }
        }
        Ok(())
    }
}

fn dedup(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn plugin_versions(item: &Item) -> Result<(), LoadError> {
    item.check_keys(&["required_plugin_versions"])?;
    let Some(v) = item.get("required_plugin_versions") else {
        return Ok(());
    };
    let entries = match &v.value {
        Yaml::Seq(s) => s,
        Yaml::Null => return Ok(()),
        _ => {
            return Err(item.err(
                v.line,
                "required_plugin_versions must be a list of {name, version}",
            ));
        }
    };
    for e in entries {
        let Yaml::Map(m) = &e.value else {
            return Err(item.err(
                e.line,
                "required_plugin_versions entries must be mappings with name and version",
            ));
        };
        let sub = Item {
            file: item.file,
            text: item.text,
            line: e.line,
            entries: m,
            what: "required_plugin_versions entry".into(),
        };
        sub.check_keys(PLUGIN_KEYS)?;
        sub.required_string("name")?;
        sub.required_string("version")?;
        if let Some(alts) = sub.get("alternatives") {
            let Yaml::Seq(alts) = &alts.value else {
                return Err(item.err(
                    alts.line,
                    "'alternatives' must be a list of {name, version}",
                ));
            };
            for a in alts {
                let Yaml::Map(m) = &a.value else {
                    return Err(item.err(a.line, "'alternatives' entries must be mappings"));
                };
                let alt = Item {
                    file: item.file,
                    text: item.text,
                    line: a.line,
                    entries: m,
                    what: "plugin alternative".into(),
                };
                alt.check_keys(&["name", "version"])?;
                alt.required_string("name")?;
                alt.required_string("version")?;
            }
        }
    }
    Ok(())
}

/// Decode a rule's `exceptions:` list, checking shapes as Falco does.
fn exceptions(item: &Item, v: &Node) -> Result<Vec<ExceptionDef>, LoadError> {
    let Yaml::Seq(entries) = &v.value else {
        return Err(item.err(
            v.line,
            format!("{}: 'exceptions' must be a list", item.what),
        ));
    };
    let mut out = Vec::new();
    for e in entries {
        let Yaml::Map(m) = &e.value else {
            return Err(item.err(
                e.line,
                format!(
                    "{}: each exception must be a mapping with name, fields, comps, values",
                    item.what
                ),
            ));
        };
        let ex = Item {
            file: item.file,
            text: item.text,
            line: e.line,
            entries: m,
            what: format!("{} exception", item.what),
        };
        ex.check_keys(EXCEPTION_KEYS)?;
        let (name, _) = ex.required_string("name")?;
        let what = format!("{} exception '{name}'", item.what);
        let origin = Origin {
            file: item.file.to_string(),
            line: e.line,
        };
        // fields: a string (single-field form) or a list of strings (tuple form).
        let fields: Result<String, Vec<String>> = match ex.get("fields") {
            None => Ok(String::new()),
            Some(f) => match &f.value {
                Yaml::Str(s) => Ok(s.clone()),
                Yaml::Seq(_) => Err(scalar_list(f, item.text).map_err(|l| {
                    item.err(
                        l,
                        format!("{what}: 'fields' must be a field or a list of fields"),
                    )
                })?),
                _ => {
                    return Err(item.err(
                        f.line,
                        format!("{what}: 'fields' must be a field or a list of fields"),
                    ));
                }
            },
        };
        let comps: Option<Vec<String>> = match ex.get("comps") {
            None => None,
            Some(c) => Some(match (&c.value, &fields) {
                (Yaml::Str(s), Ok(_)) => vec![s.clone()],
                (Yaml::Seq(_), Err(_)) => scalar_list(c, item.text).map_err(|l| {
                    item.err(l, format!("{what}: 'comps' must be a list of operators"))
                })?,
                (_, Ok(_)) => {
                    return Err(item.err(
                        c.line,
                        format!("{what}: with a single field, 'comps' must be one operator"),
                    ));
                }
                (_, Err(_)) => {
                    return Err(item.err(
                        c.line,
                        format!(
                            "{what}: with a list of fields, 'comps' must be a list of operators"
                        ),
                    ));
                }
            }),
        };
        let comps_line = ex.get("comps").map_or(e.line, |c| c.line);
        let comps = match (&fields, comps) {
            (Ok(_), None) => vec!["in".to_string()],
            (Err(f), None) => vec!["=".to_string(); f.len()],
            (Err(f), Some(c)) if c.len() != f.len() => {
                return Err(item.err(
                    comps_line,
                    format!("{what}: 'fields' and 'comps' must have the same length"),
                ));
            }
            (_, Some(c)) => c,
        };
        for c in &comps {
            match Operator::from_token(c) {
                None | Some(Operator::Exists) => {
                    return Err(item.err(
                        comps_line,
                        format!("{what}: unknown comparison operator '{c}'"),
                    ));
                }
                Some(op) if fields.is_ok() && !op.takes_list() => {
                    return Err(item.err(comps_line, format!("{what}: with a single field, the operator must be in, intersects or pmatch, not '{c}'")));
                }
                _ => {}
            }
        }
        let mut values = Vec::new();
        if let Some(vals) = ex.get("values") {
            let list = match &vals.value {
                Yaml::Seq(s) => s.as_slice(),
                Yaml::Null => &[],
                _ => return Err(item.err(vals.line, format!("{what}: 'values' must be a list"))),
            };
            for val in list {
                match &fields {
                    Ok(_) => {
                        let s = val.scalar_text(item.text).ok_or_else(|| {
                            item.err(
                                val.line,
                                format!("{what}: with a single field, each value must be a string"),
                            )
                        })?;
                        values.push(vec![ExcItem::Scalar(s)]);
                    }
                    Err(f) => {
                        let Yaml::Seq(tuple) = &val.value else {
                            return Err(item.err(
                                val.line,
                                format!(
                                    "{what}: each value must be a list with one entry per field"
                                ),
                            ));
                        };
                        if tuple.len() != f.len() {
                            return Err(item.err(
                                val.line,
                                format!(
                                    "{what}: a value has {} entries but there are {} fields",
                                    tuple.len(),
                                    f.len()
                                ),
                            ));
                        }
                        let mut t = Vec::new();
                        for x in tuple {
                            t.push(match &x.value {
                                Yaml::Seq(_) => {
                                    ExcItem::List(scalar_list(x, item.text).map_err(|l| {
                                        item.err(
                                            l,
                                            format!("{what}: value lists must hold strings"),
                                        )
                                    })?)
                                }
                                _ => {
                                    ExcItem::Scalar(x.scalar_text(item.text).ok_or_else(|| {
                                        item.err(
                                            x.line,
                                            format!("{what}: values must be strings or lists"),
                                        )
                                    })?)
                                }
                            });
                        }
                        values.push(t);
                    }
                }
            }
        }
        out.push(ExceptionDef {
            name,
            fields,
            comps,
            values,
            origin,
        });
    }
    Ok(out)
}

/// The condition text Falco builds for a rule's exceptions: empty when there are none
/// with values, else `(e1) or (e2) …` to be appended as `and not (…)`.
pub(crate) fn exceptions_condition(excs: &[ExceptionDef]) -> String {
    let mut out = String::new();
    for e in excs {
        let part = match &e.fields {
            Ok(field) => {
                let comp = e.comps.first().map_or("in", String::as_str);
                let vals: Vec<String> = e
                    .values
                    .iter()
                    .filter_map(|t| match t.first() {
                        Some(ExcItem::Scalar(s)) => Some(quote_value(s)),
                        _ => None,
                    })
                    .collect();
                if vals.is_empty() {
                    continue;
                }
                format!("({field} {comp} ({}))", vals.join(", "))
            }
            Err(fields) => {
                let mut tuples = Vec::new();
                for t in &e.values {
                    let mut checks = Vec::new();
                    for ((field, comp), item) in fields.iter().zip(&e.comps).zip(t) {
                        let list_op = Operator::from_token(comp).is_some_and(Operator::takes_list);
                        let v = match item {
                            ExcItem::List(items) => {
                                let q: Vec<String> = items.iter().map(|s| quote_value(s)).collect();
                                format!("({})", q.join(", "))
                            }
                            ExcItem::Scalar(s) if list_op => {
                                if s.starts_with('(') {
                                    s.clone()
                                } else {
                                    format!("({})", quote_value(s))
                                }
                            }
                            ExcItem::Scalar(s) => quote_value(s),
                        };
                        checks.push(format!("{field} {comp} {v}"));
                    }
                    tuples.push(format!("({})", checks.join(" and ")));
                }
                if tuples.is_empty() {
                    continue;
                }
                format!("({})", tuples.join(" or "))
            }
        };
        if !out.is_empty() {
            out.push_str(" or ");
        }
        out.push_str(&part);
    }
    out
}
