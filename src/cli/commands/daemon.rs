//! `rollcall daemon [--listen ADDR]` and `rollcall metrics [--textfile PATH]`:
//! the service side — signals, reload, systemd notifications, the HTTP
//! listener for `/metrics` and `/healthz`.

use crate::cli::Exit;
use crate::cli::args::{DaemonArgs, Global};
use crate::cli::lifecycle::{Signals, Stoppable, Watchdog, notify};
use crate::cli::output;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::sync::daemon::DaemonHooks;
use crate::engine::{Engine, EngineResult, Settings};
use crate::server::{Health, Listener, Shared};
use sd_notify::NotifyState;
use std::path::Path;
use std::time::{Duration, Instant};

/// Signs of life: every progress event of the daemon beats the heart the
/// health check reads and feeds the watchdog.
struct Alive {
    health: Shared,
    watchdog: Watchdog,
}

impl Progress for Alive {
    fn update(&mut self, _event: ProgressEvent) {
        self.health.beat();
        self.watchdog.alive();
    }
}

struct Hooks<'a> {
    global: &'a Global,
    signals: Signals,
    health: Shared,
    /// When metrics were last gathered (`None`: never, or not wanted).
    gathered: Option<Instant>,
    serve_metrics: bool,
    ready: bool,
}

impl DaemonHooks for Hooks<'_> {
    fn reload(&mut self) -> Option<EngineResult<Settings>> {
        if !self.signals.take_reload() {
            return None;
        }
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        notify(&states);
        let loaded = crate::cli::load_settings(self.global);
        notify(&[NotifyState::Ready]);
        Some(loaded)
    }

    fn cycle(&mut self, engine: &Engine, sent: u64) {
        self.health.beat();
        let due = self.gathered.is_none_or(|t| t.elapsed() >= self.health.metrics_every);
        if self.serve_metrics && due {
            match engine.metrics_text() {
                Ok(text) => self.health.set_metrics(text),
                Err(e) => tracing::warn!(error = %e, "cannot gather metrics"),
            }
            self.gathered = Some(Instant::now());
        }
        let status = format!("syncing; {sent} item(s) sent since start");
        if self.ready {
            notify(&[NotifyState::Status(&status)]);
        } else {
            self.ready = true;
            notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
        }
    }
}

pub fn run(global: &Global, settings: Settings, args: &DaemonArgs, json: bool) -> anyhow::Result<Exit> {
    let signals = Signals::install();
    let poll = Duration::from_secs_f64(settings.config.sync.poll_seconds);
    // /healthz says stalled when the daemon was silent for this long: the
    // longest quiet stretch of a healthy one is a poll plus a send round.
    let health = Health::new((poll * 10).max(Duration::from_secs(60)), Duration::from_secs(5));
    let mut engine = Engine::open(settings)?;
    let listener = match args.listen {
        Some(addr) => Some(Listener::start(addr, health.clone())?),
        None => None,
    };
    if !json {
        match &listener {
            Some(l) => eprintln!(
                "rollcall daemon: syncing; /metrics and /healthz on http://{}; stop with SIGTERM or Ctrl-C",
                l.addr
            ),
            None => eprintln!("rollcall daemon: syncing; stop with SIGTERM or Ctrl-C"),
        }
    }
    let mut hooks = Hooks {
        global,
        signals,
        health: health.clone(),
        gathered: None,
        serve_metrics: listener.is_some(),
        ready: false,
    };
    let mut progress = Stoppable::new(Alive {
        health,
        watchdog: Watchdog::from_env(),
    });
    let result = engine.daemon(&mut progress, &mut hooks);
    if let Some(l) = listener {
        l.stop();
    }
    result?;
    if json {
        output::json(&serde_json::json!({"stopped": true}))?;
    }
    Ok(Exit::Ok)
}

/// `rollcall metrics`: to stdout, or written whole (temp file + rename) to
/// `textfile` so node_exporter never reads half a file.
pub fn metrics(engine: &Engine, textfile: Option<&Path>) -> anyhow::Result<Exit> {
    let text = engine.metrics_text()?;
    match textfile {
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(anyhow::anyhow!("{}: {e}", path.display()));
            }
        }
    }
    Ok(Exit::Ok)
}
