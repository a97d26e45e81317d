#![no_main]
//! Fuzz target `trash_file`: the body is `rollcall::fuzzing::trash_file`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/trash_file/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::trash_file(data));
