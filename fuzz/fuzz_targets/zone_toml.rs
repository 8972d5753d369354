//! The zone TOML loader: any text gives a zone or an error with a position,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::config::{parse_zone_source, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = Source { path: "/nonexistent/fuzz.toml".into(), text: text.to_string() };
    match parse_zone_source(source) {
        Ok(parsed) => {
            if let Err(e) = meridian::zone::build_zone(&parsed) {
                assert!(!e.message.is_empty());
            }
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
