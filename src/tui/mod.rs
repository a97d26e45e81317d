//! The console: a ratatui TUI over the engine's async facade
//! ([`crate::engine::api::EngineApi`]) for admins working over SSH.
//!
//! * [`ids`]: the identifiers every module shares (views, levels) — a leaf;
//! * [`action`]: the one table of actions (keys, help, palette commands,
//!   destructive flag, confirmation level, views) everything is derived from;
//!   [`keymap`]: its keys with `keys.toml` applied;
//! * [`app`]: the state machine (views, overlays, filter, jobs, live
//!   reloads), free of I/O;
//! * [`event_loop`]: one `tokio::select!` over crossterm's event stream, a
//!   tick, signals, engine events and request replies; input drawn at once,
//!   engine events at most once a frame;
//! * [`table`]: the one table component of every table view;
//! * [`views`]: dashboard, schools, users, limbo, queues (and their items),
//!   trash, jobs and runs, log, verify, schools to sync;
//! * [`theme`]: TOML themes; [`terminal`]: raw mode, alternate screen,
//!   signals, suspend, and the panic hook that restores the terminal.
//!
//! The console never opens a store or a file: everything comes through the
//! engine facade.

pub mod action;
pub mod app;
pub mod chooser;
pub mod clock;
pub mod event_loop;
pub mod ids;
pub mod jobboard;
pub mod keymap;
pub mod overlay;
mod render;
pub mod request;
pub mod table;
pub mod terminal;
pub mod theme;
pub mod views;
pub mod widgets;

use crate::engine::api::{EngineApi, EngineEvent};
use app::App;
use clock::Clock;
use event_loop::Host;
use ids::ViewId;
use keymap::Keymap;
use ratatui::backend::CrosstermBackend;
use std::future::Future;
use std::io::Stdout;
use std::pin::Pin;
use terminal::{Lifecycle, Signals};
use theme::Theme;
use tokio::sync::mpsc::UnboundedReceiver;

/// How the console starts.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    pub theme: Theme,
    /// Capture the mouse (wheel scrolls).
    pub mouse: bool,
    /// Frames per second at most (engine events; keys are drawn at once).
    pub max_fps: u32,
    pub start: ViewId,
    /// The keys in force (`keys.toml` applied).
    pub keymap: Keymap,
}

/// The real terminal's signals and suspend.
struct TermHost {
    signals: Signals,
    mouse: bool,
}

impl Host<CrosstermBackend<Stdout>> for TermHost {
    fn signal(&mut self) -> Pin<Box<dyn Future<Output = Lifecycle> + Send + '_>> {
        Box::pin(self.signals.next())
    }

    fn suspend(&mut self, term: &mut terminal::Term) -> std::io::Result<()> {
        terminal::suspend(term, self.mouse)
    }

    fn resume(&mut self, term: &mut terminal::Term) -> std::io::Result<()> {
        terminal::resume(term, self.mouse)
    }
}

/// Runs the console on the real terminal until the admin quits. Needs a
/// tokio runtime (multi-threaded: engine calls run on blocking threads).
pub async fn run(api: EngineApi, events: UnboundedReceiver<EngineEvent>, opts: ConsoleOptions) -> std::io::Result<()> {
    let mut app = App::new(api.info(), opts.theme.clone(), Clock::System);
    app.keymap = opts.keymap.clone();
    app.start(opts.start);
    let _ = api
        .audit("console open", serde_json::json!({"theme": opts.theme.name}))
        .await;
    let mut host = TermHost {
        signals: Signals::install()?,
        mouse: opts.mouse,
    };
    terminal::install_panic_hook(opts.mouse);
    let mut term = terminal::enter(opts.mouse)?;
    let stream = crossterm::event::EventStream::new();
    let result = event_loop::run(
        &mut term,
        &mut app,
        api.clone(),
        events,
        stream,
        opts.max_fps,
        &mut host,
    )
    .await;
    terminal::restore(opts.mouse);
    let _ = api
        .audit(
            "console close",
            serde_json::json!({"jobs_running": api.running_jobs().len()}),
        )
        .await;
    result
}
