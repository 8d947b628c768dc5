//! [`Vif`]: netfront (`sirocco_drivers::netfront`) as a [`NetDevice`], so the stack's integration with the real
//! driver is plain logic that host tests run against the fake netback (`tests/vif.rs`), and the platform crate
//! only supplies the ring pages, buffer pages and event channel.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use sirocco_drivers::netfront::wire::PAGE_SIZE;
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
        // Room for the largest frame the stack may hand over: a frame of several pages (MTU 9000) takes as many
        // buffers and ring slots, and a frame refused after we reported room is lost.
        let slots = (self.mtu() + ETHERNET_HEADER_LEN).div_ceil(PAGE_SIZE);
        matches!(self.driver.phase(), Phase::Connected)
            && self.driver.tx_free_buffers() >= slots
            && self.driver.tx_free_slots() as usize >= slots
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
        // smoltcp computed every checksum: tell the backend they are valid.
        match self.driver.transmit(frame, TxChecksum::Valid) {
            Ok(()) => Ok(()),
            Err(TxError::RingFull { .. }) => {
                self.driver.poll_tx();
                self.driver.transmit(frame, TxChecksum::Valid).map_err(|_| TxFull)
            }
            Err(e) => {
                // Not retryable (device broken, packet too big): the frame is dropped and counted by the driver.
                log_drop(self.id, &format_args!("transmit: {e}"));
                Ok(())
            }
        }
    }
}
