//! `kubectl-secmon`: parse the command line, dispatch, and map every outcome to an exit
//! code: 0 clean, 1 findings at or above `--fail-on`, 2 usage or input errors. Errors are
//! one line on stderr, never a panic or a backtrace.

use clap::Parser;
use secmon::cli::Cli;
use secmon::commands;

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error ({msg}{at}); please report it with the command that caused it"
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                commands::exit::ERROR
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match std::panic::catch_unwind(|| commands::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("error: {}", error_line(&e));
            commands::exit::ERROR
        }
        Err(_) => commands::exit::ERROR,
    };
    std::process::exit(code);
}

/// An error and its causes on one line, each cause once: many errors already name their
/// cause in their own message, and `{:#}` would repeat it.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}
