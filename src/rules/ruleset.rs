//! A compiled ruleset and matching: per-event-type buckets of compiled rules, first-match
//! or all-matches, and output rendering for the rules that fired.

use super::compile::{Node, TypeMask, type_bit};
use super::event::{EVENT_TYPE_COUNT, Event, EventType};
use super::fields::Scratch;
use super::output::Template;
use super::{RuleInfo, RuleMatching, RuleStatus};

/// A rule's position in [`Ruleset::rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub usize);

pub(crate) struct CompiledRule {
    /// Position in the infos.
    pub index: usize,
    pub node: Node,
    pub mask: TypeMask,
    pub template: Template,
}

/// Loaded, compiled rules, ready to match events.
pub struct Ruleset {
    infos: Vec<RuleInfo>,
    compiled: Vec<CompiledRule>,
    /// For each event type, the compiled rules (indices into `compiled`) that can match it,
    /// in load order. Rules without an evt.type restriction are in every bucket.
    by_type: Vec<Box<[u32]>>,
    matching: RuleMatching,
    lists: Vec<String>,
    macros: Vec<String>,
    memo_count: usize,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("rules", &self.infos.len())
            .field("compiled", &self.compiled.len())
            .field("matching", &self.matching)
            .finish()
    }
}

/// The output of [`Ruleset::matches`], reused from event to event so that matching does not
/// allocate: the matched rule ids and the per-event field buffers.
#[derive(Debug, Default)]
pub struct Matches {
    ids: Vec<RuleId>,
    scratch: Scratch,
}

impl Matches {
    pub fn new() -> Matches {
        Matches::default()
    }

    /// The rules that matched the last event, in load order.
    pub fn ids(&self) -> &[RuleId] {
        &self.ids
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// A rule's output for one event: Falco's message text and its `output_fields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub output_fields: serde_json::Map<String, serde_json::Value>,
}

impl Ruleset {
    pub(crate) fn new(
        infos: Vec<RuleInfo>,
        compiled: Vec<CompiledRule>,
        matching: RuleMatching,
        lists: Vec<String>,
        macros: Vec<String>,
        memo_count: usize,
    ) -> Ruleset {
        let mut r = Ruleset {
            infos,
            compiled,
            by_type: Vec::new(),
            matching,
            lists,
            macros,
            memo_count,
        };
        r.reindex();
        r
    }

    fn reindex(&mut self) {
        self.by_type = EventType::ALL
            .iter()
            .map(|t| {
                self.compiled
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        self.infos.get(c.index).is_some_and(RuleInfo::is_active)
                            && c.mask & type_bit(*t) != 0
                    })
                    .map(|(i, _)| i as u32)
                    .collect()
            })
            .collect();
        debug_assert_eq!(self.by_type.len(), EVENT_TYPE_COUNT);
    }

    /// Every rule the files define, in load order, with its status.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.infos
    }

    /// The names of every list the files define, in definition order.
    pub fn list_names(&self) -> &[String] {
        &self.lists
    }

    /// The names of every macro the files define, in definition order.
    pub fn macro_names(&self) -> &[String] {
        &self.macros
    }

    /// One rule's metadata.
    pub fn rule(&self, id: RuleId) -> Option<&RuleInfo> {
        self.infos.get(id.0)
    }

    /// The rule with this name.
    pub fn find(&self, name: &str) -> Option<RuleId> {
        self.infos.iter().position(|r| r.name == name).map(RuleId)
    }

    /// The event types at least one active rule can match: what the sensor must capture.
    pub fn event_types(&self) -> Vec<EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(|t| self.by_type.get(*t as usize).is_some_and(|b| !b.is_empty()))
            .collect()
    }

    /// How many rules can fire.
    pub fn active_count(&self) -> usize {
        self.infos.iter().filter(|r| r.is_active()).count()
    }

    pub fn rule_matching(&self) -> RuleMatching {
        self.matching
    }

    pub fn set_rule_matching(&mut self, m: RuleMatching) {
        self.matching = m;
    }

    /// Enable or disable a compiled rule (as Falco's `rules: - enable/disable` settings do).
    /// Returns false when the rule cannot change (unknown id, or not compiled).
    pub fn set_enabled(&mut self, id: RuleId, enabled: bool) -> bool {
        let Some(info) = self.infos.get_mut(id.0) else {
            return false;
        };
        match info.status {
            RuleStatus::Active | RuleStatus::Disabled => {
                info.enabled = enabled;
                info.status = if enabled {
                    RuleStatus::Active
                } else {
                    RuleStatus::Disabled
                };
                self.reindex();
                true
            }
            _ => false,
        }
    }

    /// Match one event. `out` holds the matched rule ids afterwards (the first one only under
    /// `rule_matching: first`); returns how many. Does not allocate once `out` has grown.
    pub fn matches(&self, ev: &Event, out: &mut Matches) -> usize {
        out.ids.clear();
        out.scratch.reset(self.memo_count);
        let Some(bucket) = self.by_type.get(ev.kind as usize) else {
            return 0;
        };
        for &ci in bucket.iter() {
            let Some(rule) = self.compiled.get(ci as usize) else {
                continue;
            };
            if rule.node.eval(ev, &mut out.scratch) {
                out.ids.push(RuleId(rule.index));
                if self.matching == RuleMatching::First {
                    break;
                }
            }
        }
        out.ids.len()
    }

    /// The rule's output for this event. `None` for a rule that was not compiled.
    pub fn render_output(&self, id: RuleId, ev: &Event) -> Option<Rendered> {
        let rule = self.compiled.iter().find(|c| c.index == id.0)?;
        let mut scratch = Scratch::default();
        scratch.reset(0);
        let (text, output_fields) = rule.template.render(ev, &mut scratch);
        Some(Rendered {
            text,
            output_fields,
        })
    }
}
