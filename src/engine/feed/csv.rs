//! The CSV and TSV readers: delimiter sniffed from the header line (`,` `;`
//! or tab) unless given, quoted fields with embedded newlines (CSV; TSV has
//! no quoting), blank lines ignored. Streams record by record over the
//! decoded (UTF-8) input.

use super::encoding::{NOT_UTF8, open_decoded};
use super::lines::{Lines, NewlineTracker};
use super::{FeedError, FeedReader, RawRecord};
use std::io::BufRead;
use std::path::{Path, PathBuf};

pub struct CsvFeed {
    path: PathBuf,
    columns: Vec<String>,
    delimiter: u8,
    records: csv::StringRecordsIntoIter<NewlineTracker<Box<dyn BufRead + Send>>>,
    lines: Lines,
    index: u64,
    done: bool,
}

/// The longest line a CSV or TSV feed may have.
pub const MAX_LINE: u64 = 1 << 20;

/// A read error: a refused line (too long) is a file error with its
/// message, anything else an I/O error.
fn read_error(path: &Path, e: &csv::Error) -> FeedError {
    if let csv::ErrorKind::Io(io) = e.kind()
        && io.kind() == std::io::ErrorKind::InvalidData
    {
        return file_error(path, io.to_string());
    }
    FeedError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

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
    /// Opens a CSV feed; `delimiter` overrides sniffing.
    pub fn open(path: &Path, delimiter: Option<u8>) -> Result<Self, FeedError> {
        Self::open_encoded(path, delimiter, true, None)
    }

    /// Opens a TSV feed: tab-separated, no quoting.
    pub fn open_tsv(path: &Path) -> Result<Self, FeedError> {
        Self::open_encoded(path, Some(b'\t'), false, None)
    }

    /// Opens a CSV (`quoting`) or TSV feed in a declared encoding (`None`:
    /// UTF-8 / UTF-16 with BOM).
    pub fn open_encoded(
        path: &Path,
        delimiter: Option<u8>,
        quoting: bool,
        encoding: Option<&'static encoding_rs::Encoding>,
    ) -> Result<Self, FeedError> {
        let (mut reader, _) = open_decoded(path, encoding)?;
        let (delimiter, reader) = match delimiter {
            Some(d) => (d, reader),
            None => {
                // The header line (up to 64 KiB), read whole: a decoder may
                // hand out its first bytes in small pieces.
                let mut head = Vec::new();
                std::io::Read::take(&mut reader, 64 * 1024)
                    .read_until(b'\n', &mut head)
                    .map_err(|source| FeedError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                let end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
                let d = sniff_delimiter(&head[..end]);
                let joined: Box<dyn BufRead + Send> =
                    Box::new(std::io::Read::chain(std::io::Cursor::new(head), reader));
                (d, joined)
            }
        };
        let (tracked, lines) = NewlineTracker::new(reader);
        let tracked = tracked.with_line_cap(MAX_LINE);
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .quoting(quoting)
            .from_reader(tracked);
        let header = csv.headers().map_err(|e| match e.kind() {
            csv::ErrorKind::Utf8 { .. } => file_error(path, format!("line 1: {NOT_UTF8}")),
            csv::ErrorKind::Io(_) => read_error(path, &e),
            _ => file_error(path, format!("line 1: cannot read the header: {e}")),
        })?;
        let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if columns.iter().all(String::is_empty) {
            return Err(file_error(
                path,
                "the file is empty or its first line is blank; the first line must be the header: export the feed again, header first",
            ));
        }
        if let Some(dup) = columns.iter().enumerate().find_map(|(i, c)| {
            columns[..i]
                .iter()
                .any(|p| !c.is_empty() && p.eq_ignore_ascii_case(c))
                .then_some(c)
        }) {
            return Err(file_error(
                path,
                format!("line 1: column '{dup}' appears twice in the header; rename or remove one of them"),
            ));
        }
        Ok(CsvFeed {
            path: path.to_path_buf(),
            columns,
            delimiter,
            records: csv.into_records(),
            lines,
            index: 0,
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
                        // A wrong character set is a file problem, not a row problem.
                        csv::ErrorKind::Utf8 { .. } => {
                            self.done = true;
                            FeedError::File {
                                path: self.path.clone(),
                                message: format!("line {line}: {NOT_UTF8}"),
                            }
                        }
                        csv::ErrorKind::Io(_) => {
                            self.done = true;
                            read_error(&self.path, &e)
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
            self.index += 1;
            if rec.len() != self.columns.len() && rec.iter().any(|v| v.contains('\n')) {
                // A quote that never closes swallows the lines after it.
                let lines = rec.iter().map(|v| v.matches('\n').count()).sum::<usize>();
                return Some(Err(self.record_error(
                    line,
                    format!(
                        "{} fields, but the header has {}; a quoted field runs over the next {lines} line(s): \
                         is a closing quote (\") missing? Close it, or write a quote inside a field as \"\"",
                        rec.len(),
                        self.columns.len()
                    ),
                )));
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
                index: self.index,
                fields: rec.iter().map(|v| v.trim().to_string()).enumerate().collect(),
            }));
        }
    }
}

impl FeedReader for CsvFeed {
    fn field_names(&self) -> &[String] {
        &self.columns
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn has_header(&self) -> bool {
        true
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
        let cols = f.field_names().to_vec();
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
        assert_eq!(recs[0].fields[1].1, "Anna\nLena");
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
    fn other_encodings_are_one_clear_error_and_utf16_is_read() {
        let (_d, p) = feed(b"a,b\n1,x\n2,M\xfcller\n3,y\n");
        let (_, recs) = read_all(&p);
        assert_eq!(recs.len(), 2, "reading stops at the bad line");
        let e = recs[1].as_ref().unwrap_err();
        assert!(e.contains(":line 3") || e.contains("line 3"), "{e}");
        assert!(e.contains("not UTF-8"), "{e}");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a;b\n1;Jörg\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        let (_d, p) = feed(&utf16);
        let (cols, recs) = read_all(&p);
        assert_eq!(cols, ["a", "b"]);
        assert_eq!(recs[0].as_ref().unwrap().fields[1].1, "Jörg");
    }

    #[test]
    fn tsv_has_no_quoting() {
        let (_d, p) = feed(b"a\tb\n1\t\"x\n");
        let f = CsvFeed::open_tsv(&p).unwrap();
        let recs: Vec<_> = f.collect();
        assert_eq!(recs[0].as_ref().unwrap().fields[1].1, "\"x");
    }

    #[test]
    fn duplicate_headers_are_refused() {
        let (_d, p) = feed(b"a,b,A\n1,2,3\n");
        let e = CsvFeed::open(&p, None).err().unwrap().to_string();
        assert!(e.contains("appears twice"), "{e}");
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
        assert_eq!(
            recs[1].as_ref().unwrap().fields,
            [(0, "3".to_string()), (1, "4".to_string())]
        );
    }
}
