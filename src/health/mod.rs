//! Health: probes (HTTP/HTTPS, TCP) → endpoint state machine (rise/fall,
//! overrides, slow start) → an immutable `HealthView` handed to the server,
//! which publishes it. Knows nothing of DNS packets or zones; the policy
//! chain only reads the view.

pub mod monitor;
pub mod probe;
pub mod state;
pub mod target;
pub mod view;

pub use monitor::{HealthObserver, HealthSettings, Monitor, NoObserver, Publish};
pub use state::{Override, OverrideKind, Scope, Verdict};
pub use target::{Endpoint, HttpProbe, ProbeKind, ProbeTarget, RegionTargets};
pub use view::HealthView;
