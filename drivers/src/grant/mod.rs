//! Grant tables (v1), the granting side: handing a peer domain (a backend) access to one of our pages, and taking
//! it back only once the peer has let go of it.
//!
//! The platform sets the table up and implements [`GrantEntries`] over its frames: `GNTTABOP_query_size` for the
//! current and maximum size in frames, `GNTTABOP_setup_table` for [`frames_for`] the entries it wants (at most the
//! maximum), then it maps the returned machine frames (see [`abi`] for the arguments). Everything else, the
//! allocation of refs and the order of writes Xen requires, is here and tested on the host against a fake table
//! whose backend maps and unmaps pages.
//!
//! Protocol (`public/grant_table.h`, "Introducing a valid entry" / "Invalidating an unused GTF_permit_access
//! entry"): write `frame` and `domid`, a write barrier, then `flags`. To revoke, read `flags`; if Xen shows the peer
//! reading or writing, the entry is in use and cannot be revoked (the page must not be reused); otherwise
//! compare-and-swap `flags` to 0, retrying if Xen changed them in between.

pub mod abi;
#[cfg(test)]
mod tests;

pub use abi::{entries_in, frames_for};

use abi::{GNTTAB_NR_RESERVED_ENTRIES, GTF_INVALID, GTF_IN_USE, GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// A grant reference (`grant_ref_t`): the index of an entry in our grant table, what a frontend writes to xenstore
/// or into a ring request so the backend can map the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

impl fmt::Display for GrantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant ref {}", self.0)
    }
}

/// The shared grant table entries ([`abi::GrantEntryV1`]); the platform implements it over the mapped table frames
/// with volatile accesses and barriers. [`GrantTable`] only passes refs below [`GrantEntries::capacity`].
pub trait GrantEntries {
    /// Number of entries mapped (frames mapped × [`abi::ENTRIES_PER_FRAME`]).
    fn capacity(&self) -> u32;
    /// Reads the entry's `flags` (Xen sets and clears `GTF_reading`/`GTF_writing` concurrently).
    fn flags(&self, r: GrantRef) -> u16;
    /// Stores the entry's `frame` and `domid` (not yet visible as a grant: its flags are 0).
    fn set_frame_and_domid(&mut self, r: GrantRef, frame: u32, domid: u16);
    /// A write barrier (so `frame` and `domid` are visible first), then stores `flags`.
    fn publish_flags(&mut self, r: GrantRef, flags: u16);
    /// Atomic compare-and-swap of the entry's flags: `Ok(current)` if they were `current` and are now `new`,
    /// `Err(actual)` (nothing written) otherwise.
    fn compare_exchange_flags(&mut self, r: GrantRef, current: u16, new: u16) -> Result<u16, u16>;
}

