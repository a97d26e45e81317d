//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/`: the seeds and
//! every input the fuzzer kept, crashes it found included) through the same
//! bodies the cargo-fuzz targets run (`rollcall::fuzzing`). A panic is a
//! failure; each input must also finish quickly (no hang).

use std::path::Path;
use std::time::{Duration, Instant};

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let start = Instant::now();
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{target}: {} panics", f.display());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{target}: {} took {:?}",
            f.display(),
            start.elapsed()
        );
    }
    files.len()
}

#[test]
fn every_target_has_a_corpus_and_survives_it() {
    let mut total = 0;
    for (name, body) in rollcall::fuzzing::TARGETS {
        let n = replay(name, *body);
        assert!(n >= 3, "fuzz/corpus/{name} holds only {n} inputs");
        total += n;
    }
    assert!(total >= 30, "{total}");
}

/// Every target named in `fuzz/Cargo.toml` exists in `rollcall::fuzzing`
/// and the other way round.
#[test]
fn fuzz_crate_lists_every_target() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "rollcall-fuzz")
        .collect();
    let mut names: Vec<&str> = rollcall::fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    let mut listed = bins.clone();
    names.sort();
    listed.sort();
    assert_eq!(listed, names);
}
