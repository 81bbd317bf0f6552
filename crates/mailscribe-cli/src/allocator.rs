//! How the C library's allocator treats large blocks.
//!
//! glibc's malloc serves a block above its mmap threshold (128 KiB at
//! start) from a fresh mapping and unmaps it on free. But the first time
//! such a block is freed, glibc raises the threshold to that block's size,
//! so that every later block of that size comes from its arenas instead,
//! and freed arena memory is rarely given back. Each password check
//! (Argon2) allocates 19 MiB: under a flood of sign-ins `serve` grew from
//! 94 MB to 650 MB and stayed there (docs/benchmarks.md). Setting the
//! threshold explicitly turns the adjustment off, so that blocks of 4 MiB
//! and more are always mapped and always given back.

/// Blocks of this size and larger are mapped on their own.
const MMAP_THRESHOLD: usize = 4 * 1024 * 1024;

/// Fixes the mmap threshold unless the operator chose one through glibc's
/// own `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES`. Call it first thing,
/// before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn give_large_blocks_back() {
    let chosen_by_operator = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("mmap_threshold"));
    if chosen_by_operator {
        return;
    }
    let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets a parameter of glibc's allocator under its
    // own lock; it reads no memory of ours. It returns 0 on a refused value,
    // which leaves the allocator as it was: nothing to handle.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
    }
}

/// Other C libraries (musl) keep no such threshold.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn give_large_blocks_back() {}
