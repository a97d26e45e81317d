//! The messages of the LDAP Content Synchronization operation (RFC 4533)
//! as rollcall reads them: search result entries with their Sync State
//! control, Sync Info intermediate responses, and the Sync Done control of
//! the final result. Decoded here without panicking on anything a server
//! sends (ldap3's own parsers assume well-formed input); a malformed
//! message is an error that ends the session, which is then started again.

use ldap3::ResultEntry;
use ldap3::asn1::{PL, StructureTag, TagClass, Types, parse_tag};
use ldap3::controls::Control;
use std::collections::HashMap;

pub const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
pub const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
pub const SYNC_INFO_OID: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// An entry's UUID as RFC 4122 text (`entryUUID`'s string form).
pub type Uuid = String;

/// The state a Sync State control gives an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    Present,
    Add,
    Modify,
    Delete,
}

/// One decoded message of the sync session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A search result entry (attributes empty for `Present` and `Delete`).
    Entry {
        state: EntryState,
        uuid: Uuid,
        dn: String,
        /// Lowercased attribute name → values.
        attrs: HashMap<String, Vec<String>>,
        cookie: Option<Vec<u8>>,
    },
    /// A new cookie without changes.
    NewCookie(Vec<u8>),
    /// The end of a refresh phase (`present`: the present phase, after
    /// which unseen entries are gone) or of one of its steps.
    RefreshDone {
        present: bool,
        done: bool,
        cookie: Option<Vec<u8>>,
    },
    /// Entries deleted (`deletes`) or present, by UUID.
    IdSet {
        deletes: bool,
        uuids: Vec<Uuid>,
        cookie: Option<Vec<u8>>,
    },
}

pub type ProtoResult<T> = Result<T, String>;

