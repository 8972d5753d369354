//! Configuration: the server file (`meridian.toml`), the zone TOML files and
//! their validation. Every error names FILE:LINE:COL.

pub mod cluster_file;
mod countries;
mod error;
pub mod files;
mod server_file;
mod validate;
pub mod zone_file;

pub use error::{ConfigError, Source};
pub use files::zone_inputs;
pub use server_file::{ServerConfig, VersionBind, DEFAULT_GEOIP, DEFAULT_LISTEN};

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
        Ok(zone) => {
            validate::zone_file(&source, &zone)?;
            Ok(ParsedZoneFile { source, zone })
        }
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            Err(source.error(span, msg))
        }
    }
}

/// The zone files of a zones directory, read, in sorted order so load order is
/// stable. An entry named like a zone file that cannot be read (a directory,
/// a dangling symlink, a FIFO, unreadable) is an error, so a reload keeps the
/// old zone; only an entry that is gone removes its zone.
pub fn zone_sources(dir: &Path) -> Result<Vec<Source>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError {
        file: dir.to_path_buf(),
        line: 0,
        col: 0,
        message: format!("cannot read zones directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| files::is_zone_file_name(p)).collect();
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        match Source::read(&file) {
            Ok(s) => sources.push(s),
            // Deleted between listing and reading: as gone as if never listed.
            Err(_) if std::fs::symlink_metadata(&file).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sources)
}
