//! `kubectl secmon psa check|fix`: Pod Security Standards on manifests, as the API
//! server's PodSecurity admission plugin would judge them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::commands::{emit, exit};
use crate::manifest::{self, InputError, Limits, Object, SourceFile};
use crate::psa::namespace::{self, Defaults};
use crate::psa::workload::{self, WorkloadKind};
use crate::psa::{self, Level, Policy, Version};
use crate::report::psa::{InputProblem, PsaReport, PsaResult, Skipped, Subject};
use crate::report::{self, Format, RenderOptions};
use crate::selector::Selector;

mod live;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_sort_by_file_line_and_column() {
        let mut p: Vec<InputProblem> = [
            "b.yaml:3",
            "a.yaml:10:2",
            "a.yaml:9",
            "a.yaml:10:1",
            "c.yaml",
        ]
        .iter()
        .map(|l| InputProblem {
            location: l.to_string(),
            message: String::new(),
        })
        .collect();
        sort_problems(&mut p);
        let order: Vec<&str> = p.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(
            order,
            [
                "a.yaml:9",
                "a.yaml:10:1",
                "a.yaml:10:2",
                "b.yaml:3",
                "c.yaml"
            ]
        );
    }
}

#[derive(Debug, Args)]
pub struct PsaArgs {
    #[command(subcommand)]
    pub command: PsaCommand,
}

#[derive(Debug, Subcommand)]
pub enum PsaCommand {
    /// Check manifests (-f) against a Pod Security level
    Check(CheckArgs),
    /// Print manifests patched to satisfy the level where a safe patch exists
    Fix(FixArgs),
    /// Per namespace of a live cluster: the strictest level its workloads satisfy, what
    /// breaks at the next one, and the kubectl label command to tighten it
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Policy version to plan for: latest or v1.N
    #[arg(long = "version", value_name = "VERSION", default_value = "latest", value_parser = parse_version)]
    pub policy_version: Version,
}

/// `--level`: a Pod Security level, or the level of the object's Namespace in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Privileged,
    Baseline,
    Restricted,
    /// The pod-security.kubernetes.io/enforce labels of a Namespace in the same input
    FromNamespace,
}

#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Manifest files or directories (recursive: .yaml, .yml, .json); - for stdin
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filename: Vec<String>,
    /// More manifest paths
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Paths in reports are relative to this directory
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub scan_root: PathBuf,
    /// Refuse input files larger than this many MiB
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub max_file_size: u64,
}

