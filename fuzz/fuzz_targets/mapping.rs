#![no_main]
//! Fuzz target `mapping`: the body is `rollcall::fuzzing::mapping`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/mapping/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::mapping(data));
