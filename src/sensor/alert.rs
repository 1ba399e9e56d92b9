//! The alert the sensor emits, in Falco's exact JSON alert format, so that anything that
//! reads Falco's `json_output` (falcosidekick, log pipelines, `jq` scripts) reads ours, and
//! `kubectl secmon alerts` reads Falco's.
//!
//! One alert is one JSON object on one line:
//!
//! ```json
//! {"hostname":"node-1","output":"10:00:00.123456789: Warning Sensitive file opened …",
//!  "output_fields":{"evt.time":1777629600123456789,"fd.name":"/etc/shadow",…},
//!  "priority":"Warning","rule":"Read sensitive file untrusted","source":"syscall",
//!  "tags":["T1555","container","filesystem"],"time":"2026-05-01T10:00:00.123456789Z"}
//! ```
//!
//! - `time`: the event's timestamp, ISO-8601 UTC with nanoseconds and `Z`.
//! - `output`: `"<HH:MM:SS.nnnnnnnnn>: <Priority> <text>"`, Falco's default (non-ISO) prefix,
//!   in UTC (Falco uses the host's local zone; a node sensor's zone is nearly always UTC).
//! - `output_fields`: every `%field` of the rule's output (`null` when the event lacks it),
//!   plus `evt.time` (ns integer). Like Falco's `append_output.extra_fields`, the sensor adds
//!   `container.id`, `k8s.ns.name` and `k8s.pod.name` when the event is in a container and
//!   the rule's output does not already name them, so that alerts can always be filtered
//!   by workload. `kubectl-secmon sensor --append-output-field FIELD` adds any other field
//!   the same way ([`Alert::append_fields`]).
//! - `tags`: the rule's tags, sorted and de-duplicated (Falco keeps them in an ordered set).
//!
//! Also here: Falco's internal drop alert (`Falco internal: syscall event drop`) and the
//! token bucket that rate-limits it, and the civil-time conversions the formats need
//! (no date crate: the arithmetic is small and exact).

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::bpf::abi::CATEGORIES;
use crate::rules::{Event, ExtraFields, Priority, RuleId, Ruleset};

/// `source` of alerts raised by syscall rules.
pub const SOURCE_SYSCALL: &str = "syscall";
/// `source` of the sensor's own messages (drop alerts), as Falco spells it.
pub const SOURCE_INTERNAL: &str = "internal";
/// The rule name of the drop alert, as Falco spells it.
pub const DROP_RULE: &str = "Falco internal: syscall event drop";

/// One alert, Falco's JSON alert format. Keys serialize in Falco's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub output: String,
    #[serde(default, deserialize_with = "null_as_empty_map")]
    pub output_fields: Map<String, Value>,
    #[serde(deserialize_with = "priority_from_name")]
    pub priority: Priority,
    pub rule: String,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default, deserialize_with = "null_as_empty_vec")]
    pub tags: Vec<String>,
    pub time: String,
    /// Keys other writers add (sidekick's `uuid`, Falco's optional `message`), kept so that
    /// an alert read and written again loses nothing. Empty for the sensor's own alerts.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

fn default_source() -> String {
    SOURCE_SYSCALL.to_string()
}

fn priority_from_name<'de, D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
    let s = String::deserialize(d)?;
    Priority::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown priority {s:?}")))
}

fn null_as_empty_map<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_empty_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Context fields added to `output_fields` when the rule's output does not name them.
const CONTEXT_FIELDS: [&str; 4] = ["container.id", "k8s.ns.name", "k8s.pod.name", "k8s.pod.uid"];

