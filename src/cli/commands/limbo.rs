//! `rollcall limbo list | restore | extend | purge`.

use crate::cli::Exit;
use crate::cli::args::LimboCmd;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::users::UserView;

pub fn run(engine: &mut Engine, cmd: LimboCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        LimboCmd::List => {
            let users = engine.limbo_list()?;
            let today = engine.today();
            if json {
                let views: Vec<UserView> = users.iter().map(UserView::from).collect();
                output::json(&views)?;
            } else if users.is_empty() {
                errln!("limbo is empty")?;
            } else {
                let mut t = Table::new(&["USERNAME", "PURGE_AT", "DAYS_LEFT", "ROLES", "NAME"]);
                for u in &users {
                    t.row(vec![
                        u.username.clone(),
                        u.purge_at.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
                        u.purge_at
                            .map(|d| (d - today).num_days().to_string())
                            .unwrap_or_else(|| "-".into()),
                        output::list(u.roles().iter().map(|r| r.as_str())),
                        format!("{} {}", u.firstname, u.lastname),
                    ]);
                }
                t.print()?;
            }
        }
        LimboCmd::Restore { username, school } => {
            let u = engine.limbo_restore(&username, &school)?;
            if json {
                output::json(&UserView::from(&u))?;
            } else {
                outln!("restored {} into {school}; active again", u.username)?;
            }
        }
        LimboCmd::Extend { username, days } => {
            let u = engine.limbo_extend(&username, days)?;
            if json {
                output::json(&UserView::from(&u))?;
            } else {
                outln!(
                    "{}: purge date now {}",
                    u.username,
                    u.purge_at.map(|d| d.to_string()).unwrap_or_default()
                )?;
            }
        }
        LimboCmd::Purge { as_of, user, dry_run } => {
            let outcome = match user {
                Some(name) => engine.limbo_purge_user(&name, dry_run)?,
                None => engine.limbo_purge(as_of, dry_run, &mut Bar::new())?,
            };
            if json {
                output::json(&outcome)?;
            } else {
                let verb = if outcome.dry_run { "would purge" } else { "purged" };
                for name in &outcome.purged {
                    outln!("{verb} {name}")?;
                }
                outln!(
                    "{verb} {} user(s) due on or before {} (run {})",
                    outcome.purged.len(),
                    outcome.as_of,
                    outcome.run_id
                )?;
                if !outcome.deactivated.is_empty() {
                    outln!(
                        "{} {} user(s) whose deactivation day has come: {}",
                        if outcome.dry_run {
                            "would deactivate"
                        } else {
                            "deactivated"
                        },
                        outcome.deactivated.len(),
                        output::list(&outcome.deactivated)
                    )?;
                }
                for f in &outcome.hook_failures {
                    errln!("warning: {} for {}: {}", f.hook, f.username, f.message)?;
                }
            }
        }
    }
    Ok(Exit::Ok)
}
