//! The one table of admin actions: key, palette command, help text, whether
//! it changes data (destructive) and how it is confirmed, and the views it
//! applies to. Key dispatch (through [`super::keymap`], which lets
//! `keys.toml` rebind keys), the footer hints, the help overlay (`?`), the
//! `:` palette, the confirmation level ([`confirm_level`]) and read-only
//! mode are all derived from [`ACTIONS`]; nothing else binds keys.
//! Destructive actions are hidden *and* refused in read-only mode (and the
//! engine refuses them too).

use super::ids::ViewId;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything an admin can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Palette,
    Filter,
    Back,
    Refresh,
    NextView,
    PrevView,
    Goto(ViewId),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Scroll the columns sideways.
    Left,
    Right,
    Open,
    SortNext,
    SortReverse,
    /// Every field of the selected row, full text (users: the detail pane).
    Describe,
    StateFilter,
    Restore,
    Extend,
    PurgeUser,
    NewImport,
    PurgeDue,
    CancelJob,
    /// Jobs view: between the jobs table and the runs table.
    Focus,
    NextPane,
    LevelNext,
    Follow,
    Pause,
    Resume,
    Drain,
    Select,
    SelectAll,
    Requeue,
    DeleteTrash,
    Fold,
    FoldAll,
    ScheduleSync,
    AddSchool,
    RemoveSchool,
    RunVerify,
    FixAll,
    FixSelected,
    /// Queue items: send the item at the next round, not after its back-off.
    RetryNow,
    /// Queue items: give up on the item (into the trash).
    ToTrash,
    /// Queue items: schedule the object afresh (attempts start over).
    Afresh,
    /// Ctrl-Z: back to the shell; `fg` returns.
    Suspend,
}

/// How an action is confirmed, scaled to its danger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Harmless or reversible by the same means.
    No,
    /// One object, reversible: `y`/`n`.
    YesNo,
    /// Bulk or irreversible: the admin types a word (a name, or the verb).
    Typed,
}

/// Where an action applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Views(&'static [ViewId]),
}

/// A key: code plus modifiers (shift is folded into the character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

impl Key {
    /// Whether a key event is this key (shift only matters for non-chars).
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let mods = if matches!(ev.code, KeyCode::Char(_)) {
            ev.modifiers - KeyModifiers::SHIFT
        } else {
            ev.modifiers
        };
        ev.code == self.code && mods == self.mods
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("^{base}")
        } else {
            base
        }
    }
}

/// One row of the action table.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub action: Action,
    pub keys: &'static [Key],
    /// The `:` palette command.
    pub command: &'static str,
    pub help: &'static str,
    /// Changes data: hidden and refused in read-only mode.
    pub destructive: bool,
    pub confirm: Confirm,
    pub scope: Scope,
    /// Shown in the footer hints.
    pub hint: bool,
}

use ViewId::{Dashboard, Jobs, Limbo, Log, Queues, Schools, SyncSchools, Trash, Users, Verify};

const TABLES: &[ViewId] = &[Schools, Users, Limbo, Queues, Trash, Jobs, Log, Verify, SyncSchools];

const fn spec(action: Action, keys: &'static [Key], command: &'static str, help: &'static str) -> ActionSpec {
    ActionSpec {
        action,
        keys,
        command,
        help,
        destructive: false,
        confirm: Confirm::No,
        scope: Scope::Global,
        hint: false,
    }
}

const fn hinted(mut s: ActionSpec) -> ActionSpec {
    s.hint = true;
    s
}

const fn only(mut s: ActionSpec, views: &'static [ViewId]) -> ActionSpec {
    s.scope = Scope::Views(views);
    s
}

const fn danger(mut s: ActionSpec, confirm: Confirm) -> ActionSpec {
    s.destructive = true;
    s.confirm = confirm;
    s
}