/// Why a grant operation failed. Nothing is changed by a failed operation, except as documented on
/// [`GrantError::InUse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// Every usable ref is granted or awaiting a deferred revoke.
    Exhausted {
        /// The domain we were granting to.
        domid: u16,
        /// Entries in the table (refs below [`abi::GNTTAB_NR_RESERVED_ENTRIES`] are not ours).
        capacity: u32,
        /// How many of the refs are parked awaiting a deferred revoke.
        deferred: u32,
    },
    /// The frame number does not fit v1's 32-bit `frame` field (it is never truncated).
    FrameTooLarge {
        /// The domain we were granting to.
        domid: u16,
        /// The machine frame number.
        frame: u64,
    },
    /// The ref is beyond the mapped table.
    OutOfRange {
        /// The ref.
        gref: GrantRef,
        /// Entries in the table.
        capacity: u32,
    },
    /// The ref is one of the toolstack's (console, xenstore...), never ours to end.
    Reserved {
        /// The ref.
        gref: GrantRef,
    },
    /// The ref was never granted since the table was set up.
    NotGranted {
        /// The ref.
        gref: GrantRef,
    },
    /// The ref was already revoked and not granted again since (a double end).
    AlreadyEnded {
        /// The ref.
        gref: GrantRef,
    },
    /// The ref is parked awaiting a deferred revoke; [`GrantTable::poll_deferred`] will free it.
    RevokePending {
        /// The ref.
        gref: GrantRef,
        /// The domain it was granted to.
        domid: u16,
    },
    /// The peer still has the page mapped: the ref stays granted and the page must not be reused.
    InUse {
        /// The ref.
        gref: GrantRef,
        /// The domain it is granted to.
        domid: u16,
        /// The entry's flags as last read (`GTF_reading`/`GTF_writing` say what the peer is doing).
        flags: u16,
    },
    /// [`GrantTable::regrant`] found the entry still set in Xen's table: the domain did not move to a new, empty
    /// table (a checkpoint or a cancelled suspend keeps the old one, and its grants stand).
    StillSet {
        /// The ref.
        gref: GrantRef,
        /// The entry's flags.
        flags: u16,
    },
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GrantError::Exhausted { domid, capacity, deferred } => write!(
                f,
                "no free grant ref to grant domain {domid}: all {} usable refs of the {capacity}-entry table are in \
                 use ({deferred} awaiting deferred revoke)",
                capacity.saturating_sub(GNTTAB_NR_RESERVED_ENTRIES)
            ),
            GrantError::FrameTooLarge { domid, frame } => {
                write!(f, "cannot grant frame {frame:#x} to domain {domid}: grant table v1 frames are 32-bit")
            }
            GrantError::OutOfRange { gref, capacity } => {
                write!(f, "{gref} is outside the grant table ({capacity} entries)")
            }
            GrantError::Reserved { gref } => write!(
                f,
                "{gref} is reserved for the toolstack (refs below {GNTTAB_NR_RESERVED_ENTRIES}: console, xenstore)"
            ),
            GrantError::NotGranted { gref } => write!(f, "{gref} was never granted"),
            GrantError::AlreadyEnded { gref } => write!(f, "{gref} was already revoked (ended twice)"),
            GrantError::RevokePending { gref, domid } => {
                write!(f, "{gref} (granted to domain {domid}) is already awaiting a deferred revoke")
            }
            GrantError::InUse { gref, domid, flags } => write!(
                f,
                "{gref} is still in use by domain {domid}: {} (flags {flags:#06x}); the page must not be reused",
                peer_activity(flags)
            ),
            GrantError::StillSet { gref, flags } => write!(
                f,
                "{gref} is still set in Xen's grant table (flags {flags:#06x}): only a new domain's empty table is \
                 granted again"
            ),
        }
    }
}

impl core::error::Error for GrantError {}

/// What Xen's flags say the peer is doing with a granted page.
fn peer_activity(flags: u16) -> &'static str {
    match (flags & GTF_READING != 0, flags & abi::GTF_WRITING != 0) {
        (true, true) => "the peer has it mapped for reading and writing",
        (false, true) => "the peer has it mapped for writing",
        (true, false) => "the peer has it mapped for reading",
        (false, false) => "the peer kept changing its mapping while we revoked",
    }
}

/// The outcome of [`GrantTable::end_access_deferred`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndAccess {
    /// Revoked at once; the ref is free and the page may be reused.
    Freed,
    /// The peer still uses the page: the ref is parked until [`GrantTable::poll_deferred`] frees it, and the page
    /// must not be reused until then.
    Deferred {
        /// The entry's flags as read (what the peer was doing).
        flags: u16,
    },
}

/// Bookkeeping for one usable ref.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// On the free list, never granted.
    Unused,
    /// On the free list, granted before and revoked.
    Revoked,
    /// Granted to `domid`.
    Granted { domid: u16 },
    /// Granted to `domid`, revoke requested, on the deferred list.
    Deferred { domid: u16 },
}

/// Revoke attempts before giving up on an entry whose flags keep changing under us (Xen only changes them when the
/// peer maps or unmaps, so more than two failed compare-and-swaps means the peer is busy with the page).
const REVOKE_ATTEMPTS: u32 = 8;

