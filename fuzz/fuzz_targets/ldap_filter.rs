#![no_main]
//! Fuzz target `ldap_filter`: the body is `rollcall::fuzzing::ldap_filter`,
//! which `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/ldap_filter/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::ldap_filter(data));
