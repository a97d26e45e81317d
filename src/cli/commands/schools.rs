//! `rollcall schools list | create | merge`.

use crate::cli::Exit;
use crate::cli::args::SchoolsCmd;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::engine::Engine;

pub fn run(engine: &mut Engine, cmd: SchoolsCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        SchoolsCmd::List => {
            let schools = engine.schools_list()?;
            if json {
                output::json(&schools)?;
            } else if schools.is_empty() {
                errln!("no schools yet: create one with `rollcall schools create NAME` or import a feed")?;
            } else {
                let mut t = Table::new(&["NAME", "USERS", "LAST FEED", "DISPLAY NAME"]);
                let mut stale = 0;
                for s in schools {
                    let name = if s.limbo { format!("{} (limbo)", s.name) } else { s.name };
                    let feed = match (s.feed.last_feed_at, s.limbo) {
                        (_, true) => "-".to_string(),
                        (None, false) => "never".to_string(),
                        (Some(at), false) => {
                            let days = s.feed.last_feed_age_seconds.unwrap_or(0) / 86_400;
                            let when = at.format("%Y-%m-%d %H:%M").to_string();
                            if s.feed.stale {
                                stale += 1;
                                format!("{when} (STALE: {days} days)")
                            } else {
                                when
                            }
                        }
                    };
                    t.row(vec![name, s.users.to_string(), feed, s.display_name]);
                }
                t.print()?;
                if stale > 0 {
                    eprintln!(
                        "{stale} school(s) had no feed for longer than import.stale_after_days ({} days)",
                        engine.config().import.stale_after_days
                    );
                }
            }
        }
        SchoolsCmd::Merge { from, into } => {
            let o = engine.schools_merge(&from, &into)?;
            if json {
                output::json(&o)?;
            } else {
                println!(
                    "merged {} into {}: {} users moved{}",
                    o.from,
                    o.into,
                    o.users,
                    if o.school_removed {
                        format!(", school {} removed", o.from)
                    } else {
                        String::new()
                    }
                );
            }
        }
        SchoolsCmd::Create { name, display_name } => {
            engine.check_schools()?;
            let school = engine.school_create(&name, display_name.as_deref())?;
            if json {
                output::json(&school)?;
            } else {
                outln!("created school {} ({})", school.name, school.display_name)?;
            }
        }
    }
    Ok(Exit::Ok)
}
