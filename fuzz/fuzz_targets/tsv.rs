#![no_main]
//! Fuzz target `tsv`: the body is `rollcall::fuzzing::tsv`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/tsv/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::tsv(data));
