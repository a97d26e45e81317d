#![no_main]
//! Fuzz target `queue_item`: the body is `rollcall::fuzzing::queue_item`, which
//! `tests/directory/fuzz_corpus.rs` also replays over `fuzz/corpus/queue_item/`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rollcall::fuzzing::queue_item(data));
