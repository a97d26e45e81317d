//! The CSV reader: UTF-8 with or without BOM, delimiter sniffed from the
//! header line (`,` `;` or tab), quoted fields with embedded newlines, blank
//! lines ignored. Streams the file record by record.

use super::{FeedError, FeedReader, RawRecord};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct CsvFeed {
    path: PathBuf,
    columns: Vec<String>,
    delimiter: u8,
    records: csv::StringRecordsIntoIter<NewlineTracker<BufReader<File>>>,
    lines: Lines,
    done: bool,
}

/// Byte offsets of the newlines read so far but not yet passed by a record
/// (each with whether its line was blank), and how many were passed: turns a
/// record's byte offset into its physical line. (The csv crate's own line
/// count skips blank lines, and its record offsets point at the blank lines
/// before a record.)
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<LineState>>);

#[derive(Default)]
struct LineState {
    pending: VecDeque<(u64, bool)>,
    passed: u64,
}

impl Lines {
    /// The 1-based line of the record whose bytes start at `offset`;
    /// offsets must not decrease.
    fn line_of(&self, offset: u64) -> u64 {
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
struct NewlineTracker<R> {
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

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn file_error(path: &Path, message: impl Into<String>) -> FeedError {
    FeedError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Picks the delimiter that occurs most often outside quotes in the header.
pub fn sniff_delimiter(header: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
            c.1 += 1;
        }
    }
    counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 0)
        .map(|(d, _)| *d)
        .unwrap_or(b',')
}

impl CsvFeed {
    /// Opens a feed; `delimiter` overrides sniffing.
    pub fn open(path: &Path, delimiter: Option<u8>) -> Result<Self, FeedError> {
        let io = |source| FeedError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut start = [0u8; 3];
        let n = read_up_to(&mut file, &mut start).map_err(io)?;
        let bom = if n >= 3 && start[..3] == *UTF8_BOM {
            3
        } else if n >= 2 && (start[..2] == [0xFF, 0xFE] || start[..2] == [0xFE, 0xFF]) {
            return Err(file_error(
                path,
                "the file is UTF-16 encoded; save it as UTF-8 (with or without BOM) and import again",
            ));
        } else {
            0
        };
        file.seek(SeekFrom::Start(bom)).map_err(io)?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let delimiter = match delimiter {
            Some(d) => d,
            None => {
                let header_line = reader.fill_buf().map_err(io)?;
                let end = header_line
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(header_line.len());
                sniff_delimiter(&header_line[..end])
            }
        };
        let lines = Lines::default();
        let tracked = NewlineTracker {
            inner: reader,
            offset: 0,
            content: false,
            lines: lines.clone(),
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(tracked);
        let header = csv.headers().map_err(|e| match e.kind() {
            csv::ErrorKind::Utf8 { .. } => file_error(
                path,
                "line 1: the header is not valid UTF-8; save the file as UTF-8 and import again",
            ),
            csv::ErrorKind::Io(_) => FeedError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            },
            _ => file_error(path, format!("line 1: cannot read the header: {e}")),
        })?;
        let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if columns.iter().all(String::is_empty) {
            return Err(file_error(
                path,
                "the file is empty or its first line is blank; the first line must be the header",
            ));
        }
        Ok(CsvFeed {
            path: path.to_path_buf(),
            columns,
            delimiter,
            records: csv.into_records(),
            lines,
            done: false,
        })
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    fn record_error(&self, line: u64, message: String) -> FeedError {
        FeedError::Record {
            path: self.path.clone(),
            line,
            message,
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

impl Iterator for CsvFeed {
    type Item = Result<RawRecord, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let rec = match self.records.next()? {
                Ok(rec) => rec,
                Err(e) => {
                    let line = e.position().map(|p| self.lines.line_of(p.byte())).unwrap_or(0);
                    return Some(Err(match e.kind() {
                        csv::ErrorKind::Utf8 { .. } => self.record_error(
                            line,
                            "the record is not valid UTF-8; save the file as UTF-8 and import again".into(),
                        ),
                        csv::ErrorKind::Io(_) => {
                            self.done = true;
                            FeedError::Io {
                                path: self.path.clone(),
                                source: std::io::Error::other(e.to_string()),
                            }
                        }
                        _ => self.record_error(line, e.to_string()),
                    }));
                }
            };
            let line = rec.position().map(|p| self.lines.line_of(p.byte())).unwrap_or(0);
            // A line of only delimiters and blanks is a blank line.
            if rec.iter().all(|v| v.trim().is_empty()) {
                continue;
            }
            if rec.len() != self.columns.len() {
                return Some(Err(self.record_error(
                    line,
                    format!(
                        "{} fields, but the header has {}; check the delimiter and quoting of this line",
                        rec.len(),
                        self.columns.len()
                    ),
                )));
            }
            return Some(Ok(RawRecord {
                line,
                values: rec.iter().map(|v| v.trim().to_string()).collect(),
            }));
        }
    }
}

impl FeedReader for CsvFeed {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    fn read_all(p: &Path) -> (Vec<String>, Vec<Result<RawRecord, String>>) {
        let f = CsvFeed::open(p, None).unwrap();
        let cols = f.columns().to_vec();
        (cols, f.map(|r| r.map_err(|e| e.to_string())).collect())
    }

    #[test]
    fn sniffs_delimiters_from_header_only() {
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a\tb"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a;b\",c"), b',');
        assert_eq!(sniff_delimiter(b"single"), b',');
    }

