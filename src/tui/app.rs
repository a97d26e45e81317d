//! The console's state machine: which view is shown, the open overlay, the
//! filter being typed, the footer message, this session's jobs, the keys in
//! force. It turns keys (and mouse clicks) into actions through the keymap,
//! routes engine replies and events to views, keeps views live (every
//! second it asks the engine's change stamps and reloads what moved), and
//! queues the requests views make. It does no I/O: the event loop (or a
//! test) runs the queued requests and feeds the answers back, then renders.

use super::action::{self, Action};
use super::clock::Clock;
use super::ids::{Level, ViewId};
use super::jobboard::JobBoard;
use super::keymap::Keymap;
use super::overlay::{Choice, Outcome, Overlay, Palette, Tag};
use super::request::{Call, Data, Reply, Request};
use super::theme::Theme;
use super::views::{self, Ctx, Effect, View, Watch};
use crate::engine::api::{ApiInfo, EngineEvent, JobEnd};
use crate::engine::changes::ChangeStamps;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

/// How long a footer message stays.
const STATUS_SECS: i64 = 6;
/// How often the change stamps are asked for (live views), in milliseconds.
pub const STAMPS_EVERY_MS: i64 = 1000;

/// A place on screen a mouse click presses a key at (tabs, dialog buttons).
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub area: Rect,
    pub key: KeyCode,
}

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
    pub keymap: Keymap,
    requests: Vec<Request>,
    /// An action forwarded to a view that is still loading.
    pending: Option<(ViewId, Action)>,
    /// The last change stamps, and when they were asked for.
    stamps: Option<ChangeStamps>,
    stamps_asked: Option<DateTime<Utc>>,
    stamps_inflight: bool,
    /// How often the stamps are asked for (ms; tests ask at every tick,
    /// or never with `i64::MAX`).
    pub stamps_every_ms: i64,
    /// Clickable places of the last frame.
    pub hits: Vec<Hit>,
    /// The body area of the last frame (clicks inside go to the view).
    pub body: Rect,
    pub quit: bool,
    /// Ctrl-Z: the event loop suspends the console.
    pub suspend: bool,
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
            keymap: Keymap::default(),
            requests: Vec::new(),
            pending: None,
            stamps: None,
            stamps_asked: None,
            stamps_inflight: false,
            stamps_every_ms: STAMPS_EVERY_MS,
            hits: Vec::new(),
            body: Rect::default(),
            quit: false,
            suspend: false,
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
            Effect::Overlay(o) => {
                // A question replaces a "loading…" note.
                if matches!(self.status, Some((Level::Info, ..))) {
                    self.status = None;
                }
                self.overlay = Some(o);
            }
            Effect::Status(level, text) => self.status = Some((level, text, self.clock.now())),
            Effect::Forward(v, action) => self.forward(v, action),
            Effect::Answer(owner, tag, answer) => {
                self.with_view(owner, |v, ctx| v.on_answer(tag, answer, ctx));
            }
        }
    }

    /// Goes to `v` and runs `action` there, now or once its data is in.
    fn forward(&mut self, v: ViewId, action: Action) {
        self.goto(v);
        if self.view(v).ready() {
            self.with_view(v, |view, ctx| view.on_action(action, ctx));
        } else {
            self.pending = Some((v, action));
        }
    }

    pub fn goto(&mut self, v: ViewId) {
        self.filtering = None;
        if v != self.current {
            self.pending = None;
        }
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
                Outcome::Close => {
                    if !matches!(self.status, Some((Level::Error, ..))) {
                        self.status = None;
                    }
                }
                Outcome::Answer(_, Tag::Quit, _) => self.quit = true,
                Outcome::Answer(owner, tag, answer) => {
                    self.with_view(owner, |v, ctx| v.on_answer(tag, answer, ctx));
                }
                Outcome::Run(Choice::View(v)) => self.goto(v),
                Outcome::Run(Choice::Action(a)) => self.dispatch(a),
                Outcome::Run(Choice::In(v, a)) => {
                    if action::spec_of(a).is_some_and(|s| s.available(self.info.read_only)) {
                        self.forward(v, a);
                    } else {
                        self.dispatch(a);
                    }
                }
            }
            return;
        }
        if self.filtering.is_some() {
            self.filter_key(&k);
            return;
        }
        match self.keymap.resolve(&k, self.current, self.info.read_only) {
            Some(a) => self.dispatch(a),
            None => {
                if let KeyCode::Char(c) = k.code
                    && !c.is_ascii_digit()
                {
                    let key = if k.modifiers.contains(KeyModifiers::CONTROL) {
                        format!("Ctrl-{}", c.to_ascii_uppercase())
                    } else {
                        format!("'{c}'")
                    };
                    self.status(Level::Info, format!("{key} does nothing here; ? lists the keys"));
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

    /// The mouse (`--mouse`): a click on a tab, a dialog button or a row;
    /// the wheel scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        self.dirty = true;
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let action = if m.kind == MouseEventKind::ScrollDown {
                    Action::Down
                } else {
                    Action::Up
                };
                if let Some(o) = &mut self.overlay {
                    let code = if action == Action::Down {
                        KeyCode::Down
                    } else {
                        KeyCode::Up
                    };
                    if matches!(o, Overlay::Help { .. } | Overlay::Describe(_)) {
                        o.on_key(&KeyEvent::new(code, KeyModifiers::NONE));
                    }
                    return;
                }
                for _ in 0..3 {
                    self.dispatch(action);
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let at = ratatui::layout::Position::new(m.column, m.row);
                if let Some(hit) = self.hits.iter().find(|h| h.area.contains(at)).copied() {
                    self.on_key(KeyEvent::new(hit.key, KeyModifiers::NONE));
                    return;
                }
                if self.overlay.is_some() || !self.body.contains(at) {
                    return;
                }
                let opened = self.with_view(self.current, |v, ctx| v.click(m.column, m.row, ctx));
                if opened {
                    self.dispatch(Action::Open);
                }
            }
            _ => {}
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
            Action::Suspend => self.suspend = true,
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
                if other == Action::Back && self.status.is_some() {
                    // Esc first takes away the message it answers.
                    self.status = None;
                }
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
            format!(
                "{} still running",
                super::widgets::plural(running as u64, "job", "jobs")
            ),
            lines,
        ));
    }

    pub fn on_reply(&mut self, r: Reply) {
        if let Call::Stamps = r.call {
            self.stamps_inflight = false;
            if let Ok(Data::Stamps(s)) = r.result {
                self.on_stamps(s);
            }
            return;
        }
        if let Err(e) = &r.result {
            self.status(Level::Error, format!("{}: {e}", r.call.name()));
        }
        if let (Call::CancelJob(id), Ok(Data::Cancelled(true))) = (&r.call, &r.result) {
            self.jobs.mark_cancel(*id);
        }
        let to = r.to;
        self.with_view(to, |v, ctx| v.on_reply(r.call, r.result, ctx));
        if let Some((v, action)) = self.pending
            && v == to
            && self.view(v).ready()
        {
            self.pending = None;
            if self.current == v {
                self.with_view(v, |view, ctx| view.on_action(action, ctx));
            }
        }
    }

    /// Reloads what another process (or this one) changed: the view on
    /// screen now, the others when next shown.
    fn on_stamps(&mut self, now: ChangeStamps) {
        let Some(before) = self.stamps.replace(now) else {
            return;
        };
        let changed = Watch {
            directory: before.directory != now.directory,
            queues: before.queues != now.queues,
            runs: before.runs != now.runs,
            state: before.state != now.state,
        };
        if changed == Watch::NONE {
            return;
        }
        for v in ViewId::ALL {
            if self.view(v).watches().overlaps(&changed) {
                if v == self.current {
                    self.with_view(v, |view, ctx| view.load(ctx));
                } else {
                    self.loaded[v.index()] = false;
                }
            }
        }
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
            EngineEvent::JobFinished {
                end: JobEnd::Failed(e), ..
            } => self.status(Level::Error, format!("job failed: {e}")),
            _ => {}
        }
        for v in ViewId::ALL {
            self.with_view(v, |view, ctx| view.on_event(&ev, ctx));
        }
    }

    /// Twice a second or so: expire the footer message, ask for the change
    /// stamps, let views refresh.
    pub fn on_tick(&mut self) {
        let now = self.clock.now();
        if let Some((_, _, at)) = &self.status
            && (now - *at).num_seconds() >= STATUS_SECS
        {
            self.status = None;
            self.dirty = true;
        }
        let due = self.stamps_every_ms != i64::MAX
            && self
                .stamps_asked
                .is_none_or(|t| (Utc::now() - t).num_milliseconds() >= self.stamps_every_ms);
        if due && !self.stamps_inflight {
            self.stamps_inflight = true;
            self.stamps_asked = Some(Utc::now());
            self.requests.push(Request {
                to: self.current,
                call: Call::Stamps,
            });
        }
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
            self.views[cur.index()].on_tick(&mut ctx);
        }
        for e in effects {
            self.apply(e);
        }
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
