//! Completing operations: taking responses off the ring and validating them against the shadow table, failing
//! lost requests and, when the ring breaks, everything pending; handing completions and read data to the caller.
//!
//! Pages come back to the pools when an operation's last request is answered (a successful read's once the caller
//! collected its data); a lost request's pages never do, nor a broken device's.

use super::device::{Blkfront, BlockBuffers, Phase};
use super::error::{BlkError, Completion, ErrorKind, Fault, FaultKind, OpId, OpKind, PollSummary};
use super::shadow::{OpState, Request};
use super::wire::{
    BlkifResponse, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, PAGE_SIZE, RESPONSE_SIZE,
};
use crate::ring::{Notify, RingError, SharedRing};
use sirocco_boot_logic::trace::{self, Category};

impl<S: SharedRing, B: BlockBuffers, E: Notify> Blkfront<S, B, E> {
    /// Takes every response on the ring, validating each against the request its id names (unknown ids,
    /// duplicates and wrong operations are counted faults, ignored), and completes the operations whose requests
    /// are all answered: take them with [`Blkfront::next_completion`] or [`Blkfront::take_completion`]. Re-arms
    /// `rsp_event` before returning (`RING_FINAL_CHECK_FOR_RESPONSES`) so the next response raises an event.
    ///
    /// A bad response takes the place of a real one (the backend gives exactly one response per request): once
    /// every request we published has had its response, requests still pending will never be answered and fail
    /// with [`ErrorKind::Lost`]. An `rsp_prod` running ahead of our requests stops the device and fails every
    /// pending operation.
    pub fn poll(&mut self) -> PollSummary {
        let mut summary = PollSummary::default();
        let mut raw = [0u8; RESPONSE_SIZE];
        while !matches!(self.phase, Phase::Broken(_) | Phase::Closed) {
            let available = match self.ring.unconsumed_responses() {
                Ok(0) => self.ring.final_check_for_responses().map(u32::from),
                other => other,
            };
            match available {
                Ok(0) => break,
                Ok(_) => {
                    let before = summary.responses;
                    while let Some(index) = self.ring.take_response(&mut raw) {
                        summary.responses += 1;
                        self.on_response(index, BlkifResponse::parse(&raw), &mut summary);
                    }
                    if trace::enabled(Category::Blk) {
                        trace::event(
                            Category::Blk,
                            trace::Phase::Instant,
                            "complete",
                            u64::from(summary.responses - before),
                        );
                        trace::event(
                            Category::Blk,
                            trace::Phase::Counter,
                            "requests in flight",
                            u64::from(self.shadow.pending()),
                        );
                    }
                    if self.ring.outstanding() == 0 && self.shadow.pending() > 0 {
                        self.fail_lost(&mut summary);
                    }
                }
                Err(e) => self.stop(e, &mut summary),
            }
        }
        summary
    }

    fn fault(&mut self, summary: &mut PollSummary, fault: Fault) {
        let c = &mut self.counters;
        match fault.kind {
            FaultKind::UnknownId { .. } => c.bad_id += 1,
            FaultKind::Duplicate { .. } => c.duplicate += 1,
            FaultKind::WrongOperation { .. } => c.wrong_operation += 1,
            FaultKind::BadStatus { .. } => c.bad_status += 1,
            FaultKind::Ring(_) => c.ring_overruns += 1,
        }
        summary.faults += 1;
        summary.first_fault.get_or_insert(fault);
    }

    /// Stops the device after the ring's indices broke: every pending operation fails. Their pages are not
    /// reused (the backend may still be using them, and nothing is submitted any more).
    fn stop(&mut self, e: RingError, summary: &mut PollSummary) {
        let fault = Fault { index: self.ring.rsp_cons(), kind: FaultKind::Ring(e) };
        self.fault(summary, fault);
        self.phase = Phase::Broken(fault);
        summary.completed += self.fail_pending(ErrorKind::Broken(fault)) as u32;
    }

    /// Fails every pending operation with `kind` (the device stopped, or the backend closed it): their requests
    /// will never be answered. Their pages are not reused (the backend may still be using them) until
    /// [`Blkfront::reset`]. An abandoned one is dropped (nobody waits for it). Returns how many completions now
    /// wait to be taken.
    pub(super) fn fail_pending(&mut self, kind: ErrorKind) -> usize {
        let mut failed = 0;
        for id in self.ops.pending() {
            let (_, op) = self.ops.at(id.index);
            if op.abandoned {
                op.pages.clear();
                self.ops.remove(id);
                continue;
            }
            op.state = OpState::Done(Err(kind));
            self.counters.ops_failed += 1;
            self.completed.push_back(id);
            failed += 1;
        }
        failed
    }

