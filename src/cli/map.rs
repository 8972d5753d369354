//! The `meridian map` command line.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{ConfigArgs, InputArgs};
use crate::answer::Snapshot;
use crate::map::{self as map_mod, MapRequest, Population, ReportOptions};

/// `meridian map [--fail REGION]... [--drain REGION]... [--clients FILE] ...`
#[derive(Args, Debug)]
pub struct MapArgs {
    /// Take this region down (may repeat).
    #[arg(long, value_name = "REGION")]
    pub fail: Vec<String>,
    /// Drain this region (may repeat); answers treat a drain as a failure.
    #[arg(long, value_name = "REGION")]
    pub drain: Vec<String>,
    /// Weighted clients, one `subnet,weight` a line (default: every network
    /// of the GeoIP database, weighted by its address count).
    #[arg(long, value_name = "FILE")]
    pub clients: Option<PathBuf>,
    /// Only this service (`www` or `www.gslb.example.test`).
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// The query type the clients send.
    #[arg(long = "type", default_value = "A")]
    pub rtype: String,
    /// Scale each service's clients of one family to N queries per second and
    /// show each region's load against its `capacity`.
    #[arg(long, value_name = "N")]
    pub qps: Option<f64>,
    /// Also the country → region table.
    #[arg(long)]
    pub countries: bool,
    /// One line per client and service.
    #[arg(long)]
    pub each: bool,
    /// Which clients move from the zones in OLD_DIR to those in NEW_DIR
    /// (same GeoIP database, every region up).
    #[arg(long, num_args = 2, value_names = ["OLD_DIR", "NEW_DIR"], conflicts_with_all = ["fail", "drain"])]
    pub diff: Option<Vec<PathBuf>>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub inputs: InputArgs,
}

pub fn main(args: MapArgs) -> ExitCode {
    match map(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meridian map: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn map(args: &MapArgs) -> anyhow::Result<String> {
    let rtype = match args.rtype.to_ascii_uppercase().as_str() {
        "A" => hickory_proto::rr::RecordType::A,
        "AAAA" => hickory_proto::rr::RecordType::AAAA,
        other => anyhow::bail!("--type {other}: a map is drawn for A or AAAA"),
    };
    if let Some(q) = args.qps {
        anyhow::ensure!(q.is_finite() && q >= 0.0, "--qps {q}: expected a number of 0 or more");
    }
    let cfg = super::resolve(&args.config, Some(&args.inputs), None, None)?;
    let state = Snapshot::load(&cfg)?;
    let pop = match (&args.clients, &state.geo) {
        (Some(path), _) => Population::from_csv(path)?,
        (None, Some(db)) => Population::from_geo(db)?,
        (None, None) => return Err(map_mod::MapError::NoPopulation.into()),
    };
    let req = MapRequest {
        fail: args.fail.clone(),
        drain: args.drain.clone(),
        service: args.service.clone(),
        rtype: Some(rtype),
        each: args.each,
    };
    let map = match &args.diff {
        Some(dirs) => {
            let load =
                |dir: &PathBuf| crate::zone::load_zones(dir).map(|z| state.with_zones(Arc::new(z), state.geo.clone()));
            let (old, new) = (load(&dirs[0])?, load(&dirs[1])?);
            let change = format!("configuration {} -> {}", dirs[0].display(), dirs[1].display());
            map_mod::diff(&old, &new, &pop, &req, change)?
        }
        None => map_mod::run(&state, &pop, &req)?,
    };
    let opts = ReportOptions { qps: args.qps, countries: args.countries };
    Ok(if args.json { format!("{:#}\n", map_mod::json(&map, opts)) } else { map_mod::text(&map, opts) })
}
