//! RFC 9018 server cookies: Version 1, three reserved zero bytes, a Unix
//! timestamp and SipHash-2-4 of client cookie | version | reserved |
//! timestamp | client address under a 16-byte secret. The same scheme as
//! BIND and Knot, so every node of an anycast set that shares the secret
//! accepts the others' cookies (whatever software they run).

use siphasher::sip::SipHasher24;
use std::net::IpAddr;
use std::sync::OnceLock;

/// Client cookie (8 bytes) and our server cookie (16): the COOKIE option's
/// data in every answer to a query with a cookie.
pub const ANSWER_LEN: usize = 24;
/// A server cookie this old is no longer accepted (RFC 9018 §4.3: 1 hour).
const MAX_AGE: u32 = 3600;
/// Nor one stamped further ahead of our clock (clock skew between nodes).
const MAX_AHEAD: u32 = 300;

/// A 16-byte SipHash key; in meridian.toml, 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret(pub [u8; 16]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)") // never in logs
    }
}

impl std::str::FromStr for Secret {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Secret, &'static str> {
        const WHAT: &str = "a cookie secret is 32 hex digits (16 bytes)";
        let b = s.as_bytes();
        if b.len() != 32 || !b.iter().all(u8::is_ascii_hexdigit) {
            return Err(WHAT);
        }
        let mut key = [0u8; 16];
        for (k, pair) in key.iter_mut().zip(s.as_bytes().chunks(2)) {
            *k = u8::from_str_radix(std::str::from_utf8(pair).map_err(|_| WHAT)?, 16).map_err(|_| WHAT)?;
        }
        Ok(Secret(key))
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The secrets answers are made and checked with, and the clock.
#[derive(Debug, Clone)]
pub struct Cookies {
    current: Secret,
    /// Still accepted after a rollover, never used for new cookies.
    previous: Option<Secret>,
    /// From meridian.toml (else random for this process).
    configured: bool,
    clock: fn() -> u32,
}

/// Without a configured secret: one random secret for the whole process,
/// so reloads keep accepting the cookies already handed out.
fn process_secret() -> Secret {
    static SECRET: OnceLock<Secret> = OnceLock::new();
    *SECRET.get_or_init(|| Secret(rand::random()))
}

/// Whole seconds are all a cookie holds: on Linux the coarse clock (the last
/// tick's time, no time-stamp counter read and no nanosecond arithmetic),
/// read for every answer to a cookie.
fn unix_now() -> u32 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes the timespec it is given, nothing else.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return ts.tv_sec as u32;
        }
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

impl Default for Cookies {
    fn default() -> Self {
        Cookies::new(None, None)
    }
}

impl std::fmt::Display for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.configured, self.previous.is_some()) {
            (false, _) => f.write_str("random secret for this process (anycast nodes need a shared [cookies] secret)"),
            (true, false) => f.write_str("configured secret"),
            (true, true) => f.write_str("configured secret, previous secret still accepted"),
        }
    }
}

impl Cookies {
    pub fn new(secret: Option<Secret>, previous: Option<Secret>) -> Cookies {
        Cookies {
            current: secret.unwrap_or_else(process_secret),
            previous,
            configured: secret.is_some(),
            clock: unix_now,
        }
    }

    /// The same secrets, read against another clock (tests).
    pub fn with_clock(self, clock: fn() -> u32) -> Cookies {
        Cookies { clock, ..self }
    }

    pub fn now(&self) -> u32 {
        (self.clock)()
    }

    /// The COOKIE option's data for an answer: `client` and a fresh server
    /// cookie for `ip`, stamped `now`.
    pub fn answer(&self, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; ANSWER_LEN] {
        let mut out = [0u8; ANSWER_LEN];
        out[..8].copy_from_slice(client);
        out[8] = 1;
        out[12..16].copy_from_slice(&now.to_be_bytes());
        let head: [u8; 8] = out[8..16].try_into().expect("8 bytes");
        out[16..].copy_from_slice(&hash(&self.current, client, &head, ip));
        out
    }

