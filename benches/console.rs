//! Console benchmark (issue: the console), headless: the real `App` and
//! engine facade render into a ratatui `TestBackend` over a store of a
//! million users.
//!
//!     cargo bench --bench console                                  # builds /tmp/rollcall-console-1m once
//!     cargo bench --bench console -- --data-dir DIR                # any demo data dir
//!     cargo bench --bench console -- --schools 50 --users-per-school 2000
//!
//! Measures: the first frame (engine open to a drawn dashboard with its
//! data), filter keystrokes in the users view (key to redrawn table), the
//! slowest frame while an import job runs, and the console's memory (RSS).
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollcall::engine::api::{EngineApi, EngineEvent};
use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::DistrictSpec;
use rollcall::engine::import::ImportRequest;
use rollcall::engine::{Engine, Settings};
use rollcall::model::Role;
use rollcall::tui::app::App;
use rollcall::tui::clock::Clock;
use rollcall::tui::request::{Reply, execute};
use rollcall::tui::theme::Theme;
use rollcall::tui::views::ViewId;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Bench {
    app: App,
    api: EngineApi,
    events: UnboundedReceiver<EngineEvent>,
    tx: UnboundedSender<Reply>,
    replies: UnboundedReceiver<Reply>,
    term: Terminal<TestBackend>,
    frames: Vec<Duration>,
}