    fn on_response(&mut self, index: u32, rsp: BlkifResponse, summary: &mut PollSummary) {
        let request = match self.shadow.take(rsp.id, rsp.operation) {
            Ok(request) => request,
            Err(kind) => return self.fault(summary, Fault { index, kind }),
        };
        let operation = request.operation;
        let outcome = match rsp.status {
            BLKIF_RSP_OKAY => None,
            BLKIF_RSP_ERROR => {
                self.counters.rsp_error += 1;
                Some(ErrorKind::Io { operation, sector: request.sector, sectors: request.sectors })
            }
            BLKIF_RSP_EOPNOTSUPP => {
                self.counters.rsp_not_supported += 1;
                self.withdraw(operation);
                Some(ErrorKind::NotSupported { operation })
            }
            status => {
                self.fault(summary, Fault { index, kind: FaultKind::BadStatus { id: rsp.id, status } });
                Some(ErrorKind::BadStatus { operation, status })
            }
        };
        self.complete_part(&request, outcome, false, summary);
    }

    /// Every published request has had its response, yet some are pending: bad responses took their places.
    /// The platform saw the backend close the device (its `state` Closing or Closed, or gone) while we were
    /// connected: whatever it had not answered will never be answered. Fails every pending operation with
    /// [`ErrorKind::BackendClosed`] so no caller waits forever, refuses new ones the same way, and stops using the
    /// ring. The pages of the lost requests are never reused (the backend may still write them while it shuts
    /// down). Returns how many operations failed.
    pub fn backend_closed(&mut self) -> usize {
        if matches!(self.phase, Phase::Broken(_) | Phase::Closed) {
            return 0;
        }
        self.phase = Phase::Closed;
        self.fail_pending(ErrorKind::BackendClosed)
    }

    fn fail_lost(&mut self, summary: &mut PollSummary) {
        for (request, _) in self.shadow.drain() {
            self.counters.lost_requests += 1;
            let kind =
                ErrorKind::Lost { operation: request.operation, sector: request.sector, sectors: request.sectors };
            self.complete_part(&request, Some(kind), true, summary);
        }
    }

    /// One of an operation's requests is answered (or lost): the operation completes with its last.
    pub(super) fn complete_part(
        &mut self,
        request: &Request,
        outcome: Option<ErrorKind>,
        lost: bool,
        summary: &mut PollSummary,
    ) {
        if lost {
            self.quarantined_indirect += u32::from(request.nr_indirect);
            self.counters.quarantined_pages += u64::from(request.nr_indirect);
        } else {
            self.free_indirect.extend_from_slice(request.indirect_pages());
        }
        let (id, op) = self.ops.at(request.op);
        let OpState::Pending { parts_left, error, quarantine } = &mut op.state else { return };
        *parts_left -= 1;
        *quarantine |= lost;
        if let Some(kind) = outcome {
            error.get_or_insert(kind);
        }
        if *parts_left > 0 {
            return;
        }
        let quarantine = *quarantine;
        let result = match *error {
            Some(kind) => Err(kind),
            None if op.kind == OpKind::Flush => Ok(0),
            None => Ok(op.len),
        };
        op.state = OpState::Done(result);
        let (kind, len) = (op.kind, op.len);
        if op.abandoned {
            // Nobody waits for it: its pages and its id come back now, and it is never reported done.
            let pages = self.ops.remove(id);
            if quarantine {
                self.quarantined_data += pages.len() as u32;
                self.counters.quarantined_pages += pages.len() as u64;
            } else {
                self.free_data.extend(pages.iter().rev());
            }
            return;
        }
        if quarantine {
            let pages = core::mem::take(&mut op.pages).len() as u32;
            self.quarantined_data += pages;
            self.counters.quarantined_pages += u64::from(pages);
        } else if result.is_err() || kind != OpKind::Read {
            let pages = core::mem::take(&mut op.pages);
            self.free_data.extend(pages.iter().rev());
        }
        let c = &mut self.counters;
        match result {
            Err(_) => c.ops_failed += 1,
            Ok(_) => {
                c.ops_ok += 1;
                match kind {
                    OpKind::Read => c.bytes_read += len,
                    OpKind::Write => c.bytes_written += len,
                    OpKind::Discard => c.bytes_discarded += len,
                    OpKind::Flush => {}
                }
            }
        }
        self.completed.push_back(id);
        summary.completed += 1;
    }

    /// The backend answered an optional operation `BLKIF_RSP_EOPNOTSUPP`: stop using it (as Linux's blkfront
    /// does), so a later flush falls back to a barrier, or is refused.
    fn withdraw(&mut self, operation: u8) {
        if let Some(disk) = &mut self.disk {
            match operation {
                BLKIF_OP_FLUSH_DISKCACHE => disk.features.flush_cache = false,
                BLKIF_OP_WRITE_BARRIER => disk.features.barrier = false,
                BLKIF_OP_DISCARD => disk.features.discard = false,
                _ => {}
            }
        }
    }

