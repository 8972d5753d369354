//! The admin bearer token: a file of 64 hex characters (32 random bytes),
//! mode 0600, created atomically on first start unless configured.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::Rng;

use super::AdminError;

/// Read the token in `path`; when the file does not exist and `create` is
/// set, generate one. Returns the token and whether it was generated now.
/// Concurrent starts agree: the file is linked into place only if absent.
pub fn load_or_create(path: &Path, create: bool) -> Result<(String, bool), AdminError> {
    match read(path) {
        Ok(t) => return Ok((t, false)),
        Err(e) if !create || e.kind() != std::io::ErrorKind::NotFound => {
            let hint = if create { "" } else { " (admin_token_file is configured, so it is not generated)" };
            return Err(AdminError::ReadToken { path: path.to_path_buf(), source: e, hint });
        }
        Err(_) => {}
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|source| AdminError::TokenDir { dir: dir.to_path_buf(), source })?;
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("admin.token"),
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    };
    let linked = write().and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((token, true)),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let t =
                read(path).map_err(|source| AdminError::ReadToken { path: path.to_path_buf(), source, hint: "" })?;
            Ok((t, false))
        }
        Err(source) => Err(AdminError::CreateToken { path: path.to_path_buf(), source }),
    }
}

/// The token in `path` (surrounding whitespace removed); an empty file is an error.
pub fn read(path: &Path) -> std::io::Result<String> {
    // Only a regular file, bounded: /dev/zero or a FIFO named here must fail the start, not fill memory or hang.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
        }
    }
    let text = std::fs::read_to_string(path)?;
    let t = text.trim();
    if t.is_empty() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the admin token file is readable by group or others; chmod 600 it");
        }
    }
    Ok(t.to_string())
}

/// Compare without an early exit on the first differing byte.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("meridian-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/admin.token");
        assert!(load_or_create(&path, false).is_err(), "configured files are never generated");
        let (t1, created) = load_or_create(&path, true).unwrap();
        assert!(created);
        assert_eq!(t1.len(), 64);
        assert!(t1.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (t2, created) = load_or_create(&path, true).unwrap();
        assert!(!created);
        assert_eq!(t1, t2);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn constant_time_equal() {
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"ab"));
    }
}
