//! The console's state machine: which view is shown, the open overlay, the
//! filter being typed, the footer message, this session's jobs. It turns
//! keys into actions through the action table, routes engine replies and
//! events to views, and queues the requests views make. It does no I/O: the
//! event loop (or a test) runs the queued requests and feeds the answers
//! back, then renders.

use super::action::{self, Action};
use super::clock::Clock;
use super::jobboard::JobBoard;
use super::overlay::{Choice, Outcome, Overlay, Palette, Tag};
use super::request::{Reply, Request};
use super::theme::Theme;
use super::views::{self, Ctx, Effect, Level, View, ViewId};
use crate::engine::api::{ApiInfo, EngineEvent};
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseEvent, MouseEventKind};

/// How long a footer message stays.
const STATUS_SECS: i64 = 6;

pub struct App {
    views: Vec<Box<dyn View>>,
    pub current: ViewId,
    loaded: [bool; ViewId::ALL.len()],
    pub overlay: Option<Overlay>,
    /// `Some(text before editing)` while the admin types a filter.
    pub filtering: Option<String>,
    pub status: Option<(Level, String, DateTime<Utc>)>,
    pub jobs: JobBoard,
    pub info: ApiInfo,
    pub theme: Theme,
    pub clock: Clock,
    requests: Vec<Request>,
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl App {
    pub fn new(info: ApiInfo, theme: Theme, clock: Clock) -> Self {
        App {
            views: views::all(),
            current: ViewId::Dashboard,
            loaded: [false; ViewId::ALL.len()],
            overlay: None,
            filtering: None,
            status: None,
            jobs: JobBoard::default(),
            info,
            theme,
            clock,
            requests: Vec::new(),
            quit: false,
            dirty: true,
        }
    }

    /// Opens the first view (loads its data).
    pub fn start(&mut self, view: ViewId) {
        self.goto(view);
    }

    /// Requests queued since the last call.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    pub fn view(&self, id: ViewId) -> &dyn View {
        self.views[id.index()].as_ref()
    }

