//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), one function
//! per target taking the fuzzer's bytes. They live in the library so that
//! `tests/directory/fuzz_corpus.rs` replays the saved corpus through exactly the same
//! code on every `cargo test`. Each function must return normally for any
//! input: an error is a fine answer, a panic, hang or runaway allocation is
//! a bug. Not part of the API.

use crate::engine::config::{LoadOptions, load};
use crate::engine::feed::{self, FeedOptions, Format, XmlFields};
use crate::engine::mapping::{Mapper, RulesFile};
use crate::engine::scheme::{EmailScheme, NameRegistry, SchemeError, SchemeFields, UsernameScheme};
use crate::engine::sync::filter::{Attributes, Filter};
use crate::engine::sync::item::{QueueItem, file_name, valid_file_name};
use crate::engine::sync::queue::{ItemDir, Queue};
use crate::engine::sync::verify::FILTER_ATTRIBUTES;
use crate::model::ObjectRef;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::OnceLock;

/// At most this many records are read from one input (inputs are small;
/// this only bounds a reader that would loop without consuming input).
const MAX_RECORDS: usize = 100_000;

/// A private scratch folder for the files the readers need.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rollcall-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

fn scratch_file(name: &str, data: &[u8]) -> Option<PathBuf> {
    let thread = format!("{:?}", std::thread::current().id());
    let dir = scratch().join(thread.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    std::fs::write(&path, data).ok()?;
    Some(path)
}

/// Reads every record of `data` as a feed of `format`.
fn read_feed(data: &[u8], name: &str, format: Format, options: &FeedOptions) {
    let Some(path) = scratch_file(name, data) else {
        return;
    };
    let Ok(reader) = feed::open(&path, Some(format), options) else {
        return;
    };
    for (n, rec) in reader.enumerate() {
        if n >= MAX_RECORDS {
            break;
        }
        if let Ok(rec) = rec {
            assert!(rec.line >= 1 && rec.index >= 1, "records count from 1");
        }
    }
}

pub fn csv(data: &[u8]) {
    read_feed(data, "feed.csv", Format::Csv, &FeedOptions::default());
}

pub fn tsv(data: &[u8]) {
    read_feed(data, "feed.tsv", Format::Tsv, &FeedOptions::default());
}

pub fn json(data: &[u8]) {
    read_feed(data, "feed.json", Format::Json, &FeedOptions::default());
}

/// The first byte picks where records keep their fields.
pub fn xml(data: &[u8]) {
    let (mode, rest) = match data.split_first() {
        Some((b, rest)) => (
            [XmlFields::Auto, XmlFields::Elements, XmlFields::Attributes][usize::from(*b) % 3],
            rest,
        ),
        None => (XmlFields::default(), data),
    };
    read_feed(
        rest,
        "feed.xml",
        Format::Xml,
        &FeedOptions {
            xml_fields: mode,
            ..Default::default()
        },
    );
}

/// A mapping-rules TOML file, a NUL byte, then a CSV feed the rules map.
pub fn mapping(data: &[u8]) {
    let (rules, feed_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"record_uid,firstname,lastname\n1,A,B\n"[..]),
    };
    let Ok(text) = std::str::from_utf8(rules) else {
        return;
    };
    let Ok(rules) = toml::from_str::<RulesFile>(text) else {
        return;
    };
    let Ok(mut mapper) = Mapper::new(Some((&rules, "fuzz.toml")), &BTreeMap::new(), &BTreeMap::new()) else {
        return;
    };
    let Some(path) = scratch_file("mapped.csv", feed_bytes) else {
        return;
    };
    let Ok(reader) = feed::open(&path, Some(Format::Csv), &FeedOptions::default()) else {
        return;
    };
    if mapper.learn_fields(reader.field_names()).is_err() {
        return;
    }
    for rec in reader.take(MAX_RECORDS).flatten() {
        let _ = mapper.record_uid(&rec);
        let _ = mapper.map(&rec, None);
    }
}

fn queue_dir() -> Option<Queue> {
    let out = scratch().join(format!(
        "queues-{}",
        format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "")
    ));
    Queue::open(&out, "fuzz").ok()
}