/// RFC 4122 text of a 16-byte UUID.
pub fn uuid_text(raw: &[u8]) -> ProtoResult<Uuid> {
    if raw.len() != 16 {
        return Err(format!("a syncUUID of {} bytes (16 expected)", raw.len()));
    }
    let h = hex::encode(raw);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn parse_value(bytes: &[u8]) -> ProtoResult<StructureTag> {
    match parse_tag(bytes) {
        Ok(([], tag)) => Ok(tag),
        Ok(_) => Err("trailing bytes after a control value".into()),
        Err(e) => Err(format!("undecodable BER: {e}")),
    }
}

fn primitive(tag: StructureTag, what: &str) -> ProtoResult<Vec<u8>> {
    match tag.payload {
        PL::P(b) => Ok(b),
        PL::C(_) => Err(format!("{what}: constructed where a primitive was expected")),
    }
}

fn constructed(tag: StructureTag, what: &str) -> ProtoResult<Vec<StructureTag>> {
    match tag.payload {
        PL::C(v) => Ok(v),
        PL::P(_) => Err(format!("{what}: primitive where a sequence was expected")),
    }
}

fn is_universal(tag: &StructureTag, t: Types) -> bool {
    tag.class == TagClass::Universal && tag.id == t as u64
}

fn boolean(tag: StructureTag) -> ProtoResult<bool> {
    Ok(primitive(tag, "boolean")?.first().is_some_and(|b| *b != 0))
}

/// The optional cookie and boolean of a syncDone / refreshDelete /
/// refreshPresent sequence.
fn cookie_and_flag(items: Vec<StructureTag>, default: bool) -> ProtoResult<(Option<Vec<u8>>, bool)> {
    let mut cookie = None;
    let mut flag = default;
    for t in items {
        if is_universal(&t, Types::OctetString) {
            cookie = Some(primitive(t, "cookie")?);
        } else if is_universal(&t, Types::Boolean) {
            flag = boolean(t)?;
        } else {
            return Err(format!("unexpected element (class {:?}, tag {})", t.class, t.id));
        }
    }
    Ok((cookie, flag))
}

/// A Sync State control value: state, UUID, cookie.
pub fn sync_state(value: &[u8]) -> ProtoResult<(EntryState, Uuid, Option<Vec<u8>>)> {
    let mut items = constructed(parse_value(value)?, "syncStateValue")?.into_iter();
    let state = match items.next().map(|t| primitive(t, "state")) {
        Some(Ok(b)) => match b.as_slice() {
            [0] => EntryState::Present,
            [1] => EntryState::Add,
            [2] => EntryState::Modify,
            [3] => EntryState::Delete,
            other => return Err(format!("unknown sync state {other:?}")),
        },
        Some(Err(e)) => return Err(e),
        None => return Err("syncStateValue without a state".into()),
    };
    let uuid = match items.next() {
        Some(t) => uuid_text(&primitive(t, "entryUUID")?)?,
        None => return Err("syncStateValue without an entryUUID".into()),
    };
    let cookie = items.next().map(|t| primitive(t, "cookie")).transpose()?;
    Ok((state, uuid, cookie))
}

/// A Sync Done control value: cookie and refreshDeletes.
pub fn sync_done(value: &[u8]) -> ProtoResult<(Option<Vec<u8>>, bool)> {
    cookie_and_flag(constructed(parse_value(value)?, "syncDoneValue")?, false)
}

/// A Sync Info value.
pub fn sync_info(value: &[u8]) -> ProtoResult<Message> {
    let tag = parse_value(value)?;
    if tag.class != TagClass::Context {
        return Err("syncInfoValue is not a context-tagged choice".into());
    }
    match tag.id {
        0 => Ok(Message::NewCookie(primitive(tag, "newcookie")?)),
        1 | 2 => {
            let present = tag.id == 2;
            let (cookie, done) = cookie_and_flag(constructed(tag, "refreshDelete/refreshPresent")?, true)?;
            Ok(Message::RefreshDone { present, done, cookie })
        }
        3 => {
            let mut cookie = None;
            let mut deletes = false;
            let mut uuids = Vec::new();
            for t in constructed(tag, "syncIdSet")? {
                if is_universal(&t, Types::OctetString) {
                    cookie = Some(primitive(t, "cookie")?);
                } else if is_universal(&t, Types::Boolean) {
                    deletes = boolean(t)?;
                } else if is_universal(&t, Types::Set) {
                    for u in constructed(t, "syncUUIDs")? {
                        uuids.push(uuid_text(&primitive(u, "syncUUID")?)?);
                    }
                } else {
                    return Err(format!("syncIdSet: unexpected element (tag {})", t.id));
                }
            }
            Ok(Message::IdSet { deletes, uuids, cookie })
        }
        n => Err(format!("unknown syncInfoValue choice [{n}]")),
    }
}

fn text(bytes: Vec<u8>, what: &str) -> ProtoResult<String> {
    String::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
}

/// One result message of the sync search: an entry (with its Sync State
/// control) or a Sync Info intermediate response. Referrals are errors.
pub fn message(entry: ResultEntry) -> ProtoResult<Message> {
    let (tag, controls) = (entry.0, entry.1);
    match (tag.class, tag.id) {
        (TagClass::Application, 4) => search_entry(tag, &controls),
        (TagClass::Application, 25) => {
            let mut oid = None;
            let mut value = None;
            for t in constructed(tag, "intermediate response")? {
                match (t.class, t.id) {
                    (TagClass::Context, 0) => oid = Some(text(primitive(t, "responseName")?, "responseName")?),
                    (TagClass::Context, 1) => value = Some(primitive(t, "responseValue")?),
                    _ => return Err("intermediate response: unexpected element".into()),
                }
            }
            match (oid.as_deref(), value) {
                (Some(SYNC_INFO_OID), Some(v)) => sync_info(&v),
                (oid, _) => Err(format!("an intermediate response that is not Sync Info ({oid:?})")),
            }
        }
        (TagClass::Application, 19) => Err("the server sent a search reference (referral)".into()),
        (class, id) => Err(format!("unexpected search response (class {class:?}, tag {id})")),
    }
}

/// The entry in a Pre-Read or Post-Read response control (RFC 4527).
pub fn read_entry(value: &[u8]) -> ProtoResult<(String, HashMap<String, Vec<String>>)> {
    entry_parts(parse_value(value)?)
}

fn search_entry(tag: StructureTag, controls: &[Control]) -> ProtoResult<Message> {
    let (dn, attrs) = entry_parts(tag)?;
    let state = controls
        .iter()
        .find(|c| c.1.ctype == SYNC_STATE_OID)
        .ok_or_else(|| format!("entry {dn} without a Sync State control"))?;
    let value = state.1.val.as_deref().ok_or("a Sync State control without a value")?;
    let (state, uuid, cookie) = sync_state(value)?;
    Ok(Message::Entry {
        state,
        uuid,
        dn,
        attrs,
        cookie,
    })
}

/// An entry's DN and attributes (names lowercased).
fn entry_parts(tag: StructureTag) -> ProtoResult<(String, HashMap<String, Vec<String>>)> {
    let mut items = constructed(tag, "search entry")?.into_iter();
    let dn = match items.next() {
        Some(t) => text(primitive(t, "objectName")?, "objectName")?,
        None => return Err("search entry without a DN".into()),
    };
    let mut attrs: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(list) = items.next() {
        for partial in constructed(list, "attributes")? {
            let mut pa = constructed(partial, "partial attribute")?.into_iter();
            let name = match pa.next() {
                Some(t) => text(primitive(t, "attribute type")?, "attribute type")?,
                None => return Err("an attribute without a type".into()),
            };
            let values = match pa.next() {
                Some(t) => constructed(t, "attribute values")?,
                None => Vec::new(),
            };
            let out = attrs.entry(name.to_ascii_lowercase()).or_default();
            for v in values {
                // Binary values (e.g. photos) are kept lossily: only
                // rollcall's text attributes are compared.
                out.push(String::from_utf8_lossy(&primitive(v, "attribute value")?).into_owned());
            }
        }
    }
    Ok((dn, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One BER element (short-form length).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128);
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    const UUID: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
    ];
    const TEXT: &str = "01234567-89ab-cdef-0123-456789abcdef";

    #[test]
    fn decodes_sync_state_and_done() {
        let v = tlv(
            0x30,
            &cat(&[tlv(0x0a, &[2]), tlv(0x04, &UUID), tlv(0x04, b"rid=000,csn=1")]),
        );
        let (state, uuid, cookie) = sync_state(&v).unwrap();
        assert_eq!(state, EntryState::Modify);
        assert_eq!(uuid, TEXT);
        assert_eq!(cookie.as_deref(), Some(&b"rid=000,csn=1"[..]));
        assert_eq!(sync_done(&tlv(0x30, &tlv(0x01, &[0xff]))).unwrap(), (None, true));
        assert_eq!(
            sync_done(&tlv(0x30, &tlv(0x04, b"c"))).unwrap(),
            (Some(b"c".to_vec()), false)
        );
    }

    #[test]
    fn decodes_sync_info_choices() {
        assert_eq!(sync_info(&tlv(0x80, b"c")).unwrap(), Message::NewCookie(b"c".to_vec()));
        assert_eq!(
            sync_info(&tlv(0xa2, &tlv(0x04, b"c"))).unwrap(),
            Message::RefreshDone {
                present: true,
                done: true,
                cookie: Some(b"c".to_vec())
            }
        );
        assert_eq!(
            sync_info(&tlv(0xa1, &tlv(0x01, &[0]))).unwrap(),
            Message::RefreshDone {
                present: false,
                done: false,
                cookie: None
            }
        );
        let set = tlv(0x31, &tlv(0x04, &UUID));
        assert_eq!(
            sync_info(&tlv(0xa3, &cat(&[tlv(0x01, &[0xff]), set]))).unwrap(),
            Message::IdSet {
                deletes: true,
                uuids: vec![TEXT.into()],
                cookie: None
            }
        );
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0x30, 0x05, 0x0a][..],
            &[0xa7, 0x00][..],
            &[0x30, 0x03, 0x0a, 0x01, 0x09][..],
            &[0x30, 0x06, 0x0a, 0x01, 0x01, 0x04, 0x01, 0x00][..],
            &[0xa3, 0x03, 0x31, 0x01, 0x04][..],
        ] {
            assert!(sync_state(bad).is_err(), "{bad:?}");
            let _ = sync_info(bad);
            let _ = sync_done(bad);
        }
        assert!(uuid_text(&[1, 2, 3]).is_err());
    }
}
