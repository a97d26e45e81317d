//! The XML reader: one record per child element of the root element; the
//! record's fields are its child elements (`<firstname>Max</firstname>`),
//! its attributes (`<user firstname="Max"/>`), or both. A field element with
//! child elements of its own becomes their texts joined with `,`
//! (`<classes><class>5a</class><class>5b</class></classes>` → `5a,5b`).

use super::encoding::{NOT_UTF8, open_decoded};
use super::lines::{Lines, NewlineTracker};
use super::{FeedError, FeedReader, RawRecord};
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Where an XML record keeps its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XmlFields {
    /// Attributes of the record element and its child elements.
    #[default]
    Auto,
    Elements,
    Attributes,
}

type Input = BufReader<NewlineTracker<Box<dyn BufRead + Send>>>;

pub struct XmlFeed {
    path: PathBuf,
    reader: quick_xml::Reader<Input>,
    lines: Lines,
    mode: XmlFields,
    names: Vec<String>,
    ids: HashMap<String, usize>,
    index: u64,
    done: bool,
    buf: Vec<u8>,
    root_seen: bool,
}

/// A record being read.
struct Partial {
    line: u64,
    fields: Vec<(usize, String)>,
    /// The field element open at depth 2, and its text so far.
    field: Option<(usize, String)>,
    /// Texts of elements nested inside the field (lists).
    items: Vec<String>,
    item: Option<String>,
}

impl XmlFeed {
    pub fn open(path: &Path, mode: XmlFields) -> Result<Self, FeedError> {
        Self::open_encoded(path, mode, None)
    }

