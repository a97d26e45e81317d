//! rollcall keeps school identities in sync: per-school imports into a
//! directory, a limbo for leavers, and durable per-authority sync queues.
//!
//! Layers point one way: [`model`] ← [`store`] ← [`engine`] ← `cli`, `tui`.

pub mod cli;
pub mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod server;
pub mod store;
pub mod tui;
