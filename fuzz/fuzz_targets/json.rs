#![no_main]
//! Fuzz target `json`: the body is `rollcall::fuzzing::json`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/json/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::json(data));
