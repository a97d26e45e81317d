//! The JSON reader: an array of objects, or one object per line (JSON lines,
//! `.jsonl`/`.ndjson`) — told apart by the first character. Streams record
//! by record. Values become text: numbers and booleans as written, `null`
//! as empty, arrays joined with `,` (so `"classes": ["5a", "5b"]` works).

use super::encoding::{NOT_UTF8, open_decoded};
use super::{FeedError, FeedReader, RawRecord};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// A byte stream that counts the newlines it hands out.
struct Counted {
    inner: Box<dyn BufRead + Send>,
    newlines: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
}

impl Counted {
    /// Skips whitespace; returns the next byte without consuming it.
    fn peek_non_ws(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.inner.fill_buf()?;
            let Some(&b) = buf.first() else { return Ok(None) };
            if b.is_ascii_whitespace() {
                if b == b'\n' {
                    self.newlines += 1;
                }
                self.inner.consume(1);
            } else {
                return Ok(Some(b));
            }
        }
    }

    fn line(&self) -> u64 {
        self.newlines + 1
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `[ {..}, {..} ]`; `started` once past `[`.
    Array,
    Lines,
}

pub struct JsonFeed {
    path: PathBuf,
    input: Counted,
    mode: Mode,
    names: Vec<String>,
    ids: FxHashMap<String, usize>,
    index: u64,
    done: bool,
    line_buf: String,
}

impl JsonFeed {
    pub fn open(path: &Path) -> Result<Self, FeedError> {
        Self::open_encoded(path, None)
    }

