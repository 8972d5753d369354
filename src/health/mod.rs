//! Health: probes (HTTP/HTTPS, TCP) → endpoint state machine (rise/fall,
//! overrides, slow start) → an immutable `HealthView` swapped into the
//! shared state. Knows nothing of DNS packets; the policy chain only reads
//! the view.

pub mod monitor;
pub mod probe;
pub mod state;
pub mod target;
pub mod view;

pub use monitor::{HealthObserver, HealthSettings, Monitor, NoObserver};
pub use state::{Override, OverrideKind, Scope, Verdict};
pub use target::{Endpoint, HttpProbe, ProbeKind, ProbeTarget};
pub use view::HealthView;
