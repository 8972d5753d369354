//! Sockets and process life: bind, serve UDP and TCP, reload on SIGHUP,
//! stop cleanly on SIGTERM/SIGINT.

mod error;
mod published;
mod reload;
mod tcp;
mod udp;
#[cfg(target_os = "linux")]
mod udp_batch;
#[cfg(target_os = "linux")]
mod udp_wake;

pub use error::ServeError;
pub use published::{health_targets, Published};
pub use reload::Reloader;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// Settings of the listeners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Vec<SocketAddr>,
    /// `listen` is the built-in default: an address this host does not have
    /// (no `::1`) is skipped with a warning; configured addresses must bind.
    pub listen_is_default: bool,
    pub tcp_idle_timeout: Duration,
    /// How often input files are checked for changes (`None`: only SIGHUP).
    pub watch_interval: Option<Duration>,
    /// Where queries are counted (`None`: not counted).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Response rate limiting for UDP (`None`: off).
    pub rrl: Option<Arc<crate::rrl::Limiter>>,
    pub tcp_limits: tcp::Limits,
}

pub use tcp::Limits as TcpLimits;

/// Bind every address (UDP and TCP) before serving, so a port clash fails the start.
pub async fn serve(state: Arc<Published>, opts: ServeOptions, reloader: Arc<Reloader>) -> Result<(), ServeError> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut udp_sockets = Vec::new();
    let mut tcp_listeners = Vec::new();
    // Several blocking receivers per address, so UDP uses every core.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut skipped = None;
    for addr in &opts.listen {
        let bind = |proto| move |source| ServeError::Bind { proto, addr: *addr, source };
        let bound = match udp::bind_all(*addr, workers).map_err(bind("UDP")) {
            Ok(udp) => TcpListener::bind(addr).await.map_err(bind("TCP")).map(|tcp| (udp, tcp)),
            Err(e) => Err(e),
        };
        match bound {
            Ok((udp, tcp)) => {
                udp_sockets.push(udp);
                tcp_listeners.push(tcp);
            }
            Err(e) if opts.listen_is_default && e.is_missing_address() => {
                warn!("default listen address {addr} skipped (this host does not have it): {e}");
                skipped = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    // Skipping is for a missing extra address, not for serving on nothing.
    if let (true, Some(e)) = (udp_sockets.is_empty(), skipped) {
        return Err(e);
    }
    let udp_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let udp_cx = udp::UdpContext {
        state: state.clone(),
        metrics: opts.metrics.clone(),
        rrl: opts.rrl.clone(),
        stop: Arc::clone(&udp_stop),
        clock: quanta::Clock::new(),
    };
    #[cfg(target_os = "linux")]
    udp_wake::install().map_err(ServeError::WakeSignal)?;
    let mut udp_threads = Vec::new();
    // The sockets stay here too: shutting them down wakes their receivers (`udp_wake`).
    for socks in &udp_sockets {
        let addr = socks[0].local_addr().map_err(ServeError::LocalAddr)?;
        info!(%addr, workers, sockets = socks.len(), "serving UDP");
        for i in 0..workers {
            let receiver = |source| ServeError::Receiver { addr, index: i, source };
            // Its own socket, or a share of the one (see `udp::bind_all`).
            let (sock, cx) = (socks[i % socks.len()].try_clone().map_err(receiver)?, udp_cx.clone());
            let t = std::thread::Builder::new()
                .name(format!("udp-{i}"))
                .spawn(move || udp::run(sock, cx))
                .map_err(receiver)?;
            udp_threads.push(t);
        }
    }
    // Receivers block without a timeout: poke them when a new snapshot is
    // published so an idle one lets go of the old (see `udp_wake`).
    #[cfg(target_os = "linux")]
    let udp_watch =
        tokio::spawn(udp_wake::watch(state.clone(), udp_wake::pthreads(&udp_threads), Duration::from_secs(1)));
    // One set of connection counts over every TCP listener.
    let conns = Arc::new(tcp::Connections::default());
    for listener in tcp_listeners {
        info!(addr = %listener.local_addr().map_err(ServeError::LocalAddr)?, "serving TCP");
        tracker.spawn(tcp::run(
            listener,
            state.clone(),
            shutdown.clone(),
            tracker.clone(),
            opts.tcp_idle_timeout,
            opts.tcp_limits.clone(),
            Arc::clone(&conns),
            opts.metrics.clone(),
        ));
    }
    if let Some(every) = opts.watch_interval {
        tokio::spawn(Arc::clone(&reloader).watch(every));
    }
    info!("ready");

    let on_hup = move || {
        let r = Arc::clone(&reloader);
        tokio::task::spawn_blocking(move || r.reload("SIGHUP"));
    };
    wait_for_signals(on_hup).await;
    info!("shutting down: no new queries; finishing TCP answers in flight");
    shutdown.cancel();
    udp_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    #[cfg(target_os = "linux")]
    {
        udp_watch.abort();
        let _ = udp_watch.await; // no poke may reach a thread once it is joined
        udp_wake::shut_down(udp_sockets.iter().flatten());
    }
    for t in udp_threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await.is_err() {
        warn!("some TCP connections did not finish within 5 s");
    }
    info!("stopped");
    Ok(())
}

async fn wait_for_signals(reload: impl Fn()) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => reload(),
        }
    }
}
