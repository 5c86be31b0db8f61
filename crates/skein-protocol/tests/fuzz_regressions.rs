//! Replays what the fuzz targets found (`fuzz/regressions/<target>/`, committed by `fuzz/run`) and their seed
//! corpus (`fuzz/corpus/<target>/`) through the very checks the targets run, compiled in from `fuzz/src/`, so a
//! fixed crash stays fixed in every `cargo test`. Errors are fine; a panic fails the test and names the file.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// Their items are `pub` for the fuzz crate's targets; here they are private to this test.
#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/request_decode.rs"]
mod request_decode;

#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/record_batch.rs"]
mod record_batch;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of the target's regression and seed folders (a missing folder has none).
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs = Vec::new();
    for folder in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(folder).join(target)) else {
            continue;
        };
        for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
                inputs.push((path, bytes));
            }
        }
    }
    inputs.sort();
    inputs
}

fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, bytes)| panic::catch_unwind(AssertUnwindSafe(|| check(bytes))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{target}: {} of {} inputs panic: {failed:#?}", failed.len(), inputs.len());
}

#[test]
fn request_decode_regressions_do_not_panic() {
    replay("request_decode", request_decode::check);
}

#[test]
fn record_batch_regressions_do_not_panic() {
    replay("record_batch", record_batch::check);
}
