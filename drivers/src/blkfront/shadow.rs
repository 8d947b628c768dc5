//! The bookkeeping behind request ids and operation ids.
//!
//! [`Shadow`]: one slot per ring entry, holding what we asked of each pending request. A request's id is its slot
//! index in the low 32 bits and the slot's generation (bumped at every use) in the high 32 bits, so the id the
//! backend echoes is validated against the slot it names: an index out of range or a generation not issued yet is
//! unknown, an older generation (or the current one, already answered) is a duplicate, and neither can complete
//! the request now in the slot.
//!
//! [`OpTable`]: the operations the caller submitted, each spanning one or more requests, from submission until the
//! caller has taken its completion (and, for a read, its data).

use alloc::vec;
use alloc::vec::Vec;

use super::error::{ErrorKind, FaultKind, OpId, OpKind};
use super::wire::{field, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_OP_INDIRECT, ENTRY_SIZE};

/// What a pending request asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The operation's index in the [`OpTable`].
    pub op: u32,
    /// The operation a response must carry (for an indirect request, `indirect_op`).
    pub operation: u8,
    /// Sent as `BLKIF_OP_INDIRECT` (a response may also echo that).
    pub indirect: bool,
    /// First 512-byte sector (for error messages).
    pub sector: u64,
    /// 512-byte sectors.
    pub sectors: u64,
    /// Its indirect descriptor pages.
    pub indirect_pages: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    /// How many of them.
    pub nr_indirect: u8,
}

impl Request {
    /// A direct request of `operation` on `sectors` 512-byte sectors from `sector`, for the operation at `op`.
    pub fn new(op: u32, operation: u8, sector: u64, sectors: u64) -> Request {
        Request {
            op,
            operation,
            indirect: false,
            sector,
            sectors,
            indirect_pages: [0; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
            nr_indirect: 0,
        }
    }

    /// The indirect descriptor pages it holds.
    pub fn indirect_pages(&self) -> &[u32] {
        &self.indirect_pages[..usize::from(self.nr_indirect)]
    }
}

#[derive(Clone, Copy)]
struct Slot {
    generation: u32,
    request: Option<Request>,
    /// The request as it was put on the ring, to send again after a resume in a new domain.
    entry: [u8; ENTRY_SIZE],
}

/// Pending requests by id.
pub(crate) struct Shadow {
    slots: Vec<Slot>,
    /// Free slot indices, the next to use last.
    free: Vec<u32>,
}

impl Shadow {
    /// `size` slots (the ring's size), all free.
    pub fn new(size: u32) -> Shadow {
        Shadow {
            slots: vec![Slot { generation: 0, request: None, entry: [0; ENTRY_SIZE] }; size as usize],
            free: (0..size).rev().collect(),
        }
    }

    /// Free slots.
    pub fn free(&self) -> u32 {
        self.free.len() as u32
    }

    /// Stores a pending request; returns its id, or `None` if every slot is pending.
    pub fn insert(&mut self, request: Request) -> Option<u64> {
        let index = self.free.pop()?;
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1).max(1);
        slot.request = Some(request);
        Some(u64::from(slot.generation) << 32 | u64::from(index))
    }

    /// Keeps the ring entry of the pending request its `id` field names (as [`Shadow::insert`] gave it), to be
    /// sent again by a replay ([`Shadow::drain`]).
    pub fn record(&mut self, entry: &[u8; ENTRY_SIZE]) {
        let id = u64::from_le_bytes(entry[field::ID].try_into().expect("8 bytes"));
        if let Some(slot) = self.slots.get_mut(id as u32 as usize) {
            slot.entry = *entry;
        }
    }

    /// Pending requests.
    pub fn pending(&self) -> u32 {
        self.slots.len() as u32 - self.free()
    }

    /// Takes out every pending request, with its ring entry as [recorded](Shadow::record) (their slots are free
    /// again; a late response to one is a duplicate).
    pub fn drain(&mut self) -> Vec<(Request, [u8; ENTRY_SIZE])> {
        let mut drained = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(request) = slot.request.take() {
                drained.push((request, slot.entry));
                self.free.push(index as u32);
            }
        }
        drained
    }

    /// Validates a response's id and operation against the pending request it names, and if they match takes the
    /// request out (its slot is free again). A mismatch leaves everything as it was.
    pub fn take(&mut self, id: u64, operation: u8) -> Result<Request, FaultKind> {
        let (index, generation) = (id as u32, (id >> 32) as u32);
        let Some(slot) = self.slots.get_mut(index as usize) else { return Err(FaultKind::UnknownId { id }) };
        if generation == 0 || generation > slot.generation {
            return Err(FaultKind::UnknownId { id });
        }
        let request = match slot.request {
            Some(request) if generation == slot.generation => request,
            _ => return Err(FaultKind::Duplicate { id }),
        };
        let echoed_indirect = request.indirect && operation == BLKIF_OP_INDIRECT;
        if operation != request.operation && !echoed_indirect {
            return Err(FaultKind::WrongOperation { id, expected: request.operation, got: operation });
        }
        slot.request = None;
        self.free.push(index);
        Ok(request)
    }
}