/// Every action. View-scoped entries come first so they win over global
/// ones bound to the same key.
pub const ACTIONS: &[ActionSpec] = &[
    // Users and limbo
    hinted(danger(
        only(
            spec(
                Action::Restore,
                &[k('r')],
                "restore",
                "restore the selected limbo user into a school",
            ),
            &[Limbo, Users],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::Extend,
                &[k('e')],
                "extend",
                "move the selected limbo user's purge date later",
            ),
            &[Limbo],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::PurgeUser,
                &[k('x')],
                "purge-user",
                "delete the selected limbo user now (type its name)",
            ),
            &[Limbo],
        ),
        Confirm::Typed,
    )),
    hinted(only(
        spec(Action::SortNext, &[k('s')], "sort", "sort by the next column"),
        &[Users, Limbo, Schools],
    )),
    only(
        spec(Action::SortReverse, &[k('S')], "reverse", "reverse the sort order"),
        &[Users, Limbo, Schools],
    ),
    hinted(only(
        spec(
            Action::Describe,
            &[k('d')],
            "describe",
            "every field of the selected row, full text (users: the detail pane)",
        ),
        TABLES,
    )),
    hinted(only(
        spec(
            Action::StateFilter,
            &[k('t')],
            "state",
            "cycle the state filter: all, active, limbo",
        ),
        &[Users],
    )),
    hinted(danger(
        only(
            spec(
                Action::ScheduleSync,
                &[k('y')],
                "schedule-sync",
                "queue the selected user (and its groups) for every active authority",
            ),
            &[Users],
        ),
        Confirm::YesNo,
    )),
    // Queues
    hinted(danger(
        only(
            spec(
                Action::Pause,
                &[k('p')],
                "pause",
                "pause the selected authority: nothing is sent until it is resumed",
            ),
            &[Queues],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::Resume,
                &[k('u')],
                "resume",
                "resume the selected authority (paused by an admin or unreachable)",
            ),
            &[Queues],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::Drain,
                &[k('n')],
                "drain",
                "sync now: drain an authority's queue once as a job (queues: the selected one)",
            ),
            &[Queues, Jobs],
        ),
        Confirm::No,
    )),
    danger(
        only(
            spec(
                Action::RetryNow,
                &[k('r')],
                "retry-now",
                "queue items: send the selected item at the next round instead of after its back-off",
            ),
            &[Queues],
        ),
        Confirm::No,
    ),
    danger(
        only(
            spec(
                Action::ToTrash,
                &[k('x')],
                "to-trash",
                "queue items: give up on the selected item, into the trash (y/n)",
            ),
            &[Queues],
        ),
        Confirm::YesNo,
    ),
    danger(
        only(
            spec(
                Action::Afresh,
                &[k('a')],
                "afresh",
                "queue items: schedule the object afresh, attempts start over (y/n)",
            ),
            &[Queues],
        ),
        Confirm::YesNo,
    ),
    // Verify
    hinted(only(
        spec(
            Action::RunVerify,
            &[k('v')],
            "run-verify",
            "verify an authority: pick it, the objects and a filter; runs as a job",
        ),
        &[Verify],
    )),
    hinted(danger(
        only(
            spec(
                Action::FixAll,
                &[k('f')],
                "fix",
                "fix every difference of the last verify (type the word)",
            ),
            &[Verify],
        ),
        Confirm::Typed,
    )),
    hinted(danger(
        only(
            spec(
                Action::FixSelected,
                &[k('F')],
                "fix-selected",
                "fix only the marked differences (Space marks; y/n, deleting: type the word)",
            ),
            &[Verify],
        ),
        Confirm::YesNo,
    )),
    // Sync schools
    hinted(danger(
        only(
            spec(
                Action::AddSchool,
                &[k('a')],
                "assign",
                "add schools to the selected authority (Space marks; initial sync, force; y/n)",
            ),
            &[SyncSchools],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::RemoveSchool,
                &[k('x')],
                "unassign",
                "remove schools (Space marks; force; y/n, delete on target: type the word)",
            ),
            &[SyncSchools],
        ),
        Confirm::YesNo,
    )),
    // Trash
    hinted(danger(
        only(
            spec(
                Action::Requeue,
                &[k('r')],
                "requeue",
                "requeue the item(s): schedule the object afresh (y/n; several: type the word)",
            ),
            &[Trash],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::DeleteTrash,
                &[k('x')],
                "delete",
                "delete the item(s) from the trash (y/n; several: type the word)",
            ),
            &[Trash],
        ),
        Confirm::YesNo,
    )),
    hinted(only(
        spec(
            Action::Select,
            &[k(' ')],
            "select",
            "select or unselect the item for a bulk action",
        ),
        &[Trash, Verify],
    )),
    only(
        spec(
            Action::SelectAll,
            &[k('a')],
            "select-all",
            "select every item shown, or clear the selection",
        ),
        &[Trash, Verify],
    ),
    only(
        spec(
            Action::Fold,
            &[k('z')],
            "fold",
            "inspector: fold or unfold the object or array at the cursor",
        ),
        &[Trash],
    ),
    only(
        spec(
            Action::FoldAll,
            &[k('Z')],
            "fold-all",
            "inspector: fold every nested object, or unfold all",
        ),
        &[Trash],
    ),
    // Jobs and runs
    hinted(danger(
        only(
            spec(
                Action::NewImport,
                &[k('i')],
                "import",
                "start an import: school, role, feed; dry run, then confirm",
            ),
            &[Jobs, Dashboard],
        ),
        Confirm::YesNo,
    )),
    hinted(danger(
        only(
            spec(
                Action::PurgeDue,
                &[k('p')],
                "purge",
                "purge the limbo users whose date has come (dry run, then type 'purge')",
            ),
            &[Jobs, Limbo, Dashboard],
        ),
        Confirm::Typed,
    )),
    hinted(danger(
        only(
            spec(
                Action::CancelJob,
                &[k('c')],
                "cancel",
                "cancel the selected running job (verify: the running verify)",
            ),
            &[Jobs, Verify],
        ),
        Confirm::No,
    )),
    hinted(only(
        spec(
            Action::Focus,
            &[k('w')],
            "focus",
            "switch between the jobs table and the runs table",
        ),
        &[Jobs],
    )),
    hinted(only(
        spec(
            Action::NextPane,
            &[k('v')],
            "pane",
            "cycle the detail: run summary/log/input; user info/sync/history/authorities",
        ),
        &[Jobs, Users],
    )),
    // Log
    hinted(only(
        spec(Action::LevelNext, &[k('l')], "level", "cycle the minimum log level"),
        &[Log],
    )),
    hinted(only(
        spec(Action::Follow, &[k('f')], "follow", "follow the end of the log"),
        &[Log],
    )),
    // Navigation
    only(spec(Action::Up, &[code(KeyCode::Up), k('k')], "up", "move up"), TABLES),
    only(
        spec(Action::Down, &[code(KeyCode::Down), k('j')], "down", "move down"),
        TABLES,
    ),
    only(
        spec(
            Action::PageUp,
            &[code(KeyCode::PageUp), ctrl('b')],
            "page-up",
            "one page up",
        ),
        TABLES,
    ),
    only(
        spec(
            Action::PageDown,
            &[code(KeyCode::PageDown), ctrl('f')],
            "page-down",
            "one page down",
        ),
        TABLES,
    ),
    only(
        spec(Action::Top, &[code(KeyCode::Home), k('g')], "top", "first row"),
        TABLES,
    ),
    only(
        spec(Action::Bottom, &[code(KeyCode::End), k('G')], "bottom", "last row"),
        TABLES,
    ),
    only(
        spec(Action::Left, &[code(KeyCode::Left)], "left", "scroll the columns left"),
        TABLES,
    ),
    only(
        spec(
            Action::Right,
            &[code(KeyCode::Right)],
            "right",
            "scroll the columns right (when some do not fit)",
        ),
        TABLES,
    ),
    hinted(only(
        spec(
            Action::Open,
            &[code(KeyCode::Enter)],
            "open",
            "open the selected row (queues: the authority's waiting items)",
        ),
        &[Schools, Users, Queues, Trash, Jobs],
    )),
    // Global
    hinted(spec(
        Action::Filter,
        &[k('/')],
        "filter",
        "filter the current view (Enter keeps, Esc clears)",
    )),
    hinted(spec(
        Action::Palette,
        &[k(':')],
        "command",
        "command palette: jump to a view or run an action",
    )),
    hinted(spec(Action::Help, &[k('?')], "help", "show every key of this view")),
    spec(
        Action::Back,
        &[code(KeyCode::Esc)],
        "back",
        "close, clear the filter or go back",
    ),
    spec(
        Action::Refresh,
        &[ctrl('r'), code(KeyCode::F(5))],
        "refresh",
        "reload the current view",
    ),
    spec(Action::NextView, &[code(KeyCode::Tab)], "next", "next view"),
    spec(Action::PrevView, &[code(KeyCode::BackTab)], "prev", "previous view"),
    spec(Action::Goto(Dashboard), &[k('1')], "dashboard", "go to the dashboard"),
    spec(Action::Goto(Schools), &[k('2')], "schools", "go to schools"),
    spec(Action::Goto(Users), &[k('3')], "users", "go to users"),
    spec(Action::Goto(Limbo), &[k('4')], "limbo", "go to limbo"),
    spec(Action::Goto(Queues), &[k('5')], "queues", "go to the queues"),
    spec(Action::Goto(Trash), &[k('6')], "trash", "go to the trash"),
    spec(Action::Goto(Jobs), &[k('7')], "jobs", "go to jobs and runs"),
    spec(Action::Goto(Log), &[k('8')], "log", "go to the log"),
    spec(Action::Goto(Verify), &[k('9')], "verify", "go to verify"),
    spec(
        Action::Goto(SyncSchools),
        &[k('0')],
        "sync-schools",
        "go to the schools each authority syncs",
    ),
    spec(
        Action::Suspend,
        &[ctrl('z')],
        "suspend",
        "suspend the console to the shell (fg brings it back)",
    ),
    hinted(spec(
        Action::Quit,
        &[k('q'), ctrl('c')],
        "quit",
        "quit (asks first while jobs run)",
    )),
];

