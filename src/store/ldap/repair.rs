//! Finishing what a failed or interrupted batch left half done. Every
//! object named by a pending intent is brought in line with what the user
//! entries say (they are written atomically, one entry per user): a user
//! whose DN does not match its primary school is moved, and a group's
//! members are recomputed from the users that list it. Then the intents are
//! completed, so the changes reach the journal. Usernames claimed for users
//! that were never created are released (see `claim`).

use super::LdapDirectory;
use super::conn::{ALREADY_EXISTS, checked};
use super::journal::Intent;
use super::layout::{first_rdn, parent};
use super::mapping::group_value;
use crate::model::{GroupKey, ObjectRef, UserKey};
use crate::store::StoreResult;
use ldap3::Mod;
use std::collections::HashSet;

impl LdapDirectory {
    /// Repairs and completes pending intents, if any.
    pub(super) fn repair_pending(&mut self) -> StoreResult<()> {
        self.release_stale_claims()?;
        let pending = self.journal.pending()?;
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(count = pending.len(), "repairing unfinished LDAP changes");
        self.pool.block_on(self.repair(&pending))?;
        let ids: Vec<i64> = pending.iter().map(|i| i.id).collect();
        self.journal.complete(&ids, &[])
    }

    async fn repair(&self, pending: &[Intent]) -> StoreResult<()> {
        self.ensure_base().await?;
        let mut groups = Vec::new();
        for intent in pending {
            match &intent.object {
                ObjectRef::User { source_uid, record_uid } => {
                    self.repair_user(&UserKey::new(source_uid.clone(), record_uid.clone()))
                        .await?;
                }
                ObjectRef::Group {
                    school,
                    group_kind,
                    name,
                } => groups.push(GroupKey::new(school.clone(), *group_kind, name.clone())),
                ObjectRef::School { .. } => {}
            }
        }
        for key in groups {
            self.repair_group(&key).await?;
        }
        Ok(())
    }

    async fn repair_user(&self, key: &UserKey) -> StoreResult<()> {
        let Some(user) = self.user_async(key).await? else {
            return Ok(());
        };
        let Some(actual) = self.cached_dn(key) else {
            return Ok(());
        };
        let wanted = self.layout.user_dn(&user.username, user.primary_school());
        if actual.eq_ignore_ascii_case(&wanted) {
            return Ok(());
        }
        self.ensure(&[parent(&wanted).unwrap_or_default().to_string()]).await?;
        let mut ldap = self.pool.conn().await?;
        checked(ldap.modifydn(&actual, first_rdn(&wanted), true, parent(&wanted)).await)
            .map_err(|e| self.pool.err("move user", &actual, e))?;
        if let Ok(mut dns) = self.dns.lock() {
            dns.insert(key.clone(), wanted);
        }
        Ok(())
    }

    async fn repair_group(&self, key: &GroupKey) -> StoreResult<()> {
        let filter = self.map.groups.eq(&group_value(key));
        let users = self.search_users(&filter).await?;
        let members: HashSet<String> = users.iter().filter_map(|u| self.cached_dn(&u.key)).collect();
        let dn = self.layout.group_dn(key);
        let exists = self.group_members(&dn).await?.is_some();
        let mut ldap = self.pool.conn().await?;
        if !exists {
            if members.is_empty() {
                return Ok(());
            }
            self.ensure(&[parent(&dn).unwrap_or_default().to_string()]).await?;
            match checked(ldap.add(&dn, self.group_entry(key, members.iter().cloned())).await) {
                Ok(_) => return Ok(()),
                Err(e) if e.is(ALREADY_EXISTS) => {}
                Err(e) => return Err(self.pool.err("add group", &dn, e)),
            }
        }
        let mut all = members;
        all.insert(String::new());
        checked(
            ldap.modify(&dn, vec![Mod::Replace(self.map.group_member.clone(), all)])
                .await,
        )
        .map_err(|e| self.pool.err("repair group", &dn, e))?;
        Ok(())
    }
}
