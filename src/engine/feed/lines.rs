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
    /// (offset of the newline, blank, how many): a run of blank lines is
    /// one entry, so a file of nothing but newlines costs no memory.
    pending: VecDeque<(u64, bool, u64)>,
    passed: u64,
}

impl Lines {
    /// The 1-based line of the record whose bytes start at `offset`;
    /// offsets must not decrease.
    pub fn line_of(&self, offset: u64) -> u64 {
        let Ok(mut g) = self.0.lock() else { return 0 };
        let st = &mut *g;
        while let Some(&(nl, blank, n)) = st.pending.front() {
            // Newlines before the record (with CRLF the record's offset can
            // be the previous line's `\n`), then blank lines it starts with.
            if nl <= offset || blank {
                st.pending.pop_front();
                st.passed += n;
            } else {
                break;
            }
        }
        st.passed + 1
    }
}

/// A reader that notes where the newlines are and which lines are blank,
/// and (with a cap) refuses a line longer than the cap: a feed has one
/// person per line, and a file without newlines (a disk image, a sparse
/// file) must not be buffered whole.
pub struct NewlineTracker<R> {
    inner: R,
    offset: u64,
    /// Whether the current line has had anything but `\r`.
    content: bool,
    lines: Lines,
    /// Bytes of the current line so far, and the longest line allowed.
    line_len: u64,
    cap: Option<u64>,
    /// Newlines seen so far.
    newlines: u64,
}

impl<R: Read> Read for NewlineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut g) = self.lines.0.lock() {
            for (i, b) in buf[..n].iter().enumerate() {
                match b {
                    b'\n' => {
                        let at = self.offset + i as u64;
                        match g.pending.back_mut() {
                            Some((nl, true, k)) if !self.content => {
                                *nl = at;
                                *k += 1;
                            }
                            _ => g.pending.push_back((at, !self.content, 1)),
                        }
                        self.content = false;
                        self.line_len = 0;
                        self.newlines += 1;
                    }
                    b'\r' => {}
                    _ => self.content = true,
                }
                if *b != b'\n' {
                    self.line_len += 1;
                    if self.cap.is_some_and(|cap| self.line_len > cap) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "line {} is longer than {} KiB; a feed has one person per line (is this the right \
                                 file, or a file without line breaks?): check the file and export it again",
                                self.newlines + 1,
                                self.cap.unwrap_or(0) / 1024
                            ),
                        ));
                    }
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
                line_len: 0,
                cap: None,
                newlines: 0,
            },
            lines,
        )
    }

    /// Refuses lines longer than `cap` bytes.
    pub fn with_line_cap(mut self, cap: u64) -> Self {
        self.cap = Some(cap);
        self
    }
}
