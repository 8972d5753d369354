//! Who the map is drawn for: weighted client subnets, from the GeoIP
//! database (every network, weighted by its address count) or from a CSV.

use ipnet::IpNet;
use std::path::{Path, PathBuf};

use super::MapError;
use crate::geo::GeoDb;

/// One client subnet and how much it counts (addresses, queries: any unit,
/// as long as one population uses one).
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    pub net: IpNet,
    pub weight: f64,
}

#[derive(Debug, Clone)]
pub struct Population {
    /// What it was made from, for the report's first line.
    pub source: String,
    pub clients: Vec<Weighted>,
}

impl Population {
    /// Every network of the database that has a record, weighted by its
    /// address count. IPv6 weights dwarf IPv4 ones (2^96 to 1), which is why
    /// the report never adds the two families together.
    pub fn from_geo(db: &GeoDb) -> Result<Population, MapError> {
        let mut clients = Vec::new();
        db.each_network(|net| {
            let bits = if net.addr().is_ipv4() { 32 } else { 128 };
            let weight = 2f64.powi(i32::from(bits - net.prefix_len()));
            clients.push(Weighted { net, weight });
        })?;
        Ok(Population { source: format!("every network of {}", db.paths().0.display()), clients })
    }

    /// `subnet,weight` per line (an address is a host subnet); `#` comments,
    /// blank lines and a `subnet,weight` header are skipped.
    pub fn from_csv(path: &Path) -> Result<Population, MapError> {
        let text = std::fs::read_to_string(path).map_err(|source| MapError::Read { path: path.into(), source })?;
        Ok(Population { source: format!("clients from {}", path.display()), clients: parse_csv(path, &text)? })
    }
}

fn parse_csv(path: &Path, text: &str) -> Result<Vec<Weighted>, MapError> {
    let mut clients = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() || (i == 0 && line.replace(' ', "").eq_ignore_ascii_case("subnet,weight")) {
            continue;
        }
        let err = |col: usize, message: String| MapError::Csv { file: PathBuf::from(path), line: i + 1, col, message };
        let col_of = |field: &str| raw.find(field).map_or(1, |c| c + 1);
        let mut fields = line.split(',').map(str::trim);
        let (Some(subnet), Some(weight), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(err(1, "expected two fields: subnet,weight".into()));
        };
        let net = match subnet.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => match subnet.parse::<std::net::IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => return Err(err(col_of(subnet), format!("{subnet:?} is not a subnet or an address"))),
            },
        };
        let weight: f64 = match weight.parse() {
            Ok(w) if f64::is_finite(w) && w >= 0.0 => w,
            _ => return Err(err(col_of(weight), format!("weight {weight:?} is not a number of 0 or more"))),
        };
        clients.push(Weighted { net, weight });
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_takes_subnets_and_addresses_skips_header_and_comments() {
        let text = "subnet,weight\n# from the resolver log\n198.51.100.7/24, 40\n\n2001:db8::1,2.5 # one host\n";
        let got = parse_csv(Path::new("c.csv"), text).unwrap();
        assert_eq!(
            got,
            vec![
                Weighted { net: "198.51.100.0/24".parse().unwrap(), weight: 40.0 },
                Weighted { net: "2001:db8::1/128".parse().unwrap(), weight: 2.5 },
            ]
        );
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let e = parse_csv(Path::new("c.csv"), "10.0.0.0/8,1\n10.1.0.0/16, lots\n").unwrap_err();
        assert_eq!(e.to_string(), "c.csv:2:14: weight \"lots\" is not a number of 0 or more");
        let e = parse_csv(Path::new("c.csv"), "nowhere,1\n").unwrap_err();
        assert_eq!(e.to_string(), "c.csv:1:1: \"nowhere\" is not a subnet or an address");
        let e = parse_csv(Path::new("c.csv"), "10.0.0.0/8\n").unwrap_err();
        assert_eq!(e.to_string(), "c.csv:1:1: expected two fields: subnet,weight");
    }

    #[test]
    fn geo_population_weights_by_address_count() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let db = GeoDb::open(&root.join("geoip/demo.mmdb"), None).unwrap();
        let pop = Population::from_geo(&db).unwrap();
        assert!(!pop.clients.is_empty());
        for c in &pop.clients {
            let bits = if c.net.addr().is_ipv4() { 32 } else { 128 };
            assert_eq!(c.weight, 2f64.powi(bits - i32::from(c.net.prefix_len())), "{}", c.net);
            assert_eq!(c.net, c.net.trunc(), "networks come truncated");
        }
        // Every network is one the database itself reports for its address.
        for c in &pop.clients {
            assert_eq!(db.lookup(c.net.addr()).network, c.net);
        }
    }
}
