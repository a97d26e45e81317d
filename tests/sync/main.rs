//! The sync side, one test binary: queues, senders and targets (embedded,
//! LDAP between two slapds, the real scim2-server, faults through a proxy),
//! crash safety of the real binary, schools to sync, verify and the sync
//! commands' CLI contract. Run one part with e.g. `cargo test --test sync scim::`.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod concurrency;
mod crash;
mod faults;
mod ldap;
mod lifecycle;
mod listen;
mod schools;
mod scim;
mod verify;
