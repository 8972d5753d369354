//! A fast reader for plain master files: the common shape of a big zone
//! (one record per line, A, AAAA or TXT, optional TTL and class IN, `;`
//! comments, `$ORIGIN` and `$TTL`). hickory's parser files every record into
//! a `BTreeMap` ordered by name, and that sorting was over half of a
//! 400,000-record zone's load time (docs/performance.md, "Big zones").
//!
//! It reads exactly what hickory's parser reads for such files, with
//! hickory's own TTL, class, type, name and address parsing, and gives the
//! records in the order `include` needs (each name's sets by type, as
//! hickory's map would, each set in hickory's `RecordSet` order). Anything
//! else (parentheses, escapes, `$INCLUDE`, other types or classes, anything
//! odd): `None`, and hickory's parser reads the file, errors and all.

use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::{parse_ttl, Parser};
use rustc_hash::FxHashMap;
use std::str::FromStr;

use super::names::wire_name;

/// Files from this size on are read in two halves at once, one per core
/// (a big zone's reading was a third of its load).
const SPLIT_FROM: usize = 1 << 20;

/// The records of `text` (origin `origin`, `$TTL` `ttl` until the file sets
/// one), or `None` when the file is not plain enough for this reader. Every
/// owner is lowercase and inside the zone `origin` (a name outside is left
/// to hickory's parser and the zone's check, which names it): the caller
/// need not check either again per record.
pub fn read_plain(text: &str, origin: &Name, ttl: u32) -> Option<impl ExactSizeIterator<Item = Record>> {
    let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    read_at(text, origin, ttl, split_at(text, if two_cores { SPLIT_FROM } else { usize::MAX }))
}

/// `read_plain`, the file read as two halves at once when `split` says
/// where the second starts (a line that names its owner).
fn read_at(text: &str, origin: &Name, ttl: u32, split: Option<usize>) -> Option<impl ExactSizeIterator<Item = Record>> {
    let origin = origin.to_lowercase();
    let zone_wire = wire_name(&origin);
    let state = State { origin_wire: zone_wire.clone(), origin, zone_wire, default_ttl: ttl };
    let part = match split {
        Some(at) => {
            // What the directives of the first half leave in force.
            let second = text[..at]
                .split('\n')
                .filter(|l| l.starts_with('$'))
                .try_fold(state.clone(), |st, l| st.directive(&tokens(l)?))?;
            let (a, b) = std::thread::scope(|s| {
                let b = s.spawn(|| Part::read(&text[at..], second));
                (Part::read(&text[..at], state), b.join().ok().flatten())
            });
            let (a, b) = (a?, b?);
            if a.soa_seen && b.soa_seen {
                return None; // a second SOA: hickory's parser reports it
            }
            // Halves with no name in common are handed over one after the
            // other, as they are: joining them into one list meant a copy of
            // both for a moment (tens of MiB of a big zone's peak).
            if b.name_ids.keys().any(|w| a.name_ids.contains_key(w)) {
                vec![a.join(b)]
            } else {
                vec![a, b]
            }
        }
        None => vec![Part::read(text, state)?],
    };
    let sets: Vec<_> = part.into_iter().map(Part::records).collect();
    Some(Counted { left: sets.iter().map(|s| s.len()).sum(), inner: sets.into_iter().flatten() })
}

