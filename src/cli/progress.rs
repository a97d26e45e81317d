//! Engine progress as a bar on stderr, only when stderr is a terminal.

use crate::engine::jobs::{Progress, ProgressEvent};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar {
    bar: Option<ProgressBar>,
    phase: &'static str,
}

impl Bar {
    pub fn new() -> Self {
        Bar { bar: None, phase: "" }
    }
}

impl Progress for Bar {
    fn update(&mut self, event: ProgressEvent) {
        if !std::io::stderr().is_terminal() {
            return;
        }
        if self.phase != event.phase || self.bar.is_none() {
            if let Some(b) = self.bar.take() {
                b.finish_and_clear();
            }
            let bar = match event.total {
                Some(t) => ProgressBar::new(t).with_style(
                    ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner(),
            };
            bar.set_message(event.phase);
            self.bar = Some(bar);
            self.phase = event.phase;
        }
        if let Some(b) = &self.bar {
            b.set_position(event.done);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
