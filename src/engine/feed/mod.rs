//! Feed readers: turn an input file into a stream of raw records — the
//! record's fields as (field id, text) pairs, the physical line it starts on
//! and its index. Formats: CSV, TSV, JSON (array or lines) and XML, in UTF-8
//! (with or without BOM) or UTF-16 with BOM. Mapping fields onto model
//! attributes is `mapping`'s job.

pub mod csv;
pub mod encoding;
pub mod json;
mod lines;
pub mod xml;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub use xml::XmlFields;

/// One record of a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// Physical line the record starts on (the first line is 1).
    pub line: u64,
    /// 1-based position among the file's records.
    pub index: u64,
    /// (field id, value): ids index [`FeedReader::field_names`].
    pub fields: Vec<(usize, String)>,
}

#[derive(Debug, Error)]
pub enum FeedError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file as a whole is unusable (encoding, header, syntax); nothing is
    /// imported.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// One record is unusable; reading goes on with the next.
    #[error("{}:{line}: {message}", path.display())]
    Record { path: PathBuf, line: u64, message: String },
}

impl FeedError {
    /// The line of a record error.
    pub fn line(&self) -> Option<u64> {
        match self {
            FeedError::Record { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The message without the file prefix.
    pub fn message(&self) -> String {
        match self {
            FeedError::Record { message, .. } | FeedError::File { message, .. } => message.clone(),
            FeedError::Io { source, .. } => source.to_string(),
        }
    }
}

/// A stream of records.
pub trait FeedReader: Iterator<Item = Result<RawRecord, FeedError>> + Send {
    /// Field names as the file spells them. For CSV/TSV the header; for JSON
    /// and XML the names seen so far (the list grows while reading).
    fn field_names(&self) -> &[String];
    fn path(&self) -> &Path;
    /// Whether all field names are known before the first record.
    fn has_header(&self) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Xml,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Csv, Format::Tsv, Format::Json, Format::Jsonl, Format::Xml];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Xml => "xml",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(s))
    }

    /// By file extension; unknown extensions read as CSV.
    pub fn of_path(path: &Path) -> Format {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::Jsonl,
            "xml" => Format::Xml,
            _ => Format::Csv,
        }
    }
}

/// Reader settings that come from configuration.
#[derive(Clone, Debug, Default)]
pub struct FeedOptions {
    /// CSV delimiter; `None` sniffs it from the header.
    pub delimiter: Option<u8>,
    pub xml_fields: XmlFields,
    /// The file's encoding when it is not UTF-8 (`--encoding`).
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// Opens a feed in the given format (or the one its extension says).
pub fn open(path: &Path, format: Option<Format>, options: &FeedOptions) -> Result<Box<dyn FeedReader>, FeedError> {
    let format = format.unwrap_or_else(|| Format::of_path(path));
    Ok(match format {
        Format::Csv => Box::new(csv::CsvFeed::open_encoded(
            path,
            options.delimiter,
            true,
            options.encoding,
        )?),
        Format::Tsv => Box::new(csv::CsvFeed::open_encoded(path, Some(b'\t'), false, options.encoding)?),
        Format::Json | Format::Jsonl => Box::new(json::JsonFeed::open_encoded(path, options.encoding)?),
        Format::Xml => Box::new(xml::XmlFeed::open_encoded(path, options.xml_fields, options.encoding)?),
    })
}
