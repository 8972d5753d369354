//! Giving a snapshot's memory back to the operating system after a load or
//! a reload.
//!
//! Building a snapshot of a big zone allocates and frees hundreds of MB of
//! temporaries (parser output, per-record answers), and a reload then frees
//! the whole previous snapshot. With glibc's malloc most of that stayed
//! resident: free chunks sat between live ones on the same pages, even after
//! `malloc_trim` (issue 26: 1.8× the start figure after a reload, 2.3× after
//! a few). The server's allocator is now mimalloc (`main.rs`), which returns
//! a page once all of it is free, but a page freed from another thread than
//! the one that allocated it lingers until that thread looks at its heap
//! again. So every snapshot is built on one loader thread, and the old one is
//! dropped there too, then collected at once.

use std::any::Any;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// Return free memory to the operating system: mimalloc's (the server's
/// allocator) and glibc's (the library's tests, and C code).
pub fn release_free_memory() {
    // SAFETY: both only walk their allocator's own free lists, under its locks.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        libc::malloc_trim(0);
    }
}

/// Run `job` on the loader thread (started on first use) and wait for it.
/// Jobs run one at a time, in the order sent; a panic in one is the
/// caller's panic, and the thread goes on.
pub fn on_loader_thread<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    static LOADER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let sender = LOADER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("meridian-loader".into())
            .spawn(move || rx.into_iter().for_each(|job| job()))
            .expect("cannot start the loader thread");
        Mutex::new(tx)
    });
    let (tx, rx) = channel::<Result<T, Box<dyn Any + Send>>>();
    let run: Job = Box::new(move || {
        let _small = SmallPages::while_loading();
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
    });
    sender.lock().unwrap_or_else(|p| p.into_inner()).send(run).expect("the loader thread ended");
    match rx.recv().expect("the loader thread ended") {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Transparent huge pages off for the process while a job runs (Linux).
/// mimalloc asks for huge pages on its arenas, and a load touches every page
/// of a big zone once: on a VM whose host has taken idle memory back, each
/// first touch of a 2 MiB page cost so much kernel time that a 400,000-record
/// zone's start took 1.0-1.2 s instead of 0.6-0.7 s, depending on how long
/// the machine had been idle; with 4 KiB pages it is 0.75-0.85 s every time
/// (docs/performance.md, "Big zones"). Queries keep huge pages afterwards
/// (new faults, and khugepaged's collapsing of what the load touched).
struct SmallPages {
    was_off: bool,
}

impl SmallPages {
    fn while_loading() -> SmallPages {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl with integer arguments only; -1 on error, 1 if already off.
            let was_off = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) } == 1;
            if !was_off {
                // SAFETY: as above; an error leaves huge pages on, which is harmless.
                unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
            }
            SmallPages { was_off }
        }
        #[cfg(not(target_os = "linux"))]
        SmallPages { was_off: true }
    }
}

impl Drop for SmallPages {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if !self.was_off {
            // SAFETY: as in `while_loading`; the operator's own setting (or
            // MIMALLOC_ALLOW_THP=0) left off is never turned on.
            unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
        }
    }
}

/// Wait (at most `limit`) until `old` is the last reference to what it
/// holds (`exclusive`), then drop it on the loader thread, which built it,
/// and release free memory. Query threads let go of a replaced snapshot at
/// their next batch or when poked (`udp_wake`, within a second). True when
/// `old` was exclusive in time (else it is dropped here all the same).
pub fn drop_on_loader<T: Send + Sync + 'static>(
    old: Arc<T>,
    exclusive: impl Fn(&Arc<T>) -> bool,
    limit: Duration,
) -> bool {
    let start = Instant::now();
    while !exclusive(&old) && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
    let alone = exclusive(&old);
    on_loader_thread(move || {
        drop(old);
        release_free_memory();
    });
    alone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_one_thread_and_a_panic_is_the_callers() {
        let first = on_loader_thread(|| std::thread::current().id());
        assert_eq!(on_loader_thread(|| std::thread::current().id()), first);
        assert_ne!(first, std::thread::current().id());
        let caught = std::panic::catch_unwind(|| on_loader_thread(|| panic!("in the job")));
        assert!(caught.is_err());
        assert_eq!(on_loader_thread(|| 7), 7, "the loader thread survives a panic");
        let shared = Arc::new(5);
        let other = Arc::clone(&shared);
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(other);
        });
        assert!(drop_on_loader(shared, |a| Arc::strong_count(a) == 1, Duration::from_secs(5)));
        holder.join().unwrap();
    }
}