    /// Opens a feed in a declared encoding (`None`: UTF-8 / UTF-16 with BOM).
    pub fn open_encoded(
        path: &Path,
        mode: XmlFields,
        encoding: Option<&'static encoding_rs::Encoding>,
    ) -> Result<Self, FeedError> {
        let (inner, _) = open_decoded(path, encoding)?;
        let (tracked, lines) = NewlineTracker::new(inner);
        let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(256 * 1024, tracked));
        reader.config_mut().expand_empty_elements = false;
        Ok(XmlFeed {
            path: path.to_path_buf(),
            reader,
            lines,
            mode,
            names: Vec::new(),
            ids: HashMap::new(),
            index: 0,
            done: false,
            buf: Vec::new(),
            root_seen: false,
        })
    }

    fn id(&mut self, name: &str) -> usize {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len();
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    fn fail(&mut self, offset: u64, message: String) -> FeedError {
        self.done = true;
        FeedError::File {
            path: self.path.clone(),
            message: format!("line {}: {message}", self.lines.line_of(offset)),
        }
    }

    fn read_record(&mut self) -> Option<Result<RawRecord, FeedError>> {
        let mut rec: Option<Partial> = None;
        let mut depth = if self.root_seen { 1 } else { 0 };
        loop {
            self.buf.clear();
            let pos = self.reader.buffer_position();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e.into_owned(),
                Err(e) => {
                    let at = self.reader.error_position();
                    let message = if e.to_string().contains("utf-8") || e.to_string().contains("UTF-8") {
                        NOT_UTF8.to_string()
                    } else {
                        format!(
                            "not well-formed XML: {e}; fix the file (or export it again: it may be truncated) and import again"
                        )
                    };
                    return Some(Err(self.fail(at, message)));
                }
            };
            match event {
                Event::Start(_) if depth == 0 => {
                    self.root_seen = true;
                    depth = 1;
                }
                Event::Empty(_) if depth == 0 => {
                    // `<users/>`: a feed without records.
                    self.root_seen = true;
                    self.done = true;
                    return None;
                }
                Event::Start(e) => {
                    let name = e.local_name().as_ref().to_string();
                    match depth {
                        1 => {
                            let mut p = Partial {
                                line: self.lines.line_of(pos),
                                fields: Vec::new(),
                                field: None,
                                items: Vec::new(),
                                item: None,
                            };
                            if let Err(m) = self.take_attributes(&e, &mut p) {
                                return Some(Err(self.fail(pos, m)));
                            }
                            rec = Some(p);
                        }
                        2 => {
                            if self.mode == XmlFields::Attributes {
                                return Some(Err(self.fail(
                                    pos,
                                    format!("element <{name}> inside a record, but import.xml.fields = \"attributes\""),
                                )));
                            }
                            let id = self.id(&name);
                            if let Some(p) = rec.as_mut() {
                                p.field = Some((id, String::new()));
                                p.items.clear();
                            }
                        }
                        3 => {
                            if let Some(p) = rec.as_mut() {
                                p.item = Some(String::new());
                            }
                        }
                        _ => {
                            return Some(Err(
                                self.fail(pos, format!("<{name}> is nested too deep for a record field"))
                            ));
                        }
                    }
                    depth += 1;
                }
                Event::Empty(e) => match depth {
                    1 => {
                        let mut p = Partial {
                            line: self.lines.line_of(pos),
                            fields: Vec::new(),
                            field: None,
                            items: Vec::new(),
                            item: None,
                        };
                        if let Err(m) = self.take_attributes(&e, &mut p) {
                            return Some(Err(self.fail(pos, m)));
                        }
                        self.index += 1;
                        return Some(Ok(RawRecord {
                            line: p.line,
                            index: self.index,
                            fields: p.fields,
                        }));
                    }
                    2 => {
                        let name = e.local_name().as_ref().to_string();
                        let id = self.id(&name);
                        if let Some(p) = rec.as_mut() {
                            p.fields.push((id, String::new()));
                        }
                    }
                    _ => {}
                },
                Event::End(_) => {
                    depth -= 1;
                    match depth {
                        0 => {
                            self.done = true;
                            return None;
                        }
                        1 => {
                            if let Some(p) = rec.take() {
                                self.index += 1;
                                return Some(Ok(RawRecord {
                                    line: p.line,
                                    index: self.index,
                                    fields: p.fields,
                                }));
                            }
                        }
                        2 => {
                            if let Some(p) = rec.as_mut()
                                && let Some((id, text)) = p.field.take()
                            {
                                let value = if p.items.is_empty() {
                                    text.trim().to_string()
                                } else {
                                    std::mem::take(&mut p.items).join(",")
                                };
                                p.fields.push((id, value));
                            }
                        }
                        3 => {
                            if let Some(p) = rec.as_mut()
                                && let Some(item) = p.item.take()
                                && !item.trim().is_empty()
                            {
                                p.items.push(item.trim().to_string());
                            }
                        }
                        _ => {}
                    }
                }
                Event::Text(t) => {
                    let text = t.xml10_content();
                    if !self.push_text(&mut rec, depth, &text) && !text.trim().is_empty() {
                        return Some(Err(self.fail(
                            pos,
                            format!(
                                "unexpected text '{}' outside a field; put it in a field element or remove it",
                                text.trim()
                            ),
                        )));
                    }
                }
                Event::CData(c) => {
                    let text = c.xml10_content().into_owned();
                    self.push_text(&mut rec, depth, &text);
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.xml10_content().into_owned();
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => s.to_string(),
                                None => return Some(Err(self.fail(pos, format!(
                                        "unknown entity &{name}; write a literal & as &amp; (XML knows only &amp; &lt; &gt; &quot; &apos;)"
                                    )))),
                            }
                        }
                        Err(e) => return Some(Err(self.fail(pos, format!("bad character reference: {e}")))),
                    };
                    self.push_text(&mut rec, depth, &resolved);
                }
                Event::Eof => {
                    if depth > 0 || !self.root_seen {
                        let message = if self.root_seen {
                            "the file ends inside an element (truncated?)".to_string()
                        } else {
                            "the file holds no XML element; expected a root element with one child per record"
                                .to_string()
                        };
                        return Some(Err(self.fail(pos, message)));
                    }
                    self.done = true;
                    return None;
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Appends text to the open field or list item; false when none is open.
    fn push_text(&self, rec: &mut Option<Partial>, depth: usize, text: &str) -> bool {
        let Some(p) = rec.as_mut() else { return false };
        match depth {
            3 => match p.field.as_mut() {
                Some((_, t)) => {
                    t.push_str(text);
                    true
                }
                None => false,
            },
            4 => match p.item.as_mut() {
                Some(t) => {
                    t.push_str(text);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    fn take_attributes(&mut self, e: &quick_xml::events::BytesStart<'_>, p: &mut Partial) -> Result<(), String> {
        if self.mode == XmlFields::Elements {
            return Ok(());
        }
        for attr in e.attributes() {
            let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
            let name = attr.key.local_name().as_ref().to_string();
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| format!("attribute {name}: {err}"))?;
            let id = self.id(&name);
            p.fields.push((id, value.trim().to_string()));
        }
        Ok(())
    }
}

impl Iterator for XmlFeed {
    type Item = Result<RawRecord, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.read_record()
    }
}

impl FeedReader for XmlFeed {
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

    fn read(text: &str, mode: XmlFields) -> Vec<Named> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.xml");
        std::fs::write(&p, text).unwrap();
        let mut f = XmlFeed::open(&p, mode).unwrap();
        let recs: Vec<_> = f.by_ref().collect();
        let names = f.field_names().to_vec();
        recs.into_iter()
            .map(|r| {
                r.map(|rec| {
                    (
                        rec.line,
                        rec.fields.into_iter().map(|(i, v)| (names[i].clone(), v)).collect(),
                    )
                })
                .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn elements_attributes_lists_and_entities() {
        let xml = "<?xml version=\"1.0\"?>\n<users>\n  <user id=\"1\">\n    <name>M&amp;M &#228;</name>\n    \
                   <classes><class>5a</class><class>5b</class></classes>\n    <empty/>\n  </user>\n  \
                   <user id=\"2\" name=\"Eva\"/>\n</users>\n";
        let recs = read(xml, XmlFields::Auto);
        assert_eq!(recs.len(), 2);
        let (line, f) = recs[0].as_ref().unwrap();
        assert_eq!(*line, 3);
        assert!(f.contains(&("id".into(), "1".into())));
        assert!(f.contains(&("name".into(), "M&M ä".into())));
        assert!(f.contains(&("classes".into(), "5a,5b".into())));
        assert!(f.contains(&("empty".into(), "".into())));
        let (line, f) = recs[1].as_ref().unwrap();
        assert_eq!(*line, 8);
        assert!(f.contains(&("name".into(), "Eva".into())));
        let only_elements = read(xml, XmlFields::Elements);
        assert!(!only_elements[0].as_ref().unwrap().1.iter().any(|(n, _)| n == "id"));
    }

    #[test]
    fn malformed_truncated_and_empty() {
        let recs = read("<users>\n<user><a>1</b></user></users>", XmlFields::Auto);
        assert!(recs[0].as_ref().unwrap_err().contains("line 2"), "{:?}", recs);
        let recs = read("<users>\n<user><a>1</a></user>\n<user><a>2", XmlFields::Auto);
        assert!(
            recs.last().unwrap().as_ref().unwrap_err().contains("truncated"),
            "{:?}",
            recs
        );
        let recs = read("  ", XmlFields::Auto);
        assert!(recs[0].as_ref().unwrap_err().contains("no XML element"), "{:?}", recs);
        let recs = read("<users/>", XmlFields::Auto);
        assert!(recs.is_empty());
    }
}
