//! One function per subcommand; each prints its result and returns the
//! exit code.

mod daemon;
mod demo;
mod import;
mod info;
mod limbo;
mod listen;
mod migrate;
mod runs;
mod schools;
mod sync;
mod sync_schools;
pub mod tui;
mod users;

use super::Exit;
use super::args::{Command, Global};
use crate::engine::{Engine, Settings};

/// `completions` and `man` are answered before any config is read.
fn unreachable_meta() -> anyhow::Result<Exit> {
    Err(anyhow::anyhow!(
        "completions and man are handled before the config is loaded"
    ))
}

pub fn dispatch(global: &Global, settings: Settings, command: Command) -> anyhow::Result<Exit> {
    let json = global.json;
    match command {
        Command::Info => info::run(&settings, json),
        Command::Demo(a) => demo::run(settings, &a, json),
        // Listing and merging must work on a directory holding two
        // spellings of a school, which every other command refuses.
        Command::Schools(c) => schools::run(&mut Engine::open_unchecked(settings)?, c, json),
        Command::Import(a) => import::run(&mut Engine::open(settings)?, &a, json),
        Command::Users(c) => users::run(&Engine::open(settings)?, c, json),
        Command::Limbo(c) => limbo::run(&mut Engine::open(settings)?, c, json),
        Command::Runs(c) => runs::run(&Engine::open(settings)?, c, json),
        Command::Tui(a) => tui::run(settings, &a),
        Command::Authorities(c) => sync::authorities(&mut Engine::open(settings)?, c, json),
        Command::Sync(c) => sync::sync(&mut Engine::open(settings)?, c, json),
        Command::Daemon(a) => daemon::run(global, settings, &a, json),
        Command::Metrics { textfile } => daemon::metrics(&Engine::open(settings)?, textfile.as_deref()),
        Command::Completions { .. } | Command::Man => unreachable_meta(),
        Command::Listen => listen::run(&Engine::open(settings)?, json),
        Command::Queue(c) => sync::queue(&Engine::open(settings)?, c, json),
        Command::Schedule(c) => sync::schedule(&mut Engine::open(settings)?, c, json),
        Command::Resync { authority } => sync::resync(&mut Engine::open(settings)?, authority, json),
        Command::Trash(c) => sync::trash(&mut Engine::open(settings)?, c, json),
        Command::SyncSchools(c) => sync_schools::sync_schools(&mut Engine::open(settings)?, c, json),
        Command::Verify(a) => sync_schools::verify(&mut Engine::open(settings)?, a, json),
        Command::Migrate { dry_run } => migrate::run(&mut Engine::open(settings)?, dry_run, json),
    }
}
