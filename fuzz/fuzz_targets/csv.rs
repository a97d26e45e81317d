#![no_main]
//! Fuzz target `csv`: the body is `rollcall::fuzzing::csv`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/csv/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::csv(data));
