//! Reading configuration inputs safely, and knowing which files a zone is
//! made of.
//!
//! Only regular files are read, and never more than [`MAX_FILE_BYTES`]: a FIFO
//! named as an include would hang a load forever and a device such as
//! `/dev/zero` would fill memory. The file type is checked on the opened file
//! (opened non-blocking), so a path swapped for a FIFO after a check cannot
//! block the open either.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The largest zone, include or CA file read (a 45 MB zone is the largest seen).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Most `$INCLUDE` files one zone may reach, counted with repeats.
pub const MAX_INCLUDES: usize = 10_000;

/// Deepest `$INCLUDE` nesting. Paths are compared as written, so a file that
/// includes itself as `sub/../a.zone` is only caught by depth; the expansion
/// (`zone::master_lines`) recurses on a reload's blocking thread, whose stack is small.
pub const MAX_DEPTH: usize = 64;

/// The bytes of a regular file, or why it cannot be one. The message does not
/// repeat the path (callers put it in [`ConfigError::file`]).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| open_error(path, &e))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if let Some(what) = not_regular(&meta.file_type()) {
        return Err(format!("is {what}, not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow while it is read: bound the read, not only the stat.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_bytes`] as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read_bytes(path)?)
        .map_err(|e| format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

fn too_big(len: u64) -> String {
    format!("is {len} bytes or more; the limit is {} MiB", MAX_FILE_BYTES >> 20)
}

fn open_error(path: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        if let Ok(target) = std::fs::read_link(path) {
            return format!("is a symbolic link to {}, which does not exist", target.display());
        }
        return "does not exist".into();
    }
    format!("cannot read: {e}")
}

fn not_regular(t: &std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Whether a directory entry is a zone file: `*.toml`, not hidden (editors
/// keep lock files such as Emacs's `.#zone.toml`, a dangling symlink, there).
pub fn is_zone_file_name(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    path.extension().is_some_and(|x| x == "toml") && !hidden
}

/// The `$INCLUDE` targets of master-file text, for the change watcher,
/// resolved as `zone::master_lines` reads them: relative to the including
/// file's directory. Only the first word after `$INCLUDE` (any case) at the
/// start of a line counts, its quotes taken off (a quoted name with a space
/// in it or escapes is not watched).
pub fn master_includes(file: &Path, text: &str) -> Vec<PathBuf> {
    let base = file.parent().unwrap_or(Path::new("."));
    text.lines()
        .filter(|line| line.get(..8).is_some_and(|d| d.eq_ignore_ascii_case("$INCLUDE")))
        .map(|line| &line[8..])
        .filter(|rest| rest.starts_with([' ', '\t']))
        .filter_map(|rest| rest.split(';').next().and_then(|r| r.split_whitespace().next()))
        .map(|target| base.join(target.trim_matches('"')))
        .collect()
}

/// The files a zone TOML names in `include`, resolved against its directory.
fn toml_includes(file: &Path, text: &str) -> Vec<PathBuf> {
    #[derive(serde::Deserialize)]
    struct IncludeOnly {
        include: Option<toml::Value>,
    }
    let base = file.parent().unwrap_or(Path::new("."));
    // `include` is a top-level key, so it comes before the first table header:
    // parse only that head (a big zone is mostly tables). A head cut inside a
    // multi-line value does not parse; then the whole text is parsed.
    let head_end = text.find("\n[").map_or(text.len(), |i| i + 1);
    let parsed = toml::from_str::<IncludeOnly>(&text[..head_end]).or_else(|_| toml::from_str::<IncludeOnly>(text));
    let mut out: Vec<PathBuf> = match parsed {
        Ok(IncludeOnly { include: Some(toml::Value::String(s)) }) => vec![base.join(s)],
        Ok(IncludeOnly { include: Some(toml::Value::Array(a)) }) => {
            a.iter().filter_map(|x| x.as_str()).map(|n| base.join(n)).collect()
        }
        _ => Vec::new(),
    };
    out.extend(dnssec_keys(text).into_iter().map(|k| base.join(k)));
    out
}

/// The key files a zone's `[dnssec]` table names: a replaced key reloads the zone.
fn dnssec_keys(text: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct File {
        file: String,
    }
    #[derive(serde::Deserialize)]
    struct Keys {
        #[serde(default)]
        keys: Vec<String>,
        #[serde(default)]
        key: Vec<File>,
    }
    #[derive(serde::Deserialize)]
    struct DnssecOnly {
        dnssec: Option<Keys>,
    }
    if !text.contains("dnssec") {
        return Vec::new(); // the common case: no second parse
    }
    let Some(d) = toml::from_str::<DnssecOnly>(text).ok().and_then(|d| d.dnssec) else { return Vec::new() };
    d.keys.into_iter().chain(d.key.into_iter().map(|k| k.file)).collect()
}

type Stamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// Each input's direct references, kept while its modification time and size
/// stay the same: the watcher asks every interval, and a big zone should not
/// be parsed again when nothing changed.
static REFS: Mutex<Option<RefCache>> = Mutex::new(None);

type RefCache = HashMap<PathBuf, (Stamp, Vec<PathBuf>)>;

/// Every file the zones in `dir` include, directly (`include`) or through
/// `$INCLUDE`, for the change watcher. Unreadable files are skipped here:
/// the reload they trigger reports them.
pub fn zone_inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let zones: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_zone_file_name(p)).collect();
    let mut guard = REFS.lock().unwrap_or_else(|p| p.into_inner());
    let old = guard.take().unwrap_or_default();
    let mut new = HashMap::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    // (file, is a zone TOML, include depth)
    let mut todo: Vec<(PathBuf, bool, usize)> = zones.into_iter().map(|z| (z, true, 0)).collect();
    let mut out = Vec::new();
    while let Some((file, is_toml, depth)) = todo.pop() {
        if depth > MAX_DEPTH || !seen.insert(file.clone()) || seen.len() > MAX_INCLUDES {
            continue;
        }
        if !is_toml {
            out.push(file.clone());
        }
        let Some(st) = stamp(&file) else { continue };
        let refs = match old.get(&file) {
            Some((s, refs)) if *s == st => refs.clone(),
            _ => match read_text(&file) {
                Ok(text) if is_toml => toml_includes(&file, &text),
                Ok(text) => master_includes(&file, &text),
                Err(_) => Vec::new(),
            },
        };
        todo.extend(refs.iter().map(|r| (r.clone(), false, depth + 1)));
        new.insert(file, (st, refs));
    }
    *guard = Some(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("meridian-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn only_regular_files_are_read() {
        let d = tmp("kinds");
        std::fs::write(d.join("ok"), "text").unwrap();
        assert_eq!(read_text(&d.join("ok")).unwrap(), "text");
        assert_eq!(read_text(&d.join("nothing")).unwrap_err(), "does not exist");
        assert_eq!(read_text(&d).unwrap_err(), "is a directory, not a regular file");
        std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
        assert!(read_text(&d.join("dangling")).unwrap_err().contains("symbolic link to"), "names the target");
        mkfifo(&d.join("fifo"));
        // Would block forever without O_NONBLOCK and the type check.
        assert_eq!(read_text(&d.join("fifo")).unwrap_err(), "is a FIFO (named pipe), not a regular file");
        assert_eq!(read_text(Path::new("/dev/zero")).unwrap_err(), "is a device, not a regular file");
        std::fs::write(d.join("bin"), [b'a', 0xff]).unwrap();
        assert!(read_text(&d.join("bin")).unwrap_err().contains("not UTF-8"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn zone_inputs_lists_included_and_dollar_included_files() {
        let d = tmp("inputs");
        std::fs::write(d.join("z.toml"), "origin = \"z.\"\ninclude = [\n\"a.zone\"]\n[soa]\nx = 1\n").unwrap();
        std::fs::write(d.join("a.zone"), "$include \"../inputs-outside.zone\" o.z.\n").unwrap();
        let mut got = zone_inputs(&d);
        got.sort();
        assert_eq!(got, vec![d.join("../inputs-outside.zone"), d.join("a.zone")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn zone_inputs_lists_dnssec_key_files() {
        let d = tmp("keys");
        std::fs::write(d.join("z.toml"), "origin = \"z.\"\n[soa]\nx = 1\n[dnssec]\nkeys = [\"k1.key\", \"k2.key\"]\n[[dnssec.key]]\nfile = \"z3.key\"\nrole = \"zsk\"\n")
            .unwrap();
        let mut got = zone_inputs(&d);
        got.sort();
        assert_eq!(got, vec![d.join("k1.key"), d.join("k2.key"), d.join("z3.key")]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
