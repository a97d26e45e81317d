//! The engine: configuration, imports (plan, then apply), limbo and purge,
//! runs, and the audit log. It knows nothing of terminals.

pub mod demo;
pub mod scheme;
