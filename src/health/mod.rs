//! Health: probes (HTTP/HTTPS, TCP) → endpoint state (rise/fall, slow start)
//! and operator overrides → an immutable `HealthView` swapped into the
//! shared state. Knows nothing of DNS packets; the policy chain only reads
//! the view.

pub mod endpoint_state;
pub mod monitor;
pub mod overrides;
pub mod probe;
pub mod rise_fall;
pub mod target;
pub mod view;

pub use monitor::{HealthObserver, HealthSettings, Monitor, NoObserver};
pub use overrides::{epoch_secs, Override, OverrideError, OverrideKind, Scope};
pub use rise_fall::Verdict;
pub use target::{Endpoint, HttpProbe, ProbeKind, ProbeTarget};
pub use view::HealthView;
