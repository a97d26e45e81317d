//! This data dir's own writes, as the change listener must know them: while
//! a listener follows the directory (it ran here once), every write of a
//! journalled object asks the server for the entry it left (Post-Read,
//! RFC 4527: `entryUUID`, `entryCSN`; Pre-Read for a delete) and the pairs
//! are recorded with the batch's journal entries. The listener then skips
//! exactly those changes — the batch journalled them already.

use super::LdapDirectory;
use super::listen::proto::read_entry;
use ldap3::LdapResult;
use ldap3::controls::{PostRead, PreRead, RawControl};
use std::sync::atomic::Ordering;

const POST_READ_OID: &str = "1.3.6.1.1.13.2";
const PRE_READ_OID: &str = "1.3.6.1.1.13.1";

impl LdapDirectory {
    /// The control that makes a write report the entry it left, when a
    /// listener needs it.
    pub(super) fn read_back(&self, delete: bool) -> Option<RawControl> {
        if !self.listening.load(Ordering::Relaxed) {
            return None;
        }
        Some(match delete {
            true => PreRead::new(vec!["entryUUID"]),
            false => PostRead::new(vec!["entryUUID", "entryCSN"]),
        })
    }

    /// Notes the (entryUUID, entryCSN) a successful write reported.
    pub(super) fn note_own(&self, result: &LdapResult) {
        if !self.listening.load(Ordering::Relaxed) {
            return;
        }
        for c in &result.ctrls {
            let delete = match c.1.ctype.as_str() {
                POST_READ_OID => false,
                PRE_READ_OID => true,
                _ => continue,
            };
            let Some(Ok((_, attrs))) = c.1.val.as_deref().map(read_entry) else {
                tracing::warn!(
                    "the server sent an unreadable read-entry control; the change listener will journal this write again"
                );
                continue;
            };
            let first = |k: &str| attrs.get(k).and_then(|v| v.first()).map(|v| v.to_ascii_lowercase());
            let csn = if delete {
                Some(String::new())
            } else {
                attrs.get("entrycsn").and_then(|v| v.first()).cloned()
            };
            if let (Some(uuid), Some(csn)) = (first("entryuuid"), csn)
                && let Ok(mut own) = self.own.lock()
            {
                own.push((uuid, csn));
            }
        }
    }

    /// The own writes noted since the last call.
    pub(super) fn take_own(&self) -> Vec<(String, String)> {
        self.own.lock().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default()
    }
}