    /// The oldest completion not taken yet. After a successful read, copy its data out with
    /// [`Blkfront::read_into`] (or drop it with [`Blkfront::release`]): its pages stay held until then.
    pub fn next_completion(&mut self) -> Option<Completion> {
        let id = self.completed.pop_front()?;
        Some(self.deliver(id))
    }

    /// `op`'s completion if it has completed (and was not taken yet); `Ok(None)` while it is pending. For an async
    /// layer: each waiting operation checks its own id after a [`Blkfront::poll`].
    pub fn take_completion(&mut self, op: OpId) -> Result<Option<Completion>, BlkError> {
        match self.ops.get(op).map(|o| o.state) {
            Some(OpState::Pending { .. }) => Ok(None),
            Some(OpState::Done(_)) => {
                self.completed.retain(|&id| id != op);
                Ok(Some(self.deliver(op)))
            }
            _ => Err(self.error(ErrorKind::UnknownOp { op })),
        }
    }

    /// Hands out a completion; the operation is freed unless it is a read with data waiting.
    fn deliver(&mut self, id: OpId) -> Completion {
        let Some(op) = self.ops.get_mut(id) else { unreachable!("a completed operation is in the table") };
        let OpState::Done(result) = op.state else { unreachable!("a queued operation is done") };
        let kind = op.kind;
        if kind == OpKind::Read && result.is_ok() {
            op.state = OpState::ReadReady;
        } else {
            // Its pages went back at completion (or, on a broken device, are never reused).
            self.ops.remove(id);
        }
        Completion { op: id, kind, result: result.map_err(|kind| self.error(kind)) }
    }

    /// Copies a completed read's data into `out` (at least as long as the read) and frees its pages; returns the
    /// bytes copied. The completion must have been taken, successful.
    pub fn read_into(&mut self, op: OpId, out: &mut [u8]) -> Result<u64, BlkError> {
        let (len, state) = match self.ops.get(op) {
            Some(o) => (o.len, o.state),
            None => return Err(self.error(ErrorKind::UnknownOp { op })),
        };
        if state != OpState::ReadReady {
            return Err(self.error(ErrorKind::NotReadable { op }));
        }
        if (out.len() as u64) < len {
            return Err(self.error(ErrorKind::BufferTooSmall { len: out.len(), needed: len }));
        }
        let pages = self.ops.remove(op);
        for (chunk, &page) in out[..len as usize].chunks_mut(PAGE_SIZE).zip(&pages) {
            self.buffers.read_data(page, 0, chunk);
        }
        self.free_data.extend(pages.iter().rev());
        Ok(len)
    }

    /// The caller gives up on `op` (its future was dropped, or it no longer wants the result): the operation will
    /// never be reported, and everything it holds comes back as soon as it is safe.
    ///
    /// - Pending: its requests stay with the backend (a ring request cannot be withdrawn); when the last is
    ///   answered its pages, request ids and operation id are freed and no completion is queued. If the backend
    ///   closes or breaks first, its pages stay withheld until [`Blkfront::reset`].
    /// - Completed, completion or read data not taken: freed now (a read's pages with it).
    ///
    /// An abandoned **write** (or discard) may or may not have reached the disk, in any part. Until the backend has
    /// answered it, reads, writes and discards on its sectors and every flush are refused for now
    /// ([`ErrorKind::AfterAbandoned`]), so nothing submitted later is reordered with it and a later flush covers
    /// whatever of it reached the disk. A stale `op` (never issued, or already freed) is refused.
    pub fn abandon(&mut self, op: OpId) -> Result<(), BlkError> {
        let Some(o) = self.ops.get_mut(op) else { return Err(self.error(ErrorKind::UnknownOp { op })) };
        match o.state {
            OpState::Pending { .. } if o.abandoned => return Ok(()),
            OpState::Pending { .. } => o.abandoned = true,
            OpState::Done(result) => {
                self.completed.retain(|&id| id != op);
                let pages = self.ops.remove(op);
                // A successful read holds its data; a failed operation's pages went back at completion, or (the
                // backend closed or broke) are withheld until a reset.
                if result.is_ok() {
                    self.free_data.extend(pages.iter().rev());
                }
            }
            OpState::ReadReady => self.release(op)?,
            OpState::Free => unreachable!("get_mut returns no free operation"),
        }
        self.counters.abandoned += 1;
        Ok(())
    }

    /// Drops a completed read's data without copying it, freeing its pages.
    pub fn release(&mut self, op: OpId) -> Result<(), BlkError> {
        match self.ops.get(op).map(|o| o.state) {
            Some(OpState::ReadReady) => {
                let pages = self.ops.remove(op);
                self.free_data.extend(pages.iter().rev());
                Ok(())
            }
            Some(_) => Err(self.error(ErrorKind::NotReadable { op })),
            None => Err(self.error(ErrorKind::UnknownOp { op })),
        }
    }
}
