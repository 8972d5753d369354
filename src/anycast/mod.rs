//! `meridian anycast`: announce the node's service prefixes over BGP (through
//! ExaBGP) while the local Meridian answers, withdraw them when it stops.
//!
//! ExaBGP starts this command as a `process`: our stdout is its API channel
//! (`announce route …` / `withdraw route …`, one flushed line each) and our
//! stdin carries its acknowledgements and events. Logs go to stderr only.
//!
//! * [`announce`]: the announce/withdraw phases (pure, on the shared rise/fall counter).
//! * [`checker`]: one health check (DNS over UDP, optional admin `/status`).
//! * [`exabgp`]: API lines out, events in.
//! * this file: the run loop that joins them, generic over the two pipes so
//!   tests can play ExaBGP, and the process around it (signals, runtime).
//!
//! Lifecycle: at start every configured prefix is withdrawn (a helper that
//! died may have left its route in ExaBGP's RIB), then announced after
//! `rise` healthy checks; withdrawn after `fall` failed ones (a check that
//! errors, times out or does not come at all is a failure); withdrawn on
//! SIGTERM/SIGINT/SIGHUP before exiting. When stdin closes or ExaBGP says
//! `shutdown`, ExaBGP is going away with its sessions: we just exit.
//! See docs/anycast.md.

pub mod announce;
pub mod checker;
pub mod config;
pub mod exabgp;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use announce::{Announcer, PhaseChange, RouteChange};
pub use checker::{CheckResult, Checker};
pub use config::AnycastConfig;
use exabgp::{parse_event, Api, Event};

/// `meridian anycast` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct AnycastArgs {
    /// Anycast settings (default: ./anycast.toml). See examples/anycast/anycast.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run one check, print the verdict and the API lines a healthy node
    /// would send, and exit (0 healthy, 1 not). For people, not for ExaBGP.
    #[arg(long)]
    pub check: bool,
}

/// What the run loop needs besides its pipes, derived from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rise: u32,
    pub fall: u32,
    pub announce: Vec<String>,
    pub withdraw: Vec<String>,
    /// The prefixes, for log lines.
    pub prefixes: String,
    /// No check result for this long counts as one failed check.
    pub stall: Duration,
}

impl Settings {
    pub fn from_config(cfg: &AnycastConfig) -> Settings {
        Settings {
            rise: cfg.rise,
            fall: cfg.fall,
            announce: cfg.announce_lines(),
            withdraw: cfg.withdraw_lines(),
            prefixes: cfg.prefix_list(),
            stall: cfg.interval * 2 + cfg.timeout,
        }
    }
}

/// Why the run loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM (or the shutdown token): prefixes withdrawn.
    Signal,
    /// stdin closed: ExaBGP is gone.
    StdinClosed,
    /// ExaBGP announced its shutdown.
    ExabgpShutdown,
    /// The checker stopped delivering results: prefixes withdrawn.
    CheckerGone,
}

/// The helper's main loop. `events` is ExaBGP's side (our stdin), `out` the
/// API channel (our stdout), `outcomes` the check results, `shutdown` the
/// signal. Returns after withdrawing on a signal; an error when the API
/// channel cannot be written (ExaBGP is gone).
pub async fn run_loop<R, W>(
    s: &Settings,
    events: R,
    out: W,
    mut outcomes: mpsc::Receiver<CheckResult>,
    shutdown: CancellationToken,
) -> std::io::Result<Exit>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut api = Api::new(out);
    let mut lines = BufReader::new(events).lines();
    let mut machine = Announcer::new(s.rise, s.fall);
    info!(
        prefixes = %s.prefixes,
        rise = s.rise,
        fall = s.fall,
        "anycast helper started: withdrawing any stale route, announcing after {} healthy check(s)",
        s.rise
    );
    api.send_all(&s.withdraw).await?;
    let mut deadline = Instant::now() + s.stall;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let step = machine.shutdown();
                warn!(prefixes = %s.prefixes, was = %machine.describe(step.from), "signal: withdrawing before exit");
                api.send_all(&s.withdraw).await?;
                return Ok(Exit::Signal);
            }
            line = lines.next_line() => match line {
                Ok(None) => {
                    info!("stdin closed (ExaBGP is gone, its sessions with it): exiting");
                    return Ok(Exit::StdinClosed);
                }
                Err(e) => {
                    warn!("cannot read ExaBGP's events ({e}): exiting");
                    return Ok(Exit::StdinClosed);
                }
                Ok(Some(line)) => match parse_event(&line) {
                    Event::Shutdown => {
                        info!("ExaBGP is shutting down (it ends the BGP sessions): exiting");
                        return Ok(Exit::ExabgpShutdown);
                    }
                    Event::Done => {
                        if let Some(c) = api.acknowledged() {
                            debug!(command = %c, "ExaBGP accepted");
                        }
                    }
                    Event::Error => {
                        let c = api.acknowledged().unwrap_or_else(|| "?".into());
                        warn!(command = %c, "ExaBGP rejected a command (see ExaBGP's log)");
                    }
                    Event::Neighbor { peer, state, detail } => {
                        info!(peer = %peer, state = %state, detail = %detail, "BGP neighbor {state}");
                    }
                    Event::Empty => {}
                    Event::Other(text) => debug!(event = %text, "from ExaBGP"),
                },
            },
            o = outcomes.recv() => match o {
                Some(o) => {
                    deadline = Instant::now() + s.stall;
                    apply(&mut machine, &mut api, s, &o).await?;
                }
                None => {
                    let step = machine.shutdown();
                    error!(prefixes = %s.prefixes, was = %machine.describe(step.from), "health checker stopped: withdrawing and exiting");
                    api.send_all(&s.withdraw).await?;
                    return Ok(Exit::CheckerGone);
                }
            },
            _ = tokio::time::sleep_until(deadline) => {
                deadline = Instant::now() + s.stall;
                let o = CheckResult::Error(format!("no check result for {}", humantime::format_duration(s.stall)));
                apply(&mut machine, &mut api, s, &o).await?;
            }
        }
    }
}

