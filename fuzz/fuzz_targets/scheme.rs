#![no_main]
//! Fuzz target `scheme`: the body is `rollcall::fuzzing::scheme`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/scheme/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::scheme(data));
