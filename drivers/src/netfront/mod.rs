//! netfront: the guest end of a Xen virtual network interface (`io/netif.h`), pure logic over the platform's
//! ring pages ([`SharedRing`](crate::ring::SharedRing)), granted buffer pages ([`NetBuffers`]) and event channel
//! ([`Notify`](crate::ring::Notify)). Host tests run it against a fake netback speaking the real wire format.
//!
//! The platform's sequence for `device/vif/<id>` (each step a call here or in [`crate::frontend`]):
//! 1. [`frontend::enumerate`](crate::frontend::enumerate) the vifs; `set_state(Initialising)`;
//!    `wait_for_backend([InitWait, Connected])`.
//! 2. [`read_config`]: our MAC and MTU, the backend's features (`feature-rx-copy` is required);
//!    [`Features::negotiate`].
//! 3. Allocate and zero the TX and RX ring pages and the buffer pages; grant the ring pages and the buffers
//!    (TX read-only, RX writable) to the backend once, for the device's lifetime; `alloc_unbound` an event channel
//!    to the backend's domain; [`Netfront::new`].
//! 4. [`connect`]: posts the RX buffers, writes the ring refs, event channel, requests and `state=Connected` in one
//!    transaction, waits for the backend's Connected, and only then allows [`Netfront::transmit`].
//! 5. On each event: [`Netfront::poll_tx`], [`Netfront::poll_rx`] until `None` (log each [`RxDrop`]); transmit
//!    when the stack has packets, retrying a [`TxError::RingFull`] after the next `poll_tx`. Each `poll_rx` takes
//!    at most [`RX_POLL_BUDGET`] responses: if [`Netfront::rx_pending`] says it stopped on it, poll again soon
//!    (after timers and other tasks had their turn), without waiting for an event.
//!
//! 6. If the backend's state goes to Closing or Closed, or its directory goes (netback restarted, driver domain
//!    rebooted, the vif detached): [`disconnect`], which closes our end in step and resets the device onto new
//!    ring pages ([`Netfront::reset`]); when a backend is at InitWait again, [`reconnect`] runs the xenbus
//!    handshake again. Connections survive a short outage through their retransmissions.
//!
//! The backend is not trusted: every response is validated before its id, length or offset is used; a bad one is
//! counted ([`Counters`]) and reported, its buffer recycled and its packet dropped; an `rsp_prod` that runs ahead
//! of our requests stops the device ([`Phase::Broken`]).

mod config;
pub mod csum;
mod device;
mod error;
pub mod wire;

/// Test support: a fake netback over heap pages (feature `fake`).
#[cfg(any(test, feature = "fake"))]
#[allow(missing_docs)] // test support, documented by its names
pub mod fake;
#[cfg(test)]
mod tests;

pub use config::{
    await_connected, check_features_kept, connect, disconnect, offer_connect, parse_mac, read_config, reconnect,
    rx_buffer_count, tx_buffer_count, write_connect_keys, BackendFeatures, ConfigError, ConnectKeys, NetConfig,
    DEFAULT_MTU, MAX_TX_BUFFERS, MIN_RX_BUFFERS, MIN_TX_BUFFERS, RX_RING_SLOTS,
};
pub use device::{Features, NetBuffers, Netfront, Phase, ResetReport, RxPacket, TxChecksum, TxPoll, RX_POLL_BUDGET};
pub use error::{Counters, Direction, Fault, FaultKind, RxDrop, TxError};
