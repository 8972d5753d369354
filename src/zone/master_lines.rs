//! Master-file text rewritten into what hickory's zone parser reads right.
//!
//! hickory 0.26 misreads parts of RFC 1035 §5.1 and serves other data than
//! the file says (found by tests/integration/differential_random.rs against
//! Knot): `\DDD` is read as octal in names (`\065` became `5`, not `A`) and
//! as `(d1 << 16) + (d2 << 8) + d3` in quoted strings; a quoted string inside
//! parentheses is split at its spaces, its quotes kept as data and its `(`,
//! `)` and `;` taken as syntax; an unquoted TXT string keeps its backslashes;
//! `\;` in a name ends the name; a relative `$ORIGIN` is taken as absolute;
//! `@` in RDATA is refused. So before the parser sees a file, this pass
//! reads the RFC 1035 syntax itself (comments, quotes, parentheses, both kinds
//! of escapes) and writes one record per line without parentheses or comments,
//! escapes decoded: names keep `\.` (which the parser reads right), TXT
//! strings are quoted. A byte the parser cannot hold where it is (an escaped
//! space or non-ASCII byte in a name, escaped bytes that are not UTF-8 in a
//! string) is an error naming the line, rather than a record served wrong.

use hickory_proto::rr::RecordType;
use hickory_proto::serialize::txt::parse_ttl;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One token: its bytes after escapes, which of them were escaped, and
/// whether it was a quoted string.
struct Token {
    bytes: Vec<u8>,
    escaped: Vec<bool>,
    quoted: bool,
}

/// A problem in a master file: the file (the included one for a problem
/// inside an `$INCLUDE`d file), its 1-based line, what it is.
#[derive(Debug)]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// What the rewrite knows at a point of one file: the origin in force
/// (absolute), the `$TTL` in force as written, the last stated owner
/// (absolute), and whether an `$INCLUDE` came since it was stated (the
/// parser would take the included file's last owner for a blank one).
struct State {
    origin: String,
    ttl: String,
    owner: Option<String>,
    owner_lost: bool,
}

/// The files being included, outermost first, and what they add up to,
/// against the limits of `config::files`; and, when a problem is being
/// looked for, the check each line is put to (`first_bad_line`).
struct Files<'c> {
    stack: Vec<PathBuf>,
    count: usize,
    bytes: u64,
    check: Option<LineCheck<'c>>,
}

/// A line-by-line check on the rewritten text, given a self-contained text
/// (the `$ORIGIN` and `$TTL` in force, then the line with its owner).
pub type LineCheck<'c> = &'c mut dyn FnMut(&str) -> Result<(), String>;

/// The text rewritten (`origin`: the zone's, absolute), or the 1-based line
/// of the first problem and what it is. For one record (TOML `data`):
/// `$INCLUDE` is an error here.
pub fn for_hickory(text: &str, origin: &str) -> Result<String, (usize, String)> {
    let mut st = State { origin: origin.to_string(), ttl: String::new(), owner: None, owner_lost: false };
    let mut out = String::with_capacity(text.len());
    rewrite(Path::new(""), text, &mut st, &mut out, None).map_err(|e| (e.line, e.message))?;
    Ok(out)
}

/// A master file (`path`, already read as `text`) rewritten, every
/// `$INCLUDE` in it and in what it includes expanded in place (so the
/// parser never reads a file itself), after a `$TTL` of the zone's `ttl`.
/// RFC 1035 §5.1: an `$INCLUDE`'s origin argument holds inside the included
/// file only; after it the includer's `$ORIGIN`, `$TTL` and last owner hold
/// again (as Knot reads it; docs/zone-format.md).
pub fn file_for_hickory(path: &Path, text: &str, origin: &str, ttl: u32) -> Result<String, FileError> {
    let mut st = State { origin: origin.to_string(), ttl: ttl.to_string(), owner: None, owner_lost: false };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&format!("$TTL {ttl}\n"));
    let mut files = Files { stack: vec![path.to_path_buf()], count: 0, bytes: text.len() as u64, check: None };
    rewrite(path, text, &mut st, &mut out, Some(&mut files))?;
    Ok(out)
}

