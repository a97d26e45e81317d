//! The command-line front end: parses arguments, opens the engine, prints
//! results (tables or `--json`) and maps outcomes to exit codes.

pub mod args;
mod commands;
mod output;
mod progress;

use crate::engine::config::LoadOptions;
use crate::engine::{EngineError, Settings};
use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// Documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    Refused = 3,
    Incomplete = 4,
    /// `sync run --once` drained, but items went to trash in this run.
    Trashed = 5,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

fn exit_for(err: &anyhow::Error) -> Exit {
    match err.downcast_ref::<EngineError>() {
        Some(EngineError::Invalid(_)) => Exit::Usage,
        Some(EngineError::ReadOnly { .. }) => Exit::Refused,
        Some(EngineError::Refused(_)) => Exit::Refused,
        _ => Exit::Error,
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    let Some(command) = cli.command else {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            return finish(run(&cli.global, args::Command::Tui(cli.console.clone())));
        }
        let _ = Cli::command().print_help();
        return Exit::Ok.into();
    };
    finish(run(&cli.global, command))
}

fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(code) => code.into(),
        Err(e) if is_broken_pipe(&e) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("rollcall: error: {e:#}");
            exit_for(&e).into()
        }
    }
}

/// `rollcall users list | head` closes our stdout early: not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Loads settings from the global flags.
fn settings(global: &args::Global) -> anyhow::Result<Settings> {
    let opts = LoadOptions::standard(global.config.clone(), global.set.clone());
    Ok(Settings::load(&opts, global.data_dir.clone(), global.read_only)?)
}

/// Sends the engine's logs to `<data-dir>/logs/rollcall.log`.
fn init_logging(settings: &Settings) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let logs = settings.paths.logs();
    crate::engine::paths::create_private_dir(&logs).ok()?;
    let appender = tracing_appender::rolling::daily(&logs, "rollcall.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("rollcall={}", settings.config.log.level)));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

fn run(global: &args::Global, command: Command) -> anyhow::Result<Exit> {
    let settings = settings(global)?;
    let _guard = init_logging(&settings);
    commands::dispatch(global, settings, command)
}
