//! `kubectl secmon completion bash|zsh|fish` prints a completion script for the
//! `kubectl-secmon` binary; `completion install` writes the `kubectl_complete-secmon`
//! helper that kubectl (≥ 1.26) runs for `kubectl secmon <TAB>`; the hidden `__complete`
//! subcommand is that helper's backend and prints one candidate per line, then a Cobra
//! directive line (`:4` = no file completion, `:0` = default).

use std::io;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Command, CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::cli::{Cli, GlobalArgs};

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[command(subcommand)]
    pub what: CompletionCommand,
}

#[derive(Debug, Subcommand)]
pub enum CompletionCommand {
    /// Bash completion for kubectl-secmon
    Bash,
    /// Zsh completion for kubectl-secmon
    Zsh,
    /// Fish completion for kubectl-secmon
    Fish,
    /// Write the kubectl_complete-secmon helper so `kubectl secmon <TAB>` completes
    Install {
        /// Directory on PATH to write it to (default: ~/.krew/bin if it exists, else ~/.local/bin)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words typed after `kubectl secmon`, the partial word last
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

pub fn run(_g: &GlobalArgs, args: CompletionArgs) -> anyhow::Result<i32> {
    let shell = match args.what {
        CompletionCommand::Bash => Shell::Bash,
        CompletionCommand::Zsh => Shell::Zsh,
        CompletionCommand::Fish => Shell::Fish,
        CompletionCommand::Install { dir } => return install(dir),
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "kubectl-secmon", &mut io::stdout());
    Ok(0)
}

const HELPER: &str = "#!/bin/sh\n# kubectl plugin completion for `kubectl secmon` (kubectl >= 1.26)\nexec kubectl-secmon __complete \"$@\"\n";

fn install(dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let dir = match dir {
        Some(d) => d,
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .context("HOME is not set; pass --dir")?;
            let krew = home.join(".krew/bin");
            if krew.is_dir() {
                krew
            } else {
                home.join(".local/bin")
            }
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("kubectl_complete-secmon");
    std::fs::write(&path, HELPER).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    eprintln!(
        "wrote {} (make sure {} is on PATH)",
        path.display(),
        dir.display()
    );
    Ok(0)
}

pub fn run_complete(args: CompleteArgs) -> anyhow::Result<i32> {
    let (candidates, directive) = complete(&args.words);
    let mut out = String::new();
    for c in candidates {
        out.push_str(&c);
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    print!("{out}");
    Ok(0)
}

/// Cobra's ShellCompDirectiveNoFileComp.
const NO_FILE: u8 = 4;
/// Cobra's ShellCompDirectiveDefault (files).
const DEFAULT: u8 = 0;

/// Completion candidates (`value\tdescription`) for the words typed so far, and the
/// directive for the shell.
pub fn complete(words: &[String]) -> (Vec<String>, u8) {
    let mut root = Cli::command();
    root.build();
    let (partial, done) = match words.split_last() {
        Some((p, d)) => (p.as_str(), d),
        None => ("", &[][..]),
    };
    let mut cmd: &Command = &root;
    let mut pending_value: Option<&clap::Arg> = None;
    for w in done {
        if let Some(arg) = pending_value.take() {
            let _ = arg;
            continue;
        }
        if let Some(long) = w.strip_prefix("--") {
            if long.contains('=') {
                continue;
            }
            if let Some(a) = cmd.get_arguments().find(|a| a.get_long() == Some(long))
                && takes_value(a)
            {
                pending_value = Some(a);
            }
        } else if let Some(shorts) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            if let Some(last) = shorts.chars().last()
                && shorts.len() == 1
                && let Some(a) = cmd.get_arguments().find(|a| a.get_short() == Some(last))
                && takes_value(a)
            {
                pending_value = Some(a);
            }
        } else if let Some(sub) = cmd.find_subcommand(w) {
            cmd = sub;
        }
    }
    let describe = |name: &str, help: Option<&clap::builder::StyledStr>| match help {
        Some(h) => format!("{name}\t{}", h.to_string().lines().next().unwrap_or("")),
        None => name.to_string(),
    };
    if let Some(arg) = pending_value {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set() && v.get_name().starts_with(partial))
            .map(|v| describe(v.get_name(), v.get_help()))
            .collect();
        if values.is_empty() {
            return (values, DEFAULT);
        }
        return (values, NO_FILE);
    }
    if partial.starts_with('-') {
        let mut flags: Vec<String> = cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| (format!("--{l}"), a.get_help())))
            .filter(|(f, _)| f.starts_with(partial))
            .map(|(f, h)| describe(&f, h))
            .collect();
        flags.sort();
        return (flags, NO_FILE);
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help" && s.get_name().starts_with(partial))
        .map(|s| describe(s.get_name(), s.get_about()))
        .collect();
    if subs.is_empty() && cmd.has_subcommands() {
        return (subs, NO_FILE);
    }
    if subs.is_empty() {
        return (subs, DEFAULT);
    }
    (subs, NO_FILE)
}

fn takes_value(a: &clap::Arg) -> bool {
    a.get_action().takes_values()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(words: &[&str]) -> (Vec<String>, u8) {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let (c, d) = complete(&words);
        (
            c.into_iter()
                .map(|s| s.split('\t').next().unwrap().to_string())
                .collect(),
            d,
        )
    }

    #[test]
    fn completes_subcommands_flags_and_values() {
        let (c, d) = names(&[""]);
        assert!(
            c.contains(&"psa".to_string()) && c.contains(&"version".to_string()),
            "{c:?}"
        );
        assert!(!c.iter().any(|s| s == "__complete"));
        assert_eq!(d, NO_FILE);
        let (c, _) = names(&["ps"]);
        assert_eq!(c, vec!["psa"]);
        let (c, _) = names(&["psa", "check", "--lev"]);
        assert_eq!(c, vec!["--level"]);
        let (c, _) = names(&["psa", "check", "-o", ""]);
        assert!(
            c.contains(&"sarif".to_string()) && c.contains(&"junit".to_string()),
            "{c:?}"
        );
        let (c, _) = names(&["psa", "check", "--output", "ya"]);
        assert_eq!(c, vec!["yaml"]);
        let (_, d) = names(&["psa", "check", "-f", ""]);
        assert_eq!(d, DEFAULT);
    }
}
