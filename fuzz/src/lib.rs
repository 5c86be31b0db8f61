//! Skein's fuzz targets (run them with `fuzz/run`). Each target in `fuzz_targets/` is one line; its check lives
//! in a module here, so a crashing input replays outside libFuzzer: `crates/skein-protocol/tests/fuzz_regressions.rs`
//! compiles the protocol modules into `cargo test` and feeds them `fuzz/regressions/`.
//!
//! # Layout
//! - [`request_decode`]: a request frame body through the header decode and the body decoder of its api key.
//! - [`record_batch`]: a v2 record batch through validation, the append rewrite and the record readers.
//! - [`storage_codec`]: bytes through every storage key and value decoder.
//! - `seeds` (tests only): writes the committed seed corpus, `fuzz/corpus/<target>/`.

use std::alloc::{GlobalAlloc, Layout, System};

pub mod record_batch;
pub mod request_decode;
#[cfg(test)]
mod seeds;
pub mod storage_codec;

/// The largest single allocation the targets may make. libFuzzer's `-malloc_limit_mb` needs a sanitizer's
/// allocator hooks, which a stable build (`-s none`) lacks, and Linux grants a huge untouched allocation lazily, so
/// without this an allocation sized by a count read off the wire would go unnoticed. No input of at most 1 MiB
/// needs more; a larger request fails as Rust's "memory allocation of N bytes failed" abort, a crash libFuzzer
/// records.
pub const MAX_ALLOCATION_BYTES: usize = 256 << 20;

/// The system allocator, refusing single allocations above [`MAX_ALLOCATION_BYTES`].
pub struct CappedAllocator;

// SAFETY: every call is forwarded unchanged to `System`, or refused with a null pointer, which `GlobalAlloc`
// permits for any allocation.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION_BYTES {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION_BYTES {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION_BYTES {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`; `ptr` and `layout` come from this allocator, which is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;
