//! DNSSEC online signing (issue 21): zone keys from PKCS#8 files (`keys.rs`),
//! RRSIGs made when an answer is made and cached per RRset (`signer.rs`),
//! RFC 9824 compact denial NSEC records (`denial.rs`), and when each key is
//! published and signs, for rollovers (`timing.rs`). A leaf of the
//! query path: the zone holds a `Signer`, the answer path calls it; nothing
//! here knows about packets or lookups. Crypto is hickory-proto's, on ring.

mod denial;
mod keys;
mod signer;
mod timing;

pub use denial::{compact_nsec, NXNAME};
pub use keys::{generate_key_file, load_key, KeyAlgorithm, KeyRole, ZoneKey};
pub use signer::Signer;
pub use timing::{format_time, unix_now, KeyState, KeyTiming};