/// The first line of a master file (or of a file it includes) that is
/// wrong, found when the file as a whole was refused: hickory's parser
/// names no line, and a record the zone refuses has none. Each logical line
/// is rewritten as `file_for_hickory` does, then put to `check` on its own
/// with what is in force before it (`$ORIGIN`, `$TTL`, the owner of a line
/// that starts blank), so the error names its file and line. `None` when
/// every line passes alone. An error path: a parse per line.
pub fn first_bad_line(path: &Path, text: &str, origin: &str, ttl: u32, check: LineCheck<'_>) -> Option<FileError> {
    let mut st = State { origin: origin.to_string(), ttl: ttl.to_string(), owner: None, owner_lost: false };
    let mut out = String::new();
    let mut files = Files { stack: vec![path.to_path_buf()], count: 0, bytes: text.len() as u64, check: Some(check) };
    rewrite(path, text, &mut st, &mut out, Some(&mut files)).err()
}

/// Rewrites `text` (the text of `path`) onto `out`; `files` is `None` for
/// text that is not a file.
fn rewrite(
    path: &Path,
    text: &str,
    st: &mut State,
    out: &mut String,
    mut files: Option<&mut Files>,
) -> Result<(), FileError> {
    let at = |line: usize| move |message: String| FileError { file: path.to_path_buf(), line, message };
    let b = text.as_bytes();
    let (mut i, mut line) = (0, 1);
    // One logical line: where it starts, whether it starts blank (the
    // previous owner), its tokens.
    let mut start = 1;
    let mut blank = false;
    let mut tokens: Vec<Token> = Vec::new();
    let mut parens = false;
    let mut at_line_start = true;
    while i < b.len() {
        let c = b[i];
        if at_line_start && !parens {
            start = line;
            blank = c == b' ' || c == b'\t';
            at_line_start = false;
        }
        match c {
            b'\n' => {
                line += 1;
                i += 1;
                if !parens {
                    let tokens = std::mem::take(&mut tokens);
                    logical_line(path, start, st, out, blank, tokens, files.as_deref_mut())?;
                    at_line_start = true;
                }
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' if parens => return Err(at(line)("nested parentheses".into())),
            b'(' => {
                parens = true;
                i += 1;
            }
            b')' if !parens => return Err(at(line)("`)` without `(`".into())),
            b')' => {
                parens = false;
                i += 1;
            }
            b'"' => {
                let mut t = Token { bytes: Vec::new(), escaped: Vec::new(), quoted: true };
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => return Err(at(line)("a quoted string is not closed on its line".into())),
                        Some(b'"') => break,
                        Some(_) => i = escape_or_byte(b, i, &mut t).map_err(at(line))?,
                    }
                }
                i += 1;
                tokens.push(t);
            }
            _ => {
                let mut t = Token { bytes: Vec::new(), escaped: Vec::new(), quoted: false };
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"') {
                    i = escape_or_byte(b, i, &mut t).map_err(at(line))?;
                }
                tokens.push(t);
            }
        }
    }
    if parens {
        return Err(at(start)("`(` is not closed".into()));
    }
    logical_line(path, start, st, out, blank, tokens, files)
}

/// Whether a logical line is a directive (`$ORIGIN`, `$TTL`, `$INCLUDE`).
fn is_directive(blank: bool, tokens: &[Token]) -> bool {
    !blank && !tokens[0].quoted && tokens[0].bytes.first() == Some(&b'$') && !tokens[0].escaped[0]
}

/// One logical line (starting at `line` of `path`): an `$INCLUDE` expanded, anything else written.
fn logical_line(
    path: &Path,
    line: usize,
    st: &mut State,
    out: &mut String,
    blank: bool,
    tokens: Vec<Token>,
    files: Option<&mut Files>,
) -> Result<(), FileError> {
    let here = |message: String| FileError { file: path.to_path_buf(), line, message };
    if !tokens.is_empty() && is_directive(blank, &tokens) && tokens[0].bytes.eq_ignore_ascii_case(b"$INCLUDE") {
        let files = files.ok_or_else(|| here("`$INCLUDE` is only read in a master file".into()))?;
        return include(path, line, st, out, &tokens, files);
    }
    let Some(check) = files.and_then(|f| f.check.as_deref_mut()) else {
        return emit(out, st, blank, tokens).map_err(here);
    };
    let before = format!("$ORIGIN {}\n$TTL {}\n", st.origin, st.ttl);
    let owner = st.owner.clone();
    // The output is only kept for its length; each line is checked alone.
    out.clear();
    emit(out, st, blank, tokens).map_err(&here)?;
    if out.is_empty() {
        return Ok(());
    }
    let alone = match (out.strip_prefix('\t'), owner) {
        (Some(rest), Some(owner)) if blank => format!("{before}{owner} {rest}"),
        _ => format!("{before}{out}"),
    };
    check(&alone).map_err(here)
}