/// An iterator that knows how many items it has left.
struct Counted<I> {
    left: usize,
    inner: I,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// Where the second half starts: the first line after the middle that
/// names its owner (not a continuation, directive or comment), so that it
/// can be read on its own. `None`: too small, or no such line.
fn split_at(text: &str, split_from: usize) -> Option<usize> {
    if text.len() < split_from {
        return None;
    }
    let mut at = text.len() / 2;
    loop {
        at += text[at..].find('\n')? + 1;
        if names_owner(text, at) {
            return Some(at);
        }
    }
}

/// Whether a line starting at `at` starts with its owner's name.
fn names_owner(text: &str, at: usize) -> bool {
    text.as_bytes().get(at).is_some_and(|b| !b" \t\r\n;$".contains(b))
}

/// What a file's directives set, in force from line to line.
#[derive(Clone)]
struct State {
    origin: Name,
    origin_wire: Vec<u8>,
    /// The zone's origin: every owner must be at or below it.
    zone_wire: Vec<u8>,
    default_ttl: u32,
}

impl State {
    /// `$ORIGIN` and `$TTL`; `None` for anything else.
    fn directive(mut self, tokens: &[Token<'_>]) -> Option<State> {
        let [Token::Word(w), Token::Word(arg)] = tokens[..] else { return None };
        match w.strip_prefix('$')? {
            "ORIGIN" if arg.ends_with('.') && !arg.contains('@') => {
                self.origin = Name::parse(arg, None).ok()?.to_lowercase();
                self.origin_wire = wire_name(&self.origin);
            }
            "TTL" => self.default_ttl = parse_ttl(arg).ok()?,
            _ => return None,
        }
        Some(self)
    }
}

/// The records of a file or of part of it, as read.
struct Part {
    /// Each owner written on a line, with its name's id (first-seen order):
    /// records refer to it, so a record is 40 bytes here, not hickory's 280.
    owners: Vec<(Name, u32)>,
    /// Every record with its name's id and type, sorted by the two at the
    /// end: one flat list, no allocation per set.
    all: Vec<Line>,
    name_ids: FxHashMap<Vec<u8>, u32>,
    soa_seen: bool,
}

impl Part {
    fn read(text: &str, state: State) -> Option<Part> {
        let mut st = state;
        let mut words = Vec::with_capacity(8);
        let mut owners: Vec<(Name, u32)> = Vec::with_capacity(text.len() / 32);
        let mut owner: Option<usize> = None;
        let mut soa_seen = false;
        let mut all: Vec<Line> = Vec::with_capacity(text.len() / 32);
        let mut name_ids: FxHashMap<Vec<u8>, u32> =
            FxHashMap::with_capacity_and_hasher(text.len() / 32, Default::default());
        for line in text.split('\n') {
            tokens_into(line, &mut words)?;
            let tokens = &words[..];
            let Some(first) = tokens.first() else {
                continue; // blank or a comment
            };
            if let Token::Word(w) = first {
                if w.starts_with('$') {
                    st = st.directive(tokens)?;
                    continue;
                }
            }
            let mut rest = tokens;
            match first {
                Token::Blank => rest = &rest[1..],
                Token::Word("@") => {
                    owner =
                        new_owner(&mut owners, &mut name_ids, st.origin.clone(), st.origin_wire.clone(), &st.zone_wire);
                    rest = &rest[1..];
                }
                Token::Word(w) if !w.contains('@') => {
                    let (name, wire) = match plain_label(w, &st.origin_wire) {
                        Some(label) => {
                            (st.origin.prepend_label(&label[1..]).ok()?, [&label[..], &st.origin_wire].concat())
                        }
                        None => {
                            let name = Name::parse(w, Some(&st.origin)).ok()?.to_lowercase();
                            let wire = wire_name(&name);
                            (name, wire)
                        }
                    };
                    owner = new_owner(&mut owners, &mut name_ids, name, wire, &st.zone_wire);
                    rest = &rest[1..];
                }
                _ => return None,
            }
            if rest.is_empty() {
                continue; // hickory takes an owner alone on a line, and keeps it
            }
            // [TTL] [class] type, in any order before the type (as hickory).
            let mut line_ttl = None;
            let mut rtype = None;
            while let Some((Token::Word(w), more)) = rest.split_first() {
                rest = more;
                // The usual words first, without an uppercase copy each: a
                // TTL starts with a digit (no class or type does), then IN.
                if w.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    if let Ok(t) = parse_ttl(w) {
                        line_ttl = Some(t);
                        continue;
                    }
                }
                if w.eq_ignore_ascii_case("IN") {
                    continue;
                }
                if let Some(t) = [RecordType::A, RecordType::AAAA, RecordType::TXT]
                    .into_iter()
                    .find(|&t| w.eq_ignore_ascii_case(t.into()))
                {
                    rtype = Some(t);
                    break;
                }
                let upper = w.to_ascii_uppercase();
                if let Ok(class) = DNSClass::from_str(&upper) {
                    if class != DNSClass::IN {
                        return None;
                    }
                    continue;
                }
                rtype = Some(RecordType::from_str(&upper).ok()?);
                break;
            }
            let rtype = rtype?;
            let rdata = match (rtype, rest) {
                (RecordType::A, [Token::Word(a)]) => RData::A(A(a.parse().ok()?)),
                (RecordType::AAAA, [Token::Word(a)]) => RData::AAAA(AAAA(a.parse().ok()?)),
                (RecordType::TXT, parts) if !parts.is_empty() => {
                    let strings = parts.iter().map(|p| match p {
                        Token::Word(w) | Token::Quoted(w) => Some(w.to_string()),
                        Token::Blank => None,
                    });
                    RData::TXT(TXT::new(strings.collect::<Option<Vec<_>>>()?))
                }
                // Other types a zone may hold are rare in big files: each such
                // line is read by hickory's parser alone, with the owner and TTL
                // written out. A second SOA is hickory's error to report.
                (t, parts)
                    if OTHERS.contains(&t) && !(t == RecordType::SOA && std::mem::replace(&mut soa_seen, true)) =>
                {
                    one_line(&st.origin, &owners[owner?].0, line_ttl.unwrap_or(st.default_ttl), t, parts)?
                }
                _ => return None,
            };
            let at = owner?;
            let data = match rdata {
                RData::A(a) => Data::A(a),
                RData::AAAA(a) => Data::AAAA(a),
                RData::TXT(t) => Data::TXT(t),
                other => Data::Other(Box::new(other)),
            };
            all.push(Line {
                id: owners[at].1,
                rtype: rtype.into(),
                owner: at as u32,
                ttl: line_ttl.unwrap_or(st.default_ttl),
                data,
            });
        }
        Some(Part { owners, all, name_ids, soa_seen })
    }

