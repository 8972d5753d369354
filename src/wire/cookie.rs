//! DNS cookies (RFC 7873): the COOKIE option of a query. A malformed one is
//! FORMERR (§5.2.2); the fast path only takes well-formed ones
//! (`query::parse_simple`). A well-formed one is answered with the client
//! cookie and a fresh server cookie (`server_cookie`).

use super::ecs::opt_options;

/// A COOKIE option's length is right: a client cookie alone (8 bytes), or
/// with a server cookie of 8 to 32 bytes.
pub fn length_ok(len: usize) -> bool {
    len == 8 || (16..=40).contains(&len)
}

/// `false` when a COOKIE option in the OPT record has a wrong length or
/// there are two of them.
pub fn lengths_ok(packet: &[u8]) -> bool {
    let mut cookies = opt_options(packet).filter(|(code, _, _)| *code == 10);
    cookies.next().is_none_or(|(_, len, _)| length_ok(len)) && cookies.next().is_none()
}

/// The data of the query's COOKIE option (checked by `lengths_ok` first).
pub fn option(packet: &[u8]) -> Option<&[u8]> {
    let (_, len, data) = opt_options(packet).find(|(code, _, _)| *code == 10)?;
    (data.len() == len).then_some(data)
}

/// The client cookie of a well-formed COOKIE option.
pub fn client(data: &[u8]) -> Option<&[u8; 8]> {
    data.get(..8).filter(|_| length_ok(data.len()))?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `.` A with an OPT record holding `opts`.
    fn packet(opts: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1];
        p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0]);
        p.extend_from_slice(&(opts.len() as u16).to_be_bytes());
        p.extend_from_slice(opts);
        p
    }

    fn cookie(len: u8) -> Vec<u8> {
        let mut o = vec![0, 10, 0, len];
        o.extend((0..len).map(|i| i ^ 0x5a));
        o
    }

    #[test]
    fn client_cookies_and_server_cookies_of_rfc_lengths_pass() {
        for len in [8, 16, 24, 40] {
            assert!(lengths_ok(&packet(&cookie(len))), "{len}");
        }
        for len in [0, 5, 9, 15, 41] {
            assert!(!lengths_ok(&packet(&cookie(len))), "{len}");
        }
        assert!(!lengths_ok(&packet(&[cookie(8), cookie(8)].concat())), "two cookies");
        assert!(lengths_ok(&packet(&[])), "no options");
    }

    #[test]
    fn the_option_and_its_client_cookie_are_found() {
        let p = packet(&[vec![0, 12, 0, 2, 0, 0], cookie(24)].concat());
        let data = option(&p).unwrap();
        assert_eq!(data, &cookie(24)[4..]);
        assert_eq!(client(data).unwrap()[..], cookie(24)[4..12]);
        assert_eq!(option(&packet(&[0, 12, 0, 0])), None);
        assert_eq!(client(&cookie(9)[4..]), None, "malformed");
    }
}
