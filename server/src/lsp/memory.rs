//! Keeping the server's resident memory near its live heap (glibc only; elsewhere these do
//! nothing).
//!
//! Measured on Django's corpus with its 20 largest files open: the live heap peaked at 61 MB
//! while RSS reached 133 MB, 88 MB of it free space inside glibc's arenas.

use std::sync::atomic::{AtomicBool, Ordering};

/// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed in
/// one arena is reused by that arena only. The server's work moves between threads (a document
/// parsed on a runtime worker, linted on a blocking thread, the workspace scanned on rayon's),
/// so each arena grew to its own peak. With one arena RSS follows the live heap; the
/// allocations that contend for it are few at a time (two lints, the scan's workers). Must run
/// before any other thread starts.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_ARENA_MAX: std::ffi::c_int = -8;
        extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        // SAFETY: mallopt only sets an allocator parameter, before any other thread exists.
        // A failure leaves glibc's default, which works.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

static RELEASE_WANTED: AtomicBool = AtomicBool::new(false);

/// Something freed memory in bulk (a transient syntax tree, dropped trees, a closed document,
/// the workspace scan's parse data): the next idle moment should give it back.
pub fn release_wanted() {
    RELEASE_WANTED.store(true, Ordering::Relaxed);
}

/// A snapshot that parsed its own tree (its document had dropped one) frees it when it goes.
pub fn release_transient_tree(document: &crate::store::DocumentSnapshot) {
    if document.parsed_tree().is_some() {
        release_wanted();
    }
}

/// Whether a release was asked for since the last one (and forgets the request).
pub fn take_release_wanted() -> bool {
    RELEASE_WANTED.swap(false, Ordering::Relaxed)
}

/// Hands the free pages inside the heap back to the system (`malloc_trim`). Freed memory stays
/// with the process otherwise, split between used chunks, so each burst of work (re-checking
/// every open file after the index changes, opening a large file) raised RSS further. It costs
/// milliseconds and holds the allocator's lock meanwhile: callers run it off the runtime, when
/// no lint is running, and never after an ordinary keystroke's lint.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim is thread-safe and only returns memory no allocation uses.
        unsafe {
            malloc_trim(0);
        }
    }
}
