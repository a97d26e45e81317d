#![no_main]
//! Fuzz target `config`: the body is `rollcall::fuzzing::config`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/config/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::config(data));
