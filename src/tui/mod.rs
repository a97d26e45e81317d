//! The console: a ratatui TUI over the engine's async facade
//! ([`crate::engine::api::EngineApi`]) for admins working over SSH.
//!
//! * [`action`]: the one table of actions (keys, help, palette commands,
//!   destructive flag, confirmation level, views) everything is derived from;
//! * [`app`]: the state machine (views, overlays, filter, jobs), free of I/O;
//! * [`event_loop`]: one `tokio::select!` over crossterm's event stream, a
//!   tick, engine events and request replies, rendering at most once a frame;
//! * [`views`]: dashboard, schools, users, limbo, jobs and runs, log;
//! * [`theme`]: TOML themes; [`terminal`]: raw mode, alternate screen and the
//!   panic hook that restores the terminal.
//!
//! The console never opens a store or a file: everything comes through the
//! engine facade.

pub mod action;
pub mod app;
pub mod chooser;
pub mod clock;
pub mod event_loop;
pub mod jobboard;
pub mod overlay;
mod render;
pub mod request;
pub mod terminal;
pub mod theme;
pub mod views;
pub mod widgets;

use crate::engine::api::{EngineApi, EngineEvent};
use app::App;
use clock::Clock;
use theme::Theme;
use tokio::sync::mpsc::UnboundedReceiver;
use views::ViewId;

/// How the console starts.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    pub theme: Theme,
    /// Capture the mouse (wheel scrolls).
    pub mouse: bool,
    /// Frames per second at most.
    pub max_fps: u32,
    pub start: ViewId,
}

/// Runs the console on the real terminal until the admin quits. Needs a
/// tokio runtime (multi-threaded: engine calls run on blocking threads).
pub async fn run(api: EngineApi, events: UnboundedReceiver<EngineEvent>, opts: ConsoleOptions) -> std::io::Result<()> {
    let mut app = App::new(api.info(), opts.theme.clone(), Clock::System);
    app.start(opts.start);
    let _ = api
        .audit("console open", serde_json::json!({"theme": opts.theme.name}))
        .await;
    terminal::install_panic_hook(opts.mouse);
    let mut term = terminal::enter(opts.mouse)?;
    let stream = crossterm::event::EventStream::new();
    let result = event_loop::run(&mut term, &mut app, api.clone(), events, stream, opts.max_fps).await;
    terminal::restore(opts.mouse);
    let _ = api
        .audit(
            "console close",
            serde_json::json!({"jobs_running": api.running_jobs().len()}),
        )
        .await;
    result
}
