//! Reading a whole feed: open it in its format, map each record through the
//! rules, validate it into a row. Row errors are collected (with their
//! lines); problems with the file as a whole stop the import.

use super::ImportRequest;
use super::row::{self, Row, RowContext, RowError};
use crate::engine::feed::{self, FeedError, FeedOptions, Format};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::mapping::{self, Attr, Mapped, Mapper};
use crate::engine::{Engine, EngineError, EngineResult, Settings};
use crate::model::Role;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

/// The validated content of a feed.
pub struct ReadFeed {
    pub format: Format,
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
    /// Records a skip rule dropped: (line, rule).
    pub skipped: Vec<(u64, String)>,
    /// Record uids of rejected rows: never removed by this run.
    pub protected: HashSet<String>,
    /// A rejected row whose record uid is unknown: no removals at all.
    pub unknown_rejected: bool,
}

impl Engine {
    /// Reads, maps and validates every record of the feed; touches neither
    /// the directory nor the local state.
    pub fn read_feed(
        &self,
        req: &ImportRequest,
        run_roles: &BTreeSet<Role>,
        progress: &mut dyn Progress,
    ) -> EngineResult<ReadFeed> {
        read_feed(&self.settings, req, run_roles, progress)
    }
}

/// The rules file for this import, if any: `--mapping`, else the one
/// configured for the format.
fn rules_path(settings: &Settings, req: &ImportRequest, format: Format) -> Option<PathBuf> {
    req.mapping
        .clone()
        .or_else(|| settings.config.import.mappings.get(format.as_str()).map(PathBuf::from))
}

