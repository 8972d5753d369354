//! A region name names one datacenter across every zone served: health,
//! overrides, `/status` and metrics know a region by its name alone. So a
//! region defined in a second zone must be defined identically, or the
//! second zone would answer addresses nothing probes or shows.

use std::collections::HashMap;

use super::Zone;
use crate::config::{ConfigError, ParsedZoneFile};
use crate::policy::Region;

/// The first definition of each region name, with where it is.
#[derive(Default)]
pub(super) struct RegionNames {
    first: HashMap<String, (Region, String)>,
}

impl RegionNames {
    /// Record `zone`'s regions; an error at the later definition, naming the
    /// first, when a name comes back with a different definition.
    pub(super) fn add(&mut self, parsed: &ParsedZoneFile, zone: &Zone) -> Result<(), ConfigError> {
        for spec in &parsed.zone.regions {
            let name_spanned = &spec.get_ref().name;
            let Some(region) = zone.regions.iter().find(|r| &r.name == name_spanned.get_ref()) else { continue };
            let (line, col) = parsed.source.line_col(name_spanned.span().start);
            let here = format!("{}:{line}:{col}", parsed.source.path.display());
            match self.first.get(&region.name) {
                None => {
                    self.first.insert(region.name.clone(), (region.clone(), here));
                }
                Some((first, at)) => {
                    if let Some(what) = difference(first, region) {
                        return Err(parsed.source.error(
                            name_spanned.span(),
                            format!(
                                "region {} is defined at {at} with other {what}: a region name names one \
                                 datacenter in every zone (probed, drained and shown once), so define it \
                                 identically or give this one another name",
                                region.name
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The first part in which two definitions of a region differ.
fn difference(a: &Region, b: &Region) -> Option<&'static str> {
    if a.addresses != b.addresses {
        Some("addresses")
    } else if a.endpoints != b.endpoints {
        Some("probes")
    } else if a.min_healthy != b.min_healthy {
        Some("min_healthy")
    } else if a.slow_start != b.slow_start {
        Some("slow_start")
    } else if a.location != b.location {
        Some("location")
    } else if a.weight != b.weight {
        Some("weight")
    } else if a.capacity != b.capacity {
        Some("capacity")
    } else {
        None
    }
}
