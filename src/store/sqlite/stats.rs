//! The embedded store's aggregate reads: one grouped query each instead of
//! one count per school and role.

use super::SqliteDirectory;
use super::query::where_clause;
use crate::model::Role;
use crate::store::{BoundedCount, MembershipCount, StoreResult, UserQuery};
use chrono::NaiveDate;
use rusqlite::params_from_iter;
use rusqlite::types::Value;
use std::collections::{BTreeMap, HashMap};

impl SqliteDirectory {
    pub(super) fn count_users_bounded_impl(&self, q: &UserQuery, cap: u64) -> StoreResult<BoundedCount> {
        let (clause, mut params) = where_clause(q);
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1{clause} LIMIT ?)");
        params.push(Value::Integer(cap.saturating_add(1).min(i64::MAX as u64) as i64));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let n = stmt
            .query_row(params_from_iter(params), |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))? as u64;
        Ok(BoundedCount {
            n: n.min(cap),
            capped: n > cap,
        })
    }

    pub(super) fn membership_counts_impl(&self) -> StoreResult<Vec<MembershipCount>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT school, roles, COUNT(*) FROM user_schools GROUP BY school, roles")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })
            .map_err(|e| self.err(e))?;
        let mut counts: BTreeMap<(String, Role), u64> = BTreeMap::new();
        let mut parsed: HashMap<String, Vec<Role>> = HashMap::new();
        for row in rows {
            let (school, roles, n) = row.map_err(|e| self.err(e))?;
            let roles = parsed
                .entry(roles)
                .or_insert_with_key(|k| k.split(',').filter_map(|r| r.parse::<Role>().ok()).collect());
            for role in roles.iter() {
                *counts.entry((school.clone(), *role)).or_default() += n as u64;
            }
        }
        Ok(counts
            .into_iter()
            .map(|((school, role), users)| MembershipCount { school, role, users })
            .collect())
    }

    pub(super) fn purge_dates_impl(&self, limit: usize) -> StoreResult<Vec<(NaiveDate, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT purge_at, COUNT(*) FROM users WHERE state = 'limbo' AND purge_at IS NOT NULL \
                 GROUP BY purge_at ORDER BY purge_at LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (day, n) = row.map_err(|e| self.err(e))?;
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| self.corrupt(format!("purge date '{day}': {e}")))?;
            out.push((day, n as u64));
        }
        Ok(out)
    }

    pub(super) fn class_counts_impl(&self) -> StoreResult<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT school, COUNT(*) FROM groups WHERE kind = 'class' GROUP BY school")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (school, n) = row.map_err(|e| self.err(e))?;
            out.insert(school, n as u64);
        }
        Ok(out)
    }
}