/// Feed one result to the machine, log the transition, tell ExaBGP.
async fn apply<W: AsyncWrite + Unpin>(
    m: &mut Announcer,
    api: &mut Api<W>,
    s: &Settings,
    o: &CheckResult,
) -> std::io::Result<()> {
    let step: PhaseChange = m.observe(o.healthy());
    let (from, to) = (m.describe(step.from), m.describe(step.to));
    match step.route {
        Some(RouteChange::Announce) => {
            info!(prefixes = %s.prefixes, %from, %to, reason = %o, "ANNOUNCE after {} healthy check(s)", s.rise);
            api.send_all(&s.announce).await?;
        }
        Some(RouteChange::Withdraw) => {
            warn!(prefixes = %s.prefixes, %from, %to, reason = %o, "WITHDRAW after {} failed check(s)", s.fall);
            api.send_all(&s.withdraw).await?;
        }
        None if step.changed() => info!(%from, %to, reason = %o, "anycast state changed"),
        None => debug!(state = %to, result = %o, "check"),
    }
    Ok(())
}

/// Run a check every `interval` and hand the results over; stops when the
/// receiver is gone.
pub async fn check_loop(checker: Checker, interval: Duration, tx: mpsc::Sender<CheckResult>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let o = checker.check().await;
        if tx.send(o).await.is_err() {
            return;
        }
    }
}

/// Entry point of `meridian anycast`.
pub fn main(args: AnycastArgs) -> ExitCode {
    init_logging();
    let path = args.config.clone().unwrap_or_else(|| PathBuf::from(config::DEFAULT_FILE));
    let cfg = match AnycastConfig::load(&path) {
        Ok(c) => c,
        Err(e) if args.config.is_none() => {
            error!("{e} (name the settings file with --config FILE; see examples/anycast/anycast.toml)");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        if args.check {
            check_once(&cfg).await
        } else {
            run(&cfg).await
        }
    });
    // stdin is read on a blocking thread that may never return: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The process around the run loop: real stdin/stdout, checks, signals.
async fn run(cfg: &AnycastConfig) -> anyhow::Result<ExitCode> {
    let checker = Checker::new(cfg)?;
    info!(
        config = %cfg.file.display(),
        dns = %cfg.dns,
        check = %format!("{} {}", cfg.check_name, cfg.check_type),
        interval = %humantime::format_duration(cfg.interval),
        timeout = %humantime::format_duration(cfg.timeout),
        min_regions_up = cfg.min_regions_up,
        "checking the local node"
    );
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone())?;
    let (tx, rx) = mpsc::channel(4);
    let checks = tokio::spawn(check_loop(checker, cfg.interval, tx));
    let settings = Settings::from_config(cfg);
    let exit = run_loop(&settings, tokio::io::stdin(), tokio::io::stdout(), rx, shutdown).await;
    checks.abort();
    match exit {
        Ok(Exit::CheckerGone) => Ok(ExitCode::FAILURE),
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::anyhow!("cannot write to ExaBGP (stdout): {e}")),
    }
}

fn spawn_signal_handler(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        };
        info!("{name} received");
        token.cancel();
    });
    Ok(())
}