/// `$INCLUDE FILE [ORIGIN]` at `line` of `path`: the file rewritten in place,
/// then the includer's state written back for the parser.
fn include(
    path: &Path,
    line: usize,
    st: &mut State,
    out: &mut String,
    tokens: &[Token],
    files: &mut Files,
) -> Result<(), FileError> {
    use crate::config::files::{read_text, MAX_DEPTH, MAX_FILE_BYTES, MAX_INCLUDES};
    let here = |message: String| FileError { file: path.to_path_buf(), line, message };
    if !(2..=3).contains(&tokens.len()) {
        return Err(here("`$INCLUDE` takes a file name and, optionally, an origin".into()));
    }
    let name =
        std::str::from_utf8(&tokens[1].bytes).map_err(|_| here("the `$INCLUDE` file name is not UTF-8".into()))?;
    // Relative to the including file's directory, as hickory resolved it (an absolute path stays).
    let target = path.parent().unwrap_or(Path::new(".")).join(name);
    let origin = match tokens.get(2) {
        Some(t) => {
            let mut w = String::new();
            word(&mut w, t).map_err(|e| here(format!("the `$INCLUDE` origin: {e}")))?;
            absolute(&w, &st.origin)
        }
        None => st.origin.clone(),
    };
    files.count += 1;
    if files.count > MAX_INCLUDES {
        return Err(here(format!("the zone reaches more than {MAX_INCLUDES} $INCLUDEs")));
    }
    if files.stack.len() > MAX_DEPTH {
        return Err(here(format!("$INCLUDEs are nested more than {MAX_DEPTH} deep (does a file include itself?)")));
    }
    if files.stack.contains(&target) {
        return Err(here(format!("{} includes itself", target.display())));
    }
    let text = read_text(&target).map_err(|m| here(format!("$INCLUDE {}: {m}", target.display())))?;
    files.bytes = files.bytes.saturating_add(text.len() as u64);
    if files.bytes > MAX_FILE_BYTES {
        return Err(here(format!(
            "with its $INCLUDEs the file passes {} MiB (counting a file as often as it is included)",
            MAX_FILE_BYTES >> 20
        )));
    }
    files.stack.push(target.clone());
    let mut inner = State { origin, ttl: st.ttl.clone(), owner: None, owner_lost: false };
    out.push_str(&format!("$ORIGIN {}\n", inner.origin));
    rewrite(&target, &text, &mut inner, out, Some(&mut *files))?;
    files.stack.pop();
    out.push_str(&format!("$ORIGIN {}\n$TTL {}\n", st.origin, st.ttl));
    st.owner_lost = true;
    Ok(())
}

/// A name as written (`word`) made absolute against `origin`.
fn absolute(name: &str, origin: &str) -> String {
    if name == "@" {
        origin.to_string()
    } else if name.ends_with('.') && !name.ends_with("\\.") {
        name.to_string()
    } else if origin == "." {
        format!("{name}.")
    } else {
        format!("{name}.{origin}")
    }
}

/// One domain name in presentation format (a TOML `name`), as the parser
/// reads it right.
pub fn name_for_hickory(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let mut t = Token { bytes: Vec::new(), escaped: Vec::new(), quoted: false };
    let mut i = 0;
    while i < b.len() {
        i = escape_or_byte(b, i, &mut t)?;
    }
    let mut out = String::new();
    word(&mut out, &t)?;
    Ok(out)
}

