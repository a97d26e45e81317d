//! A console over a fixed demo district, driven without a terminal: keys go
//! into the real `App`, its requests run on the real engine facade, and
//! frames render into a ratatui `TestBackend`. Answers are normalised (run
//! ids, timestamps, dates shifted to a fixed "today") so snapshots are the
//! same on every day and machine.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use rollcall::engine::api::{EngineApi, EngineEvent, JobEnd, JobOutcome};
use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::DistrictSpec;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::runs::RunRecord;
use rollcall::engine::{Engine, Settings};
use rollcall::tui::app::App;
use rollcall::tui::clock::Clock;
use rollcall::tui::request::{Data, Reply, execute};
use rollcall::tui::theme::Theme;
use rollcall::tui::views::ViewId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio::sync::mpsc::UnboundedReceiver;

/// The day every snapshot is rendered on.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 9, 30, 0).single().expect("fixed time")
}

pub const SPEC: DistrictSpec = DistrictSpec {
    schools: 6,
    users_per_school: 60,
    seed: 1,
};

/// The demo district, built once per test binary and copied per test.
fn template() -> &'static (tempfile::TempDir, NaiveDate) {
    static T: OnceLock<(tempfile::TempDir, NaiveDate)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut engine = open(dir.path(), false);
        let built_on = engine.today();
        rollcall::engine::demo::build(&mut engine, &SPEC, &mut Quiet).expect("demo");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        std::fs::write(logs.join("rollcall.log.2025-03-03"), SAMPLE_LOG).expect("log");
        (dir, built_on)
    })
}

const SAMPLE_LOG: &str = "\
2025-03-03T08:00:01.000000Z  INFO rollcall::engine::import: run=20250303-080001 import of gs-am-see students: 60 rows
2025-03-03T08:00:02.000000Z DEBUG rollcall::store::sqlite: applied batch journal_entries=61
2025-03-03T08:00:03.000000Z  WARN rollcall::engine::import: line 17: birthday '31.02.2012' is not a date; row skipped
2025-03-03T08:00:04.000000Z  INFO rollcall::engine::limbo: purge of 0 limbo user(s) due on or before 2025-03-03
2025-03-03T08:00:05.000000Z ERROR rollcall::engine::import: feed /srv/feeds/x.csv: no column record_uid
2025-03-03T08:00:06.000000Z  INFO rollcall::engine::import: run=20250303-080006 import of gs-am-see teachers: 6 rows
";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// A loopback server that accepts connections and never answers (held
/// until the test process ends); returns its port. The demo's `idbroker`
/// pointed at it makes a drain that runs until cancelled.
pub fn stalled_server() -> u16 {
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = stalled.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in stalled.incoming() {
            held.push(c);
        }
    });
    port
}

pub fn open(dir: &Path, read_only: bool) -> Engine {
    let settings = Settings::load(&LoadOptions::default(), Some(dir.to_path_buf()), read_only).expect("settings");
    Engine::open(settings).expect("engine")
}