/// `--check`: one check, printed for a person.
async fn check_once(cfg: &AnycastConfig) -> anyhow::Result<ExitCode> {
    let checker = Checker::new(cfg)?;
    let o = checker.check().await;
    println!("{o}");
    let lines = if o.healthy() { cfg.announce_lines() } else { cfg.withdraw_lines() };
    println!(
        "a helper whose node has been like this for {} check(s) in a row sends:",
        if o.healthy() { cfg.rise } else { cfg.fall }
    );
    for l in lines {
        println!("  {l}");
    }
    Ok(if o.healthy() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // stdout is ExaBGP's API channel: every log line goes to stderr.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

#[cfg(test)]
mod tests {
    //! The run loop against a fake ExaBGP: we write its events into our
    //! "stdin", read the API lines from our "stdout", feed check results by
    //! hand and play SIGTERM with the shutdown token.
    use super::*;
    use tokio::io::{AsyncWriteExt, DuplexStream, Lines};

    const ANN: &str = "announce route 192.0.2.53/32 next-hop self med 100 community [ 65000:53 ]";
    const WD: &str = "withdraw route 192.0.2.53/32";

    struct Fake {
        /// ExaBGP → helper (the helper's stdin).
        to_helper: Option<DuplexStream>,
        /// helper → ExaBGP (the helper's stdout).
        api: Lines<BufReader<DuplexStream>>,
        checks: mpsc::Sender<CheckResult>,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<std::io::Result<Exit>>,
    }

    fn settings(rise: u32, fall: u32, stall_ms: u64) -> Settings {
        Settings {
            rise,
            fall,
            announce: vec![ANN.into()],
            withdraw: vec![WD.into()],
            prefixes: "192.0.2.53/32".into(),
            stall: Duration::from_millis(stall_ms),
        }
    }

    fn start(s: Settings) -> Fake {
        let (stdin_w, stdin_r) = tokio::io::duplex(4096);
        let (stdout_w, stdout_r) = tokio::io::duplex(4096);
        let (tx, rx) = mpsc::channel(16);
        let token = CancellationToken::new();
        let t2 = token.clone();
        let task = tokio::spawn(async move { run_loop(&s, stdin_r, stdout_w, rx, t2).await });
        Fake { to_helper: Some(stdin_w), api: BufReader::new(stdout_r).lines(), checks: tx, shutdown: token, task }
    }

    impl Fake {
        async fn line(&mut self) -> String {
            match tokio::time::timeout(Duration::from_secs(2), self.api.next_line()).await {
                Ok(Ok(Some(l))) => l,
                other => panic!("expected an API line, got {other:?}"),
            }
        }
        /// Nothing more is written for a while.
        async fn quiet(&mut self) {
            if let Ok(l) = tokio::time::timeout(Duration::from_millis(100), self.api.next_line()).await {
                panic!("expected no API line, got {l:?}");
            }
        }
        async fn ok(&self) {
            self.checks.send(CheckResult::Healthy("fine".into())).await.unwrap();
        }
        async fn bad(&self) {
            self.checks.send(CheckResult::Unhealthy("rcode SERVFAIL".into())).await.unwrap();
        }
        async fn err(&self) {
            self.checks.send(CheckResult::Error("timeout".into())).await.unwrap();
        }
        async fn event(&mut self, text: &str) {
            let w = self.to_helper.as_mut().unwrap();
            w.write_all(format!("{text}\n").as_bytes()).await.unwrap();
        }
        async fn exit(self) -> Exit {
            tokio::time::timeout(Duration::from_secs(2), self.task).await.expect("loop ended").unwrap().unwrap()
        }
        /// Successes up to the announcement (the startup withdraw already read).
        async fn bring_up(&mut self, rise: u32) {
            for _ in 0..rise {
                self.ok().await;
            }
            assert_eq!(self.line().await, ANN);
        }
    }

    #[tokio::test]
    async fn start_withdraws_then_announces_after_rise() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD, "stale routes are withdrawn at start");
        f.ok().await;
        f.ok().await;
        f.quiet().await;
        f.ok().await;
        assert_eq!(f.line().await, ANN);
        f.ok().await;
        f.quiet().await;
    }

    #[tokio::test]
    async fn withdraws_after_fall_failures_and_comes_back_after_rise() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(3).await;
        f.bad().await;
        f.bad().await;
        f.quiet().await;
        f.bad().await;
        assert_eq!(f.line().await, WD);
        f.bad().await;
        f.ok().await;
        f.ok().await;
        f.quiet().await;
        f.ok().await;
        assert_eq!(f.line().await, ANN);
    }

    #[tokio::test]
    async fn errors_count_as_failures() {
        let mut f = start(settings(2, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(2).await;
        f.err().await;
        f.bad().await;
        f.quiet().await;
        f.err().await;
        assert_eq!(f.line().await, WD);
        // An error also breaks a rising streak.
        f.ok().await;
        f.err().await;
        f.ok().await;
        f.quiet().await;
        f.ok().await;
        assert_eq!(f.line().await, ANN);
    }

    #[tokio::test]
    async fn a_success_resets_the_fall_count() {
        let mut f = start(settings(1, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(1).await;
        for _ in 0..3 {
            f.bad().await;
            f.bad().await;
            f.ok().await;
        }
        f.quiet().await;
    }

    #[tokio::test]
    async fn sigterm_withdraws_when_announced() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(3).await;
        f.shutdown.cancel();
        assert_eq!(f.line().await, WD);
        assert_eq!(f.exit().await, Exit::Signal);
    }

    #[tokio::test]
    async fn sigterm_while_falling_withdraws() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(3).await;
        f.bad().await;
        f.quiet().await;
        f.shutdown.cancel();
        assert_eq!(f.line().await, WD);
        assert_eq!(f.exit().await, Exit::Signal);
    }

    #[tokio::test]
    async fn stdin_closing_ends_the_loop_quietly() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(3).await;
        f.to_helper = None; // ExaBGP died: our stdin reaches EOF
        let Fake { mut api, task, .. } = f;
        let exit = tokio::time::timeout(Duration::from_secs(2), task).await.unwrap().unwrap().unwrap();
        assert_eq!(exit, Exit::StdinClosed);
        assert_eq!(api.next_line().await.unwrap(), None, "nothing written after EOF");
    }

    #[tokio::test]
    async fn exabgp_shutdown_ends_the_loop() {
        let mut f = start(settings(3, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.event("done").await;
        f.event("neighbor 10.99.0.2 up").await;
        f.event("").await;
        f.event("shutdown 4242 1").await;
        assert_eq!(f.exit().await, Exit::ExabgpShutdown);
    }

    #[tokio::test]
    async fn acks_and_neighbor_events_change_nothing() {
        let mut f = start(settings(2, 2, 60_000));
        assert_eq!(f.line().await, WD);
        f.event("done").await;
        f.ok().await;
        f.event("error").await;
        f.event("neighbor 10.99.0.2 down - peer reset").await;
        f.event(r#"{"type":"state","neighbor":{"address":{"peer":"10.99.0.2"},"state":"up"}}"#).await;
        f.ok().await;
        assert_eq!(f.line().await, ANN);
        f.event("done").await;
        f.quiet().await;
    }

    #[tokio::test]
    async fn missing_check_results_count_as_failures() {
        // The checker is stuck: no result arrives. Each stall period is one failure.
        let mut f = start(settings(1, 2, 50));
        assert_eq!(f.line().await, WD);
        let t = std::time::Instant::now();
        f.ok().await;
        assert_eq!(f.line().await, ANN);
        assert_eq!(f.line().await, WD);
        assert!(t.elapsed() >= Duration::from_millis(95), "two stall periods: {:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_dead_checker_withdraws_and_exits() {
        let mut f = start(settings(1, 3, 60_000));
        assert_eq!(f.line().await, WD);
        f.bring_up(1).await;
        let Fake { mut api, task, checks, to_helper: _keep, .. } = f;
        drop(checks);
        assert_eq!(api.next_line().await.unwrap().as_deref(), Some(WD));
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(2), task).await.unwrap().unwrap().unwrap(),
            Exit::CheckerGone
        );
    }

    #[tokio::test]
    async fn a_closed_api_channel_is_an_error() {
        let (_stdin_w, stdin_r) = tokio::io::duplex(64);
        let (stdout_w, stdout_r) = tokio::io::duplex(64);
        drop(stdout_r);
        let (_tx, rx) = mpsc::channel(1);
        let r = run_loop(&settings(1, 1, 60_000), stdin_r, stdout_w, rx, CancellationToken::new()).await;
        assert!(r.is_err());
    }

    #[test]
    fn settings_from_config() {
        let cfg = AnycastConfig::parse(crate::config::Source {
            path: "anycast.toml".into(),
            text: "check_name = \"gslb.example.test\"\nrise = 2\n[[prefixes]]\nprefix = \"192.0.2.53/32\"\nmed = 100\ncommunities = [\"65000:53\"]\n".into(),
        })
        .unwrap();
        let s = Settings::from_config(&cfg);
        assert_eq!((s.rise, s.fall), (2, 3));
        assert_eq!(s.announce, vec![ANN.to_string()]);
        assert_eq!(s.withdraw, vec![WD.to_string()]);
        assert_eq!(s.stall, Duration::from_millis(2500));
    }
}
