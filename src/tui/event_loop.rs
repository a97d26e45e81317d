//! The event loop: one `tokio::select!` over terminal events, replies to
//! engine requests, engine events, signals and a tick. Input comes first
//! (`biased`) and is drawn at once, without waiting for any timer: a key
//! press (and the replies it asked for) is on screen as soon as it is
//! handled. Engine events (job progress can come by the thousand) only
//! mark the screen dirty and are drawn at most `max_fps` times a second,
//! every branch draining what is already pending — so a flood never stalls
//! typing and never costs a frame per event.

use super::app::App;
use super::request::{Reply, execute};
use super::terminal::Lifecycle;
use crate::engine::api::{EngineApi, EngineEvent};
use crossterm::event::Event;
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::{Instant, MissedTickBehavior};

/// Engine events handled per turn before input is looked at again.
const ENGINE_BATCH: usize = 4096;
/// How often views may refresh on their own (log follow, footer expiry,
/// change stamps).
const TICK: Duration = Duration::from_millis(500);

/// What the loop needs of the real terminal beyond drawing: its signals,
/// and suspending to the shell. Tests pass [`NoHost`].
pub trait Host<B: Backend> {
    /// The next signal (never resolves when there are none).
    fn signal(&mut self) -> Pin<Box<dyn Future<Output = Lifecycle> + Send + '_>>;
    /// Hands the terminal back and stops until continued (Ctrl-Z).
    fn suspend(&mut self, term: &mut Terminal<B>) -> io::Result<()>;
    /// Takes the terminal again after a stop from outside.
    fn resume(&mut self, term: &mut Terminal<B>) -> io::Result<()>;
}

/// No signals, no suspending (a test backend).
pub struct NoHost;

impl<B: Backend> Host<B> for NoHost {
    fn signal(&mut self) -> Pin<Box<dyn Future<Output = Lifecycle> + Send + '_>> {
        Box::pin(std::future::pending())
    }

    fn suspend(&mut self, _term: &mut Terminal<B>) -> io::Result<()> {
        Ok(())
    }

    fn resume(&mut self, _term: &mut Terminal<B>) -> io::Result<()> {
        Ok(())
    }
}

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

#[allow(clippy::too_many_arguments)]
pub async fn run<B, S>(
    term: &mut Terminal<B>,
    app: &mut App,
    api: EngineApi,
    mut engine: UnboundedReceiver<EngineEvent>,
    mut input: S,
    max_fps: u32,
    host: &mut dyn Host<B>,
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
    // Drawn at once (input, replies), not at the next frame.
    let mut urgent = true;
    loop {
        app.poll();
        dispatch(app, &api, &tx);
        if app.quit {
            break;
        }
        if app.suspend {
            app.suspend = false;
            host.suspend(term)?;
            app.dirty = true;
            urgent = true;
        }
        let now = Instant::now();
        if app.dirty && (urgent || now >= next_frame) {
            term.draw(|f| app.render(f))
                .map_err(|e| io::Error::other(e.to_string()))?;
            next_frame = now + frame;
            urgent = false;
            // Rendering records table heights: fetch what they now need.
            app.poll();
            dispatch(app, &api, &tx);
        }
        tokio::select! {
            biased;
            ev = input.next(), if input_open => match ev {
                Some(Ok(ev)) => {
                    handle_terminal_event(app, ev);
                    // What else is already typed, polled with this task's
                    // waker: crossterm's stream keeps the first waker of a
                    // poll that found nothing, so a no-op one
                    // (`now_or_never`) would leave the next key unseen
                    // until a timer woke the loop.
                    loop {
                        match poll_fn(|cx| Poll::Ready(input.poll_next_unpin(cx))).await {
                            Poll::Ready(Some(Ok(ev))) => handle_terminal_event(app, ev),
                            Poll::Ready(Some(Err(e))) => return Err(e),
                            Poll::Ready(None) => {
                                input_open = false;
                                break;
                            }
                            Poll::Pending => break,
                        }
                    }
                    urgent = true;
                }
                Some(Err(e)) => return Err(e),
                None => input_open = false,
            },
            signal = host.signal() => match signal {
                Lifecycle::Quit => app.quit = true,
                Lifecycle::Suspend => app.suspend = true,
                Lifecycle::Continue => {
                    host.resume(term)?;
                    app.dirty = true;
                    urgent = true;
                }
            },
            Some(reply) = replies.recv() => {
                app.on_reply(reply);
                while let Ok(reply) = replies.try_recv() {
                    app.on_reply(reply);
                }
                urgent = true;
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
