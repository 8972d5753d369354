//! Health: probes (HTTP/HTTPS, TCP) → endpoint state (rise/fall, slow start)
//! and operator overrides → an immutable `HealthView` handed to the server,
//! which publishes it. Knows nothing of DNS packets or zones; the policy
//! chain only reads the view.

pub mod endpoint_state;
pub mod monitor;
pub mod overrides;
pub mod probe;
pub mod rise_fall;
pub mod target;
pub mod view;

pub use monitor::{HealthObserver, HealthSettings, Monitor, NoObserver, Publish};
pub use overrides::{epoch_secs, Override, OverrideError, OverrideKind, Scope};
pub use rise_fall::Verdict;
pub use target::{Endpoint, HttpProbe, LoadSource, ProbeKind, ProbeTarget, RegionTargets};
pub use view::HealthView;
