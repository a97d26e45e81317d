//! One remote account, one operation at a time. Two queue items may touch
//! the same account on the target: a takeover by userName claims an
//! account that another item is about to delete under its old external
//! id (verify --fix of a moved externalId queues both). Each item takes a
//! [`Ticket`] before it looks anything up; writing to an account needs a
//! [`Held`] on its id, which waits while another item holds it and says
//! whether the account was written by someone else since the ticket was
//! taken — then what the lookup saw is stale and must be read again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    /// Bumped at every release of a held account.
    seq: u64,
    /// Tickets in use, by the sequence they were taken at.
    tickets: BTreeMap<u64, usize>,
    /// Accounts held right now.
    busy: HashSet<String>,
    /// When each account was last released, for accounts released after
    /// the oldest ticket in use (older entries can no longer matter).
    released: HashMap<String, u64>,
}

#[derive(Default)]
pub struct Accounts {
    state: Mutex<State>,
    freed: Condvar,
}

/// An item's work on the target, from its first lookup on.
pub struct Ticket<'a> {
    accounts: &'a Accounts,
    at: u64,
}

/// An account held by one item.
pub struct Held<'a> {
    accounts: &'a Accounts,
    id: String,
    /// Another item wrote (or held) the account since this item's ticket:
    /// read it again before writing.
    pub stale: bool,
}

impl Accounts {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ticket(&self) -> Ticket<'_> {
        let mut s = self.lock();
        let at = s.seq;
        *s.tickets.entry(at).or_default() += 1;
        Ticket { accounts: self, at }
    }
}

impl Ticket<'_> {
    /// Holds the account `id`, waiting while another item holds it.
    pub fn hold(&self, id: &str) -> Held<'_> {
        let mut s = self.accounts.lock();
        while s.busy.contains(id) {
            s = self.accounts.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.busy.insert(id.to_string());
        let stale = s.released.get(id).is_some_and(|at| *at > self.at);
        Held {
            accounts: self.accounts,
            id: id.to_string(),
            stale,
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut s = self.accounts.lock();
        if let Some(n) = s.tickets.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                s.tickets.remove(&self.at);
            }
        }
        match s.tickets.keys().next().copied() {
            None => s.released.clear(),
            Some(oldest) if s.released.len() > 1024 => s.released.retain(|_, at| *at > oldest),
            Some(_) => {}
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut s = self.accounts.lock();
        s.seq += 1;
        let seq = s.seq;
        s.busy.remove(&self.id);
        if !s.tickets.is_empty() {
            s.released.insert(std::mem::take(&mut self.id), seq);
        }
        drop(s);
        self.accounts.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_older_than_another_items_write_is_stale() {
        let a = Accounts::default();
        let first = a.ticket();
        let second = a.ticket();
        {
            let h = first.hold("X");
            assert!(!h.stale);
        }
        // The second item looked up before the first released X.
        assert!(second.hold("X").stale);
        // A ticket taken after the write sees it fresh.
        let third = a.ticket();
        assert!(!third.hold("X").stale);
        assert!(!third.hold("Y").stale);
        drop((first, second, third));
        assert!(a.lock().released.is_empty());
    }

    #[test]
    fn holders_take_turns() {
        let a = std::sync::Arc::new(Accounts::default());
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (a, inside) = (a.clone(), inside.clone());
                s.spawn(move || {
                    for _ in 0..50 {
                        let t = a.ticket();
                        let _h = t.hold("X");
                        assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
    }
}
