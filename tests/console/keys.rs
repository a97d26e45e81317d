//! Keys (issue 17, points 1, 5, 6, 10): a key is drawn at once, not at the
//! next frame tick; Ctrl-Z suspends; `:` reaches every view's actions
//! (`:restore` from the dashboard opens limbo's restore); a non-number in
//! the extend dialog keeps it open; after extend the cursor stays on its
//! user; pickers say the arrows move; the mouse clicks tabs, rows and
//! dialog buttons; `keys.toml` rebinds keys and a conflict is refused
//! naming both actions.

use super::harness::{Harness, open};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::{Backend, TestBackend};
use rollcall::tui::views::ViewId;
use std::time::{Duration, Instant};

/// A test backend that notes when each frame was flushed.
struct Timed {
    inner: TestBackend,
    flushed: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
}

impl Backend for Timed {
    type Error = <TestBackend as Backend>::Error;
    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(&mut self, p: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ratatui::backend::ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> Result<ratatui::layout::Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let text = super::harness::buffer_text(self.inner.buffer());
        if let Ok(mut f) = self.flushed.lock() {
            f.push((Instant::now(), text));
        }
        self.inner.flush()
    }
}

/// At one frame a second, a key still shows at once: it does not wait for
/// the frame timer (engine events do).
#[test]
fn a_key_is_drawn_without_waiting_for_the_frame_timer() {
    let mut h = Harness::new();
    let flushed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let backend = Timed {
        inner: TestBackend::new(80, 24),
        flushed: flushed.clone(),
    };
    let mut term = Terminal::new(backend).expect("term");
    let (keys_tx, keys_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Event>>();
    let keys = tokio_stream_of(keys_rx);
    let (_events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let api = h.api.clone();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let sent2 = sent.clone();
    let flushed2 = flushed.clone();
    std::thread::spawn(move || {
        // After the first frame (and the answers the start asked for),
        // well before the next frame tick a second later.
        while flushed2.lock().map(|f| f.is_empty()).unwrap_or(true) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(300));
        *sent2.lock().expect("lock") = Some(Instant::now());
        let _ = keys_tx.send(Ok(Event::Key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE))));
        std::thread::sleep(Duration::from_millis(1500));
        let _ = keys_tx.send(Ok(Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))));
        let _ = keys_tx.send(Ok(Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE))));
    });
    // The console starts with a frame to draw; nothing else is asked of
    // the engine meanwhile (its answers are drawn at once too).
    h.app.dirty = true;
    h.app.stamps_every_ms = i64::MAX;
    h.rt.block_on(rollcall::tui::event_loop::run(
        &mut term,
        &mut h.app,
        api,
        events_rx,
        keys,
        1,
        &mut rollcall::tui::event_loop::NoHost,
    ))
    .expect("loop");
    let sent = sent.lock().expect("lock").expect("key sent");
    let frames = flushed.lock().expect("lock");
    let (at, _) = frames
        .iter()
        .find(|(_, text)| text.contains("Keys · Dashboard"))
        .expect("the help was drawn");
    let delay = at.duration_since(sent);
    assert!(
        delay < Duration::from_millis(500),
        "the key waited {delay:?} for a frame at 1 frame/s"
    );
}

/// Input as crossterm's `EventStream` delivers it: a poll that finds
/// nothing hands its waker to a reader thread, and while that thread waits
/// later polls register nothing — only that first waker is woken by the
/// next key. (A drain polled with a no-op waker lost every later key until
/// a timer woke the loop.)
#[derive(Clone, Default)]
struct CrosstermLike(std::sync::Arc<std::sync::Mutex<(std::collections::VecDeque<Event>, Option<std::task::Waker>)>>);

