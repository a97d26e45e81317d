//! `rollcall schools list | create`.

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
                let mut t = Table::new(&["NAME", "USERS", "DISPLAY NAME"]);
                for s in schools {
                    let name = if s.limbo { format!("{} (limbo)", s.name) } else { s.name };
                    t.row(vec![name, s.users.to_string(), s.display_name]);
                }
                t.print()?;
            }
        }
        SchoolsCmd::Create { name, display_name } => {
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