impl ActionSpec {
    pub fn applies_to(&self, view: ViewId) -> bool {
        match self.scope {
            Scope::Global => true,
            Scope::Views(vs) => vs.contains(&view),
        }
    }

    /// Offered at all: read-only mode removes destructive actions.
    pub fn available(&self, read_only: bool) -> bool {
        !(read_only && self.destructive)
    }

    /// The view an action runs in when asked for from elsewhere (the `:`
    /// palette): the first of its views; `None` for global actions.
    pub fn home(&self) -> Option<ViewId> {
        match self.scope {
            Scope::Global => None,
            Scope::Views(vs) => vs.first().copied(),
        }
    }
}

/// The table entry of an action.
pub fn spec_of(action: Action) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|s| s.action == action)
}

/// The actions offered in a view (help, palette), table order.
pub fn offered(view: ViewId, read_only: bool) -> impl Iterator<Item = &'static ActionSpec> {
    ACTIONS
        .iter()
        .filter(move |s| s.applies_to(view) && s.available(read_only))
}

/// How many actions of a view read-only mode hides.
pub fn hidden_by_read_only(view: ViewId) -> usize {
    ACTIONS.iter().filter(|s| s.applies_to(view) && s.destructive).count()
}

/// How an action is confirmed this time: the table's level, raised from
/// y/n to a typed word when this use is bulk or cannot be undone
/// (`escalate`). The one place the level is decided.
pub fn confirm_level(action: Action, escalate: bool) -> Confirm {
    match spec_of(action).map(|s| s.confirm) {
        Some(Confirm::YesNo) if escalate => Confirm::Typed,
        Some(c) => c,
        None => Confirm::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_keys_and_a_unique_command() {
        let mut commands: Vec<&str> = ACTIONS.iter().map(|s| s.command).collect();
        commands.sort_unstable();
        let n = commands.len();
        commands.dedup();
        assert_eq!(commands.len(), n, "duplicate palette commands");
        assert!(ACTIONS.iter().all(|s| !s.keys.is_empty() && !s.help.is_empty()));
    }

    #[test]
    fn no_key_means_two_things_in_one_view() {
        for view in ViewId::ALL {
            let specs: Vec<_> = ACTIONS.iter().filter(|s| s.applies_to(view)).collect();
            for (i, a) in specs.iter().enumerate() {
                for b in &specs[i + 1..] {
                    for ka in a.keys {
                        assert!(
                            !b.keys.contains(ka),
                            "{view:?}: {} bound to {:?} and {:?}",
                            ka.label(),
                            a.action,
                            b.action
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn confirmation_levels_come_from_the_table() {
        assert_eq!(confirm_level(Action::Restore, false), Confirm::YesNo);
        assert_eq!(confirm_level(Action::Requeue, true), Confirm::Typed, "bulk: typed");
        assert_eq!(confirm_level(Action::PurgeUser, false), Confirm::Typed);
        assert_eq!(confirm_level(Action::Drain, true), Confirm::No);
        assert_eq!(spec_of(Action::Restore).and_then(|s| s.home()), Some(ViewId::Limbo));
    }
}
