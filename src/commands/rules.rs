//! `kubectl secmon rules validate|list|test`: load Falco-format rules files, report what
//! they hold and what loading found, and replay recorded events through them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::cli::GlobalArgs;
use crate::commands::emit;
use crate::report::rules::{Firing, RulesListReport, RulesTestReport, ValidateReport};
use crate::rules::event::parse_json_lines;
use crate::rules::{self, HostResolver, LoadOptions, Matches, Priority, RuleMatching, Ruleset};

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load rules files and report errors, unsupported fields and other warnings
    Validate(ValidateArgs),
    /// List the rules of the default ruleset and/or the given files
    List(ListArgs),
    /// Replay recorded events (JSON lines) through rules and show which fire
    Test(TestArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Also load the embedded default ruleset first (as the sensor does)
    #[arg(long)]
    pub with_defaults: bool,
    /// Resolve host names used with fd.sip.name at load time (off: only literal addresses)
    #[arg(long)]
    pub resolve_hosts: bool,
    /// Skip rules less severe than this priority
    #[arg(long, value_name = "PRIORITY", default_value = "debug", value_parser = parse_priority)]
    pub min_priority: Priority,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    Priority::parse(s).ok_or_else(|| {
        format!("unknown priority {s:?}: use emergency, alert, critical, error, warning, notice, informational or debug")
    })
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Rules files or directories of them (*.yaml, *.yml)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Rules files to load after (or, with --no-defaults, instead of) the default ruleset
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load the embedded default ruleset
    #[arg(long)]
    pub no_defaults: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Matching {
    /// Report the first matching rule per event (Falco's default)
    First,
    /// Report every matching rule
    All,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Rules files (default: the embedded default ruleset)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Recorded events, one JSON event per line (see src/rules/event.rs for the format)
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub events: PathBuf,
    /// Which matches to report
    #[arg(long, value_enum, default_value = "first")]
    pub rule_matching: Matching,
    #[command(flatten)]
    pub source: SourceArgs,
}

pub fn run(g: &GlobalArgs, args: RulesArgs) -> anyhow::Result<i32> {
    match args.command {
        RulesCommand::Validate(a) => validate(g, a),
        RulesCommand::List(a) => list(g, a),
        RulesCommand::Test(a) => test(g, a),
    }
}

/// The rules sources in load order: the defaults when asked, then the files.
fn sources(files: &[PathBuf], defaults: bool) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = if defaults {
        rules::default_ruleset_sources()
    } else {
        Vec::new()
    };
    out.extend(rules::read_rule_files(files).map_err(anyhow::Error::msg)?);
    if out.is_empty() {
        bail!(
            "no rules files found in {}",
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}

fn load(
    sources: &[(String, String)],
    opts: &SourceArgs,
    matching: RuleMatching,
) -> anyhow::Result<(Ruleset, Vec<rules::Diagnostic>)> {
    let options = LoadOptions {
        rule_matching: matching,
        min_priority: opts.min_priority,
        resolver: if opts.resolve_hosts {
            HostResolver::System
        } else {
            HostResolver::Disabled
        },
    };
    // A LoadError is one line, `file:line: message`.
    Ok(rules::load_files(sources, &options)?)
}

fn names(sources: &[(String, String)]) -> Vec<String> {
    sources.iter().map(|(n, _)| n.clone()).collect()
}

fn validate(g: &GlobalArgs, args: ValidateArgs) -> anyhow::Result<i32> {
    let sources = sources(&args.files, args.source.with_defaults)?;
    let (ruleset, diagnostics) = load(&sources, &args.source, RuleMatching::First)?;
    let report = ValidateReport::new(
        names(&sources),
        ruleset.rules(),
        ruleset.list_names().len(),
        ruleset.macro_names().len(),
        diagnostics,
    );
    emit(g, &report)
}

fn list(g: &GlobalArgs, args: ListArgs) -> anyhow::Result<i32> {
    let sources = sources(&args.rules, !args.no_defaults)?;
    let (ruleset, diagnostics) = load(&sources, &args.source, RuleMatching::First)?;
    if g.verbose > 0 {
        for d in &diagnostics {
            eprintln!("{d}");
        }
    }
    let report = RulesListReport::new(names(&sources), ruleset.rules().to_vec());
    emit(g, &report)
}

fn test(g: &GlobalArgs, args: TestArgs) -> anyhow::Result<i32> {
    let defaults = args.files.is_empty() || args.source.with_defaults;
    let sources = sources(&args.files, defaults)?;
    let matching = match args.rule_matching {
        Matching::First => RuleMatching::First,
        Matching::All => RuleMatching::All,
    };
    let (ruleset, _) = load(&sources, &args.source, matching)?;
    let events_name = args.events.display().to_string();
    let text = std::fs::read_to_string(&args.events)
        .with_context(|| format!("cannot read events file {events_name}"))?;
    let events = parse_json_lines(&text)
        .map_err(|e| anyhow::anyhow!("{events_name}:{}", e.trim_start_matches("line ")))?;
    // Event positions are file lines, so findings point at the event that fired.
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#')
        })
        .map(|(i, _)| i + 1)
        .collect();
    let mut firings = Vec::new();
    let mut matches = Matches::new();
    for (i, ev) in events.iter().enumerate() {
        ruleset.matches(ev, &mut matches);
        for id in matches.ids() {
            let (Some(info), Some(out)) = (ruleset.rule(*id), ruleset.render_output(*id, ev))
            else {
                continue;
            };
            firings.push(Firing {
                event: lines.get(i).copied().unwrap_or(i + 1),
                evt_type: ev.kind.name().to_string(),
                rule: info.name.clone(),
                priority: info.priority,
                tags: info.tags.clone(),
                output: out.text,
                output_fields: out.output_fields,
            });
        }
    }
    let report = RulesTestReport::new(events_name, events.len(), firings);
    emit(g, &report)
}
