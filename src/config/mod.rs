//! Configuration: the server file (`meridian.toml`), the zone TOML files and
//! their validation. Every error names FILE:LINE:COL.

mod error;
mod server_file;
pub mod zone_file;

pub use error::{ConfigError, Source};
pub use server_file::{ServerConfig, DEFAULT_GEOIP, DEFAULT_LISTEN};

use std::path::{Path, PathBuf};

/// A zone file parsed into its schema, with its source kept for error spans.
pub struct ParsedZoneFile {
    pub source: Source,
    pub zone: zone_file::ZoneFile,
}

/// Parse one zone TOML file (syntax and schema only; semantics come in `zone::build`).
pub fn parse_zone_file(path: &Path) -> Result<ParsedZoneFile, ConfigError> {
    parse_zone_source(Source::read(path)?)
}

/// Parse zone TOML already in memory (`path` is used in error messages and
/// to resolve `include`).
pub fn parse_zone_source(source: Source) -> Result<ParsedZoneFile, ConfigError> {
    match toml::from_str::<zone_file::ZoneFile>(&source.text) {
        Ok(zone) => Ok(ParsedZoneFile { source, zone }),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            Err(source.error(span, msg))
        }
    }
}

/// The `*.toml` files of a zones directory, sorted so load order is stable.
pub fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError {
        file: dir.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read zones directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
