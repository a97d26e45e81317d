//! `rollcall migrate [--dry-run]`.

use crate::cli::Exit;
use crate::cli::output;
use crate::engine::Engine;

pub fn run(engine: &mut Engine, dry_run: bool, json: bool) -> anyhow::Result<Exit> {
    let o = engine.migrate(dry_run)?;
    if json {
        output::json(&o)?;
        return Ok(Exit::Ok);
    }
    let verb = if dry_run { "would write out" } else { "wrote out" };
    println!(
        "{verb} per-role contributions for {} users{}",
        o.contributions,
        if o.contributions == 0 {
            " (nothing to convert)"
        } else {
            ""
        }
    );
    for u in &o.users {
        println!("  {u}");
    }
    Ok(Exit::Ok)
}
