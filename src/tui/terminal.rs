//! The real terminal and the console's life on it: raw mode, the alternate
//! screen, optional mouse capture; a panic hook that puts the terminal back
//! before the panic message prints; SIGTERM, SIGHUP and SIGINT end the
//! console cleanly (terminal restored, jobs cancelled); Ctrl-Z (or a
//! SIGTSTP from outside) puts the terminal back and stops the process, and
//! `fg` (SIGCONT) takes the screen again and redraws it all. An admin's SSH
//! session is never left garbled.

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout, stdout};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Raw mode, the alternate screen, the mouse when asked, cursor hidden.
fn take(mouse: bool) -> io::Result<()> {
    enable_raw_mode()?;
    let mut out = stdout();
    execute!(out, EnterAlternateScreen, crossterm::cursor::Hide)?;
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    Ok(())
}

pub fn enter(mouse: bool) -> io::Result<Term> {
    take(mouse)?;
    let mut t = Terminal::new(CrosstermBackend::new(stdout()))?;
    t.clear()?;
    t.hide_cursor()?;
    Ok(t)
}

/// Leaves raw mode and the alternate screen, shows the cursor; safe to
/// call twice.
pub fn restore(mouse: bool) {
    let mut out = stdout();
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = disable_raw_mode();
}

/// Restores the terminal, then runs the previous panic hook.
pub fn install_panic_hook(mouse: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore(mouse);
        previous(info);
    }));
}

/// Hands the terminal back and stops the process (as Ctrl-Z does in any
/// program); when the shell continues it (`fg`), takes the terminal again
/// and forces a full redraw.
#[allow(unsafe_code)] // reviewed: raise(SIGSTOP) touches no memory
pub fn suspend(term: &mut Term, mouse: bool) -> io::Result<()> {
    restore(mouse);
    // SIGSTOP: SIGTSTP is handled here (it would not stop us).
    // SAFETY: raise only sends a signal to this process.
    unsafe {
        libc::raise(libc::SIGSTOP);
    }
    resume(term, mouse)
}

/// After a stop: the terminal again, everything redrawn. (Not
/// `Terminal::clear`: it asks the terminal for the cursor position, and the
/// answer would go to the event reader instead.)
pub fn resume(term: &mut Term, mouse: bool) -> io::Result<()> {
    take(mouse)?;
    ratatui::backend::Backend::clear_region(term.backend_mut(), ratatui::backend::ClearType::All)?;
    // Both buffers blank: the next frame is drawn in full.
    term.swap_buffers();
    term.swap_buffers();
    Ok(())
}

/// What a signal asks of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// SIGTERM, SIGHUP, SIGINT: quit now (terminal restored, jobs cancelled).
    Quit,
    /// SIGTSTP: suspend as Ctrl-Z does.
    Suspend,
    /// SIGCONT: continued after a stop from outside: take the screen again.
    Continue,
}

/// The signals the console answers.
pub struct Signals {
    term: Signal,
    hup: Signal,
    int: Signal,
    tstp: Signal,
    cont: Signal,
}

impl Signals {
    /// Installs the handlers (needs a tokio runtime).
    pub fn install() -> io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
            tstp: signal(SignalKind::from_raw(libc::SIGTSTP))?,
            cont: signal(SignalKind::from_raw(libc::SIGCONT))?,
        })
    }

    /// The next signal.
    pub async fn next(&mut self) -> Lifecycle {
        tokio::select! {
            _ = self.term.recv() => Lifecycle::Quit,
            _ = self.hup.recv() => Lifecycle::Quit,
            _ = self.int.recv() => Lifecycle::Quit,
            _ = self.tstp.recv() => Lifecycle::Suspend,
            _ = self.cont.recv() => Lifecycle::Continue,
        }
    }
}
