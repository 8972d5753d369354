//! Client location from MaxMind-format (`.mmdb`) databases.
//!
//! [`GeoDb`] wraps a City or Country database (GeoIP2, GeoLite2, DB-IP lite)
//! and optionally a GeoLite2-ASN database. Everything that can go wrong with a
//! database file is found at [`GeoDb::open`]; [`GeoDb::lookup`] on the query
//! path never fails. [`build_demo`] writes the project's demo database from a
//! CSV file. See `docs/geoip.md`.

mod demo_builder;
mod location;
mod reader;
mod tree;

use std::path::PathBuf;

pub use demo_builder::{build_demo, BuildSummary, DEMO_DATABASE_TYPE};
pub use location::Location;
pub use reader::GeoDb;

/// Why a database could not be opened or built. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a database we can serve from.
    #[error("{}: unusable MaxMind database: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    /// A line of the demo CSV is wrong; `reason` names the field.
    #[error("{}:{line}: {reason}", path.display())]
    Csv { path: PathBuf, line: usize, reason: String },
    /// Writing the demo database failed.
    #[error("{}: cannot write database: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}
