//! The keys in force: the action table's, with `keys.toml` (in the user's
//! config dir) rebinding them by palette command, as gitui and lazygit
//! allow:
//!
//! ```toml
//! quit = ["q", "ctrl-c"]
//! purge-user = "X"
//! describe = ["d", "enter"]   # refused: Enter means "open" in some views
//! ```
//!
//! A key that would mean two actions in one view is refused with a message
//! naming both, as is an unknown command or key. Key dispatch, the footer
//! hints and the help overlay read the keys from here.

use super::action::{ACTIONS, Action, ActionSpec, Key, Scope, offered};
use super::ids::ViewId;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The keys of each entry of [`ACTIONS`], by index.
#[derive(Clone, Debug)]
pub struct Keymap {
    keys: Vec<Vec<Key>>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            keys: ACTIONS.iter().map(|s| s.keys.to_vec()).collect(),
        }
    }
}

/// Parses `q`, `G`, `ctrl-c`, `enter`, `esc`, `tab`, `shift-tab`, `space`,
/// `up`/`down`/`left`/`right`, `pgup`/`pgdn`, `home`, `end`, `f5`…
pub fn parse_key(text: &str) -> Result<Key, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (ctrl, rest) = match lower
        .strip_prefix("ctrl-")
        .or_else(|| lower.strip_prefix("ctrl+"))
        .or_else(|| lower.strip_prefix("c-"))
        .or_else(|| lower.strip_prefix('^').filter(|r| !r.is_empty()))
    {
        Some(r) => (true, r.to_string()),
        None => (false, lower.clone()),
    };
    let code = match rest.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "shift-tab" | "s-tab" | "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pgdown" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
            KeyCode::F(f[1..].parse().unwrap_or(1))
        }
        _ => {
            // A single character, its case as written (`G` is shift-g).
            let original = if ctrl { rest.as_str() } else { text.trim() };
            let mut chars = original.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => KeyCode::Char(c),
                _ => {
                    return Err(format!(
                        "'{text}' is not a key (write e.g. q, G, ctrl-r, enter, f5, pgdn)"
                    ));
                }
            }
        }
    };
    Ok(Key {
        code,
        mods: if ctrl {
            KeyModifiers::CONTROL
        } else {
            KeyModifiers::NONE
        },
    })
}

/// Where two actions share a view (a key bound to both would be ambiguous).
fn overlap(a: &ActionSpec, b: &ActionSpec) -> Option<&'static str> {
    match (a.scope, b.scope) {
        (Scope::Global, _) | (_, Scope::Global) => Some("every view"),
        (Scope::Views(x), Scope::Views(y)) => x.iter().find(|v| y.contains(v)).map(|v| v.name()),
    }
}