impl Alert {
    /// The alert for rule `id` matching `ev` on host `hostname`. `None` when the rule is
    /// unknown or was not compiled (it cannot have matched).
    pub fn from_match(ruleset: &Ruleset, id: RuleId, ev: &Event, hostname: &str) -> Option<Alert> {
        let info = ruleset.rule(id)?;
        let rendered = ruleset.render_output(id, ev)?;
        let mut fields = Map::with_capacity(rendered.output_fields.len() + 4);
        fields.insert("evt.time".to_string(), Value::from(ev.ts));
        fields.extend(rendered.output_fields);
        if let Some(c) = &ev.container {
            let values = [
                Some(c.id.as_str()),
                ev.k8s.as_ref().map(|k| k.ns.as_str()),
                ev.k8s.as_ref().map(|k| k.pod.as_str()),
                ev.k8s.as_ref().map(|k| k.pod_uid.as_str()),
            ];
            for (key, value) in CONTEXT_FIELDS.iter().zip(values) {
                if let Some(v) = value.filter(|v| !v.is_empty())
                    && !fields.contains_key(*key)
                {
                    fields.insert(key.to_string(), Value::from(v));
                }
            }
        }
        let tags: BTreeSet<&String> = info.tags.iter().collect();
        Some(Alert {
            hostname: hostname.to_string(),
            output: format!("{}: {} {}", clock_time(ev.ts), info.priority, rendered.text),
            output_fields: fields,
            priority: info.priority,
            rule: info.name.clone(),
            source: if info.source.is_empty() {
                default_source()
            } else {
                info.source.clone()
            },
            tags: tags.into_iter().cloned().collect(),
            time: iso8601(ev.ts),
            extra: Map::new(),
        })
    }

    /// Add `extra`'s fields to `output_fields` (Falco's `append_output` `extra_fields`); a
    /// field the rule's output already names keeps its value.
    pub fn append_fields(&mut self, extra: &ExtraFields, ev: &Event) {
        for (k, v) in extra.render(ev) {
            self.output_fields.entry(k).or_insert(v);
        }
    }

    /// Falco's internal drop alert: `n_drops` events were lost in the last interval.
    pub fn syscall_event_drop(time_ns: u64, hostname: &str, counts: &DropCounts) -> Alert {
        let text = format!(
            "{DROP_RULE}. {} system calls dropped in last second.",
            counts.n_drops
        );
        let mut fields = Map::new();
        fields.insert("n_evts".into(), Value::from(counts.n_evts));
        fields.insert("n_drops".into(), Value::from(counts.n_drops));
        fields.insert(
            "n_drops_buffer_total".into(),
            Value::from(counts.buffer_total()),
        );
        for (name, n) in CATEGORIES.iter().zip(counts.n_drops_buffer) {
            fields.insert(format!("n_drops_buffer_{name}"), Value::from(n));
        }
        fields.insert(
            "ebpf_enabled".into(),
            Value::from(u8::from(counts.ebpf_enabled)),
        );
        Alert {
            hostname: hostname.to_string(),
            output: format!("{}: {} {text}", clock_time(time_ns), Priority::Debug),
            output_fields: fields,
            priority: Priority::Debug,
            rule: DROP_RULE.to_string(),
            source: SOURCE_INTERNAL.to_string(),
            tags: Vec::new(),
            time: iso8601(time_ns),
            extra: Map::new(),
        }
    }

    /// The alert as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Strings, numbers and maps with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse one line: ours or Falco's own (`json_output: true`), or a falcosidekick payload.
    /// `rule`, `priority` and `time` are required; `time` must be ISO-8601; unknown keys are
    /// kept in [`Alert::extra`].
    pub fn from_json(line: &str) -> Result<Alert, String> {
        let alert: Alert = serde_json::from_str(line.trim()).map_err(|e| e.to_string())?;
        if parse_iso8601(&alert.time).is_none() {
            return Err(format!(
                "time {:?} is not an ISO-8601 UTC timestamp",
                alert.time
            ));
        }
        Ok(alert)
    }

    /// The alert's time in ns since the Unix epoch (from `time`).
    pub fn time_ns(&self) -> Option<u64> {
        parse_iso8601(&self.time)
    }

