//! Work over a big zone's names on every core, results gathered on the
//! calling thread (which alone fills the one map they go into).

/// Names handed to a worker at a time: small enough that what waits to be
/// inserted stays a few MiB (it is not in the ready figure's memory), big
/// enough that the channel costs nothing beside the work.
const BATCH: usize = 4096;

/// `make` over `items` in batches on every core, `add` taking each batch's
/// results on this thread as they come (into one map). A big zone's
/// indexes are much of its load: two cores halve the wait for them.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    make: impl Fn(&[T], &mut Vec<R>) + Sync,
    add: &mut impl FnMut(Vec<R>),
) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len() / BATCH);
    if workers <= 1 {
        let mut out = Vec::with_capacity(items.len() + items.len() / 4);
        make(items, &mut out);
        return add(out);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<R>>(2 * workers);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, next, make) = (tx.clone(), &next, &make);
            s.spawn(move || loop {
                let at = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = items.get(at..(at + BATCH).min(items.len())) else { break };
                let mut out = Vec::with_capacity(batch.len() + batch.len() / 4);
                make(batch, &mut out);
                if tx.send(out).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for batch in rx {
            add(batch);
        }
    });
}
