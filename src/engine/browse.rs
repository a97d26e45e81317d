//! Files an admin looks at: the tail of rollcall's log, a run's log and
//! archived input, and the feed files waiting in `<data-dir>/feeds/`. The
//! console reads them through these methods, never from disk itself.

use super::{Engine, EngineResult, io_error};
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A log line's level, as `tracing` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TRACE" => Some(LogLevel::Trace),
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" => Some(LogLevel::Warn),
            "ERROR" => Some(LogLevel::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line of rollcall's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// `None` for continuation lines.
    pub level: Option<LogLevel>,
    pub text: String,
}

impl LogLine {
    /// Parses `2026-05-21T10:00:00.123Z  INFO target: message`.
    pub fn parse(text: &str) -> Self {
        let level = text.split_whitespace().nth(1).and_then(LogLevel::parse);
        LogLine {
            level,
            text: text.to_string(),
        }
    }
}

/// The tail of rollcall's log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogTail {
    /// The file read (the newest `rollcall.log*`), if any.
    pub file: Option<String>,
    pub lines: Vec<LogLine>,
}

/// A feed file that an import can read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedFileInfo {
    pub path: PathBuf,
    /// The path relative to the feeds folder, for display.
    pub name: String,
    pub bytes: u64,
}

/// Reads at most the last `max_bytes` of a file, from a line start.
fn tail_text(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        // Drop the partial first line.
        return Ok(text
            .split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default());
    }
    Ok(text)
}

/// The head of a feed as text: decoded by its BOM (UTF-8 without one),
/// whole lines only when it was `cut` short.
fn decode_head(bytes: &[u8], cut: bool) -> String {
    let (encoding, bom) = encoding_rs::Encoding::for_bom(bytes).unwrap_or((encoding_rs::UTF_8, 0));
    let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
    let mut text = text.into_owned();
    if cut && let Some(end) = text.rfind('\n') {
        text.truncate(end + 1);
    }
    text
}

impl Engine {
    /// The last `max_lines` lines of the newest `logs/rollcall.log*`.
    pub fn log_tail(&self, max_lines: usize) -> EngineResult<LogTail> {
        let logs = self.settings.paths.logs();
        let newest = match std::fs::read_dir(&logs) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("rollcall.log"))
                })
                .max(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(&logs)(e)),
        };
        let Some(path) = newest else {
            return Ok(LogTail::default());
        };
        // Lines are short; 200 bytes a line is generous.
        let text = tail_text(&path, (max_lines as u64).saturating_mul(200).max(4096)).map_err(io_error(&path))?;
        let mut lines: Vec<LogLine> = text.lines().map(LogLine::parse).collect();
        let skip = lines.len().saturating_sub(max_lines);
        lines.drain(..skip);
        Ok(LogTail {
            file: Some(path.display().to_string()),
            lines,
        })
    }

    /// The end of a run's `log.txt` (at most `max_bytes`).
    pub fn run_log(&self, run_id: &str, max_bytes: u64) -> EngineResult<String> {
        let path = self.runs.dir_of(run_id)?.join("log.txt");
        match tail_text(&path, max_bytes) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// The start of a run's archived input (at most `max_bytes`), or `None`
    /// when the run archived none.
    /// The archive is decompressed and decoded (a UTF-8 or UTF-16 BOM is
    /// honoured, anything else read as UTF-8 with invalid bytes replaced).
    pub fn run_input(&self, run_id: &str, max_bytes: u64) -> EngineResult<Option<String>> {
        let record = self.runs.show(run_id)?;
        let Some(name) = record.input else {
            return Ok(None);
        };
        let path = self.runs.dir_of(run_id)?.join(name);
        let mut bytes = Vec::new();
        self.runs
            .input(run_id)?
            .take(max_bytes)
            .read_to_end(&mut bytes)
            .map_err(io_error(&path))?;
        Ok(Some(decode_head(&bytes, bytes.len() as u64 == max_bytes)))
    }

    /// The feed files in `<data-dir>/feeds/` (the demo leaves one per school
    /// and role there), sorted by name.
    pub fn feed_files(&self) -> EngineResult<Vec<FeedFileInfo>> {
        let root = self.settings.paths.feeds();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&dir)(e)),
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let path = entry.path();
                let hidden = entry.file_name().to_str().is_none_or(|n| n.starts_with('.'));
                let Ok(meta) = entry.metadata() else { continue };
                if hidden {
                    continue;
                } else if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    let name = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
                    out.push(FeedFileInfo {
                        path,
                        name,
                        bytes: meta.len(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels_and_tails_whole_lines() {
        let l = LogLine::parse("2026-05-21T10:00:00.123Z  WARN rollcall::engine: careful");
        assert_eq!(l.level, Some(LogLevel::Warn));
        assert_eq!(LogLine::parse("  continued").level, None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "one\ntwo\nthree\n").unwrap();
        assert_eq!(tail_text(&p, 8).unwrap(), "three\n");
        assert_eq!(decode_head(b"one\ntwo\nth", true), "one\ntwo\n");
        assert_eq!(
            decode_head(b"\xef\xbb\xbfa\x1b", false),
            "a\x1b",
            "BOM dropped, nothing else"
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("zoë\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_head(&utf16, false), "zoë\n");
    }
}