impl Keymap {
    /// The table's keys with `keys.toml` (its text; `source` names it in
    /// messages) applied. Refuses unknown commands and keys, and any key
    /// that would then mean two actions in one view.
    pub fn with_overrides(text: &str, source: &str) -> Result<Self, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
        let mut map = Keymap::default();
        for (command, value) in &table {
            let Some(i) = ACTIONS.iter().position(|s| s.command == command) else {
                return Err(format!(
                    "{source}: '{command}' is not an action; the names are the `:` palette's commands (see `?`)"
                ));
            };
            let texts: Vec<&str> = match value {
                toml::Value::String(s) => vec![s.as_str()],
                toml::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
                _ => return Err(format!("{source}: {command}: give a key or a list of keys")),
            };
            if texts.is_empty() {
                return Err(format!("{source}: {command}: give at least one key"));
            }
            map.keys[i] = texts
                .into_iter()
                .map(|t| parse_key(t).map_err(|e| format!("{source}: {command}: {e}")))
                .collect::<Result<_, _>>()?;
        }
        map.check().map_err(|e| format!("{source}: {e}"))?;
        Ok(map)
    }

    /// No key means two actions in a view they share.
    fn check(&self) -> Result<(), String> {
        for (i, a) in ACTIONS.iter().enumerate() {
            for (j, b) in ACTIONS.iter().enumerate().skip(i + 1) {
                if a.action == b.action {
                    continue;
                }
                let Some(place) = overlap(a, b) else { continue };
                if let Some(k) = self.keys[i].iter().find(|k| self.keys[j].contains(k)) {
                    return Err(format!(
                        "'{}' would mean both {} and {} ({place}); bind one of them to another key",
                        k.label(),
                        a.command,
                        b.command
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn keys_of(&self, spec: &ActionSpec) -> &[Key] {
        ACTIONS
            .iter()
            .position(|s| s.command == spec.command)
            .map(|i| self.keys[i].as_slice())
            .unwrap_or(spec.keys)
    }

    /// `q/^c`: every key of an action.
    pub fn label(&self, spec: &ActionSpec) -> String {
        self.keys_of(spec).iter().map(Key::label).collect::<Vec<_>>().join("/")
    }

    /// The first key of an action, for hints (`?` when unbound).
    pub fn first_label(&self, action: Action) -> String {
        ACTIONS
            .iter()
            .find(|s| s.action == action)
            .and_then(|s| self.keys_of(s).first())
            .map(Key::label)
            .unwrap_or_else(|| "?".into())
    }

    /// The action a key means in a view, skipping what read-only removes.
    pub fn resolve(&self, ev: &KeyEvent, view: ViewId, read_only: bool) -> Option<Action> {
        ACTIONS
            .iter()
            .zip(&self.keys)
            .filter(|(s, _)| s.applies_to(view) && s.available(read_only))
            .find(|(_, keys)| keys.iter().any(|k| k.matches(ev)))
            .map(|(s, _)| s.action)
    }

    /// The footer hints of a view: view actions first, then global ones.
    pub fn hints(&self, view: ViewId, read_only: bool) -> Vec<(String, &'static str)> {
        let (mut local, mut global): (Vec<&ActionSpec>, Vec<&ActionSpec>) = offered(view, read_only)
            .filter(|s| s.hint)
            .partition(|s| matches!(s.scope, Scope::Views(_)));
        local.append(&mut global);
        local
            .into_iter()
            .filter_map(|s| self.keys_of(s).first().map(|k| (k.label(), s.command)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::action::hidden_by_read_only;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn number_keys_follow_the_tab_order() {
        let m = Keymap::default();
        for v in ViewId::ALL {
            for from in ViewId::ALL {
                assert_eq!(m.resolve(&key(v.key()), from, false), Some(Action::Goto(v)));
            }
        }
    }

    #[test]
    fn read_only_hides_and_refuses_destructive_actions() {
        let m = Keymap::default();
        assert_eq!(m.resolve(&key('x'), ViewId::Limbo, false), Some(Action::PurgeUser));
        assert_eq!(m.resolve(&key('x'), ViewId::Limbo, true), None);
        assert!(offered(ViewId::Limbo, true).all(|s| !s.destructive));
        assert!(m.hints(ViewId::Limbo, true).iter().all(|(_, c)| *c != "restore"));
        assert!(hidden_by_read_only(ViewId::Limbo) >= 3);
        for (view, keys) in [
            (ViewId::Trash, "rx"),
            (ViewId::Queues, "punrxa"),
            (ViewId::Users, "y"),
            (ViewId::SyncSchools, "ax"),
            (ViewId::Verify, "fF"),
        ] {
            for c in keys.chars() {
                assert!(m.resolve(&key(c), view, false).is_some(), "{view:?} {c}");
                assert_eq!(m.resolve(&key(c), view, true), None, "{view:?} {c}");
            }
        }
        // Shift folds into the character.
        let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(m.resolve(&shifted, ViewId::Users, false), Some(Action::Bottom));
    }

    #[test]
    fn keys_toml_rebinds_and_refuses_conflicts_naming_both_actions() {
        let m = Keymap::with_overrides("purge-user = \"X\"\nquit = [\"ctrl-q\", \"q\"]\n", "keys.toml").unwrap();
        assert_eq!(m.resolve(&key('X'), ViewId::Limbo, false), Some(Action::PurgeUser));
        assert_eq!(m.resolve(&key('x'), ViewId::Limbo, false), None);
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(m.resolve(&ctrl_q, ViewId::Users, false), Some(Action::Quit));
        assert!(m.hints(ViewId::Limbo, false).contains(&("X".to_string(), "purge-user")));
        let e = Keymap::with_overrides("purge-user = \"r\"\n", "keys.toml").unwrap_err();
        assert!(
            e.contains("keys.toml") && e.contains("restore") && e.contains("purge-user") && e.contains("limbo"),
            "{e}"
        );
        let e = Keymap::with_overrides("describe = \"q\"\n", "keys.toml").unwrap_err();
        assert!(e.contains("describe") && e.contains("quit"), "{e}");
        let e = Keymap::with_overrides("nuke = \"n\"\n", "keys.toml").unwrap_err();
        assert!(e.contains("'nuke' is not an action"), "{e}");
        let e = Keymap::with_overrides("quit = \"ctrl-\"\n", "keys.toml").unwrap_err();
        assert!(e.contains("not a key"), "{e}");
        assert_eq!(
            parse_key("f5").unwrap(),
            Key {
                code: KeyCode::F(5),
                mods: KeyModifiers::NONE
            }
        );
        assert_eq!(parse_key("pgdn").unwrap().code, KeyCode::PageDown);
    }
}