pub struct Harness {
    pub app: App,
    pub api: EngineApi,
    pub rt: tokio::runtime::Runtime,
    events: UnboundedReceiver<EngineEvent>,
    pub dir: tempfile::TempDir,
    shift: i64,
    run_ids: HashMap<String, String>,
    pub terminal: Terminal<TestBackend>,
    /// Answer each batch of requests last first (the real console's
    /// replies arrive in any order).
    pub replies_reversed: bool,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(false, Theme::default_theme())
    }

    pub fn with(read_only: bool, theme: Theme) -> Self {
        Self::with_data(read_only, theme, |_| {})
    }

    /// A harness whose copy of the demo data dir `edit` changes first (its
    /// config, say) before the engine opens it.
    pub fn with_data(read_only: bool, theme: Theme, edit: impl FnOnce(&Path)) -> Self {
        let (tpl, built_on) = template();
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(tpl.path(), dir.path());
        edit(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        let engine = open(dir.path(), read_only);
        let mut ids: Vec<String> = engine
            .runs()
            .list(&|_| true, 10_000)
            .expect("runs")
            .into_iter()
            .map(|r| r.id)
            .collect();
        ids.sort();
        let (api, events) = {
            let _g = rt.enter();
            EngineApi::new(engine)
        };
        let mut h = Harness {
            app: App::new(api.info(), theme, Clock::Fixed(fixed_now())),
            api,
            rt,
            events,
            dir,
            shift: (fixed_now().date_naive() - *built_on).num_days(),
            run_ids: HashMap::new(),
            terminal: Terminal::new(TestBackend::new(80, 24)).expect("terminal"),
            replies_reversed: false,
        };
        for id in ids {
            h.fake_id(&id);
        }
        h.app.start(ViewId::Dashboard);
        h.settle();
        h
    }

    fn fake_id(&mut self, real: &str) -> String {
        let n = self.run_ids.len();
        self.run_ids
            .entry(real.to_string())
            .or_insert_with(|| {
                let kind = real.split('-').nth(3).unwrap_or("run");
                format!("20250303-08{:02}{:02}-000-{kind}-{:04x}", n / 60, n % 60, n)
            })
            .clone()
    }

    fn time(&self, i: usize) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 8, 0, 0).single().expect("t") + chrono::Duration::seconds(i as i64 * 7)
    }

    fn day(&self, d: NaiveDate) -> NaiveDate {
        if self.shift >= 0 {
            d.checked_add_days(Days::new(self.shift as u64)).unwrap_or(d)
        } else {
            d.checked_sub_days(Days::new((-self.shift) as u64)).unwrap_or(d)
        }
    }

    fn run(&mut self, r: &mut RunRecord) {
        r.id = self.fake_id(&r.id.clone());
        let idx = self.run_ids.values().filter(|v| **v < r.id).count();
        r.started_at = self.time(idx);
        r.finished_at = r
            .finished_at
            .map(|_| r.started_at + chrono::Duration::milliseconds(420));
        r.user = "admin".into();
        r.sudo_user = None;
        if let Some(file) = r.args.get_mut("file") {
            *file = serde_json::Value::String("feeds/…".into());
        }
    }

    /// Makes an answer independent of the day and the machine.
    fn normalize(&mut self, reply: &mut Reply) {
        let Ok(data) = &mut reply.result else { return };
        match data {
            Data::Overview(o) => {
                o.today = fixed_now().date_naive();
                o.directory = "sqlite:demo".into();
                for (d, _) in &mut o.next_purges {
                    *d = self.day(*d);
                }
                for r in &mut o.last_runs {
                    self.run(r);
                }
            }
            Data::Runs(rs) => {
                for r in rs {
                    self.run(r);
                }
            }
            Data::RunDetail(d) => {
                let real = d.record.id.clone();
                self.run(&mut d.record);
                let fake = d.record.id.clone();
                d.log = d
                    .log
                    .lines()
                    .map(|l| {
                        let rest = l.split_once(' ').map(|(_, r)| r).unwrap_or(l);
                        format!("08:00:00 {}", rest.replace(&real, &fake))
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            Data::UserRows { rows, .. } => {
                for r in rows {
                    r.purge_at = r.purge_at.map(|d| self.day(d));
                }
            }
            Data::UserDetail(d) => {
                let stamp = "2025-03-03T08:00:00Z".to_string();
                d.user.created_at = stamp.clone();
                d.user.updated_at = stamp.clone();
                d.user.purge_at = d
                    .user
                    .purge_at
                    .as_deref()
                    .and_then(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d").ok())
                    .map(|p| self.day(p).to_string());
                if let Some(r) = &mut d.last_received {
                    r.at = stamp;
                    r.run_id = self.fake_id(&r.run_id.clone());
                }
            }
            Data::Queues(qs) => {
                let at = |m: i64| Some(fixed_now() - chrono::Duration::minutes(m));
                for q in qs {
                    q.oldest_item_at = q.oldest_item_at.and(at(4));
                    q.oldest_age_seconds = q.oldest_age_seconds.map(|_| 240);
                    q.next_retry_at = q.next_retry_at.and(at(-1));
                    q.last_sent_at = q.last_sent_at.and(at(2));
                    q.last_rate = q.last_rate.map(|_| 1000.0);
                    if let Some(p) = &mut q.paused {
                        p.since = fixed_now() - chrono::Duration::minutes(5);
                        p.next_probe = fixed_now() + chrono::Duration::minutes(1);
                        // How often the demo's unreachable authority was
                        // probed depends on timing (a second probe under load).
                        p.probe_failures = p.probe_failures.min(1);
                    }
                }
            }
            Data::Trash(items) => items.iter_mut().for_each(fix_trash_entry),
            Data::QueueItems(q) => q.items.iter_mut().for_each(fix_queue_item),
            Data::QueueItem(d) => {
                fix_queue_item(&mut d.row);
                d.raw.enqueued_at = d.row.enqueued_at;
            }
            Data::TrashDetail(d) => {
                fix_trash_entry(&mut d.entry);
                let t = fixed_now() - chrono::Duration::minutes(3);
                d.raw.enqueued_at = t - chrono::Duration::minutes(1);
                d.raw.first_failure = d.raw.first_failure.map(|_| t);
                d.raw.last_failure = d.raw.last_failure.map(|_| t);
                d.raw.not_before = None;
                if let Some(f) = &mut d.raw.failure {
                    f.first_failure = t;
                    f.last_failure = t;
                    f.trashed_at = t;
                }
            }
            Data::UserSyncItems(_, items) => {
                for i in items {
                    i.enqueued_at = fixed_now() - chrono::Duration::minutes(4);
                }
            }
            Data::UserHistory(_, entries) => {
                for e in entries {
                    e.at = "2025-03-03T08:00:00Z".into();
                    e.run_id = self.fake_id(&e.run_id.clone());
                }
            }
            _ => {}
        }
    }

    /// Runs every queued request and feeds the answers (and engine events)
    /// back until nothing is left; renders in between so tables know their
    /// height.
    pub fn settle(&mut self) {
        for _ in 0..50 {
            self.draw();
            self.app.poll();
            let mut reqs = self.app.take_requests();
            if self.replies_reversed {
                reqs.reverse();
            }
            let mut events = Vec::new();
            while let Ok(ev) = self.events.try_recv() {
                events.push(ev);
            }
            if reqs.is_empty() && events.is_empty() {
                return;
            }
            for ev in events {
                self.app.on_engine(normalize_event(ev));
            }
            for mut req in reqs {
                if let rollcall::tui::request::Call::RunDetail(id) = &mut req.call
                    && let Some((real, _)) = self.run_ids.iter().find(|(_, f)| *f == id)
                {
                    *id = real.clone();
                }
                let mut reply = self.rt.block_on(execute(&self.api, req));
                self.normalize(&mut reply);
                self.app.on_reply(reply);
            }
        }
    }

    /// Waits for running jobs to finish, then settles.
    pub fn wait_jobs(&mut self) {
        for _ in 0..400 {
            self.settle();
            if self.api.running_jobs().is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(20));
                self.settle();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("jobs did not finish");
    }

    /// One tick of the console (live views ask for the change stamps).
    pub fn tick(&mut self) {
        self.app.stamps_every_ms = 0;
        self.app.on_tick();
        self.settle();
    }

    pub fn key_mod(&mut self, code: KeyCode, mods: KeyModifiers) {
        self.app.on_key(KeyEvent::new(code, mods));
        self.settle();
    }

    pub fn resize(&mut self, w: u16, h: u16) {
        self.terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        self.settle();
    }

    pub fn draw(&mut self) -> Buffer {
        let app = &mut self.app;
        self.terminal.draw(|f| app.render(f)).expect("draw");
        let mut buf = self.terminal.backend().buffer().clone();
        mask_wall_clock(&mut buf);
        buf
    }

    pub fn key(&mut self, code: KeyCode) {
        self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        self.settle();
    }

    /// Types text, one key per character.
    pub fn type_str(&mut self, s: &str) {
        for c in s.chars() {
            self.app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
            self.settle();
        }
    }

    pub fn screen(&mut self) -> String {
        buffer_text(&self.draw())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Times relative to the fixed clock, as they were to the wall clock.
fn fix_queue_item(i: &mut rollcall::engine::sync::queue_items::QueueItemRow) {
    let now = Utc::now();
    i.enqueued_at = fixed_now() - chrono::Duration::minutes(4);
    i.next_retry = i.next_retry.map(|t| fixed_now() + (t - now));
}

fn fix_trash_entry(e: &mut rollcall::engine::sync::TrashEntry) {
    let t = Some(fixed_now() - chrono::Duration::minutes(3));
    e.first_failure = e.first_failure.and(t);
    e.last_failure = e.last_failure.and(t);
    e.trashed_at = e.trashed_at.and(t);
}

/// Job events carry real run ids; snapshots never show them, so they pass.
fn normalize_event(ev: EngineEvent) -> EngineEvent {
    match ev {
        EngineEvent::JobFinished {
            id,
            end: JobEnd::Done(JobOutcome::Import(mut o)),
        } => {
            o.run_id = "dry-run".into();
            EngineEvent::JobFinished {
                id,
                end: JobEnd::Done(JobOutcome::Import(o)),
            }
        }
        other => other,
    }
}

/// The buffer's text, one line per row, trailing spaces trimmed (the
/// console uses no double-width glyphs).
/// Replaces wall-clock UTC stamps (`2026-11-21 23:56:11 UTC`, written by the
/// demo's sync run, which does not use the console's fixed clock) with a
/// fixed one, so snapshots and screenshots do not change from run to run.
fn mask_wall_clock(b: &mut Buffer) {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd UTC";
    const FIXED: &str = "2026-03-03 08:00:00 UTC";
    let w = b.area.width as usize;
    for row in b.content.chunks_mut(w) {
        let cells: Vec<u8> = row
            .iter()
            .map(|c| {
                if c.symbol().len() == 1 {
                    c.symbol().as_bytes()[0]
                } else {
                    0
                }
            })
            .collect();
        let mut i = 0;
        while i + SHAPE.len() <= cells.len() {
            let fits = SHAPE.iter().zip(&cells[i..]).all(|(want, got)| {
                if *want == b'd' {
                    got.is_ascii_digit()
                } else {
                    want == got
                }
            });
            if fits {
                for (k, ch) in FIXED.chars().enumerate() {
                    row[i + k].set_char(ch);
                }
                i += SHAPE.len();
            } else {
                i += 1;
            }
        }
    }
}

pub fn buffer_text(b: &Buffer) -> String {
    let w = b.area.width as usize;
    let mut out = String::new();
    for row in b.content.chunks(w) {
        let line: String = row.iter().map(|c| c.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
