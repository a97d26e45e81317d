//! `rollcall demo`: build the demo district, then open the console on it
//! (with `--no-tui`, `--json` or without a terminal: print a summary).

use crate::cli::Exit;
use crate::cli::args::DemoArgs;
use crate::cli::output::outln;
use crate::cli::output::{self, Table};
use crate::cli::progress::Bar;
use crate::engine::demo::{DemoSummary, build};
use crate::engine::{Engine, Settings};
use std::io::IsTerminal;

pub fn run(settings: Settings, a: &DemoArgs, json: bool) -> anyhow::Result<Exit> {
    let spec = crate::engine::demo::district::DistrictSpec {
        schools: a.schools,
        users_per_school: a.users_per_school,
        seed: a.seed,
    };
    let mut engine = Engine::open(settings)?;
    let summary = build(&mut engine, &spec, &mut Bar::new())?;
    if !a.no_tui && !json && std::io::stdout().is_terminal() {
        return super::tui::console(engine, &a.console, crate::tui::views::ViewId::Dashboard);
    }
    if json {
        output::json(&summary)?;
    } else {
        print_summary(&summary)?;
    }
    Ok(Exit::Ok)
}

fn print_summary(s: &DemoSummary) -> std::io::Result<()> {
    if s.reused {
        outln!("the demo district already exists in {}", s.data_dir)?;
    } else {
        outln!(
            "built the demo district in {} ({} feeds imported in {:.1} s)",
            s.data_dir,
            s.imports,
            s.seconds
        )?;
    }
    let mut t = Table::new(&["", "COUNT"]);
    for (k, v) in [
        ("schools", s.schools),
        ("users", s.users),
        ("active", s.active),
        ("in limbo", s.limbo),
        ("in two or more schools", s.multi_school),
    ] {
        t.row(vec![k.to_string(), v.to_string()]);
    }
    t.print()?;
    outln!("\nfeeds: {}", s.feeds_dir)?;
    outln!(
        "try:   rollcall --data-dir {} users list --school {}",
        s.data_dir,
        s.first_school
    )?;
    outln!("       rollcall --data-dir {} limbo list", s.data_dir)?;
    outln!("       rollcall --data-dir {} queue list", s.data_dir)?;
    outln!("       rollcall --data-dir {} trash list", s.data_dir)?;
    Ok(())
}
