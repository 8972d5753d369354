//! Regions and clients the step tests share (test builds only), so each
//! step's tests read as the behaviour they check.

use super::{Client, Region};
use crate::geo::Location;

/// us-east (weight 50), eu-west (30), ap-northeast (20): ids 0, 1, 2, with
/// one IPv4 and one IPv6 address each.
pub fn regions() -> Vec<Region> {
    let r = |name: &str, v4: &str, v6: &str, loc: (f64, f64), w| {
        Region::unprobed(name, vec![v4.parse().unwrap(), v6.parse().unwrap()], Some(loc), w)
    };
    vec![
        r("us-east", "192.0.2.10", "2001:db8:10::10", (39.0, -77.5), 50),
        r("eu-west", "198.51.100.10", "2001:db8:20::10", (53.3, -6.3), 30),
        r("ap-northeast", "203.0.113.10", "2001:db8:30::10", (35.7, 139.7), 20),
    ]
}

pub const US_EAST: usize = 0;
pub const EU_WEST: usize = 1;
pub const AP_NORTHEAST: usize = 2;

/// A client by ECS subnet, located or not.
pub fn client(addr: &str, prefix: u8, loc: Option<Location>) -> Client {
    Client { addr: addr.parse().unwrap(), prefix, from_ecs: true, location: loc }
}

/// A database record: network, continent and coordinates.
pub fn located(net: &str, cont: &str, coords: (f64, f64)) -> Location {
    Location { network: net.parse().unwrap(), continent: Some(cont.into()), coords: Some(coords), ..Default::default() }
}

/// London, in a /16 of the database.
pub fn londoner() -> Client {
    client("10.3.0.0", 24, Some(located("10.3.0.0/16", "EU", (51.5, -0.1))))
}
