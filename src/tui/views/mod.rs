//! The console's views and what they share: the [`View`] trait, the
//! context a view acts through ([`Ctx`]: queue engine requests, ask for an
//! overlay, jump elsewhere) and the one it renders with ([`RenderCtx`]).
//!
//! Views slot in by id: a view is a [`ViewId`] (its place in the tab bar,
//! its number key and `:` name), a [`View`] in [`all`], and its rows in the
//! action table.

pub mod dashboard;
mod holdings;
mod inspector;
pub mod jobs;
mod jobs_render;
pub mod limbo;
pub mod log;
pub mod queues;
pub mod schools;
pub mod sync_schools;
pub mod trash;
pub mod users;
mod users_render;
pub mod verify;

use super::action::Action;
use super::clock::Clock;
use super::jobboard::JobBoard;
use super::overlay::{Answer, Overlay, Tag};
use super::request::{Call, Data, Request};
use super::theme::Theme;
use crate::engine::api::{ApiInfo, EngineEvent};
use ratatui::Frame;
use ratatui::layout::Rect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewId {
    Dashboard,
    Schools,
    Users,
    Limbo,
    Queues,
    Trash,
    Jobs,
    Log,
    Verify,
    SyncSchools,
}

impl ViewId {
    /// Tab and number-key order (1…9, then 0).
    pub const ALL: [ViewId; 10] = [
        ViewId::Dashboard,
        ViewId::Schools,
        ViewId::Users,
        ViewId::Limbo,
        ViewId::Queues,
        ViewId::Trash,
        ViewId::Jobs,
        ViewId::Log,
        ViewId::Verify,
        ViewId::SyncSchools,
    ];

    /// The `:` command that jumps here (also the screenshot name).
    pub fn name(self) -> &'static str {
        match self {
            ViewId::Dashboard => "dashboard",
            ViewId::Schools => "schools",
            ViewId::Users => "users",
            ViewId::Limbo => "limbo",
            ViewId::Queues => "queues",
            ViewId::Trash => "trash",
            ViewId::Jobs => "jobs",
            ViewId::Log => "log",
            ViewId::Verify => "verify",
            ViewId::SyncSchools => "sync-schools",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ViewId::Dashboard => "Dashboard",
            ViewId::Schools => "Schools",
            ViewId::Users => "Users",
            ViewId::Limbo => "Limbo",
            ViewId::Queues => "Queues",
            ViewId::Trash => "Trash",
            ViewId::Jobs => "Jobs & runs",
            ViewId::Log => "Log",
            ViewId::Verify => "Verify",
            ViewId::SyncSchools => "Sync schools",
        }
    }

    /// Other words the palette accepts for this view.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            ViewId::Dashboard => &["home", "overview"],
            ViewId::Jobs => &["runs", "import"],
            ViewId::Log => &["logs"],
            ViewId::SyncSchools => &["assign", "sync schools"],
            ViewId::Queues => &["sync", "authorities"],
            _ => &[],
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The number key that jumps here (`1`…`9`, then `0`).
    pub fn key(self) -> char {
        char::from(b'0' + ((self.index() + 1) % 10) as u8)
    }
}

/// A message for the footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Ok,
    Warn,
    Error,
}

/// Where to point a view when jumping to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nav {
    /// Users of one school.
    School(String),
}

/// What a view asks the console to do besides engine requests.
#[derive(Debug)]
pub enum Effect {
    Goto(ViewId),
    /// Go to a view and point it somewhere.
    Navigate(ViewId, Nav),
    Overlay(Overlay),
    Status(Level, String),
    /// Hand an action to another view (and go there).
    Forward(ViewId, Action),
}

/// What a view acts through.
pub struct Ctx<'a> {
    pub requests: &'a mut Vec<Request>,
    pub effects: &'a mut Vec<Effect>,
    pub info: &'a ApiInfo,
    pub clock: &'a Clock,
    pub jobs: &'a JobBoard,
}

impl Ctx<'_> {
    pub fn ask(&mut self, to: ViewId, call: Call) {
        self.requests.push(Request { to, call });
    }

    pub fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    pub fn status(&mut self, level: Level, text: impl Into<String>) {
        self.effects.push(Effect::Status(level, text.into()));
    }

    pub fn overlay(&mut self, o: Overlay) {
        self.effects.push(Effect::Overlay(o));
    }
}

/// What a view renders with.
pub struct RenderCtx<'a> {
    pub theme: &'a Theme,
    pub clock: &'a Clock,
    pub info: &'a ApiInfo,
    pub jobs: &'a JobBoard,
}

/// One screen of the console.
pub trait View {
    fn id(&self) -> ViewId;
    /// (Re)loads what the view shows: on first visit, refresh and when the
    /// engine reports changed data.
    fn load(&mut self, ctx: &mut Ctx);
    /// Handles an action from the table; `false`: not for this view.
    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool;
    /// An engine answer to one of this view's requests.
    fn on_reply(&mut self, call: &'static str, result: Result<Data, String>, ctx: &mut Ctx);
    /// The admin answered an overlay this view opened.
    fn on_answer(&mut self, _tag: Tag, _answer: Answer, _ctx: &mut Ctx) {}
    fn on_event(&mut self, _event: &EngineEvent, _ctx: &mut Ctx) {}
    /// After every batch of events: request whatever the screen now needs
    /// (a virtualised table's missing rows).
    fn poll(&mut self, _ctx: &mut Ctx) {}
    fn on_tick(&mut self, _ctx: &mut Ctx) {}
    /// Another view sent the admin here with a target.
    fn navigate(&mut self, _nav: Nav, _ctx: &mut Ctx) {}
    fn filter(&self) -> &str;
    fn set_filter(&mut self, text: String, ctx: &mut Ctx);
    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx);
}

/// What a table's bottom border says instead of its position: the error of
/// the last load (clipped to `width`), "loading…" before the first answer,
/// or `empty` when there are no rows. `None`: the table has rows to show.
pub fn table_note(
    error: Option<&str>,
    loading: bool,
    empty: Option<&str>,
    width: u16,
    theme: &Theme,
) -> Option<ratatui::text::Line<'static>> {
    use super::theme::Slot;
    use ratatui::text::{Line, Span};
    let (text, slot) = match (error, loading, empty) {
        (Some(e), _, _) => (super::widgets::clip(e, (width as usize).saturating_sub(4)), Slot::Error),
        (None, true, _) => ("loading…".to_string(), Slot::Dim),
        (None, false, Some(msg)) => (msg.to_string(), Slot::Dim),
        (None, false, None) => return None,
    };
    Some(Line::from(Span::styled(format!(" {text} "), theme.get(slot))))
}

/// Every view, in [`ViewId`] order.
/// Appends the active `/filter` to a panel title (` · /text`), as every
/// filtered view shows it.
pub fn push_filter(title: &mut String, filter: &str) {
    if !filter.is_empty() {
        title.push_str(" · /");
        title.push_str(filter);
    }
}

pub fn all() -> Vec<Box<dyn View>> {
    vec![
        Box::new(dashboard::Dashboard::default()),
        Box::new(schools::Schools::default()),
        Box::new(users::Users::new(ViewId::Users)),
        Box::new(limbo::Limbo::default()),
        Box::new(queues::Queues::default()),
        Box::new(trash::Trash::default()),
        Box::new(jobs::Jobs::default()),
        Box::new(log::Log::default()),
        Box::new(verify::Verify::default()),
        Box::new(sync_schools::SyncSchools::default()),
    ]
}
