//! Giving memory back after a bulk change.
//!
//! A full list (at start, and after every relist) builds a kind's worth of objects, diffs them
//! against what the index held, and drops both sides. jemalloc (the binary's allocator, see
//! `src/main.rs`) returns freed pages on its decay clock, which only ticks when something
//! allocates: an idle server kept the list's pages resident, several MiB at 10,000 Services.
//! [`release_freed`] hands them back at once.

/// Returns the allocator's freed pages to the kernel: a pass over jemalloc's dirty extents, one
/// `madvise` each, so call it after bulk changes, never per query. Without the `jemalloc`
/// feature it does nothing.
pub fn release_freed() {
    #[cfg(feature = "jemalloc")]
    {
        // `arena.<MALLCTL_ARENAS_ALL>.purge`: every arena, dirty and muzzy pages alike.
        const PURGE_ALL: &std::ffi::CStr = c"arena.4096.purge";
        // SAFETY: a documented mallctl that reads and writes no value (all pointers null,
        // length 0). In a process whose global allocator is not jemalloc it finds nothing to
        // purge.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        if rc != 0 {
            tracing::debug!("jemalloc: arena purge failed ({rc})");
        }
    }
}
