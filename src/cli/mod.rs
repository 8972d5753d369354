//! Command-line interface: `serve`, `check`, `explain`, `geoip`, `admin`, `anycast`, `map`, `dnssec`.

mod dnssec;
mod map;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::answer::Snapshot;
use crate::config::ServerConfig;

#[derive(Parser, Debug)]
#[command(
    name = "meridian",
    version,
    about = "GSLB authoritative DNS server",
    after_help = "Logging: set MERIDIAN_LOG to a tracing filter, e.g. MERIDIAN_LOG=debug or \
MERIDIAN_LOG=info,meridian::health=debug (default: info). Logs go to standard error; \
`serve --log-format json` writes JSON lines.\n\nDocs: docs/operations.md, docs/zone-format.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve DNS on UDP and TCP (and TLS, QUIC when configured). Log level: MERIDIAN_LOG (default info).
    #[command(after_help = "Logging: MERIDIAN_LOG=debug (a tracing filter; default info), to standard error.")]
    Serve(ServeArgs),
    /// Load everything `serve` would, print a summary, exit non-zero on any error.
    Check(CheckArgs),
    /// Show how the answer for a name is made: client location, every chain step, answer, TTL, ECS scope.
    Explain(ExplainArgs),
    /// GeoIP database tools.
    #[command(subcommand)]
    Geoip(GeoipCommand),
    /// Ask a running server: status, or drain / undrain / force-up / force-down a region or endpoint.
    Admin(AdminArgs),
    /// DNSSEC keys: `keygen ZONE` writes one, `ds ZONE` prints the parent's DS records.
    #[command(subcommand)]
    Dnssec(DnssecCommand),
    /// BGP anycast helper run by ExaBGP: announce the service prefixes while the local node is healthy.
    Anycast(crate::anycast::AnycastArgs),
    /// Where every client goes, per service, now and after regions fail or are drained.
    Map(map::MapArgs),
}

