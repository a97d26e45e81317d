//! Process lifecycle: signals (signal-hook) and the service manager.
//!
//! * SIGTERM / SIGINT: the first asks the running job to stop (its
//!   [`CancelToken`], looked at between items); a second one ends the
//!   process at once with the signal's default action.
//! * SIGHUP: asks the daemon to reload its configuration.
//! * systemd (`Type=notify`): READY, WATCHDOG and STATUS through the
//!   `sd-notify` crate, when `NOTIFY_SOCKET` is set.

use crate::engine::jobs::{CancelToken, Progress, ProgressEvent};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the signals asked for.
#[derive(Clone, Default)]
pub struct Signals {
    stop: CancelToken,
    reload: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers (once per process; later calls share them).
    pub fn install() -> Signals {
        static INSTALLED: std::sync::OnceLock<Signals> = std::sync::OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let s = Signals::default();
                match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
                    Ok(mut signals) => {
                        let me = s.clone();
                        std::thread::spawn(move || {
                            for sig in signals.forever() {
                                me.on(sig);
                            }
                        });
                    }
                    Err(e) => tracing::error!(error = %e, "cannot install signal handlers"),
                }
                s
            })
            .clone()
    }

    fn on(&self, sig: i32) {
        if sig == SIGHUP {
            tracing::info!("SIGHUP: reloading the configuration");
            self.reload.store(true, Ordering::SeqCst);
            return;
        }
        if self.stop.is_cancelled() {
            tracing::warn!(signal = sig, "second stop signal: ending now");
            // The default action of SIGTERM/SIGINT: the process ends by the
            // signal. Claims it held are put back by the next sender (no
            // lock holds them any more).
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
        tracing::info!(signal = sig, "stop signal: finishing the item in hand");
        notify(&[sd_notify::NotifyState::Stopping]);
        self.stop.cancel();
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Whether a reload was asked for since the last call.
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }
}

/// Stops a long job on SIGTERM or SIGINT, between items.
pub struct Stoppable<P: Progress> {
    inner: P,
    signals: Signals,
}

impl<P: Progress> Stoppable<P> {
    pub fn new(inner: P) -> Self {
        Stoppable {
            inner,
            signals: Signals::install(),
        }
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
    }
}

impl<P: Progress> Progress for Stoppable<P> {
    fn update(&mut self, event: ProgressEvent) {
        self.inner.update(event);
    }
    fn cancelled(&self) -> bool {
        self.signals.stop_requested() || self.inner.cancelled()
    }
}

/// Sends states to the service manager; nothing without `NOTIFY_SOCKET`.
pub fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Pings systemd's watchdog at half its interval, as long as the daemon
/// shows signs of life (a heartbeat younger than the interval).
pub struct Watchdog {
    every: Option<Duration>,
    last_ping: Instant,
}

impl Watchdog {
    pub fn from_env() -> Self {
        let every = watchdog_interval().map(|d| d / 2);
        Watchdog {
            every,
            last_ping: Instant::now(),
        }
    }

    /// Called on every sign of life.
    pub fn alive(&mut self) {
        if let Some(every) = self.every
            && self.last_ping.elapsed() >= every
        {
            notify(&[sd_notify::NotifyState::Watchdog]);
            self.last_ping = Instant::now();
        }
    }
}

/// `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or this process).
fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}