    /// A string-valued output field (`None` when absent, null or not a string).
    pub fn field_str(&self, key: &str) -> Option<&str> {
        self.output_fields.get(key).and_then(Value::as_str)
    }

    /// The namespace of the pod the alert is about (`k8s.ns.name`), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.field_str("k8s.ns.name").filter(|s| !s.is_empty())
    }
}

/// Kernel counters over one interval, for the drop alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts {
    /// Events seen (delivered plus dropped).
    pub n_evts: u64,
    /// Events lost, for any reason.
    pub n_drops: u64,
    /// Events lost because the ring buffer was full, by category ([`CATEGORIES`] order).
    pub n_drops_buffer: [u64; CATEGORIES.len()],
    pub ebpf_enabled: bool,
}

impl DropCounts {
    pub fn buffer_total(&self) -> u64 {
        self.n_drops_buffer.iter().sum()
    }
}

/// Falco's token bucket: `rate` tokens per second, at most `max_tokens`, starting full.
/// Pure: the caller passes the time.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    max_tokens: f64,
    tokens: f64,
    last_ns: Option<u64>,
}

impl TokenBucket {
    pub fn new(rate_per_sec: f64, max_tokens: f64) -> TokenBucket {
        let max_tokens = max_tokens.max(1.0);
        TokenBucket {
            rate: rate_per_sec.max(0.0),
            max_tokens,
            tokens: max_tokens,
            last_ns: None,
        }
    }

    /// Take a token at time `now_ns` if there is one.
    pub fn claim(&mut self, now_ns: u64) -> bool {
        if let Some(last) = self.last_ns {
            let elapsed = now_ns.saturating_sub(last) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.max_tokens);
        }
        if self.last_ns.is_none_or(|last| now_ns > last) {
            self.last_ns = Some(now_ns);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Falco's `syscall_event_drops` decision: alert when the share of dropped events over an
/// interval exceeds `threshold` (0.1 = 10 %; 0 = any drop), at most as often as the bucket
/// allows (Falco's default: one message per 30 s, burst 1).
#[derive(Debug, Clone, PartialEq)]
pub struct DropAlerts {
    pub threshold: f64,
    bucket: TokenBucket,
}

impl Default for DropAlerts {
    fn default() -> Self {
        DropAlerts::new(0.1, 1.0 / 30.0, 1.0)
    }
}

impl DropAlerts {
    pub fn new(threshold: f64, rate_per_sec: f64, max_burst: f64) -> DropAlerts {
        DropAlerts {
            threshold,
            bucket: TokenBucket::new(rate_per_sec, max_burst),
        }
    }

    /// Whether the interval ending at `now_ns` with these counts calls for a drop alert.
    pub fn should_alert(&mut self, now_ns: u64, delta: &DropCounts) -> bool {
        if delta.n_drops == 0 {
            return false;
        }
        let mut ratio = delta.n_drops as f64;
        if delta.n_evts > 0 {
            ratio /= delta.n_evts as f64;
        }
        ratio > self.threshold && self.bucket.claim(now_ns)
    }
}

const NS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// The civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01, in the
/// proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-05-01T10:00:00.123456789Z` for ns since the Unix epoch.
pub fn iso8601(ns: u64) -> String {
    let secs = ns / NS_PER_SEC;
    let (y, mo, d) = civil_from_days((secs / SECS_PER_DAY) as i64);
    format!("{y:04}-{mo:02}-{d:02}T{}Z", clock_time(ns))
}

/// `10:00:00.123456789` (UTC) for ns since the Unix epoch: Falco's output prefix.
pub fn clock_time(ns: u64) -> String {
    let secs = ns / NS_PER_SEC;
    let sod = secs % SECS_PER_DAY;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ns % NS_PER_SEC
    )
}

/// Parse an ISO-8601 / RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; a
/// space for `T` and a missing zone, read as UTC, are accepted) to ns since the Unix epoch.
/// `None` for anything else or a time before 1970.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ns: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b.get(i + 3) == Some(&b':') => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let off = h * 3600 + m * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * SECS_PER_DAY as i64 + hour * 3600 + min * 60 + sec - offset_secs;
    let ns = i128::from(secs) * i128::from(NS_PER_SEC) + i128::from(frac_ns);
    u64::try_from(ns).ok()
}

