//! The command-line front end: parses arguments, opens the engine, prints
//! results (tables or `--json`) and maps outcomes to exit codes.

pub mod args;
mod commands;
pub mod lifecycle;
mod logging;
mod output;
mod progress;

use crate::engine::config::LoadOptions;
use crate::engine::{EngineError, ErrorKind, Settings};
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
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

fn exit_for(err: &anyhow::Error) -> Exit {
    match err.downcast_ref::<EngineError>().map(EngineError::kind) {
        Some(ErrorKind::Usage) => Exit::Usage,
        Some(ErrorKind::Refused) => Exit::Refused,
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
    // Answered without reading any config.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            // Into memory first: the generator panics on a write error.
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "rollcall", &mut text);
            return finish(print_bytes(&text));
        }
        Some(Command::Man) => {
            let mut text = Vec::new();
            let rendered = clap_mangen::Man::new(Cli::command()).render(&mut text);
            return finish(rendered.map_err(anyhow::Error::from).and_then(|()| print_bytes(&text)));
        }
        _ => {}
    }
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

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<Exit> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush())?;
    Ok(Exit::Ok)
}

fn finish(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(code) => code.into(),
        Err(e) if is_broken_pipe(&e) => Exit::Ok.into(),
        Err(e) => {
            let _ = output::err_text(&format!("rollcall: error: {e:#}\n"));
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

/// Loads settings from the global flags (again on SIGHUP).
pub(crate) fn load_settings(global: &args::Global) -> crate::engine::EngineResult<Settings> {
    let opts = LoadOptions::standard(global.config.clone(), global.set.clone());
    Settings::load(&opts, global.data_dir.clone(), global.read_only)
}

fn run(global: &args::Global, command: Command) -> anyhow::Result<Exit> {
    let settings = load_settings(global)?;
    let _guard = logging::init(&settings);
    commands::dispatch(global, settings, command)
}
