//! The event loop: one `tokio::select!` over terminal events, replies to
//! engine requests, engine events and a tick. Input comes first (`biased`),
//! every branch drains what is already pending, and the screen is drawn at
//! most once per frame (`max_fps`) however many events arrived — so a flood
//! of job progress never stalls typing.

use super::app::App;
use super::request::{Reply, execute};
use crate::engine::api::{EngineApi, EngineEvent};
use crossterm::event::Event;
use futures_util::{FutureExt, Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::io;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::{Instant, MissedTickBehavior};

/// Engine events handled per turn before input is looked at again.
const ENGINE_BATCH: usize = 4096;
/// How often views may refresh on their own (log follow, footer expiry).
const TICK: Duration = Duration::from_millis(500);

/// Sends every queued request to the engine; replies come back on `tx`.
pub fn dispatch(app: &mut App, api: &EngineApi, tx: &UnboundedSender<Reply>) {
    for req in app.take_requests() {
        let api = api.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(execute(&api, req).await);
        });
    }
}

pub fn handle_terminal_event(app: &mut App, ev: Event) {
    match ev {
        Event::Key(k) => app.on_key(k),
        Event::Mouse(m) => app.on_mouse(m),
        Event::Resize(_, _) => app.dirty = true,
        _ => {}
    }
}

pub async fn run<B, S>(
    term: &mut Terminal<B>,
    app: &mut App,
    api: EngineApi,
    mut engine: UnboundedReceiver<EngineEvent>,
    mut input: S,
    max_fps: u32,
) -> io::Result<()>
where
    B: Backend,
    B::Error: std::fmt::Display,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    let frame = Duration::from_secs_f64(1.0 / f64::from(max_fps.clamp(1, 240)));
    let (tx, mut replies) = mpsc::unbounded_channel::<Reply>();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_frame = Instant::now();
    let mut input_open = true;
    loop {
        app.poll();
        dispatch(app, &api, &tx);
        if app.quit {
            break;
        }
        let now = Instant::now();
        if app.dirty && now >= next_frame {
            term.draw(|f| app.render(f))
                .map_err(|e| io::Error::other(e.to_string()))?;
            next_frame = now + frame;
            // Rendering records table heights: fetch what they now need.
            app.poll();
            dispatch(app, &api, &tx);
        }
        tokio::select! {
            biased;
            ev = input.next(), if input_open => match ev {
                Some(Ok(ev)) => {
                    handle_terminal_event(app, ev);
                    while let Some(Some(Ok(ev))) = input.next().now_or_never() {
                        handle_terminal_event(app, ev);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => input_open = false,
            },
            Some(reply) = replies.recv() => {
                app.on_reply(reply);
                while let Ok(reply) = replies.try_recv() {
                    app.on_reply(reply);
                }
            }
            Some(ev) = engine.recv() => {
                app.on_engine(ev);
                for _ in 0..ENGINE_BATCH {
                    match engine.try_recv() {
                        Ok(ev) => app.on_engine(ev),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => app.on_tick(),
            _ = tokio::time::sleep_until(next_frame), if app.dirty => {}
        }
    }
    for job in api.running_jobs() {
        let _ = api.cancel_job(job.id).await;
    }
    Ok(())
}
