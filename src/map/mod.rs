//! `meridian map`: where every client of a population is sent, per service,
//! now and after regions fail or are drained — by the same chain that
//! answers queries (`answer::decide_service`), never a copy of it.
//! `population` says who the clients are, `run` decides for each of them,
//! `report` prints, the CLI is `cli::map`.

mod population;
mod report;
mod run;

use std::path::PathBuf;

pub use population::{Population, Weighted};
pub use report::{json, text, ReportOptions};
pub use run::{diff, run, Each, FamilyMap, Map, MapRequest, Outcome, ServiceMap, Tally};

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: {message}", file.display())]
    Csv { file: PathBuf, line: usize, col: usize, message: String },
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
    #[error("no GeoIP database to take the clients from: give --geoip FILE or --clients FILE")]
    NoPopulation,
    #[error("no region {0:?} in any zone")]
    UnknownRegion(String),
    #[error("no service {0:?} in any zone")]
    UnknownService(String),
    #[error("the map computation failed unexpectedly (see the log)")]
    Panicked,
}
