//! Modal overlays: help, the `:` palette, confirmations scaled to danger
//! (y/n, or a typed word for bulk and irreversible actions — the level comes
//! from the action table through [`confirm`]), pickers, one-line inputs
//! that check what is typed, and the describe popup (a row's every field,
//! wrapped). An overlay that gets an answer hands it, with the [`Tag`] its
//! owner gave it, back to the view that opened it.

use super::action::{self, Action, Confirm};
use super::ids::ViewId;
use crate::model::Role;
use chrono::NaiveDate;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What an overlay's answer is about, for the view that opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tag {
    RestorePick {
        username: String,
    },
    RestoreConfirm {
        username: String,
        school: String,
    },
    ExtendDays {
        username: String,
    },
    PurgeUser {
        username: String,
    },
    ImportSchool,
    ImportRole {
        school: String,
    },
    ImportFile {
        school: String,
        roles: Vec<Role>,
    },
    ImportApply,
    PurgeAsOf,
    PurgeApply {
        as_of: Option<NaiveDate>,
    },
    PauseAuthority {
        authority: String,
    },
    ResumeAuthority {
        authority: String,
    },
    TrashRequeue {
        items: Vec<String>,
    },
    TrashDelete {
        items: Vec<String>,
    },
    ScheduleUser {
        username: String,
    },
    SchoolsAddPick {
        authority: String,
    },
    SchoolsAdd {
        authority: String,
        schools: Vec<String>,
        initial_sync: bool,
        force: bool,
    },
    SchoolsRemovePick {
        authority: String,
    },
    SchoolsRemove {
        authority: String,
        schools: Vec<String>,
        delete_on_target: bool,
        force: bool,
    },
    VerifyAuthority,
    VerifyKind {
        authority: String,
    },
    VerifyFilter {
        authority: String,
        kind: String,
    },
    VerifyFix,
    SyncAuthority,
    VerifyFixSelected {
        authority: String,
        objects: Vec<String>,
    },
    QueueRetryNow {
        items: Vec<String>,
    },
    QueueToTrash {
        items: Vec<String>,
    },
    QueueAfresh {
        items: Vec<String>,
    },
    Quit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    Picked(String),
    Text(String),
    /// A multi-select: the marked items and each option's state.
    Chosen {
        items: Vec<String>,
        toggles: Vec<bool>,
    },
}

#[derive(Clone, Debug)]
pub struct ConfirmBox {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    pub lines: Vec<String>,
    /// `Some(word)`: the admin must type it; `None`: y/n.
    pub word: Option<String>,
    pub typed: String,
    pub danger: bool,
}

#[derive(Clone, Debug)]
pub struct Picker {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    pub items: Vec<String>,
    pub filter: String,
    pub selected: usize,
}

impl Picker {
    pub fn visible(&self) -> Vec<&String> {
        let f = self.filter.to_lowercase();
        self.items.iter().filter(|i| i.to_lowercase().contains(&f)).collect()
    }
}

/// What an input accepts; anything else keeps it open with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    Text,
    /// A whole number of days, at least 1.
    Days,
    /// `YYYY-MM-DD`, or nothing.
    DateOrEmpty,
}

