//! Modal overlays: help, the `:` palette, confirmations scaled to danger
//! (y/n, or a typed word for bulk and irreversible actions), pickers and
//! one-line inputs. An overlay that gets an answer hands it, with the
//! [`Tag`] its owner gave it, back to the view that opened it.

use super::action::{self, Action};
use super::views::ViewId;
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

#[derive(Clone, Debug)]
pub struct InputBox {
    pub owner: ViewId,
    pub tag: Tag,
    pub title: String,
    pub prompt: String,
    pub value: String,
}

/// One palette entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    View(ViewId),
    Action(Action),
}

#[derive(Clone, Debug)]
pub struct Palette {
    pub input: String,
    pub selected: usize,
    pub view: ViewId,
    pub read_only: bool,
}

impl Palette {
    /// Views and the actions offered in the current view whose name
    /// contains the input, prefix matches first.
    pub fn candidates(&self) -> Vec<(String, String, Choice)> {
        let q = self.input.trim().to_lowercase();
        let mut out: Vec<(bool, String, String, Choice)> = Vec::new();
        for v in ViewId::ALL {
            let names = std::iter::once(v.name()).chain(v.aliases().iter().copied());
            if let Some(n) = names
                .clone()
                .find(|n| n.starts_with(&q))
                .or_else(|| names.clone().find(|n| n.contains(&q)))
            {
                out.push((
                    n.starts_with(&q),
                    v.name().to_string(),
                    format!("go to {}", v.title()),
                    Choice::View(v),
                ));
            }
        }
        for s in action::offered(self.view, self.read_only) {
            if matches!(s.action, Action::Goto(_) | Action::Palette) {
                continue;
            }
            let hit = s.command.contains(&q) || (q == "q" && s.action == Action::Quit);
            if hit {
                let prefix = s.command.starts_with(&q) || q == "q";
                out.push((
                    prefix,
                    s.command.to_string(),
                    s.help.to_string(),
                    Choice::Action(s.action),
                ));
            }
        }
        out.sort_by_key(|(prefix, ..)| !*prefix);
        out.into_iter().map(|(_, a, b, c)| (a, b, c)).collect()
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
                KeyCode::Up => {
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
                KeyCode::Enter => Outcome::Answer(i.owner, i.tag.clone(), Answer::Text(i.value.clone())),
                _ => {
                    edit_line(&mut i.value, k);
                    Outcome::Keep
                }
            },
        }
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
) -> Overlay {
    Overlay::Input(InputBox {
        owner,
        tag,
        title: title.into(),
        prompt: prompt.into(),
        value: value.into(),
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
}