impl CrosstermLike {
    fn send(&self, ev: Event) {
        let waker = {
            let mut s = self.0.lock().expect("lock");
            s.0.push_back(ev);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl futures_util::Stream for CrosstermLike {
    type Item = std::io::Result<Event>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let mut s = self.0.lock().expect("lock");
        match s.0.pop_front() {
            Some(ev) => std::task::Poll::Ready(Some(Ok(ev))),
            None => {
                if s.1.is_none() {
                    s.1 = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }
}

/// Key after key through a crossterm-like input, each is drawn at once —
/// not when the loop's half-second tick happens to wake it.
#[test]
fn every_key_is_drawn_at_once_through_a_crossterm_like_input() {
    let mut h = Harness::new();
    let flushed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let backend = Timed {
        inner: TestBackend::new(80, 24),
        flushed: flushed.clone(),
    };
    let mut term = Terminal::new(backend).expect("term");
    let keys = CrosstermLike::default();
    let (_events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let api = h.api.clone();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, bool)>::new()));
    let (sent2, flushed2, keys2) = (sent.clone(), flushed.clone(), keys.clone());
    std::thread::spawn(move || {
        while flushed2.lock().map(|f| f.is_empty()).unwrap_or(true) {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..8 {
            let help = i % 2 == 0;
            let code = if help { KeyCode::Char('?') } else { KeyCode::Esc };
            sent2.lock().expect("lock").push((Instant::now(), help));
            keys2.send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
            std::thread::sleep(Duration::from_millis(170));
        }
        keys2.send(Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)));
    });
    h.app.dirty = true;
    h.app.stamps_every_ms = i64::MAX;
    h.rt.block_on(rollcall::tui::event_loop::run(
        &mut term,
        &mut h.app,
        api,
        events_rx,
        keys,
        1,
        &mut rollcall::tui::event_loop::NoHost,
    ))
    .expect("loop");
    let frames = flushed.lock().expect("lock");
    for (at, help) in sent.lock().expect("lock").iter() {
        let (drawn, _) = frames
            .iter()
            .find(|(t, text)| t >= at && text.contains("Keys · Dashboard") == *help)
            .expect("the key was drawn");
        let delay = drawn.duration_since(*at);
        assert!(
            delay < Duration::from_millis(150),
            "a key waited {delay:?} to be drawn (help {help})"
        );
    }
}

/// An mpsc receiver as a stream.
fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<Event>>,
) -> impl futures_util::Stream<Item = std::io::Result<Event>> + Unpin {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[test]
fn ctrl_z_suspends_instead_of_doing_nothing() {
    let mut h = Harness::new();
    h.key_mod(KeyCode::Char('z'), KeyModifiers::CONTROL);
    assert!(h.app.suspend, "Ctrl-Z asks the loop to suspend");
    assert!(!h.screen().contains("does nothing"), "{}", h.screen());
}

#[test]
fn the_palette_waits_for_the_rows_when_the_count_answers_first() {
    let mut h = Harness::new();
    h.replies_reversed = true;
    h.type_str(":restore");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.current, ViewId::Limbo);
    let user = open(&h.data_dir(), false).limbo_list().expect("limbo")[0]
        .username
        .clone();
    assert!(
        h.screen().contains(&format!("Restore {user} into")),
        "limbo's restore once its rows are in: {}",
        h.screen()
    );
}

#[test]
fn the_palette_runs_another_views_action_there() {
    let mut h = Harness::new();
    assert_eq!(h.app.current, ViewId::Dashboard);
    h.type_str(":restore");
    let screen = h.screen();
    assert!(screen.contains("restore") && screen.contains("limbo ·"), "{screen}");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.current, ViewId::Limbo);
    let user = open(&h.data_dir(), false).limbo_list().expect("limbo")[0]
        .username
        .clone();
    assert!(
        h.screen().contains(&format!("Restore {user} into")),
        "limbo's restore, on the first user: {}",
        h.screen()
    );
    // The current view's actions come first.
    h.key(KeyCode::Esc);
    h.type_str(":e");
    let screen = h.screen();
    let first = screen
        .lines()
        .find(|l| l.contains(" extend ") || l.contains(" describe "))
        .unwrap_or_default()
        .to_string();
    assert!(first.contains("extend"), "{screen}");
}