    /// Opens a feed in a declared encoding (`None`: UTF-8 / UTF-16 with BOM).
    pub fn open_encoded(path: &Path, encoding: Option<&'static encoding_rs::Encoding>) -> Result<Self, FeedError> {
        let (inner, _) = open_decoded(path, encoding)?;
        let mut input = Counted { inner, newlines: 0 };
        let io = |source| FeedError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = match input.peek_non_ws().map_err(io)? {
            Some(b'[') => {
                input.inner.consume(1);
                Mode::Array
            }
            Some(b'{') => Mode::Lines,
            Some(_) => {
                return Err(FeedError::File {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {}: expected an array of objects or one object per line; export the records as [{{…}}, {{…}}] or one {{…}} per line",
                        input.line()
                    ),
                });
            }
            None => {
                return Err(FeedError::File {
                    path: path.to_path_buf(),
                    message:
                        "the file is empty; expected an array of objects or one object per line: export the feed again"
                            .into(),
                });
            }
        };
        Ok(JsonFeed {
            path: path.to_path_buf(),
            input,
            mode,
            names: Vec::new(),
            ids: FxHashMap::default(),
            index: 0,
            done: false,
            line_buf: String::new(),
        })
    }

    fn file_error(&mut self, message: String) -> FeedError {
        self.done = true;
        FeedError::File {
            path: self.path.clone(),
            message,
        }
    }

    fn record_error(&self, line: u64, message: String) -> FeedError {
        FeedError::Record {
            path: self.path.clone(),
            line,
            message,
        }
    }

    /// Turns one parsed object into a record.
    fn record(&mut self, line: u64, fields: Fields<'_>) -> Result<RawRecord, FeedError> {
        self.index += 1;
        let mut out = Vec::with_capacity(fields.0.len());
        for (Key(name), text) in fields.0 {
            let Some(text) = text else {
                return Err(self.record_error(
                    line,
                    format!("field '{name}' holds an object; records must have flat fields (text, numbers or lists)"),
                ));
            };
            let id = match self.ids.get(name.as_ref()) {
                Some(id) => *id,
                None => {
                    let id = self.names.len();
                    self.ids.insert(name.to_string(), id);
                    self.names.push(name.into_owned());
                    id
                }
            };
            out.push((id, text));
        }
        Ok(RawRecord {
            line,
            index: self.index,
            fields: out,
        })
    }

    fn next_in_array(&mut self) -> Option<Result<RawRecord, FeedError>> {
        let peeked = match self.input.peek_non_ws() {
            Ok(b) => b,
            Err(e) => return Some(Err(self.file_error(e.to_string()))),
        };
        match peeked {
            None => {
                let line = self.input.line();
                return Some(Err(self.file_error(format!(
                    "line {line}: the file ends inside the array (a missing ']'? the file may be truncated); export the feed again and import the whole file"
                ))));
            }
            Some(b']') => {
                self.done = true;
                return None;
            }
            Some(b',') if self.index > 0 => {
                self.input.inner.consume(1);
                match self.input.peek_non_ws() {
                    Ok(Some(b'{')) | Ok(Some(b'[')) | Ok(Some(b'"')) => {}
                    Ok(_) => {
                        let line = self.input.line();
                        return Some(Err(self.file_error(format!("line {line}: expected a record after ','"))));
                    }
                    Err(e) => return Some(Err(self.file_error(e.to_string()))),
                }
            }
            Some(_) if self.index > 0 => {
                let line = self.input.line();
                return Some(Err(self.file_error(format!(
                    "line {line}: expected ',' or ']' between records; add the missing ',' after the previous record"
                ))));
            }
            Some(_) => {}
        }
        let line = self.input.line();
        let mut de = serde_json::Deserializer::from_reader(&mut self.input);
        match Fields::deserialize(&mut de) {
            Ok(f) => Some(self.record(line, f)),
            Err(e) => {
                let at = line + e.line().saturating_sub(1) as u64;
                let message = if e.is_eof() {
                    format!(
                        "line {at}: the file ends inside a record (truncated?); export the feed again and import the whole file"
                    )
                } else if e.to_string().contains("UTF-8") || e.to_string().contains("unicode code point") {
                    format!("line {at}: {NOT_UTF8}")
                } else {
                    format!("line {at}: not valid JSON: {e}")
                };
                Some(Err(self.file_error(message)))
            }
        }
    }

    fn next_line(&mut self) -> Option<Result<RawRecord, FeedError>> {
        loop {
            self.line_buf.clear();
            let line = self.input.line();
            match self.input.inner.read_line(&mut self.line_buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {
                    self.input.newlines += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Some(Err(self.file_error(format!("line {line}: {NOT_UTF8}"))));
                }
                Err(e) => return Some(Err(self.file_error(e.to_string()))),
            }
            if self.line_buf.trim().is_empty() {
                continue;
            }
            // The parsed keys borrow the line: take the buffer while they live.
            let buf = std::mem::take(&mut self.line_buf);
            let result = match serde_json::from_str::<Fields>(buf.trim()) {
                Ok(f) => self.record(line, f),
                Err(e) => {
                    self.index += 1;
                    Err(self.record_error(
                        line,
                        format!(
                            "not valid JSON (column {}): {}; each line must hold one complete JSON object",
                            e.column(),
                            e.to_string().split(" at line ").next().unwrap_or_default()
                        ),
                    ))
                }
            };
            self.line_buf = buf;
            return Some(result);
        }
    }
}

/// A record's fields as text, straight from the parser (no intermediate
/// `Value`); `None` marks a field that holds an object.
struct Fields<'de>(Vec<(Key<'de>, Option<String>)>);

/// A field name, borrowed from the input when it can be.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a record: a JSON object ({\"field\": \"value\", …})")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let Text(v) = map.next_value()?;
                    out.push((key, v));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One field value as text: numbers and booleans as written, `null` empty,