/// Which alerts to show (`kubectl secmon alerts` filters). Every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    /// Alerts at or after this time (ns since the epoch).
    pub since_ns: Option<u64>,
    /// This priority or more severe.
    pub min_priority: Option<Priority>,
    /// Rule-name globs (`*`, `?`, case-insensitive); any may match. Empty: every rule.
    pub rules: Vec<String>,
    /// `output_fields["k8s.ns.name"]` equals this.
    pub namespace: Option<String>,
    /// `output_fields["container.id"]` starts with this.
    pub container: Option<String>,
}

impl AlertFilter {
    pub fn matches(&self, a: &Alert) -> bool {
        self.since_ns
            .is_none_or(|since| a.time_ns().is_some_and(|t| t >= since))
            && self.min_priority.is_none_or(|p| a.priority <= p)
            && (self.rules.is_empty() || self.rules.iter().any(|g| glob_match(g, &a.rule)))
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| a.namespace() == Some(ns))
            && self.container.as_deref().is_none_or(|prefix| {
                a.field_str("container.id")
                    .is_some_and(|id| id.starts_with(prefix))
            })
    }
}

/// Shell-style glob: `*` any run of characters, `?` one character; case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for the end of.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One line read back from an alerts stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Alert(Box<Alert>),
    /// The sensor's notice that this reader missed `n` alerts (see `http::skip_notice`).
    Skipped(u64),
}

/// Splits bytes into lines (across reads: a line may arrive in pieces) and parses each as
/// an alert. Blank lines are ignored; lines that are not alerts are counted, and the first
/// one is remembered with its 1-based line number.
#[derive(Debug, Default)]
pub struct LineDecoder {
    partial: Vec<u8>,
    /// Lines seen so far.
    pub lines: usize,
    pub parsed: usize,
    pub malformed: usize,
    /// The first malformed line: its number and why.
    pub first_error: Option<(usize, String)>,
}

impl LineDecoder {
    /// Feed bytes; `emit` gets each complete line's result.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(Decoded)) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(head, &mut emit);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line, &mut emit);
            }
        }
        self.partial.extend_from_slice(rest);
    }

    /// The end of the stream: a last line without a newline still counts.
    pub fn finish(&mut self, mut emit: impl FnMut(Decoded)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut emit);
        }
    }

    fn line(&mut self, raw: &[u8], emit: &mut impl FnMut(Decoded)) {
        self.lines += 1;
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t.trim(),
            Err(_) => {
                self.bad("not UTF-8 text".into());
                return;
            }
        };
        if text.is_empty() {
            return;
        }
        match Alert::from_json(text) {
            Ok(a) => {
                self.parsed += 1;
                emit(Decoded::Alert(Box::new(a)));
            }
            Err(e) => match super::http::parse_skip_notice(text) {
                Some(n) => emit(Decoded::Skipped(n)),
                None => self.bad(e),
            },
        }
    }

    fn bad(&mut self, why: String) {
        self.malformed += 1;
        if self.first_error.is_none() {
            self.first_error = Some((self.lines, why));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{HostResolver, LoadOptions, Matches, load_files};

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_574), (2026, 5, 1));
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn timestamps_format_and_parse() {
        let ns = 1_777_629_600_123_456_789;
        assert_eq!(iso8601(ns), "2026-05-01T10:00:00.123456789Z");
        assert_eq!(clock_time(ns), "10:00:00.123456789");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(parse_iso8601("2026-05-01T10:00:00.123456789Z"), Some(ns));
        assert_eq!(
            parse_iso8601("2026-05-01T12:00:00.123456789+02:00"),
            Some(ns)
        );
        assert_eq!(
            parse_iso8601("2026-05-01T10:00:00Z"),
            Some(1_777_629_600 * NS_PER_SEC)
        );
        assert_eq!(
            parse_iso8601("2026-05-01 10:00:00.5"),
            Some(1_777_629_600_500_000_000)
        );
        for bad in [
            "",
            "2026-05-01",
            "2026-13-01T10:00:00Z",
            "2026-05-01T10:00:00.Z",
            "2026-05-01T10:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "2026-05-01T1:00:00Z",
            "２０２６-05-01T10:00:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        for ns in [0, 1, 951_782_400_000_000_007, u64::MAX / 2] {
            assert_eq!(parse_iso8601(&iso8601(ns)), Some(ns));
        }
    }

    const RULES: &str = r#"
