//! Feed readers: turn an input file into a stream of raw records (values in
//! column order, each with the physical line it starts on). Mapping columns
//! onto model attributes is the import's job (`import::row`).

pub mod csv;

use std::path::{Path, PathBuf};
use thiserror::Error;

/// One record of a feed: the values in the order of the reader's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// Physical line the record starts on; the header is line 1.
    pub line: u64,
    pub values: Vec<String>,
}

#[derive(Debug, Error)]
pub enum FeedError {
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file as a whole is unusable (encoding, header); nothing is read.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// One record is unusable; reading goes on with the next.
    #[error("{}:{line}: {message}", path.display())]
    Record { path: PathBuf, line: u64, message: String },
}

impl FeedError {
    /// Errors of a single record, after which the reader continues.
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

/// A stream of records with known columns.
pub trait FeedReader: Iterator<Item = Result<RawRecord, FeedError>> {
    /// Column names as the file spells them.
    fn columns(&self) -> &[String];
    fn path(&self) -> &Path;
}
