//! Placeholder — being written.