    #[test]
    fn bom_quotes_newlines_and_blank_lines() {
        let (_d, p) = feed(b"\xEF\xBB\xBFrecord_uid;firstname\n\n1;\"Anna\nLena\"\n;\n2;Bo\n\n");
        let (cols, recs) = read_all(&p);
        assert_eq!(cols, ["record_uid", "firstname"]);
        let recs: Vec<_> = recs.into_iter().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].line, 3);
        assert_eq!(recs[0].values[1], "Anna\nLena");
        assert_eq!(recs[1].line, 6);
    }

    #[test]
    fn wrong_field_count_is_a_line_error_and_reading_goes_on() {
        let (_d, p) = feed(b"a,b\n1,2\n3\n4,5\n");
        let (_, recs) = read_all(&p);
        assert!(recs[0].is_ok());
        let e = recs[1].as_ref().unwrap_err();
        assert!(e.contains("f.csv:3:") && e.contains("header has 2"), "{e}");
        assert_eq!(recs[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn bad_utf8_and_utf16_are_clear() {
        let (_d, p) = feed(b"a,b\n1,\xff\xfe\n2,x\n");
        let (_, recs) = read_all(&p);
        assert!(recs[0].as_ref().unwrap_err().contains("UTF-8"));
        assert!(recs[1].is_ok());
        let (_d, p) = feed(b"\xff\xfea\x00,\x00b\x00");
        let e = CsvFeed::open(&p, None).err().unwrap().to_string();
        assert!(e.contains("UTF-16"), "{e}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let (_d, p) = feed(b"");
        assert!(CsvFeed::open(&p, None).is_err());
    }

    #[test]
    fn line_numbers_survive_blank_lines_crlf_and_quoted_newlines() {
        let (_d, p) = feed(b"a,b\r\n\r\n\r\n1,\"x\r\n\r\ny\"\r\n\r\n2,z\r\n   ,  \r\n3,w\r\n");
        let (_, recs) = read_all(&p);
        let lines: Vec<u64> = recs.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, [4, 8, 10]);
    }

    #[test]
    fn crlf_line_endings() {
        let (_d, p) = feed(b"a,b\r\n1,2\r\n3,4\r\n");
        let (_, recs) = read_all(&p);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].as_ref().unwrap().values, ["3", "4"]);
    }
}