impl Accept {
    fn check(self, value: &str) -> Result<(), String> {
        let v = value.trim();
        match self {
            Accept::Text => Ok(()),
            Accept::Days => match v.parse::<u32>() {
                Ok(d) if d > 0 => Ok(()),
                _ => Err(format!("'{v}' is not a number of days (1 or more); correct it or Esc")),
            },
            Accept::DateOrEmpty if v.is_empty() => Ok(()),
            Accept::DateOrEmpty => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|_| ())
                .map_err(|_| format!("'{v}' is not a date (YYYY-MM-DD); correct it or Esc")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct InputBox {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    pub prompt: String,
    pub value: String,
    pub accept: Accept,
    /// Why the last Enter was refused.
    pub error: Option<String>,
}

/// Every field of a row, full text, wrapped (`d` in a table).
#[derive(Clone, Debug)]
pub struct Describe {
    pub title: String,
    /// Label and value; values may be long and hold newlines.
    pub fields: Vec<(String, String)>,
    pub scroll: u16,
}

/// One palette entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    View(ViewId),
    /// An action of the current view (or a global one).
    Action(Action),
    /// An action of another view: go there and run it.
    In(ViewId, Action),
}

#[derive(Clone, Debug)]
pub struct Palette {
    pub input: String,
    pub selected: usize,
    pub view: ViewId,
    pub read_only: bool,
}

impl Palette {
    /// Every view and every action of every view whose name contains the
    /// input: the current view's actions first, then views, then the other
    /// views' actions (run in their view: `:restore` from the dashboard
    /// opens limbo's restore); prefix matches before the rest in each.
    pub fn candidates(&self) -> Vec<(String, String, Choice)> {
        let q = self.input.trim().to_lowercase();
        // (group, not a prefix match, command, help, choice)
        let mut out: Vec<(u8, bool, String, String, Choice)> = Vec::new();
        for s in action::ACTIONS.iter().filter(|s| s.available(self.read_only)) {
            if matches!(s.action, Action::Goto(_) | Action::Palette) {
                continue;
            }
            let hit = s.command.contains(&q) || (q == "q" && s.action == Action::Quit);
            if !hit {
                continue;
            }
            let prefix = s.command.starts_with(&q) || q == "q";
            let (group, choice, help) = if s.applies_to(self.view) {
                (0, Choice::Action(s.action), s.help.to_string())
            } else if let Some(home) = s.home() {
                (2, Choice::In(home, s.action), format!("{} · {}", home.name(), s.help))
            } else {
                continue;
            };
            out.push((group, !prefix, s.command.to_string(), help, choice));
        }
        for v in ViewId::ALL {
            let names = std::iter::once(v.name()).chain(v.aliases().iter().copied());
            if let Some(n) = names
                .clone()
                .find(|n| n.starts_with(&q))
                .or_else(|| names.clone().find(|n| n.contains(&q)))
            {
                // A view named exactly so comes before actions containing it.
                let group = if n == q { 0 } else { 1 };
                out.push((
                    group,
                    !n.starts_with(&q),
                    v.name().to_string(),
                    format!("go to {}", v.title()),
                    Choice::View(v),
                ));
            }
        }
        out.sort_by_key(|(group, not_prefix, ..)| (*not_prefix, *group));
        out.into_iter().map(|(_, _, a, b, c)| (a, b, c)).collect()
    }
}

#[derive(Clone, Debug)]
pub enum Overlay {
    Help { view: ViewId, scroll: u16 },
    Palette(Palette),
    Confirm(ConfirmBox),
    Picker(Picker),
    Input(InputBox),
    Choose(super::chooser::Chooser),
    Describe(Describe),
}

/// What a key did to an overlay.
#[derive(Debug)]
pub enum Outcome {
    Keep,
    Close,
    Answer(ViewId, Tag, Answer),
    Run(Choice),
}

fn is_ctrl_c(k: &KeyEvent) -> bool {
    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)
}

/// Edits a one-line text field; `true` when the key was an edit.
pub fn edit_line(value: &mut String, k: &KeyEvent) -> bool {
    match k.code {
        KeyCode::Backspace => {
            value.pop();
            true
        }
        KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
            value.clear();
            true
        }
        KeyCode::Char('w') if k.modifiers.contains(KeyModifiers::CONTROL) => {
            let trimmed = value.trim_end().len();
            let cut = value[..trimmed].rfind(' ').map(|i| i + 1).unwrap_or(0);
            value.truncate(cut);
            true
        }
        KeyCode::Char(c) if !k.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
            value.push(c);
            true
        }
        _ => false,
    }
}