/// Reads one byte or one escape (`\X`, `\DDD` decimal) at `i` into `t`; the next position.
fn escape_or_byte(b: &[u8], i: usize, t: &mut Token) -> Result<usize, String> {
    if b[i] != b'\\' {
        t.bytes.push(b[i]);
        t.escaped.push(false);
        return Ok(i + 1);
    }
    match b.get(i + 1) {
        Some(d) if d.is_ascii_digit() => {
            let digits = b.get(i + 1..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
            let value = digits.map(|d| d.iter().fold(0u32, |v, x| v * 10 + u32::from(x - b'0')));
            match value {
                Some(v) if v <= 255 => {
                    t.bytes.push(v as u8);
                    t.escaped.push(true);
                    Ok(i + 4)
                }
                _ => Err("`\\DDD` needs three decimal digits, at most 255".into()),
            }
        }
        Some(b'\n') | None => Err("a `\\` ends the line".into()),
        Some(&x) => {
            t.bytes.push(x);
            t.escaped.push(true);
            Ok(i + 2)
        }
    }
}

/// Writes one logical line; `st` follows `$ORIGIN`, `$TTL` and owners.
fn emit(out: &mut String, st: &mut State, blank: bool, tokens: Vec<Token>) -> Result<(), String> {
    if tokens.is_empty() {
        return Ok(());
    }
    let directive = is_directive(blank, &tokens);
    if directive && tokens[0].bytes.eq_ignore_ascii_case(b"$ORIGIN") && tokens.len() == 2 {
        let mut arg = String::new();
        word(&mut arg, &tokens[1])?;
        st.origin = absolute(&arg, &st.origin);
        // Written absolute: the parser takes a relative `$ORIGIN` as absolute.
        out.push_str(&format!("$ORIGIN {}\n", st.origin));
        return Ok(());
    }
    if directive && tokens[0].bytes.eq_ignore_ascii_case(b"$TTL") && tokens.len() == 2 {
        // Kept as written (the parser checks it) to be written again after an `$INCLUDE`.
        let mut ttl = String::new();
        word(&mut ttl, &tokens[1])?;
        st.ttl = ttl;
    }
    // A free-standing `@` in the data is the origin (RFC 1035 §5.1); the
    // parser takes it as the owner only.
    let at = |t: &Token| !t.quoted && t.bytes == b"@" && !t.escaped[0];
    // The data of a TXT record starts after its type; owner, TTL and class come first.
    let mut txt_from = usize::MAX;
    if !directive {
        let skip = usize::from(!blank);
        for (k, t) in tokens.iter().enumerate().skip(skip) {
            let word = String::from_utf8_lossy(&t.bytes).to_ascii_uppercase();
            if t.quoted || parse_ttl(&word).is_ok() || matches!(word.as_str(), "IN" | "CH" | "HS" | "CS") {
                continue;
            }
            if RecordType::from_str(&word).ok() == Some(RecordType::TXT) {
                txt_from = k + 1;
            }
            break;
        }
    }
    match &st.owner {
        // After an `$INCLUDE` the parser's last owner is the included file's.
        Some(owner) if blank && st.owner_lost => {
            out.push_str(owner);
            out.push(' ');
            st.owner_lost = false;
        }
        _ if blank => out.push('\t'),
        _ => {}
    }
    for (k, t) in tokens.iter().enumerate() {
        if k > 0 {
            out.push(' ');
        }
        if t.quoted || k >= txt_from {
            quoted(out, t)?;
        } else if k > 0 && !directive && at(t) {
            out.push_str(&st.origin);
        } else if k == 0 && !blank && !directive {
            let mut owner = String::new();
            word(&mut owner, t)?;
            out.push_str(&owner);
            st.owner = Some(absolute(&owner, &st.origin));
            st.owner_lost = false;
        } else {
            word(out, t)?;
        }
    }
    out.push('\n');
    Ok(())
}

/// A character-string, quoted. The parser takes any character between
/// quotes but `"` and `\\` (escaped) and keeps its UTF-8 bytes, so the
/// string's bytes must be UTF-8 (they are unless escapes make them not).
fn quoted(out: &mut String, t: &Token) -> Result<(), String> {
    let text = std::str::from_utf8(&t.bytes)
        .map_err(|_| "escaped bytes in a string that are not UTF-8: only UTF-8 strings are supported".to_string())?;
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(())
}

/// A name or other unquoted word: unescaped bytes as they were, escaped
/// ones as the parser reads them right, or an error.
fn word(out: &mut String, t: &Token) -> Result<(), String> {
    let mut raw = Vec::with_capacity(t.bytes.len());
    for (&c, &escaped) in t.bytes.iter().zip(&t.escaped) {
        match c {
            _ if !escaped => raw.push(c),
            // An escaped dot is part of a label; the parser reads `\.` right.
            b'.' => raw.extend(b"\\."),
            b'"' | b'\\' | b'(' | b')' | b';' | b'@' | b'$' => {
                return Err(format!("`\\{}` in a name is not supported", c as char));
            }
            b'!'..=b'~' => raw.push(c),
            _ => return Err(format!("`\\{c:03}` in a name: only printable ASCII is supported")),
        }
    }
    // Unescaped bytes came from the text: still UTF-8.
    out.push_str(&String::from_utf8(raw).map_err(|_| "not UTF-8".to_string())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RData};
    use hickory_proto::serialize::txt::Parser;

    fn parsed(text: &str) -> Vec<String> {
        let origin = Name::from_ascii("t.").unwrap();
        let text = format!("$TTL 60\n{}", for_hickory(text, "t.").unwrap());
        let (_, sets) = Parser::new(text.as_str(), None, Some(origin)).parse().unwrap();
        let mut v: Vec<String> = sets
            .into_values()
            .flat_map(|s| s.into_parts().records)
            .map(|r| match &r.data {
                RData::TXT(t) => format!("{} TXT {:?}", r.name, t.txt_data),
                d => format!("{} {} {d}", r.name, r.record_type()),
            })
            .collect();
        v.sort();
        v
    }

    /// RFC 1035 §5.1: `\DDD` is decimal, in names and in strings.
    #[test]
    fn decimal_escapes_are_decimal() {
        // (hickory lowercases names; `A` is decimal 65, octal 065 would be `5`.)
        assert_eq!(parsed("\\065bc A 192.0.2.1\n"), ["abc.t. A 192.0.2.1"]);
        assert_eq!(parsed("a\\100 A 192.0.2.1\n"), ["ad.t. A 192.0.2.1"]);
        assert_eq!(parsed("a\\.b A 192.0.2.1\n"), ["a\\.b.t. A 192.0.2.1"]);
        assert_eq!(parsed("x TXT \"\\065\\\"\\\\\"\n"), ["x.t. TXT [[65, 34, 92]]"]);
        assert_eq!(parsed("x MX 10 m\\097il\n"), ["x.t. MX 10 mail.t."]);
        // UTF-8, escaped or not, and control characters stay bytes of the string.
        assert_eq!(parsed("x TXT \"\\195\\169\" \"é\" \"\\009\"\n"), ["x.t. TXT [[195, 169], [195, 169], [9]]"]);
    }

    /// Quoted strings inside parentheses stay whole; comments and line ends inside go.
    #[test]
    fn parentheses_keep_quoted_strings_whole() {
        assert_eq!(
            parsed("x TXT ( \"a b\" ; one ( \" ;\n  \"c)d\" ) ; end\n"),
            ["x.t. TXT [[97, 32, 98], [99, 41, 100]]"]
        );
        assert_eq!(parsed("x MX (\n 10 ; pref\n mail )\n"), ["x.t. MX 10 mail.t."]);
        // `@` in the data is the origin in force; in a TXT string it is `@`.
        assert_eq!(
            parsed("c CNAME @\n$ORIGIN s.t.\nd CNAME @\n$ORIGIN u\ne MX 1 @\n@ TXT @\n"),
            ["c.t. CNAME t.", "d.s.t. CNAME s.t.", "e.u.s.t. MX 1 u.s.t.", "u.s.t. TXT [[64]]"]
        );
    }

    /// An unquoted TXT string is a character-string: its escapes are decoded.
    #[test]
    fn unquoted_txt_strings_are_decoded() {
        assert_eq!(parsed("x 60 IN TXT a\\.b c\\065\n"), ["x.t. TXT [[97, 46, 98], [99, 65]]"]);
        assert_eq!(
            parsed("x TXT ( one two )\n  txt three\n"),
            ["x.t. TXT [[111, 110, 101], [116, 119, 111]]", "x.t. TXT [[116, 104, 114, 101, 101]]"]
        );
    }

    #[test]
    fn toml_names_take_decimal_escapes() {
        assert_eq!(name_for_hickory("\\065b\\.c.x").unwrap(), "Ab\\.c.x");
        assert!(name_for_hickory("a\\032b").is_err());
    }

    #[test]
    fn what_the_parser_cannot_hold_is_an_error_with_its_line() {
        for (text, line) in [
            ("a A 192.0.2.1\nsp\\032ace A 192.0.2.1\n", 2),
            ("a TXT \"\\200\"\n", 1),
            ("a TXT x\\195\n", 1),
            ("a TXT \"\\25\"\n", 1),
            ("a TXT \"\\256\"\n", 1),
            ("a\\;b A 192.0.2.1\n", 1),
            ("\n\na TXT ( \"x\"\n", 3),
            ("a TXT \"open\n", 1),
        ] {
            let got = for_hickory(text, "t.");
            assert_eq!(got.as_ref().map_err(|e| e.0), Err(line), "{text:?}: {got:?}");
        }
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("meridian-lines-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        d
    }

    /// `top.zone` in `d` expanded (zone `t.`, TTL 100), or the error.
    fn expand(d: &Path, top: &str) -> Result<String, FileError> {
        std::fs::write(d.join("top.zone"), top).unwrap();
        file_for_hickory(&d.join("top.zone"), top, "t.", 100)
    }

    fn records(text: &str) -> Vec<String> {
        let (_, sets) = Parser::new(text, None, Some(Name::from_ascii("t.").unwrap())).parse().unwrap();
        let mut v: Vec<String> = sets
            .into_values()
            .flat_map(|s| s.into_parts().records)
            .map(|r| match &r.data {
                RData::TXT(t) => format!("{} {} TXT {:?}", r.name, r.ttl, t.txt_data),
                d => format!("{} {} {} {d}", r.name, r.ttl, r.record_type()),
            })
            .collect();
        v.sort();
        v
    }

    /// An `$INCLUDE`d file gets the same rewrite; its origin argument, `$TTL`
    /// and owners hold inside it only (checked against knotd 3.2 by hand:
    /// the same records and TTLs).
    #[test]
    fn included_files_are_rewritten_and_scoped() {
        let d = tmp("scoped");
        std::fs::write(
            d.join("sub/inc.zone"),
            "$TTL 200\n\\065x A 192.0.2.5\ny TXT \"\\065\\066\" b\\067\n$INCLUDE inner.zone\nw A 192.0.2.4\n",
        )
        .unwrap();
        // Nested: relative to the including file's directory; the origin carries on.
        // Its `$ORIGIN` ends with it too.
        std::fs::write(d.join("sub/inner.zone"), "in A 192.0.2.6\n  TXT ( \"a b\"\n  )\n$ORIGIN d\nz A 192.0.2.7\n")
            .unwrap();
        let text = expand(
            &d,
            "prev A 192.0.2.9\n$INCLUDE sub/inc.zone o ; comment\n  TXT \"after\"\nafter A 192.0.2.2\n$INCLUDE \"sub/inner.zone\" abs.t.\n",
        )
        .unwrap();
        assert!(!text.contains("$INCLUDE"), "{text}");
        assert_eq!(
            records(&text),
            [
                "after.t. 100 A 192.0.2.2",
                "ax.o.t. 200 A 192.0.2.5",
                "in.abs.t. 100 A 192.0.2.6",
                "in.abs.t. 100 TXT [[97, 32, 98]]",
                "in.o.t. 200 A 192.0.2.6",
                "in.o.t. 200 TXT [[97, 32, 98]]",
                "prev.t. 100 A 192.0.2.9",
                "prev.t. 100 TXT [[97, 102, 116, 101, 114]]",
                "w.o.t. 200 A 192.0.2.4",
                "y.o.t. 200 TXT [[65, 66], [98, 67]]",
                "z.d.abs.t. 100 A 192.0.2.7",
                "z.d.o.t. 200 A 192.0.2.7",
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A problem inside an included file is reported at its own line; one
    /// with the `$INCLUDE` itself at the `$INCLUDE` line.
    #[test]
    fn errors_name_the_file_and_line_at_fault() {
        let d = tmp("errors");
        let top = d.join("top.zone");
        std::fs::write(d.join("sub/bad.zone"), "a A 192.0.2.1\nb TXT \"\\256\"\n").unwrap();
        let e = expand(&d, "x A 192.0.2.1\n$INCLUDE sub/bad.zone\n").unwrap_err();
        assert_eq!((e.file, e.line), (d.join("sub/bad.zone"), 2), "{}", e.message);
        let e = expand(&d, "\n\n$INCLUDE sub/none.zone\n").unwrap_err();
        assert_eq!((&e.file, e.line), (&top, 3));
        assert!(e.message.contains("none.zone: does not exist"), "{}", e.message);
        let e = expand(&d, "$INCLUDE sub/bad.zone o.t. extra\n").unwrap_err();
        assert_eq!((&e.file, e.line), (&top, 1));
        // A FIFO would block the load forever: refused before anything is read.
        let c = std::ffi::CString::new(d.join("sub/fifo").as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = expand(&d, "$INCLUDE sub/fifo\n").unwrap_err();
        assert!(e.message.contains("FIFO"), "{}", e.message);
        // One record (TOML `data`) has no file to include from.
        assert_eq!(for_hickory("$INCLUDE x\n", "t.").unwrap_err().0, 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Each line is checked alone with what is in force before it: the
    /// origin and TTL of the includer or the included file, the owner of a
    /// line that starts blank (also the includer's again after an `$INCLUDE`).
    #[test]
    fn the_first_bad_line_is_found_with_what_is_in_force_before_it() {
        let d = tmp("badline");
        std::fs::write(d.join("sub/inc.zone"), "$TTL 300\nin A 192.0.2.2\n  TXT \"x\"\n").unwrap();
        let top = "$TTL 60\nwww A 192.0.2.1\n  AAAA ( 2001:db8::1 )\n$INCLUDE sub/inc.zone o\n  TXT \"y\"\n$ORIGIN u\nb A 192.0.2.3\n";
        std::fs::write(d.join("top.zone"), top).unwrap();
        let mut seen = Vec::new();
        let mut all = |alone: &str| -> Result<(), String> {
            seen.extend(records(alone));
            Ok(())
        };
        assert!(first_bad_line(&d.join("top.zone"), top, "t.", 100, &mut all).is_none());
        assert_eq!(
            seen,
            [
                "www.t. 60 A 192.0.2.1",
                "www.t. 60 AAAA 2001:db8::1",
                "in.o.t. 300 A 192.0.2.2",
                "in.o.t. 300 TXT [[120]]",
                "www.t. 60 TXT [[121]]",
                "b.u.t. 60 A 192.0.2.3",
            ]
        );
        // The first line the check refuses, in the file it is in.
        let mut no_txt = |alone: &str| -> Result<(), String> {
            match records(alone).iter().any(|r| r.contains(" TXT ")) {
                true => Err("no TXT here".into()),
                false => Ok(()),
            }
        };
        let e = first_bad_line(&d.join("top.zone"), top, "t.", 100, &mut no_txt).unwrap();
        assert_eq!((e.file, e.line, e.message.as_str()), (d.join("sub/inc.zone"), 3, "no TXT here"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn include_loops_and_limits_are_errors() {
        let d = tmp("limits");
        std::fs::write(d.join("sub/a.zone"), "x A 192.0.2.1\n$INCLUDE b.zone\n").unwrap();
        std::fs::write(d.join("sub/b.zone"), "$INCLUDE a.zone\n").unwrap();
        let e = expand(&d, "$INCLUDE sub/a.zone\n").unwrap_err();
        assert_eq!((e.file, e.line), (d.join("sub/b.zone"), 1));
        assert!(e.message.contains("a.zone includes itself"), "{}", e.message);
        // The same loop written so the paths differ each time: stopped by depth.
        std::fs::write(d.join("sub/b.zone"), "$INCLUDE ../sub/b.zone\n").unwrap();
        let e = expand(&d, "$INCLUDE sub/b.zone\n").unwrap_err();
        assert!(e.message.contains("nested more than 64 deep"), "{}", e.message);
        // 101 × 100 includes of an empty file: over the 10 000 a zone may reach.
        std::fs::write(d.join("sub/empty.zone"), "").unwrap();
        std::fs::write(d.join("sub/hundred.zone"), "$INCLUDE empty.zone\n".repeat(100)).unwrap();
        let e = expand(&d, &"$INCLUDE sub/hundred.zone\n".repeat(101)).unwrap_err();
        assert!(e.message.contains("more than 10000 $INCLUDEs"), "{}", e.message);
        assert!(expand(&d, &"$INCLUDE sub/hundred.zone\n".repeat(99)).is_ok());
        let _ = std::fs::remove_dir_all(&d);
    }
}
