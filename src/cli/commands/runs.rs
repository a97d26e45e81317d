//! `rollcall runs list | show`.

use crate::cli::Exit;
use crate::cli::args::{RunKindArg, RunsCmd};
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, out, outln};
use crate::engine::Engine;
use crate::engine::runs::RunKind;

pub fn run(engine: &Engine, cmd: RunsCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        RunsCmd::List { kind, school, limit } => {
            let kind = kind.map(|k| match k {
                RunKindArg::Import => RunKind::Import,
                RunKindArg::Purge => RunKind::Purge,
                RunKindArg::Sync => RunKind::Sync,
                RunKindArg::Verify => RunKind::Verify,
            });
            let runs = engine.runs().list(
                &|r| {
                    kind.is_none_or(|k| r.kind == k)
                        && school
                            .as_ref()
                            .is_none_or(|s| r.school.as_ref().is_some_and(|r| r.eq_ignore_ascii_case(s)))
                },
                limit,
            )?;
            if json {
                output::json(&runs)?;
            } else if runs.is_empty() {
                errln!("no runs yet")?;
            } else {
                let mut t = Table::new(&["RUN", "KIND", "STATUS", "SCHOOL", "WHO", "COUNTS"]);
                for r in runs {
                    let counts = r
                        .counts
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>();
                    let status = serde_json::to_value(r.status)?.as_str().unwrap_or("").to_string();
                    t.row(vec![
                        r.id,
                        r.kind.as_str().to_string() + if r.dry_run { " (dry)" } else { "" },
                        status,
                        r.school.unwrap_or_else(|| "-".into()),
                        r.sudo_user.map(|s| format!("{} (sudo {s})", r.user)).unwrap_or(r.user),
                        output::list(counts),
                    ]);
                }
                t.print()?;
            }
        }
        RunsCmd::Log { run_id } => {
            let text = engine.runs().log_text(&run_id)?;
            if json {
                output::json(&serde_json::json!({ "run_id": run_id, "log": text }))?;
            } else {
                out!("{text}")?;
            }
        }
        RunsCmd::Input { run_id } => {
            let mut input = engine.runs().input(&run_id)?;
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                // For a human: the feed as text, sanitized.
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut input, &mut bytes)?;
                out!("{}", String::from_utf8_lossy(&bytes))?;
            } else {
                // Piped: exactly the bytes received.
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut input, &mut out)?;
                std::io::Write::flush(&mut out)?;
            }
        }
        RunsCmd::Show { run_id } => {
            let r = engine.runs().show(&run_id)?;
            if json {
                output::json(&r)?;
            } else {
                outln!("{}", serde_json::to_string_pretty(&r)?)?;
            }
        }
    }
    Ok(Exit::Ok)
}