impl Overlay {
    pub fn on_key(&mut self, k: &KeyEvent) -> Outcome {
        if is_ctrl_c(k) {
            return Outcome::Close;
        }
        match self {
            Overlay::Help { scroll, .. } => match k.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    *scroll = scroll.saturating_add(1);
                    Outcome::Keep
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    *scroll = scroll.saturating_sub(1);
                    Outcome::Keep
                }
                _ => Outcome::Close,
            },
            Overlay::Palette(p) => match k.code {
                KeyCode::Esc => Outcome::Close,
                KeyCode::Enter => {
                    let c = p.candidates();
                    match c.get(p.selected.min(c.len().saturating_sub(1))) {
                        Some((_, _, choice)) => Outcome::Run(choice.clone()),
                        None => Outcome::Close,
                    }
                }
                KeyCode::Down | KeyCode::Tab => {
                    p.selected = (p.selected + 1).min(p.candidates().len().saturating_sub(1));
                    Outcome::Keep
                }
                KeyCode::Up | KeyCode::BackTab => {
                    p.selected = p.selected.saturating_sub(1);
                    Outcome::Keep
                }
                _ => {
                    if edit_line(&mut p.input, k) {
                        p.selected = 0;
                    }
                    Outcome::Keep
                }
            },
            Overlay::Confirm(c) => match (&c.word, k.code) {
                (_, KeyCode::Esc) => Outcome::Close,
                (None, KeyCode::Char('y' | 'Y')) => Outcome::Answer(c.owner, c.tag.clone(), Answer::Yes),
                (None, KeyCode::Char('n' | 'N')) => Outcome::Close,
                (None, _) => Outcome::Keep,
                (Some(word), KeyCode::Enter) => {
                    if c.typed.trim() == word {
                        Outcome::Answer(c.owner, c.tag.clone(), Answer::Yes)
                    } else {
                        Outcome::Keep
                    }
                }
                (Some(_), _) => {
                    edit_line(&mut c.typed, k);
                    Outcome::Keep
                }
            },
            Overlay::Picker(p) => match k.code {
                KeyCode::Esc => Outcome::Close,
                KeyCode::Enter => match p.visible().get(p.selected) {
                    Some(item) => Outcome::Answer(p.owner, p.tag.clone(), Answer::Picked((*item).clone())),
                    // Nothing matches: what was typed is the answer (a path).
                    None if !p.filter.trim().is_empty() => {
                        Outcome::Answer(p.owner, p.tag.clone(), Answer::Text(p.filter.trim().to_string()))
                    }
                    None => Outcome::Keep,
                },
                KeyCode::Down => {
                    p.selected = (p.selected + 1).min(p.visible().len().saturating_sub(1));
                    Outcome::Keep
                }
                KeyCode::Char('n') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    p.selected = (p.selected + 1).min(p.visible().len().saturating_sub(1));
                    Outcome::Keep
                }
                KeyCode::Up => {
                    p.selected = p.selected.saturating_sub(1);
                    Outcome::Keep
                }
                KeyCode::Char('p') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    p.selected = p.selected.saturating_sub(1);
                    Outcome::Keep
                }
                KeyCode::PageDown => {
                    p.selected = (p.selected + 10).min(p.visible().len().saturating_sub(1));
                    Outcome::Keep
                }
                KeyCode::PageUp => {
                    p.selected = p.selected.saturating_sub(10);
                    Outcome::Keep
                }
                _ => {
                    if edit_line(&mut p.filter, k) {
                        p.selected = 0;
                    }
                    Outcome::Keep
                }
            },
            Overlay::Choose(c) => c.on_key(k),
            Overlay::Input(i) => match k.code {
                KeyCode::Esc => Outcome::Close,
                KeyCode::Enter => match i.accept.check(&i.value) {
                    Ok(()) => Outcome::Answer(i.owner, i.tag.clone(), Answer::Text(i.value.trim().to_string())),
                    Err(e) => {
                        i.error = Some(e);
                        Outcome::Keep
                    }
                },
                _ => {
                    if edit_line(&mut i.value, k) {
                        i.error = None;
                    }
                    Outcome::Keep
                }
            },
            Overlay::Describe(d) => match k.code {
                KeyCode::Down | KeyCode::Char('j') => {
                    d.scroll = d.scroll.saturating_add(1);
                    Outcome::Keep
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    d.scroll = d.scroll.saturating_sub(1);
                    Outcome::Keep
                }
                KeyCode::PageDown => {
                    d.scroll = d.scroll.saturating_add(10);
                    Outcome::Keep
                }
                KeyCode::PageUp => {
                    d.scroll = d.scroll.saturating_sub(10);
                    Outcome::Keep
                }
                _ => Outcome::Close,
            },
        }
    }
}

/// A confirmation before an action, at the level the action table gives it
/// ([`action::confirm_level`]): none, y/n, or `word` typed. `escalate`:
/// this use is bulk or cannot be undone (y/n becomes the typed word).
pub struct Ask {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    pub lines: Vec<String>,
    pub word: String,
    pub escalate: bool,
}

/// The overlay that confirms `action` as `ask` says; `None` when the action
/// needs no confirmation (the caller goes ahead).
pub fn confirm(action: Action, ask: Ask) -> Option<Overlay> {
    let Ask {
        owner,
        tag,
        title,
        lines,
        word,
        escalate,
    } = ask;
    match action::confirm_level(action, escalate) {
        Confirm::No => None,
        Confirm::YesNo => Some(yes_no(owner, tag, title, lines)),
        Confirm::Typed => Some(typed(owner, tag, title, lines, word)),
    }
}

