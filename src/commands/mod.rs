//! One module per subcommand: its clap arguments and a `run` that gathers input, calls an
//! engine and hands a typed report to `report`. Thin glue only.

pub mod alerts;
pub mod cis;
pub mod completion;
pub mod emit;
pub mod install;
pub mod psa;
pub mod rules;
pub mod sensor;
pub mod simulate;
pub mod status;
pub mod uninstall;
pub mod version;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::Context;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::report::{self, RenderOptions, Report};

/// Process exit codes shared by every command.
pub mod exit {
    /// Nothing at or above `--fail-on`.
    pub const CLEAN: i32 = 0;
    /// Findings at or above `--fail-on`.
    pub const FINDINGS: i32 = 1;
    /// Usage or input error.
    pub const ERROR: i32 = 2;
}

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    if g.output == report::Format::KubeBenchJson && !matches!(cli.command, Command::Cis(_)) {
        anyhow::bail!("-o kube-bench-json is only available for `cis run`; use -o json");
    }
    match cli.command {
        Command::Psa(args) => psa::run(g, args),
        Command::Cis(args) => cis::run(g, args),
        Command::Rules(args) => rules::run(g, args),
        Command::Alerts(args) => alerts::run(g, args),
        Command::Sensor(args) => sensor::run(g, *args),
        Command::Install(args) => install::run(g, args),
        Command::Uninstall(args) => uninstall::run(g, args),
        Command::Status(args) => status::run(g, args),
        Command::Emit(args) => emit::run(g, args),
        Command::Version(args) => version::run(g, args),
        Command::Completion(args) => completion::run(g, args),
        Command::Complete(args) => completion::run_complete(args),
        Command::Simulate(args) => simulate::run(g, args),
        Command::Action { name, args } => {
            use crate::simulate::actions::{self, ActionError};
            match actions::run(&name, &args) {
                Ok(()) => Ok(exit::CLEAN),
                Err(ActionError::Skip(why)) => {
                    eprintln!("skipped: {why}");
                    Ok(actions::SKIP_EXIT)
                }
                Err(ActionError::Failed(why)) => Err(anyhow::Error::msg(why)),
            }
        }
        Command::SimInit(args) => simulate::run_init(args),
        Command::SimPod(args) => simulate::run_pod(args),
    }
}

/// Whether tables may use colour: a terminal on stdout, no `--no-color`, no `NO_COLOR`,
/// and not writing to a file.
pub fn use_color(g: &GlobalArgs) -> bool {
    !g.no_color
        && g.output_file.is_none()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && io::stdout().is_terminal()
}

/// Write a report where the global flags say (stdout or `--output-file`), in the chosen
/// format, and return the exit code its findings call for.
pub fn emit<R: Report>(g: &GlobalArgs, report: &R) -> anyhow::Result<i32> {
    let opts = RenderOptions {
        format: g.output,
        color: use_color(g),
    };
    match &g.output_file {
        Some(path) => {
            let f =
                File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
            let mut w = BufWriter::new(f);
            report::render(report, opts, &mut w)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut w = BufWriter::new(stdout.lock());
            match report::render(report, opts, &mut w) {
                Ok(()) => {}
                Err(report::RenderError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e.into()),
            }
            let _ = w.flush();
        }
    }
    Ok(report::exit_code(report, g.fail_on))
}

/// Write raw text to stdout or `--output-file`, treating a closed pipe as success.
pub fn write_text(g: &GlobalArgs, text: &str) -> anyhow::Result<()> {
    match &g.output_file {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => match io::stdout().lock().write_all(text.as_bytes()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing to stdout"),
        },
    }
}
