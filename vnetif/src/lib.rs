//! vnetif: a virtual network on the host for Sirocco's network code, so TCP regressions are caught on every
//! commit, in seconds, without Xen.
//!
//! Each node is the unikernel's network stack, unchanged: `Netfront` over the real ring and grant protocol on
//! heap pages, `sirocco_net::Vif`, `Stack`, `NetHandle` and the async sockets ([`node`]). Each node's vif is
//! served by an in-process fake netback ([`backend`]); the backends are joined by a learning switch ([`switch`])
//! whose links apply seeded faults in each direction ([`fault`]: loss, loss of data segments only, duplication,
//! reordering, delay and jitter, bandwidth, MTU, link down; and a backend that stops answering or disappears).
//! Everything runs in one thread on a simulated clock ([`sim`], [`exec`]), every frame is captured ([`pcap`]) and
//! the capture is written as pcap files when a test fails, and [`analysis`] reads TCP behaviour (retransmissions,
//! duplicate ACKs, fast retransmits, window probes, keep-alives) out of the capture.
//!
//! ```ignore
//! let mut sim = Sim::pair("my_test", 1);
//! sim.set_faults_everywhere(Faults::loss(0.01));
//! let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
//! let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
//! let server = sim.spawn(async move { /* accept, read, close */ });
//! sim.run(async move { /* connect, write, close */ });
//! sim.assert_clean();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
pub mod exec;
pub mod fault;
pub mod logger;
pub mod node;
pub mod packet;
pub mod pcap;
pub mod profile;
pub mod rng;
pub mod sim;
pub mod switch;
pub mod transfer;

pub use backend::{BackendState, Netback, NetbackStats};
pub use exec::{JoinHandle, SimHandle};
pub use fault::{Faults, Filter, Lane, LaneStats, Verdict};
pub use node::{Net, NodeConfig, TcpListener, TcpStream, UdpSocket, VifDevice};
pub use packet::Segment;
pub use pcap::{Capture, Way};
pub use rng::Rng;
pub use sim::{Lanes, Sim};
pub use switch::Direction;
