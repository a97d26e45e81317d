//! The demo's remote authorities, written to `<data-dir>/rollcall.toml` so
//! every later command (and the console) sees them:
//!
//! * `schulportal` — an embedded mirror of every school: drained by the demo;
//! * `lernplattform` — an embedded mirror of the first school that takes
//!   the e-mail address as userName: the few users without one cannot be
//!   mapped and land in its trash, as they would in real life;
//! * `idbroker` — a SCIM authority on a loopback port where nothing
//!   listens: the demo's sync finds it unreachable and pauses it, with its
//!   queue waiting.
//!
//! After that sync, a few more changes leave items queued.

use crate::engine::config::AuthorityConfig;
use crate::engine::jobs::Quiet;
use crate::engine::sync::SyncOptions;
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::User;
use crate::store::{Batch, UserChange, UserQuery};
use std::collections::BTreeMap;
use std::time::Duration;

/// One in this many users of the first school has no e-mail address.
const NO_EMAIL_EVERY: usize = 50;

fn config_text(first_school: &str, token_file: &str) -> String {
    format!(
        r#"# Written by `rollcall demo`: the demo district's remote authorities.
# This file is a config layer of this data dir (see configs/rollcall.toml).

[authorities.schulportal]
kind = "embedded"
schools = ["*"]

[authorities.lernplattform]
kind = "embedded"
schools = ["{first_school}"]
on_removal = "delete"

[authorities.lernplattform.mapping.user]
userName = "email"
"name.givenName" = "firstname"
"name.familyName" = "lastname"
active = "active"

[authorities.idbroker]
kind = "scim"
# Nothing listens here: the authority is paused until it answers.
url = "http://127.0.0.1:9/scim/v2"
token_file = "{token_file}"
schools = ["{first_school}"]
"#
    )
}

/// Writes the demo authorities (unless the data dir already has its own
/// config or authorities are configured) and makes the engine use them.
pub fn configure(engine: &mut Engine, first_school: &str) -> EngineResult<bool> {
    let paths = engine.settings().paths.clone();
    let local = paths.local_config();
    if local.exists() || !engine.config().authorities.is_empty() {
        return Ok(false);
    }
    let token = paths.root().join("idbroker.token");
    write_private(&token, "demo-token-not-a-secret\n")?;
    let text = config_text(first_school, &token.display().to_string());
    let table: toml::Table = text
        .parse()
        .map_err(|e| EngineError::Internal(format!("demo authorities: {e}")))?;
    let parsed: BTreeMap<String, AuthorityConfig> = table
        .get("authorities")
        .cloned()
        .map(|v| v.try_into())
        .transpose()
        .map_err(|e| EngineError::Internal(format!("demo authorities: {e}")))?
        .unwrap_or_default();
    write_private(&local, &text)?;
    engine.settings.config.authorities = parsed;
    crate::engine::sync::distributor::register(&engine.state, engine.dir.as_ref(), &engine.settings.config)?;
    Ok(true)
}

fn write_private(path: &std::path::Path, text: &str) -> EngineResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    f.write_all(text.as_bytes()).map_err(io_error(path))
}

/// Gives the first school's users e-mail addresses, all but a few.
pub fn add_emails(engine: &mut Engine, first_school: &str) -> EngineResult<()> {
    let users: Vec<User> = engine.dir.users(&UserQuery {
        school: Some(first_school.to_string()),
        ..UserQuery::default()
    })?;
    let changes = users
        .into_iter()
        .enumerate()
        .filter(|(i, u)| i % NO_EMAIL_EVERY != NO_EMAIL_EVERY / 2 && u.email.is_none())
        .map(|(_, before)| {
            let mut after = before.clone();
            after.email = Some(format!("{}@{first_school}.schule.example", before.username));
            after.updated_at = chrono::Utc::now();
            UserChange::Update { before, after }
        })
        .collect();
    engine.dir.apply(&Batch {
        users: changes,
        ..Batch::default()
    })?;
    Ok(())
}

/// The demo's sync: drains the mirrors, pauses the unreachable SCIM
/// authority at once.
pub fn sync(engine: &mut Engine) -> EngineResult<()> {
    engine.sync_run(
        &SyncOptions {
            max_wait: Duration::ZERO,
            ..SyncOptions::default()
        },
        &mut Quiet,
    )?;
    Ok(())
}
