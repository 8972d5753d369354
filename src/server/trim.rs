//! Giving freed heap back to the operating system after a load or reload.
//!
//! Building a snapshot of a big zone allocates and frees hundreds of MB of
//! temporaries (parser output, per-record answers), and a reload then frees
//! the whole previous snapshot. glibc's malloc keeps most of that: freed
//! chunks below the top of a heap, and every arena but the main one, are only
//! handed back by `malloc_trim`. Without it the resident size after a reload
//! was 1.8× the start figure and 2.3× after a few (issue 26).

use std::sync::Weak;
use std::time::{Duration, Instant};

/// Return free heap pages to the operating system (a no-op off glibc).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Wait (at most `limit`) until nothing holds `old` any more, then release
/// free memory. Query threads let go of a replaced snapshot at their next
/// batch or when poked (`udp_wake`, within a second). True when `old` was
/// freed in time.
pub fn release_after_drop(old: &[&dyn Held], limit: Duration) -> bool {
    let start = Instant::now();
    while old.iter().any(|o| o.held()) && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
    release_free_memory();
    !old.iter().any(|o| o.held())
}

/// Something still referenced, or not.
pub trait Held {
    fn held(&self) -> bool;
}

impl<T> Held for Weak<T> {
    fn held(&self) -> bool {
        self.strong_count() > 0
    }
}