    /// This part followed by `next` (the rest of the file), as one.
    fn join(mut self, next: Part) -> Part {
        // The second part's names by the first's ids, or new ones.
        let mut ids = vec![0u32; next.name_ids.len()];
        for (wire, id) in next.name_ids {
            let fresh = self.name_ids.len() as u32;
            ids[id as usize] = *self.name_ids.entry(wire).or_insert(fresh);
        }
        let shift = self.owners.len() as u32;
        self.owners.extend(next.owners.into_iter().map(|(name, id)| (name, ids[id as usize])));
        self.all.extend(next.all.into_iter().map(|l| Line { id: ids[l.id as usize], owner: l.owner + shift, ..l }));
        self.soa_seen |= next.soa_seen;
        self
    }

    /// The records, each name's sets by type.
    fn records(self) -> impl ExactSizeIterator<Item = Record> {
        let Part { owners, mut all, .. } = self;
        // Each name's sets by type, each set in file order (the sort is stable;
        // a generated file is often in that order already, and moving records
        // of 280 bytes costs).
        if !all.is_sorted_by_key(Line::set) {
            all.sort_by_key(Line::set);
        }
        // Duplicates dropped in place: a second list of records was 110 MiB
        // of a 400,000-record zone's peak, and copying into it a tenth of its load.
        let (mut kept, mut set_at) = (0, 0);
        for i in 0..all.len() {
            if i == 0 || all[i].set() != all[kept - 1].set() {
                set_at = kept;
            }
            if is_new_in_set(&all[set_at..kept], &all[i].data) {
                all.swap(kept, i);
                kept += 1;
            }
        }
        all.truncate(kept);
        all.into_iter().map(move |l| {
            let data = match l.data {
                Data::A(a) => RData::A(a),
                Data::AAAA(a) => RData::AAAA(a),
                Data::TXT(t) => RData::TXT(t),
                Data::Other(d) => *d,
            };
            Record::from_rdata(owners[l.owner as usize].0.clone(), l.ttl, data)
        })
    }
}

/// A line's owner, kept with its name's id (first-seen order); its index.
/// `wire` is the name's lowercase wire form; `None` when it is not at or
/// below `zone` (lowercase wire).
fn new_owner(
    owners: &mut Vec<(Name, u32)>,
    name_ids: &mut FxHashMap<Vec<u8>, u32>,
    mut name: Name,
    wire: Vec<u8>,
    zone: &[u8],
) -> Option<usize> {
    if !inside(&wire, zone) {
        return None;
    }
    name.set_fqdn(true);
    let next_id = name_ids.len() as u32;
    let id = *name_ids.entry(wire).or_insert(next_id);
    owners.push((name, id));
    Some(owners.len() - 1)
}

/// Whether the wire name `name` is `zone` or below it (both lowercase).
fn inside(name: &[u8], zone: &[u8]) -> bool {
    let mut at = 0;
    while name.len() - at > zone.len() {
        at += 1 + usize::from(name[at]);
    }
    at <= name.len() && name[at..] == *zone
}

/// An owner written as one plain hostname label (letters, digits and
/// inner single hyphens, as most of a big zone's names), lowercase with its
/// length byte: the name is made from it directly, not by hickory's parser,
/// whose IDNA mapping of every owner was a sixth of a big zone's load.
/// `None`: anything else, which hickory's parser reads.
fn plain_label(word: &str, origin_wire: &[u8]) -> Option<Vec<u8>> {
    let b = word.as_bytes();
    let plain = (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !word.contains("--")
        && 1 + b.len() + origin_wire.len() <= 255;
    plain.then(|| {
        let mut label = Vec::with_capacity(1 + b.len());
        label.push(b.len() as u8);
        label.extend(b.iter().map(u8::to_ascii_lowercase));
        label
    })
}

/// One record as read: its name's id, type, the owner as written on its
/// line (an index into the owners), TTL and data.
struct Line {
    id: u32,
    rtype: u16,
    owner: u32,
    ttl: u32,
    data: Data,
}

impl Line {
    /// The set it belongs to.
    fn set(&self) -> (u32, u16) {
        (self.id, self.rtype)
    }
}

/// A record's data, the common types without hickory's 184-byte `RData`.
#[derive(PartialEq)]
#[allow(clippy::upper_case_acronyms)] // hickory's names
enum Data {
    A(A),
    AAAA(AAAA),
    TXT(TXT),
    Other(Box<RData>),
}

/// Types read line by line through hickory's parser (the others a zone may
/// hold, and the SOA `include` skips).
const OTHERS: [RecordType; 8] = [
    RecordType::SOA,
    RecordType::NS,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::PTR,
    RecordType::DS,
];

/// The RDATA of one record line as hickory's parser reads it, the owner
/// absolute and relative names in the data taken from `origin`.
fn one_line(origin: &Name, owner: &Name, ttl: u32, rtype: RecordType, parts: &[Token<'_>]) -> Option<RData> {
    let mut text = format!("{} {ttl} IN {rtype}", owner.to_ascii());
    for p in parts {
        match p {
            Token::Word(w) => text += &format!(" {w}"),
            Token::Quoted(q) => text += &format!(" \"{q}\""),
            Token::Blank => return None,
        }
    }
    text.push('\n');
    let (_, sets) = Parser::new(text.as_str(), None, Some(origin.clone())).parse().ok()?;
    let mut records = sets.into_values().flat_map(|s| s.into_parts().records);
    match (records.next(), records.next()) {
        (Some(r), None) if r.record_type() == rtype => Some(r.data),
        _ => None,
    }
}

/// hickory's `RecordSet::insert`: the same data again (at the same name,
/// class IN) is the same record (RFC 2136 §1.1.1, TTL left out), and the
/// first one stays. Unlike hickory, a second, different CNAME does not
/// silently replace the first: both are kept, so the zone's check refuses
/// the name (as Knot refuses such a file) instead of answering the last one.
/// `set` is what is kept of the set so far.
fn is_new_in_set(set: &[Line], data: &Data) -> bool {
    !set.iter().any(|l| l.data == *data)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    /// Leading whitespace: the previous owner.
    Blank,
    Word(&'a str),
    Quoted(&'a str),
}

/// One line's tokens, or `None` for anything this reader leaves to hickory.
fn tokens(line: &str) -> Option<Vec<Token<'_>>> {
    let mut out = Vec::with_capacity(6);
    tokens_into(line, &mut out)?;
    Some(out)
}

/// `tokens`, into `out` (emptied first): one list for every line of a file.
fn tokens_into<'a>(line: &'a str, out: &mut Vec<Token<'a>>) -> Option<()> {
    out.clear();
    let bytes = line.as_bytes();
    let mut at = 0;
    if bytes.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        out.push(Token::Blank);
    }
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' => at += 1,
            b';' => break,
            b'"' => {
                let len = bytes[at + 1..].iter().position(|b| *b == b'"')?;
                let inner = &line[at + 1..at + 1 + len];
                if inner.bytes().any(|b| !(0x20..0x7f).contains(&b) || b == b'\\') {
                    return None;
                }
                out.push(Token::Quoted(inner));
                at += len + 2;
                // hickory splits `"a"b` in two: such input is left to it.
                if bytes.get(at).is_some_and(|b| !matches!(b, b' ' | b'\t' | b';')) {
                    return None;
                }
            }
            _ => {
                // One pass: where the word ends, and whether it is plain.
                let start = at;
                while let Some(&b) = bytes.get(at) {
                    if matches!(b, b' ' | b'\t' | b';') {
                        break;
                    }
                    let plain = (0x21..0x7f).contains(&b) && !matches!(b, b'"' | b'(' | b')' | b'\\');
                    // `$` starts a token of its own in hickory's lexer.
                    if !plain || (b == b'$' && at > start) {
                        return None;
                    }
                    at += 1;
                }
                let word = &line[start..at];
                // `$` and `@` are allowed only first on the line (the caller
                // checks the rest).
                if word.starts_with(['$', '@']) && !out.is_empty() {
                    return None;
                }
                out.push(Token::Word(word));
            }
        }
    }
    // A line that is only whitespace: nothing.
    if out[..] == [Token::Blank] {
        out.clear();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hickory's parser gives, in the order `include` reads it.
    fn hickory(text: &str, origin: &Name, ttl: u32) -> Vec<Record> {
        let text = format!("$TTL {ttl}\n{text}");
        let (_, sets) = Parser::new(text.as_str(), None, Some(origin.clone())).parse().unwrap();
        sets.into_values().flat_map(|s| s.into_parts().records).collect()
    }

    /// Records compared with their names' case, which `==` ignores, each
    /// name's in their order (the order across names means nothing to
    /// `include`: it fills a map by name).
    fn shown(records: &[Record]) -> Vec<String> {
        let mut by_name: Vec<&Record> = records.iter().collect();
        by_name.sort_by_key(|r| r.name.to_lowercase());
        by_name.iter().map(|r| format!("{} {} {:?} {:?}", r.name.to_ascii(), r.ttl, r.dns_class, r.data)).collect()
    }

    #[test]
    fn plain_files_read_exactly_as_hickory_reads_them() {
        let origin = Name::from_ascii("big.test.").unwrap();
        let files = [
            "a1 IN A 192.0.2.1\na2 300 IN A 192.0.2.2\na3 IN 300 A 192.0.2.3\na4 A 192.0.2.4\n",
            // Types out of order at one name, a continuation line, comments, blank lines.
            "m AAAA 2001:db8::1 ; v6\n  TXT \"x y\" plain \"\"\nm A 192.0.2.9\n\n; only a comment\n   \nm a 192.0.2.8",
            // The same data again, with another TTL, exactly, in another case: the first stays.
            "d 60 A 192.0.2.1\nd 30 A 192.0.2.1\nd A 192.0.2.2\nD 30 A 192.0.2.1\nd.BIG.test. A 192.0.2.3\n",
            // Directives, absolute names, `@`, TTL units.
            "$TTL 1h\n@ A 192.0.2.1\n$ORIGIN sub.big.test.\nx 1d2h A 192.0.2.2\nabs.big.test. TXT \"a;b\" 'q'\n$TTL 7\ny in txt hello\n",
            // Owners of one label made without hickory's parser, and ones
            // that still go through it.
            "host-1 A 192.0.2.1\nHOST-1 A 192.0.2.2\n9x A 192.0.2.3\na--b A 192.0.2.4\n\
             xn--bcher-kva A 192.0.2.6\n_dmarc TXT x\n*.w A 192.0.2.7\nz- A 192.0.2.8\nq.r A 192.0.2.9\n",
            // A name alone on a line is the owner of the next, blank-started one.
            "alone\n\tA 192.0.2.5\n",
            // Other types, line by line: names relative to the origin in force.
            "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n$ORIGIN s.big.test.\nw MX 10 mail\n\
             c CNAME a\nsrv 60 SRV 1 2 53 t.example.\nq CAA 0 issue \"ca.example\"\nd NS ns.d\n\
             d DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118\n",
        ];
        for (i, text) in files.iter().enumerate() {
            let ours: Vec<Record> =
                read_plain(text, &origin, 3600).unwrap_or_else(|| panic!("file {i} left to hickory")).collect();
            assert_eq!(shown(&ours), shown(&hickory(text, &origin, 3600)), "file {i}:\n{text}");
        }
    }

    /// Read in two halves, at every line where the second may start: the
    /// same records as read whole (owners, `$ORIGIN` and `$TTL` carried over,
    /// a second SOA in the other half still refused).
    #[test]
    fn a_file_read_in_two_halves_is_the_file_read_whole() {
        let origin = Name::from_ascii("big.test.").unwrap();
        let files = [
            "a1 IN A 192.0.2.1\na2 300 IN A 192.0.2.2\nA1 IN A 192.0.2.3\na1 TXT x\na2 IN A 192.0.2.2\n",
            "$TTL 1h\n@ A 192.0.2.1\n$ORIGIN sub.big.test.\nx 1d2h A 192.0.2.2\n$TTL 7\ny in txt hello\nx A 192.0.2.2\n\
             alone\n\tA 192.0.2.5\n$ORIGIN big.test.\nx A 192.0.2.9\n",
            "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nw MX 10 mail\nc CNAME a\nc CNAME b\nq A 192.0.2.1\n",
            "@ SOA ns1 h 1 2 3 4 5\na A 192.0.2.1\n@ SOA ns1 h 2 2 3 4 5\n",
            "a A 192.0.2.1\nb A 192.0.2.1\n$INCLUDE x\nc A 192.0.2.1\n",
        ];
        for text in files {
            let whole = read_at(text, &origin, 3600, None).map(|r| shown(&r.collect::<Vec<_>>()));
            let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1));
            for at in starts.filter(|&at| at > 0 && names_owner(text, at)) {
                let halves = read_at(text, &origin, 3600, Some(at)).map(|r| shown(&r.collect::<Vec<_>>()));
                assert_eq!(halves, whole, "split at {at}:\n{text}");
            }
        }
        let mut big = String::new();
        for i in 0..60_000 {
            big += &format!("n{} IN A 192.0.2.{}\n", i % 1000, i % 250);
        }
        assert!(split_at(&big, SPLIT_FROM).is_some());
        let whole = read_at(&big, &origin, 60, None).unwrap().count();
        assert_eq!(read_plain(&big, &origin, 60).unwrap().count(), whole);
        // Halves with no name in common, handed over one after the other.
        let mut apart = String::new();
        for i in 0..60_000 {
            apart += &format!("n{i} IN A 192.0.2.{}\nn{i} TXT x{i}\n", i % 250);
        }
        let at = split_at(&apart, SPLIT_FROM).unwrap();
        let halves = read_at(&apart, &origin, 60, Some(at)).unwrap();
        assert_eq!(halves.len(), 120_000);
        assert_eq!(
            shown(&halves.collect::<Vec<_>>()),
            shown(&read_at(&apart, &origin, 60, None).unwrap().collect::<Vec<_>>())
        );
    }

    #[test]
    fn owners_are_lowercase_and_inside_the_zone_or_left_to_hickory() {
        let origin = Name::from_ascii("big.test.").unwrap();
        let got: Vec<Record> = read_plain(
            "A A 192.0.2.1\nB.Big.Test. A 192.0.2.2\n$ORIGIN S.BIG.test.\nC A 192.0.2.3\n@ A 192.0.2.4\n",
            &origin,
            60,
        )
        .unwrap()
        .collect();
        let names: Vec<String> = got.iter().map(|r| r.name.to_ascii()).collect();
        assert_eq!(names, ["a.big.test.", "b.big.test.", "c.s.big.test.", "s.big.test."]);
        for outside in ["x.other.test. A 192.0.2.1\n", "$ORIGIN test.\nx A 192.0.2.1\n", "@ A 192.0.2.1\n"] {
            let zone = Name::from_ascii("in.big.test.").unwrap();
            let text = format!("$ORIGIN big.test.\nin A 192.0.2.9\n{outside}");
            assert!(read_plain(&text, &zone, 60).is_none(), "{outside}");
        }
        assert!(inside(b"\x01a\x03big\x04test\x00", b"\x03big\x04test\x00"));
        assert!(inside(b"\x03big\x04test\x00", b"\x03big\x04test\x00"));
        assert!(!inside(b"\x04xbig\x04test\x00", b"\x03big\x04test\x00"), "not at a label boundary");
        assert!(!inside(b"\x04test\x00", b"\x03big\x04test\x00"));
    }

    /// Two different CNAMEs at one name are both kept (hickory keeps the
    /// last), so the zone's check refuses the name instead of answering one.
    #[test]
    fn a_second_cname_at_a_name_is_kept_for_the_check_to_refuse() {
        let origin = Name::from_ascii("big.test.").unwrap();
        let got: Vec<Record> = read_plain("c CNAME a\nc CNAME b\nc CNAME a\n", &origin, 60).unwrap().collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(|r| r.record_type() == RecordType::CNAME));
    }

    #[test]
    fn anything_else_is_left_to_hickorys_parser() {
        let origin = Name::from_ascii("big.test.").unwrap();
        for text in [
            "a IN A ( 192.0.2.1 )\n",
            "a IN HINFO x y\n",
            "@ SOA ns1 h 1 2 3 4 5\n@ SOA ns1 h 2 2 3 4 5\n",
            "a IN MX ten mx\n",
            "a CH TXT x\n",
            "a TXT \"esc\\\"aped\"\n",
            "a TXT \"a\"b\n",
            "$INCLUDE other.zone\n",
            "$ORIGIN relative\n",
            "a IN A 192.0.2.1 extra\n",
            "a IN A 300.0.2.1\n",
            "  A 192.0.2.1\n",
            "a@b A 192.0.2.1\n",
            "a IN A\n",
            "a TXT \"unclosed\n",
            "a TXT @\n",
            "a TXT x$y\n",
            "a IN A 192.0.2.1\r\n",
            "-a IN A 192.0.2.1\n", // hickory refuses the label; its error is the one to give
        ] {
            assert!(read_plain(text, &origin, 3600).is_none(), "{text:?}");
        }
    }
}
