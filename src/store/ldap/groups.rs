//! Removing groups that lost their last member (a class whose last student
//! left, `import.keep_empty_classes = false`): the entries are deleted
//! under a journal intent, so the authorities delete them too and a crash
//! half way is repaired like any batch.

use super::LdapDirectory;
use super::conn::{NO_SUCH_OBJECT, checked};
use super::journal::Changes;
use super::mapping::group_value;
use crate::model::{GroupKey, ObjectRef};
use crate::store::StoreResult;

impl LdapDirectory {
    pub(super) fn drop_empty_groups_impl(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>> {
        self.repair_pending()?;
        let mut empty = Vec::new();
        for key in keys {
            let filter = self.map.groups.eq(&group_value(key));
            if self.pool.block_on(self.search_users(&filter))?.is_empty() {
                empty.push(key.clone());
            }
        }
        if empty.is_empty() {
            return Ok(empty);
        }
        let mut changes = Changes::default();
        for k in &empty {
            changes.add(ObjectRef::group(k), [k.school.as_str()]);
        }
        let ids = self.journal.begin(&changes)?;
        self.pool.block_on(async {
            let mut ldap = self.pool.conn().await?;
            for k in &empty {
                let dn = self.layout.group_dn(k);
                // A listener must know this delete as our own (Pre-Read).
                if let Some(c) = self.read_back(true) {
                    ldap.with_controls(c);
                }
                match checked(ldap.delete(&dn).await) {
                    Ok(r) => self.note_own(&r),
                    Err(e) if e.is(NO_SUCH_OBJECT) => {}
                    Err(e) => return Err(self.pool.err("delete group", &dn, e)),
                }
                self.forget_known(&dn);
            }
            Ok(())
        })?;
        self.journal.complete(&ids, &self.take_own())?;
        Ok(empty)
    }
}