    /// Runs `f` on a view with a context, then applies its effects.
    fn with_view<R>(&mut self, id: ViewId, f: impl FnOnce(&mut dyn View, &mut Ctx) -> R) -> R {
        let mut effects = Vec::new();
        let out = {
            let mut ctx = Ctx {
                requests: &mut self.requests,
                effects: &mut effects,
                info: &self.info,
                clock: &self.clock,
                jobs: &self.jobs,
            };
            f(self.views[id.index()].as_mut(), &mut ctx)
        };
        for e in effects {
            self.apply(e);
        }
        self.dirty = true;
        out
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Goto(v) => self.goto(v),
            Effect::Navigate(v, nav) => {
                self.goto(v);
                self.with_view(v, |view, ctx| view.navigate(nav, ctx));
            }
            Effect::Overlay(o) => self.overlay = Some(o),
            Effect::Status(level, text) => self.status = Some((level, text, self.clock.now())),
            Effect::Forward(v, action) => {
                self.goto(v);
                self.with_view(v, |view, ctx| view.on_action(action, ctx));
            }
        }
    }

    pub fn goto(&mut self, v: ViewId) {
        self.filtering = None;
        self.current = v;
        if !self.loaded[v.index()] {
            self.loaded[v.index()] = true;
            self.with_view(v, |view, ctx| view.load(ctx));
        }
        self.dirty = true;
    }

    pub fn status(&mut self, level: Level, text: impl Into<String>) {
        self.status = Some((level, text.into(), self.clock.now()));
        self.dirty = true;
    }

    pub fn on_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        if let Some(mut overlay) = self.overlay.take() {
            match overlay.on_key(&k) {
                Outcome::Keep => self.overlay = Some(overlay),
                Outcome::Close => {}
                Outcome::Answer(_, Tag::Quit, _) => self.quit = true,
                Outcome::Answer(owner, tag, answer) => {
                    self.with_view(owner, |v, ctx| v.on_answer(tag, answer, ctx));
                }
                Outcome::Run(Choice::View(v)) => self.goto(v),
                Outcome::Run(Choice::Action(a)) => self.dispatch(a),
            }
            return;
        }
        if self.filtering.is_some() {
            self.filter_key(&k);
            return;
        }
        match action::resolve(&k, self.current, self.info.read_only) {
            Some(a) => self.dispatch(a),
            None => {
                if let KeyCode::Char(c) = k.code
                    && !c.is_ascii_digit()
                {
                    self.status(Level::Info, format!("'{c}' does nothing here; ? lists the keys"));
                }
            }
        }
    }

    fn filter_key(&mut self, k: &KeyEvent) {
        let mut text = self.view(self.current).filter().to_string();
        match k.code {
            KeyCode::Enter => {
                self.filtering = None;
                return;
            }
            KeyCode::Esc => {
                self.filtering = None;
                text.clear();
            }
            KeyCode::Down | KeyCode::Up => {
                self.filtering = None;
                let a = if k.code == KeyCode::Down {
                    Action::Down
                } else {
                    Action::Up
                };
                self.dispatch(a);
                return;
            }
            _ => {
                if !super::overlay::edit_line(&mut text, k) {
                    return;
                }
            }
        }
        self.with_view(self.current, |v, ctx| v.set_filter(text, ctx));
    }

    pub fn on_mouse(&mut self, m: MouseEvent) {
        let action = match m.kind {
            MouseEventKind::ScrollDown => Action::Down,
            MouseEventKind::ScrollUp => Action::Up,
            _ => return,
        };
        if self.overlay.is_none() {
            for _ in 0..3 {
                self.dispatch(action);
            }
        }
    }

    /// Carries out one action of the table; refuses destructive ones in
    /// read-only mode, whatever asked for them.
    pub fn dispatch(&mut self, a: Action) {
        self.dirty = true;
        if let Some(spec) = action::spec_of(a)
            && !spec.available(self.info.read_only)
        {
            self.status(
                Level::Error,
                format!("refused: read-only mode ({} changes data)", spec.command),
            );
            return;
        }
        match a {
            Action::Quit => self.ask_quit(),
            Action::Help => {
                self.overlay = Some(Overlay::Help {
                    view: self.current,
                    scroll: 0,
                })
            }
            Action::Palette => {
                self.overlay = Some(Overlay::Palette(Palette {
                    input: String::new(),
                    selected: 0,
                    view: self.current,
                    read_only: self.info.read_only,
                }))
            }
            Action::Filter => self.filtering = Some(self.view(self.current).filter().to_string()),
            Action::Goto(v) => self.goto(v),
            Action::NextView | Action::PrevView => {
                let n = ViewId::ALL.len();
                let step = if a == Action::NextView { 1 } else { n - 1 };
                self.goto(ViewId::ALL[(self.current.index() + step) % n]);
            }
            Action::Refresh => self.with_view(self.current, |v, ctx| v.load(ctx)),
            other => {
                let handled = self.with_view(self.current, |v, ctx| v.on_action(other, ctx));
                if !handled && other == Action::Back {
                    if !self.view(self.current).filter().is_empty() {
                        self.with_view(self.current, |v, ctx| v.set_filter(String::new(), ctx));
                    } else if self.current != ViewId::Dashboard {
                        self.goto(ViewId::Dashboard);
                    }
                }
            }
        }
    }

    fn ask_quit(&mut self) {
        let running = self.jobs.running();
        if running == 0 {
            self.quit = true;
            return;
        }
        let lines = self
            .jobs
            .rows
            .iter()
            .filter(|r| r.running())
            .map(|r| format!("• {}", r.info.label))
            .chain(["".to_string(), "Quitting cancels them. Quit anyway?".to_string()])
            .collect();
        self.overlay = Some(super::overlay::yes_no(
            self.current,
            Tag::Quit,
            format!("{running} job(s) still running"),
            lines,
        ));
    }

    pub fn on_reply(&mut self, r: Reply) {
        if let Err(e) = &r.result {
            self.status(Level::Error, format!("{}: {e}", r.call));
        }
        self.with_view(r.to, |v, ctx| v.on_reply(r.call, r.result, ctx));
    }

    pub fn on_engine(&mut self, ev: EngineEvent) {
        self.jobs.apply(&ev, self.clock.now());
        self.dirty = true;
        match &ev {
            EngineEvent::Changed => {
                // Reload the view on screen; the others reload when next shown.
                for v in ViewId::ALL {
                    self.loaded[v.index()] = v == self.current;
                }
                self.with_view(self.current, |v, ctx| v.load(ctx));
            }
            EngineEvent::JobFinished { result: Err(e), .. } => self.status(Level::Error, format!("job failed: {e}")),
            _ => {}
        }
        for v in ViewId::ALL {
            self.with_view(v, |view, ctx| view.on_event(&ev, ctx));
        }
    }

    /// Once a second or so: expire the footer message, let views refresh.
    pub fn on_tick(&mut self) {
        if let Some((_, _, at)) = &self.status
            && (self.clock.now() - *at).num_seconds() >= STATUS_SECS
        {
            self.status = None;
            self.dirty = true;
        }
        let cur = self.current;
        self.with_view(cur, |v, ctx| v.on_tick(ctx));
    }

    /// Lets the current view request what it now needs.
    pub fn poll(&mut self) {
        let cur = self.current;
        let mut effects = Vec::new();
        {
            let mut ctx = Ctx {
                requests: &mut self.requests,
                effects: &mut effects,
                info: &self.info,
                clock: &self.clock,
                jobs: &self.jobs,
            };
            self.views[cur.index()].poll(&mut ctx);
        }
        for e in effects {
            self.apply(e);
        }
    }

    pub fn render(&mut self, frame: &mut ratatui::Frame) {
        super::render::render(self, frame);
        self.dirty = false;
    }

    pub(super) fn view_mut(&mut self, id: ViewId) -> &mut dyn View {
        self.views[id.index()].as_mut()
    }

    pub fn running_jobs(&self) -> usize {
        self.jobs.running()
    }
}
