//! The console's views and what they share: the [`View`] trait, the
//! context a view acts through ([`Ctx`]: queue engine requests, ask for an
//! overlay or a confirmation, jump elsewhere) and the one it renders with
//! ([`RenderCtx`]).
//!
//! Views slot in by id: a view is a [`ViewId`] (its place in the tab bar,
//! its number key and `:` name), a [`View`] in [`all`], and its rows in the
//! action table. Every table in them is the one [`crate::tui::table`]
//! component.

pub mod dashboard;
mod holdings;
mod inspector;
pub mod jobs;
mod jobs_render;
pub mod limbo;
pub mod log;
mod queue_items;
pub mod queues;
pub mod schools;
pub mod sync_schools;
pub mod trash;
pub mod users;
mod users_render;
pub mod verify;

use super::action::Action;
use super::clock::Clock;
pub use super::ids::{Level, Nav, ViewId};
use super::jobboard::JobBoard;
use super::overlay::{Answer, Ask, Overlay, Tag};
use super::request::{Call, Data, Request};
use super::theme::Theme;
use crate::engine::api::{ApiInfo, EngineEvent};
use ratatui::Frame;
use ratatui::layout::Rect;

/// What a view asks the console to do besides engine requests.
#[derive(Debug)]
pub enum Effect {
    Goto(ViewId),
    /// Go to a view and point it somewhere.
    Navigate(ViewId, Nav),
    Overlay(Overlay),
    Status(Level, String),
    /// Hand an action to another view (and go there); it runs once that
    /// view has its data.
    Forward(ViewId, Action),
    /// An answer without asking (an action that needs no confirmation).
    Answer(ViewId, Tag, Answer),
}

/// What kinds of data a view shows: it reloads when another process (or
/// this one) changes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    pub directory: bool,
    pub queues: bool,
    pub runs: bool,
    pub state: bool,
}

impl Watch {
    pub const NONE: Watch = Watch {
        directory: false,
        queues: false,
        runs: false,
        state: false,
    };

    pub fn overlaps(&self, other: &Watch) -> bool {
        (self.directory && other.directory)
            || (self.queues && other.queues)
            || (self.runs && other.runs)
            || (self.state && other.state)
    }
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

    /// Confirms `action` at the level the action table gives it; an action
    /// that needs none is answered `Yes` at once.
    pub fn confirm(&mut self, action: Action, ask: Ask) {
        let (owner, tag) = (ask.owner, ask.tag.clone());
        match super::overlay::confirm(action, ask) {
            Some(o) => self.overlay(o),
            None => self.effects.push(Effect::Answer(owner, tag, Answer::Yes)),
        }
    }

    /// The describe popup for a row.
    pub fn describe(&mut self, title: impl Into<String>, fields: Vec<(String, String)>) {
        self.overlay(super::overlay::describe(title, fields));
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
    /// (Re)loads what the view shows: on first visit, refresh, and when the
    /// data it watches changed. Keeps the cursor on its object.
    fn load(&mut self, ctx: &mut Ctx);
    /// Has its data (an action forwarded here waits until then).
    fn ready(&self) -> bool {
        true
    }
    /// What the view shows, for live reloads.
    fn watches(&self) -> Watch {
        Watch::NONE
    }
    /// Handles an action from the table; `false`: not for this view.
    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool;
    /// An engine answer to one of this view's requests.
    fn on_reply(&mut self, call: Call, result: Result<Data, String>, ctx: &mut Ctx);
    /// The admin answered an overlay this view opened.
    fn on_answer(&mut self, _tag: Tag, _answer: Answer, _ctx: &mut Ctx) {}
    fn on_event(&mut self, _event: &EngineEvent, _ctx: &mut Ctx) {}
    /// After every batch of events: request whatever the screen now needs
    /// (a virtualised table's missing rows).
    fn poll(&mut self, _ctx: &mut Ctx) {}
    fn on_tick(&mut self, _ctx: &mut Ctx) {}
    /// Another view sent the admin here with a target.
    fn navigate(&mut self, _nav: Nav, _ctx: &mut Ctx) {}
    /// A mouse click at a screen position inside the view: `true` when it
    /// selected something (a second click on the selected row opens it).
    fn click(&mut self, _x: u16, _y: u16, _ctx: &mut Ctx) -> bool {
        false
    }
    fn filter(&self) -> &str;
    fn set_filter(&mut self, text: String, ctx: &mut Ctx);
    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx);
}

/// Appends the active `/filter` to a panel title (` · /text`), as every
/// filtered view shows it.
pub fn push_filter(title: &mut String, filter: &str) {
    if !filter.is_empty() {
        title.push_str(" · /");
        title.push_str(filter);
    }
}

/// Every view, in [`ViewId`] order.
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
