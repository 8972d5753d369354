//! Waking UDP receivers that block in `recvmmsg` with no receive timeout.
//!
//! A timeout on every blocking receive (SO_RCVTIMEO) arms and cancels a
//! kernel timer each time the queue runs dry, thousands of times a second
//! under load, only so that an idle receiver notices two rare events:
//! - **stop:** the socket is shut down for reading, which wakes a blocked
//!   receive at once and makes every later one return without waiting;
//! - **a new snapshot** (reload, health change): a receiver that gets no
//!   query would keep the replaced one alive. `watch` notices the swap and
//!   sends each receiver thread SIGURG, whose handler does nothing and is
//!   installed without SA_RESTART, so a blocked `recvmmsg` returns EINTR and
//!   the receiver lets go of the old snapshot. A signal that lands just
//!   before the receiver blocks is missed: the old snapshot then lives until
//!   that receiver's next query or the next swap (memory only; answers always
//!   come from the current snapshot, checked at every batch).

use std::io;
use std::net::UdpSocket;
use std::os::unix::thread::JoinHandleExt;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Published;
use crate::answer::Snapshot;

/// SIGURG: ignored by default (a stray one harms nothing) and left alone by
/// tokio and the standard library.
const POKE: libc::c_int = libc::SIGURG;

extern "C" fn ignore(_: libc::c_int) {}

/// Install the handler that makes SIGURG interrupt a blocked receive.
pub fn install() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler
    // is async-signal-safe (it does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(POKE, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The threads' ids for `poke`, valid until they are joined.
pub fn pthreads(threads: &[JoinHandle<()>]) -> Vec<libc::pthread_t> {
    threads.iter().map(JoinHandleExt::as_pthread_t).collect()
}

/// Interrupt whatever blocking call each thread is in (see the module doc).
/// Every thread must still be unjoined (`serve` stops `watch` before joining).
pub fn poke(threads: &[libc::pthread_t]) {
    for &t in threads {
        // SAFETY: an unjoined thread's pthread_t is valid (the caller's
        // promise); the signal has a handler (`install`).
        unsafe {
            libc::pthread_kill(t, POKE);
        }
    }
}

/// Wake every receiver blocked on `sockets` for good (after the stop flag is set).
pub fn shut_down<'a>(sockets: impl IntoIterator<Item = &'a UdpSocket>) {
    for s in sockets {
        // On an unconnected UDP socket this reports ENOTCONN but still marks
        // it shut for reading and wakes its waiters.
        let _ = socket2::SockRef::from(s).shutdown(std::net::Shutdown::Read);
    }
}

/// Every `every`, whether the shared snapshot was replaced since the last
/// look; if so, poke the receivers. Holds only a weak reference to the last
/// snapshot seen (so it keeps none alive, and an address reused by a later
/// snapshot cannot pass for it).
pub async fn watch(state: Arc<Published>, threads: Vec<libc::pthread_t>, every: Duration) {
    let mut seen: Weak<Snapshot> = Arc::downgrade(&state.load_full());
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.load_full();
        if !std::ptr::eq(seen.as_ptr(), Arc::as_ptr(&now)) {
            seen = Arc::downgrade(&now);
            drop(now);
            poke(&threads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A thread blocked in a receive with no timeout returns EINTR when
    /// poked, and for good once its socket is shut down.
    #[test]
    fn poke_interrupts_and_shut_down_ends_a_blocked_receive() {
        install().unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let theirs = sock.try_clone().unwrap();
        let interrupted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&interrupted);
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            loop {
                match theirs.recv_from(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    // Shut down: an empty read (or an error), at once.
                    _ => return,
                }
            }
        });
        let ids = pthreads(std::slice::from_ref(&t));
        // Poke until the blocked receive reports it (a poke before it blocks is missed).
        for _ in 0..200 {
            if interrupted.load(Ordering::SeqCst) > 0 {
                break;
            }
            poke(&ids);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(interrupted.load(Ordering::SeqCst) > 0, "a poke interrupts the receive");
        shut_down([&sock]);
        for _ in 0..200 {
            if t.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(t.is_finished(), "shutting the socket down ends the receive loop");
        t.join().unwrap();
    }
}
