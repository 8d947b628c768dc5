//! The layers under the application API, for the programs that need them (device probes, new drivers, tests of
//! the platform): the shared rings, grants, event channels and console of the platform layer, the xenbus
//! front-end logic, and the raw netfront and blkfront drivers that `net` and `block` are built on.
//!
//! **Outside semantic versioning.** Visible only with the `sirocco` crate's feature `unstable`
//! (`sirocco = { ..., features = ["unstable"] }`); anything here may change or go in any release, minor or patch,
//! and such a change is not a breaking one under semver. An application that needs only sockets, disks, timers, tasks
//! and xenstore should not need this module: say what it lacks in an issue instead.

pub mod blkfront;
pub mod netfront;

/// The PV console ring: `Console`, `with` (what `print!` and `println!` write through).
pub use sirocco_boot::console;
/// Event channels: `EventChannel` (`alloc_unbound`, `bind_interdomain`, `bind_virq`, `notify`, `wait().await`).
pub use sirocco_boot::evtchn;
/// The grant table: `Page`, `Grant` (a granted page comes back only from a successful `revoke`), `SharedPages`.
pub use sirocco_boot::grant;
/// Shared ring pages granted to a backend (`RingPages`) and the event-channel kick (`Kick`).
pub use sirocco_boot::ring;
/// Front-end device discovery and the xenbus state machine (logic in `sirocco-drivers`).
pub use sirocco_drivers::frontend;
