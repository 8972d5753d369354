//! Sockets and process life: bind, serve UDP and TCP, reload on SIGHUP,
//! stop cleanly on SIGTERM/SIGINT.

mod error;
mod padding;
mod published;
mod quic;
mod reload;
mod reload_queue;
mod tcp;
mod tls;
mod trim;
mod udp;
#[cfg(target_os = "linux")]
mod udp_batch;
#[cfg(target_os = "linux")]
mod udp_wake;

pub use error::{ServeError, PERMISSION_HINT};
pub use published::{health_targets, probe_owners, Published};
pub use reload::Reloader;
pub use reload_queue::ReloadQueue;
pub use tls::{CertError, Certs};
pub use trim::{on_loader_thread, release_free_memory};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

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
    /// DNS over TLS and over QUIC: where, and with which certificate (needed when either is set).
    pub listen_tls: Vec<SocketAddr>,
    pub listen_quic: Vec<SocketAddr>,
    pub certs: Option<Arc<Certs>>,
}

pub use tcp::Limits as TcpLimits;

/// Bind every address (UDP and TCP) before serving, so a port clash fails the start.
pub async fn serve(
    state: Arc<Published>,
    opts: ServeOptions,
    reloader: Arc<Reloader>,
    signals: Signals,
) -> Result<(), ServeError> {
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
            Ok(udp) => tcp::bind(*addr).map_err(bind("TCP")).map(|tcp| (udp, tcp)),
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
    let tcp_cx = tcp::TcpContext {
        state: state.clone(),
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        idle: opts.tcp_idle_timeout,
        limits: opts.tcp_limits.clone(),
        conns: Arc::new(tcp::Connections::default()),
        workers: Arc::new(tcp::Workers::new(opts.metrics.clone())),
        metrics: opts.metrics.clone(),
        pad: false,
    };
    for listener in tcp_listeners {
        info!(addr = %listener.local_addr().map_err(ServeError::LocalAddr)?, "serving TCP");
        tracker.spawn(tcp::run(listener, tcp_cx.clone()));
    }
    // Encrypted transports: TCP's caps and timeouts, counted apart per transport.
    let encrypted_cx = || tcp::TcpContext { conns: Arc::new(tcp::Connections::default()), pad: true, ..tcp_cx.clone() };
    if let Some(certs) = opts.certs.as_ref().filter(|_| !opts.listen_tls.is_empty()) {
        let (cx, acceptor) = (encrypted_cx(), tokio_rustls::TlsAcceptor::from(certs.server_config(b"dot", false)));
        for addr in &opts.listen_tls {
            let listener = tcp::bind(*addr).map_err(|source| ServeError::Bind { proto: "TLS", addr: *addr, source })?;
            info!(addr = %listener.local_addr().map_err(ServeError::LocalAddr)?, "serving DNS over TLS");
            tracker.spawn(tls::run(listener, acceptor.clone(), cx.clone()));
        }
    }
    if let Some(certs) = opts.certs.as_ref().filter(|_| !opts.listen_quic.is_empty()) {
        let cx = encrypted_cx();
        for addr in &opts.listen_quic {
            let endpoint = quic::bind(*addr, certs, &cx).map_err(|source| ServeError::Bind {
                proto: "QUIC",
                addr: *addr,
                source,
            })?;
            info!(addr = %endpoint.local_addr().map_err(ServeError::LocalAddr)?, "serving DNS over QUIC");
            tracker.spawn(quic::run(endpoint, cx.clone()));
        }
    }
    if let Some(every) = opts.watch_interval {
        tokio::spawn(Arc::clone(&reloader).watch(every));
    }
    tokio::spawn(Arc::clone(&reloader).key_events());
    info!("ready");

    let certs = opts.certs.clone();
    let on_hup = move || {
        let r = Arc::clone(&reloader);
        tokio::task::spawn_blocking(move || r.reload("SIGHUP"));
        // New handshakes get the renewed certificate; sessions keep theirs.
        if let Some(c) = certs.clone() {
            tokio::task::spawn_blocking(move || c.reload());
        }
    };
    signals.wait(on_hup).await;
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

/// Block (`true`) or unblock SIGTERM, SIGINT and SIGHUP in the calling
/// thread, and so in the threads it starts later. Blocked first thing in
/// `main`, a signal stays pending instead of killing the process before
/// `Signals::install`; unblocked after it, the pending one reaches the handler.
pub fn signals_hold(hold: bool) {
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        let how = if hold { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// SIGTERM, SIGINT and SIGHUP, caught from the start of `serve`'s CLI path:
/// until a handler exists, SIGHUP's default action kills the process (a
/// service manager's reload during start-up did). A SIGHUP that arrives
/// while loading is remembered by its stream and applied once serving.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers; needs a runtime context (`Runtime::enter`).
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// `work` to its end, or `None` when SIGTERM or SIGINT came first (a
    /// SIGHUP meanwhile stays pending for `wait`).
    pub async fn unless_stopped<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = work => Some(out),
            _ = self.term.recv() => None,
            _ = self.int.recv() => None,
        }
    }

    /// Until SIGTERM or SIGINT, calling `reload` at each SIGHUP.
    async fn wait(mut self, reload: impl Fn()) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => reload(),
            }
        }
    }
}

/// An unbound socket for `addr`: IPv6-only for an IPv6 address, so `[::]`
/// and `0.0.0.0` can be bound on one port side by side (Linux's default
/// would let `[::]` take IPv4 too, and the second bind would fail with
/// "address in use"). Used by every listener: UDP, TCP/TLS and QUIC.
fn socket_for(addr: SocketAddr, ty: socket2::Type, proto: socket2::Protocol) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}
