//! When a key is in the DNSKEY set and when it signs: either fixed by the
//! operator (`state`, for rollovers driven by edits and reloads) or by
//! times (`publish`, `activate`, `retire`, `remove`, for rollovers the
//! server carries out by itself). Pure arithmetic on Unix seconds; the zone
//! loader checks the order of the times and that some key always signs.

/// Where a key stands at one moment (RFC 6781 §4.1.1's pre-publish steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Not yet in the DNSKEY set.
    Future,
    /// In the DNSKEY set, signing nothing yet (validators learn it first).
    Published,
    /// In the DNSKEY set and signing.
    Active,
    /// In the DNSKEY set, signing nothing any more (its signatures age out of caches).
    Retired,
    /// Gone from the DNSKEY set.
    Removed,
}

impl KeyState {
    /// The states an operator may write as `state = "…"`.
    pub fn parse(text: &str) -> Option<KeyState> {
        match text {
            "published" => Some(KeyState::Published),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyState::Future => "not yet published",
            KeyState::Published => "published",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }

    /// The key's DNSKEY is served.
    pub fn published(self) -> bool {
        matches!(self, KeyState::Published | KeyState::Active | KeyState::Retired)
    }
}

/// A key's schedule: a fixed state, or times (Unix seconds; an absent time
/// is "from the start" for publish/activate and "never" for retire/remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTiming {
    Fixed(KeyState),
    Times { publish: Option<u32>, activate: Option<u32>, retire: Option<u32>, remove: Option<u32> },
}

impl Default for KeyTiming {
    fn default() -> Self {
        KeyTiming::Fixed(KeyState::Active)
    }
}

impl KeyTiming {
    pub fn state_at(&self, now: u32) -> KeyState {
        match *self {
            KeyTiming::Fixed(s) => s,
            KeyTiming::Times { publish, activate, retire, remove } => {
                let reached = |t: Option<u32>| t.is_some_and(|t| now >= t);
                if reached(remove) {
                    KeyState::Removed
                } else if reached(retire) {
                    KeyState::Retired
                } else if publish.is_some_and(|t| now < t) {
                    KeyState::Future
                } else if activate.is_some_and(|t| now < t) {
                    KeyState::Published
                } else {
                    KeyState::Active
                }
            }
        }
    }

    /// The times at which this key's state changes.
    pub fn events(&self) -> Vec<u32> {
        match *self {
            KeyTiming::Fixed(_) => Vec::new(),
            KeyTiming::Times { publish, activate, retire, remove } => {
                [publish, activate, retire, remove].into_iter().flatten().collect()
            }
        }
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-12-03T14:00:00Z`), for messages.
pub fn format_time(t: u32) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.into())).to_string()
}

/// Now in Unix seconds (signatures and key states are computed in them).
pub fn unix_now() -> u32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pre_published_key_goes_through_each_state_in_turn() {
        let t = KeyTiming::Times { publish: Some(100), activate: Some(200), retire: Some(300), remove: Some(400) };
        let at: Vec<KeyState> = [99, 100, 199, 200, 299, 300, 399, 400].iter().map(|&n| t.state_at(n)).collect();
        use KeyState::*;
        assert_eq!(at, [Future, Published, Published, Active, Active, Retired, Retired, Removed]);
        assert_eq!(t.events(), [100, 200, 300, 400]);
        // Absent times: published and active from the start, never retired.
        let open = KeyTiming::Times { publish: None, activate: None, retire: Some(50), remove: None };
        assert_eq!((open.state_at(0), open.state_at(50), open.state_at(u32::MAX)), (Active, Retired, Retired));
        assert_eq!(KeyTiming::default().state_at(0), Active);
        assert!(Published.published() && Retired.published() && !Future.published() && !Removed.published());
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