/// arrays joined with `,`; `None` for objects.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text, a number, a boolean, null or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(Some(v.trim().to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(Some(if v.trim().len() == v.len() {
                    v
                } else {
                    v.trim().to_string()
                })))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(Some(String::new())))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(Some(String::new())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
                let mut parts: Vec<String> = Vec::new();
                let mut object = false;
                while let Some(Text(item)) = seq.next_element()? {
                    match item {
                        Some(t) if !t.is_empty() => parts.push(t),
                        Some(_) => {}
                        None => object = true,
                    }
                }
                Ok(Text((!object).then(|| parts.join(","))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl Iterator for JsonFeed {
    type Item = Result<RawRecord, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.mode {
            Mode::Array => self.next_in_array(),
            Mode::Lines => self.next_line(),
        }
    }
}

impl FeedReader for JsonFeed {
    fn field_names(&self) -> &[String] {
        &self.names
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn has_header(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Named = Result<(u64, Vec<(String, String)>), String>;

    fn read(text: &[u8]) -> (Vec<String>, Vec<Named>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        std::fs::write(&p, text).unwrap();
        let mut f = JsonFeed::open(&p).unwrap();
        let mut out = Vec::new();
        for r in f.by_ref() {
            out.push(r.map_err(|e| e.to_string()));
        }
        let names = f.field_names().to_vec();
        let out = out
            .into_iter()
            .map(|r| {
                r.map(|rec| {
                    (
                        rec.line,
                        rec.fields.into_iter().map(|(i, v)| (names[i].clone(), v)).collect(),
                    )
                })
            })
            .collect();
        (names, out)
    }

    #[test]
    fn array_of_objects_with_lines_and_values() {
        let (names, recs) = read(
            b"[\n  {\"record_uid\": \"1\", \"classes\": [\"5a\", \"5b\"], \"n\": 3},\n\n  {\"record_uid\": \"2\", \"x\": null}\n]\n",
        );
        assert_eq!(names, ["record_uid", "classes", "n", "x"]);
        let r0 = recs[0].as_ref().unwrap();
        assert_eq!(r0.0, 2);
        assert!(r0.1.contains(&("classes".into(), "5a,5b".into())));
        assert!(r0.1.contains(&("n".into(), "3".into())));
        assert_eq!(recs[1].as_ref().unwrap().0, 4);
        assert_eq!(recs.len(), 2);
    }

    #[test]
    fn json_lines_continue_after_a_bad_line() {
        let (_, recs) = read(b"{\"a\": \"1\"}\n{\"a\": \n\n{\"a\": \"3\"}\n");
        assert_eq!(recs.len(), 3);
        assert!(recs[1].as_ref().unwrap_err().contains("f.json:2:"));
        assert_eq!(recs[2].as_ref().unwrap().0, 4);
    }

    #[test]
    fn truncated_malformed_and_empty_are_clear() {
        let (_, recs) = read(b"[{\"a\": \"1\"},\n{\"a\": \"2\"");
        let e = recs.last().unwrap().as_ref().unwrap_err();
        assert!(e.contains("line 2") && e.contains("truncated"), "{e}");
        let (_, recs) = read(b"[{\"a\": \"1\"} {\"a\": \"2\"}]");
        assert!(recs.last().unwrap().as_ref().unwrap_err().contains("expected ','"));
        let (_, recs) = read(b"[{\"a\": {\"b\": 1}}]");
        assert!(recs[0].as_ref().unwrap_err().contains("holds an object"));
        let (_, recs) = read(b"[]");
        assert!(recs.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.json");
        std::fs::write(&p, b"  \n").unwrap();
        assert!(JsonFeed::open(&p).err().unwrap().to_string().contains("empty"));
        std::fs::write(&p, b"\"x\"").unwrap();
        assert!(
            JsonFeed::open(&p)
                .err()
                .unwrap()
                .to_string()
                .contains("expected an array")
        );
    }

    #[test]
    fn wrong_encoding_is_one_error() {
        let (_, recs) = read(b"{\"a\": \"M\xfcller\"}\n{\"a\": \"b\"}\n");
        assert_eq!(recs.len(), 1);
        assert!(recs[0].as_ref().unwrap_err().contains("not UTF-8"));
    }
}