impl Bench {
    fn dispatch(&mut self) -> usize {
        let reqs = self.app.take_requests();
        let n = reqs.len();
        for req in reqs {
            let api = self.api.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(execute(&api, req).await);
            });
        }
        n
    }

    fn draw(&mut self) {
        let t = Instant::now();
        let app = &mut self.app;
        self.term.draw(|f| app.render(f)).expect("draw");
        self.frames.push(t.elapsed());
        self.app.poll();
    }

    /// One turn of the event loop: poll, send requests, take what arrived,
    /// draw. Returns the number of requests still outstanding.
    async fn turn(&mut self, outstanding: &mut usize) {
        self.app.poll();
        *outstanding += self.dispatch();
        tokio::select! {
            Some(r) = self.replies.recv() => {
                *outstanding -= 1;
                self.app.on_reply(r);
                while let Ok(r) = self.replies.try_recv() {
                    *outstanding -= 1;
                    self.app.on_reply(r);
                }
            }
            Some(e) = self.events.recv() => {
                self.app.on_engine(e);
                while let Ok(e) = self.events.try_recv() {
                    self.app.on_engine(e);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(33)) => {}
        }
        self.draw();
        *outstanding += self.dispatch();
    }

    /// Turns until no request is outstanding.
    async fn settle(&mut self) {
        let mut outstanding = 0usize;
        self.app.poll();
        outstanding += self.dispatch();
        while outstanding > 0 {
            self.turn(&mut outstanding).await;
        }
    }

    async fn key(&mut self, c: char) -> Duration {
        let t = Instant::now();
        self.app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        self.settle().await;
        self.draw();
        t.elapsed()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = PathBuf::from(arg("--data-dir").unwrap_or_else(|| "/tmp/rollcall-console-1m".into()));
    let spec = DistrictSpec {
        schools: arg("--schools").and_then(|s| s.parse().ok()).unwrap_or(500),
        users_per_school: arg("--users-per-school").and_then(|s| s.parse().ok()).unwrap_or(2000),
        seed: 1,
    };
    let settings = Settings::load(&LoadOptions::default(), Some(dir.clone()), false).expect("settings");
    if !dir.join("demo.json").exists() {
        eprintln!(
            "building the demo district ({} × {}) in {} …",
            spec.schools,
            spec.users_per_school,
            dir.display()
        );
        let t = Instant::now();
        let mut engine = Engine::open(settings.clone()).expect("engine");
        rollcall::engine::demo::build(&mut engine, &spec, &mut rollcall::engine::jobs::Quiet).expect("demo");
        eprintln!("built in {:.0} s", t.elapsed().as_secs_f64());
    }
    let base_rss = status_mib("VmRSS:");

    // First frame: open the engine, start the console, draw the dashboard
    // with its data.
    let users = Engine::open(settings.clone())
        .expect("engine")
        .directory()
        .count_users(&Default::default())
        .expect("count");
    let t0 = Instant::now();
    let engine = Engine::open(settings).expect("engine");
    let opened = t0.elapsed();
    let (api, events) = EngineApi::new(engine);
    let (tx, replies) = unbounded_channel();
    let mut b = Bench {
        app: App::new(api.info(), Theme::default_theme(), Clock::System),
        api,
        events,
        tx,
        replies,
        term: Terminal::new(TestBackend::new(160, 48)).expect("term"),
        frames: Vec::new(),
    };
    b.app.start(ViewId::Dashboard);
    b.draw();
    let empty_frame = t0.elapsed();
    // The overview comes first, the role counts (a pass over every
    // membership) after it.
    let mut outstanding = 0usize;
    b.app.poll();
    outstanding += b.dispatch();
    let mut first_frame = None;
    while outstanding > 0 {
        b.turn(&mut outstanding).await;
        if first_frame.is_none() && outstanding <= 1 {
            first_frame = Some(t0.elapsed());
        }
    }
    let first_frame = first_frame.unwrap_or_else(|| t0.elapsed());
    let complete = t0.elapsed();
    println!("users in store: {users}");
    println!("engine open:                        {:>8.1} ms", ms(opened));
    println!("first frame (layout, before data):  {:>8.1} ms", ms(empty_frame));
    println!("first frame with dashboard data:    {:>8.1} ms", ms(first_frame));
    println!("dashboard complete (role counts):   {:>8.1} ms", ms(complete));

    // Users view, then filter keystrokes.
    let t = Instant::now();
    b.key('3').await;
    println!("open users view (first page + count): {:>6.1} ms", ms(t.elapsed()));
    b.key('/').await;
    let mut worst = Duration::ZERO;
    for word in ["mei", "*mei", "zzq"] {
        for c in word.chars() {
            let d = b.key(c).await;
            worst = worst.max(d);
            println!("  filter keystroke '{c}' → redrawn table: {:>8.1} ms", ms(d));
        }
        for _ in 0..word.len() {
            b.app.on_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        }
        b.settle().await;
    }
    b.app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    b.settle().await;
    println!("slowest filter keystroke:           {:>8.1} ms", ms(worst));

    // Frames while an import job runs: re-import the first school's
    // students (read, plan, write the received rows) and keep scrolling the users
    // table meanwhile.
    let feeds = b.api.feed_files().await.expect("feeds");
    let school = b.api.school_names().await.expect("schools")[0].clone();
    let feed = feeds
        .iter()
        .find(|f| f.name.contains(&school) && f.name.contains("student"))
        .or_else(|| feeds.first())
        .expect("a feed")
        .path
        .clone();
    b.frames.clear();
    let t = Instant::now();
    let job = b
        .api
        .start_import(ImportRequest {
            school: school.clone(),
            roles: vec![Role::Student],
            file: feed,
            dry_run: false,
            ..ImportRequest::default()
        })
        .await
        .expect("import");
    let mut outstanding = 0usize;
    let mut keys = 0;
    while !b.api.running_jobs().is_empty() || outstanding > 0 {
        if keys % 3 == 0 {
            b.app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
        }
        keys += 1;
        b.turn(&mut outstanding).await;
    }
    b.settle().await;
    let worst_frame = b.frames.iter().max().copied().unwrap_or_default();
    println!(
        "import job {} ({}) ran {:.1} s: {} frames, slowest {:.2} ms",
        job.id,
        job.label,
        t.elapsed().as_secs_f64(),
        b.frames.len(),
        ms(worst_frame)
    );
    println!(
        "memory: RSS {:.0} MiB now, peak {:.0} MiB (store page cache excluded; {:.0} MiB before the engine opened)",
        status_mib("VmRSS:"),
        status_mib("VmHWM:"),
        base_rss
    );
}
