//! One reload at a time. A request that arrives while a reload runs is not
//! started beside it (ten concurrent loads of a big zone took ten copies of
//! it, and a slow one finishing last brought back what a newer one removed):
//! it marks "one more", and every such request coalesces into that one run,
//! which starts after the last of them, so it reads the newest files.

use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct ReloadQueue {
    state: Mutex<Phase>,
}

#[derive(Debug, Default)]
enum Phase {
    #[default]
    Idle,
    /// A reload runs; `again`: requests since it started, served by one more.
    Running { again: u32 },
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<T> {
    /// This caller ran the reload (and any that arrived meanwhile); the last run's result.
    Ran(T),
    /// A reload was running: the request joined the one that runs after it.
    Coalesced,
}

impl ReloadQueue {
    /// Run `reload` now if none runs, then once more for as long as requests
    /// arrived during the previous run (`more` is told how many, before each
    /// rerun); else leave it to the running caller.
    pub fn request<T>(&self, mut reload: impl FnMut() -> T, mut more: impl FnMut(u32)) -> Outcome<T> {
        {
            let mut phase = self.lock();
            match &mut *phase {
                Phase::Running { again } => {
                    *again += 1;
                    return Outcome::Coalesced;
                }
                Phase::Idle => *phase = Phase::Running { again: 0 },
            }
        }
        // Back to Idle if `reload` panics, or no request could ever run again.
        let _idle = IdleOnPanic(self);
        loop {
            let result = reload();
            let mut phase = self.lock();
            match &mut *phase {
                Phase::Running { again } if *again > 0 => {
                    let n = std::mem::take(again);
                    drop(phase);
                    more(n);
                }
                // Idle in the same critical section as the check: a request
                // between the two would see Running and be lost.
                _ => {
                    *phase = Phase::Idle;
                    return Outcome::Ran(result);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct IdleOnPanic<'a>(&'a ReloadQueue);

impl Drop for IdleOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            *self.0.lock() = Phase::Idle;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_request_during_a_reload_coalesces_into_one_more() {
        let q = Arc::new(ReloadQueue::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let (q, runs) = (Arc::clone(&q), Arc::clone(&runs));
            std::thread::spawn(move || {
                let mut reruns = Vec::new();
                let out = q.request(
                    || {
                        if runs.fetch_add(1, SeqCst) == 0 {
                            started_tx.send(()).unwrap();
                            go_rx.recv().unwrap();
                        }
                        runs.load(SeqCst)
                    },
                    |n| reruns.push(n),
                );
                (out, reruns)
            })
        };
        started_rx.recv().unwrap();
        for _ in 0..5 {
            assert_eq!(q.request(|| unreachable!("runs beside the first"), |_| {}), Outcome::Coalesced);
        }
        go_tx.send(()).unwrap();
        let (out, reruns) = first.join().unwrap();
        assert_eq!(out, Outcome::Ran(2), "the first run and exactly one more");
        assert_eq!(reruns, vec![5], "told that five requests were coalesced");
        // Idle again: the next request runs at once.
        assert_eq!(q.request(|| 7, |_| {}), Outcome::Ran(7));
    }

    /// Many threads asking at random moments: never two runs at once, and
    /// the last run starts after the last request (it sees the newest input).
    #[test]
    fn runs_never_overlap_and_the_newest_input_is_read_last() {
        let q = Arc::new(ReloadQueue::default());
        let input = Arc::new(AtomicU32::new(0));
        let (running, overlap, last_read) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU32::new(0)));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (q, input, running, overlap, last_read) = (
                    Arc::clone(&q),
                    Arc::clone(&input),
                    Arc::clone(&running),
                    Arc::clone(&overlap),
                    Arc::clone(&last_read),
                );
                std::thread::spawn(move || {
                    for i in 0..50 {
                        // A new configuration, then a request for it.
                        input.fetch_add(1, SeqCst);
                        q.request(
                            || {
                                if running.fetch_add(1, SeqCst) > 0 {
                                    overlap.fetch_add(1, SeqCst);
                                }
                                last_read.store(input.load(SeqCst), SeqCst);
                                std::thread::sleep(Duration::from_micros(200 + (t * 37 + i * 11) % 300));
                                running.fetch_sub(1, SeqCst);
                            },
                            |_| {},
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(overlap.load(SeqCst), 0, "two reloads ran at once");
        assert_eq!(last_read.load(SeqCst), 400, "the last run read the newest input");
    }

    #[test]
    fn a_panicking_reload_leaves_the_queue_usable() {
        let q = ReloadQueue::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.request(|| panic!("boom"), |_| {})));
        assert!(r.is_err());
        assert_eq!(q.request(|| 1, |_| {}), Outcome::Ran(1));
    }
}