/// Our side of the grant table: allocates refs from `GNTTAB_NR_RESERVED_ENTRIES..capacity` in O(1) (a free list),
/// grants and revokes them in the order Xen requires, and parks refs whose revoke must wait for the peer. It
/// allocates only in [`GrantTable::new`].
pub struct GrantTable<E: GrantEntries> {
    entries: E,
    capacity: u32,
    /// Per usable ref, indexed by `ref - GNTTAB_NR_RESERVED_ENTRIES`.
    slots: Vec<Slot>,
    /// Free refs, the next one to hand out last.
    free: Vec<u32>,
    /// Refs awaiting a deferred revoke.
    deferred: Vec<u32>,
    granted: u32,
}

impl<E: GrantEntries> GrantTable<E> {
    /// Takes over the mapped table (its entries must all be unused: flags 0, as Xen leaves a new table). Refs are
    /// handed out from [`abi::GNTTAB_NR_RESERVED_ENTRIES`] upwards.
    pub fn new(entries: E) -> Self {
        let capacity = entries.capacity();
        let usable = capacity.saturating_sub(GNTTAB_NR_RESERVED_ENTRIES) as usize;
        let free = (GNTTAB_NR_RESERVED_ENTRIES..capacity).rev().collect();
        GrantTable {
            entries,
            capacity,
            slots: vec![Slot::Unused; usable],
            free,
            deferred: Vec::with_capacity(usable),
            granted: 0,
        }
    }

    /// The table entries (for the platform's diagnostics).
    pub fn entries(&self) -> &E {
        &self.entries
    }

    /// Entries in the table, reserved ones included.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Refs currently granted (not counting those awaiting a deferred revoke).
    pub fn granted(&self) -> u32 {
        self.granted
    }

    /// Refs awaiting a deferred revoke: still mapped by the peer, neither granted nor free.
    pub fn deferred(&self) -> u32 {
        self.deferred.len() as u32
    }

    /// Refs free to grant.
    pub fn free(&self) -> u32 {
        self.free.len() as u32
    }

