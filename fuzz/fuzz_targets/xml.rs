#![no_main]
//! Fuzz target `xml`: the body is `rollcall::fuzzing::xml`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/xml/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::xml(data));
