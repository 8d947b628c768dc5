//! [`Vif`]: netfront (`sirocco_drivers::netfront`) as a [`NetDevice`], so the stack's integration with the real
//! driver is plain logic that host tests run against the fake netback (`tests/vif.rs`), and the platform crate
//! only supplies the ring pages, buffer pages and event channel.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use sirocco_drivers::netfront::csum::{fill_partial_checksum, fill_transport_checksum};
use sirocco_drivers::netfront::wire::{MAX_TX_SIZE, PAGE_SIZE};
use sirocco_drivers::netfront::{NetBuffers, Netfront, Phase, TxChecksum, TxError, RX_POLL_BUDGET};
use sirocco_drivers::ring::{Notify, SharedRing};

use crate::device::{NetDevice, TxFull, ETHERNET_HEADER_LEN};

/// A connected netfront with the identity the stack needs.
pub struct Vif<S: SharedRing, B: NetBuffers, E: Notify> {
    /// Which vif (`device/vif/<id>`).
    pub id: u32,
    /// Our MAC (from xenstore's `mac`).
    pub mac: [u8; 6],
    /// The IP MTU (from xenstore's `mtu`, 1500 by default).
    pub mtu: u16,
    /// The protocol driver.
    pub driver: Netfront<S, B, E>,
}

static DROPS_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Logs the first few dropped packets in full, then every thousandth, so a hostile backend cannot flood the
/// console; the driver's counters keep every one.
fn log_drop(vif: u32, what: &dyn fmt::Display) {
    let n = DROPS_LOGGED.fetch_add(1, Ordering::Relaxed);
    if n < 16 || n.is_multiple_of(1000) {
        log::warn!("vif{vif}: dropped: {what} ({} so far)", n + 1);
    }
}

impl<S: SharedRing, B: NetBuffers, E: Notify> NetDevice for Vif<S, B, E> {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        // Without scatter-gather a frame must fit one page, whatever the toolstack's `mtu` says.
        usize::from(self.mtu).min(self.driver.max_packet() - ETHERNET_HEADER_LEN)
    }
    fn reap(&mut self) {
        self.driver.poll_tx();
    }
    fn rx_frames(&self) -> Option<usize> {
        // A frame above a page (jumbo, with scatter-gather) takes several RX buffers.
        let pages_per_frame = (self.mtu() + ETHERNET_HEADER_LEN).div_ceil(PAGE_SIZE);
        Some(usize::from(self.driver.rx_buffer_count()) / pages_per_frame.max(1))
    }
    fn receive(&mut self) -> Option<Vec<u8>> {
        // One budget for the whole call: a backend that answers every buffer with a bad id as fast as we post
        // them must not keep us here (it froze the guest: 200,000 drops in one call, timers starved).
        let mut budget = RX_POLL_BUDGET;
        loop {
            match self.driver.poll_rx_budget(&mut budget)? {
                Ok(mut packet) => {
                    if packet.csum_blank {
                        // The backend left the transport checksum blank (offload): fill it in, since the stack
                        // verifies every checksum.
                        if let Err(e) = packet.fill_checksum() {
                            log_drop(
                                self.id,
                                &format_args!("csum_blank packet whose checksum cannot be filled: {e:?}"),
                            );
                            continue;
                        }
                    }
                    return Some(packet.data);
                }
                Err(drop) => log_drop(self.id, &drop),
            }
        }
    }
    fn rx_pending(&self) -> bool {
        self.driver.rx_pending()
    }
    fn can_transmit(&self) -> bool {
        // Room for the largest frame the stack may hand over: a frame of several pages (MTU 9000, or a TSO segment
        // of up to 64 KiB plus its extra info slot) takes as many buffers and ring slots, and a frame refused
        // after we reported room is lost.
        let tso = self.tso_tcpv4_max().max(self.tso_tcpv6_max());
        let buffers = tso.unwrap_or(0).max(self.mtu() + ETHERNET_HEADER_LEN).div_ceil(PAGE_SIZE);
        let slots = buffers + usize::from(tso.is_some());
        matches!(self.driver.phase(), Phase::Connected)
            && self.driver.tx_free_buffers() >= buffers
            && self.driver.tx_free_slots() as usize >= slots
    }
    fn tso_tcpv4_max(&self) -> Option<usize> {
        self.tso_max(self.driver.features().gso_tcpv4)
    }
    fn tso_tcpv6_max(&self) -> Option<usize> {
        self.tso_max(self.driver.features().gso_tcpv6)
    }
    fn transmit_offloaded(&mut self, frame: &mut [u8], tso_mss: Option<u16>) -> Result<(), TxFull> {
        // smoltcp left every TCP checksum for us (`tso_tcpv4_max`, `tso_tcpv6_max`). With the version's offload
        // negotiated: the partial (pseudo-header) sum and `csum_blank`, and a segment over the MTU goes to
        // netback to cut up. IPv6 without it (the backend takes no partial IPv6 checksums): the whole checksum,
        // here.
        let mtu_frame = self.mtu() + ETHERNET_HEADER_LEN;
        let f = self.driver.features();
        let csum = match tcp_version(frame) {
            Some(v) if v == 4 || f.gso_tcpv6 => {
                if fill_partial_checksum(frame).is_err() {
                    // Sending it as valid would vouch for a checksum smoltcp left at 0.
                    log_drop(self.id, &"a TCP frame whose checksum cannot be set up for offload");
                    return Ok(());
                }
                match tso_mss {
                    Some(mss) if frame.len() > mtu_frame => return self.transmit_gso(frame, mss, v == 6),
                    _ => TxChecksum::Blank,
                }
            }
            Some(_) => {
                if fill_transport_checksum(frame).is_err() {
                    log_drop(self.id, &"an IPv6 TCP frame whose checksum cannot be computed");
                    return Ok(());
                }
                TxChecksum::Valid
            }
            None => TxChecksum::Valid,
        };
        self.send(frame, csum)
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
        // smoltcp computed every checksum: tell the backend they are valid.
        self.send(frame, TxChecksum::Valid)
    }
}