    /// Whether a COOKIE option's data holds a server cookie of ours for
    /// `ip`: version 1, stamped within the hour before `now` (or 5 minutes
    /// after it), hashed with the current or the previous secret.
    pub fn valid(&self, data: &[u8], ip: IpAddr, now: u32) -> bool {
        if data.len() != ANSWER_LEN || data[8] != 1 {
            return false;
        }
        let stamped = u32::from_be_bytes(data[12..16].try_into().expect("4 bytes"));
        // Serial arithmetic: the timestamp wraps (RFC 9018 §4.3).
        let (age, ahead) = (now.wrapping_sub(stamped), stamped.wrapping_sub(now));
        if age > MAX_AGE && ahead > MAX_AHEAD {
            return false;
        }
        let client: &[u8; 8] = data[..8].try_into().expect("8 bytes");
        let head: &[u8; 8] = data[8..16].try_into().expect("8 bytes");
        let ok = |s: &Secret| hash(s, client, head, ip) == data[16..];
        ok(&self.current) || self.previous.as_ref().is_some_and(ok)
    }
}

/// The last server cookies one worker made, by client cookie: a resolver
/// sends the same client cookie for long periods (RFC 9018 §3: it is
/// derived from the two addresses and the resolver's secret), so within a
/// second its answers' cookies are the same bytes, made once. A miss, a
/// collision or another second makes it anew: never other bytes than
/// `Cookies::answer`.
pub struct Memo {
    slots: Box<[Option<Made>; MEMO_SLOTS]>,
}

const MEMO_SLOTS: usize = 256;

struct Made {
    client: [u8; 8],
    ip: IpAddr,
    now: u32,
    secret: Secret,
    answer: [u8; ANSWER_LEN],
}

impl Default for Memo {
    fn default() -> Self {
        Memo { slots: Box::new([const { None }; MEMO_SLOTS]) }
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo(..)")
    }
}

impl Cookies {
    /// `answer`, from `memo` when this worker made it already this second.
    pub fn answer_with(&self, memo: &mut Memo, client: &[u8; 8], ip: IpAddr, now: u32) -> [u8; ANSWER_LEN] {
        let slot = &mut memo.slots[usize::from(client[0] ^ client[7]) % MEMO_SLOTS];
        if let Some(m) = slot {
            if m.now == now && m.client == *client && m.ip == ip && m.secret == self.current {
                return m.answer;
            }
        }
        let answer = self.answer(client, ip, now);
        *slot = Some(Made { client: *client, ip, now, secret: self.current, answer });
        answer
    }
}

