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
use std::str::FromStr;

/// One token: its bytes after escapes, which of them were escaped, and
/// whether it was a quoted string.
struct Token {
    bytes: Vec<u8>,
    escaped: Vec<bool>,
    quoted: bool,
}

/// The text rewritten (`origin`: the zone's, absolute), or the 1-based line
/// of the first problem and what it is.
pub fn for_hickory(text: &str, origin: &str) -> Result<String, (usize, String)> {
    let mut origin = origin.to_string();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
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
                    emit(&mut out, &mut origin, blank, std::mem::take(&mut tokens)).map_err(|e| (start, e))?;
                    at_line_start = true;
                }
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' if parens => return Err((line, "nested parentheses".into())),
            b'(' => {
                parens = true;
                i += 1;
            }
            b')' if !parens => return Err((line, "`)` without `(`".into())),
            b')' => {
                parens = false;
                i += 1;
            }
            b'"' => {
                let mut t = Token { bytes: Vec::new(), escaped: Vec::new(), quoted: true };
                i += 1;
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => return Err((line, "a quoted string is not closed on its line".into())),
                        Some(b'"') => break,
                        Some(_) => i = escape_or_byte(b, i, &mut t).map_err(|e| (line, e))?,
                    }
                }
                i += 1;
                tokens.push(t);
            }
            _ => {
                let mut t = Token { bytes: Vec::new(), escaped: Vec::new(), quoted: false };
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"') {
                    i = escape_or_byte(b, i, &mut t).map_err(|e| (line, e))?;
                }
                tokens.push(t);
            }
        }
    }
    if parens {
        return Err((start, "`(` is not closed".into()));
    }
    emit(&mut out, &mut origin, blank, tokens).map_err(|e| (start, e))?;
    Ok(out)
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

/// Writes one logical line; `origin` follows `$ORIGIN`.
fn emit(out: &mut String, origin: &mut String, blank: bool, tokens: Vec<Token>) -> Result<(), String> {
    if tokens.is_empty() {
        return Ok(());
    }
    let directive = !blank && !tokens[0].quoted && tokens[0].bytes.first() == Some(&b'$') && !tokens[0].escaped[0];
    if directive && tokens[0].bytes.eq_ignore_ascii_case(b"$ORIGIN") && tokens.len() == 2 {
        let mut arg = String::new();
        word(&mut arg, &tokens[1])?;
        *origin = if arg.ends_with('.') && !arg.ends_with("\\.") { arg } else { format!("{arg}.{origin}") };
        // Written absolute: the parser takes a relative `$ORIGIN` as absolute.
        out.push_str(&format!("$ORIGIN {origin}\n"));
        return Ok(());
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
    if blank {
        out.push('\t');
    }
    for (k, t) in tokens.iter().enumerate() {
        if k > 0 {
            out.push(' ');
        }
        if t.quoted || k >= txt_from {
            quoted(out, t)?;
        } else if k > 0 && !directive && at(t) {
            out.push_str(origin);
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
}
