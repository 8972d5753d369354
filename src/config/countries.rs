//! Country codes a `country` or `subdivision` rule may name: ISO 3166-1
//! alpha-2 (the 249 officially assigned codes) plus `XK`,
//! the user-assigned code GeoIP databases give Kosovo. A code no database
//! returns would make its rule silently never match.

/// Sorted, for binary search.
const ISO_3166_1: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

/// Whether `code` (upper case) is a country a GeoIP database can return.
pub fn is_country(code: &str) -> bool {
    code == "XK" || ISO_3166_1.binary_search(&code).is_ok()
}

/// What an operator probably meant by a code that is not a country.
pub fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "UK" => "did you mean GB? (ISO 3166 calls the United Kingdom GB)",
        "EL" => "did you mean GR? (EL is the EU's code for Greece, not ISO's)",
        "EU" => "EU is a continent here: put it under `continent`",
        "AN" => "AN is a continent here (Antarctica): put it under `continent`; the country is AQ",
        "OC" => "OC is a continent here (Oceania): put it under `continent`",
        "AP" | "A1" | "A2" | "O1" => "GeoIP Legacy used this code; GeoIP2 databases never return it",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_knows_real_codes_only() {
        assert!(ISO_3166_1.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        for c in ["GB", "US", "DE", "AQ", "XK", "SS", "BQ", "NA", "SA", "AS", "AF"] {
            assert!(is_country(c), "{c}");
        }
        for c in ["UK", "ZZ", "EU", "AP", "AN", "XX", "gb"] {
            assert!(!is_country(c), "{c}");
        }
        assert!(hint("UK").unwrap().contains("did you mean GB?"));
    }
}