/// SipHash-2-4 over client cookie | version, reserved, timestamp | address,
/// hashed at once.
fn hash(secret: &Secret, client: &[u8; 8], head: &[u8; 8], ip: IpAddr) -> [u8; 8] {
    let mut input = [0u8; 32];
    input[..8].copy_from_slice(client);
    input[8..16].copy_from_slice(head);
    let len = match ip.to_canonical() {
        IpAddr::V4(a) => {
            input[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            input[16..].copy_from_slice(&a.octets());
            32
        }
    };
    // The crate's one-shot hash: whole words straight from the slice, where
    // `write` + `finish` buffer a tail first.
    SipHasher24::new_with_key(&secret.0).hash(&input[..len]).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn cookies(secret: &str, previous: Option<&str>) -> Cookies {
        Cookies::new(Some(secret.parse().unwrap()), previous.map(|p| p.parse().unwrap()))
    }

    const SECRET_1: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    /// The memo gives exactly what `answer` makes, whatever changes between
    /// two answers: client cookie, address, second or secret.
    #[test]
    fn the_memo_gives_what_answer_makes() {
        let (a, b) = (cookies(SECRET_1, None), cookies("00112233445566778899aabbccddeeff", None));
        let mut memo = Memo::default();
        let clients = [[1u8, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 9], [9, 0, 0, 0, 0, 0, 0, 9]];
        let ips: [IpAddr; 3] =
            ["198.51.100.1".parse().unwrap(), "198.51.100.2".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        for round in 0..3 {
            for now in [1_000_000, 1_000_000, 1_000_001] {
                for c in [&a, &b, &a] {
                    for client in &clients {
                        for ip in ips {
                            assert_eq!(c.answer_with(&mut memo, client, ip, now), c.answer(client, ip, now), "{round}");
                        }
                    }
                }
            }
        }
    }

    /// RFC 9018 Appendix A, byte for byte: what each query's cookie is
    /// judged, and the answer's cookie.
    #[test]
    fn rfc_9018_appendix_a_examples() {
        // (secret, previous, client address, query's cookie, valid, now, answer)
        let cases = [
            // A.1: learning a new server cookie.
            (
                SECRET_1,
                None,
                "198.51.100.100",
                "2464c4abcf10c957",
                false,
                1559731985,
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
            ),
            // A.2: the same client, 40 minutes later, renewing it.
            (
                SECRET_1,
                None,
                "198.51.100.100",
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
                true,
                1559734385,
                "2464c4abcf10c957010000005cf7a871d4a564a1442aca77",
            ),
            // A.3: another client; its cookie has reserved bytes set (they
            // are hashed as received). Asked 1h52m after it was stamped, it
            // is past our hour: still answered, with a fresh one.
            (
                SECRET_1,
                None,
                "203.0.113.203",
                "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5",
                false,
                1559734700,
                "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e",
            ),
            // A.4: IPv6, after a rollover: the old secret's cookie still holds.
            (
                "445536bcd2513298075a5d379663c962",
                Some("dd3bdf9344b678b185a6f5cb60fca715"),
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                "22681ab97d52c298010000005cf7c57926556bd0934c72f8",
                true,
                1559741961,
                "22681ab97d52c298010000005cf7c609a6bb79d16625507a",
            ),
        ];
        for (secret, previous, ip, query, valid, now, answer) in cases {
            let c = cookies(secret, previous);
            let ip: IpAddr = ip.parse().unwrap();
            let query = hex(query);
            assert_eq!(c.valid(&query, ip, now), valid, "{ip}: judged");
            let client: [u8; 8] = query[..8].try_into().unwrap();
            assert_eq!(c.answer(&client, ip, now).to_vec(), hex(answer), "{ip}: answered");
        }
        // A.3's cookie is ours: within its hour it is accepted.
        let a3 = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let ip = "203.0.113.203".parse().unwrap();
        assert!(cookies(SECRET_1, None).valid(&a3, ip, 0x5cf78f71 + 3600));
        assert!(!cookies(SECRET_1, None).valid(&a3, "203.0.113.204".parse().unwrap(), 0x5cf78f71));
    }

    #[test]
    fn a_cookie_holds_an_hour_back_and_five_minutes_ahead_for_its_client_only() {
        let c = cookies(SECRET_1, None);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t = 1_700_000_000;
        let issued = c.answer(&[7; 8], ip, t);
        for (now, ok) in [(t, true), (t + 3600, true), (t + 3601, false), (t - 300, true), (t - 301, false)] {
            assert_eq!(c.valid(&issued, ip, now), ok, "{now}");
        }
        assert!(!c.valid(&issued, "192.0.2.8".parse().unwrap(), t), "another address");
        let mut bent = issued;
        bent[23] ^= 1;
        assert!(!c.valid(&bent, ip, t), "a changed hash");
        assert!(!c.valid(&issued[..8], ip, t), "a client cookie alone");
        // Over the timestamp's wrap.
        let late = c.answer(&[7; 8], ip, u32::MAX - 10);
        assert!(c.valid(&late, ip, 100));
        // Another secret: not ours; as the previous one: ours.
        let other = cookies("00112233445566778899aabbccddeeff", None);
        assert!(!other.valid(&issued, ip, t));
        let rolled = cookies("00112233445566778899aabbccddeeff", Some(SECRET_1));
        assert!(rolled.valid(&issued, ip, t));
        // An IPv4-mapped source is the IPv4 client (dual-stack sockets).
        assert!(c.valid(&issued, "::ffff:192.0.2.7".parse().unwrap(), t));
    }

    #[test]
    fn secrets_are_32_hex_digits() {
        assert!("E5E973E5A6B2A43F48E7DC849E37BFCF".parse::<Secret>().is_ok());
        for bad in [
            "",
            "e5e973e5",
            "e5e973e5a6b2a43f48e7dc849e37bfcg",
            "e5e973e5a6b2a43f48e7dc849e37bfcf00",
            "é5e973e5a6b2a43f48e7dc849e37bfc",
        ] {
            assert!(bad.parse::<Secret>().is_err(), "{bad}");
        }
        assert_ne!(Cookies::default().to_string(), cookies(SECRET_1, None).to_string());
    }
}
