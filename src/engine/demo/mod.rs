//! The demo district: a deterministic, realistic set of schools and people,
//! written out as per-school feeds and imported through the normal import.

pub mod district;
mod names;