    /// Grants `domid` access to machine frame `frame`, read-only if `readonly`: writes `frame` and `domid`, then
    /// (after a write barrier) `flags = GTF_permit_access [| GTF_readonly]`. Returns the ref to give the peer.
    pub fn grant_access(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        let frame32 = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge { domid, frame })?;
        let Some(r) = self.free.pop() else {
            return Err(GrantError::Exhausted { domid, capacity: self.capacity, deferred: self.deferred() });
        };
        let gref = GrantRef(r);
        self.entries.set_frame_and_domid(gref, frame32, domid);
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        self.entries.publish_flags(gref, flags);
        self.slots[slot_index(r)] = Slot::Granted { domid };
        self.granted += 1;
        Ok(gref)
    }

    /// After a resume in a new domain (`xl restore`, `xl migrate`), whose grant table Xen starts empty: writes
    /// `gref`'s entry again for machine frame `frame` (which may have moved) and for `domid` (the new backend may
    /// be another domain), keeping the ref, so what already names it (buffer refs, a blkfront request to replay)
    /// stays valid. Refused unless `gref` is granted in our books and its entry is empty in Xen's table.
    pub fn regrant(&mut self, gref: GrantRef, domid: u16, frame: u64, readonly: bool) -> Result<(), GrantError> {
        let (index, _) = self.granted_slot(gref)?;
        let frame32 = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge { domid, frame })?;
        let flags = self.entries.flags(gref);
        if flags != GTF_INVALID {
            return Err(GrantError::StillSet { gref, flags });
        }
        self.entries.set_frame_and_domid(gref, frame32, domid);
        self.entries.publish_flags(gref, GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 });
        self.slots[index] = Slot::Granted { domid };
        Ok(())
    }

    /// Revokes `gref` if the peer no longer has the page mapped, freeing the ref: the page may then be reused. If
    /// the peer still maps it, refuses with [`GrantError::InUse`] and leaves the ref granted (retry later, or use
    /// [`GrantTable::end_access_deferred`]).
    pub fn end_access(&mut self, gref: GrantRef) -> Result<(), GrantError> {
        let (index, domid) = self.granted_slot(gref)?;
        match try_revoke(&mut self.entries, gref) {
            Ok(()) => {
                self.granted -= 1;
                self.release(index, gref);
                Ok(())
            }
            Err(flags) => Err(GrantError::InUse { gref, domid, flags }),
        }
    }

    /// Revokes `gref` like [`GrantTable::end_access`], but if the peer still maps the page, parks the ref instead
    /// of failing: [`GrantTable::poll_deferred`] frees it once the peer lets go. Until [`EndAccess::Freed`] or a
    /// poll frees it, neither the ref nor the page may be reused.
    pub fn end_access_deferred(&mut self, gref: GrantRef) -> Result<EndAccess, GrantError> {
        let (index, domid) = self.granted_slot(gref)?;
        self.granted -= 1;
        match try_revoke(&mut self.entries, gref) {
            Ok(()) => {
                self.release(index, gref);
                Ok(EndAccess::Freed)
            }
            Err(flags) => {
                self.slots[index] = Slot::Deferred { domid };
                self.deferred.push(gref.0);
                Ok(EndAccess::Deferred { flags })
            }
        }
    }

    /// True while `gref` is parked awaiting a deferred revoke (its page must not be reused yet).
    pub fn is_deferred(&self, gref: GrantRef) -> bool {
        self.deferred.contains(&gref.0)
    }

    /// Retries the revoke of every parked ref; frees those the peer has released. Returns how many were freed.
    pub fn poll_deferred(&mut self) -> usize {
        let mut freed = 0;
        let mut i = 0;
        while i < self.deferred.len() {
            let gref = GrantRef(self.deferred[i]);
            if try_revoke(&mut self.entries, gref).is_ok() {
                self.deferred.swap_remove(i);
                self.release(slot_index(gref.0), gref);
                freed += 1;
            } else {
                i += 1;
            }
        }
        freed
    }

    /// Checks that `gref` is ours and granted; returns its slot index and the domain it is granted to.
    fn granted_slot(&self, gref: GrantRef) -> Result<(usize, u16), GrantError> {
        if gref.0 < GNTTAB_NR_RESERVED_ENTRIES {
            return Err(GrantError::Reserved { gref });
        }
        if gref.0 >= self.capacity {
            return Err(GrantError::OutOfRange { gref, capacity: self.capacity });
        }
        let index = slot_index(gref.0);
        match self.slots[index] {
            Slot::Granted { domid } => Ok((index, domid)),
            Slot::Unused => Err(GrantError::NotGranted { gref }),
            Slot::Revoked => Err(GrantError::AlreadyEnded { gref }),
            Slot::Deferred { domid } => Err(GrantError::RevokePending { gref, domid }),
        }
    }

    /// Returns a revoked ref to the free list.
    fn release(&mut self, index: usize, gref: GrantRef) {
        self.slots[index] = Slot::Revoked;
        self.free.push(gref.0);
    }
}

/// Index into `GrantTable::slots` of a ref already known to be usable.
fn slot_index(r: u32) -> usize {
    (r - GNTTAB_NR_RESERVED_ENTRIES) as usize
}

/// The header's revoke protocol: while neither `GTF_reading` nor `GTF_writing` is set, compare-and-swap the flags
/// to 0. `Err(flags)` (the flags last seen) if the peer holds a mapping or the flags kept changing.
fn try_revoke(entries: &mut impl GrantEntries, gref: GrantRef) -> Result<(), u16> {
    let mut flags = entries.flags(gref);
    for _ in 0..REVOKE_ATTEMPTS {
        if flags & GTF_IN_USE != 0 {
            return Err(flags);
        }
        match entries.compare_exchange_flags(gref, flags, GTF_INVALID) {
            Ok(_) => return Ok(()),
            Err(actual) => flags = actual,
        }
    }
    Err(flags)
}