impl InputArgs {
    fn paths(&self) -> Vec<String> {
        self.filename
            .iter()
            .chain(self.paths.iter())
            .cloned()
            .collect()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_file_bytes: self.max_file_size.saturating_mul(1024 * 1024),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Pod Security level to check against [default: restricted for manifests; a live
    /// cluster is checked at each namespace's own labels]
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// Policy version: latest or v1.N
    #[arg(long = "version", value_name = "VERSION", default_value = "latest", value_parser = parse_version)]
    pub policy_version: Version,
    /// With --level from-namespace: the level for objects whose Namespace is unlabelled or absent
    #[arg(long, value_enum, default_value = "privileged")]
    pub default_level: DefaultLevel,
    /// With --level from-namespace: the version for objects whose Namespace has no version label
    #[arg(long, value_name = "VERSION", default_value = "latest", value_parser = parse_version)]
    pub default_version: Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultLevel {
    Privileged,
    Baseline,
    Restricted,
}

impl From<DefaultLevel> for Level {
    fn from(d: DefaultLevel) -> Level {
        match d {
            DefaultLevel::Privileged => Level::Privileged,
            DefaultLevel::Baseline => Level::Baseline,
            DefaultLevel::Restricted => Level::Restricted,
        }
    }
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse().map_err(|e: psa::PolicyError| e.to_string())
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Rewrite the changed files in place instead of printing the manifests
    #[arg(long)]
    pub in_place: bool,
}

pub fn run(g: &GlobalArgs, args: PsaArgs) -> anyhow::Result<i32> {
    match args.command {
        PsaCommand::Check(a) => check(g, a),
        PsaCommand::Fix(a) => fix(g, a),
        PsaCommand::Plan(a) => live::plan(g, a),
    }
}

/// Chooses the policy for each object: from the flag, or from its Namespace's labels.
struct PolicyChooser {
    fixed: Option<Policy>,
    namespaces: HashMap<String, Policy>,
    fallback: Policy,
    default_namespace: String,
}

impl PolicyChooser {
    fn new(g: &GlobalArgs, args: &PolicyArgs, objects: &[Object]) -> PolicyChooser {
        let fallback = Policy::new(args.default_level.into(), args.default_version);
        let fixed = match args.level.unwrap_or(LevelArg::Restricted) {
            LevelArg::Privileged => Some(Policy::new(Level::Privileged, args.policy_version)),
            LevelArg::Baseline => Some(Policy::new(Level::Baseline, args.policy_version)),
            LevelArg::Restricted => Some(Policy::new(Level::Restricted, args.policy_version)),
            LevelArg::FromNamespace => None,
        };
        let mut namespaces = HashMap::new();
        if fixed.is_none() {
            let defaults = Defaults {
                enforce: (fallback.level(), fallback.version()),
                ..Defaults::default()
            };
            for o in objects
                .iter()
                .filter(|o| o.kind() == "Namespace" && o.api_version() == "v1")
            {
                let labels: Option<std::collections::BTreeMap<String, String>> = o
                    .value
                    .pointer("/metadata/labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok());
                let p = namespace::from_labels(labels.as_ref(), &defaults);
                namespaces.insert(o.name().to_string(), p.enforce.policy);
            }
        }
        PolicyChooser {
            fixed,
            namespaces,
            fallback,
            default_namespace: g.namespace.clone().unwrap_or_else(|| "default".into()),
        }
    }

    /// The policy for an object in `namespace`, and where it came from.
    fn choose(&mut self, namespace: Option<&str>) -> (Policy, String) {
        if let Some(p) = &self.fixed {
            return (p.clone(), "flag".into());
        }
        let ns = namespace.unwrap_or(&self.default_namespace);
        match self.namespaces.get(ns) {
            Some(p) => (p.clone(), format!("namespace/{ns}")),
            None => (self.fallback.clone(), "default".into()),
        }
    }
}

fn subject(o: &Object) -> Subject {
    Subject {
        path: Some(o.path.clone()),
        line: Some(o.line),
        api_version: o.api_version().to_string(),
        kind: o.kind().to_string(),
        namespace: o.namespace().map(str::to_string),
        name: o.name().to_string(),
    }
}

fn problems(errors: Vec<InputError>) -> Vec<InputProblem> {
    errors
        .into_iter()
        .map(|e| InputProblem {
            location: e.location,
            message: e.message,
        })
        .collect()
}

/// Read and parse the inputs; an error if nothing at all could be read.
fn load(input: &InputArgs) -> anyhow::Result<(Vec<SourceFile>, Vec<InputError>)> {
    let paths = input.paths();
    if paths.is_empty() {
        bail!("no input: pass manifests with -f PATH (files, directories or - for stdin)");
    }
    Ok(manifest::read_sources(
        &paths,
        &input.scan_root,
        input.limits(),
    ))
}

/// Order problems by file, then line, then column, so each file's read in order.
fn sort_problems(errors: &mut [InputProblem]) {
    fn key(location: &str) -> (&str, usize, usize) {
        // `path`, `path:line` or `path:line:column`.
        let mut nums: Vec<usize> = Vec::new();
        let mut rest = location;
        while nums.len() < 2 {
            match rest
                .rsplit_once(':')
                .and_then(|(h, t)| Some((h, t.parse().ok()?)))
            {
                Some((head, n)) => {
                    nums.insert(0, n);
                    rest = head;
                }
                None => break,
            }
        }
        (
            rest,
            nums.first().copied().unwrap_or(0),
            nums.get(1).copied().unwrap_or(0),
        )
    }
    errors.sort_by(|a, b| key(&a.location).cmp(&key(&b.location)));
}

fn report_errors(errors: &mut [InputProblem]) {
    sort_problems(errors);
    for e in errors.iter() {
        eprintln!("error: {}: {}", e.location, e.message);
    }
}

/// Evaluate one object: a result, a skip, or a problem.
enum Outcome {
    Result(Box<PsaResult>),
    Skip(Skipped),
    Problem(InputProblem),
}

fn evaluate_object(o: &Object, chooser: &mut PolicyChooser, selector: &Selector) -> Outcome {
    if !selector.is_empty() {
        let labels: Option<BTreeMap<String, String>> = o
            .value
            .pointer("/metadata/labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok());
        if !selector.matches(labels.as_ref()) {
            return Outcome::Skip(Skipped {
                subject: subject(o),
                reason: format!("labels do not match -l {selector}"),
            });
        }
    }
    let Some(kind) = WorkloadKind::from_type(o.api_version(), o.kind()) else {
        return Outcome::Skip(Skipped {
            subject: subject(o),
            reason: format!(
                "{} {} is not a kind Pod Security evaluates",
                o.api_version(),
                o.kind()
            ),
        });
    };
    match workload::extract(kind, &o.value) {
        Err(e) => Outcome::Problem(InputProblem {
            location: format!("{}:{}", o.path, o.line),
            message: if o.name().is_empty() {
                format!("{} (unnamed): {}", o.kind(), e.message)
            } else {
                format!("{} {:?}: {}", o.kind(), o.name(), e.message)
            },
        }),
        Ok(None) => Outcome::Skip(Skipped {
            subject: subject(o),
            reason: "no pod template (allowed by Pod Security)".into(),
        }),
        Ok(Some(t)) => {
            let (policy, source) = chooser.choose(o.namespace());
            let eval = psa::evaluate(&policy, &t.meta, &t.spec);
            Outcome::Result(Box::new(PsaResult::new(subject(o), &policy, source, &eval)))
        }
    }
}

fn selector(g: &GlobalArgs) -> anyhow::Result<Selector> {
    Ok(Selector::parse(g.selector.as_deref().unwrap_or(""))?)
}

fn check(g: &GlobalArgs, args: CheckArgs) -> anyhow::Result<i32> {
    if args.input.paths().is_empty() {
        return live::check(g, args);
    }
    let selector = selector(g)?;
    let (files, read_errors) = load(&args.input)?;
    let (objects, parse_errors) = manifest::objects(&files);
    let mut errors = problems(read_errors.into_iter().chain(parse_errors).collect());
    if objects.is_empty() && errors.is_empty() {
        bail!(
            "no Kubernetes objects found in {}",
            args.input.paths().join(", ")
        );
    }
    let mut chooser = PolicyChooser::new(g, &args.policy, &objects);
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for o in &objects {
        match evaluate_object(o, &mut chooser, &selector) {
            Outcome::Result(r) => results.push(*r),
            Outcome::Skip(s) => skipped.push(s),
            Outcome::Problem(p) => errors.push(p),
        }
    }
    report_errors(&mut errors);
    let had_errors = !errors.is_empty();
    let report = PsaReport::new(results, skipped, errors, g.verbose > 0);
    let code = emit(g, &report)?;
    Ok(if had_errors { exit::ERROR } else { code })
}

fn fix(g: &GlobalArgs, args: FixArgs) -> anyhow::Result<i32> {
    if args.policy.level == Some(LevelArg::FromNamespace) {
        bail!("psa fix needs a fixed --level (baseline or restricted), not from-namespace");
    }
    if args.in_place && args.input.paths().iter().any(|p| p == "-") {
        bail!("--in-place cannot rewrite stdin; drop --in-place or pass files");
    }
    let selector = selector(g)?;
    let (files, read_errors) = load(&args.input)?;
    let mut errors = problems(read_errors);
    let mut chooser = PolicyChooser::new(g, &args.policy, &[]);
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let mut changes_total = 0usize;
    let mut outputs: Vec<(String, String, bool)> = Vec::new();
    for file in &files {
        let mut out = String::with_capacity(file.text.len());
        let mut cursor = 0;
        let mut file_changed = false;
        for doc in manifest::documents(file) {
            let line = doc.line;
            let (content, end) = (doc.content, doc.range.end);
            let mut value = match doc.value {
                Ok(v) => v,
                Err(e) => {
                    errors.push(InputProblem {
                        location: e.location,
                        message: e.message,
                    });
                    continue;
                }
            };
            // Report what the reader refuses in this document; patch the rest.
            let (_, problems_here) = manifest::unpack(value.clone(), &file.display, line);
            errors.extend(problems_here.into_iter().map(|e| InputProblem {
                location: e.location,
                message: e.message,
            }));
            let mut doc_changed = false;
            for_each_object_mut(&mut value, &mut |obj: &mut Value| {
                let o = Object {
                    path: file.display.clone(),
                    line,
                    value: obj.clone(),
                };
                match evaluate_object(&o, &mut chooser, &selector) {
                    Outcome::Skip(s) => skipped.push(s),
                    Outcome::Problem(p) => errors.push(p),
                    Outcome::Result(r) if r.allowed => results.push(*r),
                    Outcome::Result(r) => {
                        let Some(kind) = WorkloadKind::from_type(o.api_version(), o.kind()) else {
                            return;
                        };
                        let failed: Vec<psa::CheckId> =
                            r.violations.iter().map(|v| v.check).collect();
                        let changes = psa::fix::patch(kind, obj, &failed);
                        if changes.is_empty() {
                            results.push(*r);
                            return;
                        }
                        changes_total += changes.len();
                        doc_changed = true;
                        let patched = Object {
                            value: obj.clone(),
                            ..o
                        };
                        match evaluate_object(&patched, &mut chooser, &selector) {
                            Outcome::Result(mut after) => {
                                after.policy_source = format!(
                                    "{} (after {} fixes)",
                                    after.policy_source,
                                    changes.len()
                                );
                                results.push(*after)
                            }
                            Outcome::Skip(s) => skipped.push(s),
                            Outcome::Problem(p) => errors.push(p),
                        }
                    }
                }
            });
            if doc_changed {
                file_changed = true;
                // Keep leading comments and the `---` marker; replace the content.
                out.push_str(&file.text[cursor..content]);
                out.push_str(&serialize_document(file, &value)?);
                cursor = end;
            }
        }
        out.push_str(&file.text[cursor..]);
        outputs.push((file.display.clone(), out, file_changed));
    }

    if args.in_place {
        for ((_, text, changed), file) in outputs.iter().zip(&files) {
            if let (true, Some(path)) = (*changed, &file.path) {
                std::fs::write(path, text)
                    .with_context(|| format!("cannot rewrite {}", path.display()))?;
                eprintln!("fixed {}", file.display);
            }
        }
    } else {
        let mut stream = String::new();
        let many = outputs.len() > 1;
        for (display, text, _) in &outputs {
            if many {
                if !stream.is_empty() && !stream.ends_with('\n') {
                    stream.push('\n');
                }
                stream.push_str(&format!("---\n# Source: {display}\n"));
            }
            stream.push_str(text);
        }
        crate::commands::write_text(g, &stream)?;
    }

    if results.is_empty() && skipped.is_empty() && errors.is_empty() {
        bail!(
            "no Kubernetes objects found in {}",
            args.input.paths().join(", ")
        );
    }
    report_errors(&mut errors);
    let had_errors = !errors.is_empty();
    let report = PsaReport::new(results, skipped, errors, g.verbose > 0);
    // The manifests own stdout; the remaining findings go to stderr as a table.
    let mut stderr = std::io::stderr().lock();
    let opts = RenderOptions {
        format: match g.output {
            Format::Json | Format::Yaml => g.output,
            _ => Format::Table,
        },
        color: false,
    };
    report::render(&report, opts, &mut stderr)?;
    eprintln!("{changes_total} safe changes applied");
    if had_errors {
        return Ok(exit::ERROR);
    }
    Ok(report::exit_code(&report, g.fail_on))
}

/// Visit the object of a document, or each item of a List, that the reader accepts.
fn for_each_object_mut(doc: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let is_list = doc
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && doc.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                for_each_object_mut(item, f);
            }
        }
    } else {
        // Only objects the reader accepts (it reported the others).
        let named = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if named("kind") && named("apiVersion") {
            f(doc);
        }
    }
}

/// Serialize a patched document in its file's format.
fn serialize_document(file: &SourceFile, value: &Value) -> anyhow::Result<String> {
    let mut s = if file.json {
        serde_json::to_string_pretty(value)?
    } else {
        report::to_yaml(value)?
    };
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}