fn read_item(data: &[u8], dir: ItemDir) {
    // The object reference alone, as `schedule` and file names see it.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(object) = text.parse::<ObjectRef>()
    {
        let name = file_name(&object);
        assert!(valid_file_name(&name), "{name}");
        assert_eq!(object.to_string().parse::<ObjectRef>().ok().as_ref(), Some(&object));
    }
    let Some(queue) = queue_dir() else {
        return;
    };
    let name = "1-user_fuzz-0.json";
    let path = queue.item_path(dir, name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(item) = queue.read(dir, name) {
        // What the engine writes back must read again the same.
        let again = serde_json::to_vec(&item)
            .ok()
            .map(|b| serde_json::from_slice::<QueueItem>(&b));
        let again = again.and_then(Result::ok).map(|i| (i.object, i.schools, i.attempts));
        assert_eq!(again, Some((item.object, item.schools, item.attempts)));
    }
}

/// A pending queue item (`queues/out/<authority>/*.json`), or an object
/// reference.
pub fn queue_item(data: &[u8]) {
    read_item(data, ItemDir::Pending);
}

/// A trash file (`queues/out/<authority>/trash/*.json`).
pub fn trash_file(data: &[u8]) {
    read_item(data, ItemDir::Trash);
}

/// A configuration file (`--config FILE`), loaded over the built-in
/// defaults and validated.
pub fn config(data: &[u8]) {
    let Some(path) = scratch_file("rollcall.toml", data) else {
        return;
    };
    let _ = load(&LoadOptions {
        files: vec![path],
        ..Default::default()
    });
}

/// Two bytes of HTTP status, then a response body.
pub fn scim_response(data: &[u8]) {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]) % 600, rest),
        _ => (200, data),
    };
    let _ = crate::engine::sync::target::scim::read_answer(status, body);
}

struct Registry {
    taken: HashSet<String>,
    counters: HashMap<String, u32>,
}

impl NameRegistry for Registry {
    fn is_taken(&mut self, username: &str) -> Result<bool, SchemeError> {
        Ok(self.taken.contains(username))
    }
    fn counter(&mut self, base: &str) -> Result<Option<u32>, SchemeError> {
        Ok(self.counters.get(base).copied())
    }
    fn issue(&mut self, username: &str, base: &str, next_counter: Option<u32>) {
        self.taken.insert(username.to_string());
        if let Some(n) = next_counter {
            self.counters.insert(base.to_string(), n);
        }
    }
}

/// Lines: a username scheme, an e-mail scheme, first name, last name,
/// record uid; the first byte is the maximum length. Allocates a few names
/// from the same fields (they must differ) and renders the e-mail.
pub fn scheme(data: &[u8]) {
    let Some((max, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let username = lines.next().unwrap_or_default();
    let email = lines.next().unwrap_or_default();
    let fields = SchemeFields {
        firstname: lines.next().unwrap_or_default(),
        lastname: lines.next().unwrap_or_default(),
        record_uid: lines.next().unwrap_or_default(),
        username: None,
    };
    let max_length = usize::from(*max);
    if let Ok(scheme) = UsernameScheme::parse(username, max_length) {
        let mut registry = Registry {
            taken: HashSet::new(),
            counters: HashMap::new(),
        };
        let mut issued = HashSet::new();
        for _ in 0..3 {
            match scheme.allocate(&fields, &mut registry) {
                Ok(name) => {
                    assert!(name.chars().count() <= max_length, "{name} longer than {max_length}");
                    assert!(issued.insert(name.clone()), "{name} issued twice");
                }
                Err(_) => break,
            }
        }
        let name = issued.into_iter().next();
        if let Ok(e) = EmailScheme::parse(email) {
            let _ = e.render(&SchemeFields {
                username: name.as_deref(),
                ..fields
            });
        }
    } else if let Ok(e) = EmailScheme::parse(email) {
        let _ = e.render(&fields);
    }
}

/// A user as `verify --filter` sees one, for [`ldap_filter`].
struct FilterObject;

impl Attributes for FilterObject {
    fn values(&self, attribute: &str) -> Vec<String> {
        match attribute {
            "school" => vec!["gsmitte".into(), "GSNord".into()],
            "role" => vec!["student".into()],
            "username" | "name" => vec!["a.alt".into()],
            "firstname" => vec!["Anna (Ann)".into()],
            "lastname" => vec!["Ält*\\".into()],
            "email" => Vec::new(),
            _ => vec![String::new()],
        }
    }
}

/// An RFC 4515 filter as `verify --filter` takes it: parsed over the
/// attributes verify knows; a filter that parses prints back to text that
/// parses to the same filter, and matching it never fails.
pub fn ldap_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Filter::parse(&text, FILTER_ATTRIBUTES) {
        Ok(filter) => {
            let printed = filter.to_string();
            let again = Filter::parse(&printed, FILTER_ATTRIBUTES);
            assert_eq!(again.as_ref(), Ok(&filter), "{text:?} printed as {printed:?}");
            let _ = filter.matches(&FilterObject);
        }
        Err(e) => {
            let chars = text.chars().count();
            assert!(e.position >= 1 && e.position <= chars + 1, "{e}");
        }
    }
}

/// A target: its name (the folder under `fuzz/corpus/`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the corpus replay.
pub const TARGETS: &[Target] = &[
    ("csv", csv),
    ("tsv", tsv),
    ("json", json),
    ("xml", xml),
    ("mapping", mapping),
    ("queue_item", queue_item),
    ("trash_file", trash_file),
    ("config", config),
    ("scim_response", scim_response),
    ("scheme", scheme),
    ("ldap_filter", ldap_filter),
];
