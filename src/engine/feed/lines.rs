//! Physical line numbers for streaming readers: a reader wrapper that notes
//! where the newlines are, so a record's byte offset becomes the line it
//! starts on (the header is line 1), blank lines included.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Byte offsets of the newlines read so far but not yet passed by a record
/// (each with whether its line was blank), and how many were passed: turns a
/// record's byte offset into its physical line. (The csv crate's own line
/// count skips blank lines, and its record offsets point at the blank lines
/// before a record.)
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<LineState>>);

#[derive(Default)]
struct LineState {
    pending: VecDeque<(u64, bool)>,
    passed: u64,
}

impl Lines {
    /// The 1-based line of the record whose bytes start at `offset`;
    /// offsets must not decrease.
    pub fn line_of(&self, offset: u64) -> u64 {
        let Ok(mut g) = self.0.lock() else { return 0 };
        let st = &mut *g;
        while let Some(&(nl, blank)) = st.pending.front() {
            // Newlines before the record (with CRLF the record's offset can
            // be the previous line's `\n`), then blank lines it starts with.
            if nl <= offset || blank {
                st.pending.pop_front();
                st.passed += 1;
            } else {
                break;
            }
        }
        st.passed + 1
    }
}

/// A reader that notes where the newlines are and which lines are blank.
pub struct NewlineTracker<R> {
    inner: R,
    offset: u64,
    /// Whether the current line has had anything but `\r`.
    content: bool,
    lines: Lines,
}

impl<R: Read> Read for NewlineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut g) = self.lines.0.lock() {
            for (i, b) in buf[..n].iter().enumerate() {
                match b {
                    b'\n' => {
                        g.pending.push_back((self.offset + i as u64, !self.content));
                        self.content = false;
                    }
                    b'\r' => {}
                    _ => self.content = true,
                }
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> NewlineTracker<R> {
    pub fn new(inner: R) -> (Self, Lines) {
        let lines = Lines::default();
        (
            NewlineTracker {
                inner,
                offset: 0,
                content: false,
                lines: lines.clone(),
            },
            lines,
        )
    }
}