/// Reads, maps and validates every record of the feed.
pub(super) fn read_feed(
    settings: &Settings,
    req: &ImportRequest,
    run_roles: &BTreeSet<Role>,
    progress: &mut dyn Progress,
) -> EngineResult<ReadFeed> {
    {
        let cfg = &settings.config.import;
        let format = req.format.unwrap_or_else(|| Format::of_path(&req.file));
        let rules_path = rules_path(settings, req, format);
        let rules = match &rules_path {
            Some(p) => Some(mapping::load_rules(p).map_err(EngineError::BadInput)?),
            None => None,
        };
        if let (Some(r), Some(p)) = (&rules, &rules_path)
            && let Some(want) = r.format
        {
            let same = want == format
                || matches!(
                    (want, format),
                    (Format::Json | Format::Jsonl, Format::Json | Format::Jsonl)
                );
            if !same {
                return Err(EngineError::Usage(format!(
                    "mapping rules {} are for {} feeds, but {} is read as {}; pass --format or other rules",
                    p.display(),
                    want.as_str(),
                    req.file.display(),
                    format.as_str()
                )));
            }
        }
        let renames = match format {
            Format::Csv | Format::Tsv => cfg.csv.mapping.clone(),
            _ => BTreeMap::new(),
        };
        let origin = rules_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        let mut mapper =
            Mapper::new(rules.as_ref().map(|r| (r, origin.as_str())), &renames, &cfg.roles).map_err(|e| {
                match &rules_path {
                    Some(p) => EngineError::BadInput(format!("mapping rules {}: {e}", p.display())),
                    None => EngineError::BadInput(e),
                }
            })?;
        let encoding = match req.encoding.as_deref().unwrap_or(&cfg.encoding) {
            "" => None,
            label => Some(crate::engine::feed::encoding::for_label(label).ok_or_else(|| {
                EngineError::Usage(format!(
                    "--encoding '{label}' is not an encoding label; use e.g. windows-1252, iso-8859-15 or utf-8"
                ))
            })?),
        };
        let options = FeedOptions {
            delimiter: cfg.delimiter(),
            xml_fields: rules.as_ref().and_then(|r| r.xml_fields).unwrap_or(cfg.xml.fields),
            encoding,
        };
        let feed = feed::open(&req.file, Some(format), &options)?;
        let file_error = |message: String| FeedError::File {
            path: req.file.clone(),
            message,
        };
        if feed.has_header() {
            mapper
                .learn_fields(feed.field_names())
                .map_err(|p| file_error(format!("line 1: column '{}' {}", p.field, p.problem)))?;
            let mut mandatory = vec![Attr::RecordUid, Attr::Firstname, Attr::Lastname];
            if run_roles.is_empty() {
                mandatory.push(Attr::Role);
            }
            for attr in mandatory {
                if !mapper.sourced(attr) {
                    let hint = if attr == Attr::Role {
                        "; give the roles with --role or add a role column".to_string()
                    } else {
                        format!(
                            "; add it, or map the column that holds it in [import.csv.mapping] (\"Header\" = \"{}\")",
                            attr.name()
                        )
                    };
                    return Err(file_error(format!(
                        "missing mandatory column '{}' (the header has: {}){hint}",
                        mapper.source_name(attr),
                        feed.field_names().join(", ")
                    ))
                    .into());
                }
            }
        }
        let ctx = RowContext {
            school: &req.school,
            run_roles,
            role_aliases: &cfg.roles,
        };
        let run_role = (run_roles.len() == 1)
            .then(|| run_roles.iter().next().copied())
            .flatten();
        let mut out = ReadFeed {
            format,
            rows: Vec::with_capacity(expected_rows(&req.file)),
            errors: Vec::new(),
            skipped: Vec::new(),
            protected: HashSet::new(),
            unknown_rejected: false,
        };
        let mut first_line: FxHashMap<String, u64> = FxHashMap::default();
        let mut n: u64 = 0;
        let has_header = feed.has_header();
        let mut names: Vec<String> = feed.field_names().to_vec();
        // Names a record can use: those seen up to it (JSON/XML learn them
        // while reading; the reader's snapshot may run ahead).
        let mut seen = names.len();
        std::thread::scope(|s| -> EngineResult<()> {
            let batches = read_ahead(s, feed);
            for batch in batches {
                if let Some(grown) = batch.names {
                    names = grown;
                }
                for (rec, raw) in batch.records {
                    n += 1;
                    if n.is_multiple_of(4096) {
                        progress.update(ProgressEvent {
                            phase: "reading",
                            done: n,
                            total: None,
                        });
                    }
                    let rec = match rec {
                        Ok(rec) => rec,
                        Err(FeedError::Record { line, message, .. }) => {
                            out.unknown_rejected = true;
                            out.errors.push(RowError {
                                line,
                                record_uid: None,
                                message,
                            });
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if !has_header {
                        seen = rec.fields.iter().map(|(id, _)| id + 1).fold(seen, usize::max);
                        mapper.learn_fields(&names[..seen.min(names.len())]).map_err(|p| {
                            let problem = if rules.is_none() && p.problem.contains("[import.csv.mapping]") {
                                format!(
                                    "is not an attribute; write mapping rules for {} feeds that map it under [fields] \
                                         or list it in `ignore` (--mapping FILE or [import.mappings] {} = \"FILE\")",
                                    format.as_str(),
                                    format.as_str()
                                )
                            } else {
                                p.problem
                            };
                            file_error(format!("line {}: field '{}' {problem}", rec.line, p.field))
                        })?;
                    }
                    let mapped = match mapper.map(&rec, run_role) {
                        Ok(Mapped::Record(m)) => m,
                        Ok(Mapped::Skipped { line, rule }) => {
                            out.skipped.push((line, rule));
                            continue;
                        }
                        Err(e) => {
                            let record_uid = mapper.record_uid(&rec);
                            match &record_uid {
                                Some(uid) => {
                                    out.protected.insert(uid.clone());
                                }
                                None => out.unknown_rejected = true,
                            }
                            out.errors.push(RowError {
                                line: rec.line,
                                record_uid,
                                message: format!("mapping rule {}: {}", e.rule, e.message),
                            });
                            continue;
                        }
                    };
                    match row::parse_row(&mapped, raw, &ctx) {
                        Ok(row) => {
                            if let Some(first) = first_line.get(&row.record_uid) {
                                out.errors.push(RowError {
                                    line: row.line,
                                    record_uid: Some(row.record_uid.clone()),
                                    message: format!(
                                        "record_uid '{}' already appeared on line {first}; the first row wins and \
                                         this one is skipped; remove the duplicate row or fix its record_uid",
                                        row.record_uid
                                    ),
                                });
                                continue;
                            }
                            first_line.insert(row.record_uid.clone(), row.line);
                            out.rows.push(row);
                        }
                        Err(e) => {
                            match &e.record_uid {
                                Some(uid) => {
                                    out.protected.insert(uid.clone());
                                }
                                None => out.unknown_rejected = true,
                            }
                            out.errors.push(e);
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// A guess at the number of rows from the file size (a short record is
/// ~60 bytes), capped: growing a vector of a million rows by doubling costs
/// more copying and page faults than parsing them. Untouched capacity costs
/// no memory.
fn expected_rows(file: &std::path::Path) -> usize {
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    usize::try_from(bytes / 60).unwrap_or(usize::MAX).min(2_000_000)
}

/// Records per hand-over between the reading thread and the mapping one.
const AHEAD: usize = 512;

/// Records read (and kept as raw JSON, the "last received row") on a
/// second thread, with the field names when they grew.
struct Batch {
    records: Vec<(Result<feed::RawRecord, FeedError>, String)>,
    names: Option<Vec<String>>,
}

/// Parses the feed on its own thread while the caller maps and validates:
/// the two halves of the work then use both cores. The thread stops when
/// the caller drops the receiver (an error ended the import).
fn read_ahead<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    mut feed: Box<dyn feed::FeedReader>,
) -> std::sync::mpsc::Receiver<Batch> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    scope.spawn(move || {
        let mut known = feed.field_names().len();
        loop {
            let mut records = Vec::with_capacity(AHEAD);
            while records.len() < AHEAD {
                let Some(rec) = feed.next() else { break };
                let raw = match &rec {
                    Ok(r) => row::raw_json(feed.field_names(), &r.fields),
                    Err(_) => String::new(),
                };
                records.push((rec, raw));
            }
            let names = (feed.field_names().len() != known).then(|| {
                known = feed.field_names().len();
                feed.field_names().to_vec()
            });
            let end = records.len() < AHEAD;
            if tx.send(Batch { records, names }).is_err() || end {
                break;
            }
        }
    });
    rx
}