#[test]
fn extend_keeps_its_dialog_for_a_non_number_and_the_cursor_on_its_user() {
    let mut h = Harness::new();
    h.type_str("4");
    let first = open(&h.data_dir(), false).limbo_list().expect("limbo")[0]
        .username
        .clone();
    h.type_str("e");
    h.key(KeyCode::Backspace);
    h.key(KeyCode::Backspace);
    h.type_str("x9");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(
        screen.contains("Extend purge date") && screen.contains("'x9' is not a number of days"),
        "the dialog stays, saying why: {screen}"
    );
    h.key(KeyCode::Backspace);
    h.key(KeyCode::Backspace);
    h.type_str("400");
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("stays in limbo until"), "{}", h.screen());
    // Sorted by purge date, the user moved to the end: the cursor went with it.
    let screen = h.screen();
    assert!(screen.contains("4 of 4"), "{screen}");
    let row = screen
        .lines()
        .find(|l| l.contains(&first))
        .expect("the user's row")
        .to_string();
    let last_user = screen
        .lines()
        .rfind(|l| l.contains(" in ") && l.contains(" d "))
        .unwrap_or_default()
        .to_string();
    assert_eq!(row, last_user, "{screen}");
    let audit = std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit");
    assert!(audit.contains("limbo extend"));
}

#[test]
fn pickers_say_that_arrows_move() {
    let mut h = Harness::new();
    h.type_str("4r");
    assert!(h.screen().contains("↑↓ move"), "{}", h.screen());
}

#[test]
fn an_engine_refusal_is_audited() {
    let h = Harness::new();
    let mut engine = open(&h.data_dir(), false);
    let active = engine
        .directory()
        .users(&rollcall::store::UserQuery {
            state: Some(rollcall::model::UserState::Active),
            limit: Some(1),
            ..Default::default()
        })
        .expect("users")[0]
        .username
        .clone();
    let err = engine.limbo_purge_user(&active, false).expect_err("not in limbo");
    assert!(err.to_string().contains("not in limbo"));
    let audit = std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit");
    let line = audit.lines().last().expect("a line");
    assert!(
        line.contains("limbo purge") && line.contains("refused") && line.contains(&active),
        "{line}"
    );
}

fn click(h: &mut Harness, x: u16, y: u16) {
    h.app.on_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    });
    h.settle();
}

#[test]
fn the_mouse_clicks_tabs_rows_and_dialog_buttons() {
    let mut h = Harness::new();
    h.resize(160, 48);
    let screen = h.screen();
    let top = screen.lines().next().expect("tab bar");
    let x = top.find("6 Trash").expect("the trash tab") as u16;
    click(&mut h, x + 1, 0);
    assert_eq!(h.app.current, ViewId::Trash);
    // Limbo's second row, then `x`, then the dialog's… no: restore's y/n.
    h.type_str("4");
    let screen = h.screen();
    let row = screen
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(" in ") && l.contains(" d "))
        .nth(1)
        .map(|(i, _)| i as u16)
        .expect("a second limbo row");
    click(&mut h, 10, row);
    assert!(h.screen().contains("2 of 4"), "{}", h.screen());
    h.type_str("r");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("Restore from limbo"), "{screen}");
    let (y, line) = screen
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(" y  yes"))
        .expect("the y/n line");
    let x = line.find(" y  yes").expect("yes") as u16;
    let x = line[..x as usize].chars().count() as u16;
    click(&mut h, x + 1, y as u16);
    assert!(h.screen().contains("restored"), "{}", h.screen());
    // The wheel scrolls.
    h.type_str("3");
    for _ in 0..2 {
        h.app.on_mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 10,
            row: 10,
            modifiers: KeyModifiers::NONE,
        });
    }
    h.settle();
    assert!(h.screen().contains("7 of 360"), "{}", h.screen());
}

#[test]
fn keys_toml_conflicts_are_refused_naming_both_actions() {
    let h = Harness::new();
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("rollcall");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("keys.toml"), "purge-user = \"r\"\n").expect("keys.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(h.data_dir())
        .arg("tui")
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .expect("rollcall tui");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a bad file: {err}");
    assert!(
        err.contains("keys.toml") && err.contains("purge-user") && err.contains("restore"),
        "{err}"
    );
}