/// A y/n confirmation.
pub fn yes_no(owner: ViewId, tag: Tag, title: impl Into<String>, lines: Vec<String>) -> Overlay {
    Overlay::Confirm(ConfirmBox {
        owner,
        tag,
        title: title.into(),
        lines,
        word: None,
        typed: String::new(),
        danger: false,
    })
}

/// A confirmation that needs `word` typed.
pub fn typed(
    owner: ViewId,
    tag: Tag,
    title: impl Into<String>,
    lines: Vec<String>,
    word: impl Into<String>,
) -> Overlay {
    Overlay::Confirm(ConfirmBox {
        owner,
        tag,
        title: title.into(),
        lines,
        word: Some(word.into()),
        typed: String::new(),
        danger: true,
    })
}

pub fn picker(owner: ViewId, tag: Tag, title: impl Into<String>, items: Vec<String>) -> Overlay {
    Overlay::Picker(Picker {
        owner,
        tag,
        title: title.into(),
        items,
        filter: String::new(),
        selected: 0,
    })
}

pub fn input(
    owner: ViewId,
    tag: Tag,
    title: impl Into<String>,
    prompt: impl Into<String>,
    value: impl Into<String>,
    accept: Accept,
) -> Overlay {
    Overlay::Input(InputBox {
        owner,
        tag,
        title: title.into(),
        prompt: prompt.into(),
        value: value.into(),
        accept,
        error: None,
    })
}

/// The describe popup.
pub fn describe(title: impl Into<String>, fields: Vec<(String, String)>) -> Overlay {
    Overlay::Describe(Describe {
        title: title.into(),
        fields,
        scroll: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn typed_confirmation_needs_the_exact_word() {
        let mut o = typed(ViewId::Limbo, Tag::Quit, "t", vec![], "purge");
        assert!(matches!(o.on_key(&key(KeyCode::Char('y'))), Outcome::Keep));
        assert!(matches!(o.on_key(&key(KeyCode::Enter)), Outcome::Keep));
        let Overlay::Confirm(c) = &mut o else { unreachable!() };
        c.typed = "purge".into();
        assert!(matches!(
            o.on_key(&key(KeyCode::Enter)),
            Outcome::Answer(_, Tag::Quit, Answer::Yes)
        ));
    }

    #[test]
    fn palette_finds_views_and_actions() {
        let p = Palette {
            input: "lim".into(),
            selected: 0,
            view: ViewId::Users,
            read_only: false,
        };
        assert_eq!(p.candidates()[0].2, Choice::View(ViewId::Limbo));
        let p = Palette {
            input: "restore".into(),
            selected: 0,
            view: ViewId::Limbo,
            read_only: true,
        };
        assert!(p.candidates().is_empty(), "read-only hides restore from the palette");
    }

    #[test]
    fn palette_reaches_every_views_actions_current_first() {
        let p = Palette {
            input: "restore".into(),
            selected: 0,
            view: ViewId::Dashboard,
            read_only: false,
        };
        assert_eq!(
            p.candidates()[0].2,
            Choice::In(ViewId::Limbo, Action::Restore),
            "{:?}",
            p.candidates()
        );
        let p = Palette {
            input: "re".into(),
            selected: 0,
            view: ViewId::Trash,
            read_only: false,
        };
        let c = p.candidates();
        assert_eq!(c[0].0, "requeue", "the current view's action first: {c:?}");
        assert!(
            c.iter()
                .any(|(n, _, ch)| n == "restore" && *ch == Choice::In(ViewId::Limbo, Action::Restore))
        );
    }

    #[test]
    fn inputs_keep_open_until_the_value_is_right() {
        let mut o = input(ViewId::Limbo, Tag::Quit, "t", "days", "", Accept::Days);
        for c in "3x".chars() {
            o.on_key(&key(KeyCode::Char(c)));
        }
        assert!(matches!(o.on_key(&key(KeyCode::Enter)), Outcome::Keep));
        let Overlay::Input(i) = &o else { unreachable!() };
        assert!(i.error.as_deref().is_some_and(|e| e.contains("'3x'")), "{:?}", i.error);
        o.on_key(&key(KeyCode::Backspace));
        assert!(matches!(
            o.on_key(&key(KeyCode::Enter)),
            Outcome::Answer(_, Tag::Quit, Answer::Text(t)) if t == "3"
        ));
    }
}