- rule: Read shadow
  desc: test
  condition: evt.type = openat and fd.name = /etc/shadow
  output: Shadow read (file=%fd.name proc=%proc.name user=%user.name ns=%k8s.ns.name)
  priority: WARNING
  tags: [filesystem, T1555, container, filesystem]
"#;

    fn event() -> Event {
        serde_json::from_str(
            r#"{"ts": 1777629600123456789, "num": 1, "type": "openat",
                "proc": {"pid": 7, "name": "cat", "exepath": "/usr/bin/cat", "args": ["/etc/shadow"]},
                "fd": {"num": 3, "type": "file", "name": "/etc/shadow"},
                "user": {"uid": 0, "name": "root"},
                "container": {"id": "3ad7b26ded6d", "name": "web", "image": "nginx"},
                "k8s": {"ns": "default", "pod": "web-0"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn alert_from_a_match_is_falcos_format() {
        let opts = LoadOptions {
            resolver: HostResolver::Disabled,
            ..Default::default()
        };
        let (rs, _) = load_files(&[("t.yaml", RULES)], &opts).unwrap();
        let ev = event();
        let mut m = Matches::new();
        assert_eq!(rs.matches(&ev, &mut m), 1);
        let a = Alert::from_match(&rs, m.ids()[0], &ev, "node-1").unwrap();
        let line = a.to_json_line();
        assert_eq!(
            line,
            concat!(
                r#"{"hostname":"node-1","output":"10:00:00.123456789: Warning Shadow read (file=/etc/shadow proc=cat user=root ns=default)","#,
                r#""output_fields":{"evt.time":1777629600123456789,"fd.name":"/etc/shadow","proc.name":"cat","user.name":"root","k8s.ns.name":"default","container.id":"3ad7b26ded6d","k8s.pod.name":"web-0"},"#,
                r#""priority":"Warning","rule":"Read shadow","source":"syscall","tags":["T1555","container","filesystem"],"time":"2026-05-01T10:00:00.123456789Z"}"#
            )
        );
        let back = Alert::from_json(&line).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.namespace(), Some("default"));
        assert_eq!(back.time_ns(), Some(ev.ts));
        // A host event: no context fields are invented.
        let mut host = ev.clone();
        host.container = None;
        host.k8s = None;
        let a = Alert::from_match(&rs, m.ids()[0], &host, "node-1").unwrap();
        assert!(!a.output_fields.contains_key("container.id"));
        // Appended fields: added when absent, never overriding the rule's own.
        let mut b = a.clone();
        let extra =
            ExtraFields::compile(&["proc.pid".into(), "proc.name".into(), "proc.env[X]".into()])
                .unwrap();
        b.append_fields(&extra, &host);
        assert_eq!(b.output_fields["proc.pid"], 7);
        assert_eq!(b.output_fields["proc.name"], "cat");
        assert!(b.output_fields["proc.env[X]"].is_null());
        assert_eq!(b.output, a.output, "the text is unchanged");
        assert_eq!(a.output_fields["k8s.ns.name"], Value::Null);
        assert_eq!(a.namespace(), None);
    }

    #[test]
    fn falco_and_sidekick_lines_parse() {
        let falco = r#"{"hostname":"node-1","output":"10:00:00.123456789: Warning Sensitive file opened","output_fields":{"evt.time":1777629600123456789,"fd.name":"/etc/shadow","k8s.ns.name":null},"priority":"Warning","rule":"Read sensitive file untrusted","source":"syscall","tags":["T1555","container"],"time":"2026-05-01T10:00:00.123456789Z"}"#;
        let a = Alert::from_json(falco).unwrap();
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(a.namespace(), None);
        assert!(a.extra.is_empty());
        let sidekick = r#"{"uuid":"5f2b","output":"x","priority":"Critical","rule":"R","time":"2026-05-01T10:00:00Z","output_fields":null,"source":"syscall","tags":null,"hostname":"h"}"#;
        let a = Alert::from_json(sidekick).unwrap();
        assert_eq!(a.priority, Priority::Critical);
        assert_eq!(a.extra["uuid"], "5f2b");
        assert!(a.to_json_line().ends_with(r#""uuid":"5f2b"}"#));
        for bad in [
            "",
            "{}",
            "[1]",
            r#"{"rule":"R","priority":"Loud","time":"2026-05-01T10:00:00Z"}"#,
            r#"{"rule":"R","priority":"Debug","time":"yesterday"}"#,
            r#"{"rule":"R","priority":"Debug"}"#,
        ] {
            assert!(Alert::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drop_alert_fields() {
        let counts = DropCounts {
            n_evts: 1000,
            n_drops: 250,
            n_drops_buffer: [100, 50, 50, 0, 0],
            ebpf_enabled: true,
        };
        let a = Alert::syscall_event_drop(1_777_629_600_000_000_000, "node-1", &counts);
        assert_eq!(a.rule, "Falco internal: syscall event drop");
        assert_eq!(a.priority, Priority::Debug);
        assert_eq!(a.source, "internal");
        assert_eq!(
            a.output,
            "10:00:00.000000000: Debug Falco internal: syscall event drop. 250 system calls dropped in last second."
        );
        let f = &a.output_fields;
        assert_eq!(f["n_evts"], 1000);
        assert_eq!(f["n_drops"], 250);
        assert_eq!(f["n_drops_buffer_total"], 200);
        assert_eq!(f["n_drops_buffer_process"], 100);
        assert_eq!(f["n_drops_buffer_other"], 0);
        assert_eq!(f["ebpf_enabled"], 1);
        assert_eq!(Alert::from_json(&a.to_json_line()).unwrap(), a);
    }

    #[test]
    fn token_bucket_allows_one_per_interval() {
        let s = NS_PER_SEC;
        let mut b = TokenBucket::new(1.0 / 30.0, 1.0);
        assert!(b.claim(100 * s));
        assert!(!b.claim(101 * s));
        assert!(!b.claim(129 * s));
        assert!(b.claim(130 * s));
        assert!(!b.claim(130 * s));
        // Time going backwards never mints tokens.
        assert!(!b.claim(10 * s));
        let mut burst = TokenBucket::new(1.0, 3.0);
        assert!(burst.claim(0) && burst.claim(0) && burst.claim(0));
        assert!(!burst.claim(0));
        assert!(burst.claim(s));
    }

    #[test]
    fn drop_alerts_follow_the_threshold_and_the_bucket() {
        let s = NS_PER_SEC;
        let mut d = DropAlerts::default();
        let mut c = DropCounts {
            n_evts: 1000,
            n_drops: 100,
            ..Default::default()
        };
        assert!(!d.should_alert(s, &c), "10 % is not above 10 %");
        c.n_drops = 101;
        assert!(d.should_alert(2 * s, &c));
        assert!(!d.should_alert(3 * s, &c), "rate-limited");
        assert!(d.should_alert(33 * s, &c));
        let mut any = DropAlerts::new(0.0, 1.0, 1.0);
        assert!(!any.should_alert(s, &DropCounts::default()));
        assert!(any.should_alert(
            s,
            &DropCounts {
                n_drops: 1,
                ..Default::default()
            }
        ));
    }
    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*shell*", "Terminal shell in container"));
        assert!(glob_match("terminal*", "Terminal shell in container"));
        assert!(glob_match("?ead *", "Read sensitive file"));
        assert!(glob_match("a*b*c", "aXXbYYbZZc"));
        assert!(glob_match("**x", "x"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(!glob_match("shell", "Terminal shell"));
        assert!(!glob_match("?", ""));
        assert!(glob_match("Ünïcode?", "ünÏcodeé"));
    }

    #[test]
    fn filters() {
        let mut a = Alert::from_json(
            r#"{"rule":"Terminal shell in container","priority":"Notice","time":"2026-05-01T10:00:00Z",
                "output_fields":{"k8s.ns.name":"prod","container.id":"3ad7b26ded6d"}}"#,
        )
        .unwrap();
        let t = a.time_ns().unwrap();
        let yes = |f: AlertFilter, a: &Alert| f.matches(a);
        assert!(yes(AlertFilter::default(), &a));
        let f = |g: fn(&mut AlertFilter)| {
            let mut f = AlertFilter::default();
            g(&mut f);
            f
        };
        assert!(yes(f(|f| f.min_priority = Some(Priority::Notice)), &a));
        assert!(yes(f(|f| f.min_priority = Some(Priority::Debug)), &a));
        assert!(!yes(f(|f| f.min_priority = Some(Priority::Warning)), &a));
        assert!(yes(f(|f| f.rules = vec!["x".into(), "*SHELL*".into()]), &a));
        assert!(!yes(f(|f| f.rules = vec!["x".into()]), &a));
        assert!(yes(f(|f| f.namespace = Some("prod".into())), &a));
        assert!(!yes(f(|f| f.namespace = Some("dev".into())), &a));
        assert!(yes(f(|f| f.container = Some("3ad7".into())), &a));
        assert!(!yes(f(|f| f.container = Some("ad7".into())), &a));
        let mut since = AlertFilter {
            since_ns: Some(t),
            ..Default::default()
        };
        assert!(since.matches(&a));
        since.since_ns = Some(t + 1);
        assert!(!since.matches(&a));
        a.output_fields.clear();
        assert!(!yes(f(|f| f.namespace = Some("prod".into())), &a));
        assert!(!yes(f(|f| f.container = Some("".into())), &a));
    }

    #[test]
    fn line_decoder_handles_pieces_blank_and_bad_lines() {
        let good = r#"{"rule":"R","priority":"Debug","time":"2026-05-01T10:00:00Z"}"#;
        let mut text = format!(
            "{good}\n\n{{broken\n{}\r\n{good}\n",
            super::super::http::skip_notice(3)
        )
        .into_bytes();
        text.extend_from_slice(b"\xff\n");
        text.extend_from_slice(good.as_bytes());
        let mut d = LineDecoder::default();
        let mut out = Vec::new();
        // In 7-byte pieces, as a network stream might deliver it.
        for piece in text.chunks(7) {
            d.push(piece, |x| out.push(x));
        }
        assert_eq!(out.len(), 3);
        d.finish(|x| out.push(x));
        assert_eq!(out.len(), 4);
        assert_eq!(out[1], Decoded::Skipped(3));
        assert!(matches!(&out[3], Decoded::Alert(a) if a.rule == "R"));
        assert_eq!((d.lines, d.parsed, d.malformed), (7, 3, 2));
        assert_eq!(d.first_error.as_ref().unwrap().0, 3);
    }
}
