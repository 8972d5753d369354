//! Command-line interface: `serve`, `check` (and the subcommands later issues add).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ServerConfig;
use crate::state::{self, State};

#[derive(Parser, Debug)]
#[command(name = "meridian", version, about = "GSLB authoritative DNS server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve DNS on UDP and TCP.
    Serve(ServeArgs),
    /// Load everything `serve` would, print a summary, exit non-zero on any error.
    Check(ConfigArgs),
    /// Show how the answer for a name is made: client location, every chain step, answer, TTL, ECS scope.
    Explain(ExplainArgs),
    /// GeoIP database tools.
    #[command(subcommand)]
    Geoip(GeoipCommand),
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Name to explain (absolute, or relative to a served zone, e.g. `www.gslb.example.test`).
    pub name: String,
    #[arg(long = "type", default_value = "A")]
    pub rtype: String,
    /// Client address or subnet, as EDNS Client Subnet would carry it.
    #[arg(long)]
    pub client: Option<String>,
    /// The resolver's address (used when no --client is given).
    #[arg(long, default_value = "127.0.0.1")]
    pub resolver: std::net::IpAddr,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
pub enum GeoipCommand {
    /// Build a GeoIP2-City-compatible .mmdb from the demo CSV format (see geoip/README.md).
    Build { csv: PathBuf, out: PathBuf },
    /// Look an address up and print what the database says.
    Lookup {
        ip: std::net::IpAddr,
        #[arg(long, default_value = "geoip/demo.mmdb")]
        db: PathBuf,
    },
}

/// Where the configuration comes from (shared by every subcommand).
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Server file (default: ./meridian.toml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory of zone TOML files (default: zones/).
    #[arg(long)]
    pub zones: Option<PathBuf>,
    /// MaxMind-format GeoIP database (default: geoip/demo.mmdb).
    #[arg(long)]
    pub geoip: Option<PathBuf>,
    /// Address to serve on, UDP and TCP; may repeat (default: 127.0.0.1:5353 and [::1]:5353).
    #[arg(long)]
    pub listen: Vec<SocketAddr>,
    /// Seconds a TCP connection may sit idle between queries (default 10).
    #[arg(long)]
    pub tcp_idle_timeout: Option<u64>,
    /// Directory for state that survives restarts: overrides, admin token (default ./state).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl ConfigArgs {
    /// The effective configuration: file (explicit or ./meridian.toml), then flags.
    pub fn resolve(&self) -> anyhow::Result<ServerConfig> {
        let mut cfg = match &self.config {
            Some(path) => ServerConfig::load(path)?,
            None if Path::new("meridian.toml").is_file() => ServerConfig::load(Path::new("meridian.toml"))?,
            None => ServerConfig::default(),
        };
        if let Some(z) = &self.zones {
            cfg.zones = z.clone();
        }
        if let Some(g) = &self.geoip {
            cfg.geoip = Some(g.clone());
        }
        if !self.listen.is_empty() {
            cfg.listen = self.listen.clone();
        }
        if let Some(t) = self.tcp_idle_timeout {
            cfg.tcp_idle_timeout_secs = t;
        }
        if let Some(d) = &self.state_dir {
            cfg.state_dir = d.clone();
        }
        Ok(cfg)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
        Command::Geoip(GeoipCommand::Lookup { ip, db }) => match crate::geo::GeoDb::open(&db, None) {
            Ok(db) => {
                println!("{:?}", db.lookup(ip));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
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

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MERIDIAN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn check(args: &ConfigArgs) -> anyhow::Result<String> {
    let cfg = args.resolve()?;
    let state = State::load(&cfg)?;
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
    }
    match &state.geo {
        Some(g) => out.push_str(&format!("geoip: {}\n", g.describe())),
        None => out.push_str("geoip: none (client locations unknown)\n"),
    }
    let failures = crate::explain::check_expectations(&state);
    if !failures.is_empty() {
        anyhow::bail!("{}\n{} of {expects} expectation(s) failed", failures.join("\n"), failures.len());
    }
    out.push_str(&format!("ok: {} zone(s), {expects} expectation(s) hold\n", state.zones.zones.len()));
    Ok(out)
}

fn explain(args: &ExplainArgs) -> anyhow::Result<String> {
    let cfg = args.config.resolve()?;
    let state = State::load(&cfg)?;
    let rtype: hickory_proto::rr::RecordType =
        args.rtype.to_ascii_uppercase().parse().map_err(|_| anyhow::anyhow!("unknown type {:?}", args.rtype))?;
    let mut name = hickory_proto::rr::Name::from_ascii(&args.name)?;
    name.set_fqdn(true);
    let client = match &args.client {
        None => None,
        Some(c) => Some(match c.parse::<ipnet::IpNet>() {
            Ok(n) => n,
            Err(_) => ipnet::IpNet::from(c.parse::<std::net::IpAddr>().map_err(|_| anyhow::anyhow!("bad --client {c:?}"))?),
        }),
    };
    Ok(crate::explain::explain(&state, &name, rtype, client, args.resolver).to_string())
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = args.config.resolve()?;
    let initial = State::load(&cfg)?;
    for z in &initial.zones.zones {
        tracing::info!(zone = %z.origin, file = %z.file.display(), records = z.record_count(), "zone loaded");
    }
    let shared = state::shared(initial);
    let opts = crate::server::ServeOptions {
        listen: cfg.listen_addrs(),
        tcp_idle_timeout: Duration::from_secs(cfg.tcp_idle_timeout_secs),
        watch_interval: (cfg.watch_interval_ms > 0).then(|| Duration::from_millis(cfg.watch_interval_ms)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let monitor = crate::health::Monitor::new(Arc::clone(&shared), cfg.health_settings(), Arc::new(crate::health::NoObserver));
        monitor.sync();
        tokio::spawn(Arc::clone(&monitor).ticker(Duration::from_secs(1)));
        let reloader = Arc::new(crate::server::Reloader {
            cfg: cfg.clone(),
            state: Arc::clone(&shared),
            monitor: Some(Arc::clone(&monitor)),
        });
        crate::server::serve(shared, opts, reloader).await
    })
}
