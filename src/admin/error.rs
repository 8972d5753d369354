//! What can go wrong setting up the admin API, said so an operator can act.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::DEFAULT_ADMIN;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin address {0:?} is not ADDR:PORT (e.g. {DEFAULT_ADMIN}, [::1]:8053) or \"off\"")]
    Address(String),
    #[error(
        "refusing to serve the admin API on {0}: not a loopback address. Set `admin_allow_remote = true` \
         in meridian.toml to allow it (the API is plain HTTP; mutations need the bearer token), \
         or use a loopback address such as {DEFAULT_ADMIN}"
    )]
    Remote(SocketAddr),
    #[error("cannot read the admin token file {}: {source}{hint}", path.display())]
    ReadToken { path: PathBuf, source: std::io::Error, hint: &'static str },
    #[error("cannot create {}: {source}", dir.display())]
    TokenDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot create the admin token file {}: {source}", path.display())]
    CreateToken { path: PathBuf, source: std::io::Error },
}
