//! One zone-file parser over one file: `meridian-parsers-bench PARSER FILE
//! ORIGIN`, PARSER one of `hickory`, `domain`, `meridian`. Prints the
//! records read and the wall time of reading them into owned records (the
//! file already in memory). Run under `/usr/bin/time` for CPU and peak
//! memory: see `../parsers.sh`.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, parser, file, origin] = &args[..] else {
        eprintln!("usage: meridian-parsers-bench hickory|domain|meridian FILE ORIGIN");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(file).expect("read the zone file");
    let start = Instant::now();
    let records = match parser.as_str() {
        "hickory" => {
            use hickory_proto::serialize::txt::Parser;
            let origin = hickory_proto::rr::Name::from_ascii(origin).unwrap();
            let (_, sets) = Parser::new(text.as_str(), None, Some(origin)).parse().expect("hickory parses it");
            sets.values().map(|set| set.records_without_rrsigs().count()).sum::<usize>()
        }
        "domain" => {
            use domain::zonefile::inplace::{Entry, Zonefile};
            let mut zone = Zonefile::from(text.as_str());
            zone.set_origin(domain::base::Name::bytes_from_str(origin).unwrap());
            // Kept, as a loader keeps them until it builds its zone.
            let mut kept = Vec::new();
            while let Some(entry) = zone.next_entry().expect("domain parses it") {
                if let Entry::Record(record) = entry {
                    kept.push(record);
                }
            }
            kept.len()
        }
        "domain-hickory" => {
            // domain's records turned into the hickory `Record`s the zone is built from.
            use domain::base::name::ToLabelIter;
            use domain::rdata::ZoneRecordData;
            use domain::zonefile::inplace::{Entry, Zonefile};
            use hickory_proto::rr::{rdata, Name, RData, Record};
            let mut zone = Zonefile::from(text.as_str());
            zone.set_origin(domain::base::Name::bytes_from_str(origin).unwrap());
            let mut kept = Vec::new();
            while let Some(entry) = zone.next_entry().expect("domain parses it") {
                let Entry::Record(r) = entry else { continue };
                let labels: Vec<&[u8]> =
                    r.owner().iter_labels().filter(|l| !l.is_root()).map(|l| l.as_slice()).collect();
                let mut name = Name::from_labels(labels).unwrap().to_lowercase();
                name.set_fqdn(true);
                let data = match r.data() {
                    ZoneRecordData::A(a) => RData::A(rdata::A(a.addr())),
                    ZoneRecordData::Aaaa(a) => RData::AAAA(rdata::AAAA(a.addr())),
                    ZoneRecordData::Txt(txt) => RData::TXT(rdata::TXT::from_bytes(txt.iter().collect())),
                    _ => continue, // SOA and NS: a handful, left out here
                };
                kept.push(Record::from_rdata(name, r.ttl().as_secs(), data));
            }
            kept.len()
        }
        "meridian" => {
            let origin = hickory_proto::rr::Name::from_ascii(origin).unwrap();
            meridian::zone::read_plain_count(&text, &origin, 3600).expect("a plain file")
        }
        other => panic!("unknown parser {other}"),
    };
    println!("{parser}: {records} records in {:.3} s", start.elapsed().as_secs_f64());
}