/// `meridian admin ACTION [REGION] [--endpoint ADDR] [--for 30m]`.
#[derive(Args, Debug)]
pub struct AdminArgs {
    #[arg(value_enum)]
    pub action: AdminAction,
    /// Region name (all regions for `status` when omitted); for `load`, a region or an endpoint address.
    pub region: Option<String>,
    /// For `load`: the load figure to report.
    pub value: Option<f64>,
    /// Act on one answered address of the region instead of the whole region.
    #[arg(long, value_name = "ADDR")]
    pub endpoint: Option<std::net::IpAddr>,
    /// For `status`: print the JSON document (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Clear the override by itself after this long, e.g. 30m, 90s (drain, force-up, force-down).
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub for_: Option<Duration>,
    #[command(flatten)]
    pub admin: AdminAddrArg,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// Print regions and endpoints as a table (of one region when given; --json: the JSON).
    Status,
    /// Take out of service: no new answers.
    Drain,
    /// Clear the override (drain, force-up or force-down).
    Undrain,
    /// Treat as up whatever the probes say.
    ForceUp,
    /// Treat as down whatever the probes say.
    ForceDown,
    /// Report a load: `load REGION|ADDR VALUE` (ages out like a probed report).
    Load,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

/// The admin API address flag, shared by `serve` and `admin`.
#[derive(Args, Debug, Clone)]
pub struct AdminAddrArg {
    /// Admin HTTP API address, or `off` (default: `admin` in meridian.toml, else 127.0.0.1:8053).
    #[arg(long = "admin", value_name = "ADDR:PORT")]
    pub admin: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Name to explain (absolute, or relative to a served zone, e.g. `www.gslb.example.test`).
    pub name: String,
    /// Record type to ask for (A, AAAA, TXT, MX, ...).
    #[arg(long = "type", value_name = "TYPE", default_value = "A")]
    pub rtype: String,
    /// Client address or subnet, as EDNS Client Subnet would carry it.
    #[arg(long)]
    pub client: Option<String>,
    /// The resolver's address (used when no --client is given).
    #[arg(long, default_value = "127.0.0.1")]
    pub resolver: std::net::IpAddr,
    /// Take this region's load as reported (repeatable), e.g. `--load eu-west=70`: what `shed` and
    /// `least_loaded` would do at that load. Without it every load is unknown.
    #[arg(long = "load", value_name = "REGION=VALUE")]
    pub load: Vec<String>,
    /// Explain as if this region were down (may repeat).
    #[arg(long, value_name = "REGION")]
    pub fail: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

#[derive(Subcommand, Debug)]
pub enum DnssecCommand {
    /// Write a new signing key for ZONE (PKCS#8 PEM, mode 0600; never overwrites).
    Keygen {
        zone: String,
        #[arg(long, value_enum, default_value_t = AlgorithmArg::Ecdsap256)]
        algorithm: AlgorithmArg,
        /// Where to write it (default: ./ZONE.key, without the trailing dot).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the SHA-256 DS records of ZONE's keys, for the parent zone.
    Ds {
        zone: String,
        #[command(flatten)]
        config: Box<ConfigArgs>,
        #[command(flatten)]
        inputs: InputArgs,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgorithmArg {
    /// ECDSA P-256 with SHA-256 (algorithm 13).
    Ecdsap256,
    /// Ed25519 (algorithm 15).
    Ed25519,
}

#[derive(Subcommand, Debug)]
pub enum GeoipCommand {
    /// Build a GeoIP2-City-compatible .mmdb from the demo CSV format (see geoip/README.md).
    Build {
        /// The CSV to read: rows of network,continent,country,subdivision,latitude,longitude,name (as geoip/demo.csv).
        csv: PathBuf,
        /// The .mmdb file to write (replaced if it exists).
        out: PathBuf,
    },
    /// Look an address up and print what the database says.
    Lookup {
        /// The IPv4 or IPv6 address to look up.
        ip: std::net::IpAddr,
        /// Database to read (default: `geoip` in the server file, else geoip/demo.mmdb).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Server file whose `geoip` to read (default: ./meridian.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The server file (every subcommand that reads the configuration).
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Server file (default: ./meridian.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// What answers are made from (`serve`, `check`, `explain`).
#[derive(Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Directory of zone TOML files (default: zones/).
    #[arg(long)]
    pub zones: Option<PathBuf>,
    /// MaxMind-format GeoIP database (default: geoip/demo.mmdb).
    #[arg(long)]
    pub geoip: Option<PathBuf>,
}

/// Where state lives (`serve`, and `admin` for the token file).
#[derive(Args, Debug, Clone, Default)]
pub struct StateDirArg {
    /// Directory for state that survives restarts: overrides, admin token
    /// (default: $STATE_DIRECTORY, else ./state).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Where and how `serve` listens.
#[derive(Args, Debug, Clone, Default)]
pub struct ListenArgs {
    /// Address to serve on, UDP and TCP; may repeat (default: 127.0.0.1:5353 and [::1]:5353).
    #[arg(long)]
    pub listen: Vec<SocketAddr>,
    /// Address to serve DNS over TLS on (ALPN `dot`); may repeat.
    #[arg(long)]
    pub listen_tls: Vec<SocketAddr>,
    /// Address to serve DNS over QUIC on (ALPN `doq`); may repeat.
    #[arg(long)]
    pub listen_quic: Vec<SocketAddr>,
    /// PEM certificate chain for TLS and QUIC (re-read on SIGHUP).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS and QUIC (re-read on SIGHUP).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Seconds a TCP connection may sit idle between queries (default 10).
    #[arg(long)]
    pub tcp_idle_timeout: Option<u64>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub state: StateDirArg,
    #[command(flatten)]
    pub admin: AdminAddrArg,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The effective configuration: the server file (explicit or ./meridian.toml),
/// then whichever flags the subcommand has.
pub fn resolve(
    file: &ConfigArgs,
    inputs: Option<&InputArgs>,
    state: Option<&StateDirArg>,
    listen: Option<&ListenArgs>,
) -> anyhow::Result<ServerConfig> {
    let mut cfg = match &file.config {
        Some(path) => ServerConfig::load(path)?,
        None if Path::new("meridian.toml").is_file() => ServerConfig::load(Path::new("meridian.toml"))?,
        None => ServerConfig::default(),
    };
    if let Some(i) = inputs {
        if let Some(z) = &i.zones {
            cfg.zones = z.clone();
        }
        if let Some(g) = &i.geoip {
            cfg.geoip = Some(g.clone());
        }
    }
    if let Some(d) = state.and_then(|s| s.state_dir.as_ref()) {
        cfg.state_dir = d.clone();
    }
    if let Some(l) = listen {
        if !l.listen.is_empty() {
            cfg.listen = l.listen.clone();
        }
        if let Some(t) = l.tcp_idle_timeout {
            cfg.tcp_idle_timeout_secs = t;
        }
        if !l.listen_tls.is_empty() {
            cfg.listen_tls = l.listen_tls.clone();
        }
        if !l.listen_quic.is_empty() {
            cfg.listen_quic = l.listen_quic.clone();
        }
        if let Some(p) = &l.tls_cert {
            cfg.tls_cert = Some(p.clone());
        }
        if let Some(p) = &l.tls_key {
            cfg.tls_key = Some(p.clone());
        }
    }
    Ok(cfg)
}

pub fn main() -> ExitCode {
    // Held (blocked, kept pending) until `serve` can handle them; any other
    // command gets their default action back at once.
    crate::server::signals_hold(true);
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        crate::server::signals_hold(false);
    }
    match cli.command {
        Command::Anycast(args) => crate::anycast::main(args),
        Command::Map(args) => map::main(args),
        Command::Serve(args) => {
            init_logging(args.log_format);
            match serve(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("meridian: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Geoip(GeoipCommand::Build { csv, out }) => match crate::geo::build_demo(&csv, &out) {
            Ok(summary) => {
                println!("{}: {summary}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Geoip(GeoipCommand::Lookup { ip, db, config }) => {
            match lookup_db(db, config).and_then(|db| crate::geo::GeoDb::open(&db, None).map_err(anyhow::Error::from)) {
                Ok(db) => {
                    println!("{ip}: {}", db.lookup(ip));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Explain(args) => match explain(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Admin(args) => match admin(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("meridian admin: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Dnssec(cmd) => match dnssec(&cmd) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => match check(&args) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `--db`, else the server file's database (explicit or ./meridian.toml), else the demo.
fn lookup_db(db: Option<PathBuf>, config: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(db) = db {
        return Ok(db);
    }
    Ok(resolve(&ConfigArgs { config }, None, None, None)?.geoip_path().0)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = crate::health::probe::quiet_probe_logs(filter, &std::env::var("MERIDIAN_LOG").unwrap_or_default());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dnssec(cmd: &DnssecCommand) -> anyhow::Result<String> {
    match cmd {
        DnssecCommand::Keygen { zone, algorithm, out } => {
            let alg = match algorithm {
                AlgorithmArg::Ecdsap256 => crate::dnssec::KeyAlgorithm::EcdsaP256,
                AlgorithmArg::Ed25519 => crate::dnssec::KeyAlgorithm::Ed25519,
            };
            dnssec::keygen(zone, alg, out.as_deref())
        }
        DnssecCommand::Ds { zone, config, inputs } => dnssec::ds(zone, &resolve(config, Some(inputs), None, None)?),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<String> {
    let cfg = resolve(&args.config, Some(&args.inputs), None, None)?;
    let state = Snapshot::load(&cfg)?;
    let mut out = String::new();
    let mut expects = 0;
    for z in &state.zones.zones {
        out.push_str(&format!(
            "zone {} ({}): {} names, {} records, {} regions, {} services, {} expectations\n",
            z.origin,
            z.file.display(),
            z.nodes.values().filter(|n| !n.rrsets.is_empty()).count(),
            z.record_count(),
            z.regions.len(),
            z.services().count(),
            z.expects.len()
        ));
        expects += z.expects.len();
        if let Some(signer) = &z.signer {
            let keys: Vec<String> = signer
                .key_states()
                .map(|(k, state)| {
                    format!(
                        "{} (algorithm {}, tag {}, {} {})",
                        k.file.display(),
                        k.algorithm.number(),
                        k.tag,
                        k.role.name(),
                        state.name()
                    )
                })
                .collect();
            out.push_str(&format!("  signed online with {}\n", keys.join(", ")));
            if let Some(t) = signer.next_event() {
                out.push_str(&format!("  next key event: {} (the zone reloads then)\n", crate::dnssec::format_time(t)));
            }
            for k in signer.keys() {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&k.file).map_or(0, |m| m.permissions().mode());
                if mode & 0o077 != 0 {
                    out.push_str(&format!(
                        "warning: {}: a private key readable by group or others (mode {:o}): chmod 600\n",
                        k.file.display(),
                        mode & 0o777
                    ));
                }
            }
        }
        for w in &z.warnings {
            out.push_str(w);
            out.push('\n');
        }
    }
    out.push_str(&format!("identity: {}\n", state.identity));
    match &state.geo {
        Some(g) => out.push_str(&format!("geoip: {}\n", g.describe())),
        None => out.push_str("geoip: none (client locations unknown)\n"),
    }
    if state.zones.zones.is_empty() {
        anyhow::bail!(
            "{}: no zone files (*.toml) there: `serve` would answer REFUSED to every query",
            cfg.zones.display()
        );
    }
    let failures = crate::explain::check_expectations(&state);
    if !failures.is_empty() {
        // Without a database every client is "unknown": say so, not just what failed.
        let hint = match &state.geo {
            None => format!(
                "\n(no GeoIP database was loaded: {} does not exist and `geoip` is not set, so every client's \
                 location is unknown; set `geoip` in meridian.toml or pass --geoip)",
                cfg.geoip_path().0.display()
            ),
            Some(_) => String::new(),
        };
        anyhow::bail!("{}\n{} of {expects} expectation(s) failed{hint}", failures.join("\n"), failures.len());
    }
    out.push_str(&format!("ok: {} zone(s), {expects} expectation(s) hold\n", state.zones.zones.len()));
    Ok(out)
}

fn explain(args: &ExplainArgs) -> anyhow::Result<String> {
    let cfg = resolve(&args.config, Some(&args.inputs), None, None)?;
    let mut state = Snapshot::load(&cfg)?;
    if !args.load.is_empty() {
        let mut health = (*state.health).clone();
        for given in &args.load {
            let parsed = given.split_once('=').and_then(|(r, v)| Some((r.trim(), v.trim().parse::<f64>().ok()?)));
            let Some((region, value)) = parsed.filter(|(_, v)| v.is_finite() && *v >= 0.0) else {
                anyhow::bail!("--load {given:?} is not REGION=VALUE with a load of 0 or more (e.g. eu-west=70)");
            };
            if !state.zones.zones.iter().flat_map(|z| &z.regions).any(|r| r.name == region) {
                anyhow::bail!("--load names {region:?}, which no zone defines");
            }
            health.set_load(region, None, value, std::time::Instant::now());
        }
        state.health = std::sync::Arc::new(health);
    }
    if !args.fail.is_empty() {
        let mut health = (*state.health).clone();
        for r in &args.fail {
            if !state.zones.zones.iter().any(|z| z.regions.iter().any(|x| &x.name == r)) {
                anyhow::bail!("--fail {r}: no such region in any zone");
            }
            health.set_down(r);
        }
        state = state.with_health(Arc::new(health));
    }
    let rtype: hickory_proto::rr::RecordType =
        args.rtype.to_ascii_uppercase().parse().map_err(|_| anyhow::anyhow!("unknown type {:?}", args.rtype))?;
    let mut name = hickory_proto::rr::Name::from_ascii(&args.name)?;
    name.set_fqdn(true);
    // A relative name (`www`) is tried under each served zone, first match wins.
    if !args.name.ends_with('.') && state.zones.find(&name).is_none() {
        let relative = hickory_proto::rr::Name::from_ascii(&args.name)?;
        if let Some(full) = state
            .zones
            .zones
            .iter()
            .filter_map(|z| relative.clone().append_domain(&z.origin).ok())
            .find(|n| state.zones.find(n).is_some())
        {
            name = full;
        }
    }
    let client = match &args.client {
        None => None,
        Some(c) => Some(match c.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            Err(_) => {
                ipnet::IpNet::from(c.parse::<std::net::IpAddr>().map_err(|_| anyhow::anyhow!("bad --client {c:?}"))?)
            }
        }),
    };
    Ok(crate::explain::explain(&state, &name, rtype, client, args.resolver).to_string())
}

fn admin(args: &AdminArgs) -> anyhow::Result<String> {
    let cfg = resolve(&args.config, None, Some(&args.state), None)?;
    let settings = crate::admin::AdminSettings::resolve(&cfg, args.admin.admin.as_deref())?;
    let Some(addr) = settings.addr else {
        anyhow::bail!("the admin API is disabled (admin = \"off\"); pass --admin ADDR:PORT of a running server");
    };
    let action = match args.action {
        AdminAction::Status => crate::admin::client::AdminCommand::Status,
        AdminAction::Drain => crate::admin::client::AdminCommand::Drain,
        AdminAction::Undrain => crate::admin::client::AdminCommand::Undrain,
        AdminAction::ForceUp => crate::admin::client::AdminCommand::ForceUp,
        AdminAction::ForceDown => crate::admin::client::AdminCommand::ForceDown,
        AdminAction::Load => crate::admin::client::AdminCommand::Load,
    };
    let req = crate::admin::client::Request {
        command: action,
        region: args.region.clone(),
        endpoint: args.endpoint,
        for_: args.for_,
        value: args.value,
        json: args.json,
    };
    crate::admin::client::run(addr, &settings.token_file, &req)
}

/// Bind the admin API and read (or create) its token. A failure is an error
/// when the address was configured, a warning (no admin API) for the default.
async fn start_admin(
    settings: &crate::admin::AdminSettings,
    monitor: &Arc<crate::health::Monitor>,
    shared: &Arc<crate::server::Published>,
    metrics: &Arc<crate::metrics::Metrics>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
) -> anyhow::Result<()> {
    let Some(addr) = settings.addr else {
        tracing::info!("admin API disabled");
        return Ok(());
    };
    let started = async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind the admin API on {addr}: {}", bind_error(&e)))?;
        let (token, created) = crate::admin::token::load_or_create(&settings.token_file, !settings.token_configured)?;
        if created {
            tracing::info!(file = %settings.token_file.display(), "generated the admin token");
        }
        Ok::<_, anyhow::Error>((listener, token))
    }
    .await;
    let (listener, token) = match started {
        Ok(x) => x,
        Err(e) if !settings.explicit => {
            tracing::warn!(error = %e, "admin API not started (set --admin or `admin` in meridian.toml to choose another address)");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let ctx = Arc::new(crate::admin::AdminCtx {
        monitor: Arc::clone(monitor),
        shared: Arc::clone(shared),
        metrics: Arc::clone(metrics),
        token,
        cluster,
        maps: Default::default(),
    });
    tracing::info!(%addr, token_file = %settings.token_file.display(), "admin API listening");
    tokio::spawn(async move {
        if let Err(e) = crate::admin::serve(listener, ctx).await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    Ok(())
}

/// A bind error in words. Not the OS text: "Address already in use" would
/// read as "ready" to anything watching the log for start-up.
fn bind_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "the address is in use by another process".into(),
        std::io::ErrorKind::AddrNotAvailable => "no such address on this host".into(),
        std::io::ErrorKind::PermissionDenied => crate::server::PERMISSION_HINT.into(),
        kind => format!("{kind:?}"),
    }
}

/// The TLS certificate and key when an encrypted transport is configured:
/// without them, or with a bad one, the start is refused (naming the file).
fn load_certs(cfg: &ServerConfig) -> anyhow::Result<Option<Arc<crate::server::Certs>>> {
    if cfg.listen_tls.is_empty() && cfg.listen_quic.is_empty() {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        anyhow::bail!("listen_tls and listen_quic need both tls_cert and tls_key");
    };
    Ok(Some(crate::server::Certs::load(cert, key)?))
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    // Signal handlers before anything slow: loading a big zone takes seconds,
    // and a SIGHUP's default action would kill the server meanwhile.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut signals = {
        let _in_runtime = rt.enter();
        crate::server::Signals::install()?
    };
    crate::server::signals_hold(false); // delivered to the handlers from here on
    let cfg = resolve(&args.config, Some(&args.inputs), Some(&args.state), Some(&args.listen))?;
    let admin = crate::admin::AdminSettings::resolve(&cfg, args.admin.admin.as_deref())?;
    admin.check_bind_allowed()?;
    let certs = load_certs(&cfg)?;
    let load_cfg = cfg.clone();
    // Built on the loader thread, which also drops it after a reload (server::trim).
    let loading = rt.spawn_blocking(move || {
        crate::server::on_loader_thread(move || {
            let loaded = Snapshot::load(&load_cfg);
            crate::server::release_free_memory(); // the load's temporaries
            loaded
        })
    });
    let Some(initial) = rt.block_on(signals.unless_stopped(loading)) else {
        tracing::info!("stopped during start-up");
        rt.shutdown_background(); // the load may still run: do not wait for it
        return Ok(());
    };
    let initial = initial??;
    for z in &initial.zones.zones {
        tracing::info!(zone = %z.origin, file = %z.file.display(), records = z.record_count(), "zone loaded");
    }
    tracing::info!("identity: {}", initial.identity);
    tracing::info!("server cookies: {}", initial.cookies);
    match &initial.geo {
        Some(g) => tracing::info!("GeoIP database: {}", g.describe()),
        None => tracing::warn!("no GeoIP database: client locations are unknown, geo rules fall to their defaults"),
    }
    if initial.zones.zones.is_empty() {
        tracing::warn!(dir = %cfg.zones.display(), "no zone files loaded: every query will be answered REFUSED");
    }
    let shared = crate::server::Published::new(initial);
    let metrics = crate::metrics::Metrics::new();
    let metrics = Arc::new(if cfg.cluster.is_some() { metrics.with_cluster() } else { metrics });
    metrics.loaded(true);
    metrics.set_probe_owners(crate::server::probe_owners(&shared.load().zones));
    let opts = crate::server::ServeOptions {
        listen: cfg.listen_addrs(),
        listen_is_default: cfg.listen.is_empty(),
        tcp_idle_timeout: Duration::from_secs(cfg.tcp_idle_timeout_secs),
        watch_interval: (cfg.watch_interval_ms > 0).then(|| Duration::from_millis(cfg.watch_interval_ms)),
        metrics: Some(Arc::clone(&metrics)),
        rrl: cfg.rrl.enabled.then(|| Arc::new(crate::rrl::Limiter::new(cfg.rrl.clone()))),
        tcp_limits: crate::server::TcpLimits {
            max_connections: cfg.tcp.max_connections,
            max_per_client: cfg.tcp.max_connections_per_client,
            read_timeout: Duration::from_secs(cfg.tcp.read_timeout_secs),
        },
        listen_tls: cfg.listen_tls.clone(),
        listen_quic: cfg.listen_quic.clone(),
        certs,
    };
    rt.block_on(async move {
        let observer: Arc<dyn crate::health::HealthObserver> = metrics.clone();
        let serving = Arc::clone(&shared.load().health);
        let monitor = crate::health::Monitor::new(cfg.health_settings(), observer, serving, shared.health_sink());
        monitor.sync(crate::server::health_targets(&shared.load().zones));
        // Before answering: wait (bounded) for the first shared overrides.
        let cluster = match cfg.cluster.clone() {
            Some(c) => Some(crate::cluster::Cluster::start(c, Arc::clone(&monitor)).await?),
            None => None,
        };
        start_admin(&admin, &monitor, &shared, &metrics, cluster).await?;
        tokio::spawn(Arc::clone(&monitor).ticker(Duration::from_secs(1)));
        let reloader = Arc::new(crate::server::Reloader {
            cfg: cfg.clone(),
            state: Arc::clone(&shared),
            monitor: Some(Arc::clone(&monitor)),
            metrics: Some(Arc::clone(&metrics)),
            queue: Default::default(),
        });
        Ok(crate::server::serve(shared, opts, reloader, signals).await?)
    })
}
