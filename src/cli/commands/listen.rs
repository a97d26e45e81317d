//! `rollcall listen`: follows the LDAP directory's change stream into the
//! journal until SIGTERM or Ctrl-C.

use super::super::Exit;
use super::super::output;
use crate::cli::lifecycle::Stoppable;
use crate::engine::Engine;
use crate::engine::jobs::Quiet;
use crate::store::ldap::ListenerStatus;

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

/// Shows control and bidi characters of server text visibly.
fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let hidden = c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            match hidden {
                true => c.escape_unicode().collect::<Vec<_>>(),
                false => vec![c],
            }
        })
        .collect()
}

/// One line on the listener for `info` and `authorities list`.
pub(super) fn describe(status: Option<&ListenerStatus>) -> String {
    let Some(s) = status else {
        return "directory changes: no listener has run for this data dir (`rollcall listen` or the daemon)".into();
    };
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} s"));
    let state = match (s.running, s.connected) {
        (true, true) => format!("connected to {} ({})", visible(&s.url), s.phase),
        (true, false) => format!("not connected to {} ({})", visible(&s.url), s.phase),
        (false, _) => format!("not running (follows {})", visible(&s.url)),
    };
    let mut line = format!(
        "directory changes: listener {state}, lag {}, cookie age {}, {} journalled",
        secs(s.lag_seconds),
        secs(s.cookie_age_seconds),
        s.journaled
    );
    if let Some(e) = &s.error {
        line.push_str(&format!("; last error: {}", visible(e)));
    }
    line
}
