//! The result of a geo lookup: what the policy layer may route on.

use ipnet::IpNet;

/// Where a client address is, as far as the configured databases know.
///
/// Every field but `network` is optional: databases differ in what they carry,
/// and an address the database does not cover yields a `Location` with only
/// `network` set (see [`Location::empty`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    /// The database network that decided this answer: the matched record's
    /// network, or on a miss the largest network the database reports as
    /// empty. Always of the looked-up address's family (an IPv4 address in
    /// an IPv6-tree database gets the IPv4 prefix), so it can serve as an
    /// ECS scope.
    pub network: IpNet,
    /// ISO 3166-1 alpha-2 code, e.g. `"DE"`; falls back to the registered
    /// country when the database has no physical country for the record.
    pub country: Option<String>,
    /// Continent code: `"EU"`, `"NA"`, `"SA"`, `"AS"`, `"AF"`, `"OC"`, `"AN"`.
    pub continent: Option<String>,
    /// `"US-CA"` style: country code, `-`, first subdivision's ISO code.
    pub subdivision: Option<String>,
    /// `(latitude, longitude)` in degrees.
    pub coords: Option<(f64, f64)>,
    /// Autonomous system number from the ASN database, if one is configured
    /// and covers the address.
    pub asn: Option<u32>,
    /// The ASN database's network for the address (matched or empty);
    /// `None` only when no ASN database is configured.
    pub asn_network: Option<IpNet>,
}

/// For `geoip lookup` and logs: the known fields, `key=value`, in a line.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network={}", self.network)?;
        let text = [("continent", &self.continent), ("country", &self.country), ("subdivision", &self.subdivision)];
        for (k, v) in text {
            if let Some(v) = v {
                write!(f, " {k}={v}")?;
            }
        }
        if let Some((lat, lon)) = self.coords {
            write!(f, " coords={lat},{lon}")?;
        }
        if let Some(asn) = self.asn {
            write!(f, " asn=AS{asn}")?;
        }
        if let Some(n) = self.asn_network {
            write!(f, " asn_network={n}")?;
        }
        if self.is_unknown() {
            f.write_str(" (no location known)")?;
        }
        Ok(())
    }
}

impl Location {
    /// A location that knows nothing but the network it was looked up in.
    pub fn empty(network: IpNet) -> Self {
        Location { network, ..Location::default() }
    }

    /// True when no geographic field is known (ASN data is not considered).
    pub fn is_unknown(&self) -> bool {
        self.country.is_none() && self.continent.is_none() && self.subdivision.is_none() && self.coords.is_none()
    }
}
