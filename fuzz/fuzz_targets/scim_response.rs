#![no_main]
//! Fuzz target `scim_response`: the body is `rollcall::fuzzing::scim_response`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/scim_response/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::scim_response(data));