/// Where an operation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpState {
    /// Not in use.
    Free,
    /// Requests outstanding; the first error among those answered; whether one was lost (its pages must not be
    /// reused).
    Pending { parts_left: u32, error: Option<ErrorKind>, quarantine: bool },
    /// Every request answered (or the device broke); the completion waits to be taken.
    Done(Result<u64, ErrorKind>),
    /// A successful read whose completion was taken: its data waits in its pages.
    ReadReady,
}

/// One operation.
pub(crate) struct Op {
    pub generation: u32,
    pub state: OpState,
    pub kind: OpKind,
    /// Byte offset on the disk (0 for a flush).
    pub offset: u64,
    /// Bytes (0 for a flush).
    pub len: u64,
    /// Its data pages, in transfer order, while it holds them.
    pub pages: Vec<u32>,
    /// The caller gave up on it while it was pending ([`Blkfront::abandon`](super::Blkfront::abandon)): when its
    /// last request is answered it frees itself, and its completion is never handed out.
    pub abandoned: bool,
}

/// Operations by id.
pub(crate) struct OpTable {
    ops: Vec<Op>,
    free: Vec<u32>,
}

impl OpTable {
    pub fn new() -> OpTable {
        OpTable { ops: Vec::new(), free: Vec::new() }
    }

    /// A new pending operation on `len` bytes at byte `offset`, of `parts` requests (its pages are set with
    /// [`OpTable::get_mut`]).
    pub fn insert(&mut self, kind: OpKind, offset: u64, len: u64, parts: u32) -> OpId {
        let state = OpState::Pending { parts_left: parts, error: None, quarantine: false };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let pages = Vec::new();
                self.ops.push(Op { generation: 0, state: OpState::Free, kind, offset, len, pages, abandoned: false });
                (self.ops.len() - 1) as u32
            }
        };
        let op = &mut self.ops[index as usize];
        op.generation = op.generation.wrapping_add(1);
        (op.state, op.kind, op.offset, op.len, op.abandoned) = (state, kind, offset, len, false);
        OpId { index, generation: op.generation }
    }

    /// The operation `id` names, unless it is stale.
    pub fn get(&self, id: OpId) -> Option<&Op> {
        self.ops.get(id.index as usize).filter(|op| op.generation == id.generation && op.state != OpState::Free)
    }

    /// The operation `id` names, unless it is stale.
    pub fn get_mut(&mut self, id: OpId) -> Option<&mut Op> {
        self.ops.get_mut(id.index as usize).filter(|op| op.generation == id.generation && op.state != OpState::Free)
    }

    /// The operation at `index` (from a pending [`Request`]), with its id.
    pub fn at(&mut self, index: u32) -> (OpId, &mut Op) {
        let op = &mut self.ops[index as usize];
        (OpId { index, generation: op.generation }, op)
    }

    /// Frees the operation; returns the pages it held.
    pub fn remove(&mut self, id: OpId) -> Vec<u32> {
        let op = &mut self.ops[id.index as usize];
        op.state = OpState::Free;
        self.free.push(id.index);
        core::mem::take(&mut op.pages)
    }

    /// The pending operations' ids.
    pub fn pending(&self) -> Vec<OpId> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(op.state, OpState::Pending { .. }))
            .map(|(index, op)| OpId { index: index as u32, generation: op.generation })
            .collect()
    }

    /// Pending operations.
    pub fn pending_count(&self) -> usize {
        self.ops.iter().filter(|op| matches!(op.state, OpState::Pending { .. })).count()
    }

    /// Operations in the table: pending, or waiting for their completion or read data to be taken.
    pub fn in_use(&self) -> usize {
        self.ops.iter().filter(|op| op.state != OpState::Free).count()
    }

    /// An abandoned write or discard still pending on bytes `range` (`None`: anywhere on the disk).
    pub fn abandoned_write(&self, range: Option<(u64, u64)>) -> Option<OpId> {
        let overlaps = |op: &Op| match range {
            None => true,
            Some((offset, len)) => offset < op.offset.saturating_add(op.len) && op.offset < offset.saturating_add(len),
        };
        self.ops
            .iter()
            .enumerate()
            .find(|(_, op)| {
                op.abandoned
                    && matches!(op.state, OpState::Pending { .. })
                    && matches!(op.kind, OpKind::Write | OpKind::Discard)
                    && overlaps(op)
            })
            .map(|(index, op)| OpId { index: index as u32, generation: op.generation })
    }

    /// The data pages held by reads whose data waits to be collected (marked in `held`), after dropping the
    /// pages every other operation holds (withheld from a backend that went away).
    pub fn keep_only_read_data(&mut self, held: &mut [bool]) {
        for op in &mut self.ops {
            let readable = matches!(op.state, OpState::ReadReady | OpState::Done(Ok(_))) && op.kind == OpKind::Read;
            if readable {
                for &page in &op.pages {
                    held[page as usize] = true;
                }
            } else {
                op.pages.clear();
            }
        }
    }
}
