//! `rollcall listen`: follows the LDAP directory's change stream into the
//! journal until SIGTERM or Ctrl-C.

use super::super::Exit;
use super::super::output;
use super::sync::Stoppable;
use crate::engine::Engine;
use crate::engine::jobs::Quiet;

pub fn run(engine: &Engine, json: bool) -> anyhow::Result<Exit> {
    if !json {
        eprintln!("rollcall listen: following the directory's changes; stop with SIGTERM or Ctrl-C");
    }
    engine.listen(&mut Stoppable::new(Quiet))?;
    if json {
        output::json(&serde_json::json!({"stopped": true}))?;
    }
    Ok(Exit::Ok)
}
