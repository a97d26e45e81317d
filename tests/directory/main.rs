//! The directory side, one test binary: the per-school import (every rule of
//! DESIGN §2, on SQLite and slapd), its property tests, feed formats, the
//! store contract on both backends, OpenLDAP specifics, the CLI contract,
//! the bad-input corpus, the fuzz corpus and the security review.
//!
//! Grouped into one binary so `tests/common` is compiled once and one
//! throwaway slapd serves every module; run one part with e.g.
//! `cargo test --test directory sisopi::`.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod cli;
mod config_layers;
mod feeds;
mod fuzz_corpus;
mod ldap;
mod ldap_nodes;
mod passwords;
mod properties;
mod secrets;
mod security;
mod sisopi;
mod store_conformance;