/// Pages a TSO segment may span: 64 KiB less the Ethernet header's worth, in 16 pages.
const TSO_PAGES: usize = 16;

/// The IP version of a frame carrying TCP (no VLAN tag: smoltcp sends none), or `None`.
fn tcp_version(frame: &[u8]) -> Option<u8> {
    match (frame.get(12..14)?, frame.get(14)? >> 4) {
        ([0x08, 0x00], 4) => (frame.get(23)? == &6).then_some(4),
        ([0x86, 0xdd], 6) => (frame.get(20)? == &6).then_some(6),
        _ => None,
    }
}

impl<S: SharedRing, B: NetBuffers, E: Notify> Vif<S, B, E> {
    /// The largest TSO segment, if that version's TSO is `negotiated`. Netback takes a packet of up to 64 KiB less
    /// one byte (the first slot's size is a u16), in at most 17 data slots: 16 whole pages would be the limit, and
    /// our buffers must hold four such segments so that small frames still get through while one is in flight.
    fn tso_max(&self, negotiated: bool) -> Option<usize> {
        (negotiated && usize::from(self.driver.tx_buffer_count()) >= 4 * TSO_PAGES)
            .then_some((TSO_PAGES * PAGE_SIZE).min(MAX_TX_SIZE))
    }

    /// Hands one frame to the driver, retrying once after reclaiming finished TX slots.
    fn send(&mut self, frame: &[u8], csum: TxChecksum) -> Result<(), TxFull> {
        self.retry(|d| d.transmit(frame, csum))
    }

    /// Hands one TSO segment to the driver (see [`Netfront::transmit_tcpv4_gso`], [`Netfront::transmit_tcpv6_gso`]).
    fn transmit_gso(&mut self, frame: &[u8], mss: u16, v6: bool) -> Result<(), TxFull> {
        if v6 {
            self.retry(|d| d.transmit_tcpv6_gso(frame, mss))
        } else {
            self.retry(|d| d.transmit_tcpv4_gso(frame, mss))
        }
    }

    fn retry(&mut self, mut queue: impl FnMut(&mut Netfront<S, B, E>) -> Result<(), TxError>) -> Result<(), TxFull> {
        match queue(&mut self.driver) {
            Ok(()) => Ok(()),
            Err(TxError::RingFull { .. }) => {
                self.driver.poll_tx();
                queue(&mut self.driver).map_err(|_| TxFull)
            }
            Err(e) => {
                // Not retryable (device broken, packet too big): the frame is dropped and counted by the driver.
                log_drop(self.id, &format_args!("transmit: {e}"));
                Ok(())
            }
        }
    }
}
