//! `rollcall users list | show`.

use crate::cli::Exit;
use crate::cli::args::{StateFilter, UsersCmd};
use crate::cli::output::errln;
use crate::cli::output::{self, Table};
use crate::engine::Engine;
use crate::engine::users::{UserSelector, UserView};
use crate::model::UserState;
use crate::store::UserQuery;
use std::io::Write;

pub fn run(engine: &Engine, cmd: UsersCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        UsersCmd::List { school, state, role } => {
            let query = UserQuery {
                school: school.map(|s| engine.resolve_school(&s)).transpose()?,
                state: match state {
                    StateFilter::Active => Some(UserState::Active),
                    StateFilter::Limbo => Some(UserState::Limbo),
                    StateFilter::All => None,
                },
                roles: role.into_iter().collect(),
                ..UserQuery::default()
            };
            if json {
                list_json(engine, &query)
            } else {
                list_table(engine, &query)
            }
        }
        UsersCmd::History {
            username,
            record_uid,
            source,
        } => {
            let (user, history) = engine.user_history(&selector(username, record_uid, source)?)?;
            if json {
                output::json(
                    &serde_json::json!({ "username": user.username, "record_uid": user.record_uid, "history": history }),
                )?;
            } else if history.is_empty() {
                errln!("no feed has mentioned {} yet", user.username)?;
            } else {
                let mut t = Table::new(&["WHEN", "RUN", "SCHOOL", "EVENT", "LINE", "ROW"]);
                for h in history {
                    t.row(vec![
                        h.at.get(..19).unwrap_or(&h.at).replace('T', " "),
                        h.run_id,
                        h.school,
                        if h.current {
                            format!("{} (current)", h.event)
                        } else {
                            h.event
                        },
                        h.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                        h.row
                            .map(|r| serde_json::Value::Object(r).to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.print()?;
            }
            Ok(Exit::Ok)
        }
        UsersCmd::Show {
            username,
            record_uid,
            source,
        } => {
            let selector = selector(username, record_uid, source)?;
            let detail = engine.user_detail(&selector)?;
            if json {
                output::json(&detail)?;
            } else {
                let u = &detail.user;
                let mut t = Table::new(&["FIELD", "VALUE"]);
                let classes = |m: &std::collections::BTreeMap<String, Vec<String>>| {
                    output::list(m.iter().map(|(s, c)| format!("{s}: {}", c.join(" "))))
                };
                for (k, v) in [
                    ("username", u.username.clone()),
                    ("record_uid", u.record_uid.clone()),
                    ("source_uid", u.source_uid.clone()),
                    ("name", format!("{} {}", u.firstname, u.lastname)),
                    ("email", u.email.clone().unwrap_or_else(|| "-".into())),
                    ("birthday", u.birthday.clone().unwrap_or_else(|| "-".into())),
                    ("state", u.state.to_string()),
                    ("disabled", u.disabled.to_string()),
                    ("schools", output::list(&u.schools)),
                    ("roles", output::list(u.roles.iter().map(|r| r.as_str()))),
                    ("classes", classes(&u.classes)),
                    ("workgroups", classes(&u.workgroups)),
                    ("purge_at", u.purge_at.clone().unwrap_or_else(|| "-".into())),
                    ("created_at", u.created_at.clone()),
                    ("updated_at", u.updated_at.clone()),
                ] {
                    t.row(vec![k.to_string(), v]);
                }
                if let Some(r) = &detail.last_received {
                    t.row(vec![
                        "last_received".into(),
                        format!(
                            "run {} (school {}, line {}): {}",
                            r.run_id,
                            r.school,
                            r.line,
                            serde_json::Value::Object(r.row.clone())
                        ),
                    ]);
                }
                t.print()?;
            }
            Ok(Exit::Ok)
        }
    }
}

fn selector(
    username: Option<String>,
    record_uid: Option<String>,
    source: Option<String>,
) -> anyhow::Result<UserSelector> {
    Ok(match (username, record_uid) {
        (_, Some(record_uid)) => UserSelector::RecordUid {
            record_uid,
            source_uid: source,
        },
        (Some(u), None) => UserSelector::Username(u),
        (None, None) => anyhow::bail!(crate::engine::EngineError::Usage(
            "name the user: USERNAME or --record-uid UID".into()
        )),
    })
}

/// Streams a JSON array, one user per line, without holding the list.
fn list_json(engine: &Engine, query: &UserQuery) -> anyhow::Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut first = true;
    let mut failed: Option<std::io::Error> = None;
    out.write_all(b"[")?;
    engine.for_each_user(query, &mut |u| {
        let sep: &[u8] = if first { b"\n" } else { b",\n" };
        first = false;
        let res = out
            .write_all(sep)
            .and_then(|_| output::json_compact_to(&mut out, &UserView::from(&u)));
        match res {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    out.flush()?;
    Ok(Exit::Ok)
}

fn list_table(engine: &Engine, query: &UserQuery) -> anyhow::Result<Exit> {
    let mut t = Table::new(&["USERNAME", "STATE", "ROLES", "SCHOOLS", "CLASSES", "NAME"]);
    engine.for_each_user(query, &mut |u| {
        let v = UserView::from(&u);
        t.row(vec![
            v.username,
            v.state.to_string(),
            output::list(v.roles.iter().map(|r| r.as_str())),
            output::list(&v.schools),
            output::list(v.classes.values().flatten()),
            format!("{} {}", v.firstname, v.lastname),
        ]);
        true
    })?;
    if t.is_empty() {
        errln!("no users match")?;
    } else {
        t.print()?;
    }
    Ok(Exit::Ok)
}
